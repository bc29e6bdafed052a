//! The server's handshake request parser and checks: `parse_request`, `validate_request`,
//! permessage-deflate negotiation, and the answers built from them.
//!
//! Invariants: a complete head ends within the input and the size limit, and is found again
//! (with the same length) in the input cut right after it; shorter cuts are incomplete, never
//! errors; a valid request's `101` carries the right `Sec-WebSocket-Accept` and parses back;
//! every error's HTTP answer parses back with the error's status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::Input;
use tolqin_proto::Config;
use tolqin_proto::deflate::DeflateParams;
use tolqin_proto::handshake::{
    self, HandshakeError, derive_accept_key, encode_response, error_response, parse_request,
    parse_response, validate_request,
};

/// Parses back a response this crate encoded.
fn reparse(out: &[u8]) -> http::Response<()> {
    let config = Config::default().with_max_header_block(1 << 20);
    let (response, n) = parse_response(out, &config)
        .expect("own response parses")
        .expect("own response is complete");
    assert!(n <= out.len());
    response
}

fn check_error(err: &HandshakeError) {
    let mut out = Vec::new();
    encode_response(&error_response(err), &mut out);
    assert_eq!(reparse(&out).status(), err.status());
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let limits = input.byte();
    let cut = input.byte();
    let data = input.rest();
    let config = if limits & 1 != 0 {
        Config::default()
            .with_max_header_block(256)
            .with_max_headers(8)
    } else {
        Config::default()
    };
    let (request, len) = match parse_request(data, &config) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            assert!(data.len() <= config.max_header_block);
            return;
        }
        Err(err) => {
            check_error(&err);
            return;
        }
    };
    assert!(len <= data.len() && len <= config.max_header_block);
    assert!(data[..len].ends_with(b"\n"));
    // The same head, cut right after it.
    let (again, again_len) = parse_request(&data[..len], &config)
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(again_len, len);
    assert_eq!(again.uri(), request.uri());
    assert_eq!(again.headers(), request.headers());
    // A shorter cut is incomplete.
    let short = usize::from(cut) % len;
    assert!(
        matches!(parse_request(&data[..short], &config), Ok(None)),
        "a prefix of {short} bytes of a complete head"
    );

    let valid = match validate_request(&request) {
        Ok(valid) => valid,
        Err(err) => {
            check_error(&err);
            return;
        }
    };
    assert_eq!(valid.key.len(), 24);
    let params = match config.deflate.negotiate(&valid.extensions) {
        Ok(params) => params,
        Err(err) => {
            check_error(&HandshakeError::from(err));
            return;
        }
    };
    let extensions: Vec<_> = params.iter().map(DeflateParams::to_extension).collect();
    let protocol = valid.protocols.first().map(String::as_str);
    let mut out = Vec::new();
    encode_response(&valid.accept(protocol, &extensions), &mut out);
    let response = reparse(&out);
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        derive_accept_key(valid.key.as_bytes()).as_str()
    );
    let answered =
        handshake::parse_extensions(response.headers().get_all("sec-websocket-extensions"))
            .expect("own extensions header parses");
    assert_eq!(answered, extensions);
});
