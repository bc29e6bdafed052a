//! The HTTP side (hyper): pages, `/session`, `/healthz`, `/config`, `/metrics`, and the upgrades of
//! `/ws` and `/hello`, whose handshake checks are [`tolqin::Acceptor::check`]'s.
//!
//! Every request first passes the `Host` check ([`Hosts`]): a name the server does not
//! answer for gets 421 Misdirected Request, whatever the route. That is the defence against
//! DNS rebinding, where a hostile page's own name is made to resolve to this server: the
//! browser then sends that name as `Host` (and as the `Origin` of its sockets). The `Origin`
//! of an upgrade must name this server too (an allowed host, with the scheme it is served
//! on) or be one of [`crate::ChatConfig::allow_origins`]: it is not derived from the
//! request's `Host`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tolqin::server::Reject;
use tolqin::{Acceptor, Options, WebSocket};

use crate::assets;
use crate::metrics::Metrics;
use crate::server::{ConnectionPermit, Shared};

type Body = Full<Bytes>;

/// The `Host` values a listener answers for.
///
/// - its own address as `IP:PORT`, and any IP literal with its port: a rebinding page's
///   `Host` is always its own DNS name, never an IP literal;
/// - `localhost:PORT` when it listens on a loopback or unspecified address;
/// - each [`crate::ChatConfig::allow_hosts`] entry (`name:port`, or `name` for any port);
/// - anything, when it listens on an unspecified address (`0.0.0.0`, `[::]`) and no host
///   was allowed: the server cannot know its names then, so it warns at startup that DNS
///   rebinding protection needs `--allow-host` (or `--public-url`).
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    any: bool,
    port: u16,
    default_port: u16,
    names: Vec<(String, Option<u16>)>,
}

impl Hosts {
    pub(crate) fn new(listen: SocketAddr, allow: &[String], tls: bool) -> Self {
        let port = listen.port();
        let mut names: Vec<(String, Option<u16>)> =
            allow.iter().filter_map(|h| authority(h, None)).collect();
        let ip = listen.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            names.push(("localhost".into(), Some(port)));
        }
        Hosts {
            any: ip.is_unspecified() && allow.is_empty(),
            port,
            default_port: if tls { 443 } else { 80 },
            names,
        }
    }

    /// Whether there is no check (wildcard address and no allowed host).
    pub(crate) fn is_open(&self) -> bool {
        self.any
    }

    /// Whether `host` (a `Host` header or an origin's authority) names this server.
    pub(crate) fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = authority(host, Some(self.default_port)) else {
            return false;
        };
        let ip = name.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<IpAddr>().is_ok() && port == Some(self.port) {
            return true;
        }
        self.names
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }
}

/// `host[:port]` as (lowercase name without a final dot, port); `default` when it has no
/// port. `None` for what is not an authority.
fn authority(text: &str, default: Option<u16>) -> Option<(String, Option<u16>)> {
    let text = text.trim();
    let (name, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => {
                (name.to_ascii_lowercase(), Some(port.parse::<u16>().ok()?))
            }
            Some(_) => return None,
            None => (text.to_ascii_lowercase(), None),
        }
    };
    let name = name.trim_end_matches('.').to_string();
    let valid = |c: char| c.is_ascii_alphanumeric() || "-._[]:".contains(c);
    if name.is_empty() || !name.chars().all(valid) {
        return None;
    }
    Some((name, port.or(default)))
}

/// Which listener a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The pages and the sockets.
    Public,
    /// `--metrics-listen`: `/metrics` (and `/healthz`) only.
    Metrics,
}

/// Serves HTTP/1.1 on one connection until it ends or the server stops. The permit is held
/// until the connection and any WebSocket upgraded from it have ended.
pub(crate) async fn serve<I>(
    io: I,
    shared: Arc<Shared>,
    tls: bool,
    listener: Listener,
    permit: Arc<ConnectionPermit>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            let permit = permit.clone();
            async move {
                let response = match listener {
                    Listener::Public => route(req, &shared, tls, &permit),
                    Listener::Metrics => metrics_route(&req, &shared),
                };
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.handshake_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection failed");
            }
        }
        () = shared.shutdown.cancelled() => {
            // Finish the request in flight, keep no connection alive past the shutdown.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(shared.config.close_timeout, conn).await;
        }
    }
}

/// Answers `503 Service Unavailable` (with `Retry-After: 1`) to the request of a connection
/// over a limit, then closes it; the request head must come within 2 s.
pub(crate) async fn refuse<I>(io: I, why: &'static str)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |_req| async move {
        let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, why);
        let h = response.headers_mut();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(no_store(response))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(std::time::Duration::from_secs(2));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), conn).await;
}

/// 421 for a `Host` this server does not answer for (or none).
fn misdirected(req: &Request<Incoming>, shared: &Shared) -> Option<Response<Body>> {
    let host = host(req);
    if host.is_some_and(|h| shared.hosts.allows(h)) {
        return None;
    }
    Metrics::add(&shared.metrics.hosts_rejected, 1);
    tracing::debug!(
        host = host.unwrap_or("(none)"),
        "request for a foreign Host refused"
    );
    let mut response = plain(
        StatusCode::MISDIRECTED_REQUEST,
        "this server does not answer for that Host (DNS rebinding protection); \
         its operator can allow the name with --allow-host or --public-url\n",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(no_store(response))
}

/// The routes of `--metrics-listen`.
fn metrics_route(req: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    if let Some(refused) = misdirected(req, shared) {
        return refused;
    }
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match req.uri().path() {
        "/metrics" if get => metrics(shared),
        "/healthz" if get => no_store(plain(StatusCode::OK, "ok\n")),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn metrics(shared: &Shared) -> Response<Body> {
    let mut response = plain(StatusCode::OK, &shared.metrics.render());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    no_store(response)
}

fn route(
    mut req: Request<Incoming>,
    shared: &Arc<Shared>,
    tls: bool,
    permit: &Arc<ConnectionPermit>,
) -> Response<Body> {
    if let Some(refused) = misdirected(&req, shared) {
        return refused;
    }
    let path = req.uri().path();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/ws" | "/hello" if get => upgrade(&mut req, shared, permit),
        "/" if get => page(
            assets::INDEX_HTML,
            "text/html; charset=utf-8",
            &req,
            shared,
            tls,
        ),
        "/demo" if get => page(
            assets::DEMO_HTML,
            "text/html; charset=utf-8",
            &req,
            shared,
            tls,
        ),
        "/chat.js" | "/demo.js" if get => {
            let body = if path == "/chat.js" {
                assets::CHAT_JS
            } else {
                assets::DEMO_JS
            };
            asset(body, "text/javascript; charset=utf-8")
        }
        "/chat.css" if get => asset(assets::CHAT_CSS, "text/css; charset=utf-8"),
        "/session" if get || method == Method::POST => {
            let mut response = plain(StatusCode::NO_CONTENT, "");
            set_session(&mut response, &req, shared, tls);
            no_store(response)
        }
        "/healthz" if get => no_store(plain(StatusCode::OK, "ok\n")),
        // What the page needs to know of the room's limits (its live count of characters).
        "/config" if get => {
            let config = &shared.config;
            let json = serde_json::json!({
                "max_chars": config.max_chars,
                "max_user_chars": config.max_user_chars,
            });
            let mut response = plain(StatusCode::OK, &json.to_string());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            no_store(response)
        }
        // Not on the public listener unless asked: see `--metrics-listen`.
        "/metrics" if get && shared.config.public_metrics => metrics(shared),
        "/favicon.ico" => plain(StatusCode::NO_CONTENT, ""),
        _ => {
            if get
                && let Some((_, html)) = shared.config.extra_pages.iter().find(|(p, _)| p == path)
            {
                let mut response = plain(StatusCode::OK, html);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return no_store(response);
            }
            let known = matches!(
                path,
                "/" | "/ws"
                    | "/hello"
                    | "/demo"
                    | "/chat.js"
                    | "/demo.js"
                    | "/chat.css"
                    | "/session"
                    | "/healthz"
                    | "/config"
            ) || (path == "/metrics" && shared.config.public_metrics);
            if known {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            } else {
                plain(StatusCode::NOT_FOUND, "not found\n")
            }
        }
    }
}

fn plain(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A page: strict CSP (scripts and sockets of this origin only), not framed by other sites,
/// and a session cookie if the browser has no valid one.
fn page(
    html: &'static str,
    content_type: &'static str,
    req: &Request<Incoming>,
    shared: &Shared,
    tls: bool,
) -> Response<Body> {
    let mut response = asset(html, content_type);
    let ws = host(req).map_or(String::new(), |host| {
        format!(" {}://{host}", if tls { "wss" } else { "ws" })
    });
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'{ws}; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    );
    let h = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set_session(&mut response, req, shared, tls);
    no_store(response)
}

fn set_session<B>(response: &mut Response<Body>, req: &Request<B>, shared: &Shared, tls: bool) {
    if shared.sessions.has_valid_cookie(req.headers()) {
        return;
    }
    if let Ok(cookie) = HeaderValue::from_str(&shared.sessions.set_cookie(tls)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

fn host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// What an upgrade's `Origin` is checked against.
#[derive(Debug, Clone)]
pub(crate) struct Origins {
    pub(crate) hosts: Hosts,
    pub(crate) allow: Vec<String>,
    pub(crate) tls: bool,
}

/// The acceptors of `/ws` and `/hello`: after RFC 6455's checks, the `Origin`
/// ([`origin_allowed`]), and for `/ws` a session cookie this server issued.
pub(crate) fn acceptors(
    sessions: crate::session::Sessions,
    options: Options,
    origins: Origins,
) -> [Acceptor; 2] {
    let origins = Arc::new(origins);
    let hello = {
        let origins = origins.clone();
        Acceptor::new()
            .options(options.clone())
            .authenticate(move |req| {
                if origin_allowed(req, &origins) {
                    Ok(http::HeaderMap::new())
                } else {
                    Err(Reject::forbidden("origin not allowed"))
                }
            })
    };
    let chat = Acceptor::new().options(options).authenticate(move |req| {
        if !origin_allowed(req, &origins) {
            Err(Reject::forbidden("origin not allowed"))
        } else if sessions.has_valid_cookie(req.headers()) {
            Ok(http::HeaderMap::new())
        } else {
            Err(Reject::unauthorized(
                "no valid session cookie: load the chat page first (it sets tolqin_session)",
            ))
        }
    });
    [chat, hello]
}

/// Whether an upgrade's `Origin` may open a socket: one of the configured origins, or this
/// server's own (the scheme it serves, an allowed host). With no `Host` check (a wildcard
/// address and no allowed host), the page's own origin is judged by the request's `Host`.
fn origin_allowed<B>(req: &Request<B>, origins: &Origins) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if origins.allow.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let scheme = if origins.tls { "https://" } else { "http://" };
    let Some(authority) = origin
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &origin[scheme.len()..])
    else {
        return false;
    };
    if origins.hosts.is_open() {
        return host(req).is_some_and(|h| h.eq_ignore_ascii_case(authority));
    }
    origins.hosts.allows(authority)
}

fn upgrade(
    req: &mut Request<Incoming>,
    shared: &Arc<Shared>,
    permit: &Arc<ConnectionPermit>,
) -> Response<Body> {
    let chat = req.uri().path() == "/ws";
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    let acceptor = if chat {
        &shared.acceptors[0]
    } else {
        &shared.acceptors[1]
    };
    let accepted = match acceptor.check(&head) {
        Ok(response) => response,
        Err(reject) => {
            Metrics::add(&shared.metrics.handshakes_rejected, 1);
            tracing::debug!(status = %reject.status(), body = reject.body(), "upgrade refused");
            return refusal(&reject);
        }
    };
    let on_upgrade = hyper::upgrade::on(req);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = accepted.status();
    *response.headers_mut() = accepted.headers().clone();
    let options = acceptor.connection_options().clone();
    let shared = shared.clone();
    let permit = permit.clone();
    tokio::spawn(async move {
        // The connection counts against the limits until the socket ends.
        let _permit = permit;
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocket::from_upgraded(TokioIo::new(upgraded), &accepted, options);
                if chat {
                    crate::client::serve(ws, shared).await;
                } else {
                    Metrics::add(&shared.metrics.hello_connections_total, 1);
                    crate::hello::serve(ws, shared).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    response
}

/// The HTTP response of a refused upgrade. `Reject` exposes its status and body only, so the
/// one header RFC 6455 requires on a refusal (426 with the versions we speak) is added here.
fn refusal(reject: &Reject) -> Response<Body> {
    let mut response = plain(reject.status(), reject.body());
    if reject.status() == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    if reject.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Cookie realm=\"tolqin chat\""),
        );
    }
    no_store(response)
}
