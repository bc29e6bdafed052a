//! Hostile clients against the chat (issue 21, security): a rebinding `Host`, a connection
//! flood, a per-IP flood, a silent `/hello` client, a session-minting flood, `/metrics` kept
//! off the public listener, and 1,000 clients at the per-client rate in one room. Each
//! attack gets the refusal it calls for, within a bound, and a normal client is served
//! alongside or right after.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, header};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tolqin::Client;

/// Every step is bounded: generous for a loaded machine, far below "forever".
const BOUND: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {BOUND:?}"))
}

/// The status of a raw request (`Connection: close` added) with this `Host` and extra headers.
async fn status_with_host(addr: SocketAddr, path: &str, host: &str, extra: &str) -> (u16, String) {
    let (status, head, body) = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"),
    )
    .await;
    (status, format!("{head}\r\n\r\n{body}"))
}

fn upgrade_headers(origin: &str, cookie: &str) -> String {
    format!(
        "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n"
    )
}

#[tokio::test]
async fn a_rebinding_host_is_refused_on_every_route() {
    let server = start(config().allow_host("chat.example")).await;
    let port = server.addr.port();
    let cookie = session_cookie(server.addr).await;
    let evil = format!("rebind.evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    for path in [
        "/", "/session", "/healthz", "/chat.js", "/ws", "/hello", "/metrics",
    ] {
        let (status, text) = status_with_host(
            server.addr,
            path,
            &evil,
            &upgrade_headers(&evil_origin, &cookie),
        )
        .await;
        assert_eq!(status, 421, "{path}: {text}");
        assert!(text.contains("DNS rebinding"), "{path}: {text}");
        assert!(!text.to_ascii_lowercase().contains("set-cookie"), "{text}");
    }
    // No Host at all (HTTP/1.0) is refused too.
    let (status, _, _) = http(server.addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 421);
    // The names it answers for: its address, localhost on its port, the allowed host.
    for host in [
        server.addr.to_string(),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        "chat.example".to_string(),
        format!("chat.example:{port}"),
    ] {
        assert_eq!(
            status_with_host(server.addr, "/", &host, "").await.0,
            200,
            "{host}"
        );
    }
    // localhost on another port is another server.
    let other = format!("localhost:{}", port.wrapping_add(1));
    assert_eq!(status_with_host(server.addr, "/", &other, "").await.0, 421);
    // With a right Host, the Origin must name this server too: it is not derived from Host.
    for path in ["/ws", "/hello"] {
        let attempt = Client::new(&server.ws_url(path))
            .unwrap()
            .origin(evil_origin.clone())
            .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
            .connect()
            .await;
        let Err(refused) = attempt else {
            panic!("{path}: a rebinding origin opened a socket");
        };
        assert_eq!(rejected_status(&refused), Some(403), "{path}: {refused}");
    }
    // An allowed host's origin opens the room.
    let ws = Client::new(&server.ws_url("/ws"))
        .unwrap()
        .origin(format!("http://localhost:{port}"))
        .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
        .connect()
        .await;
    assert!(ws.is_ok(), "{:?}", ws.err());
    assert!(server.metrics.hosts_rejected.load(Ordering::Relaxed) >= 9);
    server.stop().await;
}

async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads a response head from an open connection.
async fn read_status(tcp: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = bounded("a response", tcp.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn a_connection_flood_gets_503_and_a_normal_client_is_served_after() {
    const MAX: usize = 20;
    let server = start(config().with_max_connections(MAX, 1000)).await;
    let cookie = session_cookie(server.addr).await;
    // The flood: idle connections up to the limit.
    let mut flood = Vec::new();
    for _ in 0..MAX {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let deadline = Instant::now() + BOUND;
    while server.metrics.tcp_connections.load(Ordering::Relaxed) < MAX as u64 {
        assert!(Instant::now() < deadline, "the flood was not all accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Past the limit: 503 with Retry-After, for a page and for an upgrade alike.
    let (status, head, _) = get(server.addr, "/").await;
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let attempt = Client::new(&server.ws_url("/ws"))
        .unwrap()
        .origin(server.origin())
        .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
        .connect()
        .await;
    let Err(refused) = attempt else {
        panic!("an upgrade past the limit");
    };
    assert_eq!(rejected_status(&refused), Some(503), "{refused}");
    assert!(server.metrics.refused_total_limit.load(Ordering::Relaxed) >= 2);
    // The flood ends: a normal client is served at once.
    drop(flood);
    let started = Instant::now();
    let mut ws = loop {
        let attempt = Client::new(&server.ws_url("/ws"))
            .unwrap()
            .origin(server.origin())
            .header(header::COOKIE, HeaderValue::from_str(&cookie).unwrap())
            .connect()
            .await;
        match attempt {
            Ok(ws) => break ws,
            Err(e) => {
                assert!(started.elapsed() < BOUND, "still refused: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    ws.send(say("normal", "after the flood")).await.unwrap();
    assert_eq!(next_json(&mut ws).await["content"], "after the flood");
    println!("served {:?} after the flood ended", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn a_per_ip_flood_gets_503_while_another_address_is_served() {
    let server = start(config().with_max_connections(1000, 5)).await;
    let mut flood = Vec::new();
    for _ in 0..5 {
        flood.push(connect_from("127.0.0.1", server.addr).await);
    }
    let deadline = Instant::now() + BOUND;
    while server.metrics.tcp_connections.load(Ordering::Relaxed) < 5 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut sixth = connect_from("127.0.0.1", server.addr).await;
    let request = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    sixth.write_all(request.as_bytes()).await.unwrap();
    let (status, head) = read_status(&mut sixth).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("from your address"), "{head}");
    assert_eq!(
        server.metrics.refused_per_ip_limit.load(Ordering::Relaxed),
        1
    );
    // Another address (127.0.0.2: still loopback, so the Host check passes) is served.
    let mut other = connect_from("127.0.0.2", server.addr).await;
    other.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_status(&mut other).await.0, 200);
    // A place freed is a place again.
    flood.pop();
    let deadline = Instant::now() + BOUND;
    loop {
        let mut again = connect_from("127.0.0.1", server.addr).await;
        again.write_all(request.as_bytes()).await.unwrap();
        if read_status(&mut again).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_silent_hello_client_is_closed_within_the_timeout() {
    let timeout = Duration::from_millis(500);
    let server = start(config().with_first_message_timeout(timeout)).await;
    let started = Instant::now();
    let mut silent = Client::new(&server.ws_url("/hello"))
        .unwrap()
        .origin(server.origin())
        .connect()
        .await
        .unwrap();
    // It sends nothing: the server closes with 1008 once the time is up.
    bounded("the close", async {
        while let Some(message) = silent.recv().await {
            assert!(message.is_err(), "unexpected {message:?}");
        }
    })
    .await;
    let waited = started.elapsed();
    let close = silent.close_info();
    assert_eq!(close.code, tolqin::CloseCode::POLICY_VIOLATION, "{close:?}");
    assert_eq!(close.reason, "no message in time");
    assert!(waited >= timeout && waited < timeout * 6, "{waited:?}");
    assert_eq!(server.metrics.hello_timeouts.load(Ordering::Relaxed), 1);
    // One that speaks in time is answered as always.
    let mut talker = Client::new(&server.ws_url("/hello"))
        .unwrap()
        .origin(server.origin())
        .connect()
        .await
        .unwrap();
    talker.send("I am Ann").await.unwrap();
    let answer = bounded("the answer", talker.recv()).await.unwrap().unwrap();
    assert_eq!(answer.as_text(), Some("Hello from server, Ann!"));
    println!("silent /hello client closed after {waited:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_session_minting_flood_does_not_invalidate_a_real_session() {
    const MINTS: usize = 10_000;
    const CONNECTIONS: usize = 4;
    let server = start(config()).await;
    let cookie = session_cookie(server.addr).await;
    let started = Instant::now();
    // Pipelined requests on a few keep-alive connections.
    let floods: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                let request = format!("POST /session HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                let n = MINTS / CONNECTIONS;
                let (mut read, mut write) = tcp.split();
                let writer = async {
                    for _ in 0..n {
                        write.write_all(request.as_bytes()).await.unwrap();
                    }
                };
                let reader = async {
                    let mut seen = 0;
                    let mut raw = Vec::new();
                    let mut buf = vec![0u8; 64 << 10];
                    while seen < n {
                        let got = read.read(&mut buf).await.unwrap();
                        assert!(got > 0, "the server closed after {seen} mints");
                        raw.extend_from_slice(&buf[..got]);
                        let text = String::from_utf8_lossy(&raw);
                        seen = text.matches("tolqin_session=").count();
                    }
                    seen
                };
                let ((), seen) = tokio::join!(writer, reader);
                seen
            })
        })
        .collect();
    let mut minted = 0;
    for flood in floods {
        minted += bounded("the minting flood", flood).await.unwrap();
    }
    assert_eq!(minted, MINTS);
    println!("{MINTS} sessions minted in {:?}", started.elapsed());
    // The session from before the flood still opens the room.
    let mut ws = join(&server, &cookie).await;
    ws.send(say("real", "still here")).await.unwrap();
    assert_eq!(next_json(&mut ws).await["content"], "still here");
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener_but_on_their_own() {
    let server =
        ChatServer::bind(config().with_metrics_listen(Some("127.0.0.1:0".parse().unwrap())))
            .await
            .unwrap();
    let public = server.local_addr();
    let metrics_addr = server.metrics_addr().expect("a metrics listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    assert_eq!(get(public, "/metrics").await.0, 404);
    let (status, head, body) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("tolqin_chat_connections 0"), "{body}");
    assert!(body.contains("tolqin_chat_connections_refused_total{limit=\"per_ip\"} 0"));
    // Only metrics there, and its own Host check.
    assert_eq!(get(metrics_addr, "/").await.0, 404);
    let (status, _) = status_with_host(metrics_addr, "/metrics", "evil.example", "").await;
    assert_eq!(status, 421);
    // Without --metrics-listen, none anywhere by default.
    let plain = start(config()).await;
    assert_eq!(get(plain.addr, "/metrics").await.0, 404);
    plain.stop().await;
    let _ = stop.send(());
    bounded("the server stops", task).await.unwrap().unwrap();
}

use tolqin_chat::ChatServer;

/// 1,000 clients in one room, each sending at the per-client rate (5/s) for 2 s: without the
/// room's limit that is 10,000 broadcasts and 10 million deliveries; with it (20/s, bursts
/// of 20), at most 60 broadcasts. The server stays responsive throughout, and once the
/// flood stops a normal client's message reaches it within a bound.
#[test]
fn a_thousand_clients_at_the_per_client_rate_are_bounded_by_the_room_rate() {
    // The server on a runtime of its own, as in production; the clients on another.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clients_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(start(
        config()
            .with_max_connections(10_000, 2 * CLIENTS)
            .with_room_rate(ROOM_RATE, ROOM_BURST)
            // What is measured is the fan-out, not the compression of a debug build.
            .with_deflate(false),
    ));
    clients_rt.block_on(thousand_clients(&server));
    server_rt.block_on(server.stop());
}

const CLIENTS: usize = 1000;
const ROOM_RATE: f64 = 20.0;
const ROOM_BURST: u32 = 20;

async fn thousand_clients(server: &Running) {
    const FLOOD: Duration = Duration::from_secs(2);
    let (room_rate, room_burst) = (ROOM_RATE, ROOM_BURST);
    let cookie = session_cookie(server.addr).await;
    let mut sockets = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS / 100 {
        let joins: Vec<_> = (0..100)
            .map(|_| {
                let (url, origin, cookie) = (server.ws_url("/ws"), server.origin(), cookie.clone());
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
            sockets.push(bounded("a join", join).await.unwrap());
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let flood_started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let (stop, attempts) = (stop.clone(), attempts.clone());
            tokio::spawn(async move {
                // Each at 5 messages a second (the per-client rate), staggered.
                let period = Duration::from_millis(200);
                let first = tokio::time::Instant::now() + period * (i as u32 % 10) / 10;
                let mut tick = tokio::time::interval_at(first, period);
                let mut sent = 0;
                loop {
                    tokio::select! {
                        message = ws.recv() => match message {
                            Some(Ok(_)) => {}
                            _ => return,
                        },
                        _ = tick.tick(), if !stop.load(Ordering::Relaxed) => {
                            if ws.send(say(&format!("flood{i}"), &format!("m{sent}"))).await.is_err() {
                                return;
                            }
                            sent += 1;
                            attempts.fetch_add(1, Ordering::Relaxed);
                        }
                        () = tokio::time::sleep(Duration::from_millis(50)), if stop.load(Ordering::Relaxed) => {
                            let _ = ws.close(None, "").await;
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // During the flood, the server answers a plain request promptly.
    let mut worst = Duration::ZERO;
    while flood_started.elapsed() < FLOOD {
        let asked = Instant::now();
        let (status, _, _) = bounded("/healthz", get(server.addr, "/healthz")).await;
        assert_eq!(status, 200);
        worst = worst.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = flood_started.elapsed();
    let broadcasts = server.metrics.messages_broadcast.load(Ordering::Relaxed);
    let limited = server.metrics.room_limited.load(Ordering::Relaxed);
    let tried = attempts.load(Ordering::Relaxed);
    // The room's bucket: its burst plus its rate over the time, whatever the attempts.
    let allowed = room_burst as f64 + room_rate * elapsed.as_secs_f64() + 1.0;
    assert!(
        (broadcasts as f64) <= allowed,
        "{broadcasts} broadcasts in {elapsed:?}, at most {allowed}"
    );
    assert!(tried >= 5 * CLIENTS as u64, "the flood sent only {tried}");
    assert!(limited > 0, "the room's limit never refused");
    // A normal client, once the flood stops, is accepted and its message arrives promptly.
    stop.store(true, Ordering::Relaxed);
    let mut normal = join(server, &cookie).await;
    // Skip the history.
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(300), normal.recv()).await
    {}
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = Instant::now();
    normal.send(say("normal", "hello room")).await.unwrap();
    let latency = bounded("the normal client's message", async {
        loop {
            let message = normal.recv().await.unwrap().unwrap();
            let json: serde_json::Value = serde_json::from_str(message.as_text().unwrap()).unwrap();
            if json["content"] == "hello room" {
                break sent.elapsed();
            }
            assert_ne!(
                json["error"], "rate_limited",
                "refused after the flood: {json}"
            );
        }
    })
    .await;
    assert!(latency < Duration::from_secs(5), "{latency:?}");
    println!(
        "{CLIENTS} clients, {tried} messages tried in {elapsed:?}: {broadcasts} broadcast, \
         {limited} refused by the room; /healthz worst {worst:?} during the flood; \
         a normal message after it arrived in {latency:?}"
    );
    for task in tasks {
        let _ = bounded("a flood client ends", task).await;
    }
}
