//! `tolqin`: the command-line tool of the tolqin WebSocket toolkit.

use clap::{Parser, Subcommand};

/// jemalloc. tokio allocates each task and each socket registration aligned to 128 bytes;
/// jemalloc's size classes that are multiples of 128 serve such a block exactly, where
/// mimalloc (about 1,080 B of RSS per idle connection) and glibc (1,330 B) round it up to the
/// next class or pad it. With jemalloc an idle connection costs 956 B of RSS for its 896 B of
/// heap (`tolqin bench --idle 10000 --server-pid`, BENCHMARKS.md). jemalloc also returns freed
/// memory to the system, so a server's RSS comes back down after a burst of connections.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod bench;
mod chat;
mod conformance;
mod connect;
mod echo;
mod limits;
mod listen;
mod tls_args;

/// tolqin: a WebSocket toolkit (RFC 6455).
#[derive(Parser, Debug)]
#[command(name = "tolqin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Echo server: sends every text and binary message back unchanged.
    Echo(EchoArgs),
    /// Terminal client: type lines to send them; messages received are printed.
    Connect(connect::ConnectArgs),
    /// Conformance suite: test a server (`server URL`) or clients (`client --listen ADDR`).
    Conformance(conformance::ConformanceArgs),
    /// Chat server and its web page: open http://127.0.0.1:8080 and chat.
    Chat(chat::ChatArgs),
    /// Load generator: drive any WebSocket server and report messages/s, latency, CPU, memory.
    Bench(bench::BenchArgs),
}

/// Options of `tolqin echo`.
#[derive(clap::Args, Debug)]
pub struct EchoArgs {
    /// Address to listen on: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (a name that resolves to
    /// several addresses listens on the first that can be bound); port 0 picks a free port
    /// (the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    pub listen: listen::ListenAddr,
    /// Worker threads (1 = a single-threaded runtime). Default: one per CPU.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Limits and timeouts.
    #[command(flatten)]
    pub limits: limits::LimitArgs,
    /// wss://: --tls-cert/--tls-key or --tls-self-signed.
    #[command(flatten)]
    pub tls: tls_args::TlsArgs,
    /// Accept permessage-deflate when a client offers it (the default).
    #[arg(long, overrides_with = "no_deflate")]
    pub deflate: bool,
    /// Decline permessage-deflate.
    #[arg(long, overrides_with = "deflate")]
    pub no_deflate: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal (`tolqin connect --insecure 2>log` stays plain).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLQIN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo(args) => {
            let threads = args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            runtime(threads).block_on(echo::run(args))
        }
        Command::Conformance(args) => conformance::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Connect(args) => {
            // Exit at once when done, without dropping the runtime (it would wait for a
            // blocking task such as a name lookup); a thread may still be reading stdin.
            let runtime = runtime(1);
            let code = runtime.block_on(connect::run(args));
            std::process::exit(i32::from(code));
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tolqin: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
