//! The opening handshake (RFC 6455 section 4) for both roles, on the `http` crate's types.
//!
//! Like the rest of the crate this module does no I/O: it turns bytes into `http` heads and back,
//! and checks them. The flow for each role:
//!
//! * client: [`ClientRequest`] → [`ClientHandshake::encode`] → (send, receive) →
//!   [`parse_response`] → [`ClientHandshake::verify`];
//! * server: [`parse_request`] → [`validate_request`] → [`ValidRequest::accept`] or
//!   [`error_response`] → [`encode_response`] → (send).
//!
//! Both parsers return the length of the HTTP head; the bytes after it already belong to the
//! WebSocket stream and must be handed to the [`Connection`](crate::Connection).
//!
//! ```
//! use tolqin_proto::Config;
//! use tolqin_proto::handshake::{
//!     ClientRequest, encode_response, parse_request, parse_response, validate_request,
//! };
//!
//! let config = Config::default();
//!
//! // Client: build and send the request.
//! let uri = "ws://example.com/chat".parse().unwrap();
//! let client = ClientRequest::new(uri)?.protocol("chat").build()?;
//! let mut wire = Vec::new();
//! client.encode(&mut wire);
//!
//! // Server: parse, check, accept.
//! let (request, head_len) = parse_request(&wire, &config)?.expect("complete head");
//! assert_eq!(head_len, wire.len());
//! let valid = validate_request(&request)?;
//! let chosen = valid.protocols.first().map(String::as_str);
//! let mut reply = Vec::new();
//! encode_response(&valid.accept(chosen, &[]), &mut reply);
//!
//! // Client: parse and verify the answer.
//! let (response, _) = parse_response(&reply, &config)?.expect("complete head");
//! let accepted = client.verify(&response)?;
//! assert_eq!(accepted.protocol.as_deref(), Some("chat"));
//! # Ok::<(), tolqin_proto::handshake::HandshakeError>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::StatusCode;
use sha1::{Digest as _, Sha1};

mod client;
mod headers;
mod http1;
mod server;

pub use client::{Accepted, ClientHandshake, ClientRequest};
pub use headers::{Extension, header_contains_token, parse_extensions, parse_protocols};
pub use http1::{ResponseBody, encode_response, parse_request, parse_response};
pub use server::{ValidRequest, error_response, validate_request};

/// The GUID appended to `Sec-WebSocket-Key` before hashing (RFC 6455 1.3 and 4.2.2 step 5.4).
pub const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// RFC 6455 4.1 item 9 and 4.2.1 item 6: the only protocol version this crate speaks.
const WEBSOCKET_VERSION: &str = "13";

// RFC 6455 4.1 item 7: the key is a nonce of 16 random bytes, base64-encoded.
const KEY_BYTES: usize = 16;

/// Computes the `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value.
///
/// This is `base64(SHA-1(key ++ ACCEPT_GUID))` (RFC 6455 4.2.2 step 5.4). `key` is the header
/// value as sent, without leading or trailing whitespace; it is hashed as is, not decoded.
///
/// ```
/// use tolqin_proto::handshake::derive_accept_key;
/// // RFC 6455 1.3
/// assert_eq!(derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn derive_accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Generates a fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded (RFC 6455 4.1 item 7).
pub fn generate_key() -> String {
    let nonce: [u8; KEY_BYTES] = rand::random();
    BASE64.encode(nonce)
}

/// Returns true if `key` is the base64 encoding of exactly 16 bytes (RFC 6455 4.2.1 item 5).
fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes encode to exactly 24 characters with padding; checking the length first keeps a
    // hostile key from costing more than a fixed-size decode.
    let mut decoded = [0u8; KEY_BYTES + 2];
    key.len() == 24 && BASE64.decode_slice(key, &mut decoded) == Ok(KEY_BYTES)
}

/// Everything that can go wrong in the opening handshake, on either side.
///
/// On the server, [`HandshakeError::status`] gives the HTTP status to answer with, and
/// [`error_response`] builds the whole answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The bytes are not a well-formed HTTP/1.x head: [`HttpError`] says where.
    #[error("malformed HTTP head: {0}")]
    Http(HttpError),
    /// The HTTP head is longer than [`Config::max_header_block`](crate::Config::max_header_block).
    #[error("HTTP head is larger than the configured limit")]
    HeaderBlockTooLarge,
    /// The HTTP head has more fields than [`Config::max_headers`](crate::Config::max_headers).
    #[error("HTTP head has more header fields than the configured limit")]
    TooManyHeaders,
    /// The request method is not `GET` (RFC 6455 4.2.1 item 1).
    #[error("the opening handshake must be a GET request")]
    MethodNotGet,
    /// The request is older than HTTP/1.1 (RFC 6455 4.2.1 item 1).
    #[error("the opening handshake requires HTTP/1.1 or later")]
    BadHttpVersion,
    /// The request has no `Host` header, or more than one (RFC 6455 4.2.1 item 2).
    #[error("missing or repeated Host header")]
    MissingHost,
    /// `Upgrade` is missing or does not contain `websocket` (RFC 6455 4.1 and 4.2.1 item 3).
    #[error("Upgrade header does not contain \"websocket\"")]
    MissingUpgrade,
    /// `Connection` is missing or does not contain `Upgrade` (RFC 6455 4.1 and 4.2.1 item 4).
    #[error("Connection header does not contain \"Upgrade\"")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated, or not 16 base64-encoded bytes
    /// (RFC 6455 4.2.1 item 5).
    #[error("Sec-WebSocket-Key is missing, repeated or not 16 base64-encoded bytes")]
    BadKey,
    /// `Sec-WebSocket-Version` is missing, repeated, or not 13 (RFC 6455 4.2.1 item 6).
    #[error("missing or unsupported Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Protocol` is not a list of tokens, or the server's answer names more
    /// than one subprotocol.
    #[error("malformed Sec-WebSocket-Protocol header")]
    BadProtocolHeader,
    /// `Sec-WebSocket-Extensions` does not follow the grammar of RFC 6455 9.1.
    #[error("malformed Sec-WebSocket-Extensions header")]
    BadExtensionHeader,
    /// The URI is not a `ws`/`wss` (or `http`/`https`) URI with a host, or a request target
    /// is not a valid URI.
    #[error("invalid WebSocket URI or request target")]
    BadUri,
    /// A header value contains bytes HTTP does not allow there.
    #[error("header value contains characters not allowed in HTTP")]
    BadHeaderValue,
    /// The server answered with a status other than 101 (RFC 6455 4.1).
    #[error("server answered {0} instead of 101 Switching Protocols")]
    BadStatus(StatusCode),
    /// `Sec-WebSocket-Accept` is missing, repeated, or does not match the key sent
    /// (RFC 6455 4.1).
    #[error("Sec-WebSocket-Accept does not match the key sent")]
    BadAccept,
    /// The server selected a subprotocol the client did not offer (RFC 6455 4.1).
    #[error("server selected subprotocol {0:?}, which was not offered")]
    UnofferedProtocol(String),
    /// The server selected an extension the client did not offer (RFC 6455 4.1).
    #[error("server selected extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// permessage-deflate parameters that are malformed (an offer: 400) or that the offer did
    /// not allow (a response: the client fails the connection with 1010).
    #[error("permessage-deflate negotiation failed: {0}")]
    Deflate(#[from] crate::deflate::NegotiationError),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    ///
    /// 431 for oversized heads, 405 for a method other than GET, 426 for an unsupported
    /// WebSocket version (RFC 6455 4.2.2 step 4), 400 for everything else.
    pub fn status(&self) -> StatusCode {
        // Listed one by one so that a new variant needs a decision here.
        match self {
            Self::HeaderBlockTooLarge | Self::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::Http(_)
            | Self::BadHttpVersion
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::BadKey
            | Self::BadProtocolHeader
            | Self::BadExtensionHeader
            | Self::Deflate(_)
            | Self::BadUri
            | Self::BadHeaderValue
            | Self::BadStatus(_)
            | Self::BadAccept
            | Self::UnofferedProtocol(_)
            | Self::UnofferedExtension(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// What is malformed in an HTTP/1.x head ([`HandshakeError::Http`]).
///
/// tolqin-proto's own type, so that the HTTP parser it uses stays out of its public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A header field name with a byte a token cannot have, or no name before the `:`.
    #[error("invalid header field name")]
    HeaderName,
    /// A header field value with a byte HTTP does not allow there (a bare CR, a control
    /// character).
    #[error("invalid header field value")]
    HeaderValue,
    /// A line that does not end in CRLF (or LF) where it should.
    #[error("invalid line ending")]
    NewLine,
    /// A response's status code is not three digits, or not a status (below 100), or the
    /// status line is malformed.
    #[error("invalid status line")]
    Status,
    /// A request line whose method or request target has a byte they cannot have.
    #[error("invalid request line")]
    Token,
    /// The version is not `HTTP/1.0` or `HTTP/1.1`.
    #[error("invalid or unsupported HTTP version (HTTP/1.0 or HTTP/1.1 expected)")]
    Version,
}

impl From<HttpError> for HandshakeError {
    fn from(err: HttpError) -> Self {
        Self::Http(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../tests/vectors/handshake.json");

    /// The `"key"`/`"accept"` pairs of the vector file, found with a plain string scan
    /// (each pair is one JSON object; base64 never contains quotes or escapes).
    fn vector_pairs(json: &str) -> Vec<(&str, &str)> {
        fn field<'a>(object: &'a str, name: &str) -> Option<&'a str> {
            let after_name = &object[object.find(&format!("\"{name}\""))? + name.len() + 2..];
            let after_colon = after_name.trim_start().strip_prefix(':')?.trim_start();
            let value = after_colon.strip_prefix('"')?;
            Some(&value[..value.find('"')?])
        }
        json.split('{')
            .filter_map(|object| Some((field(object, "key")?, field(object, "accept")?)))
            .collect()
    }

    #[test]
    fn rfc6455_4_2_2_accept_key_vectors() {
        let pairs = vector_pairs(VECTORS);
        assert!(
            pairs.len() >= 3,
            "expected at least 3 pairs, found {pairs:?}"
        );
        for (key, accept) in pairs {
            assert_eq!(derive_accept_key(key.as_bytes()), accept, "key {key}");
        }
    }

    #[test]
    fn rfc6455_1_3_accept_key_example() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc6455_4_1_generated_key_is_16_random_bytes() {
        let first = generate_key();
        assert_eq!(BASE64.decode(&first).unwrap().len(), 16);
        assert!(is_valid_key(first.as_bytes()));
        // 128 random bits: a collision here means the generator is broken.
        assert_ne!(first, generate_key());
    }

    #[test]
    fn rfc6455_4_2_1_key_length_check() {
        let cases: &[(&[u8], bool)] = &[
            (b"dGhlIHNhbXBsZSBub25jZQ==", true),
            (&[b'A'; 24], false),             // 18 bytes, no padding
            (b"AAAAAAAAAAAAAAAAAAAA", false), // 15 bytes
            (b"AAAAAAAAAAAAAAAAAAAAAA==", true),
            (b"AAAAAAAAAAAAAAAAAAAAAAA=", false), // 17 bytes
            (b"dGhlIHNhbXBsZSBub25jZR==", false), // non-canonical trailing bits
            (b"dGhlIHNhbXBsZSBub25jZQ", false),   // padding missing
            (b"dGhlIHNhbXBsZSBub25jZ!==", false),
            (b"", false),
        ];
        for &(key, valid) in cases {
            assert_eq!(
                is_valid_key(key),
                valid,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn rfc6455_4_2_2_error_status_mapping() {
        use HandshakeError as E;
        let cases = [
            (E::HeaderBlockTooLarge, 431),
            (E::TooManyHeaders, 431),
            (E::MethodNotGet, 405),
            (E::UnsupportedVersion, 426),
            (E::Http(HttpError::Token), 400),
            (E::BadHttpVersion, 400),
            (E::MissingHost, 400),
            (E::MissingUpgrade, 400),
            (E::MissingConnectionUpgrade, 400),
            (E::BadKey, 400),
            (E::BadProtocolHeader, 400),
            (E::BadExtensionHeader, 400),
            (E::BadUri, 400),
            (E::BadHeaderValue, 400),
            (E::BadStatus(StatusCode::OK), 400),
            (E::BadAccept, 400),
            (E::UnofferedProtocol("chat".into()), 400),
            (E::UnofferedExtension("x-foo".into()), 400),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
        }
    }

    #[test]
    fn rfc6455_4_2_http_errors_keep_what_went_wrong() {
        assert_eq!(
            HandshakeError::from(HttpError::Version),
            HandshakeError::Http(HttpError::Version)
        );
        assert_eq!(
            HandshakeError::Http(HttpError::HeaderValue).to_string(),
            "malformed HTTP head: invalid header field value"
        );
    }

    #[test]
    fn rfc6455_4_opening_handshake_round_trip() {
        let config = crate::Config::default();
        let client = ClientRequest::new("wss://example.com:8443/chat?room=1".parse().unwrap())
            .unwrap()
            .origin("https://example.com")
            .protocol("chat")
            .protocol("superchat")
            .extension(
                Extension::new("permessage-deflate").with_param("client_max_window_bits", None),
            )
            .build()
            .unwrap();
        let mut wire = Vec::new();
        client.encode(&mut wire);

        let (request, head_len) = parse_request(&wire, &config).unwrap().unwrap();
        assert_eq!(head_len, wire.len());
        let valid = validate_request(&request).unwrap();
        assert_eq!(valid.key, client.key());
        assert_eq!(valid.origin.as_deref(), Some("https://example.com"));
        assert_eq!(valid.protocols, ["chat", "superchat"]);
        assert_eq!(valid.extensions[0].name, "permessage-deflate");

        let agreed =
            Extension::new("permessage-deflate").with_param("client_max_window_bits", Some("10"));
        let mut reply = Vec::new();
        encode_response(
            &valid.accept(Some("superchat"), std::slice::from_ref(&agreed)),
            &mut reply,
        );
        // The server's first frame may arrive in the same read as the head.
        let frame = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
        let head_end = reply.len();
        reply.extend_from_slice(&frame);

        let (response, head_len) = parse_response(&reply, &config).unwrap().unwrap();
        assert_eq!(head_len, head_end);
        assert_eq!(&reply[head_len..], frame);
        let accepted = client.verify(&response).unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("superchat"));
        assert_eq!(accepted.extensions, [agreed]);
    }
}
