//! The browser-style event client: every row of the mapping table, against real servers.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::*;
use tolqin::events::{EventSocket, Reconnect, SocketEvent};
use tolqin::{Acceptor, Client, CloseCode, Message, ReadyState};

async fn next(socket: &mut EventSocket) -> SocketEvent {
    bounded(socket.next_event()).await.expect("an event")
}

#[tokio::test]
async fn browser_order_open_message_close() {
    let addr = echo_server_with(Acceptor::new().protocols(["chat"])).await;
    let mut socket =
        EventSocket::builder(Client::new(&url(addr)).unwrap().protocol("chat")).start();
    assert_eq!(socket.ready_state(), ReadyState::Connecting);
    assert!(
        socket.send("too early").is_err(),
        "send before open is an error, as in the browser"
    );
    match next(&mut socket).await {
        SocketEvent::Open {
            protocol,
            extensions,
        } => {
            assert_eq!(protocol.as_deref(), Some("chat"));
            assert_eq!(extensions, "permessage-deflate");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(socket.ready_state(), ReadyState::Open);
    assert_eq!(socket.protocol().as_deref(), Some("chat"));
    assert_eq!(socket.url(), url(addr));
    socket.send("text").unwrap();
    socket.send(vec![1u8, 2, 3]).unwrap();
    assert!(
        matches!(next(&mut socket).await, SocketEvent::Message(Message::Text(t)) if t == "text")
    );
    assert!(
        matches!(next(&mut socket).await, SocketEvent::Message(Message::Binary(b)) if b[..] == [1, 2, 3])
    );
    socket.close(Some(CloseCode(4000)), "bye").unwrap();
    assert_eq!(socket.ready_state(), ReadyState::Closing);
    match next(&mut socket).await {
        SocketEvent::Close {
            code,
            reason,
            was_clean,
        } => {
            assert_eq!((code.0, reason.as_str(), was_clean), (4000, "bye", true));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    assert!(bounded(socket.next_event()).await.is_none());
}

#[tokio::test]
async fn failure_before_open_is_error_then_close_1006() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut socket = EventSocket::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    assert!(matches!(
        next(&mut socket).await,
        SocketEvent::Error(tolqin::Error::Connect(_))
    ));
    assert!(
        matches!(next(&mut socket).await, SocketEvent::Close { code, was_clean: false, .. } if code == CloseCode::ABNORMAL)
    );
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    // A refused handshake: the real cause (HTTP 403) is in the error.
    let addr = echo_server_with(Acceptor::new().allow_origin("http://only.example")).await;
    let mut socket = EventSocket::connect(&url(addr)).unwrap();
    assert!(matches!(
        next(&mut socket).await,
        SocketEvent::Error(tolqin::Error::Refused(r)) if r.status() == 403
    ));
    assert!(
        matches!(next(&mut socket).await, SocketEvent::Close { code, .. } if code == CloseCode::ABNORMAL)
    );
    assert!(
        EventSocket::connect("not a url").is_err(),
        "a bad URL fails at once"
    );
}

#[tokio::test]
async fn dropped_connection_is_close_1006_unclean() {
    let addr = serve(Acceptor::new(), |ws| async move {
        let mut ws = ws.unwrap();
        let _ = ws.recv().await; // one message, then drop the TCP connection
    })
    .await;
    let mut socket = EventSocket::connect(&url(addr)).unwrap();
    assert!(matches!(next(&mut socket).await, SocketEvent::Open { .. }));
    socket.send("bye").unwrap();
    loop {
        match next(&mut socket).await {
            SocketEvent::Close {
                code, was_clean, ..
            } => {
                assert_eq!((code, was_clean), (CloseCode::ABNORMAL, false));
                break;
            }
            SocketEvent::Error(_) | SocketEvent::Unsent(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn buffered_amount_paces_a_sender_and_never_goes_back_after_close() {
    let addr = echo_server().await;
    let mut socket = EventSocket::connect(&url(addr)).unwrap();
    assert!(matches!(next(&mut socket).await, SocketEvent::Open { .. }));
    let chunk = vec![7u8; 256 << 10];
    let mut sent = 0;
    for _ in 0..16 {
        socket.send(chunk.clone()).unwrap();
        sent += 1;
        assert!(socket.buffered_amount() <= sent * chunk.len());
        // Pace: never more than 1 MiB queued.
        bounded(socket.drained_below(1 << 20)).await.unwrap();
    }
    bounded(socket.drained_below(1)).await.unwrap();
    assert_eq!(socket.buffered_amount(), 0);
    for _ in 0..16 {
        assert!(
            matches!(next(&mut socket).await, SocketEvent::Message(m) if m.len() == chunk.len())
        );
    }
    socket.close(None, "").unwrap();
    while !matches!(next(&mut socket).await, SocketEvent::Close { .. }) {}
    socket.send("after close").unwrap();
    assert_eq!(
        socket.buffered_amount(),
        "after close".len(),
        "counted, as in the browser"
    );
    assert!(
        bounded(socket.drained_below(1)).await.is_err(),
        "never drains after close"
    );
}

#[tokio::test]
async fn reconnects_with_backoff_reauthenticates_and_resends() {
    // The server drops the first connection of each client right after one message, and
    // records the Authorization header of every handshake.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let acceptor = Acceptor::new().authenticate(move |req| {
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        seen2.lock().unwrap().push(auth);
        Ok(Default::default())
    });
    let counter = connections.clone();
    let addr = serve(acceptor, move |ws| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut ws = ws.unwrap();
            if n == 0 {
                let _ = ws.recv().await; // drop after the first message
                return;
            }
            while let Some(Ok(m)) = ws.recv().await {
                let _ = ws.send(m).await;
            }
        }
    })
    .await;
    let tokens = Arc::new(AtomicUsize::new(0));
    let t = tokens.clone();
    let client = Client::new(&url(addr)).unwrap().header(
        http::header::AUTHORIZATION,
        "Bearer token-0".parse().unwrap(),
    );
    let policy = Reconnect::default()
        .with_delays(Duration::from_millis(20), Duration::from_millis(200))
        .with_resend_unsent(true);
    let mut socket = EventSocket::builder(client)
        .reconnect(policy)
        .reauthenticate(move |client| {
            let n = t.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                Ok(client.header(
                    http::header::AUTHORIZATION,
                    format!("Bearer token-{n}").parse().unwrap(),
                ))
            }
        })
        .start();
    assert!(matches!(next(&mut socket).await, SocketEvent::Open { .. }));
    socket.send("lost with the first connection?").unwrap();
    let mut events = Vec::new();
    loop {
        let event = next(&mut socket).await;
        let done = matches!(event, SocketEvent::Reconnected { .. });
        events.push(format!("{event:?}"));
        if done {
            break;
        }
    }
    assert!(events.iter().any(|e| e.starts_with("Close")), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Reconnecting { attempt: 1")),
        "{events:?}"
    );
    socket.send("after reconnecting").unwrap();
    let mut texts = Vec::new();
    while !texts.contains(&"after reconnecting".to_string()) {
        if let SocketEvent::Message(m) = next(&mut socket).await {
            texts.push(m.as_text().unwrap().to_string());
        }
    }
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["Bearer token-0", "Bearer token-1"]
    );
    socket.close(None, "").unwrap();
    while !matches!(next(&mut socket).await, SocketEvent::Close { .. }) {}
}

#[test]
fn backoff_grows_with_jitter_and_a_cap() {
    let policy =
        Reconnect::default().with_delays(Duration::from_millis(100), Duration::from_secs(2));
    for _ in 0..50 {
        let d1 = policy.delay(1).as_secs_f64();
        let d3 = policy.delay(3).as_secs_f64();
        let d20 = policy.delay(20).as_secs_f64();
        assert!((0.07..=0.13).contains(&d1), "{d1}");
        assert!((0.28..=0.52).contains(&d3), "{d3}");
        assert!((1.4..=2.6).contains(&d20), "capped: {d20}");
    }
    let delays: std::collections::HashSet<u128> =
        (0..20).map(|_| policy.delay(5).as_micros()).collect();
    assert!(delays.len() > 1, "jitter spreads the delays");
}

/// `close()` right behind a burst of `send()`s (a piped script's last lines, then EOF): the
/// sends go out, then the close; the close is never lost in the batch. On the current-thread
/// runtime the driver only runs once all three commands are queued, so this is deterministic.
#[tokio::test]
async fn close_queued_behind_sends_is_not_lost() {
    let addr = echo_server().await;
    for round in 0..3 {
        let mut socket = EventSocket::connect(&url(addr)).unwrap();
        assert!(matches!(next(&mut socket).await, SocketEvent::Open { .. }));
        for i in 0..=round {
            socket.send(format!("m{i}")).unwrap();
        }
        socket.close(Some(CloseCode::NORMAL), "done").unwrap();
        let mut echoed = Vec::new();
        loop {
            match next(&mut socket).await {
                SocketEvent::Message(Message::Text(t)) => echoed.push(t.to_string()),
                SocketEvent::Close {
                    code,
                    reason,
                    was_clean,
                } => {
                    assert_eq!(
                        (code, reason.as_str(), was_clean),
                        (CloseCode::NORMAL, "done", true)
                    );
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        // The server read every message before our close frame, so it echoed them all first.
        let expected: Vec<String> = (0..=round).map(|i| format!("m{i}")).collect();
        assert_eq!(echoed, expected, "round {round}");
        assert_eq!(socket.buffered_amount(), 0, "round {round}");
        assert_eq!(socket.ready_state(), ReadyState::Closed);
    }
}
