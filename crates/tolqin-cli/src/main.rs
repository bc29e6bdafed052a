//! `tolqin`: the command-line tool of the tolqin WebSocket toolkit.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

mod echo;

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
}

/// Options of `tolqin echo`.
#[derive(clap::Args, Debug)]
pub struct EchoArgs {
    /// Address to listen on; port 0 picks a free port (the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Worker threads (1 = a single-threaded runtime). Default: one per CPU.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_message_size: usize,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
