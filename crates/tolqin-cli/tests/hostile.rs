//! Hostile peers against `tolqin echo` (issue 9): each attack gets the close code or HTTP status
//! it calls for and is cut off within its timeout, while a normal client connected alongside
//! keeps getting its echoes, and the server's memory returns to its baseline.
//!
//! One server process serves the whole suite (with short timeouts), so the attacks also prove
//! that they do not disturb each other.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tolqin_testkit::rss_kib;
use tolqin_testkit::wire::{client_frame as frame, close_code, handshake, wait_closed as closed};

/// Every step of an attack is bounded: generous, so that a loaded machine does not fail it,
/// but far below "forever".
const BOUND: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {BOUND:?}"))
}

fn start_server() -> support::Started {
    support::echo(&[
        "--threads",
        "1",
        "--handshake-timeout",
        "1",
        "--close-timeout",
        "1",
        "--write-timeout",
        "1",
        "--max-message-size",
        "16777216",
    ])
}

/// A normal client that echoes a message every 20 ms until stopped, counting round trips and
/// failing loudly if an echo is lost or late.
struct Witness {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
    count: Arc<AtomicU64>,
}

impl Witness {
    async fn start(addr: &str) -> Witness {
        let mut ws = tolqin::connect(&format!("ws://{addr}/")).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (stop2, count2) = (stop.clone(), count.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                ws.send(format!("witness {n}"))
                    .await
                    .expect("the witness can send");
                let echo = tokio::time::timeout(BOUND, ws.recv())
                    .await
                    .expect("the witness got its echo in time");
                assert_eq!(
                    echo.unwrap().unwrap().as_text(),
                    Some(format!("witness {n}").as_str())
                );
                n += 1;
                count2.store(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ws.close_and_wait(None, "").await.unwrap();
            n
        });
        Witness { stop, task, count }
    }

    /// Waits until the witness completed a few more round trips: it is still served.
    async fn still_served(&self) {
        let before = self.count.load(Ordering::Relaxed);
        bounded("witness echoes", async {
            while self.count.load(Ordering::Relaxed) < before + 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

async fn http_status(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(request).await; // the server may answer and close mid-request
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sends `wire` after a handshake and asserts the close code the server answers with.
async fn expect_close(addr: &str, what: &str, wire: &[u8], code: u16) {
    bounded(what, async {
        let mut tcp = handshake(addr).await;
        let _ = tcp.write_all(wire).await;
        assert_eq!(close_code(&mut tcp).await, code, "{what}");
        closed(&mut tcp).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_cut_off_and_others_carry_on() {
    let server = start_server();
    let addr = server.addr().to_string();
    let pid = server.process.id();
    let witness = Witness::start(&addr).await;
    witness.still_served().await;
    let baseline = rss_kib(pid);

    // --- The handshake.
    // Slowloris: one byte every 100 ms; the 1 s handshake timeout drops it.
    bounded("slowloris", async {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        let start = Instant::now();
        for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " {
            if tcp.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed(&mut tcp).await;
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "dropped by the handshake timeout"
        );
    })
    .await;
    let many_headers: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let status = bounded(
        "10,000 headers",
        http_status(
            &addr,
            format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").as_bytes(),
        ),
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 431"),
        "10,000 headers: {status}"
    );
    let status = bounded(
        "1 MB header line",
        http_status(
            &addr,
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(1 << 20)
            )
            .as_bytes(),
        ),
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 431"),
        "1 MB header line: {status}"
    );
    witness.still_served().await;

    // --- Frames.
    let huge = {
        let mut h = vec![0x82, 0xff];
        h.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    };
    expect_close(&addr, "a frame announcing 2^63-1 bytes", &huge, 1009).await;
    let mut one_byte_frames = frame(false, 0, 0x2, b"x");
    for _ in 0..100_000 {
        one_byte_frames.extend(frame(false, 0, 0x0, b"x"));
    }
    expect_close(
        &addr,
        "a 16 MiB message one byte per frame",
        &one_byte_frames,
        1009,
    )
    .await;
    let bad_utf8 = [
        frame(false, 0, 0x1, &[b'a', 0xf4]),
        frame(true, 0, 0x0, &[0x90, 0x80, 0x80]),
    ]
    .concat();
    expect_close(
        &addr,
        "invalid UTF-8 split across fragments",
        &bad_utf8,
        1007,
    )
    .await;
    let unmasked = [0x81u8, 0x02, b'h', b'i'];
    expect_close(&addr, "an unmasked client frame", &unmasked, 1002).await;
    expect_close(&addr, "reserved bits", &frame(true, 0b010, 0x1, b"x"), 1002).await;
    expect_close(
        &addr,
        "an oversized ping",
        &frame(true, 0, 0x9, &[0u8; 126]),
        1002,
    )
    .await;
    expect_close(
        &addr,
        "a fragmented ping",
        &frame(false, 0, 0x9, b"x"),
        1002,
    )
    .await;
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        expect_close(
            &addr,
            &format!("close code {code}"),
            &frame(true, 0, 0x8, &code.to_be_bytes()),
            1002,
        )
        .await;
    }
    expect_close(
        &addr,
        "a close reason that is not UTF-8",
        &frame(true, 0, 0x8, &[0x03, 0xe8, 0xff, 0xfe]),
        1007,
    )
    .await;
    witness.still_served().await;

    // --- Floods and peers that do not read.
    bounded("100,000 pings without reading the pongs", async {
        let mut tcp = handshake(&addr).await;
        let ping = frame(true, 0, 0x9, b"ping payload");
        let mut flood = Vec::with_capacity(ping.len() * 10_000);
        for _ in 0..10_000 {
            flood.extend_from_slice(&ping);
        }
        for _ in 0..10 {
            tcp.write_all(&flood).await.unwrap();
        }
        // The server answered (at most 32 pongs are ever waiting) and is still responsive.
        tcp.write_all(&frame(true, 0, 0x8, &1000u16.to_be_bytes()))
            .await
            .unwrap();
        assert_eq!(close_code(&mut tcp).await, 1000);
    })
    .await;
    bounded("a client that never reads while the server sends", async {
        let mut tcp = handshake(&addr).await;
        let message = frame(true, 0, 0x2, &vec![7u8; 1 << 20]);
        // Keep sending; the server's echoes pile up until the write timeout (1 s) fails the
        // connection, and then our writes fail too.
        let start = Instant::now();
        let mut cut_off = false;
        for _ in 0..2048 {
            if tcp.write_all(&message).await.is_err() {
                cut_off = true;
                break;
            }
        }
        assert!(cut_off, "the server kept a peer that never reads");
        assert!(start.elapsed() < BOUND);
    })
    .await;
    witness.still_served().await;

    // --- Connections.
    bounded("10,000 connections abandoned mid-handshake", async {
        let mut conns = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            let mut tcp = TcpStream::connect(&addr).await.unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            conns.push(tcp);
        }
        witness.still_served().await;
        // The handshake timeout (1 s) drops every one of them.
        for tcp in &mut conns {
            closed(tcp).await;
        }
    })
    .await;
    let cycles_started = Instant::now();
    // (About 30 s on 2 cores, handshakes included.)
    tokio::time::timeout(Duration::from_secs(150), async {
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..2_000 {
                    let tcp = handshake(&addr).await;
                    // Reset rather than close: no TIME_WAIT, so ports don't run out. (Deprecated
                    // because a non-zero linger blocks on drop; a zero linger resets at once.)
                    #[allow(deprecated)]
                    tcp.set_linger(Some(Duration::ZERO)).unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("100,000 connect/disconnect cycles within 150 s");
    eprintln!(
        "100,000 connect/disconnect cycles in {:?}",
        cycles_started.elapsed()
    );
    witness.still_served().await;

    // Memory returns to (near) its baseline: nothing an attacker did is still held.
    let deadline = Instant::now() + BOUND;
    let mut after = rss_kib(pid);
    while after > baseline + 16 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = rss_kib(pid);
    }
    eprintln!("server RSS: {baseline} KiB before the attacks, {after} KiB after");
    assert!(
        after <= baseline + 16 * 1024,
        "RSS went from {baseline} KiB to {after} KiB"
    );
    let echoes = witness.finish().await;
    assert!(
        echoes > 10,
        "the witness was served throughout ({echoes} echoes)"
    );
}
