//! Structure-aware: valid-looking client frame sequences fed to a server `Connection`.
//!
//! The input is a [`Plan`] (via `arbitrary`): messages (text or binary), each cut into
//! fragments with pings between them, optionally compressed with permessage-deflate, maybe a
//! close at the end, and the split points of the byte stream. The frames are encoded as a
//! client would, either by a client `Connection` (`send`, `send_fragment`, `send_ping`,
//! `close_with`) or by hand with `FrameHeader`, `apply_mask` and a deflate `Codec`. The server
//! reads the stream in the planned pieces.
//!
//! Invariants, as sent: the server's events are exactly the sent pings, messages (equal to the
//! ones sent) and close, in order, with no error; a pong with each ping's payload comes out, in
//! order, then the close echo. With one byte flipped (the plan's `flip`): nothing panics; an
//! error carries close code 1002, 1007 or 1009 and its close frame is queued; every event that
//! ended before the flipped byte is still exactly as sent; every ping seen is answered.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{Peer, deflate_params, pieces, step};
use tolqin_proto::close::{CloseFrame, MAX_REASON_LEN, truncate_utf8};
use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams};
use tolqin_proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use tolqin_proto::mask::apply_mask;
use tolqin_proto::{CloseCode, Config, Connection, Event, Message, Role, State};

#[derive(Debug, Arbitrary)]
struct Plan {
    /// Encode with a client `Connection` (true) or by hand (false).
    use_connection: bool,
    deflate: Option<Deflate>,
    /// The client connection's `write_frame_size` (0: the default).
    write_frame_size: u8,
    messages: Vec<Msg>,
    close: Option<Close>,
    /// Sizes of the pieces the server reads (none: all at once).
    splits: Vec<u8>,
    /// Flip a byte: position (modulo the stream length) and the bits to flip.
    flip: Option<(u32, u8)>,
    /// Seed of the hand-made masking keys.
    mask_seed: [u8; 4],
}

#[derive(Debug, Arbitrary)]
struct Deflate {
    flags: u8,
    bits: u8,
    level: u8,
    threshold: u8,
}

#[derive(Debug, Arbitrary)]
enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Msg {
    payload: Payload,
    /// Compress it (when deflate is negotiated and the codec agrees).
    compress: bool,
    /// Fragment sizes, cycled; none: one frame. (Ignored for `send` of a compressed message,
    /// which fragments by `write_frame_size`.)
    cuts: Vec<u8>,
    pings: Vec<Ping>,
}

#[derive(Debug, Arbitrary)]
struct Ping {
    /// Sent before this fragment (modulo the fragment count plus one: after the last).
    before: u8,
    payload: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Close {
    code: u16,
    reason: String,
    /// A close frame with no body (code 1005 on receipt).
    empty: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Ping(Bytes),
    Message(Message),
    Close(CloseFrame),
}

/// The most fragments a message is cut into by hand.
const MAX_FRAGMENTS: usize = 64;

/// The frames being written, and what the server must see, with the stream offset at which
/// each expected event is complete.
struct Writer {
    stream: Vec<u8>,
    expected: Vec<(Expect, usize)>,
    frames: u32,
    mask_seed: [u8; 4],
}

impl Writer {
    /// Hand encoding of one client frame.
    fn frame(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        let n = self.frames.to_le_bytes();
        self.frames = self.frames.wrapping_add(1);
        let key = [
            self.mask_seed[0] ^ n[0],
            self.mask_seed[1].wrapping_add(n[0]),
            self.mask_seed[2] ^ n[1],
            self.mask_seed[3],
        ];
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv = rsv;
        header.mask = Some(key);
        let mut head = [0u8; MAX_HEADER_LEN];
        let len = header.encode(&mut head);
        self.stream.extend_from_slice(&head[..len]);
        let at = self.stream.len();
        self.stream.extend_from_slice(payload);
        apply_mask(&mut self.stream[at..], key, 0);
    }

    fn append(&mut self, bytes: Vec<u8>) {
        self.stream.extend_from_slice(&bytes);
    }

    fn expect(&mut self, event: Expect) {
        self.expected.push((event, self.stream.len()));
    }
}

/// Cuts `payload` into fragments of the planned sizes (at least one fragment).
fn fragments<'a>(payload: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    if cuts.is_empty() {
        return vec![payload];
    }
    let mut out = Vec::new();
    let mut at = 0;
    for i in 0.. {
        if out.len() + 1 == MAX_FRAGMENTS {
            out.push(&payload[at..]);
            break;
        }
        let end = payload.len().min(at + usize::from(cuts[i % cuts.len()]));
        out.push(&payload[at..end]);
        at = end;
        if at == payload.len() {
            break;
        }
    }
    out
}

fn ping_payload(ping: &Ping) -> Bytes {
    Bytes::copy_from_slice(&ping.payload[..ping.payload.len().min(MAX_CONTROL_PAYLOAD)])
}

fn close_frame(close: &Close) -> CloseFrame {
    if close.empty {
        return CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: Default::default(),
        };
    }
    const CODES: [u16; 9] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011];
    let code = match usize::from(close.code % 16) {
        i if i < CODES.len() => CODES[i],
        _ => 3000 + close.code % 2000,
    };
    CloseFrame {
        code: CloseCode(code),
        reason: truncate_utf8(&close.reason, MAX_REASON_LEN).into(),
    }
}

fn matches(event: &Event, expected: &Expect) -> bool {
    match (event, expected) {
        (Event::Ping(a), Expect::Ping(b)) => a == b,
        (Event::Message(a), Expect::Message(b)) => a == b,
        (Event::Close(a), Expect::Close(b)) => a == b,
        _ => false,
    }
}

fuzz_target!(|plan: Plan| {
    let params: Option<DeflateParams> = plan
        .deflate
        .as_ref()
        .map(|d| deflate_params(d.flags, d.bits));
    let deflate_config = plan
        .deflate
        .as_ref()
        .map(|d| {
            DeflateConfig::default()
                .with_level(u32::from(d.level % 10))
                // The rest of the byte: memory levels 1-9.
                .with_mem_level(1 + (d.level / 10) % 9)
                .with_threshold(usize::from(d.threshold))
        })
        .unwrap_or_else(DeflateConfig::disabled);
    // The 101 both ends were configured from.
    let mut response = http::Response::new(());
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    if let Some(p) = &params {
        let value =
            http::HeaderValue::try_from(p.to_extension().to_header_string()).expect("token header");
        response
            .headers_mut()
            .insert("sec-websocket-extensions", value);
    }

    let mut client_config = Config::default().with_deflate(deflate_config.clone());
    if plan.write_frame_size > 0 {
        client_config = client_config.with_write_frame_size(usize::from(plan.write_frame_size));
    }
    let mut client = Connection::from_response(Role::Client, client_config, &response);
    let mut codec = params.map(|p| Codec::new(Role::Client, p, &deflate_config));
    let mut w = Writer {
        stream: Vec::new(),
        expected: Vec::new(),
        frames: 0,
        mask_seed: plan.mask_seed,
    };

    for msg in &plan.messages {
        let (opcode, message) = match &msg.payload {
            Payload::Text(s) => (OpCode::Text, Message::text(s.as_str())),
            Payload::Binary(b) => (OpCode::Binary, Message::binary(b.clone())),
        };
        let payload = Bytes::copy_from_slice(message.as_bytes());
        if plan.use_connection {
            if msg.compress {
                // `send`: compressed if the codec agrees, fragmented by write_frame_size.
                for ping in msg.pings.iter().filter(|p| p.before % 2 == 0) {
                    client.send_ping(ping_payload(ping)).expect("open");
                    w.append(client.data_to_send());
                    w.expect(Expect::Ping(ping_payload(ping)));
                }
                client.send(message.clone()).expect("open");
                w.append(client.data_to_send());
                w.expect(Expect::Message(message));
                for ping in msg.pings.iter().filter(|p| p.before % 2 == 1) {
                    client.send_ping(ping_payload(ping)).expect("open");
                    w.append(client.data_to_send());
                    w.expect(Expect::Ping(ping_payload(ping)));
                }
            } else {
                let parts = fragments(&payload, &msg.cuts);
                for i in 0..=parts.len() {
                    for ping in msg
                        .pings
                        .iter()
                        .filter(|p| usize::from(p.before) % (parts.len() + 1) == i)
                    {
                        client.send_ping(ping_payload(ping)).expect("open");
                        w.append(client.data_to_send());
                        w.expect(Expect::Ping(ping_payload(ping)));
                    }
                    if let Some(part) = parts.get(i) {
                        let op = if i == 0 { opcode } else { OpCode::Continuation };
                        let fin = i + 1 == parts.len();
                        client
                            .send_fragment(op, payload.slice_ref(part), fin)
                            .expect("open");
                        w.append(client.data_to_send());
                        if fin {
                            w.expect(Expect::Message(message.clone()));
                        }
                    }
                }
            }
        } else {
            let compressed = match (&mut codec, msg.compress) {
                (Some(codec), true) => codec.compress(&payload),
                _ => None,
            };
            let (body, rsv) = match &compressed {
                Some(c) => (&c[..], 0b100),
                None => (&payload[..], 0),
            };
            let parts = fragments(body, &msg.cuts);
            for i in 0..=parts.len() {
                for ping in msg
                    .pings
                    .iter()
                    .filter(|p| usize::from(p.before) % (parts.len() + 1) == i)
                {
                    w.frame(true, 0, OpCode::Ping, &ping_payload(ping));
                    w.expect(Expect::Ping(ping_payload(ping)));
                }
                if let Some(part) = parts.get(i) {
                    let (op, rsv) = if i == 0 {
                        (opcode, rsv)
                    } else {
                        (OpCode::Continuation, 0)
                    };
                    let fin = i + 1 == parts.len();
                    w.frame(fin, rsv, op, part);
                    if fin {
                        w.expect(Expect::Message(message.clone()));
                    }
                }
            }
        }
    }
    if let Some(close) = &plan.close {
        let frame = close_frame(close);
        if plan.use_connection {
            client
                .close_with(frame.code, frame.reason.as_str())
                .expect("open");
            w.append(client.data_to_send());
        } else {
            w.frame(true, 0, OpCode::Close, &frame.encode());
        }
        w.expect(Expect::Close(frame));
    }

    let mut stream = w.stream;
    let flip_at = match plan.flip {
        Some((at, bits)) if bits != 0 && !stream.is_empty() => {
            let at = at as usize % stream.len();
            stream[at] ^= bits;
            Some(at)
        }
        _ => None,
    };

    let server_config = Config::default()
        .with_max_frame_size(1 << 20)
        .with_max_message_size(1 << 20);
    let mut server = Connection::from_response(Role::Server, server_config, &response);
    let mut peer = Peer::of(Role::Server);
    let mut events: Vec<Event> = Vec::new();
    let mut pings = Vec::new();
    let sizes: Vec<usize> = plan.splits.iter().map(|&s| usize::from(s)).collect();
    'feed: for piece in pieces(&stream, &sizes) {
        server.receive(piece);
        loop {
            let before = events.len();
            step(&mut server, &mut events);
            if events.len() == before {
                break;
            }
            // Take the answers after each event, so no pong is ever superseded.
            for event in &events[before..] {
                if let Event::Ping(p) = event {
                    pings.push(p.clone());
                }
                peer.read(&server.data_to_send());
                match event {
                    Event::Error(err) => {
                        let close = peer.close.as_ref().expect("a close frame after an error");
                        assert_eq!(close.code, err.close_code());
                        assert!(flip_at.is_some(), "error on a valid stream: {err:?}");
                        break 'feed;
                    }
                    Event::Close(frame) => {
                        assert_eq!(peer.close.as_ref(), Some(frame), "the close echo");
                        break 'feed;
                    }
                    _ => {}
                }
            }
        }
    }
    assert_eq!(peer.pongs, pings, "every ping answered, in order");

    match flip_at {
        None => {
            let got: Vec<_> = events.iter().map(|e| format!("{e:?}")).collect();
            assert_eq!(events.len(), w.expected.len(), "events {got:?}");
            for (event, (expected, _)) in events.iter().zip(&w.expected) {
                assert!(matches(event, expected), "got {event:?}, sent {expected:?}");
            }
            let closed = plan.close.is_some();
            assert_eq!(
                server.state(),
                if closed { State::Closed } else { State::Open }
            );
        }
        Some(at) => {
            for (i, (event, (expected, end))) in events.iter().zip(&w.expected).enumerate() {
                if *end <= at {
                    assert!(
                        matches(event, expected),
                        "event {i} ended before the flipped byte {at}: got {event:?}, sent {expected:?}"
                    );
                }
            }
        }
    }
});
