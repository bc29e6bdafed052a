//! The HTTP side (hyper): pages, `/session`, `/healthz`, `/metrics`, and the upgrades of
//! `/ws` and `/hello`, whose handshake checks are [`tolqin::Acceptor::check`]'s.

use std::convert::Infallible;
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
use tolqin::{Acceptor, WebSocket};

use crate::assets;
use crate::metrics::Metrics;
use crate::server::Shared;

type Body = Full<Bytes>;

/// Serves HTTP/1.1 on one connection until it ends or the server stops.
pub(crate) async fn serve<I>(io: I, shared: Arc<Shared>, tls: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(route(req, &shared, tls)) }
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

fn route(mut req: Request<Incoming>, shared: &Arc<Shared>, tls: bool) -> Response<Body> {
    let path = req.uri().path();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/ws" | "/hello" if get => upgrade(&mut req, shared, tls),
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
        "/metrics" if get => {
            let mut response = plain(StatusCode::OK, &shared.metrics.render());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            no_store(response)
        }
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
                    | "/metrics"
            );
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

/// The acceptor of one upgrade request: the page's own origin (this request's `Host`) and
/// the configured ones; for `/ws`, a session cookie this server issued.
fn acceptor(req: &Request<()>, shared: &Arc<Shared>, tls: bool, chat: bool) -> Acceptor {
    let mut acceptor = Acceptor::new().options(shared.options.clone());
    if let Some(host) = host(req) {
        let scheme = if tls { "https" } else { "http" };
        acceptor = acceptor.allow_origin(format!("{scheme}://{host}"));
    }
    for origin in &shared.config.allow_origins {
        acceptor = acceptor.allow_origin(origin.clone());
    }
    if chat {
        let shared = shared.clone();
        acceptor = acceptor.authenticate(move |req| {
            if shared.sessions.has_valid_cookie(req.headers()) {
                Ok(http::HeaderMap::new())
            } else {
                Err(Reject::unauthorized(
                    "no valid session cookie: load the chat page first (it sets tolqin_session)",
                ))
            }
        });
    }
    acceptor
}

fn upgrade(req: &mut Request<Incoming>, shared: &Arc<Shared>, tls: bool) -> Response<Body> {
    let chat = req.uri().path() == "/ws";
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    let acceptor = acceptor(&head, shared, tls, chat);
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
    tokio::spawn(async move {
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
