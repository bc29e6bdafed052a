//! The frame header (RFC 6455 5.2): encode and decode, nothing else.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! Decoding checks only what the header itself can get wrong (the length encoding). Whether an
//! opcode, a reserved bit or a mask is acceptable depends on the connection's role and
//! extensions, so [`crate::connection`] decides that.

/// The longest possible frame header: 2 + 8 (64-bit length) + 4 (masking key) bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// RFC 6455 5.5: all control frames have a payload length of 125 bytes or less.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 5.2, 11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: a continuation frame.
    Continuation,
    /// `0x1`: a text frame.
    Text,
    /// `0x2`: a binary frame.
    Binary,
    /// `0x8`: a connection close.
    Close,
    /// `0x9`: a ping.
    Ping,
    /// `0xA`: a pong.
    Pong,
    /// `0x3`-`0x7` and `0xB`-`0xF`: reserved for future use; receiving one fails the connection.
    Reserved(u8),
}

impl OpCode {
    /// The opcode of the low four bits of `bits`.
    pub fn from_bits(bits: u8) -> OpCode {
        match bits & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }

    /// The four-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
            OpCode::Reserved(bits) => bits & 0x0f,
        }
    }

    /// RFC 6455 5.5: opcodes with the high bit set (0x8-0xF) are control frames.
    pub fn is_control(self) -> bool {
        self.bits() & 0x08 != 0
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as bits 2, 1, 0 (so `0b100` is RSV1, used by permessage-deflate).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// Errors in the header's own encoding; each fails the connection with 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0.
    #[error("64-bit payload length with the most significant bit set")]
    LengthTopBitSet,
    /// RFC 6455 5.2: the minimal number of bytes MUST be used to encode the length.
    #[error("payload length not in its minimal encoding")]
    NonMinimalLength,
}

impl FrameHeader {
    /// A header with FIN set, no reserved bits and no mask.
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds less than a whole header, and
    /// `Ok(Some((header, header_len)))` once it holds one.
    ///
    /// # Errors
    /// [`FrameError`] when the length is encoded wrongly.
    ///
    /// ```
    /// use tolqin_proto::frame::{FrameHeader, OpCode};
    /// // RFC 6455 5.7: 256 bytes of binary data in a single unmasked frame.
    /// let (h, len) = FrameHeader::decode(&[0x82, 0x7e, 0x01, 0x00]).unwrap().unwrap();
    /// assert_eq!((h.opcode, h.payload_len, len), (OpCode::Binary, 256, 4));
    /// ```
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let b0 = buf[0];
        let b1 = buf[1];
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                let len = u16::from_be_bytes([buf[2], buf[3]]) as u64;
                if len < 126 {
                    return Err(FrameError::NonMinimalLength);
                }
                (len, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthTopBitSet);
                }
                if len <= u16::MAX as u64 {
                    return Err(FrameError::NonMinimalLength);
                }
                (len, 10)
            }
            small => (small as u64, 2),
        };
        let mask = if masked {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0x07,
                opcode: OpCode::from_bits(b0),
                mask,
                payload_len,
            },
            at,
        )))
    }

    /// The encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header into `out`, returning the number of bytes written, always the minimal
    /// length encoding.
    ///
    /// ```
    /// use tolqin_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
    /// let mut out = [0u8; MAX_HEADER_LEN];
    /// let n = FrameHeader::new(OpCode::Binary, 65536).encode(&mut out);
    /// assert_eq!(&out[..n], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    /// ```
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// (wire hex, fin, opcode, mask, payload length)
    type Example = (&'static str, bool, OpCode, Option<[u8; 4]>, u64);

    /// The RFC 6455 5.7 examples, as listed in tests/vectors/handshake.json.
    #[test]
    fn rfc6455_5_7_examples() {
        let vectors = include_str!("../tests/vectors/handshake.json");
        let cases: &[Example] = &[
            ("810548656c6c6f", true, OpCode::Text, None, 5),
            (
                "818537fa213d7f9f4d5158",
                true,
                OpCode::Text,
                Some([0x37, 0xfa, 0x21, 0x3d]),
                5,
            ),
            ("010348656c", false, OpCode::Text, None, 3),
            ("80026c6f", true, OpCode::Continuation, None, 2),
            ("890548656c6c6f", true, OpCode::Ping, None, 5),
            (
                "8a8537fa213d7f9f4d5158",
                true,
                OpCode::Pong,
                Some([0x37, 0xfa, 0x21, 0x3d]),
                5,
            ),
            ("827e0100", true, OpCode::Binary, None, 256),
            ("827f0000000000010000", true, OpCode::Binary, None, 65536),
        ];
        for &(wire, fin, opcode, mask, len) in cases {
            assert!(vectors.contains(wire), "{wire} is in the vector file");
            let bytes = hex(wire);
            let (h, n) = FrameHeader::decode(&bytes).unwrap().unwrap();
            assert_eq!(
                (h.fin, h.opcode, h.mask, h.payload_len, h.rsv),
                (fin, opcode, mask, len, 0)
            );
            // Re-encoding gives the same header bytes.
            let mut out = [0u8; MAX_HEADER_LEN];
            assert_eq!(h.encode(&mut out), n);
            assert_eq!(&out[..n], &bytes[..n]);
            // Every strict prefix of the header is incomplete, not an error.
            for cut in 0..n {
                assert_eq!(FrameHeader::decode(&bytes[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn rfc6455_5_2_length_top_bit_rejected() {
        let bytes = hex("827f8000000000000000");
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err(FrameError::LengthTopBitSet)
        );
    }

    #[test]
    fn rfc6455_5_2_non_minimal_length_rejected() {
        assert_eq!(
            FrameHeader::decode(&hex("827e007d")),
            Err(FrameError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::decode(&hex("827f000000000000ffff")),
            Err(FrameError::NonMinimalLength)
        );
    }

    #[test]
    fn rfc6455_5_2_reserved_bits_and_opcodes_decoded_raw() {
        let (h, _) = FrameHeader::decode(&[0xf3, 0x00]).unwrap().unwrap();
        assert_eq!((h.rsv, h.opcode), (0b111, OpCode::Reserved(3)));
        assert!(OpCode::Reserved(0xb).is_control());
        assert!(!OpCode::Reserved(0x3).is_control());
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(
            fin in any::<bool>(), rsv in 0u8..8, op in 0u8..16,
            mask in any::<Option<[u8; 4]>>(), len in prop_oneof![0u64..200, 60000u64..70000, 0u64..(1 << 63)]
        ) {
            let h = FrameHeader { fin, rsv, opcode: OpCode::from_bits(op), mask, payload_len: len };
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut out);
            prop_assert_eq!(n, h.encoded_len());
            prop_assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((h, n))));
        }
    }
}
