//! Scenario tests of the state machine, fed bytes as a transport would (tier 2 of DESIGN.md).
//! Named after the RFC 6455 sections they check; assertions are on the bytes sent and received.

use super::*;
use crate::deflate::DeflateConfig;
use proptest::prelude::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a client would send it (masked with `KEY`), or unmasked with `mask == None`.
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode: OpCode::from_bits(opcode),
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut out = head[..n].to_vec();
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        apply_mask(&mut body, key, 0);
    }
    out.extend_from_slice(&body);
    out
}

fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, payload, Some(KEY))
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

/// Feeds `bytes` one at a time, collecting every event.
fn feed_bytewise(conn: &mut Connection, bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    for b in bytes {
        conn.receive(std::slice::from_ref(b));
        while let Some(e) = conn.next_event() {
            events.push(e);
        }
    }
    events
}

fn feed(conn: &mut Connection, bytes: &[u8]) -> Vec<Event> {
    conn.receive(bytes);
    std::iter::from_fn(|| conn.next_event()).collect()
}

/// Asserts the connection failed with `code`: an Error event, a close frame with that code
/// sent, state Closed, unclean.
fn assert_failed(conn: &mut Connection, events: &[Event], code: u16) {
    match events.last() {
        Some(Event::Error(e)) => assert_eq!(e.close_code(), CloseCode(code), "{e}"),
        other => panic!("expected an error event, got {other:?}"),
    }
    let sent = conn.data_to_send();
    assert_eq!(sent[0], 0x88, "a close frame was sent: {sent:x?}");
    assert_eq!(u16::from_be_bytes([sent[2], sent[3]]), code);
    assert!(sent.len() <= 2 + 125);
    assert_eq!(conn.state(), State::Closed);
    assert!(!conn.close_info().was_clean);
    assert_eq!(conn.close_info().code, CloseCode::ABNORMAL);
}

#[test]
fn rfc6455_5_7_masked_text_byte_by_byte() {
    let mut conn = server();
    let events = feed_bytewise(
        &mut conn,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    assert!(matches!(&events[..], [Event::Message(Message::Text(t))] if t == "Hello"));
}

#[test]
fn rfc6455_5_7_fragmented_unmasked_text_to_client() {
    let mut conn = Connection::new(Role::Client, Config::default());
    let events = feed_bytewise(
        &mut conn,
        &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
    );
    assert!(matches!(&events[..], [Event::Message(Message::Text(t))] if t == "Hello"));
}

#[test]
fn rfc6455_5_4_control_frames_interleaved_with_fragments() {
    let mut conn = server();
    let mut wire = frame(false, 0, 0x1, b"Hel", Some(KEY));
    wire.extend(client_frame(0x9, b"ping!"));
    wire.extend(frame(true, 0, 0x0, b"lo", Some(KEY)));
    let events = feed_bytewise(&mut conn, &wire);
    assert!(matches!(&events[0], Event::Ping(p) if &p[..] == b"ping!"));
    assert!(matches!(&events[1], Event::Message(Message::Text(t)) if t == "Hello"));
    // RFC 6455 5.5.2: the pong carries the ping's payload, unmasked from the server.
    assert_eq!(conn.data_to_send(), [&[0x8a, 0x05][..], b"ping!"].concat());
}

#[test]
fn rfc6455_5_5_2_pong_not_queued_behind_unstarted_message() {
    let mut conn = server();
    conn.send_binary(vec![7u8; 1000]).unwrap();
    feed(&mut conn, &client_frame(0x9, b"p"));
    let sent = conn.data_to_send();
    assert_eq!(&sent[..3], &[0x8a, 0x01, b'p']);
    assert_eq!(&sent[3..5], &[0x82, 0x7e]);
}

#[test]
fn rfc6455_5_4_pong_waits_only_for_the_frame_being_written() {
    let mut conn = server();
    conn.send_binary(vec![7u8; 1000]).unwrap();
    // Part of the data frame is on the wire already.
    let mut slices = [IoSlice::new(&[]); 8];
    assert!(conn.io_slices(&mut slices) > 0);
    conn.advance_written(10);
    feed(&mut conn, &client_frame(0x9, b"p"));
    let sent = conn.data_to_send();
    assert_eq!(sent.len(), 1004 - 10 + 3);
    assert_eq!(&sent[sent.len() - 3..], &[0x8a, 0x01, b'p']);
}

#[test]
fn rfc6455_5_1_unmasked_client_frame_fails_1002() {
    let mut conn = server();
    let events = feed(&mut conn, &frame(true, 0, 0x1, b"hi", None));
    assert_failed(&mut conn, &events, 1002);
}

#[test]
fn rfc6455_5_1_masked_server_frame_fails_1002() {
    let mut conn = Connection::new(Role::Client, Config::default());
    let events = feed(&mut conn, &frame(true, 0, 0x1, b"hi", Some(KEY)));
    match events.last() {
        Some(Event::Error(e)) => assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR),
        other => panic!("{other:?}"),
    }
    let sent = conn.data_to_send();
    assert_eq!(sent[0], 0x88);
    assert_eq!(sent[1] & 0x80, 0x80, "client close frames are masked");
}

#[test]
fn rfc6455_5_2_header_violations_fail_1002() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved opcode 3", client_frame(0x3, b"")),
        ("reserved opcode 0xb", client_frame(0xb, b"")),
        (
            "rsv1 without extension",
            frame(true, 0b100, 0x1, b"x", Some(KEY)),
        ),
        ("rsv3 on a ping", frame(true, 0b001, 0x9, b"", Some(KEY))),
        ("fragmented ping", frame(false, 0, 0x9, b"", Some(KEY))),
        ("ping of 126 bytes", client_frame(0x9, &[0u8; 126])),
        ("close of 126 bytes", client_frame(0x8, &[0u8; 126])),
        ("continuation first", client_frame(0x0, b"x")),
        (
            "text inside a fragmented message",
            [
                frame(false, 0, 0x1, b"a", Some(KEY)),
                client_frame(0x1, b"b"),
            ]
            .concat(),
        ),
        (
            "64-bit length with top bit",
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
        ),
        (
            "non-minimal 16-bit length",
            vec![0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4],
        ),
    ];
    for (name, wire) in cases {
        let mut conn = server();
        let events = feed_bytewise(&mut conn, &wire);
        assert!(
            matches!(events.last(), Some(Event::Error(_))),
            "{name}: {events:?}"
        );
        assert_failed(&mut conn, &events, 1002);
    }
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_fast_mid_frame() {
    let mut conn = server();
    let payload = [
        &b"valid text "[..],
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90, 0x80,
            0x80,
        ],
        &[b'x'; 100],
    ]
    .concat();
    let wire = client_frame(0x1, &payload);
    // Feed up to and including the first invalid byte (0x90 after 0xf4): the frame is far from
    // complete, yet the connection fails now.
    let header_len = 2 + 2 + 4;
    let bad_at = header_len + 11 + 12;
    let events = feed_bytewise(&mut conn, &wire[..bad_at + 1]);
    assert_failed(&mut conn, &events, 1007);
    // One byte earlier, it had not failed.
    let mut conn = server();
    let events = feed_bytewise(&mut conn, &wire[..bad_at]);
    assert!(events.is_empty());
    assert_eq!(conn.state(), State::Open);
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_a_whole_frame() {
    // A whole single-frame message in one read takes the fast path; it is validated all the
    // same, short (ASCII check first) or long (simdutf8).
    for payload in [
        &[b'a', 0xff][..],
        &[0xc0, 0x80][..],
        &[[b'x'; 100].as_slice(), &[0xed, 0xa0, 0x80]].concat()[..],
    ] {
        let mut conn = server();
        let events = feed(&mut conn, &client_frame(0x1, payload));
        assert_failed(&mut conn, &events, 1007);
    }
    let mut conn = server();
    let events = feed(&mut conn, &client_frame(0x1, "κόσμε".as_bytes()));
    assert!(matches!(&events[..], [Event::Message(Message::Text(t))] if t == "κόσμε"));
}

#[test]
fn rfc6455_8_1_invalid_utf8_split_across_fragments() {
    let mut conn = server();
    let mut wire = frame(false, 0, 0x1, &[b'a', 0xf4], Some(KEY));
    wire.extend(frame(true, 0, 0x0, &[0x90, 0x80, 0x80], Some(KEY)));
    let events = feed_bytewise(&mut conn, &wire);
    assert_failed(&mut conn, &events, 1007);
}

/// Issue 17's two sequences, as a peer could send them: a text frame whose start was validated
/// as it arrived and whose end is invalid fails 1007 (never a text), and a text frame that
/// claims to start a message while a binary one is in progress fails 1002.
#[test]
fn issue_17_no_text_of_invalid_utf8_from_partial_validation_or_interleaving() {
    let mut payload = b"abc".to_vec();
    payload.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    let wire = client_frame(0x1, &payload);
    for cut in 1..wire.len() {
        let mut conn = server();
        let mut events = feed(&mut conn, &wire[..cut]);
        events.extend(feed(&mut conn, &wire[cut..]));
        assert_failed(&mut conn, &events, 1007);
    }

    let mut wire = frame(false, 0, 0x2, &[0xff, 0xff], Some(KEY));
    wire.extend(client_frame(0x1, b"ok"));
    let mut conn = server();
    let events = feed(&mut conn, &wire);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Message(_))),
        "{events:?}"
    );
    assert_failed(&mut conn, &events, 1002);
}

#[test]
fn rfc6455_8_1_utf8_valid_across_fragments_and_pings() {
    let text = "κόσμε €𝄞".as_bytes();
    let mut wire = Vec::new();
    for (i, b) in text.iter().enumerate() {
        let op = if i == 0 { 0x1 } else { 0x0 };
        wire.extend(frame(
            i + 1 == text.len(),
            0,
            op,
            std::slice::from_ref(b),
            Some(KEY),
        ));
        wire.extend(client_frame(0x9, b""));
    }
    let mut conn = server();
    let events = feed_bytewise(&mut conn, &wire);
    let messages: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(messages, vec![Message::text("κόσμε €𝄞")]);
}

#[test]
fn rfc6455_5_5_1_close_echoes_code() {
    let mut conn = server();
    let events = feed(&mut conn, &client_frame(0x8, b"\x03\xe8bye"));
    assert!(
        matches!(&events[..], [Event::Close(f)] if f.code == CloseCode::NORMAL && f.reason == "bye")
    );
    assert_eq!(
        conn.data_to_send(),
        vec![0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']
    );
    assert_eq!(conn.state(), State::Closed);
    let info = conn.close_info();
    assert_eq!(
        (info.code, info.was_clean, info.reason.as_str()),
        (CloseCode::NORMAL, true, "bye")
    );
    // Nothing may be sent after the close frame, and nothing more is parsed.
    assert_eq!(conn.send_text("late"), Err(SendError::Closed));
    assert!(feed(&mut conn, &client_frame(0x1, b"late")).is_empty());
}

#[test]
fn rfc6455_5_5_1_empty_close_echoed_empty_reports_1005() {
    let mut conn = server();
    feed(&mut conn, &client_frame(0x8, b""));
    assert_eq!(conn.data_to_send(), vec![0x88, 0x00]);
    assert_eq!(conn.close_info().code, CloseCode::NO_STATUS);
    assert!(conn.close_info().was_clean);
}

#[test]
fn rfc6455_7_4_invalid_close_payloads() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let mut conn = server();
        let events = feed(&mut conn, &client_frame(0x8, &code.to_be_bytes()));
        assert_failed(&mut conn, &events, 1002);
    }
    let mut conn = server();
    let events = feed(&mut conn, &client_frame(0x8, &[0x03]));
    assert_failed(&mut conn, &events, 1002);
    let mut conn = server();
    let events = feed(
        &mut conn,
        &client_frame(
            0x8,
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        ),
    );
    assert_failed(&mut conn, &events, 1007);
}

#[test]
fn rfc6455_7_1_2_we_close_first_then_peer_echoes() {
    let mut conn = server();
    conn.close(Some(CloseCode(4000)), "done").unwrap();
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(
        conn.data_to_send(),
        [&[0x88, 0x06, 0x0f, 0xa0][..], b"done"].concat()
    );
    // Messages still arriving before the peer's close are delivered; pings are not answered.
    let events = feed(
        &mut conn,
        &[client_frame(0x1, b"in flight"), client_frame(0x9, b"")].concat(),
    );
    assert_eq!(events.len(), 2);
    assert!(conn.data_to_send().is_empty());
    let events = feed(&mut conn, &client_frame(0x8, b"\x0f\xa0"));
    assert!(matches!(&events[..], [Event::Close(_)]));
    assert!(conn.data_to_send().is_empty(), "no second close frame");
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.close_info().was_clean);
}

#[test]
fn browser_close_validation() {
    let mut conn = server();
    assert_eq!(
        conn.close(Some(CloseCode(1001)), ""),
        Err(SendError::InvalidCloseCode(1001))
    );
    assert_eq!(
        conn.close(Some(CloseCode(5000)), ""),
        Err(SendError::InvalidCloseCode(5000))
    );
    assert_eq!(
        conn.close(Some(CloseCode::NORMAL), &"x".repeat(124)),
        Err(SendError::ReasonTooLong(124))
    );
    conn.close(None, "").unwrap();
    assert_eq!(
        conn.data_to_send(),
        vec![0x88, 0x00],
        "no body when neither code nor reason"
    );
    assert_eq!(conn.close(None, ""), Err(SendError::Closed));
}

#[test]
fn limits_frame_too_big_fails_1009_from_the_header_alone() {
    let mut conn = Connection::new(Role::Server, Config::default().with_max_frame_size(1000));
    // Only the header of a 2^62-byte frame: fails before any payload is buffered.
    let header = [0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let events = feed(&mut conn, &header);
    assert_failed(&mut conn, &events, 1009);
}

#[test]
fn limits_message_too_big_across_fragments_fails_1009() {
    let mut conn = Connection::new(Role::Server, Config::default().with_max_message_size(10));
    let wire = [
        frame(false, 0, 0x2, &[1; 6], Some(KEY)),
        frame(true, 0, 0x0, &[1; 6], Some(KEY)),
    ]
    .concat();
    let events = feed(&mut conn, &wire);
    assert_failed(&mut conn, &events, 1009);
}

#[test]
fn limits_too_many_fragments_fails_1009() {
    let mut conn = Connection::new(Role::Server, Config::default().with_max_fragments(3));
    let mut wire = frame(false, 0, 0x2, b"a", Some(KEY));
    for _ in 0..3 {
        wire.extend(frame(false, 0, 0x0, b"a", Some(KEY)));
    }
    let events = feed(&mut conn, &wire);
    assert_failed(&mut conn, &events, 1009);
}

#[test]
fn rfc6455_5_3_client_masks_with_fresh_keys() {
    let mut conn = Connection::new(Role::Client, Config::default());
    conn.send_text("Hello").unwrap();
    conn.send_text("Hello").unwrap();
    let sent = conn.data_to_send();
    let (a, b) = sent.split_at(11);
    assert_eq!((a[0], a[1]), (0x81, 0x85));
    let mut server = server();
    let events = feed(&mut server, &sent);
    assert!(
        matches!(&events[..], [Event::Message(x), Event::Message(y)] if x.as_text() == Some("Hello") && y.as_text() == Some("Hello"))
    );
    assert_ne!(
        &a[2..6],
        &b[2..6],
        "two frames, two masking keys (chance of equal: 2^-32)"
    );
}

#[test]
fn large_messages_are_fragmented_and_reassembled() {
    let mut client = Connection::new(Role::Client, Config::default().with_write_frame_size(1000));
    let data: Vec<u8> = (0..5500u32).map(|i| i as u8).collect();
    client.send_binary(data.clone()).unwrap();
    let wire = client.data_to_send();
    let mut server = server();
    let events = feed(&mut server, &wire);
    assert!(matches!(&events[..], [Event::Message(Message::Binary(b))] if b[..] == data[..]));
    assert_eq!(
        wire.len(),
        5500 + 6 * (4 + 4),
        "six frames with 16-bit lengths"
    );
}

#[test]
fn rfc6455_5_3_client_masks_owned_payloads_in_place_and_never_touches_shared_ones() {
    // An owned payload is masked in place (no copy); one the caller still holds (a clone, a
    // static) is masked into a copy, and the caller's bytes stay as they were.
    let mut client = Connection::new(Role::Client, Config::default().with_write_frame_size(1000));
    let data: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
    let shared = Bytes::from(data.clone());
    let held = shared.clone();
    client.send(Message::Binary(shared)).unwrap(); // shared, fragmented
    client.send(Message::Binary(held.slice(..500))).unwrap(); // shared, one frame
    client
        .send(Message::Binary(Bytes::from_static(b"static bytes")))
        .unwrap();
    client.send_binary(data.clone()).unwrap(); // owned, fragmented
    client.send_binary(data[..500].to_vec()).unwrap(); // owned, one frame
    let wire = client.data_to_send();
    assert_eq!(held[..], data[..], "the caller's bytes are untouched");
    let mut server = server();
    let got: Vec<Vec<u8>> = feed(&mut server, &wire)
        .into_iter()
        .map(|e| match e {
            Event::Message(Message::Binary(b)) => b.to_vec(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let want = [
        &data[..],
        &data[..500],
        &b"static bytes"[..],
        &data[..],
        &data[..500],
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(&g[..], w);
    }
}

#[test]
fn buffered_amount_is_exact() {
    let mut conn = server();
    conn.send_binary(vec![0u8; 300]).unwrap();
    conn.send_ping(&b"p"[..]).unwrap();
    assert_eq!(conn.buffered_amount(), 300);
    assert_eq!(conn.pending_bytes(), 304 + 3);
    // The ping goes first (3 bytes), then the data header (4 bytes), then 100 payload bytes.
    let mut slices = [IoSlice::new(&[]); 8];
    conn.io_slices(&mut slices);
    conn.advance_written(3 + 4 + 100);
    assert_eq!(conn.buffered_amount(), 200);
    conn.advance_written(200);
    assert_eq!(conn.buffered_amount(), 0);
    assert!(!conn.wants_write());
}

#[test]
fn one_frame_at_a_time_allocates_no_queue() {
    // An echo server's connection queues one reply at a time: it must not keep queue memory
    // (what every idle connection would pay for), and a ping answered meanwhile still goes
    // ahead of an unstarted reply.
    let mut conn = server();
    for _ in 0..3 {
        conn.send_text("hello").unwrap();
        let mut slices = [IoSlice::new(&[]); 4];
        let n = conn.io_slices(&mut slices);
        let written: usize = slices[..n].iter().map(|s| s.len()).sum();
        conn.advance_written(written);
    }
    assert!(!conn.wants_write());
    assert!(conn.out.rest.is_none());

    conn.send_text("reply").unwrap();
    let events = feed(&mut conn, &client_frame(0x9, b"p"));
    assert!(events.iter().any(|e| matches!(e, Event::Ping(_))));
    let mut slices = [IoSlice::new(&[]); 4];
    let n = conn.io_slices(&mut slices);
    assert_eq!(&slices[0][..], &[0x8a, 0x01][..], "the pong first");
    assert_eq!(&slices[1][..], b"p");
    assert_eq!(&slices[2][..], &[0x81, 0x05][..]);
    assert_eq!(n, 4);
}

#[test]
fn eof_without_close_is_1006_unclean() {
    let mut conn = server();
    feed(&mut conn, &frame(false, 0, 0x1, b"par", Some(KEY)));
    conn.receive_eof();
    assert_eq!(conn.state(), State::Closed);
    let info = conn.close_info();
    assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));
}

#[test]
fn send_before_open_is_an_error() {
    let mut conn = Connection::server(Config::default());
    assert_eq!(conn.send_text("x"), Err(SendError::NotOpen));
}

#[test]
fn rfc6455_4_opening_handshake_through_connections() {
    let uri: http::Uri = "ws://example.com/chat".parse().unwrap();
    let handshake = handshake::ClientRequest::new(uri)
        .unwrap()
        .protocol("chat")
        .build()
        .unwrap();
    let mut client = Connection::client(handshake, Config::default());
    let mut server = Connection::server(Config::default());
    // The client's request, followed at once by a first frame.
    let request = client.data_to_send();
    let events = feed_bytewise(&mut server, &request);
    let Some(Event::Request(req)) = events.into_iter().next() else {
        panic!("no request event")
    };
    assert_eq!(req.valid.protocols, vec!["chat".to_string()]);
    server.accept(req.valid.accept(Some("chat"), &[])).unwrap();
    server.send_text("welcome").unwrap();
    let events = feed_bytewise(&mut client, &server.data_to_send());
    assert!(matches!(&events[0], Event::Open(r) if r.status() == 101));
    assert!(matches!(&events[1], Event::Message(m) if m.as_text() == Some("welcome")));
    assert_eq!(client.protocol(), Some("chat"));
    assert_eq!(server.protocol(), Some("chat"));
    client.send_text("hi").unwrap();
    let events = feed(&mut server, &client.data_to_send());
    assert!(matches!(&events[..], [Event::Message(m)] if m.as_text() == Some("hi")));
}

#[test]
fn rfc6455_4_2_1_bad_request_gets_http_error() {
    let mut server = Connection::server(Config::default());
    let events = feed(&mut server, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert!(matches!(&events[..], [Event::HandshakeFailed(_)]));
    let response = String::from_utf8(server.data_to_send()).unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13")
    );
    assert_eq!(server.state(), State::Closed);
}

/// The events of a connection, in a form that can be compared.
fn summarize(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Message(m) => format!("message {:?} {:?}", m.is_text(), m.as_bytes()),
            Event::Ping(p) => format!("ping {p:?}"),
            Event::Pong(p) => format!("pong {p:?}"),
            Event::Close(f) => format!("close {} {}", f.code, f.reason),
            Event::Error(e) => format!("error {}", e.close_code()),
            other => format!("{other:?}"),
        })
        .collect()
}

fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(text, p)| {
                if text {
                    let s = String::from_utf8_lossy(&p).into_owned();
                    client_frame(0x1, s.as_bytes())
                } else {
                    client_frame(0x2, &p)
                }
            }),
        // Around the largest message lent from the read buffer (LEND_MAX).
        proptest::collection::vec(any::<u8>(), 1000..1100).prop_map(|p| client_frame(0x2, &p)),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|p| client_frame(0x9, &p)),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|p| client_frame(0xa, &p)),
        (proptest::collection::vec("\\PC{0,8}", 1..4)).prop_map(|parts| {
            let mut wire = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let op = if i == 0 { 0x1 } else { 0x0 };
                wire.extend(frame(
                    i + 1 == parts.len(),
                    0,
                    op,
                    part.as_bytes(),
                    Some(KEY),
                ));
            }
            wire
        }),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|junk| junk),
        // Text frames of arbitrary bytes: mostly invalid UTF-8, caught whole or mid-frame.
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|p| client_frame(0x1, &p)),
    ]
}

/// Where to cut an input of `len` bytes, in order.
fn cut_points(cuts: &[prop::sample::Index], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.sort_unstable();
    points
}

proptest! {
    /// Any split of the input gives the same events (DESIGN.md tier 2).
    #[test]
    fn any_split_gives_the_same_events(
        frames in proptest::collection::vec(arb_frame(), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let wire: Vec<u8> = frames.concat();
        let mut whole = server();
        let expected = summarize(&feed(&mut whole, &wire));
        let expected_out = whole.data_to_send();

        let points = cut_points(&cuts, wire.len());
        let mut split = server();
        let mut events = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain(std::iter::once(wire.len())) {
            events.extend(feed(&mut split, &wire[last..p]));
            last = p;
        }
        prop_assert_eq!(summarize(&events), expected);
        prop_assert_eq!(split.data_to_send(), expected_out);
    }
}

/// Feeds `wire` cut at `points`, draining with [`Connection::next_event_with`] and echoing each
/// message with `send_ref` when `lend`, or with `next_event` and `send`: the events seen (lent
/// messages as `Event::Message`) and the bytes written.
fn echo_cut(wire: &[u8], points: &[usize], lend: bool) -> (Vec<String>, Vec<u8>) {
    let mut conn = server();
    let mut events = Vec::new();
    let mut last = 0;
    for &p in points.iter().chain(std::iter::once(&wire.len())) {
        conn.receive(&wire[last..p]);
        last = p;
        if lend {
            let mut lent = Vec::new();
            loop {
                let next = conn.next_event_with(|m, out| {
                    lent.push(Event::Message(m.to_message()));
                    let _ = out.send_ref(m);
                    Ok::<_, ()>(())
                });
                events.append(&mut lent);
                match next.unwrap() {
                    Some(event) => events.push(event),
                    None => break,
                }
            }
        } else {
            while let Some(event) = conn.next_event() {
                if let Event::Message(m) = &event {
                    let _ = conn.send(m.clone());
                }
                events.push(event);
            }
        }
    }
    (summarize(&events), conn.data_to_send())
}

proptest! {
    /// Messages lent by `next_event_with` (whole frames straight from the read buffer, others
    /// assembled) are the messages `next_event` gives, in the same order among the other
    /// events, with the same failures; and echoes queued with `send_ref` (copied into the
    /// batch) are the same bytes as with `send`.
    #[test]
    fn lent_messages_are_the_owned_ones(
        frames in proptest::collection::vec(arb_frame(), 1..10),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let wire: Vec<u8> = frames.concat();
        let points = cut_points(&cuts, wire.len());
        let owned = echo_cut(&wire, &points, false);
        let lent = echo_cut(&wire, &points, true);
        prop_assert_eq!(lent, owned);
    }
}

#[test]
fn lent_messages_and_their_echoes() {
    // Two whole text frames, a ping between them, a fragmented message, a binary frame.
    let wire = [
        client_frame(0x1, b"one"),
        client_frame(0x9, b"p"),
        client_frame(0x1, "d\u{e9}j\u{e0}".as_bytes()),
        frame(false, 0, 0x1, b"fr", Some(KEY)),
        frame(true, 0, 0x0, b"ag", Some(KEY)),
        client_frame(0x2, &[0, 1, 2]),
    ]
    .concat();
    let mut conn = server();
    conn.receive(&wire);
    let mut seen = Vec::new();
    let mut handler = |m: MessageRef<'_>, out: &mut Outbox<'_>| {
        seen.push(m.to_message());
        out.send_ref(m)
    };
    let first = conn.next_event_with(&mut handler).unwrap();
    assert!(matches!(first, Some(Event::Ping(ref p)) if &p[..] == b"p"));
    assert_eq!(
        conn.next_event_with(&mut handler).unwrap().map(|_| ()),
        None
    );
    assert_eq!(
        seen,
        [
            Message::text("one"),
            Message::text("d\u{e9}j\u{e0}"),
            Message::text("frag"),
            Message::binary(vec![0, 1, 2]),
        ]
    );
    // The pong goes ahead of the echoes not yet started; the echoes keep their order.
    let sent = conn.data_to_send();
    let mut expected = vec![0x8a, 0x01, b'p', 0x81, 0x03];
    expected.extend_from_slice(b"one");
    expected.extend_from_slice(&[0x81, 0x06]);
    expected.extend_from_slice("d\u{e9}j\u{e0}".as_bytes());
    expected.extend_from_slice(&[0x81, 0x04]);
    expected.extend_from_slice(b"frag");
    expected.extend_from_slice(&[0x82, 0x03, 0, 1, 2]);
    assert_eq!(sent, expected);
    assert_eq!(conn.buffered_amount(), 0);
}

#[test]
fn a_lent_text_frame_of_invalid_utf8_fails_the_connection() {
    // RFC 6455 8.1, on the lending path: 1007, and nothing after it is lent.
    let mut conn = server();
    conn.receive(
        &[
            client_frame(0x1, b"ok"),
            client_frame(0x1, &[0xc3, 0x28]),
            client_frame(0x1, b"after"),
        ]
        .concat(),
    );
    let mut seen = 0;
    let event = conn
        .next_event_with(|_, _| {
            seen += 1;
            Ok::<_, SendError>(())
        })
        .unwrap();
    assert_eq!(seen, 1);
    let Some(Event::Error(e)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
    assert_eq!(conn.state(), State::Closed);
    assert!(
        conn.next_event_with(|_, _| Ok::<_, SendError>(()))
            .unwrap()
            .is_none()
    );
    let sent = conn.data_to_send();
    assert_eq!(&sent[..4], &[0x88, sent[1], 0x03, 0xef]);
}

#[test]
fn a_lent_owned_message_is_echoed_without_a_copy() {
    // Larger than LEND_MAX: split off the read buffer as an owned message and lent from it;
    // send_ref of that same message queues its payload, shared.
    let mut conn = server();
    conn.receive(&client_frame(0x2, &[7u8; 3000]));
    let mut lent_at = 0;
    conn.next_event_with(|m, out| {
        lent_at = m.as_bytes().as_ptr() as usize;
        out.send_ref(m)
    })
    .unwrap();
    let mut slices = [IoSlice::new(&[]); 4];
    let n = conn.io_slices(&mut slices);
    assert_eq!(n, 2, "header and payload");
    assert_eq!(slices[1].len(), 3000);
    assert_eq!(
        slices[1].as_ptr() as usize,
        lent_at,
        "the payload lent, not a copy"
    );
    // A different message of the same bytes is copied.
    let mut conn = server();
    conn.receive(&client_frame(0x2, &[7u8; 3000]));
    let other = vec![7u8; 3000];
    conn.next_event_with(|_, out| out.send_ref(MessageRef::Binary(&other)))
        .unwrap();
    let n = conn.io_slices(&mut slices);
    assert_eq!(n, 2);
    assert_ne!(slices[1].as_ptr(), other.as_ptr());
    assert_eq!(&*slices[1], &other[..]);
}

#[test]
fn send_ref_fragments_as_send_does() {
    // A copy queued with send_ref honours write_frame_size like send: the same frames.
    let config = Config::default().with_write_frame_size(10);
    let mut by_ref = Connection::new(Role::Server, config.clone());
    let mut owned = Connection::new(Role::Server, config);
    let text = "twenty-five bytes of text";
    by_ref.send_ref(MessageRef::Text(text)).unwrap();
    owned.send_text(text).unwrap();
    let wire = by_ref.data_to_send();
    assert_eq!(wire, owned.data_to_send());
    assert_eq!(&wire[..2], &[0x01, 10], "first of three frames, not final");
}

#[test]
fn a_handler_error_stops_lending_and_keeps_the_rest() {
    let mut conn = server();
    conn.receive(&[client_frame(0x1, b"a"), client_frame(0x1, b"b")].concat());
    let r = conn.next_event_with(|m, _| {
        if m.as_text() == Some("a") {
            Err("stop")
        } else {
            Ok(())
        }
    });
    assert_eq!(r.unwrap_err(), "stop");
    let mut rest = Vec::new();
    conn.next_event_with(|m, _| {
        rest.push(m.to_message());
        Ok::<_, ()>(())
    })
    .unwrap();
    assert_eq!(rest, [Message::text("b")]);
}

#[test]
fn split_halves_forward_replies_and_close_state() {
    // The receiving half answers a ping and echoes a close; the sending half writes both, and
    // refuses to send after the close.
    let mut rx = server();
    let mut tx = server();
    tx.send_text("queued first").unwrap();
    feed(
        &mut rx,
        &[client_frame(0x9, b"p"), client_frame(0x8, b"\x03\xe8")].concat(),
    );
    tx.take_output(&mut rx);
    assert!(!rx.wants_write());
    let sent = tx.data_to_send();
    assert_eq!(&sent[..3], &[0x8a, 0x01, b'p'], "pong first");
    assert_eq!(&sent[3..5], &[0x81, 12], "then the data queued before");
    assert_eq!(
        &sent[sent.len() - 4..],
        &[0x88, 0x02, 0x03, 0xe8],
        "then the close echo"
    );
    assert_eq!(tx.send_text("late"), Err(SendError::Closed));
    // The sending half closed first: the receiving half is told, so it does not echo.
    let mut rx = server();
    rx.note_close_sent();
    feed(&mut rx, &client_frame(0x8, b"\x03\xe8"));
    assert!(!rx.wants_write());
    assert!(rx.close_info().was_clean);
}

/// A client and a server that completed the handshake with `client_cfg` / `server_cfg`.
fn handshake_pair(client_cfg: Config, server_cfg: Config) -> (Connection, Connection) {
    let uri: http::Uri = "ws://example.com/".parse().unwrap();
    let mut request = handshake::ClientRequest::new(uri).unwrap();
    if client_cfg.deflate.enabled {
        request = request.extension(client_cfg.deflate.offer());
    }
    let mut client = Connection::client(request.build().unwrap(), client_cfg);
    let mut server = Connection::server(server_cfg);
    let events = feed(&mut server, &client.data_to_send());
    let Some(Event::Request(req)) = events.into_iter().next() else {
        panic!("no request")
    };
    let exts: Vec<_> = req.deflate.iter().map(|p| p.to_extension()).collect();
    server.accept(req.valid.accept(None, &exts)).unwrap();
    let events = feed(&mut client, &server.data_to_send());
    assert!(matches!(events.first(), Some(Event::Open(_))), "{events:?}");
    (client, server)
}

#[test]
fn rfc7692_messages_compressed_both_ways() {
    let (mut client, mut server) = handshake_pair(
        Config::default(),
        Config::default().with_write_frame_size(20),
    );
    assert_eq!(client.extensions()[0].to_string(), "permessage-deflate");
    assert_eq!(server.extensions()[0].to_string(), "permessage-deflate");
    let text =
        "a compressible message, a compressible message, a compressible message. ".repeat(50);
    for _ in 0..3 {
        client.send_text(text.as_str()).unwrap();
        let wire = client.data_to_send();
        assert_eq!(wire[0], 0xc1, "FIN + RSV1 + text");
        assert!(wire.len() < text.len() / 4);
        let events = feed_bytewise(&mut server, &wire);
        assert!(matches!(&events[..], [Event::Message(m)] if m.as_text() == Some(text.as_str())));
        // The server's answer is compressed and fragmented (write_frame_size 20): RSV1 on
        // the first frame only.
        server.send_text(text.as_str()).unwrap();
        let wire = server.data_to_send();
        assert_eq!(wire[0], 0x41, "RSV1 + text, not FIN");
        let events = feed(&mut client, &wire);
        assert!(matches!(&events[..], [Event::Message(m)] if m.as_text() == Some(text.as_str())));
    }
    // Short messages and control frames go uncompressed.
    server.send_text("hi").unwrap();
    server.send_ping(&b"p"[..]).unwrap();
    let wire = server.data_to_send();
    assert_eq!((wire[0], wire[3]), (0x89, 0x81));
}

#[test]
fn rfc7692_6_1_rsv1_on_continuation_or_control_fails_1002() {
    for wire in [
        [
            frame(false, 0b100, 0x1, b"\xf2\x48", Some(KEY)),
            frame(true, 0b100, 0x0, b"\xcd", Some(KEY)),
        ]
        .concat(),
        frame(true, 0b100, 0x9, b"", Some(KEY)),
    ] {
        let (_, mut server) = handshake_pair(Config::default(), Config::default());
        let events = feed(&mut server, &wire);
        assert_failed(&mut server, &events, 1002);
    }
}

#[test]
fn rfc7692_compression_bomb_closes_1009_and_corrupt_data_1007() {
    let (mut client, _) = handshake_pair(Config::default(), Config::default());
    client.send_binary(vec![0u8; 8 << 20]).unwrap();
    let bomb = client.data_to_send();
    assert!(
        bomb.len() < 64 << 10,
        "8 MiB of zeros is a small bomb: {} bytes",
        bomb.len()
    );
    let (_, mut server) = handshake_pair(
        Config::default(),
        Config::default().with_max_message_size(1 << 20),
    );
    let events = feed(&mut server, &bomb);
    assert_failed(&mut server, &events, 1009);

    let (_, mut server) = handshake_pair(Config::default(), Config::default());
    let events = feed(
        &mut server,
        &frame(true, 0b100, 0x2, &[0xff, 0xff, 0xff], Some(KEY)),
    );
    assert_failed(&mut server, &events, 1007);
}

#[test]
fn rfc7692_server_accepting_unoffered_or_invalid_deflate_fails_1010() {
    for (client_cfg, answer) in [
        (
            Config::default().with_deflate(DeflateConfig::disabled()),
            "permessage-deflate",
        ),
        (
            Config::default(),
            "permessage-deflate; server_max_window_bits=99",
        ),
        (Config::default(), "permessage-deflate, permessage-deflate"),
    ] {
        let uri: http::Uri = "ws://example.com/".parse().unwrap();
        let mut request = handshake::ClientRequest::new(uri).unwrap();
        if client_cfg.deflate.enabled {
            request = request.extension(client_cfg.deflate.offer());
        }
        let handshake = request.build().unwrap();
        let accept = handshake::derive_accept_key(handshake.key().as_bytes());
        let mut client = Connection::client(handshake, client_cfg);
        client.data_to_send();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n"
        );
        let events = feed(&mut client, response.as_bytes());
        assert!(
            matches!(&events[..], [Event::HandshakeFailed(_)]),
            "{answer}: {events:?}"
        );
        let sent = client.data_to_send();
        assert_eq!(sent[0], 0x88, "{answer}: a close frame");
        let mut payload = sent[6..8].to_vec();
        apply_mask(&mut payload, [sent[2], sent[3], sent[4], sent[5]], 0);
        assert_eq!(
            u16::from_be_bytes([payload[0], payload[1]]),
            1010,
            "{answer}"
        );
    }
}

#[test]
fn rfc7692_malformed_offer_gets_400() {
    let mut server = Connection::server(Config::default());
    let events = feed(&mut server, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99\r\n\r\n");
    assert!(matches!(&events[..], [Event::HandshakeFailed(_)]));
    assert!(
        String::from_utf8(server.data_to_send())
            .unwrap()
            .starts_with("HTTP/1.1 400")
    );
}

#[test]
fn prepared_messages_share_bytes_and_choose_the_variant_per_connection() {
    use crate::prepared::PreparedMessage;
    let text = "broadcast to the whole room, broadcast to the whole room. ".repeat(20);
    let deflate = DeflateConfig::default().with_no_context_takeover(false, true);
    let prepared = PreparedMessage::with_deflate(&Message::text(text.as_str()), &deflate);
    assert!(prepared.is_compressed());
    // A connection that negotiated server_no_context_takeover gets the compressed frame; one
    // with context takeover, or no deflate, gets the plain frame; every client decodes it.
    let server_nct = Config::default().with_deflate(deflate.clone());
    for (server_cfg, compressed) in [
        (server_nct, true),
        (Config::default(), false),
        (
            Config::default().with_deflate(DeflateConfig::disabled()),
            false,
        ),
    ] {
        let (mut client, mut server) = handshake_pair(Config::default(), server_cfg);
        // A message with the connection's own compressor first, to check the contexts stay
        // in step around a shared one.
        server.send_text(text.as_str()).unwrap();
        server.send_prepared(&prepared).unwrap();
        server.send_text(text.as_str()).unwrap();
        let buffered = server.buffered_amount();
        let wire = server.data_to_send();
        // Parse the three frames: buffered_amount counted exactly their payload bytes.
        let mut at = 0;
        let mut headers = Vec::new();
        while at < wire.len() {
            let (h, n) = FrameHeader::decode(&wire[at..]).unwrap().unwrap();
            headers.push(h);
            at += n + h.payload_len as usize;
        }
        assert_eq!(
            buffered as u64,
            headers.iter().map(|h| h.payload_len).sum::<u64>()
        );
        let events = feed(&mut client, &wire);
        assert_eq!(events.len(), 3);
        for e in &events {
            assert!(
                matches!(e, Event::Message(m) if m.as_text() == Some(text.as_str())),
                "{e:?}"
            );
        }
        let second_frame_rsv1 = headers[1].rsv & 0b100 != 0;
        assert_eq!(second_frame_rsv1, compressed);
    }
    let mut client = Connection::new(Role::Client, Config::default());
    assert_eq!(client.send_prepared(&prepared), Err(SendError::NotServer));
}

#[test]
fn rfc6455_5_5_3_ping_flood_without_reading_keeps_32_pongs() {
    let mut conn = server();
    conn.send_binary(vec![1u8; 1000]).unwrap();
    // Part of the data frame is written; then the peer floods pings and never reads.
    let mut slices = [IoSlice::new(&[]); 4];
    conn.io_slices(&mut slices);
    conn.advance_written(100);
    let mut flood = Vec::new();
    for i in 0..100_000u32 {
        flood.extend(client_frame(0x9, &i.to_be_bytes()));
    }
    let events = feed(&mut conn, &flood);
    assert_eq!(events.len(), 100_000);
    assert_eq!(
        conn.pending_bytes(),
        1004 - 100 + 32 * (2 + 4),
        "the rest of the data frame and 32 pongs"
    );
    let sent = conn.data_to_send();
    // The kept pongs answer the last 32 pings, in order.
    let first_kept = (100_000u32 - 32).to_be_bytes();
    assert_eq!(
        &sent[904..910],
        &[
            0x8a,
            0x04,
            first_kept[0],
            first_kept[1],
            first_kept[2],
            first_kept[3]
        ]
    );
    let last = 99_999u32.to_be_bytes();
    assert_eq!(
        &sent[sent.len() - 6..],
        &[0x8a, 0x04, last[0], last[1], last[2], last[3]]
    );
}

/// One step of [`output_in_any_write_pattern_is_well_formed_and_in_order`].
#[derive(Debug, Clone)]
enum OutOp {
    /// Queue a binary message of this many bytes (small ones are batched).
    Send(usize),
    /// Queue a copy of a borrowed binary message (small ones copied into the batch).
    SendRef(usize),
    /// Receive a ping (its pong is queued ahead of unstarted data).
    Ping,
    /// The transport takes this many bytes.
    Write(usize),
}

fn arb_out_op() -> impl Strategy<Value = OutOp> {
    prop_oneof![
        4 => (0usize..300).prop_map(OutOp::Send),
        1 => (300usize..3000).prop_map(OutOp::Send),
        3 => (0usize..400).prop_map(OutOp::SendRef),
        1 => Just(OutOp::Ping),
        3 => (0usize..700).prop_map(OutOp::Write),
    ]
}

/// Application bytes of the data frames in `wire` (server frames, unmasked), counting a frame
/// cut short by the end of `wire` for the part present.
fn data_payload_in(wire: &[u8]) -> usize {
    let (mut at, mut total) = (0, 0);
    while let Ok(Some((h, n))) = FrameHeader::decode(&wire[at..]) {
        let present = (h.payload_len as usize).min(wire.len() - at - n);
        if matches!(
            h.opcode,
            OpCode::Text | OpCode::Binary | OpCode::Continuation
        ) {
            total += present;
        }
        at += n + present;
        if present < h.payload_len as usize {
            break;
        }
    }
    total
}

proptest! {
    /// Whatever the sizes queued and however the transport cuts its writes, the bytes written
    /// are whole frames (small frames batched, pongs ahead of unstarted data but never inside a
    /// frame or batch on the wire), the messages arrive in order, and `buffered_amount` never
    /// counts less than the application bytes still unwritten and ends at 0.
    #[test]
    fn output_in_any_write_pattern_is_well_formed_and_in_order(
        ops in proptest::collection::vec(arb_out_op(), 1..60),
    ) {
        let mut conn = server();
        let (mut written, mut sent, mut pings) = (Vec::new(), Vec::new(), 0u8);
        let mut sent_bytes = 0;
        let write = |conn: &mut Connection, written: &mut Vec<u8>, max: usize| {
            let mut slices = [IoSlice::new(&[]); 8];
            let n = conn.io_slices(&mut slices);
            let mut left = max;
            for s in &slices[..n] {
                let take = s.len().min(left);
                written.extend_from_slice(&s[..take]);
                left -= take;
            }
            conn.advance_written(max - left);
        };
        for op in ops {
            match op {
                OutOp::Send(len) => {
                    let fill = sent.len() as u8;
                    conn.send_binary(vec![fill; len]).unwrap();
                    sent.push(len);
                    sent_bytes += len;
                }
                OutOp::SendRef(len) => {
                    let fill = sent.len() as u8;
                    conn.send_ref(MessageRef::Binary(&vec![fill; len])).unwrap();
                    sent.push(len);
                    sent_bytes += len;
                }
                OutOp::Ping => {
                    feed(&mut conn, &client_frame(0x9, &[pings]));
                    pings += 1;
                }
                OutOp::Write(max) => write(&mut conn, &mut written, max),
            }
            let unwritten = sent_bytes - data_payload_in(&written);
            prop_assert!(conn.buffered_amount() >= unwritten);
            prop_assert!(conn.buffered_amount() <= unwritten + BATCH_MAX);
        }
        while conn.wants_write() {
            write(&mut conn, &mut written, usize::MAX);
        }
        prop_assert_eq!(conn.buffered_amount(), 0);
        prop_assert_eq!(conn.pending_bytes(), 0);
        let mut client = Connection::new(Role::Client, Config::default());
        client.receive(&written);
        let (mut messages, mut pongs) = (Vec::new(), Vec::new());
        while let Some(event) = client.next_event() {
            match event {
                Event::Message(m) => messages.push(m.as_bytes().to_vec()),
                Event::Pong(p) => pongs.push(p[0]),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(messages.len(), sent.len());
        for (i, (m, len)) in messages.iter().zip(&sent).enumerate() {
            prop_assert_eq!(m.len(), *len);
            prop_assert!(m.iter().all(|&b| b == i as u8));
        }
        prop_assert_eq!(pongs, (0..pings).collect::<Vec<_>>());
    }
}

#[test]
fn small_frames_queued_behind_others_go_out_as_one_batch() {
    let mut conn = server();
    for i in 0..16u8 {
        conn.send_text(format!("message {i:02}")).unwrap();
    }
    // The first frame (head, payload), then one slice for the other fifteen.
    let mut slices = [IoSlice::new(&[]); 8];
    let n = conn.io_slices(&mut slices);
    assert_eq!(n, 3);
    assert_eq!(slices[2].len(), 15 * (2 + 10));
    assert_eq!(conn.buffered_amount(), 16 * 10);
    // Cut inside the batch, then a ping: its pong waits for the batch, which is on the wire.
    conn.advance_written(2 + 10 + 5);
    assert_eq!(
        conn.buffered_amount(),
        15 * 10,
        "the batch counts whole until written"
    );
    feed(&mut conn, &client_frame(0x9, b"p"));
    let rest = conn.data_to_send();
    assert_eq!(rest.len(), 15 * 12 - 5 + 3);
    assert_eq!(&rest[rest.len() - 3..], &[0x8a, 0x01, b'p']);
    conn.shrink_read_buffer();
    assert!(conn.out.rest.is_none(), "an idle connection keeps no queue");
}
