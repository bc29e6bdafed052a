//! Memory per connection of permessage-deflate as the OS sees it, and compression speed, by
//! setting: RSS growth over 1,000 server codecs that each compressed and inflated one 16 KiB
//! chat-like JSON message (so zlib's buffers are touched, as in a live connection), divided by
//! 1,000; then the time to compress one such message, averaged over 200 different ones sent in
//! turn on one codec. Each setting is measured in a fresh process (the example runs itself),
//! since memory freed by one setting would be reused by the next without showing in RSS. (The
//! exact bytes allocated are counted by `tests/deflate_memory.rs`.)
//!
//! ```text
//! cargo run --release -p tolqin-proto --example deflate_memory
//! ```

use std::time::Instant;

#[path = "../tests/support/chat_json.rs"]
mod chat_json;
use chat_json::chat_json;

use tolqin_proto::Role;
use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const ROWS: [(u8, u32, u8, bool); 10] = [
    // window bits (both directions), level, memory level, no context takeover (both)
    (15, 6, 8, false),
    (15, 1, 8, false),
    (15, 6, 9, false),
    (15, 6, 4, false),
    (15, 6, 1, false),
    (12, 6, 8, false),
    (10, 6, 8, false),
    (9, 6, 8, false),
    (9, 6, 1, false),
    (15, 6, 8, true),
];

fn main() {
    if let Some(row) = std::env::args().nth(1) {
        measure(ROWS[row.parse::<usize>().expect("a row number")]);
        return;
    }
    println!(
        "| window bits | level | memory level | no context takeover | RSS per connection | compress 16 KiB |"
    );
    println!("|---|---|---|---|---|---|");
    let me = std::env::current_exe().expect("own path");
    for row in 0..ROWS.len() {
        let status = std::process::Command::new(&me)
            .arg(row.to_string())
            .status()
            .expect("run a row");
        assert!(status.success(), "row {row}: {status}");
    }
}

fn measure((bits, level, mem_level, nct): (u8, u32, u8, bool)) {
    const N: usize = 1000;
    const ROUNDS: u32 = 200;
    let message = chat_json(0, 16 << 10);
    let params = DeflateParams {
        server_no_context_takeover: nct,
        client_no_context_takeover: nct,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    };
    let config = DeflateConfig::default()
        .with_level(level)
        .with_mem_level(mem_level)
        .with_threshold(0);
    let mut peer = Codec::new(Role::Client, params, &config);
    let compressed = Codec::new(Role::Client, params, &config)
        .compress(&message)
        .expect("compressible");
    let before = rss_kib();
    let mut codecs = Vec::with_capacity(N);
    for _ in 0..N {
        let mut c = Codec::new(Role::Server, params, &config);
        let sent = c.compress(&message).expect("compressible");
        let mut out = Vec::new();
        c.inflate(&compressed, true, 1 << 20, &mut out)
            .expect("valid");
        assert_eq!(out.len(), message.len());
        let mut check = Vec::new();
        peer.inflate(&sent, true, 1 << 20, &mut check)
            .expect("valid");
        codecs.push(c);
    }
    let per = rss_kib().saturating_sub(before) as f64 / N as f64;
    drop(codecs);

    let messages: Vec<Vec<u8>> = (1..=ROUNDS)
        .map(|i| chat_json(i * 1000, 16 << 10))
        .collect();
    let mut c = Codec::new(Role::Server, params, &config);
    let start = Instant::now();
    for m in &messages {
        std::hint::black_box(c.compress(std::hint::black_box(m)));
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    let nct = if nct { "yes" } else { "no" };
    println!("| {bits} | {level} | {mem_level} | {nct} | {per:.0} KiB | {micros:.0} µs |");
}
