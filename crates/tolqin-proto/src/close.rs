//! Close codes and close frame payloads (RFC 6455 5.5.1, 7.4).

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::Utf8Bytes;

/// A close status code (RFC 6455 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away (server shutting down, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a type of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Reported locally, never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection was lost without a close frame. Reported locally, never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: an unexpected condition prevented the server from fulfilling the request.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1015: TLS handshake failure. Reported locally, never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame received from the peer: 1000-1003,
    /// 1007-1011 and 3000-4999. 1004, 1005, 1006, 1015 and every other code below 3000 are
    /// invalid on the wire (RFC 6455 7.4.1, 7.4.2) and fail the connection with 1002.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }

    /// Whether an application may send this code with `close(code, reason)`, as the browser's
    /// `WebSocket.close` allows: 1000, or 3000-4999.
    pub fn is_allowed_for_application(self) -> bool {
        matches!(self.0, 1000 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// RFC 6455 5.5: a control payload is at most 125 bytes, so a reason is at most 123.
pub const MAX_REASON_LEN: usize = 123;

/// The content of a close frame: a code and a UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; [`CloseCode::NO_STATUS`] when the frame had an empty payload.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: Utf8Bytes,
}

/// Why a received close payload is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClosePayloadError {
    /// RFC 6455 5.5.1: a body, if present, starts with a two-byte code; one byte is not one.
    #[error("close frame payload of one byte")]
    OneByte,
    /// The code is not one that may be sent (see [`CloseCode::is_valid_on_wire`]).
    #[error("invalid close code {0}")]
    InvalidCode(u16),
    /// RFC 6455 5.5.1: the reason must be valid UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidReason,
}

impl CloseFrame {
    /// Parses a received close frame payload (already unmasked).
    ///
    /// An empty payload gives code [`CloseCode::NO_STATUS`] and an empty reason.
    ///
    /// # Errors
    /// [`ClosePayloadError`] for a one-byte body, a code not valid on the wire, or a reason that
    /// is not UTF-8.
    pub fn parse(payload: Bytes) -> Result<CloseFrame, ClosePayloadError> {
        match payload.len() {
            0 => Ok(CloseFrame {
                code: CloseCode::NO_STATUS,
                reason: Utf8Bytes::default(),
            }),
            1 => Err(ClosePayloadError::OneByte),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_valid_on_wire() {
                    return Err(ClosePayloadError::InvalidCode(code.0));
                }
                let reason = Utf8Bytes::try_from(payload.slice(2..))
                    .map_err(|_| ClosePayloadError::InvalidReason)?;
                Ok(CloseFrame { code, reason })
            }
        }
    }

    /// The payload to send for this close: empty for [`CloseCode::NO_STATUS`], else the code
    /// and the reason cut to [`MAX_REASON_LEN`] bytes on a character boundary.
    pub fn encode(&self) -> Bytes {
        if self.code == CloseCode::NO_STATUS {
            return Bytes::new();
        }
        let reason = truncate_utf8(self.reason.as_str(), MAX_REASON_LEN);
        let mut out = BytesMut::with_capacity(2 + reason.len());
        out.put_u16(self.code.0);
        out.put_slice(reason.as_bytes());
        out.freeze()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_1_valid_and_invalid_codes() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ];
        let invalid = [
            0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in valid {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in invalid {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
            let payload = Bytes::copy_from_slice(&code.to_be_bytes());
            assert_eq!(
                CloseFrame::parse(payload),
                Err(ClosePayloadError::InvalidCode(code))
            );
        }
    }

    #[test]
    fn rfc6455_5_5_1_payload_forms() {
        assert_eq!(
            CloseFrame::parse(Bytes::new()).unwrap().code,
            CloseCode::NO_STATUS
        );
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[0x03])),
            Err(ClosePayloadError::OneByte)
        );
        let ok = CloseFrame::parse(Bytes::from_static(b"\x03\xe8bye")).unwrap();
        assert_eq!((ok.code, ok.reason.as_str()), (CloseCode::NORMAL, "bye"));
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(b"\x03\xe8\xff")),
            Err(ClosePayloadError::InvalidReason)
        );
    }

    #[test]
    fn rfc6455_5_5_reason_truncated_on_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let frame = CloseFrame {
            code: CloseCode::NORMAL,
            reason: Utf8Bytes::from(long.as_str()),
        };
        let payload = frame.encode();
        assert!(payload.len() <= 125);
        assert_eq!(payload.len(), 2 + 122);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }

    #[test]
    fn browser_close_codes_for_applications() {
        for code in [1000, 3000, 4999] {
            assert!(CloseCode(code).is_allowed_for_application());
        }
        for code in [999, 1001, 1002, 1005, 2999, 5000] {
            assert!(!CloseCode(code).is_allowed_for_application());
        }
    }
}
