//! Broadcast load against any chat server: N clients in one room, S of them sending, and
//! every delivery's latency measured (sent-at time carried in the message).
//!
//! ```text
//! cargo run --release -p tolqin-chat --example chat_load -- URL [--clients 1000] [--senders 10]
//!     [--rate MSGS_PER_S | --window W] [--seconds 10] [--cookie-from http://HOST:PORT/]
//! ```
//!
//! `--rate R`: a steady R messages/s in all (spread over the senders). Without it, saturation:
//! each sender keeps `--window` messages in flight (sends again when it sees its own). Messages
//! are plain text under 50 characters, so the article's Node server (bench/node/chat_server.js)
//! and `tolqin chat` (which wraps them in JSON) carry the same payload. For `tolqin chat`, pass
//! `--cookie-from` (its page sets the session cookie) and run it with a high `--rate`/`--burst`.
//! Prints deliveries/s and latency p50/p99, and a JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use http::{HeaderValue, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tolqin::{Client, Message, Options};

/// Latency histogram: 32 buckets per power of two of microseconds (about 2 % resolution).
struct Histogram(Vec<AtomicU64>);

impl Histogram {
    fn new() -> Self {
        Histogram((0..40 * 32).map(|_| AtomicU64::new(0)).collect())
    }
    fn index(us: u64) -> usize {
        let us = us.max(1);
        let log = 63 - us.leading_zeros() as usize;
        let frac = if log >= 5 {
            ((us >> (log - 5)) & 31) as usize
        } else {
            ((us << (5 - log)) & 31) as usize
        };
        (log * 32 + frac).min(40 * 32 - 1)
    }
    fn value(index: usize) -> f64 {
        let (log, frac) = (index / 32, index % 32);
        (1u64 << log) as f64 * (1.0 + frac as f64 / 32.0)
    }
    fn record(&self, us: u64) {
        self.0[Self::index(us)].fetch_add(1, Relaxed);
    }
    fn quantile(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return Self::value(i);
            }
        }
        0.0
    }
}

struct Args {
    url: String,
    clients: usize,
    senders: usize,
    rate: Option<f64>,
    window: u64,
    seconds: f64,
    cookie_from: Option<String>,
    origin: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        clients: 1000,
        senders: 10,
        rate: None,
        window: 8,
        seconds: 10.0,
        cookie_from: None,
        origin: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value after the option");
        match a.as_str() {
            "--clients" => args.clients = value().parse().unwrap(),
            "--senders" => args.senders = value().parse().unwrap(),
            "--rate" => args.rate = Some(value().parse().unwrap()),
            "--window" => args.window = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--cookie-from" => args.cookie_from = Some(value()),
            "--origin" => args.origin = Some(value()),
            url if !url.starts_with("--") => args.url = url.to_string(),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(!args.url.is_empty(), "usage: chat_load URL [options]");
    args.senders = args.senders.clamp(1, args.clients);
    args
}

/// GET `page` and return its `Set-Cookie` name=value.
async fn cookie_from(page: &str) -> String {
    let authority = page
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
    tcp.write_all(
        format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().split(';').next().unwrap().to_string())
        })
        .expect("the page sets a cookie")
}

/// The tag `run:sender:seq:sent_us` in a received message: the whole text (Node server), or the
/// `content` of tolqin chat's JSON.
fn tag(text: &str, run: u32) -> Option<(usize, u64, u64)> {
    let tag = match text.find("\"content\":\"") {
        Some(i) => {
            let rest = &text[i + 11..];
            &rest[..rest.find('"')?]
        }
        None => text,
    };
    let mut parts = tag.split(':');
    // Messages of an earlier run (the history a newcomer gets first) are not ours.
    if parts.next()?.parse::<u32>().ok()? != run {
        return None;
    }
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

fn main() {
    let args = parse_args();
    let threads = std::env::var("CHAT_LOAD_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let cookie = match &args.cookie_from {
        Some(page) => Some(cookie_from(page).await),
        None => None,
    };
    let origin = args.origin.clone().or_else(|| {
        args.cookie_from
            .clone()
            .map(|p| p.trim_end_matches('/').to_string())
    });
    let mut protocol = tolqin::proto::Config::default();
    protocol.deflate.enabled = false;
    let options = Options::default().with_protocol(protocol);
    let base = Instant::now();
    let run = std::process::id();

    let mut sockets = Vec::with_capacity(args.clients);
    while sockets.len() < args.clients {
        let batch = (args.clients - sockets.len()).min(100);
        let joins: Vec<_> = (0..batch)
            .map(|_| {
                let mut client = Client::new(&args.url).unwrap().options(options.clone());
                if let Some(cookie) = &cookie {
                    client = client.header(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
                }
                if let Some(origin) = &origin {
                    client = client.origin(origin.clone());
                }
                tokio::spawn(client.connect())
            })
            .collect();
        for j in joins {
            sockets.push(j.await.unwrap().expect("client connects"));
        }
    }
    eprintln!("{} clients connected", sockets.len());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let histogram = Arc::new(Histogram::new());
    let deliveries = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sent_total = Arc::new(AtomicU64::new(0));
    let own_seen: Vec<Arc<(AtomicU64, Notify)>> = (0..args.senders)
        .map(|_| Arc::new((AtomicU64::new(0), Notify::new())))
        .collect();

    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let (mut read, mut write) = ws.into_split();
        let (histogram, deliveries, measuring) =
            (histogram.clone(), deliveries.clone(), measuring.clone());
        let mine = own_seen.get(i).cloned();
        let all_seen = own_seen.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = read.recv().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Some((sender, _seq, sent_us)) = tag(&text, run) else {
                    continue;
                };
                let now_us = base.elapsed().as_micros() as u64;
                if measuring.load(Relaxed) {
                    deliveries.fetch_add(1, Relaxed);
                    histogram.record(now_us.saturating_sub(sent_us));
                }
                if sender == i
                    && let Some(own) = &mine
                {
                    own.0.fetch_add(1, Relaxed);
                    own.1.notify_one();
                }
            }
            drop(all_seen);
        }));
        if i < args.senders {
            let own = own_seen[i].clone();
            let (stop, sent_total) = (stop.clone(), sent_total.clone());
            let interval = args
                .rate
                .map(|r| Duration::from_secs_f64(args.senders as f64 / r));
            let window = args.window;
            tokio::spawn(async move {
                let mut ticker = interval.map(|d| {
                    let mut t = tokio::time::interval(d);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let mut seq = 0u64;
                while !stop.load(Relaxed) {
                    match &mut ticker {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => {
                            while seq - own.0.load(Relaxed) >= window {
                                if tokio::time::timeout(
                                    Duration::from_millis(100),
                                    own.1.notified(),
                                )
                                .await
                                .is_err()
                                    && stop.load(Relaxed)
                                {
                                    return;
                                }
                            }
                        }
                    }
                    let sent_us = base.elapsed().as_micros() as u64;
                    if write
                        .send(format!("{run}:{i}:{seq}:{sent_us}"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    seq += 1;
                    sent_total.fetch_add(1, Relaxed);
                }
            });
        }
    }

    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Relaxed);
    let sent_before = sent_total.load(Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    measuring.store(false, Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let sent = sent_total.load(Relaxed) - sent_before;
    stop.store(true, Relaxed);
    let delivered = deliveries.load(Relaxed);
    let (p50, p99) = (
        histogram.quantile(0.50) / 1000.0,
        histogram.quantile(0.99) / 1000.0,
    );
    let mode = match args.rate {
        Some(r) => format!("steady {r} msg/s"),
        None => format!("saturation (window {})", args.window),
    };
    println!(
        "{}: {} clients, {} senders, {mode}: {:.0} messages/s sent, {:.0} deliveries/s, latency p50 {:.2} ms p99 {:.2} ms",
        args.url,
        args.clients,
        args.senders,
        sent as f64 / elapsed,
        delivered as f64 / elapsed,
        p50,
        p99
    );
    println!(
        "{{\"url\":\"{}\",\"clients\":{},\"senders\":{},\"rate\":{},\"sent_per_s\":{:.0},\"deliveries_per_s\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        args.url,
        args.clients,
        args.senders,
        args.rate.map_or("null".to_string(), |r| r.to_string()),
        sent as f64 / elapsed,
        delivered as f64 / elapsed,
        p50,
        p99
    );
    std::process::exit(0);
}
