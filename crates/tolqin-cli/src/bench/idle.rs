//! `--idle N`: open N connections as fast as the server accepts them, keep them open and
//! silent, and report handshakes per second and the server's memory per idle connection.
//!
//! With `--idle-echo` each connection first sends one message and waits for its echo: the
//! memory is then that of a connection that has been used, which with permessage-deflate
//! includes whatever compression state the server keeps between messages.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::proc_stat::ProcStat;
use super::wire::{Frames, Handshake, Opened, ReplyParser};

/// `--idle-echo`: the payloads to send, one per connection in turn.
pub struct Echo {
    pub payloads: Vec<Vec<u8>>,
    pub text: bool,
}

/// The idle run's results.
pub struct IdleResult {
    pub connections: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub handshake_secs: f64,
    /// The server's RSS before the first connection and once all are open and settled.
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    /// The generator's CPU use while opening, in percent of one core.
    pub generator_cpu_percent: Option<f64>,
    /// The server's CPU time per handshake (and echo), in microseconds.
    pub server_cpu_us_per_handshake: Option<f64>,
    /// With an echo: the permessage-deflate element the server agreed to, if it did.
    pub deflate_agreed: Option<String>,
    /// With an echo: mean payload bytes of a message as sent and of its echo as received.
    pub echo_payload_bytes: Option<(f64, f64)>,
}

/// What the echoes of the opening phase add up to.
#[derive(Default)]
struct EchoTally {
    sent: u64,
    received: u64,
    count: u64,
    agreed: Option<String>,
}

/// Opens `n` connections with `concurrency` handshakes in flight at a time.
pub fn run(
    addr: SocketAddr,
    handshake: Handshake,
    n: usize,
    concurrency: usize,
    server_pid: Option<u32>,
    settle: Duration,
    echo: Option<Echo>,
) -> io::Result<IdleResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let rss_before = server_pid
            .and_then(|p| ProcStat::read(p).ok())
            .map(|s| s.rss_bytes);
        let handshake = Rc::new(handshake);
        let echo = Rc::new(echo);
        // Built from the first connection's agreed parameters, then shared.
        let frames: Rc<std::cell::OnceCell<Frames>> = Rc::default();
        let echoes: Rc<RefCell<EchoTally>> = Rc::default();
        let open: Rc<RefCell<Vec<TcpStream>>> = Rc::new(RefCell::new(Vec::with_capacity(n)));
        let next = Rc::new(std::cell::Cell::new(0usize));
        let errors: Rc<RefCell<(usize, Option<String>)>> = Rc::new(RefCell::new((0, None)));
        let own0 = ProcStat::own().ok();
        let server0 = server_pid.and_then(|p| ProcStat::read(p).ok());
        let start = Instant::now();
        let mut openers = Vec::new();
        for _ in 0..concurrency.clamp(1, n.max(1)) {
            let (handshake, open, next, errors) = (
                handshake.clone(),
                open.clone(),
                next.clone(),
                errors.clone(),
            );
            let (echo, frames, echoes) = (echo.clone(), frames.clone(), echoes.clone());
            openers.push(tokio::task::spawn_local(async move {
                let mut buf = Vec::new();
                loop {
                    let i = next.get();
                    if i >= n {
                        return;
                    }
                    next.set(i + 1);
                    let opened = match handshake.open(addr).await {
                        Ok(o) => match &*echo {
                            Some(e) => {
                                let frames = frames.get_or_init(|| {
                                    let deflate = o.deflate.zip(handshake.deflate_config());
                                    echoes.borrow_mut().agreed = deflate
                                        .as_ref()
                                        .map(|(p, _)| p.to_extension().to_header_string());
                                    Frames::new(
                                        &e.payloads,
                                        e.text,
                                        1,
                                        deflate.as_ref().map(|(p, c)| (p, *c)),
                                    )
                                });
                                echo_once(o, frames, i, &mut buf, &echoes).await
                            }
                            None => Ok(o.stream),
                        },
                        Err(e) => Err(e),
                    };
                    match opened {
                        Ok(stream) => open.borrow_mut().push(stream),
                        Err(e) => {
                            let mut errs = errors.borrow_mut();
                            errs.0 += 1;
                            errs.1.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            }));
        }
        for o in openers {
            let _ = o.await;
        }
        let handshake_secs = start.elapsed().as_secs_f64();
        let own1 = ProcStat::own().ok();
        let server1 = server_pid.and_then(|p| ProcStat::read(p).ok());
        let generator_cpu_percent = match (own0, own1) {
            (Some(a), Some(b)) => Some((b.cpu_secs - a.cpu_secs) / handshake_secs * 100.0),
            _ => None,
        };
        let opened = open.borrow().len();
        let server_cpu_us_per_handshake = match (server0, server1) {
            (Some(a), Some(b)) if opened > 0 => {
                Some((b.cpu_secs - a.cpu_secs) * 1e6 / opened as f64)
            }
            _ => None,
        };
        // Let the server finish whatever it does after a handshake (buffers shrinking, tasks
        // parking) before its memory is read.
        tokio::time::sleep(settle).await;
        let rss_after = server_pid
            .and_then(|p| ProcStat::read(p).ok())
            .map(|s| s.rss_bytes);
        let streams = std::mem::take(&mut *open.borrow_mut());
        let connections = streams.len();
        for s in streams {
            // RST instead of FIN: no TIME_WAIT left behind by thousands of sockets.
            let _ = s.set_zero_linger();
            drop(s);
        }
        let (failed, first_error) = errors.take();
        let echoes = echoes.take();
        Ok(IdleResult {
            connections,
            failed,
            first_error,
            handshake_secs,
            rss_before,
            rss_after,
            generator_cpu_percent,
            server_cpu_us_per_handshake,
            deflate_agreed: echoes.agreed,
            echo_payload_bytes: (echoes.count > 0).then(|| {
                let n = echoes.count as f64;
                (echoes.sent as f64 / n, echoes.received as f64 / n)
            }),
        })
    })
}

/// Sends frame `i` of the ring on a new connection and waits for its echo.
async fn echo_once(
    o: Opened,
    frames: &Frames,
    i: usize,
    buf: &mut Vec<u8>,
    tally: &RefCell<EchoTally>,
) -> io::Result<TcpStream> {
    let mut stream = o.stream;
    let k = i % frames.lens.len();
    let start: usize = frames.lens[..k].iter().sum();
    let frame = &frames.bytes[start..start + frames.lens[k]];
    stream.write_all(frame).await?;
    let mut parser = ReplyParser::new(None);
    let mut replies = parser.feed(&o.leftover)?;
    buf.resize(64 << 10, 0);
    while replies.messages == 0 {
        if replies.closed {
            return Err(io::Error::other("the server sent a close frame"));
        }
        let n = stream.read(buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before echoing",
            ));
        }
        replies = parser.feed(&buf[..n])?;
    }
    let mut t = tally.borrow_mut();
    t.count += 1;
    t.received += replies.payload_bytes;
    // The frame's payload: its length less the header's.
    let (_, head_len) = tolqin::proto::frame::FrameHeader::decode(frame)
        .ok()
        .flatten()
        .ok_or_else(|| io::Error::other("our own frame does not parse"))?;
    t.sent += (frame.len() - head_len) as u64;
    Ok(stream)
}
