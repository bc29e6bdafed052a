//! The client's side of the opening handshake (RFC 6455 4.1).

use http::header::{
    CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};

use super::headers::{
    header_contains_token, is_token, parse_extensions, parse_protocols, trim_ows,
};
use super::http1::write_fields;
use super::{Extension, HandshakeError, WEBSOCKET_VERSION, derive_accept_key, generate_key};

/// Builder for the client's opening handshake request (RFC 6455 4.1).
///
/// ```
/// use tolqin_proto::handshake::{ClientRequest, Extension};
///
/// let handshake = ClientRequest::new("wss://example.com/chat".parse().unwrap())?
///     .origin("https://example.com")
///     .protocol("chat")
///     .extension(Extension::new("permessage-deflate"))
///     .build()?;
/// assert_eq!(handshake.request().headers()["host"], "example.com");
/// # Ok::<(), tolqin_proto::handshake::HandshakeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    uri: Uri,
    host: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
    headers: Vec<(HeaderName, HeaderValue)>,
    key: Option<String>,
}

impl ClientRequest {
    /// Starts a request for `uri`.
    ///
    /// The scheme must be `ws` or `wss` (RFC 6455 3); `http` and `https` are accepted as their
    /// equivalents. Any fragment is dropped (the `http` crate does not keep it).
    ///
    /// # Errors
    ///
    /// [`HandshakeError::BadUri`] if the scheme is missing or another one, if there is no host,
    /// or if the port is not a number below 65536.
    pub fn new(uri: Uri) -> Result<Self, HandshakeError> {
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") || s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") || s.eq_ignore_ascii_case("https") => true,
            _ => return Err(HandshakeError::BadUri),
        };
        let host = host_header(&uri, secure)?;
        Ok(ClientRequest {
            uri,
            host,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            key: None,
        })
    }

    /// Sets the `Origin` header (RFC 6455 4.1 item 8), checked in [`ClientRequest::build`].
    #[must_use = "the builder is consumed and returned"]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers one subprotocol; offers are sent in the order given, most preferred first
    /// (RFC 6455 4.1 item 10). Checked in [`ClientRequest::build`].
    #[must_use = "the builder is consumed and returned"]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Offers one extension; offers are sent in the order given (RFC 6455 4.1 item 11, 9.1).
    /// Checked in [`ClientRequest::build`].
    #[must_use = "the builder is consumed and returned"]
    pub fn extension(mut self, offer: Extension) -> Self {
        self.extensions.push(offer);
        self
    }

    /// Adds another header field, such as `Cookie` or `Authorization` (RFC 6455 4.1 item 12).
    ///
    /// Fields are appended after the handshake's own; use the dedicated methods for `Origin`,
    /// subprotocols and extensions, as [`ClientHandshake::verify`] only knows about offers
    /// made through them.
    #[must_use = "the builder is consumed and returned"]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Uses `key` as `Sec-WebSocket-Key` instead of a fresh [`generate_key`], for tests.
    ///
    /// The key is sent as given; it only has to be a valid header value.
    #[must_use = "the builder is consumed and returned"]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Builds the request.
    ///
    /// # Errors
    ///
    /// * [`HandshakeError::BadHeaderValue`] if the origin or key is not a valid header value;
    /// * [`HandshakeError::BadProtocolHeader`] if a subprotocol is not a token or is offered
    ///   twice (RFC 6455 4.1 item 10);
    /// * [`HandshakeError::BadExtensionHeader`] if an extension's name, parameter names or
    ///   values are not tokens (RFC 6455 9.1);
    /// * [`HandshakeError::TooManyHeaders`] if there are more header fields than an
    ///   [`http::HeaderMap`] can hold.
    pub fn build(self) -> Result<ClientHandshake, HandshakeError> {
        let key = self.key.unwrap_or_else(generate_key);
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.version_mut() = Version::HTTP_11;
        *request.uri_mut() = self.uri;

        let headers = request.headers_mut();
        // RFC 6455 4.1 items 4 to 9, in the order the RFC lists them.
        headers.insert(HOST, header_value(self.host)?);
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_KEY, header_value(key.clone())?);
        headers.insert(
            SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(WEBSOCKET_VERSION),
        );
        if let Some(origin) = self.origin {
            headers.insert(ORIGIN, header_value(origin)?);
        }
        if !self.protocols.is_empty() {
            let tokens = self.protocols.iter().all(|p| is_token(p.as_bytes()));
            let unique = self
                .protocols
                .iter()
                .enumerate()
                .all(|(i, p)| !self.protocols[..i].contains(p));
            if !tokens || !unique {
                return Err(HandshakeError::BadProtocolHeader);
            }
            let joined = self.protocols.join(", ");
            headers.insert(SEC_WEBSOCKET_PROTOCOL, header_value(joined)?);
        }
        if !self.extensions.is_empty() {
            if !self.extensions.iter().all(Extension::is_valid) {
                return Err(HandshakeError::BadExtensionHeader);
            }
            let joined = join_extensions(&self.extensions);
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, header_value(joined)?);
        }
        for (name, value) in self.headers {
            headers
                .try_append(name, value)
                .map_err(|_| HandshakeError::TooManyHeaders)?;
        }

        Ok(ClientHandshake {
            request,
            key,
            protocols: self.protocols,
            extensions: self.extensions,
        })
    }
}

/// The `Host` field for `uri`: the host, and the port only when it is not the scheme's
/// default (RFC 6455 4.1 item 4). IPv6 literals keep their brackets.
fn host_header(uri: &Uri, secure: bool) -> Result<String, HandshakeError> {
    let authority = uri.authority().ok_or(HandshakeError::BadUri)?.as_str();
    // Userinfo ("user:password@") never goes into Host.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let split = if host_port.starts_with('[') {
        host_port.find(']').map(|end| end + 1)
    } else {
        host_port.rfind(':')
    };
    let (host, port) = host_port.split_at(split.unwrap_or(host_port.len()));
    if host.is_empty() {
        return Err(HandshakeError::BadUri);
    }
    // RFC 3986 3.2.3: the port may be empty, which means the default.
    let port = match port {
        "" | ":" => None,
        _ => {
            let digits = port.strip_prefix(':').ok_or(HandshakeError::BadUri)?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HandshakeError::BadUri);
            }
            Some(digits.parse::<u16>().map_err(|_| HandshakeError::BadUri)?)
        }
    };
    // RFC 6455 3: the default ports are 80 for ws and 443 for wss.
    let default_port = if secure { 443 } else { 80 };
    Ok(match port {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
}

fn header_value(value: String) -> Result<HeaderValue, HandshakeError> {
    HeaderValue::try_from(value).map_err(|_| HandshakeError::BadHeaderValue)
}

fn join_extensions(extensions: &[Extension]) -> String {
    extensions
        .iter()
        .map(Extension::to_header_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A built client request, and what is needed to check the server's answer to it.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    request: Request<()>,
    key: String,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
}

/// What the server agreed to in a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The subprotocol the server selected, one of those offered; `None` if it selected none.
    pub protocol: Option<String>,
    /// The extensions the server selected, with its parameters, in the server's order. The
    /// caller still has to check the parameters against what it offered.
    pub extensions: Vec<Extension>,
}

impl ClientHandshake {
    /// The request, with every handshake header. Its URI is the full URI given to
    /// [`ClientRequest::new`]; [`ClientHandshake::encode`] sends only its path and query.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The URI given to [`ClientRequest::new`].
    pub fn uri(&self) -> &Uri {
        self.request.uri()
    }

    /// Appends the request to `out` as HTTP/1.1: `GET /path?query HTTP/1.1`, the header
    /// fields, and the blank line that ends the head.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let uri = self.request.uri();
        // RFC 6455 3: the resource name is the path, "/" if empty, and "?query" if any.
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path.as_bytes());
        if let Some(query) = uri.query() {
            out.push(b'?');
            out.extend_from_slice(query.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        write_fields(self.request.headers(), out);
        out.extend_from_slice(b"\r\n");
    }

    /// Checks the server's response as RFC 6455 4.1 requires of the client, and returns what
    /// the server agreed to.
    ///
    /// # Errors
    ///
    /// In the order checked:
    ///
    /// * [`HandshakeError::BadStatus`] if the status is not 101;
    /// * [`HandshakeError::MissingUpgrade`] if `Upgrade` does not contain `websocket`;
    /// * [`HandshakeError::MissingConnectionUpgrade`] if `Connection` does not contain
    ///   `Upgrade` (both compared case-insensitively, as token lists);
    /// * [`HandshakeError::BadAccept`] if there is not exactly one `Sec-WebSocket-Accept`
    ///   or it does not match the key sent;
    /// * [`HandshakeError::BadExtensionHeader`] if `Sec-WebSocket-Extensions` is malformed;
    /// * [`HandshakeError::UnofferedExtension`] if it names an extension not offered;
    /// * [`HandshakeError::BadProtocolHeader`] if `Sec-WebSocket-Protocol` is malformed or
    ///   names more than one subprotocol;
    /// * [`HandshakeError::UnofferedProtocol`] if it names a subprotocol not offered
    ///   (compared exactly).
    pub fn verify(&self, response: &Response<()>) -> Result<Accepted, HandshakeError> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::BadStatus(response.status()));
        }
        let headers = response.headers();
        if !header_contains_token(headers, UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_contains_token(headers, CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let expected = derive_accept_key(self.key.as_bytes());
        let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(accept), None) if trim_ows(accept.as_bytes()) == expected.as_bytes() => {}
            _ => return Err(HandshakeError::BadAccept),
        }

        let extensions = parse_extensions(headers.get_all(SEC_WEBSOCKET_EXTENSIONS))?;
        if let Some(unoffered) = extensions
            .iter()
            .find(|e| !self.extensions.iter().any(|offer| offer.name == e.name))
        {
            return Err(HandshakeError::UnofferedExtension(unoffered.name.clone()));
        }

        let mut protocols = parse_protocols(headers.get_all(SEC_WEBSOCKET_PROTOCOL))?;
        let protocol = match protocols.pop() {
            None => None,
            Some(_) if !protocols.is_empty() => return Err(HandshakeError::BadProtocolHeader),
            Some(protocol) if self.protocols.contains(&protocol) => Some(protocol),
            Some(protocol) => return Err(HandshakeError::UnofferedProtocol(protocol)),
        };

        Ok(Accepted {
            protocol,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handshake::{parse_request, validate_request};

    // RFC 6455 1.3
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn client(uri: &str) -> ClientRequest {
        ClientRequest::new(uri.parse().unwrap()).unwrap().key(KEY)
    }

    fn offering_chat_and_deflate() -> ClientHandshake {
        client("ws://server.example.com/chat")
            .protocol("chat")
            .protocol("superchat")
            .extension(
                Extension::new("permessage-deflate").with_param("client_max_window_bits", None),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn rfc6455_4_1_request_headers() {
        let handshake = client("ws://server.example.com/chat")
            .origin("http://example.com")
            .protocol("chat")
            .protocol("superchat")
            .extension(
                Extension::new("permessage-deflate").with_param("client_max_window_bits", None),
            )
            .extension(Extension::new("x-foo"))
            .header(
                HeaderName::from_static("cookie"),
                HeaderValue::from_static("a=b"),
            )
            .build()
            .unwrap();
        let request = handshake.request();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(handshake.key(), KEY);
        assert_eq!(handshake.uri(), "ws://server.example.com/chat");
        let expected = [
            ("host", "server.example.com"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", KEY),
            ("sec-websocket-version", "13"),
            ("origin", "http://example.com"),
            ("sec-websocket-protocol", "chat, superchat"),
            (
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits, x-foo",
            ),
            ("cookie", "a=b"),
        ];
        assert_eq!(request.headers().len(), expected.len());
        for (name, value) in expected {
            assert_eq!(request.headers()[name], value, "{name}");
        }
    }

    #[test]
    fn rfc6455_4_1_generated_key_by_default() {
        let handshake = ClientRequest::new("ws://h/".parse().unwrap())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(handshake.key().len(), 24);
        assert_eq!(
            handshake.request().headers()["sec-websocket-key"],
            handshake.key()
        );
    }

    #[test]
    fn rfc6455_4_1_host_header() {
        let cases = [
            ("ws://example.com/chat", "example.com"),
            ("ws://example.com:80/", "example.com"),
            ("ws://example.com:/", "example.com"),
            ("ws://example.com:8080/", "example.com:8080"),
            ("ws://example.com:443/", "example.com:443"),
            ("wss://example.com/", "example.com"),
            ("wss://example.com:443/", "example.com"),
            ("wss://example.com:80/", "example.com:80"),
            ("http://example.com:80", "example.com"),
            ("https://example.com:8443", "example.com:8443"),
            ("WSS://example.com:443/", "example.com"),
            ("ws://127.0.0.1:9001/", "127.0.0.1:9001"),
            ("ws://[::1]:9001/", "[::1]:9001"),
            ("ws://[::1]:80/", "[::1]"),
            ("wss://[2001:db8::1]/", "[2001:db8::1]"),
            ("ws://user:secret@example.com:81/", "example.com:81"),
        ];
        for (uri, host) in cases {
            let handshake = client(uri).build().unwrap();
            assert_eq!(handshake.request().headers()[HOST], host, "{uri}");
        }
    }

    #[test]
    fn rfc6455_3_bad_uris_rejected() {
        let cases = [
            "ftp://example.com/",
            "/chat",
            "example.com:80",
            "ws://:80/",
            "ws://example.com:99999/",
            "ws://example.com:8x/",
            "ws://[::1]x/",
        ];
        for uri in cases {
            // Some of these are not even URIs to the `http` crate; those need no check here.
            if let Ok(parsed) = uri.parse::<Uri>() {
                assert_eq!(
                    ClientRequest::new(parsed).unwrap_err(),
                    HandshakeError::BadUri,
                    "{uri}"
                );
            }
        }
    }

    #[test]
    fn rfc6455_4_1_request_target() {
        let cases = [
            ("ws://example.com", "GET / HTTP/1.1\r\n"),
            ("ws://example.com/", "GET / HTTP/1.1\r\n"),
            ("ws://example.com/chat", "GET /chat HTTP/1.1\r\n"),
            ("ws://example.com/a/b?x=1&y", "GET /a/b?x=1&y HTTP/1.1\r\n"),
            ("ws://example.com?x=1", "GET /?x=1 HTTP/1.1\r\n"),
            ("ws://example.com/chat#fragment", "GET /chat HTTP/1.1\r\n"),
            (
                "ws://example.com/%20x?q=%2F",
                "GET /%20x?q=%2F HTTP/1.1\r\n",
            ),
        ];
        for (uri, request_line) in cases {
            let mut out = Vec::new();
            client(uri).build().unwrap().encode(&mut out);
            assert!(
                out.starts_with(request_line.as_bytes()),
                "{uri}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn rfc6455_4_1_encoded_request() {
        let mut out = Vec::new();
        client("ws://server.example.com/chat")
            .origin("http://example.com")
            .protocol("chat")
            .build()
            .unwrap()
            .encode(&mut out);
        let expected = "GET /chat HTTP/1.1\r\n\
            Host: server.example.com\r\n\
            Upgrade: websocket\r\n\
            Connection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\
            Origin: http://example.com\r\n\
            Sec-WebSocket-Protocol: chat\r\n\
            \r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn rfc6455_4_1_encoded_request_parses_back() {
        let handshake = client("ws://[::1]:9001/chat?room=7")
            .origin("http://example.com")
            .protocol("chat")
            .extension(
                Extension::new("permessage-deflate")
                    .with_param("client_max_window_bits", Some("10")),
            )
            .header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer t"),
            )
            .build()
            .unwrap();
        let mut out = Vec::new();
        handshake.encode(&mut out);
        let (parsed, len) = parse_request(&out, &Config::default()).unwrap().unwrap();
        assert_eq!(len, out.len());
        assert_eq!(parsed.method(), Method::GET);
        assert_eq!(parsed.version(), Version::HTTP_11);
        assert_eq!(parsed.uri(), "/chat?room=7");
        assert_eq!(parsed.headers(), handshake.request().headers());
        let valid = validate_request(&parsed).unwrap();
        assert_eq!(valid.key, KEY);
        assert_eq!(valid.protocols, ["chat"]);
    }

    #[test]
    fn rfc6455_4_1_builder_rejects_invalid_values() {
        let uri = "ws://example.com/";
        let cases = [
            (
                client(uri).origin("http://a\nb"),
                HandshakeError::BadHeaderValue,
            ),
            (client(uri).key("a\r\nb"), HandshakeError::BadHeaderValue),
            (
                client(uri).protocol("a b"),
                HandshakeError::BadProtocolHeader,
            ),
            (client(uri).protocol(""), HandshakeError::BadProtocolHeader),
            (
                client(uri).protocol("a,b"),
                HandshakeError::BadProtocolHeader,
            ),
            (
                client(uri).protocol("chat").protocol("chat"),
                HandshakeError::BadProtocolHeader,
            ),
            (
                client(uri).extension(Extension::new("a b")),
                HandshakeError::BadExtensionHeader,
            ),
            (
                client(uri).extension(Extension::new("a").with_param("b", Some("1 0"))),
                HandshakeError::BadExtensionHeader,
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().unwrap_err(), expected);
        }
    }

    fn response(status: u16, fields: &[(&str, &str)]) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for &(name, value) in fields {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }

    const UPGRADE_OK: (&str, &str) = ("upgrade", "websocket");
    const CONNECTION_OK: (&str, &str) = ("connection", "Upgrade");
    const ACCEPT_OK: (&str, &str) = ("sec-websocket-accept", ACCEPT);

    #[test]
    fn rfc6455_4_1_verify_rejects() {
        use HandshakeError as E;
        let cases: Vec<(&str, Response<()>, E)> = vec![
            (
                "status 200",
                response(200, &[UPGRADE_OK, CONNECTION_OK, ACCEPT_OK]),
                E::BadStatus(StatusCode::OK),
            ),
            (
                "status 403",
                response(403, &[]),
                E::BadStatus(StatusCode::FORBIDDEN),
            ),
            (
                "no Upgrade",
                response(101, &[CONNECTION_OK, ACCEPT_OK]),
                E::MissingUpgrade,
            ),
            (
                "wrong Upgrade",
                response(101, &[("upgrade", "h2c"), CONNECTION_OK, ACCEPT_OK]),
                E::MissingUpgrade,
            ),
            (
                "no Connection",
                response(101, &[UPGRADE_OK, ACCEPT_OK]),
                E::MissingConnectionUpgrade,
            ),
            (
                "wrong Connection",
                response(101, &[UPGRADE_OK, ("connection", "keep-alive"), ACCEPT_OK]),
                E::MissingConnectionUpgrade,
            ),
            (
                "no accept",
                response(101, &[UPGRADE_OK, CONNECTION_OK]),
                E::BadAccept,
            ),
            (
                "wrong accept",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ("sec-websocket-accept", "0FFP+2nmNIf/h+4BP36k9uzrYGk="),
                    ],
                ),
                E::BadAccept,
            ),
            (
                "accept of the key itself",
                response(
                    101,
                    &[UPGRADE_OK, CONNECTION_OK, ("sec-websocket-accept", KEY)],
                ),
                E::BadAccept,
            ),
            (
                "two accepts",
                response(101, &[UPGRADE_OK, CONNECTION_OK, ACCEPT_OK, ACCEPT_OK]),
                E::BadAccept,
            ),
            (
                "unoffered protocol",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", "other"),
                    ],
                ),
                E::UnofferedProtocol("other".into()),
            ),
            (
                "protocol in another case",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", "Chat"),
                    ],
                ),
                E::UnofferedProtocol("Chat".into()),
            ),
            (
                "two protocols in one field",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", "chat, superchat"),
                    ],
                ),
                E::BadProtocolHeader,
            ),
            (
                "two protocol fields",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", "chat"),
                        ("sec-websocket-protocol", "chat"),
                    ],
                ),
                E::BadProtocolHeader,
            ),
            (
                "empty protocol",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", ""),
                    ],
                ),
                E::BadProtocolHeader,
            ),
            (
                "unoffered extension",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-extensions", "permessage-deflate, x-foo"),
                    ],
                ),
                E::UnofferedExtension("x-foo".into()),
            ),
            (
                "malformed extensions",
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-extensions", "permessage-deflate;;"),
                    ],
                ),
                E::BadExtensionHeader,
            ),
        ];
        let handshake = offering_chat_and_deflate();
        for (what, response, expected) in cases {
            assert_eq!(handshake.verify(&response), Err(expected), "{what}");
        }
    }

    #[test]
    fn rfc6455_4_1_verify_accepts() {
        let deflate =
            Extension::new("permessage-deflate").with_param("client_max_window_bits", Some("10"));
        let cases = [
            (
                response(101, &[UPGRADE_OK, CONNECTION_OK, ACCEPT_OK]),
                Accepted::default(),
            ),
            (
                response(
                    101,
                    &[
                        ("upgrade", "WebSocket"),
                        ("connection", "keep-alive, upgrade"),
                        ("sec-websocket-accept", &format!(" {ACCEPT} ")),
                    ],
                ),
                Accepted::default(),
            ),
            (
                response(
                    101,
                    &[
                        UPGRADE_OK,
                        CONNECTION_OK,
                        ACCEPT_OK,
                        ("sec-websocket-protocol", "superchat"),
                        (
                            "sec-websocket-extensions",
                            "permessage-deflate; client_max_window_bits=10",
                        ),
                    ],
                ),
                Accepted {
                    protocol: Some("superchat".into()),
                    extensions: vec![deflate],
                },
            ),
        ];
        let handshake = offering_chat_and_deflate();
        for (response, expected) in cases {
            assert_eq!(handshake.verify(&response), Ok(expected));
        }
    }

    #[test]
    fn rfc6455_4_1_verify_without_offers_rejects_any_selection() {
        let handshake = client("ws://h/").build().unwrap();
        let with_protocol = response(
            101,
            &[
                UPGRADE_OK,
                CONNECTION_OK,
                ACCEPT_OK,
                ("sec-websocket-protocol", "chat"),
            ],
        );
        assert_eq!(
            handshake.verify(&with_protocol),
            Err(HandshakeError::UnofferedProtocol("chat".into()))
        );
        let with_extension = response(
            101,
            &[
                UPGRADE_OK,
                CONNECTION_OK,
                ACCEPT_OK,
                ("sec-websocket-extensions", "permessage-deflate"),
            ],
        );
        assert_eq!(
            handshake.verify(&with_extension),
            Err(HandshakeError::UnofferedExtension(
                "permessage-deflate".into()
            ))
        );
    }
}
