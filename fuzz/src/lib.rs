//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every assertion in a target is an invariant of `tolqin-proto`: a failing one is a crash that
//! libFuzzer reports and saves.

use bytes::Bytes;
use tolqin_proto::connection::ProtocolError;
use tolqin_proto::deflate::{DeflateConfig, DeflateParams};
use tolqin_proto::handshake::{self, ClientHandshake, ClientRequest, Extension};
use tolqin_proto::{CloseCode, Config, Connection, Event, Role, State};

/// The `Sec-WebSocket-Key` of RFC 6455 1.3, used by every handshake the targets build.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Reads bytes from the front of the fuzz input, then zeros when it runs out.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next byte, or 0 at the end.
    pub fn byte(&mut self) -> u8 {
        match self.0 {
            [first, rest @ ..] => {
                self.0 = rest;
                *first
            }
            [] => 0,
        }
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Cuts `data` into pieces whose sizes cycle through `sizes` (a size of 0 means 1); no sizes
/// give the whole input in one piece.
pub fn pieces<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].max(1);
        let end = data.len().min(at + n);
        out.push(&data[at..end]);
        at = end;
        i += 1;
    }
    out
}

/// RFC 6455 7.4.1: the only close codes a protocol error may call for.
pub fn assert_error_code(err: &ProtocolError) -> CloseCode {
    let code = err.close_code();
    assert!(
        matches!(code.0, 1002 | 1007 | 1009),
        "protocol error {err:?} mapped to close code {code}"
    );
    code
}

/// Window bits 8-15 from a byte.
pub fn window_bits(byte: u8) -> u8 {
    8 + byte % 8
}

/// A permessage-deflate configuration chosen by two bytes.
pub fn deflate_config(flags: u8, bits: u8) -> DeflateConfig {
    DeflateConfig::default()
        .with_max_window_bits(window_bits(bits), window_bits(bits >> 4))
        .with_no_context_takeover(flags & 1 != 0, flags & 2 != 0)
        .with_level(u32::from(flags >> 2) % 10)
        .with_threshold(usize::from(flags >> 6) * 16)
}

/// Negotiated parameters chosen by two bytes.
pub fn deflate_params(flags: u8, bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: flags & 1 != 0,
        client_no_context_takeover: flags & 2 != 0,
        server_max_window_bits: window_bits(bits),
        client_max_window_bits: window_bits(bits >> 4),
    }
}

/// A client handshake with a fixed key, offering two subprotocols and, if `deflate` is given,
/// its permessage-deflate offer.
pub fn client_handshake(deflate: Option<&DeflateConfig>) -> ClientHandshake {
    let mut request = ClientRequest::new("ws://example.com/chat".parse().expect("valid URI"))
        .expect("valid request")
        .key(KEY)
        .protocol("chat")
        .protocol("superchat");
    if let Some(deflate) = deflate {
        request = request.extension(deflate.offer());
    }
    request.build().expect("valid handshake")
}

/// The server's `101` answer to [`client_handshake`], with `extensions` accepted.
pub fn accept_response(extensions: &[Extension]) -> Vec<u8> {
    let mut response = http::Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header(
            "sec-websocket-accept",
            handshake::derive_accept_key(KEY.as_bytes()),
        )
        .body(())
        .expect("valid response");
    for ext in extensions {
        response.headers_mut().append(
            "sec-websocket-extensions",
            http::HeaderValue::try_from(ext.to_header_string()).expect("token header"),
        );
    }
    let mut out = Vec::new();
    handshake::encode_response(&response, &mut out);
    out
}

/// Takes the next event the connection can produce now, if any, into `events`, checking the
/// invariants every event obeys: a protocol error carries 1002, 1007 or 1009, queues a close
/// frame and closes the connection; nothing follows an error or a close. One event at a time,
/// so that the caller can take what the connection answers to each (at most 32 unsent pongs
/// are kept: a peer that floods pings without reading loses the oldest, by design).
pub fn step(conn: &mut Connection, events: &mut Vec<Event>) {
    if let Some(event) = conn.next_event() {
        check_event(conn, event, events);
    }
}

/// [`step`] through `Connection::next_event_with`: every message buffered is lent to a handler
/// (checked against the limit and recorded as an `Event::Message`; echoed with `send_ref` when
/// `echo`), then the next other event is checked as `step` does.
pub fn step_lending(conn: &mut Connection, events: &mut Vec<Event>, echo: bool) {
    let max_message = conn.config().max_message_size;
    let mut lent = Vec::new();
    let next = conn.next_event_with(|m, out| {
        assert!(m.len() <= max_message, "message over the limit");
        assert_text_valid(m);
        lent.push(Event::Message(m.to_message()));
        if echo {
            // Refused once our close frame is queued, which is right.
            let _ = out.send_ref(m);
        }
        Ok::<_, std::convert::Infallible>(())
    });
    events.append(&mut lent);
    if let Ok(Some(event)) = next {
        assert!(
            !matches!(event, Event::Message(_)),
            "a message returned, not lent"
        );
        check_event(conn, event, events);
    }
}

/// The invariants of one event, which is then recorded.
fn check_event(conn: &mut Connection, event: Event, events: &mut Vec<Event>) {
    let max_message = conn.config().max_message_size;
    match &event {
        Event::Error(err) => {
            assert_error_code(err);
            assert_eq!(conn.state(), State::Closed, "after {err:?}");
            assert!(conn.close_sent(), "a close frame is queued after {err:?}");
        }
        Event::HandshakeFailed(_) => assert_eq!(conn.state(), State::Closed),
        Event::Message(m) => {
            assert!(m.len() <= max_message, "message over the limit");
            assert_text_valid(m.into());
        }
        Event::Close(frame) => {
            assert_eq!(conn.state(), State::Closed);
            assert_str_valid(&frame.reason);
        }
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125, "control payload"),
        _ => {}
    }
    let last = matches!(
        event,
        Event::Error(_) | Event::Close(_) | Event::HandshakeFailed(_)
    );
    events.push(event);
    if last {
        assert!(
            conn.next_event().is_none(),
            "an event after the connection ended"
        );
    }
}

/// The bytes of a text message are valid UTF-8 by the standard library's own check: what every
/// `&str` tolqin-proto hands out (some through `from_utf8_unchecked`) must satisfy.
pub fn assert_text_valid(message: tolqin_proto::MessageRef<'_>) {
    if let tolqin_proto::MessageRef::Text(text) = message {
        assert_str_valid(text);
    }
}

/// [`assert_text_valid`] for one string.
pub fn assert_str_valid(text: &str) {
    assert!(
        std::str::from_utf8(text.as_bytes()).is_ok(),
        "a text of invalid UTF-8: {:02x?}",
        text.as_bytes()
    );
}

/// A connection of the other role that reads everything the connection under test sends
/// after its handshake, and fails the target if that is not a valid frame stream.
pub struct Peer {
    conn: Connection,
    /// Pongs received, in order.
    pub pongs: Vec<Bytes>,
    /// The close frame received, if any.
    pub close: Option<tolqin_proto::close::CloseFrame>,
    /// Data messages received.
    pub messages: usize,
}

impl Peer {
    /// A peer reading what a connection with `role` sends.
    pub fn of(role: Role) -> Self {
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Peer {
            conn: Connection::new(peer_role, Config::default().with_auto_pong(false)),
            pongs: Vec::new(),
            close: None,
            messages: 0,
        }
    }

    /// A peer reading what a connection with `role` sends once the handshake answered with
    /// `response` is done: with its permessage-deflate, if negotiated there, so that it can
    /// read compressed messages (echoes of compressed messages are compressed).
    pub fn negotiated(role: Role, response: &http::Response<()>) -> Self {
        let mut peer = Peer::of(role);
        peer.conn = Connection::from_response(
            peer.conn.role(),
            Config::default().with_auto_pong(false),
            response,
        );
        peer
    }

    /// Reads `bytes` sent by the connection under test.
    pub fn read(&mut self, bytes: &[u8]) {
        assert!(
            self.close.is_none() || bytes.is_empty(),
            "bytes sent after a close frame: {bytes:02x?}"
        );
        self.conn.receive(bytes);
        while let Some(event) = self.conn.next_event() {
            match event {
                Event::Pong(p) => self.pongs.push(p),
                Event::Close(frame) => self.close = Some(frame),
                Event::Message(_) => self.messages += 1,
                Event::Ping(_) => {}
                Event::Error(err) => panic!("the connection sent an invalid frame: {err:?}"),
                other => panic!("unexpected event from our own output: {other:?}"),
            }
        }
    }
}

/// Connection in `role` after an opening handshake (built here, or taken from the fuzz input
/// when the mode byte says so), then fed the rest of the input as the peer's bytes, split as
/// the input says. Checks, besides [`step`]'s invariants: everything the connection sends is
/// a valid frame stream for the other role; every ping is answered by a pong with its payload;
/// an error queues a close frame with the error's code; a close is echoed; the handshake
/// answers are well-formed; `close_info` after EOF matches what happened. By the mode byte,
/// messages are lent (`next_event_with`, [`step_lending`]) instead of returned, and echoed.
pub fn run_connection(role: Role, data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte();
    let split = input.byte();
    let dflags = input.byte();
    let dbits = input.byte();
    let stream = input.rest();

    let mut config = Config::default();
    if mode & 1 != 0 {
        config = config
            .with_max_frame_size(256)
            .with_max_message_size(1024)
            .with_max_fragments(8);
    }
    let deflate = (mode & 2 != 0).then(|| deflate_config(dflags, dbits));
    config = config.with_deflate(deflate.clone().unwrap_or_else(DeflateConfig::disabled));
    // Bit 2: the fuzz input starts with the peer's handshake instead of a valid one.
    let raw = mode & 4 != 0;
    // Bit 3: messages are lent (`next_event_with`); bit 4 with it: and echoed by reference.
    let lend = mode & 8 != 0;
    let echo = mode & 16 != 0;
    let sizes = match split {
        0 => vec![],
        s => vec![usize::from(s & 0x3f) + 1, usize::from(s >> 6) * 50 + 1],
    };

    let handshake = client_handshake(deflate.as_ref());
    let mut conn = match role {
        Role::Server => Connection::server(config.clone()),
        Role::Client => Connection::client(handshake.clone(), config.clone()),
    };
    let mut open = false;
    let mut peer = Peer::of(role);
    let mut events = Vec::new();
    let mut expected_pongs: Vec<Bytes> = Vec::new();
    let mut ended = false;

    if role == Role::Client {
        let request = conn.data_to_send();
        assert!(request.starts_with(b"GET /chat HTTP/1.1\r\n"));
    }
    // The peer's side of a valid handshake, unless the input brings its own.
    let handshake_bytes = if raw {
        Vec::new()
    } else {
        match role {
            Role::Server => {
                let mut request = Vec::new();
                handshake.encode(&mut request);
                request
            }
            Role::Client => {
                // A server with this same configuration answers the client's offer.
                let offers = handshake::parse_extensions(
                    handshake
                        .request()
                        .headers()
                        .get_all("sec-websocket-extensions"),
                )
                .expect("own offer parses");
                let params = config
                    .deflate
                    .negotiate(&offers)
                    .expect("own offer is valid");
                let extensions: Vec<Extension> =
                    params.iter().map(DeflateParams::to_extension).collect();
                accept_response(&extensions)
            }
        }
    };

    let handshake_piece = (!raw).then_some(handshake_bytes.as_slice());
    for (i, piece) in handshake_piece
        .into_iter()
        .chain(pieces(stream, &sizes))
        .enumerate()
    {
        conn.receive(piece);
        loop {
            let before = events.len();
            if lend && open {
                step_lending(&mut conn, &mut events, echo);
            } else {
                step(&mut conn, &mut events);
            }
            if events.len() == before {
                break;
            }
            for event in &events[before..] {
                match event {
                    Event::Request(request) => {
                        assert!(!open);
                        let extensions: Vec<Extension> = request
                            .deflate
                            .iter()
                            .map(DeflateParams::to_extension)
                            .collect();
                        let protocol = request.valid.protocols.first().map(String::as_str);
                        conn.accept(request.valid.accept(protocol, &extensions))
                            .expect("a request is pending");
                        let response = conn.data_to_send();
                        let (parsed, n) = handshake::parse_response(&response, &Config::default())
                            .expect("own 101 parses")
                            .expect("own 101 is complete");
                        assert_eq!(n, response.len());
                        assert_eq!(parsed.status(), 101);
                        if !raw {
                            // Our own client accepts what our own server answered.
                            let accepted = handshake.verify(&parsed).expect("own 101 verifies");
                            if let (Some(offer), Some(ext)) =
                                (deflate.as_ref(), accepted.extensions.first())
                            {
                                offer
                                    .verify_response(ext)
                                    .expect("own deflate answer verifies");
                            }
                        }
                        peer = Peer::negotiated(role, &parsed);
                        open = true;
                    }
                    Event::Open(response) => {
                        assert!(!open);
                        peer = Peer::negotiated(role, response);
                        open = true;
                    }
                    Event::HandshakeFailed(err) => {
                        assert!(!open);
                        let out = conn.data_to_send();
                        if role == Role::Server {
                            // The HTTP error answer.
                            let (parsed, n) = handshake::parse_response(&out, &Config::default())
                                .expect("own error response parses")
                                .expect("own error response is complete");
                            assert_eq!(parsed.status(), err.status());
                            assert!(n <= out.len());
                        } else {
                            // A client whose handshake failed after a 101 sends close 1010.
                            peer.read(&out);
                            if let Some(close) = &peer.close {
                                assert_eq!(close.code, CloseCode::MANDATORY_EXTENSION);
                            }
                        }
                        ended = true;
                    }
                    Event::Ping(payload) => {
                        assert!(open);
                        expected_pongs.push(payload.clone());
                    }
                    Event::Pong(_) | Event::Message(_) => assert!(open),
                    Event::Error(err) => {
                        assert!(open);
                        let out = conn.data_to_send();
                        peer.read(&out);
                        let close = peer.close.as_ref().expect("a close frame after an error");
                        assert_eq!(close.code, err.close_code());
                        ended = true;
                    }
                    Event::Close(frame) => {
                        assert!(open);
                        let out = conn.data_to_send();
                        peer.read(&out);
                        assert_eq!(peer.close.as_ref(), Some(frame), "the close echo");
                        ended = true;
                    }
                    _ => {}
                }
                if open && !ended {
                    let out = conn.data_to_send();
                    peer.read(&out);
                }
            }
        }
        if i == 0 && !raw {
            // The valid handshake completes at once.
            assert!(
                open && open_event(role, &events),
                "a valid handshake gave {events:?}"
            );
        }
        if ended {
            break;
        }
    }
    assert_eq!(peer.pongs, expected_pongs, "every ping answered, in order");
    assert!(conn.next_event().is_none());

    let closed_cleanly = events.iter().any(|e| matches!(e, Event::Close(_)));
    conn.receive_eof();
    assert_eq!(conn.state(), State::Closed);
    let info = conn.close_info();
    if closed_cleanly {
        let Some(Event::Close(frame)) = events.last() else {
            panic!("a close is the last event")
        };
        assert!(info.was_clean);
        assert_eq!(info.code, frame.code);
    } else {
        assert!(!info.was_clean);
        assert_eq!(info.code, CloseCode::ABNORMAL);
    }
}

fn open_event(role: Role, events: &[Event]) -> bool {
    matches!(
        (role, events),
        (Role::Server, [Event::Request(_)]) | (Role::Client, [Event::Open(_)])
    )
}
