//! `session-devnet demo`, the real executable: a 5-node network in a temporary directory, two
//! accounts and the whole conversation; it must exit 0, print every step's outcome, and leave
//! no directory behind. A demo that cannot run (too few nodes) exits non-zero with a message.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound of a whole demo run (a 5-node network forms in well under a minute; the disappearing
/// message takes 10 s).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs `session-devnet ARGS` with `TMPDIR=tmp`, killing it after [`RUN_LIMIT`]. Returns the
/// exit status, stdout and stderr.
fn run(args: &[&str], tmp: &std::path::Path) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-devnet"))
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting session-devnet");
    // Read both pipes on threads so that a full pipe cannot block the demo.
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for session-devnet") {
            break status;
        }
        if Instant::now() >= deadline {
            // Its SIGKILL leaves the nodes behind: say so loudly (they stop with the machine's
            // next cleanup of TMPDIR; the failure is what matters).
            let _ = child.kill();
            let _ = child.wait();
            panic!("session-devnet {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

#[test]
fn demo_runs_every_step_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (status, out, err) = run(&["demo", "--nodes", "5", "--disappear-secs", "10"], tmp.path());
    assert!(status.success(), "demo failed ({status}); stdout:\n{out}\nstderr:\n{err}");
    for outcome in [
        "[1] Start a local Session network of 5 nodes",
        "=> network ready: 5 nodes in",
        "=> two accounts created",
        "=> stored in Bob's swarm; Alice's copy is sent",
        "=> Bob has Alice's message in his message requests",
        "=> accepted; Alice's first message went sent → read",
        "=> Alice received Bob's reply; it went sent → read",
        "messages in the conversation, every one read",
        "=> unsent: the message shows as (unsent) on Bob's side",
        "=> the disappearing message is gone on both sides",
        "=> demo complete: 7 sent, 7 received",
    ] {
        assert!(out.contains(outcome), "missing {outcome:?} in the demo's output:\n{out}");
    }
    // Each step's outcome comes with its duration.
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with("=> ") && l.ends_with(" ms)")).count(), 10);
    // Both Session IDs, and Bob's message request shows Alice's display name.
    assert_eq!(out.lines().filter(|l| l.contains("Alice: 05") || l.contains("Bob:   05")).count(), 2);
    assert!(out.contains("a message request from \"Alice\""), "{out}");
    assert!(out.contains("\"Meet me at 5") && out.contains("(unsent)"), "{out}");
    // The temporary directory (under TMPDIR) is gone.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn demo_with_too_few_nodes_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (status, out, err) = run(&["demo", "--nodes", "3"], tmp.path());
    assert!(!status.success(), "stdout:\n{out}");
    assert!(err.contains("at least 5 nodes"), "stderr:\n{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
