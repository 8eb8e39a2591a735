//! The onion layer wire format, "combined payload" (network §7.1; SS `parse_combined_payload`,
//! libsession `builder.cpp`):
//!
//! ```text
//! [u32 little-endian N][N bytes: ciphertext or inner payload][UTF-8 JSON object to the end]
//! ```

use serde_json::{Map, Value};

/// Largest layer accepted or produced: 10 MiB, libsession's `OnionReqParser` cap (§7.7).
pub const MAX_PAYLOAD_LEN: usize = 10 * 1024 * 1024;

/// A combined payload could not be parsed or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Fewer than 4 bytes: no length prefix.
    #[error("combined payload shorter than its 4-byte length prefix")]
    TooShort,
    /// The length prefix points past the end of the buffer.
    #[error("combined payload length prefix {declared} exceeds the {available} bytes present")]
    LengthOutOfRange {
        /// The declared blob length.
        declared: u32,
        /// Bytes present after the prefix.
        available: usize,
    },
    /// The payload (or a blob to encode) is larger than [`MAX_PAYLOAD_LEN`].
    #[error("combined payload larger than 10 MiB")]
    TooLarge,
    /// The trailing part is not a JSON object.
    #[error("combined payload metadata is not a JSON object")]
    InvalidJson,
}

/// A parsed layer, borrowing from the input: the blob and the raw JSON text after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CombinedPayload<'a> {
    /// The `N` bytes after the length prefix (a ciphertext or an inner request body).
    pub blob: &'a [u8],
    /// Everything after the blob: the JSON metadata, not yet parsed.
    pub json: &'a [u8],
}

impl<'a> CombinedPayload<'a> {
    /// Splits `bytes` into blob and JSON text. Checks lengths only; the JSON is parsed by
    /// [`CombinedPayload::json_object`] or by the caller's typed parser.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_LEN {
            return Err(PayloadError::TooLarge);
        }
        let (prefix, rest) = bytes.split_first_chunk::<4>().ok_or(PayloadError::TooShort)?;
        let declared = u32::from_le_bytes(*prefix);
        let n = usize::try_from(declared).map_err(|_| PayloadError::TooLarge)?;
        if n > rest.len() {
            return Err(PayloadError::LengthOutOfRange { declared, available: rest.len() });
        }
        let (blob, json) = rest.split_at(n);
        Ok(Self { blob, json })
    }

    /// Parses the JSON part generically (any key order, any whitespace). It must be an object.
    pub fn json_object(&self) -> Result<Map<String, Value>, PayloadError> {
        match serde_json::from_slice::<Value>(self.json) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(PayloadError::InvalidJson),
        }
    }
}

/// Encodes `[u32 LE len(blob)][blob][json]`. `json` must already be serialised JSON text.
pub fn encode_combined_payload(blob: &[u8], json: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    encode_combined_payload_into(&mut out, blob, json)?;
    Ok(out)
}

/// Appends `[u32 LE len(blob)][blob][json]` to `out` (reusing its allocation).
pub fn encode_combined_payload_into(out: &mut Vec<u8>, blob: &[u8], json: &[u8]) -> Result<(), PayloadError> {
    let total = 4usize.saturating_add(blob.len()).saturating_add(json.len());
    if total > MAX_PAYLOAD_LEN {
        return Err(PayloadError::TooLarge);
    }
    let n = u32::try_from(blob.len()).map_err(|_| PayloadError::TooLarge)?;
    out.reserve(total);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(blob);
    out.extend_from_slice(json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let enc = encode_combined_payload(b"abc", br#"{"headers":""}"#).unwrap();
        assert_eq!(&enc[..4], &[3, 0, 0, 0]);
        let p = CombinedPayload::parse(&enc).unwrap();
        assert_eq!(p.blob, b"abc");
        assert_eq!(p.json_object().unwrap().get("headers"), Some(&Value::String(String::new())));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(CombinedPayload::parse(&[1, 0, 0]), Err(PayloadError::TooShort));
        assert_eq!(
            CombinedPayload::parse(&[5, 0, 0, 0, 1]),
            Err(PayloadError::LengthOutOfRange { declared: 5, available: 1 })
        );
        assert_eq!(
            CombinedPayload::parse(&[0xff, 0xff, 0xff, 0xff]),
            Err(PayloadError::LengthOutOfRange { declared: u32::MAX, available: 0 })
        );
        let p = CombinedPayload::parse(&[0, 0, 0, 0]).unwrap();
        assert!(p.blob.is_empty());
        assert_eq!(p.json_object(), Err(PayloadError::InvalidJson));
        let p = CombinedPayload::parse(b"\0\0\0\0[1]").unwrap();
        assert_eq!(p.json_object(), Err(PayloadError::InvalidJson));
    }
}
