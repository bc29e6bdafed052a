//! The inflate ratio limit (`Config::max_inflate_ratio`, `Config::inflate_ratio_floor`): a
//! compression bomb fails with 1009 having allocated little more than the ratio allows, real
//! JSON passes, small messages pass at any ratio, and the frames of a message are accounted
//! together. Memory is counted exactly, with a counting global allocator (zlib-rs allocates
//! through Rust's allocator), on the test's own thread.

use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams, InflateError};
use tolqin_proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin_proto::mask::apply_mask;
use tolqin_proto::{CloseCode, Config, Connection, Event, Message, ProtocolError, Role, State};

#[path = "support/counting.rs"]
mod counting;
use counting::allocated;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// `deflate::INFLATE_CHUNK`: what inflating may allocate past its limit.
const CHUNK: usize = 16 * KIB;

const PARAMS: DeflateParams = DeflateParams {
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

/// An open server connection that negotiated permessage-deflate (default parameters).
fn server(config: Config) -> Connection {
    let response = http::Response::builder()
        .status(101)
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .body(())
        .unwrap();
    let conn = Connection::from_response(Role::Server, config, &response);
    assert_eq!(conn.extensions()[0].name, "permessage-deflate");
    conn
}

/// The client's compressor, as a peer would compress (level 6, context takeover).
fn client_codec() -> Codec {
    Codec::new(
        Role::Client,
        PARAMS,
        &DeflateConfig::default().with_threshold(0),
    )
}

/// `payload` compressed as one message, without the sync-flush tail.
fn compress(payload: &[u8]) -> Vec<u8> {
    client_codec().compress(payload).unwrap().to_vec()
}

/// One masked client frame; `rsv1` marks the first frame of a compressed message.
fn frame(fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let header = FrameHeader {
        fin,
        rsv: if rsv1 { 0b100 } else { 0 },
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut head = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut wire = head[..n].to_vec();
    let start = wire.len();
    wire.extend_from_slice(payload);
    apply_mask(&mut wire[start..], key, 0);
    wire
}

/// A compressed binary message cut into frames of the compressed bytes at `cuts`.
fn fragmented(compressed: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(compressed.len());
    let mut wire = Vec::new();
    for (i, pair) in bounds.windows(2).enumerate() {
        let last = i + 2 == bounds.len();
        let opcode = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        wire.extend(frame(last, i == 0, opcode, &compressed[pair[0]..pair[1]]));
    }
    wire
}

/// Feeds `wire` to `conn` and returns every event it gives.
fn feed(conn: &mut Connection, wire: &[u8]) -> Vec<Event> {
    conn.receive(wire);
    std::iter::from_fn(|| conn.next_event()).collect()
}

/// The one message `wire` makes.
fn received(conn: &mut Connection, wire: &[u8]) -> Message {
    let mut events = feed(conn, wire);
    match (events.pop(), events.is_empty()) {
        (Some(Event::Message(m)), true) => m,
        other => panic!("expected one message: {other:?}"),
    }
}

/// Checks that the connection failed with `error` and sent close 1009 with its text.
fn assert_1009(conn: &mut Connection, events: &[Event], error: impl Fn(&ProtocolError) -> bool) {
    let Some(Event::Error(e)) = events.last() else {
        panic!("expected an error, got {events:?}")
    };
    assert!(error(e), "{e:?}");
    assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
    let sent = conn.data_to_send();
    assert_eq!(sent[0], 0x88, "a close frame: {sent:x?}");
    assert_eq!(u16::from_be_bytes([sent[2], sent[3]]), 1009);
    let reason = std::str::from_utf8(&sent[4..]).unwrap();
    assert_eq!(reason, e.to_string(), "the reason says why");
    assert_eq!(conn.state(), State::Closed);
}

fn is_ratio(e: &ProtocolError) -> bool {
    matches!(e, ProtocolError::Inflate(InflateError::Ratio { .. }))
}

/// The ratio error's figures: (compressed bytes inflated, the limit they allowed).
fn ratio_figures(events: &[Event]) -> (usize, usize) {
    match events.last() {
        Some(Event::Error(ProtocolError::Inflate(InflateError::Ratio { compressed, limit }))) => {
            (*compressed, *limit)
        }
        other => panic!("expected a ratio error: {other:?}"),
    }
}

/// `len` bytes of telemetry-like JSON (timestamps, a few devices, readings): about 19x with
/// zlib's level 6, the compressible end of real JSON.
fn telemetry_json(len: usize) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let mut out = b"[".to_vec();
    let mut i = 0u64;
    while out.len() < len - 1 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let (device, tenths) = ((seed >> 24) % 8, 200 + (seed >> 8) % 10);
        out.extend_from_slice(
            format!(
                r#"{{"ts":{},"device":"sensor-{device:04}","temperature":{}.{},"status":"ok","unit":"celsius"}},"#,
                1_714_564_800_000 + i * 250,
                tenths / 10,
                tenths % 10
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len - 1);
    out.push(b']');
    out
}

/// `len` incompressible bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn defaults_are_documented_and_setters_set() {
    let config = Config::default();
    assert_eq!(
        (config.max_inflate_ratio, config.inflate_ratio_floor),
        (128, MIB)
    );
    let config = config
        .with_max_inflate_ratio(64)
        .with_inflate_ratio_floor(64 * KIB);
    assert_eq!(
        (config.max_inflate_ratio, config.inflate_ratio_floor),
        (64, 64 * KIB)
    );
}

/// The issue's bomb: 64 MiB of zeros, about 64 KiB compressed, fits the default message limit
/// of 64 MiB. As a whole message it fails with 1009 once past the floor (1 MiB; its compressed
/// bytes so far allow 128 KiB); as the first frame of a message (which, without the ratio,
/// the connection held whole while waiting for the next one) at its first 16 KiB inflate step.
/// Either way having allocated little, and kept nothing. With the ratio turned off the same
/// first frame is accepted, and the connection holds its 64 MiB while it waits for the rest of
/// the message: what the limit saves.
#[test]
fn bomb_fails_1009_having_allocated_little() {
    let bomb = compress(&vec![0; 64 * MIB]);
    assert!(
        (60 * KIB..70 * KIB).contains(&bomb.len()),
        "64 MiB of zeros: {} bytes",
        bomb.len()
    );
    for fin in [true, false] {
        let mut conn = server(Config::default());
        let wire = frame(fin, true, OpCode::Binary, &bomb);
        let (events, used) = allocated(|| feed(&mut conn, &wire));
        let (compressed, limit) = ratio_figures(&events);
        assert_1009(&mut conn, &events, is_ratio);
        assert!(compressed < 2 * KIB, "{compressed} bytes inflated");
        assert_eq!(limit, if fin { MIB } else { 128 * compressed });
        // The frame in the read buffer, zlib's inflate state (47 KiB, its 32 KiB window
        // included), and the output up to the limit and one step, in a vector that grows by
        // doubling.
        let bound = bomb.len() + 128 * KIB + 2 * (limit + CHUNK);
        assert!(used.peak <= bound, "fin {fin}: peak {} bytes", used.peak);
        // Nothing of it is kept but the inflate state (context takeover) and the close frame.
        assert!(used.held < 64 * KIB, "fin {fin}: {} bytes held", used.held);
        eprintln!(
            "bomb of {} bytes, fin {fin}: 1009 after {compressed} bytes inflated, at a peak of \
             {:.1} KiB, {:.1} KiB held after",
            bomb.len(),
            used.peak as f64 / KIB as f64,
            used.held as f64 / KIB as f64
        );
    }

    let mut conn = server(Config::default().with_max_inflate_ratio(usize::MAX));
    let wire = frame(false, true, OpCode::Binary, &bomb);
    let (events, used) = allocated(|| feed(&mut conn, &wire));
    assert!(events.is_empty(), "{events:?}");
    assert!(
        used.held >= 64 * MIB,
        "without the ratio: {} bytes held",
        used.held
    );
    eprintln!(
        "without the ratio: the connection holds {:.1} MiB, waiting for the next frame",
        used.held as f64 / MIB as f64
    );
}

/// The same bomb cut into 1 KiB frames: each inflates to about 1 MiB, 1000x its bytes, and
/// the first already fails (a frame of a message in progress gets no floor).
#[test]
fn bomb_in_small_fragments_fails_at_the_first() {
    let bomb = compress(&vec![0; 64 * MIB]);
    let cuts: Vec<usize> = (1..bomb.len() / KIB).map(|i| i * KIB).collect();
    let mut conn = server(Config::default());
    let wire = fragmented(&bomb, &cuts);
    let (events, used) = allocated(|| feed(&mut conn, &wire));
    let (compressed, _) = ratio_figures(&events);
    assert!(compressed <= KIB, "{compressed} bytes inflated");
    assert_1009(&mut conn, &events, is_ratio);
    // The wire bytes in the read buffer, the inflate state, one step of output.
    let bound = wire.len() + 128 * KIB + 2 * CHUNK;
    assert!(used.peak <= bound, "peak {} bytes", used.peak);
}

/// Real-looking JSON at about 20x passes, in one frame and in fragments, with the ratio far
/// from its limit.
#[test]
fn json_at_20x_passes_whole_and_fragmented() {
    let json = telemetry_json(4 * MIB);
    let compressed = compress(&json);
    let ratio = json.len() / compressed.len();
    assert!((15..=30).contains(&ratio), "JSON compressed {ratio}x");
    let mut conn = server(Config::default());
    let m = received(&mut conn, &frame(true, true, OpCode::Binary, &compressed));
    assert!(m.as_bytes() == &json[..]);
    // In 4 KiB frames of compressed bytes (each about 80 KiB inflated), then in one tiny
    // first frame and the rest.
    for cuts in [
        (1..compressed.len() / (4 * KIB))
            .map(|i| i * 4 * KIB)
            .collect::<Vec<_>>(),
        vec![3],
    ] {
        let mut conn = server(Config::default());
        let m = received(&mut conn, &fragmented(&compressed, &cuts));
        assert!(m.as_bytes() == &json[..], "{} cuts", cuts.len());
    }
}

/// A message completed by one frame may reach the floor (1 MiB) whatever its ratio: 1 MiB of
/// zeros (about 1000x) passes, one byte more fails, and so does the same 1 MiB as a frame of a
/// message in progress (what a stalled peer would make the connection hold). Small messages
/// that repeat the previous one (context takeover: a few hundred bytes each) pass too.
#[test]
fn small_messages_pass_at_any_ratio_up_to_the_floor() {
    let zeros = vec![0; MIB];
    let compressed = compress(&zeros);
    assert!(zeros.len() / compressed.len() > 900, "{}", compressed.len());
    let mut conn = server(Config::default());
    let m = received(&mut conn, &frame(true, true, OpCode::Binary, &compressed));
    assert_eq!(m.len(), MIB);

    let over = compress(&vec![0; MIB + 1]);
    let mut conn = server(Config::default());
    let events = feed(&mut conn, &frame(true, true, OpCode::Binary, &over));
    assert_eq!(ratio_figures(&events).1, MIB);
    assert_1009(&mut conn, &events, is_ratio);

    let mut conn = server(Config::default());
    let mut wire = frame(false, true, OpCode::Binary, &compressed);
    wire.extend(frame(true, false, OpCode::Continuation, b""));
    let events = feed(&mut conn, &wire);
    assert_1009(&mut conn, &events, is_ratio);

    // The floor is configurable: at 64 KiB, 1 MiB of zeros fails.
    let mut conn = server(Config::default().with_inflate_ratio_floor(64 * KIB));
    let events = feed(&mut conn, &frame(true, true, OpCode::Binary, &compressed));
    assert_1009(&mut conn, &events, is_ratio);

    // Context takeover: the same 16 KiB text ten times, the repeats a few hundred bytes each.
    let text = String::from_utf8(telemetry_json(16 * KIB)).unwrap();
    let mut peer = client_codec();
    let mut conn = server(Config::default());
    for i in 0..10 {
        let compressed = peer.compress(text.as_bytes()).unwrap();
        if i > 0 {
            assert!(compressed.len() < KIB, "{} bytes", compressed.len());
        }
        let m = received(&mut conn, &frame(true, true, OpCode::Text, &compressed));
        assert_eq!(m.as_text(), Some(text.as_str()));
    }
}

/// The compressed bytes of all the frames of a message count together: 4 MiB of zeros after
/// 128 KiB of noise passes in two frames (the second alone is 1000x, the message 31x), while
/// the zeros after a few bytes of noise fail. The inflated bytes count together too, and the
/// message size limit stays the absolute cap.
#[test]
fn fragments_are_accounted_together() {
    let mut payload = noise(128 * KIB);
    payload.extend(vec![0; 4 * MIB]);
    let compressed = compress(&payload);
    // The noise is stored (about 1:1); the zeros take the rest.
    let cut = 128 * KIB;
    assert!(compressed.len() - cut < 8 * KIB, "{}", compressed.len());
    let mut conn = server(Config::default());
    let m = received(&mut conn, &fragmented(&compressed, &[cut]));
    assert!(m.as_bytes() == &payload[..]);

    let mut payload = noise(16);
    payload.extend(vec![0; 4 * MIB]);
    let compressed = compress(&payload);
    let mut conn = server(Config::default());
    let events = feed(&mut conn, &fragmented(&compressed, &[16]));
    assert_1009(&mut conn, &events, is_ratio);

    // Fragments each well within the ratio, together past a 1 MiB message limit.
    let json = telemetry_json(2 * MIB);
    let compressed = compress(&json);
    let cuts: Vec<usize> = (1..compressed.len() / (4 * KIB))
        .map(|i| i * 4 * KIB)
        .collect();
    let mut conn = server(Config::default().with_max_message_size(MIB));
    let events = feed(&mut conn, &fragmented(&compressed, &cuts));
    assert_1009(&mut conn, &events, |e| {
        matches!(e, ProtocolError::Inflate(InflateError::TooBig(_)))
    });
}

/// The ratio is checked as inflation runs, so a message of more than the floor whose start is
/// far more compressible than the rest fails, although the whole (here 2 MiB of zeros and
/// 256 KiB of noise, 9x) would pass: the documented price of stopping bombs early. Without the
/// ratio it passes.
#[test]
fn a_highly_compressible_start_past_the_floor_fails() {
    let mut payload = vec![0; 2 * MIB];
    payload.extend(noise(256 * KIB));
    let compressed = compress(&payload);
    assert!(payload.len() / compressed.len() < 10);
    let wire = frame(true, true, OpCode::Binary, &compressed);
    let mut conn = server(Config::default());
    let events = feed(&mut conn, &wire);
    assert_1009(&mut conn, &events, is_ratio);
    let mut conn = server(Config::default().with_max_inflate_ratio(usize::MAX));
    assert!(received(&mut conn, &wire).as_bytes() == &payload[..]);
}

/// Turned off (`usize::MAX`), only the message limit bounds a compressed message.
#[test]
fn ratio_off() {
    let compressed = compress(&vec![0; 8 * MIB]);
    let mut conn = server(Config::default().with_max_inflate_ratio(usize::MAX));
    assert_eq!(
        received(&mut conn, &frame(true, true, OpCode::Binary, &compressed)).len(),
        8 * MIB
    );
    let mut conn = server(
        Config::default()
            .with_max_inflate_ratio(usize::MAX)
            .with_max_message_size(4 * MIB),
    );
    let events = feed(&mut conn, &frame(true, true, OpCode::Binary, &compressed));
    assert_1009(&mut conn, &events, |e| {
        matches!(e, ProtocolError::Inflate(InflateError::TooBig(_)))
    });
}
