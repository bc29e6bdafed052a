//! The server side: run the opening handshake on an accepted stream, with hooks for `Origin`
//! checks, subprotocol choice and authentication.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tolqin_proto::connection::UpgradeRequest;
use tolqin_proto::{Connection, Event};

use crate::socket::WebSocket;
use crate::{Error, Options, Result};

/// A refusal of an upgrade request: the HTTP response the client gets instead of 101.
///
/// Boxed, so that hooks returning `Result<_, Reject>` stay small.
#[derive(Debug, Clone)]
pub struct Reject(Box<Response<String>>);

impl Reject {
    /// A refusal with this status and a short text/plain body.
    pub fn new(status: StatusCode, body: impl Into<String>) -> Self {
        let mut response = Response::new(body.into());
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        Reject(Box::new(response))
    }
    /// 401 Unauthorized: no or bad credentials.
    pub fn unauthorized(body: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, body)
    }
    /// 403 Forbidden: for example an `Origin` that is not allowed.
    pub fn forbidden(body: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, body)
    }
    /// Adds a header (for example `WWW-Authenticate` or `Retry-After`).
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.0.headers_mut().insert(name, value);
        self
    }
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }
    /// The body.
    pub fn body(&self) -> &str {
        self.0.body()
    }
}

type AuthHook = dyn Fn(&http::Request<()>) -> std::result::Result<HeaderMap, Reject> + Send + Sync;

/// Which `Origin` headers a server accepts.
#[derive(Clone, Default)]
enum OriginPolicy {
    #[default]
    Any,
    List(Vec<String>),
}

/// Runs the server side of the opening handshake with the checks a public server needs.
/// Cheap to clone; build once and share among connections.
///
/// ```no_run
/// # async fn run() -> tolqin::Result<()> {
/// use tolqin::{Acceptor, server::Reject};
/// let acceptor = Acceptor::new()
///     .allow_origin("https://chat.example")
///     .protocols(["chat.v2", "chat.v1"])
///     .authenticate(|req| match req.headers().get("cookie") {
///         Some(c) if c.as_bytes().starts_with(b"session=") => Ok(Default::default()),
///         _ => Err(Reject::unauthorized("log in first")),
///     });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = acceptor.accept(tcp).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Acceptor {
    options: Options,
    origins: OriginPolicy,
    protocols: Vec<String>,
    auth: Option<Arc<AuthHook>>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("options", &self.options)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Accepts every origin, no subprotocol, no authentication, default [`Options`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the options of accepted connections.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Accepts requests whose `Origin` is exactly `origin` (scheme, host and port, as the
    /// browser sends it); call again to allow more. Once any origin is named, requests from
    /// other origins, or with no `Origin`, get 403: the defence against cross-site WebSocket
    /// hijacking.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        match &mut self.origins {
            OriginPolicy::List(list) => list.push(origin.into()),
            policy => *policy = OriginPolicy::List(vec![origin.into()]),
        }
        self
    }

    /// The subprotocols this server speaks, in its order of preference. The first of these
    /// that the client offered is chosen; none in common means no `Sec-WebSocket-Protocol` in
    /// the response (the client then decides whether to go on).
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// A hook that sees the request (headers, cookies, URI) after the protocol checks and
    /// either accepts it, with headers to add to the 101 response (`Set-Cookie`...), or
    /// refuses it with a [`Reject`].
    pub fn authenticate<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::Request<()>) -> std::result::Result<HeaderMap, Reject> + Send + Sync + 'static,
    {
        self.auth = Some(Arc::new(hook));
        self
    }

    /// Runs the opening handshake on `io`, within the handshake timeout.
    ///
    /// # Errors
    /// [`Error::Handshake`] for a malformed request (the 4xx response was sent),
    /// [`Error::Rejected`] when the origin check or the hook refused it,
    /// [`Error::HandshakeTimeout`], [`Error::Io`].
    pub async fn accept<S>(&self, io: S) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_with_request(io).await.map(|(ws, _)| ws)
    }

    /// Like [`accept`](Self::accept), also returning the request (its URI and headers).
    ///
    /// # Errors
    /// As [`accept`](Self::accept).
    pub async fn accept_with_request<S>(&self, io: S) -> Result<(WebSocket<S>, http::Request<()>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let timeout = self.options.handshake_timeout;
        match tokio::time::timeout(timeout, self.handshake(io)).await {
            Ok(result) => result,
            Err(_) => Err(Error::HandshakeTimeout),
        }
    }

    fn decide(&self, upgrade: &UpgradeRequest) -> std::result::Result<Response<()>, Reject> {
        if let OriginPolicy::List(allowed) = &self.origins {
            let ok = upgrade
                .valid
                .origin
                .as_deref()
                .is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)));
            if !ok {
                return Err(Reject::forbidden("origin not allowed"));
            }
        }
        let extra = match &self.auth {
            Some(hook) => hook(&upgrade.request)?,
            None => HeaderMap::new(),
        };
        let protocol = self
            .protocols
            .iter()
            .find(|p| upgrade.valid.protocols.iter().any(|o| o == *p));
        let mut response = upgrade.valid.accept(protocol.map(String::as_str), &[]);
        response.headers_mut().extend(extra);
        Ok(response)
    }

    async fn handshake<S>(&self, mut io: S) -> Result<(WebSocket<S>, http::Request<()>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut conn = Connection::server(self.options.protocol.clone());
        loop {
            match conn.next_event() {
                Some(Event::Request(upgrade)) => {
                    let result = self.decide(&upgrade);
                    let request = upgrade.request;
                    match result {
                        Ok(response) => {
                            conn.accept(response)?;
                            let mut ws =
                                WebSocket::from_connection(io, conn, self.options.clone(), None);
                            ws.flush().await?;
                            return Ok((ws, request));
                        }
                        Err(reject) => {
                            let status = reject.status();
                            tracing::debug!(%status, body = %reject.body(), "upgrade refused");
                            conn.reject(&*reject.0)?;
                            write_all_and_shutdown(&mut io, &mut conn).await;
                            return Err(Error::Rejected(status));
                        }
                    }
                }
                Some(Event::HandshakeFailed(err)) => {
                    tracing::debug!(error = %err, "bad upgrade request");
                    write_all_and_shutdown(&mut io, &mut conn).await;
                    return Err(Error::Handshake(err));
                }
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

async fn write_all_and_shutdown<S: AsyncWrite + Unpin>(io: &mut S, conn: &mut Connection) {
    use tokio::io::AsyncWriteExt;
    let bytes = conn.data_to_send();
    let _ = io.write_all(&bytes).await;
    let _ = io.shutdown().await;
}

/// Runs the opening handshake on `io` with default options, accepting any origin and no
/// subprotocol. See [`Acceptor`] for the checks a public server needs.
///
/// # Errors
/// As [`Acceptor::accept`].
pub async fn accept<S>(io: S) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Acceptor::new().accept(io).await
}
