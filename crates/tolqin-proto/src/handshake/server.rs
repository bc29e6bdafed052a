//! The server's side of the opening handshake (RFC 6455 4.2).

use http::header::{
    ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

use super::headers::{
    header_contains_token, is_token, parse_extensions, parse_protocols, trim_ows,
};
use super::{Extension, HandshakeError, WEBSOCKET_VERSION, derive_accept_key, is_valid_key};

/// A request that passed the server's checks of RFC 6455 4.2.1, with what the client offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    /// The `Sec-WebSocket-Key`, without surrounding whitespace.
    pub key: String,
    /// The `Origin` header, if any (RFC 6455 4.2.1 item 7, 10.2): the server decides whether
    /// to accept it.
    pub origin: Option<String>,
    /// The subprotocols offered, most preferred first (RFC 6455 4.2.1 item 8).
    pub protocols: Vec<String>,
    /// The extensions offered, in order (RFC 6455 4.2.1 item 9).
    pub extensions: Vec<Extension>,
}

/// Checks a client's opening handshake request as RFC 6455 4.2.1 requires of the server.
///
/// # Errors
///
/// In the order checked; [`error_response`] turns each into the HTTP answer:
///
/// * [`HandshakeError::MethodNotGet`] if the method is not GET;
/// * [`HandshakeError::BadHttpVersion`] if the version is older than HTTP/1.1;
/// * [`HandshakeError::MissingHost`] if there is not exactly one `Host` field;
/// * [`HandshakeError::MissingUpgrade`] if `Upgrade` does not contain `websocket`;
/// * [`HandshakeError::MissingConnectionUpgrade`] if `Connection` does not contain `Upgrade`
///   (both compared case-insensitively, as token lists, across all fields);
/// * [`HandshakeError::BadKey`] if there is not exactly one `Sec-WebSocket-Key`, or it is not
///   the base64 encoding of 16 bytes;
/// * [`HandshakeError::UnsupportedVersion`] if there is not exactly one
///   `Sec-WebSocket-Version`, or it is not 13;
/// * [`HandshakeError::BadHeaderValue`] if there is more than one `Origin`, or it is not
///   visible ASCII;
/// * [`HandshakeError::BadProtocolHeader`] if `Sec-WebSocket-Protocol` is not a token list;
/// * [`HandshakeError::BadExtensionHeader`] if `Sec-WebSocket-Extensions` is malformed.
pub fn validate_request(request: &Request<()>) -> Result<ValidRequest, HandshakeError> {
    if request.method() != Method::GET {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.version() < Version::HTTP_11 {
        return Err(HandshakeError::BadHttpVersion);
    }
    let headers = request.headers();
    // RFC 7230 5.4: a request with no Host, or with several, gets a 400.
    if single(headers, HOST).is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !header_contains_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !header_contains_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let key = single(headers, SEC_WEBSOCKET_KEY)
        .map(|key| trim_ows(key.as_bytes()))
        .filter(|key| is_valid_key(key))
        .and_then(|key| String::from_utf8(key.to_vec()).ok())
        .ok_or(HandshakeError::BadKey)?;
    let version = single(headers, SEC_WEBSOCKET_VERSION).map(|v| trim_ows(v.as_bytes()));
    if version != Some(WEBSOCKET_VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => None,
        (Some(origin), None) => Some(
            origin
                .to_str()
                .map_err(|_| HandshakeError::BadHeaderValue)?
                .to_owned(),
        ),
        // RFC 6454 7.3: a request carries at most one Origin.
        (Some(_), Some(_)) => return Err(HandshakeError::BadHeaderValue),
    };
    let protocols = parse_protocols(headers.get_all(SEC_WEBSOCKET_PROTOCOL))?;
    let extensions = parse_extensions(headers.get_all(SEC_WEBSOCKET_EXTENSIONS))?;
    Ok(ValidRequest {
        key,
        origin,
        protocols,
        extensions,
    })
}

/// The value of `name` if the field occurs exactly once.
fn single(headers: &HeaderMap, name: HeaderName) -> Option<&HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

impl ValidRequest {
    /// The `101 Switching Protocols` response that accepts this request (RFC 6455 4.2.2
    /// step 5): `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, and
    /// `Sec-WebSocket-Protocol` / `Sec-WebSocket-Extensions` for the selected subprotocol and
    /// extensions, if any.
    ///
    /// The caller selects `protocol` from [`ValidRequest::protocols`] and `extensions` from
    /// [`ValidRequest::extensions`]; the client rejects anything it did not offer. A protocol
    /// or extension that is not made of tokens (RFC 6455 4.1 item 10, 9.1) cannot have been
    /// offered and is left out rather than sent malformed.
    pub fn accept(&self, protocol: Option<&str>, extensions: &[Extension]) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.version_mut() = Version::HTTP_11;
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept = derive_accept_key(self.key.as_bytes());
        headers.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::try_from(accept).expect("base64 is always a valid header value"),
        );
        // Tokens are visible ASCII, hence always valid header values.
        if let Some(value) = protocol
            .filter(|p| is_token(p.as_bytes()))
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        let selected: Vec<String> = extensions
            .iter()
            .filter(|e| e.is_valid())
            .map(Extension::to_header_string)
            .collect();
        if !selected.is_empty() {
            // Valid extensions are made of tokens, so the value is always valid too.
            if let Ok(value) = HeaderValue::try_from(selected.join(", ")) {
                headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
        response
    }
}

/// The HTTP answer to a request that failed the handshake.
///
/// Status [`HandshakeError::status`], `Connection: close` (the connection is not reused), and a
/// short `text/plain` body naming the problem. A 426 carries `Sec-WebSocket-Version: 13`
/// (RFC 6455 4.2.2 step 4 and 4.4) and `Upgrade: websocket` (RFC 7231 6.5.15); a 405 carries
/// `Allow: GET` (RFC 7231 6.5.5).
///
/// ```
/// use tolqin_proto::handshake::{HandshakeError, error_response};
///
/// let response = error_response(&HandshakeError::UnsupportedVersion);
/// assert_eq!(response.status(), 426);
/// assert_eq!(response.headers()["sec-websocket-version"], "13");
/// ```
pub fn error_response(err: &HandshakeError) -> Response<String> {
    let status = err.status();
    let body = format!("WebSocket handshake failed: {err}\n");
    let mut response = Response::new(String::new());
    *response.status_mut() = status;
    *response.version_mut() = Version::HTTP_11;
    let headers = response.headers_mut();
    if status == StatusCode::UPGRADE_REQUIRED {
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        // RFC 7230 6.7: whoever sends Upgrade also lists it in Connection.
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, close"));
        headers.insert(
            SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(WEBSOCKET_VERSION),
        );
    } else {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.body_mut() = body;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handshake::{encode_response, parse_response};

    // RFC 6455 1.3
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// The example request of RFC 6455 1.2.
    fn rfc_request() -> Request<()> {
        let mut request = Request::new(());
        *request.uri_mut() = "/chat".parse().unwrap();
        let fields = [
            ("host", "server.example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", KEY),
            ("origin", "http://example.com"),
            ("sec-websocket-protocol", "chat, superchat"),
            ("sec-websocket-version", "13"),
        ];
        for (name, value) in fields {
            request.headers_mut().append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        request
    }

    fn set(request: &mut Request<()>, name: &'static str, value: &'static str) {
        request.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }

    fn add(request: &mut Request<()>, name: &'static str, value: &'static str) {
        request.headers_mut().append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }

    fn remove(request: &mut Request<()>, name: &'static str) {
        request.headers_mut().remove(name);
    }

    #[test]
    fn rfc6455_4_2_1_valid_request() {
        let valid = validate_request(&rfc_request()).unwrap();
        assert_eq!(
            valid,
            ValidRequest {
                key: KEY.into(),
                origin: Some("http://example.com".into()),
                protocols: vec!["chat".into(), "superchat".into()],
                extensions: vec![],
            }
        );
    }

    #[test]
    fn rfc6455_4_2_1_accepted_variants() {
        type Edit = fn(&mut Request<()>);
        let cases: &[(&str, Edit)] = &[
            ("Connection: keep-alive, Upgrade", |r| {
                set(r, "connection", "keep-alive, Upgrade")
            }),
            ("Connection: upgrade", |r| set(r, "connection", "upgrade")),
            ("two Connection fields", |r| {
                set(r, "connection", "keep-alive");
                add(r, "connection", "Upgrade");
            }),
            ("Upgrade: WebSocket", |r| set(r, "upgrade", "WebSocket")),
            ("Upgrade list", |r| set(r, "upgrade", "foo/2, websocket")),
            ("no Origin", |r| remove(r, "origin")),
            ("no protocols", |r| remove(r, "sec-websocket-protocol")),
            ("key with whitespace", |r| {
                set(r, "sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ==\t")
            }),
            ("version with whitespace", |r| {
                set(r, "sec-websocket-version", " 13 ")
            }),
            ("HTTP/2", |r| *r.version_mut() = Version::HTTP_2),
            ("extensions", |r| {
                set(
                    r,
                    "sec-websocket-extensions",
                    "permessage-deflate; client_max_window_bits",
                )
            }),
        ];
        for &(what, edit) in cases {
            let mut request = rfc_request();
            edit(&mut request);
            let valid = validate_request(&request);
            assert!(valid.is_ok(), "{what}: {valid:?}");
            assert_eq!(valid.unwrap().key, KEY, "{what}");
        }
    }

    #[test]
    fn rfc6455_4_2_1_rejections() {
        use HandshakeError as E;
        type Edit = fn(&mut Request<()>);
        let cases: &[(&str, Edit, E)] = &[
            ("POST", |r| *r.method_mut() = Method::POST, E::MethodNotGet),
            (
                "HTTP/1.0",
                |r| *r.version_mut() = Version::HTTP_10,
                E::BadHttpVersion,
            ),
            ("no Host", |r| remove(r, "host"), E::MissingHost),
            (
                "two Hosts",
                |r| add(r, "host", "other.example.com"),
                E::MissingHost,
            ),
            ("no Upgrade", |r| remove(r, "upgrade"), E::MissingUpgrade),
            (
                "Upgrade: h2c",
                |r| set(r, "upgrade", "h2c"),
                E::MissingUpgrade,
            ),
            (
                "Upgrade: websocket/13",
                |r| set(r, "upgrade", "websocket/13"),
                E::MissingUpgrade,
            ),
            (
                "no Connection",
                |r| remove(r, "connection"),
                E::MissingConnectionUpgrade,
            ),
            (
                "Connection: keep-alive",
                |r| set(r, "connection", "keep-alive"),
                E::MissingConnectionUpgrade,
            ),
            ("no key", |r| remove(r, "sec-websocket-key"), E::BadKey),
            ("two keys", |r| add(r, "sec-websocket-key", KEY), E::BadKey),
            (
                "key of 15 bytes",
                |r| set(r, "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA"),
                E::BadKey,
            ),
            (
                "key of 17 bytes",
                |r| set(r, "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAAA="),
                E::BadKey,
            ),
            (
                "key not base64",
                |r| set(r, "sec-websocket-key", "not a base64 key!!!!!!!="),
                E::BadKey,
            ),
            ("empty key", |r| set(r, "sec-websocket-key", ""), E::BadKey),
            (
                "no version",
                |r| remove(r, "sec-websocket-version"),
                E::UnsupportedVersion,
            ),
            (
                "version 8",
                |r| set(r, "sec-websocket-version", "8"),
                E::UnsupportedVersion,
            ),
            (
                "version 013",
                |r| set(r, "sec-websocket-version", "013"),
                E::UnsupportedVersion,
            ),
            (
                "two versions",
                |r| add(r, "sec-websocket-version", "13"),
                E::UnsupportedVersion,
            ),
            (
                "two Origins",
                |r| add(r, "origin", "http://evil.example"),
                E::BadHeaderValue,
            ),
            (
                "bad protocol list",
                |r| set(r, "sec-websocket-protocol", "chat,,superchat"),
                E::BadProtocolHeader,
            ),
            (
                "bad extension list",
                |r| set(r, "sec-websocket-extensions", "permessage-deflate; =1"),
                E::BadExtensionHeader,
            ),
        ];
        for (what, edit, expected) in cases {
            let mut request = rfc_request();
            edit(&mut request);
            assert_eq!(validate_request(&request).as_ref(), Err(expected), "{what}");
        }
        // obs-text is a valid header value, but not a string Origin can be.
        let mut request = rfc_request();
        request.headers_mut().insert(
            ORIGIN,
            HeaderValue::from_bytes(b"http://\xe9.example").unwrap(),
        );
        assert_eq!(validate_request(&request), Err(E::BadHeaderValue));
    }

    #[test]
    fn rfc6455_4_4_version_mismatch_answered_with_426() {
        let mut request = rfc_request();
        set(&mut request, "sec-websocket-version", "8");
        let err = validate_request(&request).unwrap_err();
        let response = error_response(&err);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[SEC_WEBSOCKET_VERSION], "13");
        assert!(header_contains_token(
            response.headers(),
            CONNECTION,
            "close"
        ));

        // What the client reads back is a complete, well-delimited HTTP response.
        let mut wire = Vec::new();
        encode_response(&response, &mut wire);
        let (parsed, head_len) = parse_response(&wire, &Config::default()).unwrap().unwrap();
        assert_eq!(parsed.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(parsed.headers()[SEC_WEBSOCKET_VERSION], "13");
        let body = &wire[head_len..];
        assert_eq!(
            parsed.headers()[CONTENT_LENGTH],
            body.len().to_string().as_str()
        );
        assert_eq!(body, response.body().as_bytes());
    }

    #[test]
    fn rfc6455_4_2_2_error_responses() {
        use HandshakeError as E;
        let cases = [
            (E::MethodNotGet, 405, Some("GET")),
            (E::HeaderBlockTooLarge, 431, None),
            (E::TooManyHeaders, 431, None),
            (E::BadKey, 400, None),
            (E::MissingHost, 400, None),
        ];
        for (err, status, allow) in cases {
            let response = error_response(&err);
            assert_eq!(response.status().as_u16(), status, "{err:?}");
            assert_eq!(
                response.headers().get(ALLOW).map(|v| v.to_str().unwrap()),
                allow,
                "{err:?}"
            );
            assert_eq!(response.headers()[CONNECTION], "close");
            assert!(response.headers().get(SEC_WEBSOCKET_VERSION).is_none());
            assert_eq!(
                response.headers()[CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            assert!(response.body().contains(&err.to_string()));
        }
    }

    #[test]
    fn rfc6455_4_2_2_accept_response() {
        let valid = validate_request(&rfc_request()).unwrap();
        let mut wire = Vec::new();
        encode_response(&valid.accept(Some("chat"), &[]), &mut wire);
        // RFC 6455 1.3's example answer.
        let expected = "HTTP/1.1 101 Switching Protocols\r\n\
            Upgrade: websocket\r\n\
            Connection: Upgrade\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
            Sec-WebSocket-Protocol: chat\r\n\
            \r\n";
        assert_eq!(String::from_utf8(wire).unwrap(), expected);
    }

    #[test]
    fn rfc6455_4_2_2_accept_headers() {
        let valid = validate_request(&rfc_request()).unwrap();
        let deflate =
            Extension::new("permessage-deflate").with_param("server_no_context_takeover", None);
        let cases = [
            (None, vec![], None, None),
            (Some("chat"), vec![], Some("chat"), None),
            (
                None,
                vec![deflate.clone(), Extension::new("x-foo")],
                None,
                Some("permessage-deflate; server_no_context_takeover, x-foo"),
            ),
            // Not tokens, so never offered: left out rather than sent malformed.
            (Some("a b"), vec![Extension::new("a\nb")], None, None),
        ];
        for (protocol, extensions, expected_protocol, expected_extensions) in cases {
            let response = valid.accept(protocol, &extensions);
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            let headers = response.headers();
            assert_eq!(headers[UPGRADE], "websocket");
            assert_eq!(headers[CONNECTION], "Upgrade");
            assert_eq!(headers[SEC_WEBSOCKET_ACCEPT], ACCEPT);
            let text = |name| headers.get(name).map(|v: &HeaderValue| v.to_str().unwrap());
            assert_eq!(text(SEC_WEBSOCKET_PROTOCOL), expected_protocol);
            assert_eq!(text(SEC_WEBSOCKET_EXTENSIONS), expected_extensions);
        }
    }
}
