//! The `session` binary end to end on a real devnet (registry and node processes on loopback):
//! accounts in separate data directories talk through the real commands, run as processes.
//!
//! `session-node` and `session-registry` are built into this target directory by the test
//! (`Binaries::build_for_tests`). Every command and every wait is bounded in time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use session_devnet::{Binaries, Devnet, DevnetOptions, Timing};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Bound of the whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);
/// Bound of one command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound of one wait for a message to arrive.
const WAIT: Duration = Duration::from_secs(90);

/// What a `session` process did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "command failed: {self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// One person: a data directory, and the environment their commands run with.
#[derive(Debug, Clone)]
struct User {
    dir: PathBuf,
    cwd: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl User {
    fn new(root: &Path, name: &str) -> Self {
        let cwd = root.join("cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        Self { dir: root.join(name), cwd, env: Vec::new() }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_session"));
        c.arg("--data-dir").arg(&self.dir).args(args).current_dir(&self.cwd);
        for var in
            ["SESSION_PASSPHRASE", "SESSION_NETWORK", "SESSION_DATA_DIR", "SESSION_DEVNET_DIR", "RUST_LOG"]
        {
            c.env_remove(var);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        c
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self.command(args).spawn().expect("starting session");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("session {args:?} timed out"))
            .unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    /// `sync --json` until `found` holds for one of the new messages; returns that message.
    async fn sync_until(&self, what: &str, found: impl Fn(&Value) -> bool) -> (Value, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sync = self.run(&["sync", "--json"]).await.ok().json();
            if let Some(m) = sync["messages"].as_array().unwrap().iter().find(|m| found(m)) {
                return (m.clone(), sync);
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn text_is(text: &'static str) -> impl Fn(&Value) -> bool {
    move |m: &Value| m["text"] == text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_through_the_command_line() {
    tokio::time::timeout(TEST_TIMEOUT, scenario()).await.expect("test timed out");
}

async fn scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut options = DevnetOptions::new(root.join("devnet"), 6);
    options.binaries = Some(Binaries::build_for_tests().expect("building session-node and session-registry"));
    options.timing = Timing { heartbeat_secs: 1, ..Timing::default() };
    options.ready_timeout = Duration::from_secs(180);
    options.stop_grace = Duration::from_secs(5);
    let mut devnet = Devnet::up(options).await.expect("devnet up");
    let network = devnet.dir().to_str().unwrap().to_owned();

    let alice = User::new(root, "alice");
    let bob = User::new(root, "bob");

    // No account yet, and no network anywhere: actionable errors.
    let none = alice.run(&["id"]).await;
    assert_eq!(none.code, Some(5), "{none:?}");
    assert!(none.stderr.contains("run `session init` first"), "{none:?}");
    let no_net = alice.run(&["init"]).await;
    assert_eq!(no_net.code, Some(3), "{no_net:?}");
    assert!(no_net.stderr.contains("session-devnet -- up"), "{no_net:?}");
    // A network that does not answer: nothing is left behind.
    let down = alice.run(&["init", "--network", "http://127.0.0.1:9"]).await;
    assert_eq!(down.code, Some(3), "{down:?}");
    assert!(down.stderr.contains("cannot reach the network at http://127.0.0.1:9"), "{down:?}");
    assert!(!alice.dir.join("session.db").exists());

    // Two accounts. The network given to init is saved for later commands.
    let a = alice.run(&["init", "--name", "Alice", "--network", &network, "--json"]).await.ok().json();
    let alice_id = a["session_id"].as_str().unwrap().to_owned();
    let phrase = a["recovery_password"].as_str().unwrap().to_owned();
    assert_eq!(phrase.split(' ').count(), 13);
    assert!(alice_id.starts_with("05") && alice_id.len() == 66);
    let b = bob.run(&["init", "--name", "Bob", "--network", &network]).await.ok();
    assert!(b.stdout.contains("Write these 13 words down"), "{b:?}");
    let bob_id = bob.run(&["id"]).await.ok().stdout.trim().to_owned();
    assert!(b.stdout.contains(&bob_id));
    let id = bob.run(&["id", "--json"]).await.ok().json();
    assert_eq!(id["session_id"], bob_id.as_str());
    assert_eq!(id["display_name"], "Bob");
    assert!(!id.to_string().contains(&phrase), "no phrase outside init");

    let again = alice.run(&["init", "--network", &network]).await;
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("already holds an account"), "{again:?}");

    // Alice writes to Bob by Session ID; Bob sees a message request.
    let sent = alice.run(&["send", &bob_id, "hello", "bob", "--json"]).await.ok().json();
    assert_eq!(sent["state"], "sent");
    let (m, sync) = bob.sync_until("alice's message", text_is("hello bob")).await;
    assert_eq!(m["request"], true);
    assert_eq!(m["author"], alice_id.as_str());
    assert_eq!(m["author_name"], "Alice");
    assert_eq!(m["direction"], "incoming");
    assert_eq!(sync["requests"][0]["peer"], alice_id.as_str());
    let requests = bob.run(&["requests", "--json"]).await.ok().json();
    assert_eq!(requests["requests"][0]["peer"], alice_id.as_str());
    assert_eq!(requests["requests"][0]["last_message"], "hello bob");
    let text = bob.run(&["conversations"]).await.ok().stdout;
    assert!(text.contains("Alice [request]") && text.contains("hello bob"), "{text}");

    // Bob accepts and answers by her name (the display name she sent).
    bob.run(&["requests", "accept", &alice_id]).await.ok();
    let conversations = bob.run(&["conversations", "--json"]).await.ok().json();
    assert_eq!(conversations["conversations"][0]["state"], "approved");
    let reply = bob.run(&["send", "alice", "hi alice"]).await.ok();
    assert!(reply.stdout.starts_with("sent"), "{reply:?}");

    // Alice sees the answer; her conversation with Bob, oldest first.
    alice.sync_until("bob's reply", text_is("hi alice")).await;
    let unread = |user: &User| {
        let user = user.clone();
        async move {
            let list = user.run(&["conversations", "--json"]).await.ok().json();
            list["conversations"][0]["unread"].as_u64().unwrap()
        }
    };
    assert_eq!(unread(&alice).await, 1);
    // --peek shows without reading; plain `messages` marks them read.
    let peeked = alice.run(&["messages", &bob_id, "--peek"]).await.ok().stdout;
    assert!(peeked.contains("Bob: hi alice"), "{peeked}");
    assert_eq!(unread(&alice).await, 1);
    // Read receipts are off until turned on; Alice turns them on before reading.
    let settings = alice.run(&["settings", "--json"]).await.ok().json();
    assert_eq!((&settings["read_receipts"], &settings["typing_indicators"]), (&false.into(), &false.into()));
    let settings = alice.run(&["settings", "--read-receipts", "on", "--json"]).await.ok().json();
    assert_eq!(settings["read_receipts"], true);
    assert_eq!(settings["display_name"], "Alice");
    let history = alice.run(&["messages", &bob_id, "--json"]).await.ok().json();
    assert_eq!(unread(&alice).await, 0);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{history}");
    assert_eq!((&messages[0]["text"], &messages[0]["direction"]), (&"hello bob".into(), &"outgoing".into()));
    assert_eq!(messages[0]["state"], "sent");
    assert_eq!((&messages[1]["text"], &messages[1]["direction"]), (&"hi alice".into(), &"incoming".into()));

    // Contacts: rename Bob and write to him by the new name; add someone by ID.
    alice.run(&["contacts", "rename", &bob_id, "Robert"]).await.ok();
    let by_name = alice.run(&["send", "robert", "third", "--json"]).await.ok().json();
    assert_eq!((&by_name["to"], &by_name["state"]), (&bob_id.as_str().into(), &"sent".into()));
    let carol_id = format!("05{}", "c0".repeat(32));
    alice.run(&["contacts", "add", &carol_id, "--name", "Carol"]).await.ok();
    let contacts = alice.run(&["contacts", "--json"]).await.ok().json();
    let list = contacts["contacts"].as_array().unwrap();
    let find = |id: &str| list.iter().find(|c| c["session_id"] == id).unwrap_or_else(|| panic!("{contacts}"));
    assert_eq!(find(&bob_id)["nickname"], "Robert");
    assert_eq!(find(&bob_id)["display_name"], "Bob");
    assert_eq!(find(&carol_id)["name"], "Carol");
    bob.sync_until("the message to Robert", text_is("third")).await;
    // Alice's receipt for "hi alice" went before "third": Bob sees his message read.
    let bobs = bob.run(&["messages", "alice", "--json", "--peek"]).await.ok().json();
    let reply = bobs["messages"].as_array().unwrap().iter().find(|m| m["text"] == "hi alice").cloned();
    assert_eq!(reply.map(|m| m["state"].clone()), Some("read".into()), "{bobs}");
    let bad = bob.run(&["settings", "--typing-indicators", "maybe"]).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");

    // Recipients that do not resolve.
    let unknown = alice.run(&["send", "dave", "hi"]).await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("no contact named \"dave\""), "{unknown:?}");
    let bad_id = alice.run(&["send", &bob_id[..65], "hi"]).await;
    assert_eq!(bad_id.code, Some(1), "{bad_id:?}");
    assert!(bad_id.stderr.contains("not a Session ID"), "{bad_id:?}");
    assert!(!bad_id.stderr.contains("panicked"), "{bad_id:?}");

    // Bob watches; Alice writes; the message shows up as a JSON line. Meanwhile the database is
    // held: another command on Bob's account says so.
    let mut watch = bob.command(&["watch", "--json", "--interval", "1"]).spawn().unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut errors = BufReader::new(watch.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, errors.next_line()).await.expect("watch did not start");
    let ready = ready.unwrap().unwrap_or_else(|| panic!("watch exited: {:?}", watch.try_wait()));
    assert!(ready.starts_with("watching for messages"), "{ready}");
    let locked = bob.run(&["id"]).await;
    assert_eq!(locked.code, Some(4), "{locked:?}");
    assert!(locked.stderr.contains("another session command holds the database"), "{locked:?}");
    alice.run(&["send", "Robert", "live"]).await.ok();
    let event: Value = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("watch ended");
            let event: Value = serde_json::from_str(&line).expect("watch prints JSON lines");
            if event["event"] == "message" && event["text"] == "live" {
                break event;
            }
        }
    })
    .await
    .expect("timed out waiting for watch to print the message");
    assert_eq!(event["author"], alice_id.as_str());
    watch.kill().await.unwrap();
    let _ = watch.wait().await;

    // With the whole network stopped a message is kept as failed; once it is back, `resend`
    // delivers it (once).
    let nodes = devnet.nodes().unwrap();
    for node in &nodes {
        devnet.stop_node(node.index).await.unwrap();
    }
    let failed = alice.run(&["send", "Robert", "while down"]).await;
    assert_eq!(failed.code, Some(6), "{failed:?}");
    assert!(failed.stderr.contains("`session resend`"), "{failed:?}");
    let listing = alice.run(&["messages", "Robert"]).await.ok().stdout;
    assert!(listing.contains("me: while down  [failed]"), "{listing}");
    for node in &nodes {
        devnet.start_node(node.index).await.unwrap();
    }
    devnet.wait_until_ready(Duration::from_secs(120)).await.unwrap();
    let resent = alice.run(&["resend", "Robert", "--json"]).await.ok().json();
    assert_eq!((resent["sent"].as_u64(), resent["still_failed"].as_u64()), (Some(1), Some(0)), "{resent}");
    let nothing = alice.run(&["resend", "Robert"]).await.ok().stdout;
    assert!(nothing.contains("no failed messages"), "{nothing}");
    bob.sync_until("the resent message", text_is("while down")).await;
    let bobs = bob.run(&["messages", "alice", "--json"]).await.ok().json();
    let copies = bobs["messages"].as_array().unwrap().iter().filter(|m| m["text"] == "while down").count();
    assert_eq!(copies, 1, "{bobs}");

    chat_in_a_real_terminal(&alice, &bob).await;

    // Restore: a bad phrase is refused with the reason; the right one gives the same ID and
    // brings back what Alice sent.
    let carol_dir = User::new(root, "restored");
    let mut words: Vec<&str> = phrase.split(' ').collect();
    words[2] = "zzzzzz";
    let bad = carol_dir.run(&["restore", "--network", &network, "--phrase", &words.join(" ")]).await;
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(bad.stderr.contains("bad recovery phrase: word 3 is not in the word list"), "{bad:?}");
    assert!(!bad.stderr.contains(&phrase) && !bad.stdout.contains("zzzzzz"));
    assert!(!carol_dir.dir.join("session.db").exists());
    let restored =
        carol_dir.run_with_stdin(&["restore", "--network", &network, "--json"], &format!("{phrase}\n")).await;
    assert_eq!(restored.ok().json()["session_id"], alice_id.as_str());
    carol_dir.sync_until("alice's own sent message", text_is("hello bob")).await;

    // A passphrase-protected account: the wrong passphrase, or none, is a clear error.
    let mut dave = User::new(root, "dave");
    dave.env.push(("SESSION_PASSPHRASE", "correct horse".into()));
    dave.run(&["init", "--network", &network]).await.ok();
    assert!(dave.dir.join("session.db.kdf").exists());
    dave.run(&["id"]).await.ok();
    dave.env = vec![("SESSION_PASSPHRASE", "wrong horse".into())];
    let wrong = dave.run(&["id"]).await;
    assert_eq!(wrong.code, Some(4), "{wrong:?}");
    assert!(wrong.stderr.contains("wrong passphrase"), "{wrong:?}");
    dave.env.clear();
    let missing = dave.run(&["conversations"]).await;
    assert_eq!(missing.code, Some(4), "{missing:?}");
    assert!(missing.stderr.contains("protected by a passphrase"), "{missing:?}");

    // And the other way round: a key-file account opened with a passphrase.
    let mut bob = bob;
    bob.env.push(("SESSION_PASSPHRASE", "anything".into()));
    let keyfile = bob.run(&["id"]).await;
    assert_eq!(keyfile.code, Some(4), "{keyfile:?}");
    assert!(keyfile.stderr.contains("uses a key file, not a passphrase"), "{keyfile:?}");

    devnet.down().await.unwrap();
}

/// Rows and columns of the pseudo-terminal `session chat` runs in.
const PTY_ROWS: u16 = 30;
const PTY_COLS: u16 = 110;

/// `session chat` in a pseudo-terminal, its output read through a terminal emulator (vt100).
struct Pty {
    master: std::fs::File,
    child: tokio::process::Child,
    screen: std::sync::Arc<std::sync::Mutex<vt100::Parser>>,
    /// Everything the program wrote, for the escape sequences.
    raw: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(user: &User, args: &[&str]) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let size =
            rustix::termios::Winsize { ws_row: PTY_ROWS, ws_col: PTY_COLS, ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&master, size).unwrap();
        let slave = std::fs::OpenOptions::new().read(true).write(true).open(name.to_str().unwrap()).unwrap();
        let mut command = user.command(args);
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm-256color");
        let child = command.spawn().expect("starting session chat");
        // Only the child holds the terminal side now: reads end when it exits.
        drop(command);
        let master = std::fs::File::from(master);
        let screen = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(PTY_ROWS, PTY_COLS, 0)));
        let raw = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let (to_screen, to_raw) = (screen.clone(), raw.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            // Ends with EIO (or 0) once the program has exited.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                to_screen.lock().unwrap().process(&buf[..n]);
                to_raw.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { master, child, screen, raw }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `text`.
    async fn wait_for(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.contents().contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the chat screen never showed {text:?}; it shows:\n{}",
                self.contents()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types bytes as a person would (one write per key).
    async fn keys(&mut self, keys: &[u8]) {
        use std::io::Write;
        for key in keys {
            self.master.write_all(&[*key]).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Alice opens `session chat Robert` in a real terminal: she sees the conversation, writes a
/// message that Bob receives, opens the help, and quits; the terminal is given back as it was.
async fn chat_in_a_real_terminal(alice: &User, bob: &User) {
    let mut pty = Pty::spawn(alice, &["chat", "Robert"]);
    pty.wait_for("Robert").await;
    pty.wait_for("while down").await;
    pty.wait_for("net:").await;
    pty.keys(b"typed in a terminal\r").await;
    pty.wait_for("me: typed in a terminal").await;
    // The delivery mark (a check) follows on the same line.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pty.contents().lines().any(|l| l.contains("me: typed in a terminal") && l.contains('✓')) {
        assert!(tokio::time::Instant::now() < deadline, "never marked sent:\n{}", pty.contents());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pty.keys(b"/help\r").await;
    pty.wait_for("/unblock [WHO]").await;
    // Esc closes the help, a second Esc quits.
    pty.keys(b"\x1b").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pty.contents().contains("/unblock [WHO]"), "{}", pty.contents());
    pty.keys(b"\x1b").await;
    let status =
        tokio::time::timeout(COMMAND_TIMEOUT, pty.child.wait()).await.expect("chat did not quit").unwrap();
    assert!(status.success(), "{status:?}\n{}", pty.contents());
    // Back on the main screen, out of raw mode.
    let raw = pty.raw.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&raw);
    let entered = text.find("\x1b[?1049h").expect("the chat used the alternate screen");
    assert!(text[entered..].contains("\x1b[?1049l"), "the alternate screen was left");
    assert!(!pty.screen.lock().unwrap().screen().alternate_screen());
    let modes = rustix::termios::tcgetattr(&pty.master).unwrap().local_modes;
    assert!(
        modes.contains(rustix::termios::LocalModes::ICANON | rustix::termios::LocalModes::ECHO),
        "{modes:?}"
    );
    assert!(!text.contains("panicked"), "{text}");
    bob.sync_until("the message typed in the chat", text_is("typed in a terminal")).await;
}
