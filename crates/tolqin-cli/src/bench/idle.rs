//! `--idle N`: open N connections as fast as the server accepts them, keep them open and
//! silent, and report handshakes per second and the server's memory per idle connection.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::proc_stat::ProcStat;
use super::wire::Handshake;

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
    /// The server's CPU time per handshake, in microseconds.
    pub server_cpu_us_per_handshake: Option<f64>,
}

/// Opens `n` connections with `concurrency` handshakes in flight at a time.
pub fn run(
    addr: SocketAddr,
    handshake: Handshake,
    n: usize,
    concurrency: usize,
    server_pid: Option<u32>,
    settle: Duration,
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
        let open: Rc<RefCell<Vec<tokio::net::TcpStream>>> =
            Rc::new(RefCell::new(Vec::with_capacity(n)));
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
            openers.push(tokio::task::spawn_local(async move {
                loop {
                    let i = next.get();
                    if i >= n {
                        return;
                    }
                    next.set(i + 1);
                    match handshake.open(addr).await {
                        Ok(o) => open.borrow_mut().push(o.stream),
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
        Ok(IdleResult {
            connections,
            failed,
            first_error,
            handshake_secs,
            rss_before,
            rss_after,
            generator_cpu_percent,
            server_cpu_us_per_handshake,
        })
    })
}
