//! Child processes: spawning with output to a log file, finding the startup line in that log,
//! liveness by pid (a zombie or a recycled pid counts as gone), and stopping with SIGTERM then
//! SIGKILL after a grace period. Signals are sent with the system `kill` command.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::DevnetError;
use crate::state::ProcessId;

/// How often waits poll.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for a process to go after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A process just spawned, with the log offset its output starts at.
#[derive(Debug)]
pub struct Spawned {
    /// The child.
    pub child: Child,
    /// Its id and start time.
    pub process: ProcessId,
    /// Length of the log file before the child wrote to it.
    pub log_offset: u64,
}

/// Spawns `program args` in its own process group (so a Ctrl-C in the terminal reaches only the
/// supervisor), with stdin closed and stdout and stderr appended to `log` after a marker line,
/// and `RUST_LOG=log_filter`.
pub fn spawn_logged(
    program: &Path,
    args: &[OsString],
    log: &Path,
    log_filter: &str,
) -> Result<Spawned, DevnetError> {
    let io = |what: &str, source| DevnetError::Io { what: format!("{what} {}", log.display()), source };
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the directory of", e))?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(log).map_err(|e| io("opening", e))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    writeln!(file, "--- session-devnet: starting {} (unix time {now}) ---", program.display())
        .map_err(|e| io("writing", e))?;
    let log_offset = file.metadata().map_err(|e| io("reading the size of", e))?.len();
    let stderr = file.try_clone().map_err(|e| io("duplicating", e))?;
    let child = Command::new(program)
        .args(args)
        .env("RUST_LOG", log_filter)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|source| DevnetError::Spawn { program: program.to_path_buf(), source })?;
    let pid = child.id();
    Ok(Spawned { child, process: ProcessId { pid, start_ticks: start_ticks(pid) }, log_offset })
}

/// Waits until `log` holds, after `offset`, a line starting with `prefix`, and returns it. Fails
/// when the process exits first (with the end of the log) or after `timeout`.
pub async fn wait_for_line(
    child: &mut Child,
    log: &Path,
    offset: u64,
    prefix: &str,
    timeout: Duration,
) -> Result<String, DevnetError> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read_from(log, offset);
        if let Some(line) = text.lines().find(|l| l.starts_with(prefix)) {
            return Ok(line.to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DevnetError::Exited {
                what: prefix.split(' ').next().unwrap_or("process").to_string(),
                status: status.to_string(),
                log: log.to_path_buf(),
                tail: tail(&read_from(log, offset), 20),
            });
        }
        if Instant::now() >= deadline {
            return Err(DevnetError::StartTimeout {
                what: prefix.trim_end().to_string(),
                timeout,
                log: log.to_path_buf(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The contents of `path` from byte `offset` (lossy UTF-8; empty when unreadable).
pub fn read_from(path: &Path, offset: u64) -> String {
    let mut out = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = file.read_to_end(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The start time of `pid` in clock ticks after boot (field 22 of `/proc/PID/stat`), when
/// `/proc` has it.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `/proc` describes processes here.
fn have_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

/// Whether the process is running: it exists, is not a zombie, and (when its start time was
/// recorded) is the same process, not a later one with a recycled pid.
pub fn is_alive(process: ProcessId) -> bool {
    if have_proc() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", process.pid)) else {
            return false;
        };
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        if fields.next() == Some("Z") {
            return false;
        }
        match (process.start_ticks, fields.nth(18).and_then(|t| t.parse::<u64>().ok())) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    } else {
        Command::new("kill")
            .arg("-0")
            .arg(process.pid.to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Sends `signal` (`TERM`, `KILL`, `INT`) to the process if it is alive; whether it was sent.
pub fn send_signal(process: ProcessId, signal: &str) -> bool {
    if !is_alive(process) {
        return false;
    }
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(process.pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a process went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    NotRunning,
    /// It exited after SIGTERM.
    Terminated,
    /// It needed SIGKILL.
    Killed,
    /// It was still there after SIGKILL (should not happen).
    Stuck,
}

/// Stops a process: SIGTERM, up to `grace` to exit, then SIGKILL. `child`, when this process
/// spawned it, is reaped.
pub async fn stop(process: ProcessId, mut child: Option<Child>, grace: Duration) -> Stopped {
    let gone = |child: &mut Option<Child>| {
        if let Some(c) = child.as_mut()
            && c.try_wait().is_ok_and(|s| s.is_some())
        {
            return true;
        }
        !is_alive(process)
    };
    if gone(&mut child) {
        return Stopped::NotRunning;
    }
    send_signal(process, "TERM");
    if wait_gone(&mut child, grace, gone).await {
        return Stopped::Terminated;
    }
    send_signal(process, "KILL");
    if wait_gone(&mut child, KILL_WAIT, gone).await { Stopped::Killed } else { Stopped::Stuck }
}

async fn wait_gone(
    child: &mut Option<Child>,
    timeout: Duration,
    gone: impl Fn(&mut Option<Child>) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if gone(child) {
            if let Some(c) = child.as_mut() {
                let _ = c.wait();
            }
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// SIGKILLs a process now, without waiting (for `Drop`).
pub fn kill_now(process: ProcessId, child: Option<&mut Child>) {
    match child {
        Some(c) => {
            let _ = c.kill();
            let _ = c.wait();
        }
        None => {
            send_signal(process, "KILL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawn_log_stop_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a/p.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "ready old line from a previous run\n").unwrap();
        let script: Vec<OsString> =
            vec!["-c".into(), "echo \"log line $RUST_LOG\"; echo ready now; exec sleep 60".into()];
        let mut spawned = spawn_logged(Path::new("/bin/sh"), &script, &log, "debug").unwrap();
        let line =
            wait_for_line(&mut spawned.child, &log, spawned.log_offset, "ready", Duration::from_secs(20))
                .await
                .unwrap();
        assert_eq!(line, "ready now", "the line of this run, not the old one");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("log line debug"), "{text}");
        assert!(text.contains("--- session-devnet: starting /bin/sh"), "{text}");
        assert!(is_alive(spawned.process));
        if have_proc() {
            assert!(spawned.process.start_ticks.is_some());
            let recycled = ProcessId {
                pid: spawned.process.pid,
                start_ticks: spawned.process.start_ticks.map(|t| t + 1),
            };
            assert!(!is_alive(recycled), "another start time is another process");
        }
        let process = spawned.process;
        assert_eq!(stop(process, Some(spawned.child), Duration::from_secs(10)).await, Stopped::Terminated);
        assert!(!is_alive(process));
        assert_eq!(stop(process, None, Duration::from_secs(1)).await, Stopped::NotRunning);
    }

    #[tokio::test]
    async fn sigkill_after_grace_and_exit_before_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let stubborn: Vec<OsString> =
            vec!["-c".into(), "trap '' TERM; echo up; while true; do sleep 1; done".into()];
        let mut spawned = spawn_logged(Path::new("/bin/sh"), &stubborn, &log, "info").unwrap();
        wait_for_line(&mut spawned.child, &log, spawned.log_offset, "up", Duration::from_secs(20))
            .await
            .unwrap();
        let process = spawned.process;
        assert_eq!(stop(process, Some(spawned.child), Duration::from_millis(500)).await, Stopped::Killed);
        assert!(!is_alive(process));

        let failing: Vec<OsString> = vec!["-c".into(), "echo bad flag >&2; exit 2".into()];
        let mut spawned = spawn_logged(Path::new("/bin/sh"), &failing, &log, "info").unwrap();
        let err =
            wait_for_line(&mut spawned.child, &log, spawned.log_offset, "never", Duration::from_secs(20))
                .await
                .unwrap_err();
        match err {
            DevnetError::Exited { tail, .. } => assert!(tail.contains("bad flag"), "{tail}"),
            other => panic!("expected Exited, got {other}"),
        }
        let missing = spawn_logged(Path::new("/nonexistent/binary"), &[], &log, "info");
        assert!(matches!(missing, Err(DevnetError::Spawn { .. })));
    }
}
