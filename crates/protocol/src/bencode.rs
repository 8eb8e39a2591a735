//! bt-encoding (bencode) as oxenc writes it, and the frames built on it (network §2.3, §4.16,
//! §6.5, §7.5; crypto §0.2).
//!
//! Byte strings are `<decimal len>:<bytes>`, integers `i<decimal>e`, lists `l…e`, dicts `d…e`
//! with byte-string keys in strictly ascending byte order. Three layers:
//!
//! * [`BtValue`] with [`encode`] / [`decode`]: an owned tree, for small or generic data.
//! * [`BtDictWriter`] / [`BtListWriter`]: append straight into a buffer, no tree; the dict writer
//!   also gives the bytes a signature covers ([`BtDictWriter::signed_bytes`]).
//! * [`BtReader`] (with [`BtListReader`] / [`BtDictReader`]): a zero-copy, depth-limited reader;
//!   the typed frames below are parsed with it and borrow from the input.
//!
//! Decoding never panics: malformed input yields a [`BtError`]. Only canonical encodings are
//! accepted (no leading zeros, no `-0`, sorted unique keys), integers must fit an `i64`, and
//! nesting is limited to [`MAX_DEPTH`].

use std::collections::BTreeMap;

use crate::message_hash::{MessageHash, Namespace};
use crate::onion::EncType;
use crate::primitives::{write_decimal, write_signed_decimal};

/// Maximum nesting of lists and dicts accepted by the readers.
pub const MAX_DEPTH: usize = 64;

/// A bt-encoded value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BtValue {
    /// A byte string.
    Bytes(Vec<u8>),
    /// An integer. (oxenc also carries unsigned values above `i64::MAX`; this module does not.)
    Int(i64),
    /// A list.
    List(Vec<BtValue>),
    /// A dict; the map keeps keys sorted, as the encoding requires.
    Dict(BTreeMap<Vec<u8>, BtValue>),
}

impl BtValue {
    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[BtValue]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map, if this is a dict.
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, BtValue>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A dict entry by key (`None` if absent or this is not a dict).
    pub fn get(&self, key: &[u8]) -> Option<&BtValue> {
        self.as_dict().and_then(|d| d.get(key))
    }

    /// Appends the encoding of this value.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bytes(b) => write_bytes(out, b),
            Self::Int(i) => write_int(out, *i),
            Self::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(map) => {
                out.push(b'd');
                for (key, value) in map {
                    write_bytes(out, key);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

impl From<&[u8]> for BtValue {
    fn from(b: &[u8]) -> Self {
        Self::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for BtValue {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<&str> for BtValue {
    fn from(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }
}

impl From<i64> for BtValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Vec<BtValue>> for BtValue {
    fn from(l: Vec<BtValue>) -> Self {
        Self::List(l)
    }
}

impl From<BTreeMap<Vec<u8>, BtValue>> for BtValue {
    fn from(d: BTreeMap<Vec<u8>, BtValue>) -> Self {
        Self::Dict(d)
    }
}

/// The encoding of `value`.
pub fn encode(value: &BtValue) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode_into(&mut out);
    out
}

/// Decodes exactly one value that spans all of `input` (trailing bytes are an error).
pub fn decode(input: &[u8]) -> Result<BtValue, BtError> {
    let mut r = BtReader::new(input);
    let value = r.value()?;
    r.finish()?;
    Ok(value)
}

/// Malformed bt-encoded input. Offsets are byte positions in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtError {
    /// The input ended inside a value.
    #[error("bt-encoded input ended early")]
    UnexpectedEnd,
    /// A byte that cannot start a value here (or a missing list/dict end).
    #[error("unexpected byte at offset {offset}")]
    UnexpectedByte {
        /// Where.
        offset: usize,
    },
    /// A value of another type than the one required.
    #[error("expected {expected} at offset {offset}")]
    WrongType {
        /// Where.
        offset: usize,
        /// What was required.
        expected: &'static str,
    },
    /// An integer that is empty, non-canonical (`-0`, leading zeros) or not decimal.
    #[error("malformed integer at offset {offset}")]
    BadInteger {
        /// Where.
        offset: usize,
    },
    /// An integer outside the `i64` range.
    #[error("integer out of range at offset {offset}")]
    IntegerRange {
        /// Where.
        offset: usize,
    },
    /// A string length that is malformed or longer than the remaining input.
    #[error("bad string length at offset {offset}")]
    BadLength {
        /// Where.
        offset: usize,
    },
    /// Dict keys out of order, or repeated.
    #[error("dict keys not strictly ascending at offset {offset}")]
    KeyOrder {
        /// Where.
        offset: usize,
    },
    /// Lists/dicts nested deeper than [`MAX_DEPTH`].
    #[error("nesting too deep at offset {offset}")]
    TooDeep {
        /// Where.
        offset: usize,
    },
    /// Bytes after the complete value.
    #[error("trailing bytes at offset {offset}")]
    TrailingBytes {
        /// Where.
        offset: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// Writes a bt-list into a buffer: opened by [`BtListWriter::new`], closed (`e`) when dropped.
#[derive(Debug)]
pub struct BtListWriter<'b> {
    out: &'b mut Vec<u8>,
}

impl<'b> BtListWriter<'b> {
    /// Appends `l` to `out`; the matching `e` is written when the writer is dropped.
    pub fn new(out: &'b mut Vec<u8>) -> Self {
        out.push(b'l');
        Self { out }
    }

    /// Appends a byte string.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        write_bytes(self.out, value);
        self
    }

    /// Appends an integer.
    pub fn int(&mut self, value: i64) -> &mut Self {
        write_int(self.out, value);
        self
    }

    /// Appends an unsigned integer (written in decimal as oxenc does for `uint64_t`).
    pub fn uint(&mut self, value: u64) -> &mut Self {
        write_uint(self.out, value);
        self
    }

    /// Appends an already-built value.
    pub fn value(&mut self, value: &BtValue) -> &mut Self {
        value.encode_into(self.out);
        self
    }

    /// Starts a nested list; it is closed when the returned writer is dropped.
    pub fn list(&mut self) -> BtListWriter<'_> {
        BtListWriter::new(self.out)
    }

    /// Starts a nested dict; it is closed when the returned writer is dropped.
    pub fn dict(&mut self) -> BtDictWriter<'_> {
        BtDictWriter::new(self.out)
    }

    /// Closes the list now (same as dropping it).
    pub fn finish(self) {}
}

impl Drop for BtListWriter<'_> {
    fn drop(&mut self) {
        self.out.push(b'e');
    }
}

/// Writes a bt-dict into a buffer: opened by [`BtDictWriter::new`], closed (`e`) when dropped.
///
/// # Panics
/// Keys must be appended in strictly ascending byte order; anything else is a programming error
/// and panics (as oxenc throws), since keys come from code, never from the network.
#[derive(Debug)]
pub struct BtDictWriter<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
    /// Position and length of the previous key inside `out`.
    last_key: Option<(usize, usize)>,
}

impl<'b> BtDictWriter<'b> {
    /// Appends `d` to `out`; the matching `e` is written when the writer is dropped.
    pub fn new(out: &'b mut Vec<u8>) -> Self {
        let start = out.len();
        out.push(b'd');
        Self { out, start, last_key: None }
    }

    fn key(&mut self, key: &[u8]) {
        if let Some((pos, len)) = self.last_key {
            assert!(self.out[pos..pos + len] < *key, "bt-dict keys must be appended in ascending order");
        }
        write_len(self.out, key.len());
        self.last_key = Some((self.out.len(), key.len()));
        self.out.extend_from_slice(key);
    }

    /// Appends `key` → byte string.
    pub fn bytes(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.key(key);
        write_bytes(self.out, value);
        self
    }

    /// Appends `key` → integer.
    pub fn int(&mut self, key: &[u8], value: i64) -> &mut Self {
        self.key(key);
        write_int(self.out, value);
        self
    }

    /// Appends `key` → unsigned integer.
    pub fn uint(&mut self, key: &[u8], value: u64) -> &mut Self {
        self.key(key);
        write_uint(self.out, value);
        self
    }

    /// Appends `key` → an already-built value.
    pub fn value(&mut self, key: &[u8], value: &BtValue) -> &mut Self {
        self.key(key);
        value.encode_into(self.out);
        self
    }

    /// Appends `key` → a list, written through the returned writer.
    pub fn list(&mut self, key: &[u8]) -> BtListWriter<'_> {
        self.key(key);
        BtListWriter::new(self.out)
    }

    /// Appends `key` → a dict, written through the returned writer.
    pub fn dict(&mut self, key: &[u8]) -> BtDictWriter<'_> {
        self.key(key);
        BtDictWriter::new(self.out)
    }

    /// The dict so far, from its `d` through the last value, without the closing `e`: what a
    /// signature appended next covers (signature-in-dict convention, crypto §0.2). Sign this,
    /// then append the signature under a later key (usually `~`).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.out[self.start..]
    }

    /// Closes the dict now (same as dropping it).
    pub fn finish(self) {}
}

impl Drop for BtDictWriter<'_> {
    fn drop(&mut self) {
        self.out.push(b'e');
    }
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    write_decimal(out, len as u64);
    out.push(b':');
}

fn write_bytes(out: &mut Vec<u8>, value: &[u8]) {
    write_len(out, value.len());
    out.extend_from_slice(value);
}

fn write_int(out: &mut Vec<u8>, value: i64) {
    out.push(b'i');
    write_signed_decimal(out, value);
    out.push(b'e');
}

fn write_uint(out: &mut Vec<u8>, value: u64) {
    out.push(b'i');
    write_decimal(out, value);
    out.push(b'e');
}

fn decimal_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 10 {
        value /= 10;
        len += 1;
    }
    len
}

/// Encoded size of a byte string of `len` bytes.
fn bytes_encoded_len(len: usize) -> usize {
    decimal_len(len as u64) + 1 + len
}

fn int_encoded_len(value: i64) -> usize {
    2 + usize::from(value < 0) + decimal_len(value.unsigned_abs())
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// The type of the next value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BtKind {
    /// A byte string.
    Bytes,
    /// An integer.
    Int,
    /// A list.
    List,
    /// A dict.
    Dict,
}

/// A zero-copy reader over bt-encoded bytes. Byte strings are returned as slices of the input.
#[derive(Debug, Clone)]
pub struct BtReader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> BtReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0, depth: 0 }
    }

    /// The current byte offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Requires that every byte has been consumed.
    pub fn finish(self) -> Result<(), BtError> {
        if self.is_empty() { Ok(()) } else { Err(BtError::TrailingBytes { offset: self.pos }) }
    }

    fn peek(&self) -> Result<u8, BtError> {
        self.buf.get(self.pos).copied().ok_or(BtError::UnexpectedEnd)
    }

    /// The type of the next value (an error at a list/dict end or on a byte that starts nothing).
    pub fn kind(&self) -> Result<BtKind, BtError> {
        match self.peek()? {
            b'0'..=b'9' => Ok(BtKind::Bytes),
            b'i' => Ok(BtKind::Int),
            b'l' => Ok(BtKind::List),
            b'd' => Ok(BtKind::Dict),
            _ => Err(BtError::UnexpectedByte { offset: self.pos }),
        }
    }

    /// Reads a byte string at `pos` without moving; returns it and the position after it.
    fn bytes_at(&self, pos: usize) -> Result<(&'a [u8], usize), BtError> {
        let buf = self.buf;
        let first = *buf.get(pos).ok_or(BtError::UnexpectedEnd)?;
        if !first.is_ascii_digit() {
            return Err(BtError::WrongType { offset: pos, expected: "a byte string" });
        }
        let mut len: usize = 0;
        let mut p = pos;
        loop {
            let b = *buf.get(p).ok_or(BtError::UnexpectedEnd)?;
            match b {
                b'0'..=b'9' => {
                    if p > pos && first == b'0' {
                        return Err(BtError::BadLength { offset: pos });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .ok_or(BtError::BadLength { offset: pos })?;
                    p += 1;
                }
                b':' => break,
                _ => return Err(BtError::BadLength { offset: pos }),
            }
        }
        let start = p + 1;
        let end = start.checked_add(len).ok_or(BtError::BadLength { offset: pos })?;
        if end > buf.len() {
            return Err(BtError::BadLength { offset: pos });
        }
        Ok((&buf[start..end], end))
    }

    /// Reads a byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], BtError> {
        let (value, next) = self.bytes_at(self.pos)?;
        self.pos = next;
        Ok(value)
    }

    /// Reads an integer (must fit `i64`).
    pub fn int(&mut self) -> Result<i64, BtError> {
        let start = self.pos;
        if self.peek()? != b'i' {
            return Err(BtError::WrongType { offset: start, expected: "an integer" });
        }
        let mut p = start + 1;
        let negative = self.buf.get(p) == Some(&b'-');
        if negative {
            p += 1;
        }
        let digits_start = p;
        let mut magnitude: u64 = 0;
        loop {
            let b = *self.buf.get(p).ok_or(BtError::UnexpectedEnd)?;
            match b {
                b'0'..=b'9' => {
                    magnitude = magnitude
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(b - b'0')))
                        .ok_or(BtError::IntegerRange { offset: start })?;
                    p += 1;
                }
                b'e' => break,
                _ => return Err(BtError::BadInteger { offset: start }),
            }
        }
        let digits = &self.buf[digits_start..p];
        let non_canonical =
            digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || (negative && digits == b"0");
        if non_canonical {
            return Err(BtError::BadInteger { offset: start });
        }
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude).ok_or(BtError::IntegerRange { offset: start })?
        } else {
            i64::try_from(magnitude).map_err(|_| BtError::IntegerRange { offset: start })?
        };
        self.pos = p + 1;
        Ok(value)
    }

    fn open(&mut self, marker: u8, expected: &'static str) -> Result<(), BtError> {
        if self.peek()? != marker {
            return Err(BtError::WrongType { offset: self.pos, expected });
        }
        if self.depth >= MAX_DEPTH {
            return Err(BtError::TooDeep { offset: self.pos });
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn close(&mut self) -> Result<(), BtError> {
        if self.peek()? != b'e' {
            return Err(BtError::UnexpectedByte { offset: self.pos });
        }
        self.pos += 1;
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }

    fn at_end_marker(&self) -> Result<bool, BtError> {
        Ok(self.peek()? == b'e')
    }

    /// Enters a list.
    pub fn list(&mut self) -> Result<BtListReader<'_, 'a>, BtError> {
        self.open(b'l', "a list")?;
        Ok(BtListReader { r: self })
    }

    /// Enters a dict.
    pub fn dict(&mut self) -> Result<BtDictReader<'_, 'a>, BtError> {
        self.open(b'd', "a dict")?;
        Ok(BtDictReader { r: self, last_key: None })
    }

    /// Reads any value into an owned tree (strict: dict keys must be sorted and unique).
    pub fn value(&mut self) -> Result<BtValue, BtError> {
        match self.kind()? {
            BtKind::Bytes => self.bytes().map(|b| BtValue::Bytes(b.to_vec())),
            BtKind::Int => self.int().map(BtValue::Int),
            BtKind::List => {
                let l = self.list()?;
                let mut items = Vec::new();
                while !l.is_finished()? {
                    items.push(l.r.value()?);
                }
                l.end()?;
                Ok(BtValue::List(items))
            }
            BtKind::Dict => {
                let mut d = self.dict()?;
                let mut map = BTreeMap::new();
                while let Some(key) = d.next_key()? {
                    map.insert(key.to_vec(), d.r.value()?);
                }
                d.end()?;
                Ok(BtValue::Dict(map))
            }
        }
    }

    /// Skips one value of any type (validating it).
    pub fn skip(&mut self) -> Result<(), BtError> {
        match self.kind()? {
            BtKind::Bytes => self.bytes().map(drop),
            BtKind::Int => self.int().map(drop),
            BtKind::List => {
                let l = self.list()?;
                while !l.is_finished()? {
                    l.r.skip()?;
                }
                l.end()
            }
            BtKind::Dict => {
                let mut d = self.dict()?;
                while d.next_key()?.is_some() {
                    d.r.skip()?;
                }
                d.end()
            }
        }
    }
}

/// Reads the items of a list; [`BtListReader::end`] consumes the closing `e`.
#[derive(Debug)]
pub struct BtListReader<'r, 'a> {
    r: &'r mut BtReader<'a>,
}

impl<'a> BtListReader<'_, 'a> {
    /// True at the end of the list.
    pub fn is_finished(&self) -> Result<bool, BtError> {
        self.r.at_end_marker()
    }

    /// The underlying reader, positioned at the next item.
    pub fn reader(&mut self) -> &mut BtReader<'a> {
        self.r
    }

    /// Reads the next item as a byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], BtError> {
        self.r.bytes()
    }

    /// Reads the next item as an integer.
    pub fn int(&mut self) -> Result<i64, BtError> {
        self.r.int()
    }

    /// Enters the next item as a list.
    pub fn list(&mut self) -> Result<BtListReader<'_, 'a>, BtError> {
        self.r.list()
    }

    /// Enters the next item as a dict.
    pub fn dict(&mut self) -> Result<BtDictReader<'_, 'a>, BtError> {
        self.r.dict()
    }

    /// Requires the end of the list and consumes it.
    pub fn end(self) -> Result<(), BtError> {
        self.r.close()
    }
}

/// Reads the entries of a dict, checking that keys ascend; [`BtDictReader::end`] skips any
/// remaining entries and consumes the closing `e`.
#[derive(Debug)]
pub struct BtDictReader<'r, 'a> {
    r: &'r mut BtReader<'a>,
    last_key: Option<&'a [u8]>,
}

impl<'a> BtDictReader<'_, 'a> {
    /// Reads the next key (the value must be read or skipped next), or `None` at the end.
    pub fn next_key(&mut self) -> Result<Option<&'a [u8]>, BtError> {
        if self.r.at_end_marker()? {
            return Ok(None);
        }
        let offset = self.r.pos;
        let key = self.r.bytes()?;
        if self.last_key.is_some_and(|last| last >= key) {
            return Err(BtError::KeyOrder { offset });
        }
        self.last_key = Some(key);
        Ok(Some(key))
    }

    /// Skips entries with keys below `key` (like oxenc `skip_until`). If the next key equals
    /// `key` it is consumed and `true` returned (read its value next); otherwise nothing more is
    /// consumed and `false` returned. Call in ascending key order.
    pub fn skip_until(&mut self, key: &[u8]) -> Result<bool, BtError> {
        loop {
            if self.r.at_end_marker()? {
                return Ok(false);
            }
            let (next, _) = self.r.bytes_at(self.r.pos)?;
            if next > key {
                return Ok(false);
            }
            self.next_key()?;
            if next == key {
                return Ok(true);
            }
            self.r.skip()?;
        }
    }

    /// Reads the current value as a byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], BtError> {
        self.r.bytes()
    }

    /// Reads the current value as an integer.
    pub fn int(&mut self) -> Result<i64, BtError> {
        self.r.int()
    }

    /// Enters the current value as a list.
    pub fn list(&mut self) -> Result<BtListReader<'_, 'a>, BtError> {
        self.r.list()
    }

    /// Enters the current value as a dict.
    pub fn dict(&mut self) -> Result<BtDictReader<'_, 'a>, BtError> {
        self.r.dict()
    }

    /// Reads the current value into an owned tree.
    pub fn value(&mut self) -> Result<BtValue, BtError> {
        self.r.value()
    }

    /// Skips the current value.
    pub fn skip(&mut self) -> Result<(), BtError> {
        self.r.skip()
    }

    /// Skips remaining entries (checking key order) and consumes the closing `e`.
    pub fn end(mut self) -> Result<(), BtError> {
        while self.next_key()?.is_some() {
            self.r.skip()?;
        }
        self.r.close()
    }
}

/// A signature carried inside a bt-dict, and the bytes it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDict<'a> {
    /// The dict from its `d` up to, not including, the signature key (crypto §0.2).
    pub signed: &'a [u8],
    /// The byte-string value under the signature key.
    pub signature: &'a [u8],
}

/// Finds the signature stored under `key` in the bt-dict `encoded` (which must be one complete,
/// canonical dict) and the bytes it covers; `Ok(None)` if the key is absent. Keys after the
/// signature (e.g. a second signature) are allowed.
pub fn signed_dict<'a>(encoded: &'a [u8], key: &[u8]) -> Result<Option<SignedDict<'a>>, BtError> {
    let mut r = BtReader::new(encoded);
    let mut found = None;
    {
        let mut d = r.dict()?;
        loop {
            let key_offset = d.r.pos;
            let Some(k) = d.next_key()? else { break };
            if k == key {
                let signature = d.bytes()?;
                found = Some(SignedDict { signed: &encoded[..key_offset], signature });
            } else {
                d.skip()?;
            }
        }
        d.end()?;
    }
    r.finish()?;
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// A frame built on bt-encoding is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The bt-encoding itself is malformed.
    #[error("bad bt-encoding: {0}")]
    Bencode(#[from] BtError),
    /// A QUIC message is longer than [`QUIC_MAX_MESSAGE`].
    #[error("message of {len} bytes exceeds the limit")]
    TooLarge {
        /// Announced length.
        len: usize,
    },
    /// A required field is missing or has the wrong shape.
    #[error("invalid frame: {0}")]
    Invalid(&'static str),
    /// An `sn.data` payload with an unknown version byte.
    #[error("unsupported sn.data version")]
    UnsupportedVersion,
}

/// Largest QUIC stream message payload (libquic `MAX_REQ_LEN`, network §2.3).
pub const QUIC_MAX_MESSAGE: usize = 10_000_000;

/// One message on a QUIC `BTRequestStream` (network §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicMessage<'a> {
    /// `C`: a request to an endpoint.
    Command {
        /// Request id (per-stream counter).
        rid: i64,
        /// Endpoint name (an RPC method, `onion_req`, `monitor`, `snode_ping`, `notify`).
        endpoint: &'a str,
        /// Request body.
        body: &'a [u8],
    },
    /// `R`: a reply to request `rid`.
    Reply {
        /// The request's id.
        rid: i64,
        /// Reply body.
        body: &'a [u8],
    },
    /// `E`: an error reply to request `rid`.
    Error {
        /// The request's id.
        rid: i64,
        /// Error body (`<code> <reason>\n\n<body>` for the storage server).
        body: &'a [u8],
    },
}

impl<'a> QuicMessage<'a> {
    /// The request id.
    pub fn rid(&self) -> i64 {
        match *self {
            Self::Command { rid, .. } | Self::Reply { rid, .. } | Self::Error { rid, .. } => rid,
        }
    }

    /// Appends the framed message: a bt byte string wrapping the bt list
    /// `[type, rid, (endpoint,) body]`.
    pub fn write_frame(&self, out: &mut Vec<u8>) {
        let (kind, rid, endpoint, body): (&[u8], i64, Option<&[u8]>, &[u8]) = match *self {
            Self::Command { rid, endpoint, body } => (b"C", rid, Some(endpoint.as_bytes()), body),
            Self::Reply { rid, body } => (b"R", rid, None, body),
            Self::Error { rid, body } => (b"E", rid, None, body),
        };
        let payload_len = 2
            + bytes_encoded_len(1)
            + int_encoded_len(rid)
            + endpoint.map_or(0, |e| bytes_encoded_len(e.len()))
            + bytes_encoded_len(body.len());
        out.reserve(payload_len + 10);
        write_len(out, payload_len);
        let mut l = BtListWriter::new(out);
        l.bytes(kind).int(rid);
        if let Some(endpoint) = endpoint {
            l.bytes(endpoint);
        }
        l.bytes(body);
    }

    /// The framed message as a new buffer.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_frame(&mut out);
        out
    }

    /// Parses one framed message from the front of a stream buffer. `Ok(None)`: more bytes are
    /// needed. Otherwise returns the message and the number of bytes it used.
    pub fn parse_frame(buf: &'a [u8]) -> Result<Option<(Self, usize)>, FrameError> {
        // Length prefix: up to 8 digits (10 000 000), canonical, then ':'.
        let mut len: usize = 0;
        let mut colon = None;
        for (i, &b) in buf.iter().enumerate() {
            match b {
                b':' if i > 0 => {
                    colon = Some(i);
                    break;
                }
                b'0'..=b'9' if i < 8 && !(i == 1 && buf[0] == b'0') => {
                    len = len * 10 + usize::from(b - b'0');
                }
                _ => return Err(BtError::BadLength { offset: 0 }.into()),
            }
        }
        let Some(colon) = colon else { return Ok(None) };
        if len > QUIC_MAX_MESSAGE {
            return Err(FrameError::TooLarge { len });
        }
        let end = colon + 1 + len;
        let Some(payload) = buf.get(colon + 1..end) else { return Ok(None) };
        Ok(Some((Self::parse_payload(payload)?, end)))
    }

    /// Parses the bt list inside a frame (without the length prefix).
    pub fn parse_payload(payload: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = BtReader::new(payload);
        let message = {
            let mut l = r.list()?;
            let kind = l.bytes()?;
            let rid = l.int()?;
            let message = match kind {
                b"C" => {
                    let endpoint = std::str::from_utf8(l.bytes()?)
                        .map_err(|_| FrameError::Invalid("endpoint is not UTF-8"))?;
                    Self::Command { rid, endpoint, body: l.bytes()? }
                }
                b"R" => Self::Reply { rid, body: l.bytes()? },
                b"E" => Self::Error { rid, body: l.bytes()? },
                _ => return Err(FrameError::Invalid("unknown message type")),
            };
            l.end()?;
            message
        };
        r.finish()?;
        Ok(message)
    }
}

/// The `sn.onion_request` part sent from one service node to the next (network §7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnOnionRequest<'a> {
    /// The next hop's ciphertext blob.
    pub data: &'a [u8],
    /// The hop's encryption type; `None` when absent (the receiver then uses
    /// [`EncType::WIRE_DEFAULT`], aes-gcm). Written with its canonical name.
    pub enc_type: Option<EncType>,
    /// The client's ephemeral X25519 key for that hop, as 32 raw bytes.
    pub ephemeral_key: [u8; 32],
    /// Hop number; 0 when absent. The receiver forces it to at least 1 and refuses more than 15.
    pub hop_no: i64,
}

impl<'a> SnOnionRequest<'a> {
    /// The bt-dict `{data, enc_type, ephemeral_key, hop_no}` with sorted keys.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 96);
        let mut d = BtDictWriter::new(&mut out);
        d.bytes(b"data", self.data);
        if let Some(enc_type) = self.enc_type {
            d.bytes(b"enc_type", enc_type.as_str().as_bytes());
        }
        d.bytes(b"ephemeral_key", &self.ephemeral_key).int(b"hop_no", self.hop_no);
        d.finish();
        out
    }

    /// Parses the part; `data` and a 32-byte `ephemeral_key` are required, unknown keys ignored.
    /// `enc_type` must name a supported type ([`EncType::parse`], aliases included).
    pub fn decode(encoded: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = BtReader::new(encoded);
        let request = {
            let mut d = r.dict()?;
            if !d.skip_until(b"data")? {
                return Err(FrameError::Invalid("data is required"));
            }
            let data = d.bytes()?;
            let enc_type = if d.skip_until(b"enc_type")? {
                let name = std::str::from_utf8(d.bytes()?)
                    .map_err(|_| FrameError::Invalid("enc_type is not UTF-8"))?;
                Some(EncType::parse(name).map_err(|_| FrameError::Invalid("unsupported enc_type"))?)
            } else {
                None
            };
            if !d.skip_until(b"ephemeral_key")? {
                return Err(FrameError::Invalid("ephemeral_key is required"));
            }
            let ephemeral_key: [u8; 32] =
                d.bytes()?.try_into().map_err(|_| FrameError::Invalid("ephemeral_key must be 32 bytes"))?;
            let hop_no = if d.skip_until(b"hop_no")? { d.int()? } else { 0 };
            d.end()?;
            Self { data, enc_type, ephemeral_key, hop_no }
        };
        r.finish()?;
        Ok(request)
    }
}

/// A push notification for a newly stored message (network §4.16): OMQ `notify.message` /
/// QUIC `notify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorNotification<'a> {
    /// `@`: the account pubkey.
    pub pubkey: &'a [u8; 33],
    /// `h`: the message hash.
    pub hash: MessageHash,
    /// `n`: the namespace.
    pub namespace: Namespace,
    /// `t`: the message timestamp (ms).
    pub timestamp: i64,
    /// `z`: the message expiry (ms).
    pub expiry: i64,
    /// `~`: the message data, only for subscribers that asked for it.
    pub data: Option<&'a [u8]>,
}

impl<'a> MonitorNotification<'a> {
    /// The bt-dict `{@, h, n, t, z[, ~]}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(140 + self.data.map_or(0, <[u8]>::len));
        let mut d = BtDictWriter::new(&mut out);
        d.bytes(b"@", self.pubkey)
            .bytes(b"h", self.hash.as_bytes())
            .int(b"n", i64::from(self.namespace.0))
            .int(b"t", self.timestamp)
            .int(b"z", self.expiry);
        if let Some(data) = self.data {
            d.bytes(b"~", data);
        }
        d.finish();
        out
    }

    /// Parses a notification; every key but `~` is required.
    pub fn decode(encoded: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = BtReader::new(encoded);
        let n = {
            let mut d = r.dict()?;
            let require = |d: &mut BtDictReader<'_, 'a>, key: &[u8], what: &'static str| {
                if d.skip_until(key)? { Ok(()) } else { Err(FrameError::Invalid(what)) }
            };
            require(&mut d, b"@", "@ (pubkey) is required")?;
            let pubkey: &[u8; 33] =
                d.bytes()?.try_into().map_err(|_| FrameError::Invalid("pubkey must be 33 bytes"))?;
            require(&mut d, b"h", "h (hash) is required")?;
            let hash =
                MessageHash::from_ascii(d.bytes()?).map_err(|_| FrameError::Invalid("bad message hash"))?;
            require(&mut d, b"n", "n (namespace) is required")?;
            let namespace =
                Namespace::try_from(d.int()?).map_err(|_| FrameError::Invalid("namespace out of range"))?;
            require(&mut d, b"t", "t (timestamp) is required")?;
            let timestamp = d.int()?;
            require(&mut d, b"z", "z (expiry) is required")?;
            let expiry = d.int()?;
            let data = if d.skip_until(b"~")? { Some(d.bytes()?) } else { None };
            d.end()?;
            Self { pubkey, hash, namespace, timestamp, expiry, data }
        };
        r.finish()?;
        Ok(n)
    }
}

/// The version byte of `sn.data` payloads.
pub const SN_DATA_VERSION: u8 = 0x01;

/// A batch is closed once it reaches this many bytes (SS `SERIALIZATION_BATCH_SIZE`).
pub const SN_DATA_BATCH_SIZE: usize = 9_000_000;

/// One message in an `sn.data` batch (network §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnDataMessage<'a> {
    /// Account pubkey.
    pub pubkey: &'a [u8; 33],
    /// Message hash.
    pub hash: MessageHash,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Expiry (ms).
    pub expiry: i64,
    /// Message data.
    pub data: &'a [u8],
    /// Namespace. The documented (pre-2.11.3) format has no namespace, so relayed messages land
    /// in namespace 0; storage servers from 2.11.3 append it as a sixth list element. `None`
    /// writes the five-element form; decoding gives `None` for it.
    pub namespace: Option<Namespace>,
}

/// Serialises messages into `sn.data` payloads: `01 || bt list of [pubkey, hash, timestamp,
/// expiry, data(, namespace)]`. A new payload starts once one reaches [`SN_DATA_BATCH_SIZE`]
/// bytes, so a payload can exceed it by one message (as upstream).
pub fn encode_sn_data(messages: &[SnDataMessage<'_>]) -> Vec<Vec<u8>> {
    let mut payloads = Vec::new();
    let mut rest = messages;
    while !rest.is_empty() {
        let mut out = vec![SN_DATA_VERSION];
        {
            let mut l = BtListWriter::new(&mut out);
            while let Some((m, tail)) = rest.split_first() {
                if l.out.len() >= SN_DATA_BATCH_SIZE {
                    break;
                }
                rest = tail;
                let mut item = l.list();
                item.bytes(m.pubkey).bytes(m.hash.as_bytes()).int(m.timestamp).int(m.expiry).bytes(m.data);
                if let Some(ns) = m.namespace {
                    item.int(i64::from(ns.0));
                }
            }
        }
        payloads.push(out);
    }
    payloads
}

/// Parses an `sn.data` payload (five- or six-element items).
pub fn decode_sn_data(payload: &[u8]) -> Result<Vec<SnDataMessage<'_>>, FrameError> {
    let Some((&version, body)) = payload.split_first() else {
        return Err(FrameError::Invalid("empty sn.data payload"));
    };
    if version != SN_DATA_VERSION {
        return Err(FrameError::UnsupportedVersion);
    }
    let mut r = BtReader::new(body);
    let mut messages = Vec::new();
    {
        let mut l = r.list()?;
        while !l.is_finished()? {
            let mut item = l.list()?;
            let pubkey: &[u8; 33] =
                item.bytes()?.try_into().map_err(|_| FrameError::Invalid("pubkey must be 33 bytes"))?;
            let hash = MessageHash::from_ascii(item.bytes()?)
                .map_err(|_| FrameError::Invalid("bad message hash"))?;
            let timestamp = item.int()?;
            let expiry = item.int()?;
            let data = item.bytes()?;
            let namespace = if item.is_finished()? {
                None
            } else {
                Some(
                    Namespace::try_from(item.int()?)
                        .map_err(|_| FrameError::Invalid("namespace out of range"))?,
                )
            };
            item.end()?;
            messages.push(SnDataMessage { pubkey, hash, timestamp, expiry, data, namespace });
        }
        l.end()?;
    }
    r.finish()?;
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_oxenc() {
        let mut d = BTreeMap::new();
        d.insert(b"b".to_vec(), BtValue::from("2"));
        d.insert(b"a".to_vec(), BtValue::Int(1));
        d.insert(b"c".to_vec(), BtValue::List(vec![BtValue::Int(-3), BtValue::from(&b""[..])]));
        let v = BtValue::Dict(d);
        assert_eq!(encode(&v), b"d1:ai1e1:b1:21:cli-3e0:ee");
        assert_eq!(decode(b"d1:ai1e1:b1:21:cli-3e0:ee"), Ok(v));
    }

    #[test]
    fn rejects_non_canonical() {
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"ie",
            b"i-e",
            b"01:a",
            b"2:a",
            b"d1:b0:1:a0:e",
            b"d1:a0:1:a0:e",
            b"di1e0:e",
            b"l",
            b"le1",
            b"i9223372036854775808e",
            b"x",
            b"",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode(b"i-9223372036854775808e"), Ok(BtValue::Int(i64::MIN)));
        assert!(matches!(decode(&[b'l'; 100]), Err(BtError::TooDeep { .. })));
    }

    #[test]
    fn signature_in_dict() {
        // The OXENC example: after a=1, b="2" the signed bytes are `d1:ai1e1:b1:2`.
        let mut out = Vec::new();
        let mut d = BtDictWriter::new(&mut out);
        d.int(b"a", 1).bytes(b"b", b"2");
        assert_eq!(d.signed_bytes(), b"d1:ai1e1:b1:2");
        d.bytes(b"~", b"SIG");
        d.finish();
        assert_eq!(out, b"d1:ai1e1:b1:21:~3:SIGe");
        let s = signed_dict(&out, b"~").unwrap().unwrap();
        assert_eq!(s.signed, b"d1:ai1e1:b1:2");
        assert_eq!(s.signature, b"SIG");
        assert_eq!(signed_dict(&out, b"z"), Ok(None));
    }

    #[test]
    #[should_panic(expected = "ascending")]
    fn writer_rejects_unsorted_keys() {
        let mut out = Vec::new();
        let mut d = BtDictWriter::new(&mut out);
        d.int(b"b", 1).int(b"a", 2);
    }

    #[test]
    fn skip_until_is_lenient_but_ordered() {
        let mut r = BtReader::new(b"d1:ai1e1:bi2e1:ci3ee");
        let mut d = r.dict().unwrap();
        assert!(d.skip_until(b"b").unwrap());
        assert_eq!(d.int(), Ok(2));
        assert!(!d.skip_until(b"bb").unwrap());
        d.end().unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn quic_streaming() {
        let msg = QuicMessage::Command { rid: 7, endpoint: "info", body: b"{}" };
        let mut stream = msg.to_frame();
        let reply = QuicMessage::Reply { rid: -1, body: b"" };
        reply.write_frame(&mut stream);
        let (first, used) = QuicMessage::parse_frame(&stream).unwrap().unwrap();
        assert_eq!(first, msg);
        assert_eq!(QuicMessage::parse_frame(&stream[used..]).unwrap(), Some((reply, stream.len() - used)));
        assert_eq!(QuicMessage::parse_frame(&stream[..used - 1]), Ok(None));
        assert_eq!(QuicMessage::parse_frame(b"12"), Ok(None));
        assert!(QuicMessage::parse_frame(b"99999999:").is_err());
        assert!(QuicMessage::parse_frame(b"05:").is_err());
    }

    #[test]
    fn sn_onion_request_enc_type_is_typed() {
        let request = SnOnionRequest {
            data: b"x",
            enc_type: Some(EncType::XChaCha20),
            ephemeral_key: [1; 32],
            hop_no: 2,
        };
        assert_eq!(SnOnionRequest::decode(&request.encode()), Ok(request));
        let absent = SnOnionRequest { enc_type: None, ..request }.encode();
        assert_eq!(SnOnionRequest::decode(&absent).unwrap().enc_type, None);
        let with_name = |name: &[u8]| {
            let mut out = Vec::new();
            BtDictWriter::new(&mut out)
                .bytes(b"data", b"x")
                .bytes(b"enc_type", name)
                .bytes(b"ephemeral_key", &[1; 32]);
            out
        };
        assert_eq!(SnOnionRequest::decode(&with_name(b"gcm")).unwrap().enc_type, Some(EncType::AesGcm));
        assert!(SnOnionRequest::decode(&with_name(b"aes-cbc")).is_err());
    }

    #[test]
    fn sn_data_round_trip_and_namespace() {
        let pk = [5u8; 33];
        let hash = MessageHash::compute(&pk, Namespace(0), b"x");
        let msgs = [
            SnDataMessage { pubkey: &pk, hash, timestamp: 1, expiry: 2, data: b"x", namespace: None },
            SnDataMessage {
                pubkey: &pk,
                hash,
                timestamp: 3,
                expiry: 4,
                data: b"",
                namespace: Some(Namespace(-11)),
            },
        ];
        let payloads = encode_sn_data(&msgs);
        assert_eq!(payloads.len(), 1);
        assert_eq!(decode_sn_data(&payloads[0]).unwrap(), msgs);
        assert_eq!(decode_sn_data(b"\x02le"), Err(FrameError::UnsupportedVersion));
        assert!(encode_sn_data(&[]).is_empty());
    }
}
