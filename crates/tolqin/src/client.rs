//! The client side: `connect("ws://host:port/path")` and a builder for headers, `Origin`,
//! subprotocols and limits.

use http::{HeaderName, HeaderValue, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tolqin_proto::handshake::{ClientRequest, Extension};
use tolqin_proto::{Connection, Event};

use crate::socket::WebSocket;
use crate::{Error, Options, Result};

/// Connects to a `ws://` URL with default options.
///
/// ```no_run
/// # async fn run() -> tolqin::Result<()> {
/// let mut ws = tolqin::connect("ws://127.0.0.1:9001/").await?;
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
pub async fn connect(url: &str) -> Result<WebSocket<TcpStream>> {
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

    /// Adds a request header (`Cookie`, `Authorization`...).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] is not used here; an invalid name or value is reported by
    /// [`Client::connect`] as a handshake error.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the connection options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
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

    /// Opens a TCP connection and runs the opening handshake, within the handshake timeout.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] (including `wss://` until TLS is built in), [`Error::Io`] when the
    /// connection fails, [`Error::Handshake`] when the server's response is not a valid
    /// acceptance (`BadStatus` carries the HTTP status of a refusal),
    /// [`Error::HandshakeTimeout`].
    pub async fn connect(self) -> Result<WebSocket<TcpStream>> {
        if matches!(self.uri.scheme_str(), Some("wss" | "https")) {
            return Err(Error::InvalidUrl(format!(
                "{}: wss:// is not supported by this build",
                self.uri
            )));
        }
        let (host, port) = self.host_port()?;
        let timeout = self.options.handshake_timeout;
        let fut = async {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            self.handshake_on(tcp).await
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
                        self.options.clone(),
                        Some(self.uri.clone()),
                    ));
                }
                Some(Event::HandshakeFailed(err)) => return Err(Error::Handshake(err)),
                Some(_) => {}
                None => {
                    let buf = conn.read_buffer();
                    buf.reserve(1024);
                    if io.read_buf(buf).await? == 0 {
                        return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }
}
