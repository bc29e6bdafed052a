//! The client side: `connect("ws://host:port/path")` and a builder for headers, `Origin`,
//! subprotocols and limits.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tolqin_proto::handshake::{ClientRequest, Extension, HandshakeError};
use tolqin_proto::{Connection, Event};

use crate::error::{REFUSAL_BODY_LIMIT, Refusal, authority};
use crate::proxy::Proxy;
use crate::socket::WebSocket;
use crate::stream::ClientStream;
#[cfg(feature = "tls")]
use crate::tls::{TlsClient, TlsError};
use crate::{ConnectError, ConnectStep, Error, Options, Result, UrlError, transport};

/// How long a refused handshake's body is waited for after the head: a server that keeps the
/// connection open without saying how long its body is costs no more than this.
const REFUSAL_BODY_WAIT: Duration = Duration::from_secs(1);

/// Connects to a `ws://` or `wss://` URL with default options (for `wss://`, the server's
/// certificate is verified against the default roots: see [`TlsClient::new`]).
///
/// ```no_run
/// # async fn run() -> tolqin::Result<()> {
/// let mut ws = tolqin::connect("wss://echo.example/").await?;
/// ws.send("hello").await?;
/// if let Some(reply) = ws.recv().await {
///     println!("{:?}", reply?);
/// }
/// ws.close(None, "").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Url`] for a URL that [`Client::new`] refuses, before anything is dialled;
/// otherwise as [`Client::connect`].
pub async fn connect(url: &str) -> Result<WebSocket<ClientStream>> {
    Client::new(url)?.connect().await
}

/// A client handshake builder.
#[derive(Debug, Clone)]
pub struct Client {
    uri: Uri,
    /// The host, an IPv6 address without its brackets.
    host: String,
    port: u16,
    /// `wss://` (or `https://`).
    secure: bool,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
    headers: Vec<(HeaderName, HeaderValue)>,
    options: Options,
    #[cfg(feature = "tls")]
    tls: Option<TlsClient>,
    proxy: ProxyChoice,
}

/// Where the proxy setting comes from.
#[derive(Debug, Clone, Default)]
enum ProxyChoice {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`.
    #[default]
    FromEnv,
    /// Connect directly.
    Direct,
    /// This proxy.
    Explicit(Proxy),
}

impl Client {
    /// A client for `url`: `ws://` or `wss://` (`http://` and `https://` are taken as their
    /// aliases, as browsers do), a host, an optional port (default 80 or 443), path and query.
    ///
    /// ```
    /// use tolqin::{Client, Error, UrlError};
    /// let client = Client::new("wss://[::1]:9443/chat?room=7")?;
    /// assert_eq!(client.uri().query(), Some("room=7"));
    /// match Client::new("ws://127.0.0.1:99999/") {
    ///     Err(Error::Url(e)) => assert!(matches!(*e, UrlError::PortOutOfRange { .. })),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), tolqin::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Url`], before anything is dialled: a [`UrlError`] naming what is wrong (no
    /// or another scheme, no host, a port that is not a number or out of range, a fragment,
    /// credentials, or not a URL at all).
    pub fn new(url: &str) -> Result<Self> {
        let parsed = parse_url(url)?;
        Ok(Client {
            uri: parsed.uri,
            host: parsed.host,
            port: parsed.port,
            secure: parsed.secure,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            options: Options::default(),
            #[cfg(feature = "tls")]
            tls: None,
            proxy: ProxyChoice::FromEnv,
        })
    }

    /// Sends this `Origin` (browsers always do; servers may check it).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol; call again for more, in order of preference.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Offers an extension.
    pub fn extension(mut self, offer: Extension) -> Self {
        self.extensions.push(offer);
        self
    }

    /// Sets a request header (`Cookie`, `Authorization`...), replacing any earlier value of
    /// the same name; see [`Client::append_header`] for repeated headers.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// Adds a request header, keeping earlier values of the same name.
    pub fn append_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Connects through this proxy (HTTP `CONNECT` or SOCKS5), whatever the environment says.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxyChoice::Explicit(proxy);
        self
    }

    /// Connects directly, ignoring the proxy environment variables. (By default the
    /// conventional `HTTPS_PROXY` for wss://, `HTTP_PROXY` for ws://, `ALL_PROXY` and
    /// `NO_PROXY` are honoured, as curl does.)
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// Sets the connection options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The TLS setup for `wss://` (which servers to trust); default: [`TlsClient::new`].
    /// With the `tls` feature only.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The host to connect to (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to: the URL's, or the scheme's default (80, or 443 for `wss://`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (the host in brackets if it is an IPv6 address).
    fn target(&self) -> String {
        authority(&self.host, self.port)
    }

    /// Opens a TCP connection (resolving the host, then trying its addresses in turn), runs
    /// the TLS handshake for `wss://` (SNI and certificate check for the URL's host), then the
    /// opening handshake, all within the handshake timeout.
    ///
    /// # Errors
    /// - [`Error::Connect`]: the host does not resolve, the TCP connection failed (to
    ///   each address tried; the [`std::io::Error`] is its source), a step did not finish
    ///   within the handshake timeout ([`ConnectError::Timeout`] names it), or the server
    ///   closed without answering;
    /// - [`Error::Proxy`] when the proxy cannot be reached or refuses the tunnel;
    /// - [`Error::Tls`] when the server's certificate does not verify (expired, for another
    ///   host, unknown CA: each its own [`TlsError`] variant), the default roots cannot be
    ///   loaded, the server does not speak TLS ([`TlsError::NotTls`]: use `ws://`), or, for
    ///   `ws://`, answers with TLS ([`TlsError::ExpectsTls`]: use `wss://`);
    /// - [`Error::Refused`] when the server answers with another status than 101 (its body
    ///   says why, often);
    /// - [`Error::Handshake`] when its response is not a valid acceptance;
    /// - [`Error::Io`] when the connection fails later in the handshake;
    /// - [`Error::Url`] ([`UrlError::TlsNotEnabled`]) for a `wss://` URL in a build without
    ///   the `tls` feature, before anything is dialled.
    pub async fn connect(self) -> Result<WebSocket<ClientStream>> {
        let tls = self.tls_setup()?;
        let timeout = self.options.handshake_timeout;
        // A "no timeout" of Duration::MAX cannot be added to an instant: 30 years will do.
        let deadline = Instant::now() + timeout.min(Duration::from_secs(30 * 365 * 86_400));
        let timed_out = |step, target| timeout_error(step, target, timeout);
        let target = self.target();
        let proxy = match &self.proxy {
            ProxyChoice::FromEnv => Proxy::from_env(tls.is_some(), &self.host),
            ProxyChoice::Direct => None,
            ProxyChoice::Explicit(proxy) => Some(proxy.clone()),
        };
        let tcp = match proxy {
            Some(proxy) => timeout_at(deadline, proxy.connect(&self.host, self.port))
                .await
                .map_err(|_| timed_out(ConnectStep::Proxy, target.clone()))??,
            None => dial(&self.host, self.port, deadline, timeout).await?,
        };
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => ClientStream::Plain(tcp),
            #[cfg(not(feature = "tls"))]
            Some(never) => match never {},
            #[cfg(feature = "tls")]
            Some(tls) => {
                let stream = timeout_at(deadline, tls.connect(&self.host, tcp))
                    .await
                    .map_err(|_| timed_out(ConnectStep::Tls, target.clone()))?
                    .map_err(|e| match e {
                        // Name the port too: the server does not speak TLS *there*.
                        Error::Tls(mut tls) => {
                            if let TlsError::NotTls { host, .. } = &mut *tls {
                                host.clone_from(&target);
                            }
                            Error::Tls(tls)
                        }
                        e => e,
                    })?;
                ClientStream::Tls(Box::new(stream))
            }
        };
        timeout_at(deadline, self.handshake_until(stream, Some(deadline)))
            .await
            .map_err(|_| timed_out(ConnectStep::Handshake, target))?
    }

    /// The TLS setup of a `wss://` URL, `None` for `ws://`.
    #[cfg(feature = "tls")]
    fn tls_setup(&self) -> Result<Option<TlsClient>> {
        Ok(match (self.secure, &self.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => Some(TlsClient::new()?),
        })
    }

    /// Without the `tls` feature a `wss://` URL is refused, before anything is dialled.
    #[cfg(not(feature = "tls"))]
    fn tls_setup(&self) -> Result<Option<std::convert::Infallible>> {
        if self.secure {
            return Err(UrlError::TlsNotEnabled {
                url: self.uri.to_string(),
            }
            .into());
        }
        Ok(None)
    }

    /// Runs the opening handshake over a stream the caller connected (a TLS stream, a proxy
    /// tunnel, an in-memory duplex).
    ///
    /// # Errors
    /// As [`Client::connect`], less what is about connecting. No timeout: wrap the call in
    /// one (a refusal's body is waited for half a second at most).
    pub async fn handshake_on<S>(&self, io: S) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake_until(io, None).await
    }

    async fn handshake_until<S>(&self, mut io: S, deadline: Option<Instant>) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut request = ClientRequest::new(self.uri.clone())?;
        if let Some(origin) = &self.origin {
            request = request.origin(origin.clone());
        }
        for p in &self.protocols {
            request = request.protocol(p.clone());
        }
        // Offer permessage-deflate as browsers do (first: our preferred extension).
        if self.options.protocol.deflate.enabled {
            request = request.extension(self.options.protocol.deflate.offer());
        }
        for e in &self.extensions {
            request = request.extension(e.clone());
        }
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        let handshake = request.build()?;
        let mut conn = Connection::client(handshake, self.options.protocol.clone());
        {
            use tokio::io::AsyncWriteExt;
            let request = conn.data_to_send();
            io.write_all(&request).await?;
            io.flush().await?;
        }
        // The start of the response as it came: the core drops it when the handshake fails,
        // and a refusal's head and body, or TLS where HTTP was expected, are read from it.
        let mut seen: Vec<u8> = Vec::new();
        let keep = self.options.protocol.max_header_block + REFUSAL_BODY_LIMIT + 1;
        loop {
            match conn.next_event() {
                Some(Event::Open(_)) => {
                    return Ok(WebSocket::from_connection(
                        io,
                        conn,
                        std::sync::Arc::new(self.options.clone()),
                        Some(Box::new(self.uri.clone())),
                    ));
                }
                Some(Event::HandshakeFailed(err)) => {
                    let err = match err {
                        HandshakeError::BadStatus(_) => {
                            match self.refusal(&seen, &mut io, deadline).await {
                                Some(refusal) => refusal.into(),
                                None => Error::Handshake(err),
                            }
                        }
                        #[cfg(feature = "tls")]
                        _ if looks_like_tls(&seen) => self.expects_tls(),
                        err => Error::Handshake(err),
                    };
                    // After a 101 with unacceptable extensions, a close frame (1010) is queued.
                    transport::write_all_and_shutdown(&mut io, &mut conn).await;
                    return Err(err);
                }
                Some(_) => {}
                None => {
                    let buf = conn.read_buffer();
                    let before = buf.len();
                    buf.reserve(1024);
                    let read = io.read_buf(buf).await;
                    if let Ok(n) = read {
                        let room = keep.saturating_sub(seen.len()).min(n);
                        seen.extend_from_slice(&buf[before..before + room]);
                    }
                    // A TLS alert or handshake record where HTTP was expected (the
                    // connection may be reset right after it).
                    #[cfg(feature = "tls")]
                    if looks_like_tls(&seen) {
                        return Err(self.expects_tls());
                    }
                    match read {
                        Ok(0) => {
                            return Err(ConnectError::Closed {
                                target: self.target(),
                                received: seen.len(),
                                secure: self.secure,
                            }
                            .into());
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// The error of a `ws://` URL whose server speaks TLS.
    #[cfg(feature = "tls")]
    fn expects_tls(&self) -> Error {
        TlsError::ExpectsTls {
            target: self.target(),
        }
        .into()
    }

    /// A refusal: the head (already received, in `seen`) and as much of the body as arrives
    /// within [`REFUSAL_BODY_WAIT`], at most [`REFUSAL_BODY_LIMIT`] bytes of it. `None` if the
    /// head does not parse (the core would not have got that far).
    async fn refusal<S>(
        &self,
        seen: &[u8],
        io: &mut S,
        deadline: Option<Instant>,
    ) -> Option<Refusal>
    where
        S: AsyncRead + Unpin,
    {
        let mut fields = vec![httparse::EMPTY_HEADER; self.options.protocol.max_headers];
        let mut response = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(head_len)) = response.parse(seen) else {
            return None;
        };
        let status = StatusCode::from_u16(response.code?).ok()?;
        let mut headers = HeaderMap::new();
        for field in response.headers.iter() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(field.name.as_bytes()),
                HeaderValue::from_bytes(field.value),
            ) {
                headers.append(name, value);
            }
        }
        let framing = BodyFraming::of(status, &headers);
        let mut raw = seen[head_len..].to_vec();
        let mut ended = false;
        let wait = Instant::now() + REFUSAL_BODY_WAIT;
        let until = deadline.map_or(wait, |d| d.min(wait));
        let mut chunk = [0u8; 1024];
        while !framing.enough(&raw) {
            match timeout_at(until, io.read(&mut chunk)).await {
                Ok(Ok(0)) => {
                    ended = true;
                    break;
                }
                Ok(Ok(n)) => raw.extend_from_slice(&chunk[..n]),
                // Reset, or the wait is over: the body is what came.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        let (mut body, complete) = framing.body(raw, ended);
        let truncated = !complete || body.len() > REFUSAL_BODY_LIMIT;
        body.truncate(REFUSAL_BODY_LIMIT);
        Some(Refusal {
            url: self.uri.to_string(),
            version: response.version.unwrap_or(1),
            status,
            reason: response.reason.unwrap_or("").to_string(),
            headers,
            body: body.into(),
            truncated,
        })
    }
}

/// How a refusal's body is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy)]
enum BodyFraming {
    /// 1xx, 204, 304: none.
    Empty,
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

impl BodyFraming {
    fn of(status: StatusCode, headers: &HeaderMap) -> Self {
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return BodyFraming::Empty;
        }
        let chunked = headers
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            return BodyFraming::Chunked;
        }
        let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
        match (lengths.next(), lengths.next()) {
            (Some(length), None) => {
                match length.to_str().ok().and_then(|l| l.trim().parse().ok()) {
                    Some(length) => BodyFraming::Length(length),
                    None => BodyFraming::UntilClose,
                }
            }
            _ => BodyFraming::UntilClose,
        }
    }

    /// Whether `raw` holds all of the body that is to be read.
    fn enough(&self, raw: &[u8]) -> bool {
        match *self {
            BodyFraming::Empty => true,
            BodyFraming::Length(length) => raw.len() >= length.min(REFUSAL_BODY_LIMIT + 1),
            BodyFraming::UntilClose => raw.len() > REFUSAL_BODY_LIMIT,
            BodyFraming::Chunked => {
                // The chunk framing costs some bytes: bound what is read by more than the limit.
                let (body, complete) = dechunk(raw);
                complete || body.len() > REFUSAL_BODY_LIMIT || raw.len() > 4 * REFUSAL_BODY_LIMIT
            }
        }
    }

    /// The body of `raw` and whether it is all there (`ended`: the server closed).
    fn body(&self, raw: Vec<u8>, ended: bool) -> (Vec<u8>, bool) {
        match *self {
            BodyFraming::Empty => (Vec::new(), true),
            BodyFraming::Length(length) => {
                let complete = raw.len() >= length;
                let mut raw = raw;
                raw.truncate(length);
                (raw, complete)
            }
            BodyFraming::UntilClose => (raw, ended),
            BodyFraming::Chunked => dechunk(&raw),
        }
    }
}

/// The data of a chunked body (RFC 9112 7.1) as far as it goes, and whether the last chunk
/// was reached. Chunk extensions and trailers are skipped; a malformed chunk ends it.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&raw[..line_end])
            .ok()
            .and_then(|line| line.split(';').next())
            .and_then(|size| usize::from_str_radix(size.trim(), 16).ok());
        let Some(size) = size else {
            return (body, false);
        };
        if size == 0 {
            return (body, true);
        }
        let data = &raw[line_end + 2..];
        let here = size.min(data.len());
        body.extend_from_slice(&data[..here]);
        if data.len() < size + 2 {
            return (body, false);
        }
        raw = &data[size + 2..];
    }
}

/// Whether a response starts as TLS does: a handshake (22) or alert (21) record of
/// version 3.x, what a TLS server sends to a client that spoke HTTP in clear.
#[cfg(feature = "tls")]
fn looks_like_tls(first: &[u8]) -> bool {
    matches!(first, [0x15 | 0x16, 0x03, ..])
}

/// The error of a connection step that did not finish within the handshake timeout.
fn timeout_error(step: ConnectStep, target: String, timeout: Duration) -> Error {
    ConnectError::Timeout {
        step,
        target,
        timeout,
    }
    .into()
}

/// Resolves `host` (unless it is an IP address) and connects to its addresses in turn, within
/// `deadline`.
async fn dial(host: &str, port: u16, deadline: Instant, timeout: Duration) -> Result<TcpStream> {
    let timed_out = |step, target| timeout_error(step, target, timeout);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => timeout_at(deadline, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| timed_out(ConnectStep::Resolve, host.to_string()))?
            .map_err(|source| ConnectError::Resolve {
                host: host.to_string(),
                source,
            })?
            .collect(),
    };
    let mut last = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = Some(e),
            Err(_) => return Err(timed_out(ConnectStep::Tcp, addr.to_string())),
        }
    }
    Err(match last {
        Some(source) => ConnectError::Tcp {
            host: host.to_string(),
            port,
            tried: addrs,
            source,
        },
        None => ConnectError::NoAddress {
            host: host.to_string(),
        },
    }
    .into())
}

/// A URL [`Client::new`] accepts, taken apart.
struct ParsedUrl {
    uri: Uri,
    host: String,
    port: u16,
    secure: bool,
}

/// Checks `url` part by part, so that each mistake gets its own [`UrlError`] (the `http`
/// crate's parser takes `ws://h:99999/` for a URL without a port), then parses it.
fn parse_url(url: &str) -> Result<ParsedUrl, UrlError> {
    let shown = mask_password(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        let known = url
            .split_once(':')
            .is_some_and(|(scheme, _)| is_ws_scheme(scheme).is_some());
        return Err(if url.is_empty() || known {
            UrlError::Malformed {
                url: shown,
                reason: "expected scheme://host[:port]/path".into(),
            }
        } else {
            UrlError::MissingScheme { url: shown }
        });
    };
    if !scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || scheme.is_empty()
    {
        return Err(UrlError::MissingScheme { url: shown });
    }
    let Some(secure) = is_ws_scheme(scheme) else {
        return Err(UrlError::UnsupportedScheme {
            url: shown,
            scheme: scheme.to_string(),
        });
    };
    if let Some(at) = url.find('#') {
        return Err(UrlError::Fragment {
            fragment: url[at..].to_string(),
            url: shown,
        });
    }
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        let user = userinfo.split(':').next().unwrap_or("").to_string();
        return Err(UrlError::UserInfo { url: shown, user });
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let invalid = || UrlError::InvalidHost {
            url: shown.clone(),
            host: authority.to_string(),
        };
        let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        address
            .parse::<Ipv6Addr>()
            .map_err(|_| UrlError::InvalidHost {
                url: shown.clone(),
                host: format!("[{address}]"),
            })?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        (address, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost { url: shown });
    }
    // RFC 3986 3.2.2: a registered name is unreserved characters, sub-delimiters and
    // percent-encodings (an IPv6 address was checked above).
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    if !authority.starts_with('[') && !host.bytes().all(name_byte) {
        return Err(UrlError::InvalidHost {
            url: shown,
            host: host.to_string(),
        });
    }
    let port = match port {
        // RFC 3986 3.2.3: an empty port is the default one.
        None | Some("") => {
            if secure {
                443
            } else {
                80
            }
        }
        Some(digits) if !digits.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(UrlError::PortNotANumber {
                url: shown,
                port: digits.to_string(),
            });
        }
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(UrlError::PortOutOfRange {
                    url: shown,
                    port: digits.to_string(),
                });
            }
        },
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| UrlError::Malformed {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    Ok(ParsedUrl {
        uri,
        host: host.to_string(),
        port,
        secure,
    })
}

/// `Some(secure)` for the schemes a WebSocket URL may have.
fn is_ws_scheme(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => Some(false),
        "wss" | "https" => Some(true),
        _ => None,
    }
}

/// `url` with the password of its user info, if any, replaced by `***`.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hostport}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n0\r\n\r\n"),
            (b"hello".to_vec(), true)
        );
        assert_eq!(
            dechunk(b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n"),
            (b"abcde".to_vec(), true)
        );
        assert_eq!(dechunk(b"5\r\nhel"), (b"hel".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\nhello"), (Vec::new(), false));
        assert_eq!(dechunk(b""), (Vec::new(), false));
    }

    #[test]
    fn passwords_masked() {
        assert_eq!(mask_password("ws://u:secret@h/p"), "ws://u:***@h/p");
        assert_eq!(mask_password("ws://u@h/p"), "ws://u@h/p");
        assert_eq!(mask_password("ws://h/p?a=b@c"), "ws://h/p?a=b@c");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_records_recognized() {
        assert!(looks_like_tls(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(!looks_like_tls(&[0x16]));
    }

    /// Without the `tls` feature a wss:// URL still parses (a TLS stream of one's own can carry
    /// the handshake: `handshake_on`), and `connect` refuses it before dialling, naming the
    /// feature to enable.
    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn wss_without_the_tls_feature_is_a_typed_error() {
        let client = Client::new("wss://127.0.0.1:9/chat").unwrap();
        match client.connect().await {
            Err(Error::Url(e)) => {
                assert_eq!(
                    *e,
                    UrlError::TlsNotEnabled {
                        url: "wss://127.0.0.1:9/chat".into()
                    }
                );
                assert!(
                    e.to_string().contains("enable tolqin's `tls` feature"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
