//! The chat socket and its HTTP routes, end to end over loopback with our own client.

mod support;

use std::time::Duration;

use http::{HeaderValue, header};
use support::*;
use tolqin::{Client, CloseCode, Message};

#[tokio::test]
async fn a_foreign_origin_gets_403_and_no_cookie_gets_401() {
    let server = start(config().allow_origin("https://friend.example/")).await;
    let cookie = session_cookie(server.addr).await;
    let with = |origin: &str, cookie: Option<&str>| {
        let mut client = Client::new(&server.ws_url("/ws")).unwrap().origin(origin);
        if let Some(cookie) = cookie {
            client = client.header(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        client.connect()
    };
    let status = |r: tolqin::Result<_>| match r {
        Err(e) => rejected_status(&e).unwrap_or_else(|| panic!("unexpected error {e}")),
        Ok(_) => 101,
    };
    // Cross-site WebSocket hijacking: another site's page, with the visitor's cookie.
    assert_eq!(
        status(with("http://evil.example", Some(&cookie)).await),
        403
    );
    assert_eq!(status(with("null", Some(&cookie)).await), 403);
    // The right origin without a session, or with one this server never issued.
    assert_eq!(status(with(&server.origin(), None).await), 401);
    let forged = "tolqin_session=AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(status(with(&server.origin(), Some(forged)).await), 401);
    // The page's own origin and an allowed one, with the cookie.
    assert_eq!(status(with(&server.origin(), Some(&cookie)).await), 101);
    assert_eq!(
        status(with("https://friend.example", Some(&cookie)).await),
        101
    );
    // No Origin at all (a non-browser client) is refused too: it must say where it comes from.
    let no_origin = Client::new(&server.ws_url("/ws"))
        .unwrap()
        .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
        .connect()
        .await;
    assert_eq!(status(no_origin), 403);
    assert_eq!(
        server
            .metrics
            .handshakes_rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[tokio::test]
async fn messages_are_checked_cut_stamped_and_sent_to_everyone_sender_included() {
    let server = start(config()).await;
    let cookie = session_cookie(server.addr).await;
    let mut alice = join(&server, &cookie).await;
    let mut bob = join(&server, &cookie).await;
    // Both are in the room before the first message: wait for the second join to be served.
    tokio::time::sleep(Duration::from_millis(50)).await;

    alice.send(say("Alice", "salom")).await.unwrap();
    for ws in [&mut alice, &mut bob] {
        let m = next_json(ws).await;
        assert_eq!(
            (m["id"].as_u64(), m["user"].as_str()),
            (Some(1), Some("Alice"))
        );
        assert_eq!(m["content"], "salom");
        assert!(m["ts"].as_u64().unwrap() > 1_600_000_000_000);
    }
    // Plain text: an anonymous user. 60 characters: cut to 50, whole characters.
    bob.send("hi from a plain client").await.unwrap();
    let sixty: String = "ўзбек".chars().cycle().take(60).collect();
    bob.send(say("Bob", &sixty)).await.unwrap();
    for ws in [&mut alice, &mut bob] {
        let m = next_json(ws).await;
        assert_eq!(
            (m["id"].as_u64(), m["user"].as_str()),
            (Some(2), Some("anonymous"))
        );
        let m = next_json(ws).await;
        assert_eq!(m["id"], 3);
        let content = m["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), 50);
        assert!(sixty.starts_with(content));
    }
    // The sender alone is told that its message was cut, after the echo.
    assert_eq!(
        next_json(&mut bob).await,
        serde_json::json!({"id": 3, "notice": "cut", "max_chars": 50})
    );
    // Refused: the sender alone gets an error; nothing is broadcast.
    alice.send(r#"{"user":"Alice"}"#).await.unwrap();
    alice.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let e = next_json(&mut alice).await;
    assert_eq!(e["error"], "bad_shape", "{e}");
    assert!(e["message"].as_str().unwrap().contains("expected"), "{e}");
    let e = next_json(&mut alice).await;
    assert_eq!(e["error"], "binary", "{e}");
    // A client-chosen cid: echoed to the sender alone, after the broadcast (and on a refusal).
    alice
        .send(r#"{"user":"Alice","content":"after the errors","cid":"c1"}"#)
        .await
        .unwrap();
    assert_eq!(next_json(&mut bob).await["id"], 4);
    assert_eq!(next_json(&mut alice).await["id"], 4);
    assert_eq!(
        next_json(&mut alice).await,
        serde_json::json!({"ack": "c1", "id": 4})
    );
    alice
        .send(r#"{"user":"Alice","content":"  ","cid":"c2"}"#)
        .await
        .unwrap();
    let e = next_json(&mut alice).await;
    assert_eq!(
        (&e["error"], &e["cid"]),
        (&"empty".into(), &"c2".into()),
        "{e}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_newcomer_receives_the_last_history_messages_first() {
    let server = start(config().with_history(3).with_rate(1000.0, 1000)).await;
    let cookie = session_cookie(server.addr).await;
    let mut first = join(&server, &cookie).await;
    for i in 1..=5 {
        first.send(say("a", &format!("m{i}"))).await.unwrap();
        next_json(&mut first).await;
    }
    let mut newcomer = join(&server, &cookie).await;
    for i in 3..=5 {
        let m = next_json(&mut newcomer).await;
        assert_eq!(
            (m["id"].as_u64(), m["content"].as_str()),
            (Some(i), Some(&*format!("m{i}")))
        );
    }
    first.send(say("a", "live")).await.unwrap();
    assert_eq!(next_json(&mut newcomer).await["content"], "live");
}

#[tokio::test]
async fn over_the_rate_and_size_limits_refused_then_abuse_closes_with_1008() {
    let server = start(
        config()
            .with_rate(1.0, 3)
            .with_abuse_limit(5)
            .with_max_message_size(100),
    )
    .await;
    let cookie = session_cookie(server.addr).await;
    let mut ws = join(&server, &cookie).await;
    ws.send("x".repeat(101)).await.unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(
        (&e["error"], &e["bytes"], &e["max"]),
        (&"too_large".into(), &101.into(), &100.into()),
        "{e}"
    );
    for i in 0..2 {
        ws.send(format!("ok {i}")).await.unwrap();
        assert!(next_json(&mut ws).await["id"].is_u64());
    }
    // The burst of 3 is spent: refused with a clear error.
    ws.send(r#"{"content":"one too many","cid":"c3"}"#)
        .await
        .unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(
        (&e["error"], &e["cid"]),
        (&"rate_limited".into(), &"c3".into()),
        "{e}"
    );
    // The next token comes within a second (1 per second).
    let retry = e["retry_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&retry), "{e}");
    assert!(
        e["message"].as_str().unwrap().starts_with("rate limit"),
        "{e}"
    );
    // Keep pushing: after 5 refusals in a row the server closes with 1008.
    for _ in 0..10 {
        if ws.send("spam").await.is_err() {
            break;
        }
    }
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = ws.recv().await {
            if let Ok(Message::Text(t)) = m {
                assert!(t.contains("rate limit"), "{t}");
            }
        }
        ws.close_info()
    })
    .await
    .unwrap();
    assert_eq!(close.code, CloseCode::POLICY_VIOLATION, "{close:?}");
    assert_eq!(close.reason, "too many refused messages");
    assert_eq!(
        server
            .metrics
            .dropped_abuse
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn hello_answers_with_the_last_word_and_says_bye_after_5_seconds() {
    let server = start(config()).await;
    let mut ws = Client::new(&server.ws_url("/hello"))
        .unwrap()
        .origin(server.origin())
        .connect()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    ws.send("My name is John").await.unwrap();
    ws.send("!!!").await.unwrap();
    let mut answers = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .unwrap()
    {
        answers.push(m.unwrap().as_text().unwrap().to_string());
    }
    let elapsed = started.elapsed();
    assert_eq!(
        answers,
        ["Hello from server, John!", "Hello from server, Guest!"]
    );
    let close = ws.close_info();
    assert_eq!(
        (close.code, &*close.reason, close.was_clean),
        (CloseCode::NORMAL, "Bye!", true)
    );
    assert!(
        elapsed >= Duration::from_millis(4900) && elapsed < Duration::from_secs(7),
        "{elapsed:?}"
    );
    // Another site's page can't use it either.
    let foreign = Client::new(&server.ws_url("/hello"))
        .unwrap()
        .origin("http://evil.example")
        .connect()
        .await;
    assert_eq!(foreign.err().and_then(|e| rejected_status(&e)), Some(403));
}

#[tokio::test]
async fn pages_health_and_metrics() {
    // `/metrics` on the public listener only when asked (`--metrics-listen same`).
    let server = start(config().with_public_metrics(true)).await;
    let (status, head, body) = get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"messages\"") && body.contains("/chat.js"));
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie_line.contains("HttpOnly; SameSite=Strict; Path=/"),
        "{cookie_line}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    // A browser that has a valid cookie is not given another.
    let cookie = session_cookie(server.addr).await;
    let (_, head, _) = http(
        server.addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
            server.addr
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");

    for (path, needle) in [
        ("/chat.js", "new WebSocket"),
        ("/chat.css", "#messages"),
        ("/demo", "/demo.js"),
        ("/demo.js", "/hello"),
        ("/healthz", "ok"),
        ("/config", r#"{"max_chars":50,"max_user_chars":32}"#),
    ] {
        let (status, _, body) = get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    assert_eq!(get(server.addr, "/nope").await.0, 404);
    // A plain GET of /ws is not an upgrade: 426 with the version we speak.
    let (status, head, _) = get(server.addr, "/ws").await;
    assert!(status == 400 || status == 426, "{head}");

    let mut ws = join(&server, &cookie).await;
    ws.send("counted").await.unwrap();
    next_json(&mut ws).await;
    let (status, head, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for line in [
        "tolqin_chat_connections 1",
        "tolqin_chat_connections_total{endpoint=\"ws\"} 1",
        "tolqin_chat_messages_in_total 1",
        "tolqin_chat_messages_out_total 1",
        "tolqin_chat_clients_dropped_total{reason=\"too_slow\"} 0",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} not in\n{body}");
    }
}

#[tokio::test]
async fn broadcasts_are_compressed_once_without_context_takeover() {
    let server = start(config().with_max_chars(2000).with_max_message_size(8000)).await;
    let cookie = session_cookie(server.addr).await;
    let mut ws = join(&server, &cookie).await;
    let extensions = ws.extensions();
    assert!(
        extensions.contains("permessage-deflate")
            && extensions.contains("server_no_context_takeover"),
        "{extensions}"
    );
    let long = "tolqin ".repeat(200);
    for _ in 0..2 {
        ws.send(say("z", &long)).await.unwrap();
        assert_eq!(next_json(&mut ws).await["content"], long.trim_end());
    }
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001_and_refuses_newcomers() {
    let server = start(config()).await;
    let cookie = session_cookie(server.addr).await;
    let mut chat = join(&server, &cookie).await;
    let mut hello = Client::new(&server.ws_url("/hello"))
        .unwrap()
        .origin(server.origin())
        .connect()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    for ws in [&mut chat] {
        while ws.recv().await.is_some() {}
        assert_eq!(ws.close_info().code, CloseCode::GOING_AWAY);
        assert!(ws.close_info().was_clean);
    }
    while hello.recv().await.is_some() {}
    assert_eq!(hello.close_info().code, CloseCode::GOING_AWAY);
    tokio::time::timeout(Duration::from_secs(3), stopping)
        .await
        .expect("the server stops within the close timeout")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
