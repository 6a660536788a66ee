//! The data representations of MQTT (specification section 1.5), read and written.

use bytes::{Buf, Bytes};
use bytestring::ByteString;

use super::{DecodeError, EncodeError, PacketId, PacketType};

/// Reads the fields of one packet body, slicing strings and binary data out of it.
pub(super) struct Reader {
    buf: Bytes,
    packet_type: PacketType,
    /// Bytes at the end of `buf` out of reach while a section (the properties) is read.
    hidden: usize,
}

impl Reader {
    pub(super) fn new(buf: Bytes, packet_type: PacketType) -> Self {
        Self { buf, packet_type, hidden: 0 }
    }

    /// Limits reading to the next `len` bytes, as if nothing followed them, until
    /// [`Reader::end_section`] is given the value returned. Reading a section in place spares
    /// slicing it off into a reader of its own.
    pub(super) fn start_section(&mut self, len: usize, field: &'static str) -> Result<usize, DecodeError> {
        self.need(len, field)?;
        let outer = self.hidden;
        self.hidden = self.buf.len() - len;
        Ok(outer)
    }

    /// Lifts the limit of [`Reader::start_section`].
    pub(super) fn end_section(&mut self, outer: usize) {
        self.hidden = outer;
    }

    pub(super) fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.hidden
    }

    pub(super) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.remaining() < n {
            Err(DecodeError::UnexpectedEnd { packet_type: self.packet_type, field })
        } else {
            Ok(())
        }
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    pub(super) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }

    pub(super) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let id = self.u16("packet identifier")?;
        PacketId::new(id).ok_or(DecodeError::ZeroPacketId(self.packet_type))
    }

    /// A Variable Byte Integer of at most 4 bytes.
    pub(super) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let byte = self.u8(field)?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VariableIntegerTooLong { field })
    }

    /// Binary Data: a 16-bit length and that many bytes, sliced without copying.
    pub(super) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16(field)?);
        self.take(len, field)
    }

    /// A UTF-8 Encoded String: valid UTF-8 with no U+0000.
    pub(super) fn string(&mut self, field: &'static str) -> Result<ByteString, DecodeError> {
        let raw = self.binary(field)?;
        if has_nul(&raw) {
            return Err(DecodeError::NulInString { field });
        }
        ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// A UTF-8 string whose NUL check is left to the caller's validation (topics).
    pub(super) fn utf8(&mut self, field: &'static str) -> Result<ByteString, DecodeError> {
        let raw = self.binary(field)?;
        ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    pub(super) fn take(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(len, field)?;
        Ok(self.buf.split_to(len))
    }

    /// Everything left, without copying (never inside a section).
    pub(super) fn rest(&mut self) -> Bytes {
        debug_assert_eq!(self.hidden, 0, "rest() inside a section");
        std::mem::take(&mut self.buf)
    }

    /// Fails if anything is left.
    pub(super) fn finish(self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { packet_type: self.packet_type, count: self.remaining() })
        }
    }
}

/// Where encoded bytes go: a buffer, or a counter that measures a packet before it is written.
///
/// Encoding runs the same code twice, once to measure and validate, once to write, so that a
/// packet that cannot be encoded leaves the caller's buffer as it was.
pub(super) trait Sink {
    /// True for the measuring pass ([`Counter`]). It always runs first over the same data, so
    /// checks that only it makes (U+0000 in strings, property rules) cannot be missed.
    const MEASURING: bool = false;

    fn put_slice(&mut self, bytes: &[u8]);

    /// Appends what `write` writes, which the caller has measured as `len` bytes; the measuring
    /// pass counts them without running `write` again.
    fn put_measured(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let _ = len;
        write(self)
    }

    fn put_u8(&mut self, byte: u8) {
        self.put_slice(&[byte]);
    }

    fn put_u16(&mut self, value: u16) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_u32(&mut self, value: u32) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_varint(&mut self, mut value: u32) {
        let mut bytes = [0u8; 4];
        let mut n = 0;
        loop {
            let mut byte = (value & 0x7F) as u8;
            value >>= 7;
            if value > 0 {
                byte |= 0x80;
            }
            bytes[n] = byte;
            n += 1;
            if value == 0 || n == 4 {
                break;
            }
        }
        self.put_slice(&bytes[..n]);
    }

    fn put_binary(&mut self, field: &'static str, bytes: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong { field, len: bytes.len() })?;
        self.put_u16(len);
        self.put_slice(bytes);
        Ok(())
    }

    /// A UTF-8 Encoded String; U+0000 is refused, as the decoder refuses it (MQTT-1.5.4-2).
    fn put_string(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        if Self::MEASURING && has_nul(s.as_bytes()) {
            return Err(EncodeError::NulInString { field });
        }
        self.put_binary(field, s.as_bytes())
    }

    /// A UTF-8 Encoded String whose type already rules out U+0000 (topic names and filters).
    fn put_validated_string(&mut self, field: &'static str, s: &str) -> Result<(), EncodeError> {
        self.put_binary(field, s.as_bytes())
    }
}

/// Whether `bytes` holds a 0 byte: a branch-free scan, faster than `memchr` on short strings.
fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b == 0))
}

/// Counts bytes instead of writing them.
#[derive(Default)]
pub(super) struct Counter(pub(super) usize);

impl Sink for Counter {
    const MEASURING: bool = true;

    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn put_measured(
        &mut self,
        len: usize,
        _write: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.0 += len;
        Ok(())
    }
}

impl Sink for Vec<u8> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// How many bytes the Variable Byte Integer encoding of `value` takes (1..=4).
pub(super) const fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}
