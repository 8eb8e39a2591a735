//! Content padding and unpadding (crypto §4.1).
//!
//! Senders append `0x80` and then `0x00` bytes to the serialised `Content`; two sender variants
//! exist and differ only in the total length. Receivers strip trailing zeros and one `0x80`.

/// Block size both sender variants pad to (crypto §4.1).
pub const PADDING_BLOCK: usize = 160;
/// The byte that ends the content and starts the padding.
pub const PADDING_MARKER: u8 = 0x80;

/// Which sender rule to pad with (crypto §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PaddingVariant {
    /// libsession `pad_message`, what current clients send: the total is a multiple of 160 and
    /// always holds at least one zero byte (`n = 159` gives 320).
    #[default]
    Libsession,
    /// Legacy desktop `addMessagePadding`: total `160·ceil((n+2)/160) − 1` (159, 319, …).
    DesktopLegacy,
}

/// Unpadding failed: there is no content before the padding (crypto §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnpadError {
    /// The buffer is empty or holds only zero bytes, so no content can be found.
    #[error("padded message is empty or all zero bytes")]
    NoContent,
}

/// Total padded length of `content_len` bytes of content under `variant`.
pub fn padded_len(content_len: usize, variant: PaddingVariant) -> usize {
    match variant {
        PaddingVariant::Libsession => ((content_len + 1) / PADDING_BLOCK + 1) * PADDING_BLOCK,
        PaddingVariant::DesktopLegacy => (content_len + 2).div_ceil(PADDING_BLOCK) * PADDING_BLOCK - 1,
    }
}

/// libsession `pad_message` (crypto §4.1): `content || 0x80 || 0x00…` to a multiple of 160.
pub fn pad_message(content: &[u8]) -> Vec<u8> {
    pad(content, PaddingVariant::Libsession)
}

/// Pads `content` with the chosen sender variant (crypto §4.1).
pub fn pad(content: &[u8], variant: PaddingVariant) -> Vec<u8> {
    let mut out = Vec::with_capacity(padded_len(content.len(), variant));
    out.extend_from_slice(content);
    pad_in_place(&mut out, variant);
    out
}

/// Pads a buffer that holds exactly the content, without copying it (crypto §4.1). Reserve
/// [`padded_len`] bytes up front to avoid a reallocation.
pub fn pad_in_place(buffer: &mut Vec<u8>, variant: PaddingVariant) {
    let total = padded_len(buffer.len(), variant);
    buffer.push(PADDING_MARKER);
    buffer.resize(total, 0);
}

/// The receiver rule (crypto §4.1), for both sender variants: skip trailing `0x00` bytes; if the
/// last non-zero byte is `0x80`, the content ends just before it. If it is any other byte the
/// message was not padded and is returned whole (as desktop does; libsession would also drop
/// the trailing zeros, which can be part of an unpadded protobuf). An empty or all-zero buffer
/// is an error.
pub fn unpad(padded: &[u8]) -> Result<&[u8], UnpadError> {
    match padded.iter().rposition(|b| *b != 0) {
        Some(end) if padded.get(end) == Some(&PADDING_MARKER) => Ok(padded.get(..end).unwrap_or_default()),
        Some(_) => Ok(padded),
        None => Err(UnpadError::NoContent),
    }
}

/// [`unpad`] on an owned buffer: truncates it to the content, keeping the allocation.
pub fn unpad_in_place(buffer: &mut Vec<u8>) -> Result<(), UnpadError> {
    let len = unpad(buffer)?.len();
    buffer.truncate(len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        use PaddingVariant::*;
        for (n, ls, dl) in
            [(0, 160, 159), (5, 160, 159), (158, 160, 159), (159, 320, 319), (160, 320, 319), (319, 480, 479)]
        {
            assert_eq!(padded_len(n, Libsession), ls, "libsession {n}");
            assert_eq!(padded_len(n, DesktopLegacy), dl, "desktop {n}");
            assert_eq!(pad(&vec![1u8; n], Libsession).len(), ls);
        }
    }

    #[test]
    fn receiver_rule() {
        assert_eq!(unpad(&[1, 2, 0x80, 0, 0]).unwrap(), &[1, 2]);
        assert_eq!(unpad(&[1, 2, 0x80]).unwrap(), &[1, 2]);
        assert_eq!(unpad(&[0x80, 0x80, 0]).unwrap(), &[0x80]);
        assert_eq!(unpad(&[0x80]).unwrap(), &[] as &[u8]);
        // Not padded: returned whole, trailing zeros included.
        assert_eq!(unpad(&[1, 2, 0]).unwrap(), &[1, 2, 0]);
        assert_eq!(unpad(&[]), Err(UnpadError::NoContent));
        assert_eq!(unpad(&[0, 0]), Err(UnpadError::NoContent));
        let mut buf = pad(b"abc", PaddingVariant::DesktopLegacy);
        unpad_in_place(&mut buf).unwrap();
        assert_eq!(buf, b"abc");
    }
}
