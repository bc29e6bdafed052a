//! What the generator's messages carry: a fixed filler, or JSON-like records.
//!
//! The filler is printable ASCII in a fixed pattern: valid UTF-8, and enough to measure
//! framing, but it says nothing about compression. For that, `--payload json` sends what chat
//! and telemetry applications send: arrays of objects whose keys repeat and whose values vary
//! (ids, timestamps, readings, short texts). Every payload is generated from a seed, so runs
//! are reproducible, and filled to exactly the requested size.
//!
//! A connection sends a ring of distinct JSON payloads rather than one payload again and
//! again: a server that keeps its compression context (the default) would otherwise find
//! each message whole in its window and compress it to a few bytes, which no real traffic
//! does. The ring spans several 32 KiB deflate windows, so the server sees what it would see
//! in practice: the same keys, never a recent message repeated.

/// The kind of payload, `--payload`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PayloadKind {
    /// Printable ASCII in a fixed pattern (framing only; not meant for compression).
    #[default]
    Filler,
    /// Chat and telemetry JSON records with varying values.
    Json,
}

impl PayloadKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Filler => "filler",
            PayloadKind::Json => "json",
        }
    }
}

/// Bytes of distinct JSON payloads per connection: several times RFC 7692's largest window
/// (32 KiB), so no message is still in the window when it comes round again.
const RING_BYTES: usize = 128 << 10;
/// At most this many distinct payloads (small messages), to keep the setup cheap.
const MAX_VARIANTS: usize = 4096;

/// The distinct payloads a connection sends in turn, each `size` bytes.
pub fn payloads(kind: PayloadKind, size: usize) -> Vec<Vec<u8>> {
    match kind {
        PayloadKind::Filler => vec![filler(size)],
        PayloadKind::Json => {
            let n = RING_BYTES.div_ceil(size.max(1)).clamp(1, MAX_VARIANTS);
            (0..n as u64).map(|seed| json(size, seed)).collect()
        }
    }
}

/// Printable ASCII: valid UTF-8 for text frames, and not trivially compressible.
fn filler(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| {
            b"abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                [(i * 7 + i / 63) % 63]
        })
        .collect()
}

/// A JSON array of records, exactly `size` bytes: whole records while they fit, then one
/// `{"text":"..."}` record sized to the rest (or spaces, if even that does not fit).
fn json(size: usize, seed: u64) -> Vec<u8> {
    const OPEN: &[u8] = b"{\"text\":\"";
    const CLOSE: &[u8] = b"\"}";
    if size < 2 {
        return b"0"[..size].to_vec();
    }
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    let mut ts = 1_718_000_000_000 + seed * 60_000;
    let mut out = Vec::with_capacity(size);
    let mut record = Vec::with_capacity(256);
    out.push(b'[');
    loop {
        record.clear();
        ts += rng.below(5_000);
        write_record(&mut rng, ts, &mut record);
        let comma = usize::from(out.len() > 1);
        if out.len() + comma + record.len() + 1 > size {
            break;
        }
        if comma == 1 {
            out.push(b',');
        }
        out.extend_from_slice(&record);
    }
    let comma = usize::from(out.len() > 1);
    let room = size - 1 - out.len();
    if room > comma + OPEN.len() + CLOSE.len() {
        if comma == 1 {
            out.push(b',');
        }
        out.extend_from_slice(OPEN);
        let text = room - comma - OPEN.len() - CLOSE.len();
        words(&mut rng, text, &mut out);
        out.extend_from_slice(CLOSE);
    }
    out.resize(size - 1, b' ');
    out.push(b']');
    out
}

const ROOMS: &[&str] = &["general", "random", "support", "dev", "ops", "design"];
const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];
const WORDS: &[&str] = &[
    "the", "deploy", "is", "done", "can", "you", "check", "logs", "on", "staging", "please",
    "looks", "good", "to", "me", "merged", "build", "failed", "again", "retrying", "now", "thanks",
    "lunch", "at", "noon", "meeting", "moved", "tomorrow", "ticket", "updated", "latency", "spike",
    "in", "region", "eu", "west", "rollback", "started", "cache", "hit", "rate", "dropped",
    "after", "release", "fixed", "it", "ship", "this", "week", "review",
];
const DEVICES: &[&str] = &["thermo", "meter", "pump", "valve", "door", "hvac"];
const STATUS: &[&str] = &["online", "away", "busy", "offline"];

/// One chat, telemetry or presence record, as applications send them.
fn write_record(rng: &mut Rng, ts: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let pick = |rng: &mut Rng, list: &[&'static str]| list[rng.below(list.len() as u64) as usize];
    // Writing into a Vec cannot fail.
    let _ = match rng.below(10) {
        0..=4 => {
            let (id, room, user) = (rng.below(1 << 40), pick(rng, ROOMS), pick(rng, USERS));
            let uid = 1000 + rng.below(90_000);
            write!(
                out,
                "{{\"type\":\"message\",\"id\":{id},\"room\":\"{room}\",\"user\":{{\"id\":{uid},\
                 \"name\":\"{user}\"}},\"ts\":{ts},\"text\":\""
            )
            .and_then(|()| {
                let len = 12 + rng.below(80) as usize;
                words(rng, len, out);
                write!(out, "\",\"reactions\":{}}}", rng.below(4))
            })
        }
        5..=8 => {
            let (device, n) = (pick(rng, DEVICES), rng.below(64));
            let temp = 150 + rng.below(200);
            let humidity = 2000 + rng.below(6000);
            let battery = rng.below(101);
            let ok = rng.below(20) != 0;
            write!(
                out,
                "{{\"type\":\"telemetry\",\"device\":\"{device}-{n:02}\",\"ts\":{ts},\
                 \"temperature\":{}.{},\"humidity\":{}.{:02},\"battery\":{battery},\"ok\":{ok}}}",
                temp / 10,
                temp % 10,
                humidity / 100,
                humidity % 100
            )
        }
        _ => {
            let (user, status) = (pick(rng, USERS), pick(rng, STATUS));
            write!(
                out,
                "{{\"type\":\"presence\",\"user\":\"{user}\",\"status\":\"{status}\",\"ts\":{ts}}}"
            )
        }
    };
}

/// Exactly `len` bytes of words separated by spaces (the last one cut if need be).
fn words(rng: &mut Rng, len: usize, out: &mut Vec<u8>) {
    let end = out.len() + len;
    while out.len() < end {
        if out.len() + 1 < end && !out.ends_with(b"\"") && !out.ends_with(b" ") {
            out.push(b' ');
        }
        let w = WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes();
        let take = w.len().min(end - out.len());
        out.extend_from_slice(&w[..take]);
    }
}

/// splitmix64: deterministic, and good enough to vary values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_valid_and_exactly_the_size() {
        for size in [2, 3, 12, 13, 20, 100, 1024, 16 << 10, 64 << 10] {
            for seed in 0..20 {
                let p = json(size, seed);
                assert_eq!(p.len(), size, "size {size} seed {seed}");
                let v: serde_json::Value = serde_json::from_slice(&p)
                    .unwrap_or_else(|e| panic!("size {size} seed {seed}: {e}"));
                assert!(v.is_array());
            }
        }
        assert_eq!(json(0, 0), b"");
        assert_eq!(json(1, 0), b"0");
    }

    #[test]
    fn json_is_deterministic_and_varies() {
        assert_eq!(json(1024, 7), json(1024, 7));
        assert_ne!(json(1024, 7), json(1024, 8));
        let ring = payloads(PayloadKind::Json, 1024);
        assert!(ring.len() * 1024 >= RING_BYTES);
        let big = payloads(PayloadKind::Json, 64 << 10);
        assert_eq!(big.len(), 2);
        assert_ne!(big[0], big[1]);
    }

    #[test]
    fn filler_is_one_payload() {
        let p = payloads(PayloadKind::Filler, 20);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), 20);
    }
}
