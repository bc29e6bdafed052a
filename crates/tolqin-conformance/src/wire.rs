//! Bytes on the wire: encoding the fuzzer's frames (with `tolqin-proto`'s header codec and
//! masking), reading the peer's frames on a task of their own, and the wire log.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::UnboundedSender;
use tolqin::proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin::proto::mask::apply_mask;

/// Longest frame payload the fuzzer accepts from a peer (section 9 echoes 16 MiB).
const MAX_INCOMING_FRAME: u64 = 256 << 20;

/// How many bytes of a payload or of the raw octets the wire log keeps, as Autobahn does.
const LOG_PREFIX: usize = 256;

/// Appends one frame to `out`: header from `tolqin-proto`, then the payload, masked with `mask`
/// if given. Any opcode and reserved bits are encoded as asked.
pub(crate) fn encode_frame(
    out: &mut Vec<u8>,
    opcode: u8,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_header(out, opcode, fin, payload.len() as u64, rsv, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Appends a frame header alone, for a payload sent in later pieces.
pub(crate) fn encode_header(
    out: &mut Vec<u8>,
    opcode: u8,
    fin: bool,
    len: u64,
    rsv: u8,
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode: OpCode::from_bits(opcode),
        mask,
        payload_len: len,
    };
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// A frame received from the peer, unmasked.
#[derive(Debug)]
pub(crate) struct RxFrame {
    pub header: FrameHeader,
    pub payload: Bytes,
}

/// What the reading task reports, in the order things happened.
#[derive(Debug)]
pub(crate) enum Input {
    /// Raw octets arrived (their count and first bytes, for the wire log).
    Octets(usize, Bytes),
    /// A whole frame arrived.
    Frame(RxFrame),
    /// The peer sent a header the codec rejects (or an absurd length).
    Bad(String),
    /// The peer closed the TCP connection (or it failed).
    Eof,
}

/// Reads frames until EOF, starting with the bytes that followed the opening handshake.
pub(crate) async fn read_frames<R: AsyncRead + Unpin>(
    mut rd: R,
    mut buf: BytesMut,
    tx: UnboundedSender<Input>,
) {
    if !buf.is_empty() {
        let head = Bytes::copy_from_slice(&buf[..buf.len().min(LOG_PREFIX)]);
        let _ = tx.send(Input::Octets(buf.len(), head));
    }
    loop {
        loop {
            match FrameHeader::decode(&buf) {
                Err(e) => {
                    let _ = tx.send(Input::Bad(e.to_string()));
                    return;
                }
                Ok(None) => break,
                Ok(Some((header, header_len))) => {
                    if header.payload_len > MAX_INCOMING_FRAME {
                        let _ = tx.send(Input::Bad(format!(
                            "frame of {} bytes is larger than the fuzzer accepts",
                            header.payload_len
                        )));
                        return;
                    }
                    let total = header_len + header.payload_len as usize;
                    if buf.len() < total {
                        buf.reserve(total - buf.len());
                        break;
                    }
                    let mut frame = buf.split_to(total);
                    let mut payload = frame.split_off(header_len);
                    if let Some(key) = header.mask {
                        apply_mask(&mut payload, key, 0);
                    }
                    let frame = RxFrame {
                        header,
                        payload: payload.freeze(),
                    };
                    if tx.send(Input::Frame(frame)).is_err() {
                        return;
                    }
                }
            }
        }
        if buf.capacity() - buf.len() < 16 << 10 {
            buf.reserve(64 << 10);
        }
        let before = buf.len();
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(Input::Eof);
                return;
            }
            Ok(n) => {
                let head = Bytes::copy_from_slice(&buf[before..before + n.min(LOG_PREFIX)]);
                if tx.send(Input::Octets(n, head)).is_err() {
                    return;
                }
            }
        }
    }
}

/// Autobahn's wire log: a list of tagged entries (`RO`/`TO` raw octets received/sent,
/// `RF`/`TF` frames, `CT`/`CTE` waits, `KL`/`KLE` kill timers, `TI`/`TIE` close timers, `WLM`
/// logging switched on or off).
#[derive(Debug, Default)]
pub(crate) struct WireLog {
    pub entries: Vec<Value>,
    pub off: bool,
}

impl WireLog {
    fn push(&mut self, entry: Value) {
        if !self.off {
            self.entries.push(entry);
        }
    }

    /// Switches logging on or off (always recorded).
    pub fn enable(&mut self, on: bool) {
        if self.off == on {
            self.off = !on;
            self.entries.push(json!(["WLM", on]));
        }
    }

    pub fn rx_octets(&mut self, len: usize, head: &[u8]) {
        self.push(json!(["RO", [len, hex_prefix(head, len)]]));
    }

    pub fn tx_octets(&mut self, data: &[u8], sync: bool) {
        self.push(json!([
            "TO",
            [data.len(), hex_prefix(data, data.len())],
            sync
        ]));
    }

    pub fn rx_frame(&mut self, f: &RxFrame) {
        self.push(json!([
            "RF",
            [f.payload.len(), payload_repr(&f.payload)],
            f.header.opcode.bits(),
            f.header.fin,
            f.header.rsv,
            f.header.mask.is_some(),
            f.header.mask.map(|m| hex(&m)),
        ]));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tx_frame(
        &mut self,
        payload: &[u8],
        opcode: u8,
        fin: bool,
        rsv: u8,
        mask: Option<[u8; 4]>,
        chop: Option<usize>,
        sync: bool,
    ) {
        self.push(json!([
            "TF",
            [payload.len(), payload_repr(payload)],
            opcode,
            fin,
            rsv,
            mask.map(|m| hex(&m)),
            Value::Null,
            chop,
            sync,
        ]));
    }

    pub fn note(&mut self, entry: Value) {
        self.push(entry);
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_prefix(head: &[u8], total: usize) -> String {
    let shown = &head[..head.len().min(LOG_PREFIX)];
    if total > LOG_PREFIX {
        format!("{} ...", hex(shown))
    } else {
        hex(shown)
    }
}

/// A payload for the log or the report: text when it is short valid UTF-8, `0x`-hex otherwise,
/// cut at 256 bytes with " ..." appended.
pub(crate) fn payload_repr(payload: &[u8]) -> String {
    let shown = &payload[..payload.len().min(LOG_PREFIX)];
    let more = if payload.len() > LOG_PREFIX {
        " ..."
    } else {
        ""
    };
    match std::str::from_utf8(shown) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s}{more}"),
        _ => format!("0x{}{more}", hex(shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_back_with_the_proto_codec() {
        let mut out = Vec::new();
        encode_frame(&mut out, 0x5, false, 0b011, b"Hello", Some([1, 2, 3, 4]));
        let (h, n) = FrameHeader::decode(&out).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Reserved(5));
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b011);
        let mut payload = out[n..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn payloads_are_shown_as_text_or_hex() {
        assert_eq!(payload_repr(b"Hello"), "Hello");
        assert_eq!(payload_repr(&[0x03, 0xe8]), "0x03e8");
        assert!(payload_repr(&[b'*'; 300]).ends_with("* ..."));
    }

    #[tokio::test]
    async fn reader_splits_frames_across_reads() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, 0x1, true, 0, b"one", None);
        encode_frame(&mut wire, 0x9, true, 0, b"two", Some([9, 8, 7, 6]));
        let (client, mut server) = tokio::io::duplex(64);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(read_frames(client, BytesMut::new(), tx));
        use tokio::io::AsyncWriteExt;
        for byte in &wire {
            server.write_all(&[*byte]).await.unwrap();
        }
        drop(server);
        let mut payloads = Vec::new();
        while let Some(input) = rx.recv().await {
            match input {
                Input::Frame(f) => payloads.push(f.payload),
                Input::Eof => break,
                Input::Octets(..) => {}
                Input::Bad(e) => panic!("{e}"),
            }
        }
        task.await.unwrap();
        assert_eq!(payloads, [&b"one"[..], &b"two"[..]]);
    }
}
