//! The read path's hot loops, each next to the physical bound it races: `memcpy` of the same
//! bytes on this machine (one read and one write per byte, as masking in place does).
//!
//! ```text
//! cargo bench -p tolqin-proto --bench hot_loops
//! cargo bench -p tolqin-proto --bench hot_loops -- mask     # one group
//! ```
//!
//! Criterion prints throughput in bytes per second; a loop "at the bound" shows about the
//! `memcpy` figure of its group. These are measurements, never assertions.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tolqin_proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin_proto::mask::{apply_mask, apply_mask_bytewise};
use tolqin_proto::utf8::Utf8Validator;
use tolqin_proto::{Config, Connection, Event, Role};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const SIZES: &[usize] = &[20, 1 << 10, 16 << 10, 1 << 20];

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for &n in SIZES {
        g.throughput(Throughput::Bytes(n as u64));
        let mut buf = vec![0x5au8; n];
        let src = vec![0xa5u8; n];
        g.bench_with_input(BenchmarkId::new("apply_mask", n), &n, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
        g.bench_with_input(BenchmarkId::new("apply_mask_bytewise", n), &n, |b, _| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), KEY, 0))
        });
        g.bench_with_input(BenchmarkId::new("memcpy (bound)", n), &n, |b, _| {
            b.iter(|| buf.copy_from_slice(black_box(&src)))
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let n = 64 << 10;
    let ascii: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
    // Two-, three- and four-byte sequences mixed: "é€😀" repeated.
    let multi: Vec<u8> = "é€😀".bytes().cycle().take(n - n % 9).collect();
    let mut dst = vec![0u8; n];
    for (name, text) in [("ascii", &ascii), ("multibyte", &multi)] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(BenchmarkId::new("Utf8Validator::feed", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(text)).unwrap();
                v.finish().unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("memcpy (bound)", name), |b| {
            b.iter(|| dst[..text.len()].copy_from_slice(black_box(text)))
        });
    }
    g.finish();
}

fn frame_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_header");
    for len in [20u64, 16 << 10, 1 << 20] {
        let mut h = FrameHeader::new(OpCode::Binary, len);
        h.mask = Some(KEY);
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut bytes);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("decode", len), |b| {
            b.iter(|| FrameHeader::decode(black_box(&bytes[..n])).unwrap())
        });
        g.bench_function(BenchmarkId::new("encode", len), |b| {
            let mut out = [0u8; MAX_HEADER_LEN];
            b.iter(|| black_box(&h).encode(&mut out))
        });
    }
    g.finish();
}

/// One masked client frame carrying `n` bytes (binary) as a server receives it.
fn masked_frame(n: usize, opcode: OpCode) -> Vec<u8> {
    let mut h = FrameHeader::new(opcode, n as u64);
    h.mask = Some(KEY);
    let mut head = [0u8; MAX_HEADER_LEN];
    let k = h.encode(&mut head);
    let mut payload: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
    apply_mask(&mut payload, KEY, 0);
    let mut frame = head[..k].to_vec();
    frame.extend_from_slice(&payload);
    frame
}

fn message_assembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive+next_event");
    for &(n, opcode, name) in &[
        (20usize, OpCode::Text, "20 B text"),
        (16 << 10, OpCode::Binary, "16 KiB binary"),
        (1 << 20, OpCode::Binary, "1 MiB binary"),
    ] {
        let frame = masked_frame(n, opcode);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(BenchmarkId::new("Connection", name), |b| {
            let mut conn = Connection::new(Role::Server, Config::default());
            b.iter(|| {
                conn.receive(black_box(&frame));
                match conn.next_event() {
                    Some(Event::Message(m)) => black_box(m),
                    other => panic!("unexpected {other:?}"),
                };
            })
        });
        let mut dst = vec![0u8; frame.len()];
        g.bench_function(BenchmarkId::new("memcpy (bound)", name), |b| {
            b.iter(|| dst.copy_from_slice(black_box(&frame)))
        });
    }
    g.finish();
}

/// The server's whole sans-I/O work per message in a pipelined echo (W6): a batch of 16 masked
/// 20-byte text frames arrives in one read; each message is parsed, its echo queued, and the
/// queued frames gathered into one buffer for one write. The bound is the copy of the bytes in
/// and out.
fn pipelined_echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("echo");
    let batch: Vec<u8> = (0..16)
        .flat_map(|_| masked_frame(20, OpCode::Text))
        .collect();
    g.throughput(Throughput::Elements(16));
    g.bench_function("16 x 20 B text, parse + queue echo + gather", |b| {
        let mut conn = Connection::new(Role::Server, Config::default());
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            conn.receive(black_box(&batch));
            while let Some(event) = conn.next_event() {
                match event {
                    Event::Message(m) => conn.send(m).unwrap(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            let mut slices = [std::io::IoSlice::new(&[]); 64];
            let n = conn.io_slices(&mut slices);
            out.clear();
            for s in &slices[..n] {
                out.extend_from_slice(s);
            }
            conn.advance_written(black_box(&out).len());
            conn.shrink_read_buffer();
        })
    });
    let mut dst = vec![0u8; batch.len()];
    let mut out = Vec::with_capacity(4096);
    g.bench_function("memcpy in and out (bound)", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&batch));
            black_box(&mut out).clear();
            out.extend_from_slice(&dst[..16 * 22]);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    mask,
    utf8,
    frame_header,
    message_assembly,
    pipelined_echo
);
criterion_main!(benches);
