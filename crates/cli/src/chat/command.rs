//! Slash commands typed in the input line, and durations like `30s`, `5m`, `1h`, `1d`.

use session_client::content::DisappearingMode;
use session_protocol::SessionId;

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/new SESSION_ID`: open a conversation with someone.
    New(SessionId),
    /// `/accept`: accept the selected message request.
    Accept,
    /// `/decline`: decline (delete) the selected message request.
    Decline,
    /// `/block`: block the selected conversation's peer.
    Block,
    /// `/unblock [NAME|SESSION_ID]`: unblock someone (without an argument: list who is blocked).
    Unblock(Option<String>),
    /// `/retry`: send the failed messages of the selected conversation again.
    Retry,
    /// `/unsend`: unsend our last message in the selected conversation.
    Unsend,
    /// `/disappear off|send DUR|read DUR`.
    Disappear(DisappearingMode),
    /// `/name DISPLAY NAME`: set our display name.
    Name(String),
    /// `/help`: show or hide the help.
    Help,
    /// `/receipts on|off`, `/typing on|off`: our read-receipt and typing-indicator settings.
    Setting(Setting, bool),
}

/// A setting the chat can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Send read receipts.
    ReadReceipts,
    /// Send typing indicators.
    TypingIndicators,
}

/// A slash command could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a known command.
    #[error("unknown command /{0} (/help lists them)")]
    Unknown(String),
    /// The command needs an argument.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// The Session ID is not valid.
    #[error("not a Session ID: {0}")]
    BadId(String),
    /// The duration is not valid.
    #[error("bad duration {given:?}: {why}")]
    BadDuration {
        /// What was typed.
        given: String,
        /// What is wrong.
        why: &'static str,
    },
}

const NEW_USAGE: &str = "/new SESSION_ID";
const DISAPPEAR_USAGE: &str = "/disappear off | send DURATION | read DURATION (e.g. 30s, 5m, 1h, 1d)";
const NAME_USAGE: &str = "/name DISPLAY NAME";
const SETTING_USAGE: &str = "/receipts on|off, /typing on|off";

/// Parses a line starting with `/`.
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let line = line.trim();
    let body = line.strip_prefix('/').unwrap_or(line);
    let (name, rest) = match body.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (body, ""),
    };
    let no_args = |cmd: Command, usage: &'static str| {
        if rest.is_empty() { Ok(cmd) } else { Err(CommandError::Usage(usage)) }
    };
    match name.to_ascii_lowercase().as_str() {
        "new" => {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(CommandError::Usage(NEW_USAGE));
            }
            rest.parse::<SessionId>().map(Command::New).map_err(|e| CommandError::BadId(e.to_string()))
        }
        "accept" => no_args(Command::Accept, "/accept"),
        "decline" => no_args(Command::Decline, "/decline"),
        "block" => no_args(Command::Block, "/block"),
        "unsend" => no_args(Command::Unsend, "/unsend"),
        "retry" | "resend" => no_args(Command::Retry, "/retry"),
        "unblock" => Ok(Command::Unblock(Some(rest.to_owned()).filter(|r| !r.is_empty()))),
        "help" | "?" => Ok(Command::Help),
        "receipts" | "typing" => {
            let setting = if name.eq_ignore_ascii_case("receipts") {
                Setting::ReadReceipts
            } else {
                Setting::TypingIndicators
            };
            match rest.to_ascii_lowercase().as_str() {
                "on" => Ok(Command::Setting(setting, true)),
                "off" => Ok(Command::Setting(setting, false)),
                _ => Err(CommandError::Usage(SETTING_USAGE)),
            }
        }
        "name" => {
            if rest.is_empty() {
                Err(CommandError::Usage(NAME_USAGE))
            } else {
                Ok(Command::Name(rest.to_owned()))
            }
        }
        "disappear" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["off"] => Ok(Command::Disappear(DisappearingMode::Off)),
                ["send", dur] => {
                    Ok(Command::Disappear(DisappearingMode::AfterSend { seconds: parse_duration(dur)? }))
                }
                ["read", dur] => {
                    Ok(Command::Disappear(DisappearingMode::AfterRead { seconds: parse_duration(dur)? }))
                }
                _ => Err(CommandError::Usage(DISAPPEAR_USAGE)),
            }
        }
        other => Err(CommandError::Unknown(other.to_owned())),
    }
}

/// Parses a duration: a positive number with a unit `s`, `m`, `h`, `d` or `w` (a bare number is
/// seconds). Returns seconds (at least one, at most what a `u32` holds).
pub fn parse_duration(text: &str) -> Result<u32, CommandError> {
    let bad = |why| CommandError::BadDuration { given: text.to_owned(), why };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad("expected a number followed by s, m, h, d or w"));
    }
    let number: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    let scale: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad("unit must be s, m, h, d or w")),
    };
    let seconds = number.checked_mul(scale).ok_or_else(|| bad("too long"))?;
    if seconds == 0 {
        return Err(bad("must be at least one second"));
    }
    u32::try_from(seconds).map_err(|_| bad("too long"))
}

/// Formats seconds in the largest unit that divides them: `90` → `90s`, `300` → `5m`.
pub fn format_duration(seconds: u32) -> String {
    let s = u64::from(seconds);
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// Formats a remaining time roughly, in its largest unit: `59s`, `4m`, `2h`, `3d`.
pub fn format_remaining(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
