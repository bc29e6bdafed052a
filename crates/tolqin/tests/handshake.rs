//! The opening handshake over real sockets: subprotocols, Origin checks, authentication,
//! malformed requests.

mod support;

use http::{HeaderValue, header};
use support::*;
use tolqin::{Acceptor, Client, Error, server::Reject};

#[tokio::test]
async fn rfc6455_4_2_2_subprotocol_chosen_in_server_preference() {
    let addr = echo_server_with(Acceptor::new().protocols(["chat.v2", "chat.v1"])).await;
    let ws = bounded(
        Client::new(&url(addr))
            .unwrap()
            .protocol("chat.v1")
            .protocol("chat.v2")
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), Some("chat.v2"));
}

#[tokio::test]
async fn rfc6455_4_2_2_no_common_subprotocol_means_none() {
    let addr = echo_server_with(Acceptor::new().protocols(["chat.v2"])).await;
    let ws = bounded(Client::new(&url(addr)).unwrap().protocol("mqtt").connect())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), None);
}

#[tokio::test]
async fn rfc6455_10_2_foreign_origin_refused_with_403() {
    let addr = echo_server_with(Acceptor::new().allow_origin("http://good.example")).await;
    let ok = bounded(
        Client::new(&url(addr))
            .unwrap()
            .origin("http://good.example")
            .connect(),
    )
    .await;
    assert!(ok.is_ok());
    for client in [
        Client::new(&url(addr))
            .unwrap()
            .origin("http://evil.example"),
        Client::new(&url(addr)).unwrap(),
    ] {
        match bounded(client.connect()).await {
            Err(Error::Refused(r)) => {
                assert_eq!(r.status(), 403)
            }
            other => panic!("expected 403, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn authentication_hook_refuses_with_401_and_accepts_with_cookie() {
    let acceptor = Acceptor::new().authenticate(|req| match req.headers().get(header::COOKIE) {
        Some(v) if v == "session=s3cret" => {
            let mut extra = http::HeaderMap::new();
            extra.insert("x-user", HeaderValue::from_static("alice"));
            Ok(extra)
        }
        _ => Err(Reject::unauthorized("no session")),
    });
    let addr = echo_server_with(acceptor).await;
    let refused = bounded(Client::new(&url(addr)).unwrap().connect()).await;
    assert!(matches!(refused, Err(Error::Refused(r)) if r.status() == 401));
    let response = raw_request(addr, &format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.ends_with("no session"), "{response}");
    let mut ws = bounded(
        Client::new(&url(addr))
            .unwrap()
            .header(header::COOKIE, HeaderValue::from_static("session=s3cret"))
            .connect(),
    )
    .await
    .unwrap();
    ws.send("hi").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap().as_text(),
        Some("hi")
    );
}

#[tokio::test]
async fn rfc6455_4_2_1_malformed_requests_get_http_errors() {
    let addr = echo_server().await;
    let good = "Host: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        (format!("GET / HTTP/1.1\r\n{good}Sec-WebSocket-Version: 8\r\n\r\n"), "426"),
        (format!("POST / HTTP/1.1\r\n{good}Sec-WebSocket-Version: 13\r\n\r\n"), "405"),
        ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(), "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(), "400"),
        ("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(), "400"),
        ("GARBAGE\r\n\r\n".to_string(), "400"),
        (format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000)), "431"),
    ];
    for (request, status) in cases {
        let response = raw_request(addr, &request).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{status} expected for {:.60}: {response}",
            request
        );
        if status == "426" {
            assert!(
                response
                    .to_ascii_lowercase()
                    .contains("sec-websocket-version: 13")
            );
        }
    }
    // The server is still serving.
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    ws.send("still here").await.unwrap();
    assert!(bounded(ws.recv()).await.is_some());
}

#[tokio::test]
async fn handshake_timeout_drops_a_slow_client() {
    use std::time::Duration;
    let acceptor = Acceptor::new()
        .options(tolqin::Options::default().with_handshake_timeout(Duration::from_millis(300)));
    let addr = echo_server_with(acceptor).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap(); // and then nothing
    assert!(wait_closed(&mut tcp).await);
}

#[tokio::test]
async fn handshake_done_by_another_http_server_then_from_upgraded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = Acceptor::new().protocols(["chat"]);
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // "Another server": reads the head itself (one byte at a time, so nothing past it).
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let config = tolqin::proto::Config::default();
        let (request, _) = tolqin::proto::handshake::parse_request(&head, &config)
            .unwrap()
            .unwrap();
        let response = acceptor.check(&request).unwrap();
        let mut out = Vec::new();
        tolqin::proto::handshake::encode_response(&response, &mut out);
        tcp.write_all(&out).await.unwrap();
        let mut ws =
            tolqin::WebSocket::from_upgraded(tcp, &response, acceptor.connection_options().clone());
        while let Some(Ok(m)) = ws.recv().await {
            ws.send(m).await.unwrap();
        }
    });
    let mut ws = bounded(Client::new(&url(addr)).unwrap().protocol("chat").connect())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    assert_eq!(ws.extensions(), "permessage-deflate");
    let text = "compressed through an upgrade done elsewhere ".repeat(100);
    ws.send(text.as_str()).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap().as_text(),
        Some(text.as_str())
    );
}

#[test]
fn check_refuses_like_accept() {
    let request = |origin: &str, version: &str| {
        http::Request::get("/")
            .header("host", "x")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", version)
            .header("origin", origin)
            .body(())
            .unwrap()
    };
    let acceptor = Acceptor::new().allow_origin("http://good.example");
    assert_eq!(
        acceptor
            .check(&request("http://good.example", "13"))
            .unwrap()
            .status(),
        101
    );
    assert_eq!(
        acceptor
            .check(&request("http://evil.example", "13"))
            .unwrap_err()
            .status(),
        403
    );
    let outdated = acceptor
        .check(&request("http://good.example", "8"))
        .unwrap_err();
    assert_eq!(outdated.status(), 426);
}

#[tokio::test]
async fn max_connections_answers_503_before_upgrading() {
    let acceptor = Acceptor::new().max_connections(2);
    let addr = echo_server_with(acceptor).await;
    let mut a = bounded(tolqin::connect(&url(addr))).await.unwrap();
    let b = bounded(tolqin::connect(&url(addr))).await.unwrap();
    let response = raw_request(addr, &format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ))
    .await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    // The open ones keep working; closing one frees its slot.
    a.send("still served").await.unwrap();
    assert!(bounded(a.recv()).await.unwrap().is_ok());
    bounded(a.close_and_wait(None, "")).await.unwrap();
    drop(b);
    let mut c = None;
    for _ in 0..100 {
        // The server notices the closes asynchronously.
        if let Ok(ws) = bounded(tolqin::connect(&url(addr))).await {
            c = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut c = c.expect("a slot was freed");
    c.send("new").await.unwrap();
    assert!(bounded(c.recv()).await.unwrap().is_ok());
}

#[tokio::test]
async fn same_origin_follows_the_host_of_each_request() {
    let addr = echo_server_with(
        Acceptor::new()
            .allow_same_origin("http")
            .allow_origin("http://also.example"),
    )
    .await;
    for (origin, ok) in [
        (format!("http://{addr}"), true),
        ("http://also.example".to_string(), true),
        (format!("https://{addr}"), false),
        ("http://evil.example".to_string(), false),
    ] {
        let result = bounded(
            Client::new(&url(addr))
                .unwrap()
                .origin(origin.clone())
                .connect(),
        )
        .await;
        match (result, ok) {
            (Ok(_), true) => {}
            (Err(Error::Refused(r)), false) => assert_eq!(r.status(), 403, "{origin}"),
            (other, _) => panic!("{origin}: {other:?}"),
        }
    }
}
