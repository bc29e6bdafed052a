//! Memory per connection of permessage-deflate, by setting: RSS growth over 1,000 codecs that
//! each compressed and inflated one 16 KiB message (so zlib's buffers are touched, as in a live
//! connection), divided by 1,000.
//!
//! ```text
//! cargo run --release -p tolqin-proto --example deflate_memory
//! ```

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

fn main() {
    const N: usize = 1000;
    let unit = br#"{"user":"alice","content":"hello"} "#;
    let message: Vec<u8> = (0..16 << 10).map(|i| unit[i % unit.len()]).collect();
    println!(
        "| window bits (both directions) | level | no context takeover | compressor + decompressor per connection |"
    );
    println!("|---|---|---|---|");
    for (bits, level, nct) in [
        (15u8, 6u32, false),
        (15, 1, false),
        (12, 6, false),
        (10, 6, false),
        (9, 6, false),
        (15, 6, true),
    ] {
        let params = DeflateParams {
            server_no_context_takeover: nct,
            client_no_context_takeover: nct,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        };
        let config = DeflateConfig::default().with_level(level).with_threshold(0);
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
        let per = (rss_kib() - before) as f64 / N as f64;
        println!("| {bits} | {level} | {nct} | {per:.0} KiB |");
        drop(codecs);
    }
}
