//! Messages encoded once and sent to many connections (broadcast).
//!
//! A server frame is not masked, so the same bytes can go to every recipient. A
//! [`PreparedMessage`] holds the message's frames encoded once, and optionally a compressed
//! variant made with a fresh compressor (no context). [`crate::Connection::send_prepared`]
//! queues the shared bytes, with no copy and no per-recipient compression:
//!
//! - the compressed variant goes to connections that negotiated permessage-deflate with
//!   `server_no_context_takeover` and a window at least as large as the one it was made with
//!   (their peer expects no context from us, so a message compressed without any is exactly
//!   what it can decode);
//! - every other connection gets the uncompressed frames, which are always valid: a message
//!   without RSV1 does not pass through the peer's inflater, so it disturbs no context.

use bytes::{Bytes, BytesMut};

use crate::Role;
use crate::deflate::{Codec, DeflateConfig, DeflateParams};
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use crate::message::Message;

/// A message encoded once as server frames, shared by every connection it is sent to.
///
/// ```
/// use tolqin_proto::{Config, Connection, Message, Role};
/// use tolqin_proto::prepared::PreparedMessage;
///
/// let prepared = PreparedMessage::new(&Message::text("to everyone"));
/// let mut a = Connection::new(Role::Server, Config::default());
/// let mut b = Connection::new(Role::Server, Config::default());
/// a.send_prepared(&prepared).unwrap();
/// b.send_prepared(&prepared).unwrap();
/// assert_eq!(a.data_to_send(), b.data_to_send());
/// ```
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    /// The uncompressed frame, and its header length.
    plain: (Bytes, usize),
    /// The compressed frame, its header length, and the window bits it was made with.
    compressed: Option<(Bytes, usize, u8)>,
    payload_len: usize,
}

/// Encodes `payload` as one frame (RSV bits `rsv`); returns the frame and its header length.
fn encode_frame(opcode: OpCode, payload: &[u8], rsv: u8) -> (Bytes, usize) {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.rsv = rsv;
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut out = BytesMut::with_capacity(n + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
    (out.freeze(), n)
}

fn opcode_of(message: &Message) -> OpCode {
    match message {
        Message::Text(_) => OpCode::Text,
        Message::Binary(_) => OpCode::Binary,
    }
}

impl PreparedMessage {
    /// The message as one uncompressed server frame.
    pub fn new(message: &Message) -> Self {
        PreparedMessage {
            plain: encode_frame(opcode_of(message), message.as_bytes(), 0),
            compressed: None,
            payload_len: message.len(),
        }
    }

    /// The message as one uncompressed frame and, when `deflate` is enabled and the message is
    /// at least its threshold, one frame compressed without context, with
    /// `deflate.server_max_window_bits`.
    pub fn with_deflate(message: &Message, deflate: &DeflateConfig) -> Self {
        let mut prepared = Self::new(message);
        if !deflate.enabled {
            return prepared;
        }
        let bits = deflate.server_max_window_bits;
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        };
        let mut codec = Codec::new(Role::Server, params, deflate);
        if let Some(compressed) = codec.compress(message.as_bytes()) {
            let (frame, head_len) = encode_frame(opcode_of(message), &compressed, 0b100);
            prepared.compressed = Some((frame, head_len, bits));
        }
        prepared
    }

    /// The message's payload length (uncompressed).
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// Whether a compressed variant exists.
    pub fn is_compressed(&self) -> bool {
        self.compressed.is_some()
    }

    /// The encoded frame and its header length for a connection with these negotiated
    /// deflate parameters (`None` when deflate is off).
    pub(crate) fn frame_for(&self, deflate: Option<&DeflateParams>) -> (&Bytes, usize) {
        match (&self.compressed, deflate) {
            (Some((frame, head_len, bits)), Some(p))
                if p.server_no_context_takeover && p.server_max_window_bits >= *bits =>
            {
                (frame, *head_len)
            }
            _ => (&self.plain.0, self.plain.1),
        }
    }
}
