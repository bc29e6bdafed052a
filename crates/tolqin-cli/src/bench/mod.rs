//! `tolqin bench URL`: a load generator for any WebSocket server, like `wrk` for WebSockets.
//!
//! ```text
//! tolqin bench ws://127.0.0.1:9001 --connections 100 --size 20 --text --duration 10
//! tolqin bench ws://127.0.0.1:9001 --connections 100 --size 20 --inflight 16 --server-pid 1234
//! tolqin bench ws://127.0.0.1:9001 --idle 10000 --server-pid 1234
//! tolqin bench ws://127.0.0.1:9001 --connections 10 --size 1024 --text --payload json --deflate
//! ```
//!
//! Every connection keeps `--inflight` messages outstanding (1: strict request-reply) and
//! sends a new one for each echo it gets back. At the end it reports messages/s, MB/s each
//! way, round-trip latency percentiles (HDR histogram, nanosecond resolution) and, given
//! `--server-pid`, the server's CPU time per message and its resident memory. `--idle N`
//! opens N silent connections instead and reports handshakes/s and the server's memory per
//! idle connection. `--json` prints one JSON object for machines.
//!
//! ## Cheaper than the servers it drives
//!
//! The generator has no general-purpose WebSocket stack on its hot path: the masked frames are
//! encoded once (masking, and with `--deflate` compression, included) and written again and
//! again; replies are counted from their frame headers and their payloads skipped unread
//! (compressed ones are never inflated); one `write(2)` sends the frames owed for a whole
//! batch of replies; a short `read(2)` is taken as "drained" so no read ends in `EAGAIN`.
//! The handshake request is encoded once too. Plain `ws://` only: TLS would measure TLS.
//!
//! ## When the generator is the bottleneck
//!
//! The report prints the generator's own CPU use. One generator thread can use at most one
//! core: when it shows about 100% (or `--threads` x 100%), the number measured is the
//! generator's ceiling, not the server's, and the server's CPU use will be below 100%. Give the
//! generator more threads (and cores), or compare servers by their CPU time per message
//! (`--server-pid`), which does not depend on who is the bottleneck. Pin the server and the
//! generator to different cores (`taskset -c 0 SERVER`, `taskset -c 1 tolqin bench ...`) so
//! they do not compete for one.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod idle;
mod load;
mod payload;
mod proc_stat;
mod wire;

use proc_stat::ProcStat;

/// Options of `tolqin bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Is the generator the bottleneck? The report shows the generator's CPU use and CPU time per
message. Near 100% per generator thread means the number is the generator's ceiling, not the
server's: add --threads (and cores), and compare servers by their CPU time per message
(--server-pid), which does not depend on who the bottleneck is. Pin server and generator to
different cores: taskset -c 0 SERVER; taskset -c 1 tolqin bench URL.")]
pub struct BenchArgs {
    /// The server to drive: ws://HOST:PORT/PATH (plain ws:// only).
    pub url: String,
    /// Connections, all open at once.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: usize,
    /// Payload bytes per message.
    #[arg(long, short = 's', default_value_t = 20)]
    pub size: usize,
    /// What the messages carry: `filler` (fixed ASCII, framing only) or `json` (chat and
    /// telemetry records with varying values, for measuring compression).
    #[arg(long, value_enum, default_value_t = payload::PayloadKind::Filler)]
    pub payload: payload::PayloadKind,
    /// Messages in flight per connection (1: wait for each echo before sending the next).
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Send text messages (ASCII).
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,
    /// Send binary messages (the default).
    #[arg(long)]
    pub binary: bool,
    /// The server's process id: report its CPU time per message and its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Open this many idle connections instead; report handshakes/s and memory per connection.
    #[arg(long)]
    pub idle: Option<usize>,
    /// With --idle: handshakes in flight at a time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// With --idle: each connection first sends one message (--size, --payload, --deflate)
    /// and waits for its echo, so the memory measured is that of a connection that has
    /// been used (with deflate: its compression state too).
    #[arg(long, requires = "idle")]
    pub idle_echo: bool,
    /// With --idle: seconds to wait after the last handshake before reading the server's
    /// memory.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Generator threads (each a single-threaded runtime with its share of the connections).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Offer permessage-deflate (client_no_context_takeover, so the compressed frame is also
    /// prepared once). Without it, no extension is offered: plain framing is measured.
    #[arg(long)]
    pub deflate: bool,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> std::io::Result<()> {
    let uri: http::Uri = args
        .url
        .parse()
        .map_err(|e| invalid(format!("bad URL: {e}")))?;
    match uri.scheme_str() {
        Some("ws") | Some("http") => {}
        Some("wss") | Some("https") => {
            return Err(invalid(
                "the generator speaks plain ws:// only (with TLS it would measure TLS)",
            ));
        }
        _ => return Err(invalid("the URL must start with ws://")),
    }
    let addr = resolve(&uri)?;
    let handshake = wire::Handshake::new(uri, args.deflate)?;
    if let Some(n) = args.idle {
        return run_idle(&args, addr, handshake, n);
    }
    if args.connections == 0 || args.inflight == 0 || args.threads == 0 {
        return Err(invalid(
            "--connections, --inflight and --threads must be at least 1",
        ));
    }
    let plan = Arc::new(load::Plan {
        addr,
        handshake,
        connections: args.connections,
        size: args.size,
        payload: args.payload,
        text: args.text,
        inflight: args.inflight,
        threads: args.threads.min(args.connections),
    });
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.01));
    let (tx, rx) = std::sync::mpsc::channel();
    let schedule = move || {
        // A short pause so every thread is waiting when the load starts.
        let start = Instant::now() + Duration::from_millis(20);
        let w = load::Window {
            start,
            measure_from: start + warmup,
            end: start + warmup + duration,
        };
        let _ = tx.send(w);
        w
    };
    let progress = Arc::new(AtomicU64::new(0));
    let worker = {
        let (plan, progress) = (plan.clone(), progress.clone());
        std::thread::spawn(move || load::run(plan, schedule, progress))
    };
    let Ok(window) = rx.recv() else {
        // The workers ended before the load began: a connection or handshake failed.
        return match worker.join().expect("the generator does not panic") {
            Err(e) => Err(e),
            Ok(_) => Err(std::io::Error::other("the load never started")),
        };
    };
    let bar = std::io::stderr().is_terminal();
    sleep_until(window.measure_from, &progress, &window, bar);
    let before = Samples::take(args.server_pid);
    sleep_until(window.end, &progress, &window, bar);
    let after = Samples::take(args.server_pid);
    if bar {
        eprint!("\r{:79}\r", "");
    }
    let (tally, window, opened_in) = worker.join().expect("the generator does not panic")?;
    let report = LoadReport::new(&args, &plan, tally, window, opened_in, before, after);
    report.print(args.json)
}

fn run_idle(
    args: &BenchArgs,
    addr: SocketAddr,
    handshake: wire::Handshake,
    n: usize,
) -> std::io::Result<()> {
    let r = idle::run(
        addr,
        handshake,
        n,
        args.concurrency,
        args.server_pid,
        Duration::from_secs_f64(args.settle.max(0.0)),
        args.idle_echo.then(|| idle::Echo {
            payloads: payload::payloads(args.payload, args.size),
            text: args.text,
        }),
    )?;
    let per_conn = match (r.rss_before, r.rss_after) {
        (Some(b), Some(a)) if r.connections > 0 => {
            Some((a as f64 - b as f64) / r.connections as f64)
        }
        _ => None,
    };
    let rate = r.connections as f64 / r.handshake_secs.max(1e-9);
    if args.json {
        let v = serde_json::json!({
            "mode": "idle",
            "url": args.url,
            "connections": r.connections,
            "failed": r.failed,
            "first_error": r.first_error,
            "handshake_secs": r.handshake_secs,
            "handshakes_per_sec": rate,
            "concurrency": args.concurrency,
            "echo": args.idle_echo.then(|| serde_json::json!({
                "size": args.size,
                "payload": args.payload.name(),
                "deflate_offered": args.deflate,
                "deflate_agreed": r.deflate_agreed,
                "sent_payload_bytes_per_message": r.echo_payload_bytes.map(|b| b.0),
                "reply_payload_bytes_per_message": r.echo_payload_bytes.map(|b| b.1),
            })),
            "generator_cpu_percent": r.generator_cpu_percent,
            "server": args.server_pid.map(|_| serde_json::json!({
                "cpu_us_per_handshake": r.server_cpu_us_per_handshake,
                "rss_before": r.rss_before,
                "rss_after": r.rss_after,
                "bytes_per_connection": per_conn,
            })),
        });
        println!("{v}");
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "tolqin bench {}: {} idle connections ({} failed), {} handshakes in flight",
            args.url, r.connections, r.failed, args.concurrency
        )?;
        writeln!(
            out,
            "  handshakes/s   {:.0} ({} in {:.2} s)",
            rate, r.connections, r.handshake_secs
        )?;
        if let Some((sent, got)) = r.echo_payload_bytes {
            writeln!(
                out,
                "  one echo each  {} B {}: {sent:.0} B sent, {got:.0} B back per message ({})",
                args.size,
                args.payload.name(),
                r.deflate_agreed.as_deref().unwrap_or("no deflate")
            )?;
        }
        if let Some(cpu) = r.generator_cpu_percent {
            writeln!(out, "  generator CPU  {cpu:.0}% while opening")?;
        }
        if let Some(us) = r.server_cpu_us_per_handshake {
            writeln!(out, "  server CPU     {us:.1} us per handshake")?;
        }
        if let (Some(b), Some(a), Some(p)) = (r.rss_before, r.rss_after, per_conn) {
            writeln!(
                out,
                "  server RSS     {:.1} MB -> {:.1} MB: {:.0} bytes per idle connection",
                b as f64 / 1e6,
                a as f64 / 1e6,
                p
            )?;
        }
        if let Some(e) = &r.first_error {
            writeln!(out, "  first error    {e}")?;
        }
    }
    if r.connections == 0 {
        return Err(std::io::Error::other(
            r.first_error
                .unwrap_or_else(|| "no connection opened".into()),
        ));
    }
    Ok(())
}

/// Sleeps until `deadline`, drawing the progress bar on stderr if it is a terminal.
fn sleep_until(deadline: Instant, progress: &AtomicU64, w: &load::Window, bar: bool) {
    let total = w.end.duration_since(w.start).as_secs_f64();
    let mut last = (Instant::now(), progress.load(Ordering::Relaxed));
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(250)));
        if bar {
            let now = Instant::now();
            let count = progress.load(Ordering::Relaxed);
            let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, count);
            let done = now
                .saturating_duration_since(w.start)
                .as_secs_f64()
                .min(total);
            let width = 30;
            let filled = ((done / total) * width as f64) as usize;
            let phase = if now < w.measure_from {
                "warm-up"
            } else {
                "measuring"
            };
            eprint!(
                "\r[{}{}] {done:5.1}/{total:.1} s {phase:9} {:>12} msg/s ",
                "#".repeat(filled),
                " ".repeat(width - filled.min(width)),
                thousands(rate)
            );
            let _ = std::io::stderr().flush();
        }
    }
}

/// CPU and memory of the server and of the generator at one instant.
struct Samples {
    at: Instant,
    server: Option<ProcStat>,
    own: Option<ProcStat>,
    machine_busy: Option<f64>,
}

impl Samples {
    fn take(server_pid: Option<u32>) -> Self {
        Samples {
            at: Instant::now(),
            server: server_pid.and_then(|p| ProcStat::read(p).ok()),
            own: ProcStat::own().ok(),
            machine_busy: proc_stat::machine_busy_secs().ok(),
        }
    }
}

struct LoadReport {
    json: serde_json::Value,
    text: String,
}

impl LoadReport {
    fn new(
        args: &BenchArgs,
        plan: &load::Plan,
        tally: load::Tally,
        window: load::Window,
        opened_in: Duration,
        before: Samples,
        after: Samples,
    ) -> Self {
        let secs = window.end.duration_since(window.measure_from).as_secs_f64();
        let wall = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let rate = tally.messages as f64 / secs;
        let mb = rate * plan.size as f64 / 1e6;
        let h = &tally.latency;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        let (p50, p99, p999, max) = (us(0.5), us(0.99), us(0.999), h.max() as f64 / 1e3);
        let own_cpu = match (before.own, after.own) {
            (Some(b), Some(a)) => Some((a.cpu_secs - b.cpu_secs) / wall * 100.0),
            _ => None,
        };
        // Per message over the same window as the server's figure: compare the two to check
        // that the generator is the cheaper side.
        let own_per_message = match (before.own, after.own) {
            (Some(b), Some(a)) if tally.messages > 0 => {
                Some((a.cpu_secs - b.cpu_secs) * 1e6 / tally.messages as f64)
            }
            _ => None,
        };
        let server = match (before.server, after.server) {
            (Some(b), Some(a)) => {
                let cpu = a.cpu_secs - b.cpu_secs;
                Some((
                    cpu / wall * 100.0,
                    if tally.messages > 0 {
                        cpu * 1e6 / tally.messages as f64
                    } else {
                        f64::NAN
                    },
                    a.rss_bytes,
                ))
            }
            _ => None,
        };
        // Everything else the machine ran meanwhile, in percent of one core: a benchmark that
        // shares its cores with other work measures the sharing too.
        let others_cpu = match (before.machine_busy, after.machine_busy) {
            (Some(b), Some(a)) => {
                let ours = |x: Option<ProcStat>, y: Option<ProcStat>| match (x, y) {
                    (Some(x), Some(y)) => y.cpu_secs - x.cpu_secs,
                    _ => 0.0,
                };
                let busy = a - b - ours(before.own, after.own) - ours(before.server, after.server);
                Some((busy / wall * 100.0).max(0.0))
            }
            _ => None,
        };
        let kind = if plan.text { "text" } else { "binary" };
        // What the messages weighed on the wire: with deflate, the server's compression ratio.
        let reply_mean =
            (tally.messages > 0).then(|| tally.reply_payload_bytes as f64 / tally.messages as f64);
        let reply_ratio = reply_mean
            .filter(|m| *m > 0.0)
            .map(|m| plan.size as f64 / m);
        let json = serde_json::json!({
            "mode": "load",
            "url": args.url,
            "connections": plan.connections,
            "size": plan.size,
            "kind": kind,
            "inflight": plan.inflight,
            "threads": plan.threads,
            "payload": plan.payload.name(),
            "deflate": args.deflate,
            "deflate_agreed": tally.deflate_agreed,
            "wire": {
                "sent_payload_bytes_per_message": tally.sent_payload_mean,
                "reply_payload_bytes_per_message": reply_mean,
                "reply_ratio": reply_ratio,
            },
            "warmup_secs": args.warmup,
            "duration_secs": secs,
            "connect_secs": opened_in.as_secs_f64(),
            "messages": tally.messages,
            "messages_per_sec": rate,
            "mb_per_sec": mb,
            "latency_us": {
                "p50": p50, "p99": p99, "p999": p999, "max": max, "mean": h.mean() / 1e3,
                "count": h.len(),
            },
            "generator_cpu_percent": own_cpu,
            "generator_cpu_us_per_message": own_per_message,
            "others_cpu_percent": others_cpu,
            "server": server.map(|(cpu, per, rss)| serde_json::json!({
                "cpu_percent": cpu,
                "cpu_us_per_message": per,
                "rss_bytes": rss,
            })),
            "errors": {
                "failed_connections": tally.failed,
                "wrong_length": tally.wrong_length,
                "first_error": tally.first_error,
            },
        });
        let mut text = format!(
            "tolqin bench {}: {} connections x {} B {kind} ({}), {} in flight, {secs:.1} s (+{:.1} s warm-up)\n",
            args.url,
            plan.connections,
            plan.size,
            plan.payload.name(),
            plan.inflight,
            args.warmup
        );
        if args.deflate {
            text += &format!(
                "  deflate        {}\n",
                tally
                    .deflate_agreed
                    .as_deref()
                    .unwrap_or("offered, declined by the server")
            );
        }
        if let (true, Some(m)) = (tally.deflate_agreed.is_some(), reply_mean) {
            text += &format!(
                "  on the wire    {:.0} B sent, {m:.0} B back per message ({:.2}x compressed)\n",
                tally.sent_payload_mean,
                plan.size as f64 / m.max(1e-9)
            );
        }
        text += &format!("  messages/s     {}\n", thousands(rate));
        text += &format!("  MB/s           {mb:.2} each way\n");
        text += &format!(
            "  latency        p50 {} p99 {} p99.9 {} max {}\n",
            fmt_us(p50),
            fmt_us(p99),
            fmt_us(p999),
            fmt_us(max)
        );
        if let Some(cpu) = own_cpu {
            let hint = if cpu > 90.0 * plan.threads as f64 {
                "  <- near its limit: the generator may be the bottleneck"
            } else {
                ""
            };
            let per = own_per_message.map_or(String::new(), |p| format!(", {p:.2} us per message"));
            text += &format!(
                "  generator CPU  {cpu:.0}% ({} thread(s)){per}{hint}\n",
                plan.threads
            );
        }
        if let Some(o) = others_cpu.filter(|o| *o >= 10.0) {
            text += &format!(
                "  other processes used {o:.0}% of a core meanwhile: the numbers include sharing\n"
            );
        }
        if let Some((cpu, per, rss)) = server {
            text += &format!(
                "  server         {cpu:.0}% CPU, {per:.2} us CPU per message, RSS {:.1} MB\n",
                rss as f64 / 1e6
            );
        }
        if tally.failed > 0 || tally.wrong_length > 0 {
            text += &format!(
                "  errors         {} connections failed, {} replies of the wrong length{}\n",
                tally.failed,
                tally.wrong_length,
                tally
                    .first_error
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            );
        }
        LoadReport { json, text }
    }

    fn print(&self, json: bool) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", self.json)
        } else {
            write!(out, "{}", self.text)
        }
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} us")
    }
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn resolve(uri: &http::Uri) -> std::io::Result<SocketAddr> {
    let auth = uri
        .authority()
        .ok_or_else(|| invalid("the URL has no host"))?;
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    let port = auth.port_u16().unwrap_or(80);
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("{host} does not resolve")))
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.into())
}
