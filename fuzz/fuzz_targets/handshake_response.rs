//! The client's handshake response parser and checks: `parse_response`,
//! `ClientHandshake::verify`, permessage-deflate `verify_response`, and `Connection::client`
//! fed the same bytes.
//!
//! Invariants: a complete head ends within the input and the limit, and parses again alone
//! with the same length, while shorter cuts are incomplete; an accepted handshake names only
//! what was offered; the connection opens exactly when parsing and verification succeed, and
//! then has the negotiated subprotocol and extensions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{Input, client_handshake, deflate_config};
use tolqin_proto::handshake::{HandshakeError, parse_response};
use tolqin_proto::{Config, Connection, Event, State};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.byte();
    let dflags = input.byte();
    let dbits = input.byte();
    let cut = input.byte();
    let data = input.rest();
    let mut config = if mode & 1 != 0 {
        Config::default()
            .with_max_header_block(256)
            .with_max_headers(8)
    } else {
        Config::default()
    };
    let deflate = (mode & 2 != 0).then(|| deflate_config(dflags, dbits));
    if let Some(deflate) = &deflate {
        config = config.with_deflate(deflate.clone());
    }
    let handshake = client_handshake(deflate.as_ref());

    // The same bytes through a client connection.
    let mut conn = Connection::client(handshake.clone(), config.clone());
    let _request = conn.data_to_send();
    conn.receive(data);
    let event = conn.next_event();

    let expected: Result<Option<()>, HandshakeError> = (|| {
        let Some((response, len)) = parse_response(data, &config)? else {
            assert!(data.len() <= config.max_header_block);
            return Ok(None);
        };
        assert!(len <= data.len() && len <= config.max_header_block);
        let (again, again_len) = parse_response(&data[..len], &config)
            .expect("the head alone parses")
            .expect("the head alone is complete");
        assert_eq!((again.status(), again_len), (response.status(), len));
        assert_eq!(again.headers(), response.headers());
        let short = usize::from(cut) % len;
        assert!(
            matches!(parse_response(&data[..short], &config), Ok(None)),
            "a prefix of {short} bytes of a complete head"
        );

        let accepted = handshake.verify(&response)?;
        if let Some(protocol) = &accepted.protocol {
            assert!(protocol == "chat" || protocol == "superchat");
        }
        for (i, ext) in accepted.extensions.iter().enumerate() {
            assert_eq!(ext.name, "permessage-deflate", "only offered extensions");
            if i > 0 {
                return Err(tolqin_proto::deflate::NegotiationError::Repeated.into());
            }
            let offer = deflate.as_ref().expect("offered");
            let params = offer.verify_response(ext)?;
            assert!(params.server_max_window_bits <= offer.server_max_window_bits);
            assert!(params.client_max_window_bits <= offer.client_max_window_bits);
            assert!(params.server_no_context_takeover || !offer.server_no_context_takeover);
            assert!(params.client_no_context_takeover || !offer.client_no_context_takeover);
        }
        assert_eq!(conn.protocol(), accepted.protocol.as_deref());
        assert_eq!(conn.extensions(), accepted.extensions.as_slice());
        Ok(Some(()))
    })();

    match (expected, event) {
        (Ok(None), None) => assert_eq!(conn.state(), State::Connecting),
        (Ok(Some(())), Some(Event::Open(_))) => assert_eq!(conn.state(), State::Open),
        (Err(err), Some(Event::HandshakeFailed(failed))) => {
            assert_eq!(err, failed);
            assert_eq!(conn.state(), State::Closed);
        }
        (expected, event) => panic!("parse and verify gave {expected:?}, the connection {event:?}"),
    }
});
