//! The `Sec-WebSocket-Extensions` and `Sec-WebSocket-Protocol` header parsers on arbitrary
//! field values (the input split at newlines into several fields).
//!
//! Invariants: what parses is made of tokens and round-trips through `to_header_string` /
//! joining with ", "; several fields parse as the concatenation of each field's elements, and
//! fail exactly when one of them does; every parsed subprotocol is found by
//! `header_contains_token`.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tolqin_proto::handshake::{
    Extension, HandshakeError, header_contains_token, parse_extensions, parse_protocols,
};

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("tokens make a valid header value")
}

fuzz_target!(|data: &[u8]| {
    let Ok(values) = data
        .split(|&b| b == b'\n')
        .map(HeaderValue::from_bytes)
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };

    // Sec-WebSocket-Extensions
    let parsed = parse_extensions(&values);
    let per_field: Vec<_> = values.iter().map(|v| parse_extensions([v])).collect();
    match &parsed {
        Ok(extensions) => {
            let concatenated: Vec<Extension> = per_field
                .iter()
                .flat_map(|r| r.clone().expect("each field parses"))
                .collect();
            assert_eq!(&concatenated, extensions);
            for ext in extensions {
                assert!(is_token(&ext.name), "{ext:?}");
                for (name, v) in &ext.params {
                    assert!(is_token(name), "{ext:?}");
                    assert!(v.as_deref().is_none_or(is_token), "{ext:?}");
                }
                let one = ext.to_header_string();
                assert_eq!(
                    parse_extensions([&value(&one)]),
                    Ok(vec![ext.clone()]),
                    "{one}"
                );
            }
            if !extensions.is_empty() {
                let joined: Vec<String> =
                    extensions.iter().map(Extension::to_header_string).collect();
                let joined = joined.join(", ");
                assert_eq!(parse_extensions([&value(&joined)]).as_ref(), Ok(extensions));
            }
        }
        Err(err) => {
            assert_eq!(err, &HandshakeError::BadExtensionHeader);
            assert!(per_field.iter().any(Result::is_err));
        }
    }

    // Sec-WebSocket-Protocol
    match parse_protocols(&values) {
        Ok(protocols) => {
            let mut headers = HeaderMap::new();
            for v in &values {
                headers.append("sec-websocket-protocol", v.clone());
            }
            let items: usize = values
                .iter()
                .map(|v| v.as_bytes().split(|&b| b == b',').count())
                .sum();
            assert_eq!(protocols.len(), items);
            for protocol in &protocols {
                assert!(is_token(protocol), "{protocol:?}");
                assert!(header_contains_token(
                    &headers,
                    "sec-websocket-protocol",
                    protocol
                ));
            }
            if !protocols.is_empty() {
                let joined = protocols.join(", ");
                assert_eq!(parse_protocols([&value(&joined)]), Ok(protocols.clone()));
            }
        }
        Err(err) => assert_eq!(err, HandshakeError::BadProtocolHeader),
    }
});
