//! `tolqin-bench compare`: every workload against every server in one run.
//!
//! For each repetition, for each workload, every server in turn (the order rotates from one
//! repetition to the next, so no server always runs first or last): start the server pinned to
//! CPU 0, wait for its `listening on` line, run `tolqin bench` pinned to CPU 1 with
//! `--server-pid`, read its JSON, kill the server. Then medians, min-max and ratios go to
//! `results/compare.json`, a Markdown report and an SVG bar chart.
//!
//! The compression workloads (D1-D4) run each server that can switch permessage-deflate
//! (tolqin and Node ws) twice, as two rows: `NAME/deflate` (the generator offers it, the server
//! accepts it with the same settings in both) and `NAME/plain` (no offer, the server's deflate
//! off). The deflate row over the plain row is the cost of compression.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::report;

/// Options of `tolqin-bench compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Smoke pass: one repetition of about a second per workload, 500 idle connections (100
    /// for D4); of the compression workloads only D2 and D4, unless selected.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions (default: 3, or 1 with --quick).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Seconds measured per run (default: 5, or 1 with --quick).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write compare.json, chart.svg and BENCHMARKS.md into this directory instead of
    /// bench/results/ and the repository's BENCHMARKS.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only these servers (comma-separated names; default: all available).
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// Only these workloads (comma-separated, e.g. W1,W3,C1 or D1,D2,D3,D4).
    #[arg(long, alias = "only", value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// A note on the conditions of the run, printed with the results.
    #[arg(long)]
    pub note: Option<String>,
}

/// One server in the comparison.
pub struct Server {
    pub name: &'static str,
    /// The program and its arguments; the listen address is appended as `--listen 127.0.0.1:0`.
    pub argv: Vec<String>,
    /// CPUs to pin it to (`taskset -c`).
    pub cpus: &'static str,
    /// Workloads it runs (None: all server workloads).
    pub only: Option<&'static [&'static str]>,
    /// How to turn permessage-deflate on and off (None: it cannot; the compression workloads
    /// skip it).
    pub deflate: Option<DeflateSwitch>,
}

/// The arguments that make a server accept permessage-deflate, or decline it.
#[derive(Clone, Copy)]
pub struct DeflateSwitch {
    pub on: &'static [&'static str],
    pub off: &'static [&'static str],
}

/// How a run treats permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The server as it starts by default; the generator offers no extension.
    Default,
    /// The generator offers permessage-deflate and the server accepts it.
    Deflate,
    /// The server's deflate off and no offer: plain framing, for comparison.
    Plain,
}

impl Mode {
    /// The row name of `server` in this mode.
    fn row(self, server: &str) -> String {
        match self {
            Mode::Default => server.to_owned(),
            Mode::Deflate => format!("{server}/deflate"),
            Mode::Plain => format!("{server}/plain"),
        }
    }
}

/// A server-side workload: the arguments of `tolqin bench`.
pub struct Workload {
    pub id: &'static str,
    pub title: &'static str,
    pub args: Vec<String>,
    /// `[Default]` for the framing workloads; `[Deflate, Plain]` for the compression ones,
    /// which run only the servers with a [`DeflateSwitch`].
    pub modes: &'static [Mode],
}

/// Paths of the binaries and files the run uses.
struct Env {
    root: PathBuf,
    /// Pause between a server's ready line and the load (JIT warm-up, first page faults).
    settle: Duration,
    tolqin: PathBuf,
    own: PathBuf,
    pin: bool,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut env = prepare()?;
    if args.quick {
        env.settle = Duration::from_millis(50);
    }
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 });
    let duration = args.duration.unwrap_or(if args.quick { 1.0 } else { 5.0 });
    let warmup = if args.quick { 0.3 } else { 1.0 };
    let idle = if args.quick { 500 } else { 10_000 };
    let deflate_idle = if args.quick { 100 } else { 1_000 };

    let mut servers = servers(&env);
    if !args.servers.is_empty() {
        servers.retain(|s| args.servers.iter().any(|n| n == s.name));
    }
    let workloads: Vec<Workload> = workloads(duration, warmup, idle, deflate_idle)
        .into_iter()
        .filter(|w| match args.workloads.is_empty() {
            // The smoke pass skips D1 and D3: they differ from D2 in message size alone.
            true => !(args.quick && ["D1", "D3"].contains(&w.id)),
            false => args.workloads.iter().any(|n| n == w.id),
        })
        .collect();
    let client_workloads: Vec<&str> = ["C1", "C2", "C3"]
        .into_iter()
        .filter(|w| args.workloads.is_empty() || args.workloads.iter().any(|n| n == w))
        .collect();

    let machine = machine(&env.root);
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "compare: up to {} servers x {} workloads (+{} client) x {reps} repetitions, {duration} s \
         each; pinning {}",
        servers.len(),
        workloads.len(),
        client_workloads.len(),
        if env.pin {
            "server to CPU 0, generator to CPU 1"
        } else {
            "unavailable"
        }
    );

    let mut runs: Vec<Value> = Vec::new();
    for rep in 0..reps {
        for w in &workloads {
            let pairs: Vec<(&Server, Mode)> = servers
                .iter()
                .filter(|s| s.only.is_none_or(|o| o.contains(&w.id)))
                .filter(|s| w.modes == [Mode::Default] || s.deflate.is_some())
                .flat_map(|s| w.modes.iter().map(move |m| (s, *m)))
                .collect();
            for (s, mode) in rotate(&pairs, rep) {
                let row = mode.row(s.name);
                let outcome = run_one(&env, s, w, mode, duration + warmup);
                let value = match outcome {
                    Ok(v) => {
                        eprintln!(
                            "  rep {} {} {:18} {}",
                            rep + 1,
                            w.id,
                            row,
                            report::brief(w.id, &v)
                        );
                        v
                    }
                    Err(e) => {
                        eprintln!("  rep {} {} {:18} FAILED: {e:#}", rep + 1, w.id, row);
                        json!({ "error": format!("{e:#}") })
                    }
                };
                runs.push(json!({ "workload": w.id, "server": row, "rep": rep, "result": value }));
            }
        }
        for c in &client_workloads {
            for client in rotate(&["tolqin", "tokio-tungstenite"], rep) {
                let outcome = run_client(&env, c, client, duration, warmup);
                let value = match outcome {
                    Ok(v) => {
                        eprintln!("  rep {} {c} {client:18} {}", rep + 1, report::brief(c, &v));
                        v
                    }
                    Err(e) => {
                        eprintln!("  rep {} {c} {client:18} FAILED: {e:#}", rep + 1);
                        json!({ "error": format!("{e:#}") })
                    }
                };
                runs.push(json!({ "workload": c, "server": client, "rep": rep, "result": value }));
            }
        }
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let command = command_line();
    let summary = report::summarize(&runs);
    let doc = json!({
        "command": command,
        "quick": args.quick,
        "repetitions": reps,
        "duration_secs": duration,
        "warmup_secs": warmup,
        "idle_connections": idle,
        "deflate_idle_connections": deflate_idle,
        "pinned": env.pin,
        "machine": machine,
        "loadavg_before": load_before.trim(),
        "loadavg_after": load_after.trim(),
        "note": args.note,
        "elapsed_secs": started.elapsed().as_secs_f64(),
        "workloads": workloads.iter().map(|w| json!({
            "id": w.id,
            "title": w.title,
            "args": w.args,
            "modes": w.modes.iter().map(|m| format!("{m:?}").to_lowercase()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "servers": servers.iter().map(|s| json!({
            "name": s.name,
            "argv": s.argv,
            "cpus": s.cpus,
            "deflate_on": s.deflate.map(|d| d.on),
            "deflate_off": s.deflate.map(|d| d.off),
        })).collect::<Vec<_>>(),
        "summary": summary,
        "runs": runs,
    });
    let (results_dir, markdown) = outputs(&env.root, args.out.as_deref());
    std::fs::create_dir_all(&results_dir)?;
    let name = if args.quick {
        "quick.json"
    } else {
        "compare.json"
    };
    std::fs::write(
        results_dir.join(name),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let chart = results_dir.join("chart.svg");
    write_reports(&doc, &chart, &markdown)?;
    let failed = runs
        .iter()
        .filter(|r| r["result"].get("error").is_some())
        .count();
    eprintln!(
        "compare: done in {:.0} s; wrote {}, {} and {}",
        started.elapsed().as_secs_f64(),
        results_dir.join(name).display(),
        chart.display(),
        markdown.display()
    );
    if failed > 0 {
        bail!("{failed} of {} runs failed (see above)", runs.len());
    }
    Ok(())
}

/// Options of `tolqin-bench render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// The results of an earlier `compare`.
    #[arg(default_value = "bench/results/compare.json")]
    pub json: PathBuf,
    /// Write chart.svg and BENCHMARKS.md into this directory instead of bench/results/ and
    /// the repository's BENCHMARKS.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Rewrites the chart and the Markdown report from a results file.
pub fn render(args: RenderArgs) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let json = if args.json.is_relative() && !args.json.exists() {
        root.join(&args.json)
    } else {
        args.json.clone()
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let (results_dir, markdown) = outputs(&root, args.out.as_deref());
    std::fs::create_dir_all(&results_dir)?;
    write_reports(&doc, &results_dir.join("chart.svg"), &markdown)
}

fn outputs(root: &Path, out: Option<&Path>) -> (PathBuf, PathBuf) {
    match out {
        Some(dir) => (dir.to_path_buf(), dir.join("BENCHMARKS.md")),
        None => (root.join("bench/results"), root.join("BENCHMARKS.md")),
    }
}

fn write_reports(doc: &Value, chart: &Path, markdown: &Path) -> anyhow::Result<()> {
    std::fs::write(chart, report::svg(doc))?;
    let chart_rel = relative(chart, markdown.parent().unwrap_or(Path::new(".")));
    write_markdown(markdown, &report::markdown(doc, &chart_rel))
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf())
}

const BEGIN: &str = "<!-- compare:begin (generated by tolqin-bench compare; edit outside) -->";
const END: &str = "<!-- compare:end -->";

/// Writes the generated report between the markers of an existing file, keeping what was
/// written by hand around them (analysis, profiles); a new file gets the markers.
fn write_markdown(path: &Path, generated: &str) -> anyhow::Result<()> {
    let block = format!("{BEGIN}\n{generated}{END}\n");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!(
                    "{}{block}{}",
                    &old[..b],
                    old[e + END.len()..].trim_start_matches('\n')
                )
            }
            _ => format!("{block}\n{old}"),
        },
        Err(_) => block,
    };
    std::fs::write(path, text)?;
    Ok(())
}

fn rotate<T: Copy>(items: &[T], by: usize) -> Vec<T> {
    let mut v: Vec<T> = items.to_vec();
    if !v.is_empty() {
        let k = by % v.len();
        v.rotate_left(k);
    }
    v
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

/// The command that produced the results, quoted for a POSIX shell.
fn command_line() -> String {
    let mut c = String::from("cargo run --release -p tolqin-bench -- compare");
    for arg in std::env::args().skip(2) {
        c.push(' ');
        if arg.is_empty()
            || arg.contains(|ch: char| !(ch.is_ascii_alphanumeric() || "-_./=,:".contains(ch)))
        {
            c.push('\'');
            c.push_str(&arg.replace('\'', "'\\''"));
            c.push('\'');
        } else {
            c.push_str(&arg);
        }
    }
    c
}

/// Builds `tolqin` (release) and finds everything the run needs.
fn prepare() -> anyhow::Result<Env> {
    let root = workspace_root()?;
    let own = std::env::current_exe()?;
    let bin_dir = own
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    // `cargo run -p tolqin-bench` builds only this crate: build the `tolqin` binary too, in
    // the same profile, so the run never measures a stale one.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = bin_dir.ends_with("release");
    let mut build = Command::new(cargo);
    build
        .current_dir(&root)
        .args(["build", "-p", "tolqin-cli", "--bin", "tolqin"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build for tolqin")?;
    if !status.success() {
        bail!("cargo build -p tolqin-cli failed");
    }
    if !release {
        eprintln!("compare: WARNING: not a --release build; the numbers mean nothing");
    }
    let pin = Command::new("taskset")
        .args(["-c", "1", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Ok(Env {
        settle: Duration::from_millis(200),
        tolqin: bin_dir.join("tolqin"),
        own,
        root,
        pin,
    })
}

fn servers(env: &Env) -> Vec<Server> {
    let tolqin = env.tolqin.display().to_string();
    let own = env.own.display().to_string();
    let mut v = vec![
        Server {
            name: "tolqin",
            argv: vec![
                tolqin.clone(),
                "echo".into(),
                "--threads".into(),
                "1".into(),
            ],
            cpus: "0",
            only: None,
            // `tolqin echo` accepts permessage-deflate by default.
            deflate: Some(DeflateSwitch {
                on: &[],
                off: &["--no-deflate"],
            }),
        },
        Server {
            name: "fastwebsockets",
            argv: vec![own.clone(), "serve-fastwebsockets".into()],
            cpus: "0",
            only: None,
            deflate: None,
        },
        Server {
            name: "tokio-tungstenite",
            argv: vec![own.clone(), "serve-tungstenite".into()],
            cpus: "0",
            only: None,
            deflate: None,
        },
        Server {
            name: "raw-tcp",
            argv: vec![own.clone(), "serve-raw".into()],
            cpus: "0",
            only: None,
            deflate: None,
        },
    ];
    let node_dir = env.root.join("bench/node");
    if node_dir.join("node_modules/ws").is_dir() {
        v.push(Server {
            name: "node-ws",
            argv: vec![
                "node".into(),
                node_dir.join("echo_server.js").display().to_string(),
            ],
            cpus: "0",
            only: None,
            // echo_server.js has deflate off unless asked, then uses tolqin's settings.
            deflate: Some(DeflateSwitch {
                on: &["--deflate"],
                off: &[],
            }),
        });
    } else {
        eprintln!("compare: skipping node-ws (run `npm ci --prefix bench/node` to install it)");
    }
    // Scaling: the same server on two threads, on both CPUs (the generator shares CPU 1).
    v.push(Server {
        name: "tolqin-2-threads",
        argv: vec![tolqin, "echo".into(), "--threads".into(), "2".into()],
        cpus: "0,1",
        only: Some(&["W1", "W2", "W6"]),
        deflate: None,
    });
    v
}

fn workloads(duration: f64, warmup: f64, idle: usize, deflate_idle: usize) -> Vec<Workload> {
    let timing = |mut a: Vec<String>| {
        a.extend([
            "--duration".into(),
            duration.to_string(),
            "--warmup".into(),
            warmup.to_string(),
        ]);
        a
    };
    let s = |x: &str| x.split_whitespace().map(String::from).collect::<Vec<_>>();
    vec![
        Workload {
            id: "W1",
            title: "100 connections x 20 B text",
            args: timing(s("--connections 100 --size 20 --text")),
            modes: &[Mode::Default],
        },
        Workload {
            id: "W2",
            title: "10 connections x 16 KiB binary",
            args: timing(s("--connections 10 --size 16384 --binary")),
            modes: &[Mode::Default],
        },
        Workload {
            id: "W3",
            title: "1 connection x 1 MiB binary",
            args: timing(s("--connections 1 --size 1048576 --binary")),
            modes: &[Mode::Default],
        },
        Workload {
            id: "W4",
            title: "1 connection x 20 B: round-trip latency",
            args: timing(s("--connections 1 --size 20 --text")),
            modes: &[Mode::Default],
        },
        Workload {
            id: "W5",
            title: "idle connections: memory and handshakes/s",
            args: vec![
                "--idle".into(),
                idle.to_string(),
                "--settle".into(),
                if idle < 10_000 { "0.3" } else { "1" }.into(),
            ],
            modes: &[Mode::Default],
        },
        // Compression: JSON-like messages (a ring of distinct ones, see `tolqin bench
        // --payload json`), 10 connections each with one message in flight, with and
        // without permessage-deflate. 20 B is under the 32 B threshold of both servers: D1
        // measures what negotiating deflate costs when nothing is compressed.
        Workload {
            id: "D1",
            title: "10 connections x 20 B JSON text, deflate vs plain",
            args: timing(s("--connections 10 --size 20 --text --payload json")),
            modes: &[Mode::Deflate, Mode::Plain],
        },
        Workload {
            id: "D2",
            title: "10 connections x 1 KiB JSON text, deflate vs plain",
            args: timing(s("--connections 10 --size 1024 --text --payload json")),
            modes: &[Mode::Deflate, Mode::Plain],
        },
        Workload {
            id: "D3",
            title: "10 connections x 64 KiB JSON text, deflate vs plain",
            args: timing(s("--connections 10 --size 65536 --text --payload json")),
            modes: &[Mode::Deflate, Mode::Plain],
        },
        // Memory: each connection echoes one 16 KiB JSON message, then stays idle; the
        // server's RSS growth per connection is what a used connection keeps (with deflate,
        // its compressor: both servers keep context takeover, so it is not freed).
        Workload {
            id: "D4",
            title: "memory per connection after one 16 KiB JSON echo, deflate vs plain",
            args: vec![
                "--idle".into(),
                deflate_idle.to_string(),
                "--idle-echo".into(),
                "--size".into(),
                "16384".into(),
                "--text".into(),
                "--payload".into(),
                "json".into(),
                "--settle".into(),
                if deflate_idle < 1_000 { "0.3" } else { "1" }.into(),
            ],
            modes: &[Mode::Deflate, Mode::Plain],
        },
        Workload {
            id: "W6",
            title: "100 connections x 20 B text, 16 in flight",
            args: timing(s("--connections 100 --size 20 --text --inflight 16")),
            modes: &[Mode::Default],
        },
    ]
}

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pinned(env: &Env, cpus: &str, argv: &[String]) -> Command {
    let mut c = if env.pin {
        let mut c = Command::new("taskset");
        c.args(["-c", cpus]).args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    c.current_dir(&env.root);
    c
}

/// Starts a server and waits for its `listening on ws://...` line.
fn start(env: &Env, s: &Server) -> anyhow::Result<(Guard, String)> {
    let mut argv = s.argv.clone();
    argv.extend(["--listen".into(), "127.0.0.1:0".into()]);
    let mut cmd = pinned(env, s.cpus, &argv);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(
        cmd.spawn()
            .with_context(|| format!("starting {}", s.name))?,
    );
    let stdout = child.0.stdout.take().context("stdout")?;
    let stderr = child.0.stderr.take().context("stderr")?;
    // Drain stderr so that a chatty server never blocks on it.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink());
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
                break;
            }
        }
        for _ in lines {}
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .with_context(|| format!("{} did not print its ready line", s.name))?;
    Ok((child, url))
}

/// Runs a child to completion within `limit` and returns its stdout.
fn run_bounded(mut cmd: Command, limit: Duration) -> anyhow::Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn()?);
    let mut stdout = child.0.stdout.take().context("stdout")?;
    let mut stderr = child.0.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            bail!("timed out after {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        bail!("{status}: {}", err.trim());
    }
    Ok(out)
}

fn run_one(env: &Env, s: &Server, w: &Workload, mode: Mode, secs: f64) -> anyhow::Result<Value> {
    let switch = match (mode, s.deflate) {
        (Mode::Default, _) => &[][..],
        (Mode::Deflate, Some(d)) => d.on,
        (Mode::Plain, Some(d)) => d.off,
        (_, None) => bail!("{} cannot switch permessage-deflate", s.name),
    };
    let mut server_argv = s.argv.clone();
    server_argv.extend(switch.iter().map(|a| a.to_string()));
    let server = Server {
        argv: server_argv,
        ..*s
    };
    let (server, url) = start(env, &server)?;
    // Let the server settle (node's JIT, page faults of a fresh process) before measuring.
    std::thread::sleep(env.settle);
    let mut argv = vec![env.tolqin.display().to_string(), "bench".into(), url];
    argv.extend(w.args.iter().cloned());
    if mode == Mode::Deflate {
        argv.push("--deflate".into());
    }
    argv.extend([
        "--json".into(),
        "--server-pid".into(),
        server.0.id().to_string(),
    ]);
    let cmd = pinned(env, "1", &argv);
    let out = run_bounded(cmd, Duration::from_secs_f64(secs + 60.0))?;
    drop(server);
    let v: Value = serde_json::from_str(out.trim()).context("parsing tolqin bench --json")?;
    // A deflate row must have compressed, a plain one must not have: check what was agreed.
    let agreed = v
        .pointer("/deflate_agreed")
        .or_else(|| v.pointer("/echo/deflate_agreed"))
        .is_some_and(|a| a.is_string());
    match mode {
        Mode::Deflate if !agreed => bail!("the server did not accept permessage-deflate"),
        Mode::Plain if agreed => bail!("permessage-deflate was agreed in a plain run"),
        _ => {}
    }
    Ok(v)
}

/// The fixed server of the client-side workloads: fastwebsockets, the fastest peer.
fn run_client(
    env: &Env,
    workload: &str,
    client: &str,
    duration: f64,
    warmup: f64,
) -> anyhow::Result<Value> {
    let server = Server {
        name: "fastwebsockets",
        argv: vec![env.own.display().to_string(), "serve-fastwebsockets".into()],
        cpus: "0",
        only: None,
        deflate: None,
    };
    let (guard, url) = start(env, &server)?;
    std::thread::sleep(env.settle);
    let shape = match workload {
        "C1" => "--connections 100 --size 20 --text",
        "C2" => "--connections 10 --size 16384",
        _ => "--connections 1 --size 1048576",
    };
    let mut argv = vec![
        env.own.display().to_string(),
        "client-load".into(),
        url,
        "--client".into(),
        client.into(),
        "--duration".into(),
        duration.to_string(),
        "--warmup".into(),
        warmup.to_string(),
    ];
    argv.extend(shape.split_whitespace().map(String::from));
    let out = run_bounded(
        pinned(env, "1", &argv),
        Duration::from_secs_f64(duration + warmup + 60.0),
    )?;
    drop(guard);
    Ok(serde_json::from_str(out.trim())?)
}

/// The machine: CPUs, CPU model, kernel, toolchain.
fn machine(root: &Path) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned());
    let cmd = |p: &str, a: &[&str]| {
        Command::new(p)
            .args(a)
            .current_dir(root)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let mem_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    json!({
        "nproc": cmd("nproc", &[]),
        "cpu_model": model,
        "kernel": cmd("uname", &["-sr"]),
        "memory_gib": mem_kib.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0),
        "rustc": cmd("rustc", &["--version"]),
        "node": cmd("node", &["--version"]),
    })
}
