//! The client side: `connect("ws://host:port/path")` and a builder for headers, `Origin`,
//! subprotocols and limits.

use http::{HeaderName, HeaderValue, Uri};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tolqin_proto::handshake::{ClientRequest, Extension, HandshakeError};
use tolqin_proto::{Connection, Event};

use crate::proxy::Proxy;
use crate::socket::WebSocket;
use crate::stream::ClientStream;
use crate::tls::TlsClient;
use crate::{Error, Options, Result, transport};

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
/// As [`Client::connect`].
pub async fn connect(url: &str) -> Result<WebSocket<ClientStream>> {
    Client::new(url)?.connect().await
}

/// A client handshake builder.
#[derive(Debug, Clone)]
pub struct Client {
    uri: Uri,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<Extension>,
    headers: Vec<(HeaderName, HeaderValue)>,
    options: Options,
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
    /// A client for `url` (`ws://` or `wss://`; `http(s)://` are accepted as aliases).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn new(url: &str) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::InvalidUrl(format!("{url}: {e}")))?;
        match uri.scheme_str() {
            Some("ws" | "wss" | "http" | "https") => {}
            _ => {
                return Err(Error::InvalidUrl(format!(
                    "{url}: the scheme must be ws:// or wss://"
                )));
            }
        }
        if uri.host().is_none() {
            return Err(Error::InvalidUrl(format!("{url}: no host")));
        }
        Ok(Client {
            uri,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            options: Options::default(),
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
    pub fn tls(mut self, tls: TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    fn host_port(&self) -> Result<(String, u16)> {
        let host = self
            .uri
            .host()
            .ok_or_else(|| Error::InvalidUrl("no host".into()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let default = match self.uri.scheme_str() {
            Some("wss" | "https") => 443,
            _ => 80,
        };
        Ok((host, self.uri.port_u16().unwrap_or(default)))
    }

    /// Opens a TCP connection, runs the TLS handshake for `wss://` (SNI and certificate
    /// check for the URL's host), then the opening handshake, all within the handshake
    /// timeout.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::Io`] when the connection fails, [`Error::Tls`] when the
    /// server's certificate does not verify (expired, for another host, unknown CA: each its
    /// own [`TlsError`](crate::tls::TlsError) variant) or the default roots cannot be loaded,
    /// [`Error::Handshake`] when the server's response is not a valid acceptance
    /// ([`Error::Rejected`] with the HTTP status of a refusal), [`Error::HandshakeTimeout`].
    pub async fn connect(self) -> Result<WebSocket<ClientStream>> {
        let (host, port) = self.host_port()?;
        let tls = match self.uri.scheme_str() {
            Some("wss" | "https") => Some(match &self.tls {
                Some(tls) => tls.clone(),
                None => TlsClient::new()?,
            }),
            _ => None,
        };
        let timeout = self.options.handshake_timeout;
        let fut = async {
            let proxy = match &self.proxy {
                ProxyChoice::FromEnv => Proxy::from_env(tls.is_some(), &host),
                ProxyChoice::Direct => None,
                ProxyChoice::Explicit(proxy) => Some(proxy.clone()),
            };
            let tcp = match proxy {
                Some(proxy) => proxy.connect(&host, port).await?,
                None => TcpStream::connect((host.as_str(), port)).await?,
            };
            tcp.set_nodelay(true)?;
            let stream = match tls {
                None => ClientStream::Plain(tcp),
                Some(tls) => ClientStream::Tls(Box::new(tls.connect(&host, tcp).await?)),
            };
            self.handshake_on(stream).await
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or(Err(Error::HandshakeTimeout))
    }

    /// Runs the opening handshake over a stream the caller connected (a TLS stream, a proxy
    /// tunnel, an in-memory duplex).
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn handshake_on<S>(&self, mut io: S) -> Result<WebSocket<S>>
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
                    // After a 101 with unacceptable extensions, a close frame (1010) is queued.
                    transport::write_all_and_shutdown(&mut io, &mut conn).await;
                    return Err(match err {
                        HandshakeError::BadStatus(status) => Error::Rejected(status),
                        err => Error::Handshake(err),
                    });
                }
                Some(_) => {}
                None => transport::read_handshake(&mut io, &mut conn).await?,
            }
        }
    }
}
