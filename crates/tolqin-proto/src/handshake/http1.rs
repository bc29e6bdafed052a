//! HTTP/1.1 heads: parsing with `httparse` under the configured limits, and serialisation.

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};

use super::headers::wire_name;
use super::{HandshakeError, HttpError};
use crate::config::Config;

/// Parses an HTTP/1.x request head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, and `Ok(Some((request, head_len)))` once
/// it ends at `head_len`: the bytes after it already belong to the WebSocket stream. The parse
/// starts over on every call, so call again with the same bytes plus what arrived since.
///
/// # Errors
///
/// * [`HandshakeError::HeaderBlockTooLarge`] if the head is longer than
///   [`Config::max_header_block`], reported as soon as `buf` holds more than that many bytes
///   without a complete head, so that a peer cannot make the caller buffer without bound;
/// * [`HandshakeError::TooManyHeaders`] if it has more than [`Config::max_headers`] fields;
/// * [`HandshakeError::Http`] if it is not well-formed HTTP/1.x;
/// * [`HandshakeError::BadUri`] if the request target is not a valid URI.
pub fn parse_request(
    buf: &[u8],
    config: &Config,
) -> Result<Option<(Request<()>, usize)>, HandshakeError> {
    let window = head_window(buf, config);
    let mut slots = header_slots(window, config);
    let mut head = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(head_len) = head.parse(window).map_err(parse_error)? else {
        return incomplete(buf, config);
    };
    // httparse fills all three in when it reports a complete head.
    let (Some(method), Some(target), Some(version)) = (head.method, head.path, head.version) else {
        return Err(HttpError::Token.into());
    };
    let mut request = Request::new(());
    *request.method_mut() = Method::from_bytes(method.as_bytes()).map_err(|_| HttpError::Token)?;
    *request.uri_mut() = target.parse::<Uri>().map_err(|_| HandshakeError::BadUri)?;
    *request.version_mut() = http_version(version)?;
    *request.headers_mut() = header_map(head.headers)?;
    Ok(Some((request, head_len)))
}

/// Parses an HTTP/1.x response head from the start of `buf`.
///
/// Same contract as [`parse_request`]: `Ok(None)` while incomplete, then the response and the
/// length of its head; the bytes after the head belong to the WebSocket stream.
///
/// # Errors
///
/// * [`HandshakeError::HeaderBlockTooLarge`] if the head is longer than
///   [`Config::max_header_block`], reported as soon as `buf` holds more than that many bytes
///   without a complete head;
/// * [`HandshakeError::TooManyHeaders`] if it has more than [`Config::max_headers`] fields;
/// * [`HandshakeError::Http`] if it is not well-formed HTTP/1.x (including a status code
///   below 100).
pub fn parse_response(
    buf: &[u8],
    config: &Config,
) -> Result<Option<(Response<()>, usize)>, HandshakeError> {
    let window = head_window(buf, config);
    let mut slots = header_slots(window, config);
    let mut head = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(head_len) = head.parse(window).map_err(parse_error)? else {
        return incomplete(buf, config);
    };
    let (Some(code), Some(version)) = (head.code, head.version) else {
        return Err(HttpError::Status.into());
    };
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(code).map_err(|_| HttpError::Status)?;
    *response.version_mut() = http_version(version)?;
    *response.headers_mut() = header_map(head.headers)?;
    Ok(Some((response, head_len)))
}

/// httparse's error as ours (httparse stays out of the public API).
fn parse_error(err: httparse::Error) -> HandshakeError {
    HandshakeError::Http(match err {
        // httparse reports this when the configured number of slots is exhausted.
        httparse::Error::TooManyHeaders => return HandshakeError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::HeaderName,
        httparse::Error::HeaderValue => HttpError::HeaderValue,
        httparse::Error::NewLine => HttpError::NewLine,
        httparse::Error::Status => HttpError::Status,
        httparse::Error::Token => HttpError::Token,
        httparse::Error::Version => HttpError::Version,
    })
}

/// The part of `buf` a head may occupy: a complete head must end within the first
/// `max_header_block` bytes, so nothing past them is ever scanned.
fn head_window<'b>(buf: &'b [u8], config: &Config) -> &'b [u8] {
    &buf[..buf.len().min(config.max_header_block)]
}

/// Empty header slots for httparse, which reports `TooManyHeaders` when they run out.
fn header_slots<'b>(window: &[u8], config: &Config) -> Vec<httparse::Header<'b>> {
    // The shortest field line is 3 bytes ("a:\n"), so `window` cannot hold more fields than
    // this: capping the slots keeps a huge `max_headers` from turning into a huge allocation
    // without changing which heads are rejected.
    let fit = window.len() / 3 + 1;
    vec![httparse::EMPTY_HEADER; config.max_headers.min(fit)]
}

/// The answer for an incomplete head: wait for more bytes, unless the limit is already passed.
fn incomplete<T>(buf: &[u8], config: &Config) -> Result<Option<T>, HandshakeError> {
    if buf.len() > config.max_header_block {
        Err(HandshakeError::HeaderBlockTooLarge)
    } else {
        Ok(None)
    }
}

/// httparse's minor version of HTTP/1.x as an `http` version.
fn http_version(minor: u8) -> Result<Version, HandshakeError> {
    match minor {
        0 => Ok(Version::HTTP_10),
        1 => Ok(Version::HTTP_11),
        _ => Err(HttpError::Version.into()),
    }
}

fn header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, HandshakeError> {
    let mut map = HeaderMap::new();
    for field in fields {
        let name =
            HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| HttpError::HeaderName)?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| HttpError::HeaderValue)?;
        // `HeaderMap` has a hard capacity; past it the head has too many fields by any measure.
        map.try_append(name, value)
            .map_err(|_| HandshakeError::TooManyHeaders)?;
    }
    Ok(map)
}

/// Writes `Name: value\r\n` for every field.
pub(super) fn write_fields(headers: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        write_field(&wire_name(name), value.as_bytes(), out);
    }
}

fn write_field(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Serialises a response as HTTP/1.1: status line, header fields, blank line, then the body.
///
/// The body is anything [`ResponseBody`]: `()` for the bodiless responses of
/// [`ValidRequest::accept`](super::ValidRequest::accept), `String` for those of
/// [`error_response`](super::error_response), or bytes.
///
/// The status line always says `HTTP/1.1` and carries the canonical reason phrase. A
/// `Content-Length` is added when the response may have a body (not 1xx, 204 or 304), the body
/// is not chunked, and the header is not already present, so that the peer can tell where an
/// error page ends.
///
/// ```
/// use tolqin_proto::handshake::{HandshakeError, encode_response, error_response};
///
/// let mut out = Vec::new();
/// encode_response(&error_response(&HandshakeError::MissingHost), &mut out);
/// assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
/// ```
pub fn encode_response<B: ResponseBody>(response: &Response<B>, out: &mut Vec<u8>) {
    let status = response.status();
    let headers = response.headers();
    let body = response.body().body_bytes();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    // RFC 7230 3.1.2: the space before the reason phrase is required even when it is empty.
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(headers, out);
    // RFC 7230 3.3.2: no Content-Length on 1xx and 204; on 304 it would describe another body.
    let may_have_body = !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED;
    if may_have_body
        && !headers.contains_key(CONTENT_LENGTH)
        && !headers.contains_key(TRANSFER_ENCODING)
    {
        write_field("Content-Length", body.len().to_string().as_bytes(), out);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// A response body [`encode_response`] can write: `()` for none, or text or bytes.
///
/// `()` cannot implement `AsRef<[u8]>` (both are foreign to this crate), and the 101 response
/// of [`ValidRequest::accept`](super::ValidRequest::accept) has that body type; this trait
/// covers it and the usual byte containers.
pub trait ResponseBody {
    /// The body's bytes, exactly as they go on the wire.
    fn body_bytes(&self) -> &[u8];
}

impl ResponseBody for () {
    fn body_bytes(&self) -> &[u8] {
        &[]
    }
}

impl ResponseBody for [u8] {
    fn body_bytes(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> ResponseBody for [u8; N] {
    fn body_bytes(&self) -> &[u8] {
        self
    }
}

impl ResponseBody for str {
    fn body_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl ResponseBody for String {
    fn body_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl ResponseBody for Vec<u8> {
    fn body_bytes(&self) -> &[u8] {
        self
    }
}

impl ResponseBody for bytes::Bytes {
    fn body_bytes(&self) -> &[u8] {
        self
    }
}

impl ResponseBody for Cow<'_, str> {
    fn body_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl ResponseBody for Cow<'_, [u8]> {
    fn body_bytes(&self) -> &[u8] {
        self
    }
}

impl<T: ResponseBody + ?Sized> ResponseBody for &T {
    fn body_bytes(&self) -> &[u8] {
        T::body_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";

    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        \r\n";

    // RFC 6455 5.7: a masked "Hello" frame, as a client might send right after its head.
    const FRAME: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    fn with_frame(head: &[u8]) -> Vec<u8> {
        [head, FRAME].concat()
    }

    #[test]
    fn rfc6455_4_2_1_parse_request_fields() {
        let (request, len) = parse_request(REQUEST, &Config::default()).unwrap().unwrap();
        assert_eq!(len, REQUEST.len());
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/chat?x=1");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers().len(), 5);
        assert_eq!(
            request.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    #[test]
    fn rfc6455_4_1_parse_response_fields() {
        let (response, len) = parse_response(RESPONSE, &Config::default())
            .unwrap()
            .unwrap();
        assert_eq!(len, RESPONSE.len());
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.version(), Version::HTTP_11);
        assert_eq!(
            response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc6455_4_incomplete_head_at_every_prefix() {
        let config = Config::default();
        for end in 0..REQUEST.len() {
            assert!(
                parse_request(&REQUEST[..end], &config).unwrap().is_none(),
                "request[..{end}]"
            );
        }
        for end in 0..RESPONSE.len() {
            assert!(
                parse_response(&RESPONSE[..end], &config).unwrap().is_none(),
                "response[..{end}]"
            );
        }
    }

    #[test]
    fn rfc6455_4_head_len_excludes_following_frame_bytes() {
        let config = Config::default();
        let buf = with_frame(REQUEST);
        let (_, len) = parse_request(&buf, &config).unwrap().unwrap();
        assert_eq!(&buf[len..], FRAME);
        let buf = with_frame(RESPONSE);
        let (_, len) = parse_response(&buf, &config).unwrap().unwrap();
        assert_eq!(&buf[len..], FRAME);
    }

    #[test]
    fn rfc6455_4_header_block_limit() {
        let exact = Config::default().with_max_header_block(REQUEST.len());
        let short = Config::default().with_max_header_block(REQUEST.len() - 1);
        // A head exactly at the limit is fine, even with frame bytes pushing `buf` past it.
        assert!(
            parse_request(&with_frame(REQUEST), &exact)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_request(REQUEST, &short).unwrap_err(),
            HandshakeError::HeaderBlockTooLarge
        );
        let exact = Config::default().with_max_header_block(RESPONSE.len());
        let short = Config::default().with_max_header_block(RESPONSE.len() - 1);
        assert!(
            parse_response(&with_frame(RESPONSE), &exact)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_response(RESPONSE, &short).unwrap_err(),
            HandshakeError::HeaderBlockTooLarge
        );
    }

    #[test]
    fn rfc6455_4_header_block_limit_while_incomplete() {
        // A peer that never ends its head must be cut off once it passes the limit.
        let config = Config::default().with_max_header_block(64);
        let mut endless = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        endless.resize(64, b'a');
        assert!(parse_request(&endless, &config).unwrap().is_none());
        endless.push(b'a');
        assert_eq!(
            parse_request(&endless, &config).unwrap_err(),
            HandshakeError::HeaderBlockTooLarge
        );
        let mut endless = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: ".to_vec();
        endless.resize(65, b'a');
        assert_eq!(
            parse_response(&endless, &config).unwrap_err(),
            HandshakeError::HeaderBlockTooLarge
        );
    }

    #[test]
    fn rfc6455_4_header_count_limit() {
        // REQUEST has 5 fields, RESPONSE 3.
        let five = Config::default().with_max_headers(5);
        let four = Config::default().with_max_headers(4);
        assert!(parse_request(REQUEST, &five).unwrap().is_some());
        assert_eq!(
            parse_request(REQUEST, &four).unwrap_err(),
            HandshakeError::TooManyHeaders
        );
        let three = Config::default().with_max_headers(3);
        let two = Config::default().with_max_headers(2);
        assert!(parse_response(RESPONSE, &three).unwrap().is_some());
        assert_eq!(
            parse_response(RESPONSE, &two).unwrap_err(),
            HandshakeError::TooManyHeaders
        );
        // Also before the head is complete.
        let partial = &REQUEST[..REQUEST.len() - 2];
        assert_eq!(
            parse_request(partial, &four).unwrap_err(),
            HandshakeError::TooManyHeaders
        );
    }

    #[test]
    fn rfc6455_4_huge_limits_do_not_allocate_up_front() {
        let config = Config::default()
            .with_max_headers(usize::MAX)
            .with_max_header_block(usize::MAX);
        assert!(parse_request(REQUEST, &config).unwrap().is_some());
        assert!(parse_response(RESPONSE, &config).unwrap().is_some());
    }

    #[test]
    fn rfc7230_malformed_heads_rejected() {
        let config = Config::default();
        let requests: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"G@T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
        ];
        for &head in requests {
            assert!(
                matches!(parse_request(head, &config), Err(HandshakeError::Http(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        assert_eq!(
            parse_request(b"GET http://[::1 HTTP/1.1\r\n\r\n", &config).unwrap_err(),
            HandshakeError::BadUri
        );
        let responses: &[&[u8]] = &[
            b"HTTP/1.1 abc Nope\r\n\r\n",
            b"HTTP/1.1 099 Too Low\r\n\r\n",
            b"HTTP/3 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n",
        ];
        for &head in responses {
            assert!(
                matches!(parse_response(head, &config), Err(HandshakeError::Http(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn rfc7230_http_1_0_is_parsed_not_rejected() {
        // Rejecting HTTP/1.0 is validate_request's job (RFC 6455 4.2.1 item 1), with a 400.
        let (request, _) = parse_request(b"GET / HTTP/1.0\r\n\r\n", &Config::default())
            .unwrap()
            .unwrap();
        assert_eq!(request.version(), Version::HTTP_10);
    }

    #[test]
    fn rfc7230_3_3_2_encode_response_content_length() {
        // (status, header fields, body, wire bytes)
        type Fields = &'static [(&'static str, &'static str)];
        let cases: &[(u16, Fields, &str, &str)] = &[
            (
                101,
                &[("upgrade", "websocket")],
                "",
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            ),
            (
                400,
                &[],
                "no\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n",
            ),
            (
                400,
                &[("content-length", "3")],
                "no\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nno\n",
            ),
            (
                200,
                &[("transfer-encoding", "chunked")],
                "0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            (204, &[], "", "HTTP/1.1 204 No Content\r\n\r\n"),
            (599, &[], "", "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"),
        ];
        for &(status, fields, body, expected) in cases {
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for &(name, value) in fields {
                response.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            let mut out = Vec::new();
            encode_response(&response, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn rfc7230_3_3_encode_response_bodies() {
        fn encoded<B: ResponseBody>(body: B) -> Vec<u8> {
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            let mut out = Vec::new();
            encode_response(&response, &mut out);
            out
        }
        let expected = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno";
        assert_eq!(encoded("no"), expected);
        assert_eq!(encoded(String::from("no")), expected);
        assert_eq!(encoded(b"no".to_vec()), expected);
        assert_eq!(encoded(*b"no"), expected);
        assert_eq!(encoded(&b"no"[..]), expected);
        assert_eq!(encoded(bytes::Bytes::from_static(b"no")), expected);
        assert_eq!(encoded(Cow::Borrowed("no")), expected);
        assert_eq!(
            encoded(()),
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        );
    }

    proptest::proptest! {
        #[test]
        fn rfc6455_4_parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let config = Config::default().with_max_header_block(256).with_max_headers(8);
            let _ = parse_request(&bytes, &config);
            let _ = parse_response(&bytes, &config);
        }

        #[test]
        fn rfc6455_4_parsers_never_panic_on_mutated_heads(
            index in 0..REQUEST.len(),
            byte in proptest::num::u8::ANY,
        ) {
            let config = Config::default();
            let mut request = REQUEST.to_vec();
            request[index] = byte;
            let _ = parse_request(&request, &config);
            let mut response = RESPONSE.to_vec();
            response[index % RESPONSE.len()] = byte;
            let _ = parse_response(&response, &config);
        }
    }
}
