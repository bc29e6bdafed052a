//! The generator's own minimal WebSocket client side: one handshake prepared once, the masked
//! frames encoded once, and replies parsed by their headers only.
//!
//! Nothing here is a general-purpose WebSocket stack, on purpose: the generator must spend less
//! CPU per message than the servers it drives, so it never unmasks, validates, copies or
//! reassembles a reply. It reads the frame header, skips the payload and counts the message.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tolqin::proto::Config;
use tolqin::proto::deflate::{Codec, DeflateConfig};
use tolqin::proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin::proto::handshake::{ClientHandshake, ClientRequest, parse_response};
use tolqin::proto::mask::apply_mask;
use tolqin::proto::{Role, deflate};

/// The opening handshake, encoded once and sent unchanged on every connection.
///
/// Reusing one `Sec-WebSocket-Key` is fine for a load generator: the server cannot tell, and
/// the handshake then costs the generator one write, one read and one header parse.
pub struct Handshake {
    handshake: ClientHandshake,
    request: Vec<u8>,
    config: Config,
    deflate: Option<DeflateConfig>,
}

/// What a completed handshake agreed to.
pub struct Opened {
    /// The connected stream.
    pub stream: TcpStream,
    /// Bytes after the response head: already WebSocket frames.
    pub leftover: Vec<u8>,
    /// The permessage-deflate parameters, if the server accepted the offer.
    pub deflate: Option<deflate::DeflateParams>,
}

impl Handshake {
    /// Prepares the request for `uri`, offering permessage-deflate only if `offer_deflate`.
    pub fn new(uri: http::Uri, offer_deflate: bool) -> io::Result<Self> {
        let mut request = ClientRequest::new(uri).map_err(invalid)?;
        let deflate = offer_deflate.then(|| {
            // Without client context takeover every message compresses the same way, so the
            // compressed frame can be prepared once too.
            DeflateConfig::default().with_no_context_takeover(true, false)
        });
        if let Some(d) = &deflate {
            request = request.extension(d.offer());
        }
        let handshake = request.build().map_err(invalid)?;
        let mut bytes = Vec::new();
        handshake.encode(&mut bytes);
        Ok(Handshake {
            handshake,
            request: bytes,
            config: Config::default(),
            deflate,
        })
    }

    /// Connects to `addr` and runs the opening handshake.
    pub async fn open(&self, addr: std::net::SocketAddr) -> io::Result<Opened> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&self.request).await?;
        let mut buf = Vec::with_capacity(512);
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the handshake",
                ));
            }
            if let Some((response, head_len)) =
                parse_response(&buf, &self.config).map_err(invalid)?
            {
                let accepted = self.handshake.verify(&response).map_err(invalid)?;
                let deflate = match (&self.deflate, accepted.extensions.first()) {
                    (Some(d), Some(ext)) => Some(d.verify_response(ext).map_err(invalid)?),
                    _ => None,
                };
                buf.drain(..head_len);
                return Ok(Opened {
                    stream,
                    leftover: buf,
                    deflate,
                });
            }
        }
    }

    /// The deflate configuration offered, if any.
    pub fn deflate_config(&self) -> Option<&DeflateConfig> {
        self.deflate.as_ref()
    }
}

/// The masked client frames a connection sends, encoded once and laid out back to back as a
/// ring: after frame `i` comes frame `i + 1`, after the last the first. Any run of queued
/// frames is then one contiguous slice (two at the wrap), written without encoding anything.
pub struct Frames {
    /// The frames, in ring order.
    pub bytes: Vec<u8>,
    /// The length of each frame, header included, in ring order.
    pub lens: Vec<usize>,
    /// Mean payload bytes of one frame as sent (compressed, with deflate).
    pub sent_payload_mean: f64,
}

impl Frames {
    /// Encodes one frame per payload, compressed if `deflate` is given, and repeats the
    /// sequence until the ring holds at least `copies` frames.
    pub fn new(
        payloads: &[Vec<u8>],
        text: bool,
        copies: usize,
        deflate: Option<(&deflate::DeflateParams, &DeflateConfig)>,
    ) -> Self {
        let key: [u8; 4] = rand_key();
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        // With client_no_context_takeover each message compresses on its own: the codec
        // resets after every one, so preparing them in advance changes nothing on the wire.
        let mut codec = deflate.map(|(params, config)| Codec::new(Role::Client, *params, config));
        let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(payloads.len().max(1));
        let mut payload_total = 0usize;
        for plain in payloads {
            let mut rsv = 0;
            let mut payload = match codec.as_mut().and_then(|c| c.compress(plain)) {
                Some(compressed) => {
                    rsv = 0b100; // RFC 7692 6: RSV1 marks a compressed message
                    compressed.to_vec()
                }
                None => plain.clone(),
            };
            payload_total += payload.len();
            let mut header = FrameHeader::new(opcode, payload.len() as u64);
            header.rsv = rsv;
            header.mask = Some(key);
            let mut head = [0u8; MAX_HEADER_LEN];
            let head_len = header.encode(&mut head);
            apply_mask(&mut payload, key, 0);
            let mut frame = head[..head_len].to_vec();
            frame.extend_from_slice(&payload);
            encoded.push(frame);
        }
        let reps = copies.max(1).div_ceil(encoded.len().max(1));
        let total: usize = encoded.iter().map(Vec::len).sum::<usize>() * reps;
        let mut bytes = Vec::with_capacity(total);
        let mut lens = Vec::with_capacity(encoded.len() * reps);
        for _ in 0..reps {
            for f in &encoded {
                bytes.extend_from_slice(f);
                lens.push(f.len());
            }
        }
        Frames {
            bytes,
            lens,
            sent_payload_mean: payload_total as f64 / payloads.len().max(1) as f64,
        }
    }

    /// The longest frame.
    pub fn max_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }
}

/// A masking key from the process's randomness (std's hasher seeds), no RNG crate needed.
fn rand_key() -> [u8; 4] {
    use std::hash::{BuildHasher, RandomState};
    let v = RandomState::new().hash_one(std::time::SystemTime::now());
    (v as u32).to_ne_bytes()
}

/// What one call to [`ReplyParser::feed`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replies {
    /// Complete data messages (a data frame or a final continuation frame).
    pub messages: u64,
    /// Messages whose payload length differed from the expected one.
    pub wrong_length: u64,
    /// Payload bytes of those messages as they came (compressed, with deflate).
    pub payload_bytes: u64,
    /// The server sent a close frame.
    pub closed: bool,
}

/// Counts replies from the frame headers alone; payload bytes are skipped, never looked at.
pub struct ReplyParser {
    head: [u8; MAX_HEADER_LEN],
    head_len: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// The current frame ends a data message.
    ends_message: bool,
    control: bool,
    close: bool,
    /// Payload bytes of the current message so far.
    message_len: u64,
    /// The length every echoed message must have, if checked.
    expect_len: Option<u64>,
}

impl ReplyParser {
    /// A parser expecting replies of `expect_len` payload bytes (`None`: not checked).
    pub fn new(expect_len: Option<u64>) -> Self {
        ReplyParser {
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            skip: 0,
            ends_message: false,
            control: false,
            close: false,
            message_len: 0,
            expect_len,
        }
    }

    /// Consumes `data`, counting the messages it completes.
    pub fn feed(&mut self, mut data: &[u8]) -> io::Result<Replies> {
        let mut out = Replies::default();
        loop {
            if self.skip > 0 {
                let k = (self.skip.min(data.len() as u64)) as usize;
                data = &data[k..];
                self.skip -= k as u64;
                if self.skip > 0 {
                    return Ok(out);
                }
                self.end_frame(&mut out);
                continue;
            }
            if data.is_empty() {
                return Ok(out);
            }
            let decoded = if self.head_len == 0 {
                match FrameHeader::decode(data).map_err(invalid)? {
                    Some((h, n)) => {
                        data = &data[n..];
                        Some(h)
                    }
                    None => {
                        self.head[..data.len()].copy_from_slice(data);
                        self.head_len = data.len();
                        return Ok(out);
                    }
                }
            } else {
                let take = (MAX_HEADER_LEN - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
                let have = self.head_len + take;
                match FrameHeader::decode(&self.head[..have]).map_err(invalid)? {
                    Some((h, n)) => {
                        data = &data[n - self.head_len..];
                        self.head_len = 0;
                        Some(h)
                    }
                    None => {
                        self.head_len = have;
                        return Ok(out);
                    }
                }
            };
            if let Some(h) = decoded {
                self.start_frame(&h);
                if self.skip == 0 {
                    self.end_frame(&mut out);
                }
            }
        }
    }

    fn start_frame(&mut self, h: &FrameHeader) {
        self.skip = h.payload_len;
        self.control = h.opcode.is_control();
        self.close = h.opcode == OpCode::Close;
        if !self.control {
            if h.opcode != OpCode::Continuation {
                self.message_len = 0;
            }
            self.message_len += h.payload_len;
            self.ends_message = h.fin;
        }
    }

    fn end_frame(&mut self, out: &mut Replies) {
        if self.control {
            // Pings are not answered: the servers benchmarked do not send them under load.
            out.closed |= self.close;
            return;
        }
        if self.ends_message {
            out.messages += 1;
            out.payload_bytes += self.message_len;
            if self.expect_len.is_some_and(|e| e != self.message_len) {
                out.wrong_length += 1;
            }
            self.ends_message = false;
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_and_batched_replies() {
        // Two unmasked 3-byte binary messages, then a fragmented one, then a close.
        let mut wire = vec![0x82, 3, 1, 2, 3, 0x82, 3, 4, 5, 6];
        wire.extend_from_slice(&[0x02, 1, 7, 0x80, 2, 8, 9]);
        wire.extend_from_slice(&[0x88, 0]);
        for cut in 0..wire.len() {
            let mut p = ReplyParser::new(Some(3));
            let a = p.feed(&wire[..cut]).unwrap();
            let b = p.feed(&wire[cut..]).unwrap();
            assert_eq!(a.messages + b.messages, 3, "cut {cut}");
            assert_eq!(a.wrong_length + b.wrong_length, 0, "cut {cut}");
            assert!(b.closed, "cut {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_with_long_header() {
        let mut wire = vec![0x82, 0x7e, 0x01, 0x00];
        wire.extend(std::iter::repeat_n(0u8, 256));
        let mut p = ReplyParser::new(Some(256));
        let mut n = 0;
        for b in &wire {
            n += p.feed(std::slice::from_ref(b)).unwrap().messages;
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn masked_echo_of_our_own_frames_parses() {
        let frames = Frames::new(&[vec![b'a'; 20]], true, 4, None);
        assert_eq!(frames.lens, [26; 4]); // 2 header bytes, 4 of mask key, 20 of payload
        let mut p = ReplyParser::new(Some(20));
        let r = p.feed(&frames.bytes).unwrap();
        assert_eq!((r.messages, r.wrong_length, r.payload_bytes), (4, 0, 80));
        // The frames unmask to the payload.
        let (h, n) = FrameHeader::decode(&frames.bytes).unwrap().unwrap();
        let mut payload = frames.bytes[n..frames.lens[0]].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert!(std::str::from_utf8(&payload).is_ok());
    }

    #[test]
    fn a_ring_of_compressed_frames_inflates_to_its_payloads() {
        let config = DeflateConfig::default().with_no_context_takeover(true, false);
        let params = deflate::DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; 100 + i as usize]).collect();
        let frames = Frames::new(&payloads, true, 1, Some((&params, &config)));
        assert_eq!(frames.lens.len(), 3);
        let mut server = Codec::new(Role::Server, params, &config);
        let mut at = 0;
        for (len, plain) in frames.lens.iter().zip(&payloads) {
            let frame = &frames.bytes[at..at + len];
            let (h, n) = FrameHeader::decode(frame).unwrap().unwrap();
            assert_eq!(h.rsv, 0b100, "RSV1 set");
            let mut payload = frame[n..].to_vec();
            apply_mask(&mut payload, h.mask.unwrap(), 0);
            let mut out = Vec::new();
            server.inflate(&payload, true, 1 << 20, &mut out).unwrap();
            assert_eq!(&out, plain);
            at += len;
        }
        assert!(
            frames.sent_payload_mean < 20.0,
            "{}",
            frames.sent_payload_mean
        );
    }
}
