//! The server side: run the opening handshake on an accepted stream, with hooks for `Origin`
//! checks, subprotocol choice and authentication.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tolqin_proto::connection::UpgradeRequest;
use tolqin_proto::{Connection, Event};

use crate::socket::WebSocket;
#[cfg(feature = "tls")]
use crate::tls::{TlsServer, TlsStream};
use crate::{Error, Options, Result, transport};

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
    /// The headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }
    /// The whole response.
    pub fn into_response(self) -> Response<String> {
        *self.0
    }
}

type AuthHook = dyn Fn(&http::Request<()>) -> std::result::Result<HeaderMap, Reject> + Send + Sync;

/// Which `Origin` headers a server accepts.
#[derive(Clone, Default)]
enum OriginPolicy {
    #[default]
    Any,
    /// Exact origins, and whether the request's own origin (scheme + Host) is allowed too.
    List {
        origins: Vec<String>,
        same_origin: Option<&'static str>,
    },
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
    /// Shared by every accepted connection, as is `protocol` (a copy of `options.protocol`;
    /// both defaults are `Options::default()`'s): a connection holds pointers, not copies.
    options: Arc<Options>,
    protocol: Arc<tolqin_proto::Config>,
    origins: OriginPolicy,
    protocols: Vec<String>,
    auth: Option<Arc<AuthHook>>,
    limit: Option<Arc<ConnectionLimit>>,
}

/// The count of open connections an [`Acceptor`] allows.
#[derive(Debug)]
struct ConnectionLimit {
    max: usize,
    open: AtomicUsize,
}

/// One slot of a connection limit, held by an open connection and freed when the last clone
/// is dropped. [`Acceptor::check`] puts one in the extensions of the `101` response it returns,
/// and [`WebSocket::from_upgraded`] keeps a clone, so a connection accepted through another
/// HTTP server counts from `check` until both are dropped.
#[derive(Debug, Clone)]
pub(crate) struct Permit(#[allow(dead_code)] Arc<Slot>);

/// The slot itself: frees its place in the limit when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<ConnectionLimit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimit {
    fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut open = self.open.load(Ordering::Acquire);
        loop {
            if open >= self.max {
                return None;
            }
            match self.open.compare_exchange_weak(
                open,
                open + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Permit(Arc::new(Slot(self.clone())))),
                Err(now) => open = now,
            }
        }
    }
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
        self.protocol = Arc::new(options.protocol.clone());
        self.options = Arc::new(options);
        self
    }

    /// Accepts requests whose `Origin` is exactly `origin` (scheme, host and port, as the
    /// browser sends it); call again to allow more. Once any origin is named, requests from
    /// other origins, or with no `Origin`, get 403: the defence against cross-site WebSocket
    /// hijacking.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        match &mut self.origins {
            OriginPolicy::List { origins, .. } => origins.push(origin.into()),
            policy => {
                *policy = OriginPolicy::List {
                    origins: vec![origin.into()],
                    same_origin: None,
                }
            }
        }
        self
    }

    /// Accepts requests from the page's own origin: `Origin` equal to `scheme://` + the
    /// request's `Host` (`scheme` is `"http"` or `"https"`, as the pages are served). Like
    /// [`allow_origin`](Self::allow_origin), this turns the origin check on: other origins, or
    /// no `Origin`, get 403.
    pub fn allow_same_origin(mut self, scheme: &'static str) -> Self {
        match &mut self.origins {
            OriginPolicy::List { same_origin, .. } => *same_origin = Some(scheme),
            policy => {
                *policy = OriginPolicy::List {
                    origins: Vec::new(),
                    same_origin: Some(scheme),
                }
            }
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

    /// Allows at most `max` open connections through this acceptor (and its clones): past
    /// it, an upgrade request gets `503 Service Unavailable` with `Retry-After: 1`, before
    /// any upgrade. A connection counts until its `WebSocket` (or read half) is dropped.
    ///
    /// The limit holds on both paths: [`accept`](Self::accept) and
    /// [`check`](Self::check). On the `check` path a connection counts from the `101`
    /// response `check` returns until both that response and the `WebSocket`
    /// [`from_upgraded`](WebSocket::from_upgraded) made from it are dropped (a response that is
    /// never used frees its place when dropped).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limit = Some(Arc::new(ConnectionLimit {
            max,
            open: AtomicUsize::new(0),
        }));
        self
    }

    /// Connections open through this acceptor, when it has a limit.
    pub fn open_connections(&self) -> Option<usize> {
        self.limit.as_ref().map(|l| l.open.load(Ordering::Acquire))
    }

    /// The options of accepted connections.
    pub fn connection_options(&self) -> &Options {
        &self.options
    }

    /// Runs every check of [`accept`](Self::accept) on a request that another HTTP server
    /// (hyper, say) parsed: RFC 6455's, the origin list, the authentication hook, and the
    /// subprotocol and permessage-deflate negotiation. Returns the `101` response to send;
    /// after the upgrade, wrap the stream with [`WebSocket::from_upgraded`].
    ///
    /// ```
    /// use tolqin::Acceptor;
    /// let request = http::Request::get("/chat")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .body(())
    ///     .unwrap();
    /// let response = Acceptor::new().check(&request).unwrap();
    /// assert_eq!(response.status(), 101);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// ```
    ///
    /// With [`max_connections`](Self::max_connections), the returned response holds one of
    /// its places (in its extensions) and passes it on to
    /// [`WebSocket::from_upgraded`]; past the limit, `check` refuses with 503.
    ///
    /// # Errors
    /// A [`Reject`] to send instead: 400/405/426 for a malformed request (with the headers
    /// RFC 6455 asks for), 403 for a foreign origin, 503 (with `Retry-After: 1`) past
    /// [`max_connections`](Self::max_connections), or the hook's own refusal.
    pub fn check(&self, request: &http::Request<()>) -> std::result::Result<Response<()>, Reject> {
        let valid = tolqin_proto::handshake::validate_request(request)
            .map_err(|e| self.handshake_reject(&e))?;
        let deflate = self
            .options
            .protocol
            .deflate
            .negotiate(&valid.extensions)
            .map_err(|e| self.handshake_reject(&e.into()))?;
        let upgrade = UpgradeRequest {
            request: clone_head(request),
            valid,
            deflate,
        };
        let permit = match &self.limit {
            Some(limit) => Some(limit.try_acquire().ok_or_else(too_many)?),
            None => None,
        };
        let mut response = self.decide(&upgrade)?;
        if let Some(permit) = permit {
            response.extensions_mut().insert(permit);
        }
        Ok(response)
    }

    fn handshake_reject(&self, err: &tolqin_proto::handshake::HandshakeError) -> Reject {
        let response = tolqin_proto::handshake::error_response(err);
        let mut reject = Reject::new(response.status(), response.body().clone());
        for (name, value) in response.headers() {
            reject = reject.with_header(name.clone(), value.clone());
        }
        reject
    }

    fn decide(&self, upgrade: &UpgradeRequest) -> std::result::Result<Response<()>, Reject> {
        if let OriginPolicy::List {
            origins,
            same_origin,
        } = &self.origins
        {
            let origin = upgrade.valid.origin.as_deref();
            let listed = origin.is_some_and(|o| origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
            let own = match (
                origin,
                same_origin,
                upgrade.request.headers().get(http::header::HOST),
            ) {
                (Some(o), Some(scheme), Some(host)) => host
                    .to_str()
                    .is_ok_and(|host| o.eq_ignore_ascii_case(&format!("{scheme}://{host}"))),
                _ => false,
            };
            if !listed && !own {
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
        let extensions: Vec<_> = upgrade.deflate.iter().map(|p| p.to_extension()).collect();
        let mut response = upgrade
            .valid
            .accept(protocol.map(String::as_str), &extensions);
        response.headers_mut().extend(extra);
        Ok(response)
    }

    async fn handshake<S>(&self, mut io: S) -> Result<(WebSocket<S>, http::Request<()>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut conn = Connection::server(self.protocol.clone());
        loop {
            match conn.next_event() {
                Some(Event::Request(upgrade)) => {
                    let permit = match &self.limit {
                        Some(limit) => limit.try_acquire().map(Some),
                        None => Some(None),
                    };
                    let result = match permit {
                        Some(_) => self.decide(&upgrade),
                        None => Err(too_many()),
                    };
                    let request = upgrade.request;
                    match result {
                        Ok(response) => {
                            conn.accept(response)?;
                            let mut ws =
                                WebSocket::from_connection(io, conn, self.options.clone(), None);
                            ws.reader.permit = permit.flatten();
                            ws.flush().await?;
                            return Ok((ws, request));
                        }
                        Err(reject) => {
                            let status = reject.status();
                            tracing::debug!(%status, body = %reject.body(), "upgrade refused");
                            conn.reject(&*reject.0)?;
                            transport::write_all_and_shutdown(&mut io, &mut conn).await;
                            return Err(Error::Rejected(status));
                        }
                    }
                }
                Some(Event::HandshakeFailed(err)) => {
                    tracing::debug!(error = %err, "bad upgrade request");
                    transport::write_all_and_shutdown(&mut io, &mut conn).await;
                    return Err(Error::Handshake(err));
                }
                Some(_) => {}
                None => transport::read_handshake(&mut io, &mut conn).await?,
            }
        }
    }
}

/// TLS, with the `tls` feature.
#[cfg(feature = "tls")]
impl Acceptor {
    /// Runs the TLS handshake with `tls`, then the opening handshake, both within the one
    /// handshake timeout (a client that stalls in either is dropped). With the `tls` feature
    /// only; without it, wrap the stream in TLS of your own and call
    /// [`accept`](Self::accept).
    ///
    /// ```no_run
    /// # async fn run() -> tolqin::Result<()> {
    /// let tls = tolqin::tls::TlsServer::from_pem_files("cert.pem", "key.pem")?;
    /// let acceptor = tolqin::Acceptor::new();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
    /// let (tcp, _) = listener.accept().await?;
    /// let mut ws = acceptor.accept_tls(&tls, tcp).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Tls`] when the TLS handshake fails, otherwise as [`accept`](Self::accept).
    pub async fn accept_tls<S>(&self, tls: &TlsServer, io: S) -> Result<WebSocket<TlsStream<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_tls_with_request(tls, io)
            .await
            .map(|(ws, _)| ws)
    }

    /// Like [`accept_tls`](Self::accept_tls), also returning the request.
    ///
    /// # Errors
    /// As [`accept_tls`](Self::accept_tls).
    pub async fn accept_tls_with_request<S>(
        &self,
        tls: &TlsServer,
        io: S,
    ) -> Result<(WebSocket<TlsStream<S>>, http::Request<()>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let both = async { self.handshake(tls.accept(io).await?).await };
        tokio::time::timeout(self.options.handshake_timeout, both)
            .await
            .unwrap_or(Err(Error::HandshakeTimeout))
    }
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

/// The refusal past [`Acceptor::max_connections`].
fn too_many() -> Reject {
    Reject::new(StatusCode::SERVICE_UNAVAILABLE, "too many connections")
        .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// A copy of a request's head (method, URI, version, headers) with an empty body.
fn clone_head(request: &http::Request<()>) -> http::Request<()> {
    let mut copy = http::Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request() -> http::Request<()> {
        http::Request::get("/")
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn check_enforces_max_connections_until_the_socket_is_dropped() {
        let acceptor = Acceptor::new().max_connections(1);
        let first = acceptor.check(&upgrade_request()).unwrap();
        assert_eq!(acceptor.open_connections(), Some(1));
        let refused = acceptor.check(&upgrade_request()).unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
        // The socket made from the response keeps the place after the response is gone.
        let (io, _peer) = tokio::io::duplex(64);
        let ws = WebSocket::from_upgraded(io, &first, Options::default());
        drop(first);
        assert_eq!(acceptor.open_connections(), Some(1));
        assert!(acceptor.check(&upgrade_request()).is_err());
        drop(ws);
        assert_eq!(acceptor.open_connections(), Some(0));
        // A response that is never used frees its place when dropped.
        drop(acceptor.check(&upgrade_request()).unwrap());
        assert_eq!(acceptor.open_connections(), Some(0));
        // Without a limit, nothing is counted.
        assert!(Acceptor::new().check(&upgrade_request()).is_ok());
    }
}
