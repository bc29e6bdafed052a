//! Memory per connection of permessage-deflate, by setting, counted exactly: a counting global
//! allocator (zlib-rs allocates through Rust's allocator) measures the bytes a server codec
//! still holds after it compressed one message and inflated one. These are the figures of the
//! table in the `tolqin_proto::deflate` docs; print it with
//!
//! ```text
//! cargo test -p tolqin-proto --test deflate_memory -- --nocapture
//! ```
//!
//! and the assertions keep the documented trade-offs true: a lower memory level or a smaller
//! window holds less, and no context takeover holds nothing between messages.

#[path = "support/chat_json.rs"]
mod chat_json;
use chat_json::chat_json;

use tolqin_proto::Role;
use tolqin_proto::deflate::{Codec, DeflateConfig, DeflateParams};

#[path = "support/counting.rs"]
mod counting;
use counting::live;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// One setting: window bits (both directions), compression level, memory level, no context
/// takeover (both directions).
#[derive(Debug, Clone, Copy)]
struct Setting {
    bits: u8,
    level: u32,
    mem_level: u8,
    nct: bool,
}

const fn setting(bits: u8, level: u32, mem_level: u8, nct: bool) -> Setting {
    Setting {
        bits,
        level,
        mem_level,
        nct,
    }
}

const DEFAULT: Setting = setting(15, 6, 8, false);

/// What a server codec with setting `s` holds after one message each way.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Bytes held by the compressor (after sending one message).
    compressor: isize,
    /// Bytes held by the decompressor (after receiving one message).
    decompressor: isize,
    /// The sample's compressed size.
    compressed: usize,
}

fn measure(s: Setting, message: &[u8]) -> Measured {
    let params = DeflateParams {
        server_no_context_takeover: s.nct,
        client_no_context_takeover: s.nct,
        server_max_window_bits: s.bits,
        client_max_window_bits: s.bits,
    };
    let config = DeflateConfig::default()
        .with_level(s.level)
        .with_mem_level(s.mem_level)
        .with_threshold(0);
    let incoming = Codec::new(Role::Client, params, &config)
        .compress(message)
        .expect("compressible");
    let mut codec = Codec::new(Role::Server, params, &config);

    let start = live();
    let sent = codec.compress(message).expect("compressible");
    let compressed = sent.len();
    drop(sent);
    let compressor = live() - start;

    let start = live();
    let mut out = Vec::new();
    codec
        .inflate(&incoming, true, 1 << 20, &mut out)
        .expect("valid");
    assert_eq!(out, message);
    drop(out);
    let decompressor = live() - start;

    Measured {
        compressor,
        decompressor,
        compressed,
    }
}

fn kib(bytes: isize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[test]
fn memory_per_connection_by_setting() {
    let message = chat_json(0, 16 << 10);
    let rows = [
        DEFAULT,
        setting(15, 1, 8, false),
        setting(15, 6, 9, false),
        setting(15, 6, 4, false),
        setting(15, 6, 1, false),
        setting(12, 6, 8, false),
        setting(10, 6, 8, false),
        setting(9, 6, 8, false),
        setting(9, 6, 1, false),
        setting(15, 6, 8, true),
    ];
    let measured: Vec<Measured> = rows.iter().map(|&s| measure(s, &message)).collect();
    let of = |s: Setting| {
        let i = rows
            .iter()
            .position(|r| {
                (r.bits, r.level, r.mem_level, r.nct) == (s.bits, s.level, s.mem_level, s.nct)
            })
            .expect("measured");
        measured[i]
    };

    println!(
        "| window bits | level | memory level | no context takeover | compressor | decompressor | per connection | 16 KiB sample compressed to |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (s, m) in rows.iter().zip(&measured) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} bytes |",
            s.bits,
            s.level,
            s.mem_level,
            if s.nct { "yes" } else { "no" },
            kib(m.compressor),
            kib(m.decompressor),
            kib(m.compressor + m.decompressor),
            m.compressed,
        );
    }

    // The memory level sizes only the compressor, and strictly.
    let by_mem: Vec<Measured> = [1, 4, 8, 9]
        .map(|mem_level| of(setting(15, 6, mem_level, false)))
        .to_vec();
    for pair in by_mem.windows(2) {
        assert!(pair[0].compressor < pair[1].compressor, "{by_mem:?}");
        assert_eq!(pair[0].decompressor, pair[1].decompressor, "{by_mem:?}");
    }
    // mem_level 1 saves at least the 111 KiB of pending symbols that level 8 holds.
    assert!(
        by_mem[2].compressor - by_mem[0].compressor >= 111 << 10,
        "{by_mem:?}"
    );
    // At the cost of ratio on varied data.
    assert!(by_mem[0].compressed > by_mem[2].compressed, "{by_mem:?}");

    // A smaller window holds less.
    let by_bits: Vec<Measured> = [9, 10, 12, 15]
        .map(|bits| of(setting(bits, 6, 8, false)))
        .to_vec();
    for pair in by_bits.windows(2) {
        assert!(pair[0].compressor < pair[1].compressor, "{by_bits:?}");
    }

    // The compression level does not change the allocation.
    assert_eq!(
        of(setting(15, 1, 8, false)).compressor,
        of(DEFAULT).compressor
    );

    // No context takeover: nothing held between messages.
    let nct = of(setting(15, 6, 8, true));
    assert_eq!((nct.compressor, nct.decompressor), (0, 0), "{nct:?}");

    // The default stays in the range the docs give (zlib-rs 0.6: 256 KiB window and hash
    // chains, 128 KiB hash table, 112 KiB pending symbols; a 32 KiB inflate window).
    let default = of(DEFAULT);
    assert!(
        (360 << 10..400 << 10).contains(&default.compressor),
        "{default:?}"
    );
    assert!(
        (30 << 10..60 << 10).contains(&default.decompressor),
        "{default:?}"
    );
}
