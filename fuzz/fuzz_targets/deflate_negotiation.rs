//! permessage-deflate negotiation (RFC 7692 7): the server's `negotiate` on fuzzed offers, the
//! client's `verify_response` on fuzzed answers, and the codecs the negotiation yields.
//!
//! Input: four configuration bytes, then `Sec-WebSocket-Extensions` field values separated by
//! newlines, then a NUL, then message payloads.
//!
//! Invariants: negotiated window bits are 8-15 and never above what the server allows (nor,
//! for the client's window, above what the offer allows); flags the server requires are set;
//! a response element reads back as the parameters it came from; the client only accepts
//! answers within its offer; our own server's answer to our own client's offer is accepted by
//! that client with the same parameters; messages compressed by one side with those
//! parameters inflate to the same bytes on the other.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{Input, deflate_config, pieces};
use tolqin_proto::Role;
use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams, NAME};
use tolqin_proto::handshake::parse_extensions;

const LIMIT: usize = 1 << 20;

fn check_params(p: &DeflateParams) {
    assert!((8..=15).contains(&p.server_max_window_bits), "{p:?}");
    assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
    assert_eq!(DeflateConfig::params_of_response(&p.to_extension()), Ok(*p));
}

/// Compresses each message on `from` and inflates it on `to`.
fn round_trip(from: &mut Codec, to: &mut Codec, messages: &[&[u8]]) {
    for message in messages {
        let Some(compressed) = from.compress(message) else {
            continue;
        };
        let mut out = Vec::new();
        to.inflate(&compressed, true, LIMIT, &mut out)
            .expect("our own compressed message inflates");
        assert_eq!(&out[..], *message);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let server = deflate_config(input.byte(), input.byte());
    let client = deflate_config(input.byte(), input.byte());
    let rest = input.rest();
    let (headers, payload) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(values) = headers
        .split(|&b| b == b'\n')
        .map(HeaderValue::from_bytes)
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let offers = parse_extensions(&values).unwrap_or_default();

    // Server side.
    let has_offer = offers.iter().any(|e| e.name.eq_ignore_ascii_case(NAME));
    match server.negotiate(&offers) {
        Ok(Some(p)) => {
            assert!(has_offer);
            check_params(&p);
            assert!(p.server_max_window_bits <= server.server_max_window_bits);
            assert!(
                p.client_max_window_bits <= server.client_max_window_bits
                    || p.client_max_window_bits == 15
            );
            assert!(p.server_no_context_takeover || !server.server_no_context_takeover);
            assert!(p.client_no_context_takeover || !server.client_no_context_takeover);
        }
        Ok(None) => assert!(!has_offer),
        Err(_) => assert!(has_offer),
    }
    assert_eq!(DeflateConfig::disabled().negotiate(&offers), Ok(None));

    // Client side: any answer it accepts stays within its offer.
    for answer in &offers {
        if let Ok(p) = client.verify_response(answer) {
            check_params(&p);
            assert!(p.server_max_window_bits <= client.server_max_window_bits);
            assert!(p.client_max_window_bits <= client.client_max_window_bits);
            assert!(p.server_no_context_takeover || !client.server_no_context_takeover);
            assert!(p.client_no_context_takeover || !client.client_no_context_takeover);
        }
    }

    // Our own client and server agree.
    let p = server
        .negotiate(&[client.offer()])
        .expect("our own offer is valid")
        .expect("our own offer is accepted");
    check_params(&p);
    assert_eq!(client.verify_response(&p.to_extension()), Ok(p));

    // And the codecs built from the agreement understand each other. (Only when the input
    // has a payload part: creating four zlib streams dominates the cost of a run.)
    if payload.is_empty() {
        return;
    }
    let sizes: Vec<usize> = payload
        .iter()
        .take(2)
        .map(|&b| usize::from(b) * 8)
        .collect();
    let messages = pieces(payload, &sizes);
    let mut client_codec = Codec::new(Role::Client, p, &client);
    let mut server_codec = Codec::new(Role::Server, p, &server);
    round_trip(&mut client_codec, &mut server_codec, &messages);
    round_trip(&mut server_codec, &mut client_codec, &messages);
});
