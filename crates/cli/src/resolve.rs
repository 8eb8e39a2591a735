//! Naming people: a recipient given as a Session ID or a contact name, and the names and times
//! the commands print.

use jiff::tz::TimeZone;
use session_client::db::Contact;
use session_protocol::id::{IdPrefix, SessionId};

use crate::context::CliError;

/// Resolves what a user typed to a Session ID: a 66-hex `05…` Session ID, or the name of
/// exactly one contact (our nickname for them first, then the display name they sent;
/// case-insensitive).
pub fn recipient(input: &str, contacts: &[Contact]) -> Result<SessionId, CliError> {
    let text = input.trim();
    if looks_like_id(text) {
        return SessionId::parse_with_prefix(text, IdPrefix::Standard)
            .map_err(|e| CliError::Recipient(format!("not a Session ID: {text} ({e})")));
    }
    if text.is_empty() {
        return Err(CliError::Recipient("no recipient given: a Session ID or a contact name".into()));
    }
    let matching = |name: fn(&Contact) -> Option<&str>| -> Vec<&Contact> {
        contacts.iter().filter(|c| name(c).is_some_and(|n| n.trim().eq_ignore_ascii_case(text))).collect()
    };
    let by_nickname = matching(|c| c.nickname.as_deref());
    let found = if by_nickname.is_empty() { matching(|c| c.display_name.as_deref()) } else { by_nickname };
    match found.as_slice() {
        [one] => Ok(one.session_id),
        [] => Err(CliError::Recipient(format!(
            "no contact named {text:?}: give a Session ID (05… 66 hex characters) or see `session contacts`"
        ))),
        many => Err(CliError::Recipient(format!(
            "{} contacts are named {text:?} ({}): use the Session ID, or rename one with `session contacts rename`",
            many.len(),
            many.iter().map(|c| c.session_id.short()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Whether the text is meant as a Session ID rather than a name: only hex digits, and long (a
/// name of 20 or more hex digits is no name anyone types).
fn looks_like_id(text: &str) -> bool {
    text.len() >= 20 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The name to show for a contact: our nickname, else their display name.
pub fn contact_name(contact: Option<&Contact>) -> Option<String> {
    contact.and_then(|c| c.nickname.clone().or_else(|| c.display_name.clone()))
}

/// A name for a person in text output: their name, else the short form of their ID.
pub fn label(id: &SessionId, contacts: &[Contact]) -> String {
    contact_name(contacts.iter().find(|c| c.session_id == *id)).unwrap_or_else(|| id.short())
}

/// `YYYY-MM-DD HH:MM:SS` in the local time zone (`TZ`, else the system's) of a time in ms
/// since the epoch.
pub fn time(ms: u64) -> String {
    time_in(ms, &TimeZone::system())
}

/// `YYYY-MM-DD HH:MM:SS` in `tz` of a time in ms since the epoch (`?` if out of range).
pub fn time_in(ms: u64, tz: &TimeZone) -> String {
    format_in(ms, tz, "%Y-%m-%d %H:%M:%S")
}

/// `HH:MM` in `tz` of a time in ms since the epoch.
pub fn clock_in(ms: u64, tz: &TimeZone) -> String {
    format_in(ms, tz, "%H:%M")
}

fn format_in(ms: u64, tz: &TimeZone, format: &str) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned(tz.clone()).strftime(format).to_string())
        .unwrap_or_else(|| "?".to_owned())
}

/// The first line of a text, at most `max` characters, with `…` when cut.
pub fn preview(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max || line.len() < text.trim_end().len() {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> SessionId {
        SessionId::new(IdPrefix::Standard, [byte; 32])
    }

    fn contact(byte: u8, display: Option<&str>, nickname: Option<&str>) -> Contact {
        Contact {
            session_id: id(byte),
            display_name: display.map(str::to_owned),
            nickname: nickname.map(str::to_owned),
            approved: true,
            approved_me: false,
            blocked: false,
            created_ms: 0,
        }
    }

    #[test]
    fn session_ids() {
        let text = id(7).to_hex();
        assert_eq!(recipient(&text, &[]).unwrap(), id(7));
        assert_eq!(recipient(&format!("  {}  ", text.to_uppercase()), &[]).unwrap(), id(7));
        // Wrong length, wrong prefix (a blinded 15 ID), one digit short.
        for bad in [&text[..64], &format!("15{}", &text[2..]), &text[1..]] {
            let err = recipient(bad, &[]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("not a Session ID: {bad}")), "{err}");
        }
    }

    #[test]
    fn names() {
        let contacts = [
            contact(1, Some("Alice"), None),
            contact(2, Some("Bob"), Some("bobby")),
            contact(3, Some("Bob"), None),
            contact(4, Some("Carol"), Some("Bob")),
        ];
        assert_eq!(recipient("alice", &contacts).unwrap(), id(1));
        assert_eq!(recipient("ALICE ", &contacts).unwrap(), id(1));
        assert_eq!(recipient("Bobby", &contacts).unwrap(), id(2));
        // A nickname beats display names: "bob" is our name for contact 4.
        assert_eq!(recipient("bob", &contacts).unwrap(), id(4));
        // Two display names alike, no nickname: ambiguous.
        let two_bobs = [contact(2, Some("Bob"), None), contact(3, Some("bob"), None)];
        let err = recipient("Bob", &two_bobs).unwrap_err().to_string();
        assert!(err.contains("2 contacts are named"), "{err}");
        let err = recipient("dave", &contacts).unwrap_err().to_string();
        assert!(err.contains("no contact named \"dave\""), "{err}");
        // A short hex word is a name ("cafe"), not a broken ID.
        let err = recipient("cafe", &contacts).unwrap_err().to_string();
        assert!(err.contains("no contact named"), "{err}");
    }

    #[test]
    fn times_and_previews() {
        let utc = TimeZone::UTC;
        assert_eq!(time_in(0, &utc), "1970-01-01 00:00:00");
        assert_eq!(time_in(951_782_400_000, &utc), "2000-02-29 00:00:00");
        assert_eq!(time_in(1_798_761_599_000, &utc), "2026-12-31 23:59:59");
        assert_eq!(time_in(u64::MAX, &utc), "?");
        let east = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(time_in(1_798_761_599_000, &east), "2027-01-01 01:59:59");
        assert_eq!(clock_in(1_798_761_599_000, &east), "01:59");
        let west = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(clock_in(951_782_400_000, &west), "19:00");
        assert_eq!(preview("hello", 10), "hello");
        assert_eq!(preview("hello world", 5), "hello…");
        assert_eq!(preview("one\ntwo", 10), "one…");
    }
}
