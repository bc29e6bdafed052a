//! The throughput and latency run: every connection keeps `inflight` messages outstanding and
//! sends one more for every reply.
//!
//! Each generator thread runs a single-threaded tokio runtime; its connections share one
//! statistics record (no atomics, no locks on the hot path except the progress counter).
//! A connection's loop writes whole pre-encoded frames with non-blocking `try_write`, reads
//! with `try_read`, and only waits for readiness when the socket has nothing for it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::payload::{self, PayloadKind};
use super::wire::{Frames, Handshake, ReplyParser};

/// What the run needs to know, shared by every connection of every thread.
pub struct Plan {
    pub addr: SocketAddr,
    pub handshake: Handshake,
    pub connections: usize,
    pub size: usize,
    pub payload: PayloadKind,
    pub text: bool,
    pub inflight: usize,
    pub threads: usize,
}

/// The measured window's results of one generator thread (merged across threads at the end).
pub struct Tally {
    /// Round trips completed inside the measured window.
    pub messages: u64,
    /// Replies whose length was not the size sent.
    pub wrong_length: u64,
    /// Payload bytes of the replies counted in `messages`, as they came on the wire.
    pub reply_payload_bytes: u64,
    /// The permessage-deflate element the server agreed to, if it did.
    pub deflate_agreed: Option<String>,
    /// Mean payload bytes of one message as sent (compressed, with deflate).
    pub sent_payload_mean: f64,
    /// Round-trip latency in nanoseconds.
    pub latency: Histogram<u64>,
    /// Connections that failed, with the first error.
    pub failed: usize,
    pub first_error: Option<String>,
    /// The sender was still blocked on a full socket (the server was not reading fast enough).
    pub stalled_writes: u64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            messages: 0,
            wrong_length: 0,
            reply_payload_bytes: 0,
            deflate_agreed: None,
            sent_payload_mean: 0.0,
            // 1 ns to 100 s, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"),
            failed: 0,
            first_error: None,
            stalled_writes: 0,
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.messages += other.messages;
        self.wrong_length += other.wrong_length;
        self.reply_payload_bytes += other.reply_payload_bytes;
        if self.deflate_agreed.is_none() {
            self.deflate_agreed = other.deflate_agreed;
        }
        // Every thread prepares the same frames.
        self.sent_payload_mean = self.sent_payload_mean.max(other.sent_payload_mean);
        self.latency.add(&other.latency).expect("same bounds");
        self.failed += other.failed;
        self.stalled_writes += other.stalled_writes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The instants that bound the run; set once every connection is open.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

/// Opens every connection, then drives them all from `window.start` (computed by `schedule`
/// after the handshakes) until `window.end`. `progress` counts replies for the progress bar.
pub fn run(
    plan: Arc<Plan>,
    schedule: impl Fn() -> Window + Send + Sync + 'static,
    progress: Arc<AtomicU64>,
) -> io::Result<(Tally, Window, Duration)> {
    let schedule = Arc::new(schedule);
    // Connections are opened by all threads, then a barrier starts the load together.
    let barrier = Arc::new(std::sync::Barrier::new(plan.threads));
    let window_cell: Arc<std::sync::OnceLock<Window>> = Arc::new(std::sync::OnceLock::new());
    let opening = Instant::now();
    let mut handles = Vec::new();
    for t in 0..plan.threads {
        let count =
            plan.connections / plan.threads + usize::from(t < plan.connections % plan.threads);
        let plan = plan.clone();
        let barrier = barrier.clone();
        let window_cell = window_cell.clone();
        let schedule = schedule.clone();
        let progress = progress.clone();
        handles.push(std::thread::spawn(
            move || -> io::Result<(Tally, Duration)> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let mut opened = Vec::with_capacity(count);
                    for _ in 0..count {
                        opened.push(plan.handshake.open(plan.addr).await?);
                    }
                    let opened_in = opening.elapsed();
                    let deflate = match (opened.first(), plan.handshake.deflate_config()) {
                        (Some(o), Some(c)) => o.deflate.map(|p| (p, c.clone())),
                        _ => None,
                    };
                    let frames = Rc::new(Frames::new(
                        &payload::payloads(plan.payload, plan.size),
                        plan.text,
                        copies(plan.size, plan.inflight),
                        deflate.as_ref().map(|(p, c)| (p, c)),
                    ));
                    let agreed = deflate
                        .as_ref()
                        .map(|(p, _)| p.to_extension().to_header_string());
                    // With deflate the echo's length differs from ours: do not check it.
                    let expect = deflate.is_none().then_some(plan.size as u64);
                    barrier.wait();
                    let window = *window_cell.get_or_init(|| schedule());
                    let tally = Rc::new(RefCell::new(Tally::new()));
                    for o in opened {
                        let conn = Conn {
                            stream: o.stream,
                            frames: frames.clone(),
                            inflight: plan.inflight,
                            window,
                            tally: tally.clone(),
                            progress: progress.clone(),
                            expect,
                        };
                        let tally = tally.clone();
                        tokio::task::spawn_local(async move {
                            if let Err(e) = conn.drive(o.leftover).await {
                                let mut t = tally.borrow_mut();
                                t.failed += 1;
                                t.first_error.get_or_insert_with(|| e.to_string());
                            }
                        });
                    }
                    tokio::time::sleep_until(window.end.into()).await;
                    // Dropping the LocalSet (when this returns) cancels the connections.
                    let mut t = std::mem::replace(&mut *tally.borrow_mut(), Tally::new());
                    t.deflate_agreed = agreed;
                    t.sent_payload_mean = frames.sent_payload_mean;
                    Ok((t, opened_in))
                })
            },
        ));
    }
    let mut total = Tally::new();
    let mut opened_in = Duration::ZERO;
    let mut error = None;
    for h in handles {
        match h.join().expect("a generator thread panicked") {
            Ok((t, d)) => {
                total.merge(t);
                opened_in = opened_in.max(d);
            }
            Err(e) => error = Some(e),
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let window = *window_cell.get().expect("the window was set");
    Ok((total, window, opened_in))
}

/// How many frame copies to pre-encode: enough for the whole window of `inflight` frames,
/// within about 256 KiB (a big frame gets one copy; it is written in parts anyway).
fn copies(size: usize, inflight: usize) -> usize {
    inflight.min((256 << 10) / (size + 14)).max(1)
}

struct Conn {
    stream: TcpStream,
    frames: Rc<Frames>,
    inflight: usize,
    window: Window,
    tally: Rc<RefCell<Tally>>,
    progress: Arc<AtomicU64>,
    expect: Option<u64>,
}

impl Conn {
    async fn drive(self, leftover: Vec<u8>) -> io::Result<()> {
        let frames = &*self.frames;
        // The ring position of the next frame to queue: `queue(k)` queues k more frames and
        // says how many bytes they add.
        let mut next = 0usize;
        let mut queue = |k: usize| {
            let mut bytes = 0;
            for _ in 0..k {
                bytes += frames.lens[next];
                next += 1;
                if next == frames.lens.len() {
                    next = 0;
                }
            }
            bytes
        };
        let mut parser = ReplyParser::new(self.expect);
        let mut buf = vec![0u8; read_buffer_size(frames.max_len(), self.inflight)];
        // Send times of the frames in flight, oldest first.
        let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(self.inflight);
        // Bytes queued but not yet written, and where in the ring the next one is.
        let mut unsent: usize;
        let mut pos: usize = 0;
        tokio::time::sleep_until(self.window.start.into()).await;
        let now = Instant::now();
        sent_at.extend(std::iter::repeat_n(now, self.inflight));
        unsent = queue(self.inflight);
        let early = parser.feed(&leftover)?;
        if early.messages > 0 {
            return Err(io::Error::other(
                "a reply arrived before any message was sent",
            ));
        }
        loop {
            // Write as much of the queue as the socket takes now.
            while unsent > 0 {
                let end = frames.bytes.len().min(pos + unsent);
                match self.stream.try_write(&frames.bytes[pos..end]) {
                    Ok(n) => {
                        unsent -= n;
                        pos = (pos + n) % frames.bytes.len();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            let n = match self.stream.try_read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(unsent > 0).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let replies = parser.feed(&buf[..n])?;
            if replies.closed {
                return Err(io::Error::other("the server sent a close frame"));
            }
            if replies.messages > 0 {
                let now = Instant::now();
                if now >= self.window.end {
                    return Ok(());
                }
                let k = replies.messages as usize;
                if k > sent_at.len() {
                    return Err(io::Error::other("more replies than messages sent"));
                }
                if now >= self.window.measure_from {
                    let mut t = self.tally.borrow_mut();
                    for sent in sent_at.drain(..k) {
                        let ns = now.saturating_duration_since(sent).as_nanos() as u64;
                        t.latency.saturating_record(ns.max(1));
                    }
                    t.messages += replies.messages;
                    t.wrong_length += replies.wrong_length;
                    t.reply_payload_bytes += replies.payload_bytes;
                } else {
                    sent_at.drain(..k);
                }
                self.progress.fetch_add(replies.messages, Ordering::Relaxed);
                sent_at.extend(std::iter::repeat_n(now, k));
                unsent += queue(k);
            }
            if n < buf.len() {
                // A short read drained the socket. Tell tokio so now, without another
                // read(2) that would only say EAGAIN: on this single-threaded runtime the
                // reactor cannot have seen newer readiness since our read, and readiness that
                // arrives later carries a new tick that this does not clear.
                let _ = self.stream.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                });
                // The next try_read returns WouldBlock without a syscall, and the loop waits
                // once the queued frames are written.
            }
        }
    }

    async fn wait(&self, want_write: bool) -> io::Result<()> {
        let interest = if want_write {
            self.tally.borrow_mut().stalled_writes += 1;
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.stream.ready(interest).await?;
        Ok(())
    }
}

/// Big enough to take a burst of `inflight` small replies in one read, at most 256 KiB.
fn read_buffer_size(frame_len: usize, inflight: usize) -> usize {
    (frame_len * inflight).clamp(16 << 10, 256 << 10)
}
