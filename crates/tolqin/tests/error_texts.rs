//! What the client's errors say, against real servers on 127.0.0.1: what was tried, the step
//! that timed out, a refusal's status and body (escaped, bounded), TLS on one side only, and
//! the certificate hint.

mod support;

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::bounded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tolqin::proxy::{Proxy, ProxyKind};
use tolqin::server::Reject;
use tolqin::tls::{TlsClient, TlsError, TlsServer};
use tolqin::{Acceptor, Client, ConnectError, ConnectStep, Error, Options};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A client without proxy (whatever the environment says) and with this handshake timeout.
fn client(url: &str, timeout: Duration) -> Client {
    Client::new(url)
        .unwrap()
        .no_proxy()
        .options(Options::default().with_handshake_timeout(timeout))
}

/// A TLS client that accepts any certificate: these tests are about what is on the wire.
fn any_certificate() -> TlsClient {
    TlsClient::builder()
        .danger_skip_verification_for_development()
        .build()
        .unwrap()
}

fn connect_error(result: tolqin::Result<impl std::fmt::Debug>) -> ConnectError {
    match result {
        Err(Error::Connect(e)) => *e,
        other => panic!("expected a connect error, got {other:?}"),
    }
}

fn tls_error(result: tolqin::Result<impl std::fmt::Debug>) -> TlsError {
    match result {
        Err(Error::Tls(e)) => *e,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// A server that answers the first request on each connection with `response` (after reading
/// the request head), then keeps the connection open for a while.
async fn answering(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = tcp.write_all(response).await;
                tokio::time::sleep(Duration::from_secs(20)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_refused_tcp_connection_names_the_address() {
    let port = closed_port();
    let err = connect_error(bounded(tolqin::connect(&format!("ws://127.0.0.1:{port}/"))).await);
    assert_eq!(
        err.to_string(),
        format!("cannot connect to 127.0.0.1:{port}: connection refused")
    );
    // The I/O error stays a typed source.
    assert_eq!(
        err.io_error().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
    let source = err.source().and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(
        source.map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
    // An IPv6 address is bracketed.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let err = connect_error(bounded(tolqin::connect(&format!("ws://[::1]:{port}/"))).await);
        assert_eq!(
            err.to_string(),
            format!("cannot connect to [::1]:{port}: connection refused")
        );
    }
}

#[tokio::test]
async fn a_host_name_lists_the_addresses_tried() {
    let port = closed_port();
    let err = connect_error(
        bounded(client(&format!("ws://localhost:{port}/"), Duration::from_secs(10)).connect())
            .await,
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot connect to localhost:{port} (tried ")),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.ends_with("): connection refused"), "{text}");
    let ConnectError::Tcp { tried, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        tried
            .iter()
            .all(|a| a.port() == port && a.ip().is_loopback())
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_says_so() {
    // .invalid never resolves (RFC 6761); without a network the resolver may time out instead.
    let result =
        bounded(client("ws://no-such-host.invalid/", Duration::from_secs(5)).connect()).await;
    let err = connect_error(result);
    let text = err.to_string();
    match &err {
        ConnectError::Resolve { host, source } => {
            assert_eq!(host, "no-such-host.invalid");
            assert!(
                text.starts_with("cannot resolve no-such-host.invalid: "),
                "{text}"
            );
            assert!(!text.contains("os error"), "{text}");
            let _: &io::Error = source;
        }
        ConnectError::Timeout { step, .. } => {
            assert_eq!(*step, ConnectStep::Resolve);
            assert!(
                text.starts_with("timed out resolving no-such-host.invalid "),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_names_the_step() {
    // A server that accepts and never answers: the handshake response is what is waited for.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = connect_error(bounded(client(&format!("ws://{addr}/"), timeout).connect()).await);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err.to_string(),
        format!(
            "timed out waiting for the WebSocket handshake response of {addr} (the handshake \
             timeout of 300ms covers every step; Options::with_handshake_timeout sets it)"
        )
    );
    // Over TLS, the TLS handshake is what hangs.
    let err = connect_error(
        bounded(
            client(&format!("wss://{addr}/"), timeout)
                .tls(any_certificate())
                .connect(),
        )
        .await,
    );
    assert!(
        matches!(&err, ConnectError::Timeout { step: ConnectStep::Tls, target, .. } if *target == addr.to_string()),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("timed out in the TLS handshake with {addr} ")),
        "{err}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_server_closing_without_an_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            drop(tcp);
        }
    });
    let err = connect_error(
        bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect()).await,
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{addr} closed the connection before answering the WebSocket handshake \
             (a TLS server? then use wss://)"
        )
    );
}

#[tokio::test]
async fn a_refusal_shows_the_status_and_the_body() {
    // The body says why; the server keeps the connection open, Content-Length says how much.
    let addr = answering(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 38\r\nWWW-Authenticate: Cookie\r\n\r\n\
          log in first: open /login in a browser",
    )
    .await;
    let started = Instant::now();
    let result =
        bounded(client(&format!("ws://{addr}/chat"), Duration::from_secs(10)).connect()).await;
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    let Err(Error::Refused(refusal)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(refusal.status(), 401);
    assert_eq!(refusal.body(), b"log in first: open /login in a browser");
    assert!(!refusal.is_body_truncated());
    assert_eq!(refusal.headers()["www-authenticate"], "Cookie");
    assert_eq!(
        Error::Refused(refusal).to_string(),
        format!(
            "ws://{addr}/chat refused the WebSocket handshake: HTTP/1.1 401 Unauthorized: \
             log in first: open /login in a browser"
        )
    );
}

#[tokio::test]
async fn a_tolqin_server_refusal_reaches_the_client_with_its_body() {
    let acceptor =
        Acceptor::new().authenticate(|_| Err(Reject::unauthorized("no session: log in first")));
    let addr = support::echo_server_with(acceptor).await;
    let result = bounded(client(&support::url(addr), Duration::from_secs(10)).connect()).await;
    let err = result.map(|_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ws://{addr}/ refused the WebSocket handshake: HTTP/1.1 401 Unauthorized: no session: log in first"
        )
    );
}

#[tokio::test]
async fn control_characters_in_a_refusal_are_escaped() {
    let addr = answering(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 24\r\n\r\n\x1b[31mred\x1b[0m\r\nline 2\x07\x9b\xff\n",
    )
    .await;
    let err = bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect())
        .await
        .map(|_| ())
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "ws://{addr}/ refused the WebSocket handshake: HTTP/1.1 403 Forbidden: \
             \\x1b[31mred\\x1b[0m\\r\\nline 2\\x07\\x9b\\xff"
        )
    );
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
}

#[tokio::test]
async fn a_long_body_is_cut_and_an_open_connection_not_waited_for() {
    // No Content-Length, and the connection stays open: what came within the short wait is
    // shown, cut at 1 KiB.
    let addr = answering(Box::leak(
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\n\r\n{}",
            "busy ".repeat(600)
        )
        .into_bytes()
        .into_boxed_slice(),
    ))
    .await;
    let started = Instant::now();
    let result = bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let Err(Error::Refused(refusal)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(refusal.status(), 503);
    assert_eq!(refusal.body().len(), 1024);
    assert!(refusal.is_body_truncated());
    assert_eq!(refusal.headers()["retry-after"], "3");
    let text = refusal.to_string();
    assert!(
        text.starts_with(&format!("ws://{addr}/ refused the WebSocket handshake: HTTP/1.1 503 Service Unavailable: busy busy ")),
        "{text}"
    );
    assert!(text.ends_with("…"), "{text}");

    // A short body without a length, the connection left open: shown after the short wait.
    let addr = answering(b"HTTP/1.1 404 Not Found\r\n\r\nno such room").await;
    let started = Instant::now();
    let err = bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "ws://{addr}/ refused the WebSocket handshake: HTTP/1.1 404 Not Found: no such room…"
        )
    );
}

#[tokio::test]
async fn a_chunked_refusal_body_is_decoded() {
    let addr = answering(
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n\
          6\r\nslow d\r\n7\r\nown, pl\r\n10\r\nease (try later)\r\n0\r\n\r\n",
    )
    .await;
    let err = bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ws://{addr}/ refused the WebSocket handshake: HTTP/1.1 429 Too Many Requests: \
             slow down, please (try later)"
        )
    );
}

#[tokio::test]
async fn wss_to_a_plain_server_says_to_use_ws() {
    let addr = support::echo_server().await;
    let result = bounded(
        client(&format!("wss://{addr}/"), Duration::from_secs(10))
            .tls(any_certificate())
            .connect(),
    )
    .await;
    let err = tls_error(result);
    assert!(
        matches!(&err, TlsError::NotTls { host, .. } if *host == addr.to_string()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{addr} does not speak TLS (it answered the TLS handshake with something else, \
             such as plain HTTP): for a server without TLS, use ws:// instead of wss://"
        )
    );
}

/// A tolqin TLS server with a self-signed certificate for 127.0.0.1.
async fn tls_server() -> (SocketAddr, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = certified.cert.pem();
    let tls = TlsServer::from_pem(
        cert.as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                if let Ok(mut ws) = Acceptor::new().accept_tls(&tls, tcp).await {
                    while let Some(Ok(m)) = ws.recv().await {
                        let _ = ws.send(m).await;
                    }
                }
            });
        }
    });
    (addr, cert)
}

#[tokio::test]
async fn ws_to_a_tls_server_says_to_use_wss() {
    let (addr, _) = tls_server().await;
    let err = tls_error(
        bounded(client(&format!("ws://{addr}/"), Duration::from_secs(10)).connect()).await,
    );
    assert!(
        matches!(&err, TlsError::ExpectsTls { target } if *target == addr.to_string()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{addr} answered with TLS: it expects a TLS connection; use wss:// instead of ws://"
        )
    );
}

#[tokio::test]
async fn an_unknown_certificate_authority_names_the_builder_call() {
    let (addr, _) = tls_server().await;
    // Trusts another certificate only (another name: not taken for the server's issuer).
    let mut params = rcgen::CertificateParams::new(vec!["other.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another CA");
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let tls = TlsClient::builder()
        .default_roots(false)
        .add_ca_pem(other.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let err = tls_error(
        bounded(
            client(&format!("wss://{addr}/"), Duration::from_secs(10))
                .tls(tls)
                .connect(),
        )
        .await,
    );
    assert_eq!(
        err.to_string(),
        "the certificate of 127.0.0.1 is not signed by a trusted certificate authority \
         (self-signed, or issued by a private CA? trust that certificate or CA with \
         Client::tls(TlsClient::builder().add_ca_file(PATH)?.build()?), or add_ca_pem(PEM) \
         for PEM in memory)"
    );
}

#[tokio::test]
async fn the_builder_call_of_the_hint_fixes_it() {
    // What the hint says to do, done: the connection verifies.
    let (addr, cert) = tls_server().await;
    let tls = TlsClient::builder()
        .default_roots(false)
        .add_ca_pem(cert.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let ws = bounded(
        client(&format!("wss://{addr}/"), Duration::from_secs(10))
            .tls(tls)
            .connect(),
    )
    .await;
    assert!(ws.is_ok(), "{ws:?}");
}

#[tokio::test]
async fn an_unreachable_proxy_is_named() {
    let port = closed_port();
    let proxy = Proxy::new(ProxyKind::Http, "127.0.0.1", port);
    let err = bounded(
        Client::new("ws://example.invalid/")
            .unwrap()
            .proxy(proxy)
            .connect(),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot connect to the proxy http://127.0.0.1:{port}: connection refused")
    );
    let proxied = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(proxied.is_err(), "the port is still closed");
}
