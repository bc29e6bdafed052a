//! A room of 1,000 clients: every message reaches every client exactly once, in the order
//! the server received them, while a deliberately stalled client is dropped (1008 "too
//! slow") and the others carry on.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::{HeaderValue, header};
use support::*;
use tokio::net::TcpSocket;
use tolqin::{Client, CloseCode, Message};

const CLIENTS: usize = 1000;
const SENDERS: usize = 10;
const PER_SENDER: usize = 40;
const TOTAL: u64 = (SENDERS * PER_SENDER) as u64;
const CONTENT_CHARS: usize = 1000;

#[test]
fn a_thousand_clients_get_every_message_once_in_order_and_a_stalled_one_is_dropped() {
    // The server on a runtime of its own, as in production.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = config()
        .with_rate(1e6, 1_000_000)
        // This test measures the fan-out, not the limits (see hostile.rs for those): all
        // 1,000 clients come from one address and the room takes every message.
        .with_room_rate(1e6, 1_000_000)
        .with_max_connections(10_000, 10_000)
        .with_max_chars(CONTENT_CHARS)
        .with_max_message_size(16 << 10)
        .with_client_queue(128)
        .with_send_buffer(Some(8 << 10))
        // The stalled client drains its backlog through a 2 KiB window on a busy runtime
        // before it sees the close frame; give it time (the default is 5 s).
        .with_close_timeout(Duration::from_secs(30))
        // Plain frames: what the stalled client's buffers hold is then predictable.
        .with_deflate(false);
    let server = server_rt.block_on(start(config));
    let clients_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    clients_rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(90), run(&server)).await })
        .expect("the load test finishes within 90 s");
    println!("load test took {:?}", started.elapsed());
    server_rt.block_on(server.stop());
}

async fn run(server: &Running) {
    let cookie = session_cookie(server.addr).await;

    // The stalled client: a tiny receive buffer, and it does not read.
    let tcp = TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(2048).unwrap();
    let tcp = tcp.connect(server.addr).await.unwrap();
    let mut stalled = Client::new(&server.ws_url("/ws"))
        .unwrap()
        .origin(server.origin())
        .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
        .handshake_on(tcp)
        .await
        .unwrap();

    // 1,000 clients, 100 handshakes at a time.
    let mut sockets = Vec::with_capacity(CLIENTS);
    for chunk in 0..CLIENTS / 100 {
        let joins: Vec<_> = (0..100)
            .map(|_| {
                let cookie = cookie.clone();
                let url = server.ws_url("/ws");
                let origin = server.origin();
                tokio::spawn(async move {
                    Client::new(&url)
                        .unwrap()
                        .origin(origin)
                        .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
                        .connect()
                        .await
                        .unwrap()
                })
            })
            .collect();
        for join in joins {
            sockets.push(join.await.unwrap());
        }
        assert_eq!(sockets.len(), (chunk + 1) * 100);
    }
    // Every join is served (the room has them all) before the first message.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metrics.connections.load(Ordering::Relaxed) < (CLIENTS + 1) as u64 {
        assert!(Instant::now() < deadline, "clients did not all join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Each client records what it receives; the first SENDERS also send, each waiting for
    // its own previous message before the next (as a person would).
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                let sender = i < SENDERS;
                let mut sent = 0;
                let send_next = |sent: &mut usize| {
                    let tag = format!("s{i}-{sent}-");
                    let pad: String =
                        std::iter::repeat_n('ў', CONTENT_CHARS - tag.chars().count()).collect();
                    *sent += 1;
                    say(&format!("sender{i}"), &format!("{tag}{pad}"))
                };
                if sender {
                    ws.send(send_next(&mut sent)).await.unwrap();
                }
                let mut ids = Vec::with_capacity(TOTAL as usize);
                let mut digest = 0u64;
                while ids.len() < TOTAL as usize {
                    let message = ws
                        .recv()
                        .await
                        .unwrap_or_else(|| panic!("client {i} closed: {:?}", ws.close_info()))
                        .unwrap();
                    let Message::Text(text) = message else {
                        panic!("binary")
                    };
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let id = value["id"].as_u64().expect("a chat message");
                    let content = value["content"].as_str().unwrap();
                    assert_eq!(content.chars().count(), CONTENT_CHARS);
                    digest = digest
                        .wrapping_mul(1_000_003)
                        .wrapping_add(id ^ content.len() as u64 ^ fnv(content));
                    ids.push(id);
                    if sender
                        && sent < PER_SENDER
                        && content.starts_with(&format!("s{i}-{}-", sent - 1))
                    {
                        ws.send(send_next(&mut sent)).await.unwrap();
                    }
                }
                (ids, digest, ws)
            })
        })
        .collect();

    // While they run: the stalled client must be dropped as too slow, and only it.
    let drop_deadline = Instant::now() + Duration::from_secs(60);
    while server.metrics.dropped_slow.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < drop_deadline,
            "the stalled client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // It reads again, in time to see the close frame behind its backlog: 1008 "too slow".
    let stalled_end = tokio::spawn(async move {
        let mut received = 0;
        while let Some(Ok(_)) = stalled.recv().await {
            received += 1;
        }
        (received, stalled.close_info())
    });

    let mut digests = Vec::new();
    let mut open = Vec::new();
    for task in tasks {
        let (ids, digest, ws) = task.await.unwrap();
        let expected: Vec<u64> = (1..=TOTAL).collect();
        assert_eq!(ids, expected, "every message once, in the server's order");
        digests.push(digest);
        open.push(ws);
    }
    let elapsed = started.elapsed();
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "everyone saw the same contents"
    );
    let (received, close) = stalled_end.await.unwrap();
    assert!(
        (received as u64) < TOTAL,
        "the stalled client got {received}"
    );
    assert_eq!(
        (close.code, &*close.reason),
        (CloseCode::POLICY_VIOLATION, "too slow")
    );
    assert_eq!(server.metrics.dropped_slow.load(Ordering::Relaxed), 1);
    let deliveries = TOTAL * CLIENTS as u64;
    println!(
        "{TOTAL} messages x {CLIENTS} clients = {deliveries} deliveries in {elapsed:?} \
         ({:.0}/s, debug build); stalled client dropped after {received} messages",
        deliveries as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        server.metrics.connections.load(Ordering::Relaxed),
        CLIENTS as u64
    );
    let _ = Arc::new(open);
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}
