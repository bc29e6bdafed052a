//! Every public, safe way to build a text value, fed arbitrary bytes (issue 17).
//!
//! tolqin-proto hands out `&str` through `from_utf8_unchecked` in two places (`Utf8Bytes::as_str`
//! and the ASCII fast path of `utf8::validate_str`), so every text it yields must be valid UTF-8
//! whatever a caller or a peer does. This target drives each way in, with arbitrary input:
//! - `Utf8Bytes::try_from` (`Vec<u8>` and `Bytes`), `utf8::validate_str`, `Utf8Validator` fed in
//!   arbitrary pieces, `CloseFrame::parse`: each accepts exactly what `std::str::from_utf8` does;
//! - a `Connection` of either role, with or without permessage-deflate, fed hand-made frames of
//!   any opcode, FIN and RSV1 bit, with arbitrary payloads (invalid UTF-8, text continued by
//!   binary, a new message in the middle of another), in arbitrary pieces, its messages taken
//!   whole (`next_event`) or lent (`next_event_with`): every text message, lent text and close
//!   reason it yields passes `std::str::from_utf8`.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{accept_response, assert_str_valid, assert_text_valid, deflate_params, pieces};
use tolqin_proto::close::CloseFrame;
use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams};
use tolqin_proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin_proto::handshake::{self, Extension};
use tolqin_proto::mask::apply_mask;
use tolqin_proto::utf8::{Utf8Validator, validate_str};
use tolqin_proto::{Config, Connection, Event, Message, Role, Utf8Bytes};

#[derive(Debug, Arbitrary)]
enum Case {
    /// The conversions and validators, on the same bytes.
    Bytes { data: Vec<u8>, cuts: Vec<u8> },
    /// A connection fed frames.
    Frames(Plan),
}

#[derive(Debug, Arbitrary)]
struct Plan {
    /// A server (reading masked frames) or a client (reading unmasked ones).
    server: bool,
    /// permessage-deflate negotiated with these parameters (two bytes, as the other targets).
    deflate: Option<(u8, u8)>,
    /// Messages lent (`next_event_with`) instead of returned.
    lend: bool,
    frames: Vec<RawFrame>,
    /// Sizes of the pieces the connection reads (none: all at once).
    splits: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct RawFrame {
    fin: bool,
    /// Low 4 bits: the opcode, any of them (continuation, text, binary, reserved, control).
    opcode: u8,
    /// Compressed (RSV1) with the negotiated codec when there is one, else RSV1 set as is.
    compressed: bool,
    payload: Vec<u8>,
    key: [u8; 4],
}

fn check_bytes(data: &[u8], cuts: &[u8]) {
    let std_ok = std::str::from_utf8(data).is_ok();

    let from_vec = Utf8Bytes::try_from(data.to_vec());
    assert_eq!(from_vec.is_ok(), std_ok, "try_from(Vec) disagrees with std");
    if let Ok(text) = &from_vec {
        assert_str_valid(text.as_str());
        assert_eq!(text.as_bytes(), data);
    }
    let from_bytes = Utf8Bytes::try_from(Bytes::copy_from_slice(data));
    assert_eq!(from_bytes.is_ok(), std_ok, "try_from(Bytes) disagrees with std");
    if let Ok(text) = &from_bytes {
        assert_str_valid(text);
        assert_text_valid((&Message::Text(text.clone())).into());
    }

    match validate_str(data) {
        Ok(text) => {
            assert!(std_ok, "validate_str accepted invalid UTF-8");
            assert_str_valid(text);
            assert_eq!(text.as_bytes(), data);
        }
        Err(_) => assert!(!std_ok, "validate_str refused valid UTF-8"),
    }

    let sizes: Vec<usize> = cuts.iter().map(|&c| usize::from(c)).collect();
    let mut validator = Utf8Validator::new();
    let streamed = pieces(data, &sizes)
        .into_iter()
        .try_for_each(|piece| validator.feed(piece))
        .and_then(|()| validator.finish());
    assert_eq!(streamed.is_ok(), std_ok, "Utf8Validator disagrees with std");

    if let Ok(close) = CloseFrame::parse(Bytes::copy_from_slice(data)) {
        assert_str_valid(&close.reason);
        if data.len() >= 2 {
            assert_eq!(close.reason.as_bytes(), &data[2..]);
        }
    }
}

fn run_frames(plan: Plan) {
    let role = if plan.server { Role::Server } else { Role::Client };
    let params = plan.deflate.map(|(flags, bits)| deflate_params(flags, bits));
    let config = Config::default().with_max_message_size(64 * 1024);
    // Open, with permessage-deflate as a 101 response would have negotiated it.
    let extensions: Vec<Extension> = params.iter().map(DeflateParams::to_extension).collect();
    let response_bytes = accept_response(&extensions);
    let (response, _) = handshake::parse_response(&response_bytes, &Config::default())
        .expect("own 101 parses")
        .expect("own 101 is complete");
    let mut conn = Connection::from_response(role, config, &response);
    let peer_role = if plan.server { Role::Client } else { Role::Server };
    let mut codec = params.map(|p| Codec::new(peer_role, p, &DeflateConfig::default()));

    let mut stream = Vec::new();
    for frame in &plan.frames {
        let opcode = OpCode::from_bits(frame.opcode & 0x0f);
        let mut rsv = 0;
        let mut payload = frame.payload.clone();
        if frame.compressed {
            rsv = 0b100;
            if let Some(codec) = codec.as_mut()
                && let Some(compressed) = codec.compress(&payload)
            {
                payload = compressed.to_vec();
            }
        }
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = frame.fin;
        header.rsv = rsv;
        header.mask = plan.server.then_some(frame.key);
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        stream.extend_from_slice(&head[..n]);
        let at = stream.len();
        stream.extend_from_slice(&payload);
        if plan.server {
            apply_mask(&mut stream[at..], frame.key, 0);
        }
    }

    let sizes: Vec<usize> = plan.splits.iter().map(|&s| usize::from(s)).collect();
    'feed: for piece in pieces(&stream, &sizes) {
        conn.receive(piece);
        loop {
            let event = if plan.lend {
                match conn.next_event_with(|m, _out| {
                    assert_text_valid(m);
                    Ok::<_, std::convert::Infallible>(())
                }) {
                    Ok(event) => event,
                    Err(never) => match never {},
                }
            } else {
                conn.next_event()
            };
            let Some(event) = event else { break };
            match &event {
                Event::Message(m) => assert_text_valid(m.into()),
                Event::Close(frame) => assert_str_valid(&frame.reason),
                _ => {}
            }
            if matches!(event, Event::Error(_) | Event::Close(_)) {
                break 'feed;
            }
        }
        let _ = conn.data_to_send();
    }
}

fuzz_target!(|case: Case| match case {
    Case::Bytes { data, cuts } => check_bytes(&data, &cuts),
    Case::Frames(plan) => run_frames(plan),
});
