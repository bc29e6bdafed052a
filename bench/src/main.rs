//! `tolqin-bench`: the benchmark harness of tolqin.
//!
//! * `compare`: every workload (W1-W6, the compression workloads D1-D4, and the client side
//!   C1-C3) against every server, in one run, alternating servers, three repetitions; writes
//!   `bench/results/compare.json`, `bench/results/chart.svg` and `BENCHMARKS.md`.
//! * `serve-tungstenite`, `serve-fastwebsockets`, `serve-raw`: the peer echo servers
//!   (single-threaded), each printing `listening on ws://ADDR:PORT` when ready.
//! * `client-load`: the client-side workloads with tolqin's or tokio-tungstenite's client.
//!
//! ```text
//! cargo run --release -p tolqin-bench -- compare
//! cargo run --release -p tolqin-bench -- compare --quick --out /tmp/bench
//! ```

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

mod client_load;
mod compare;
mod report;
mod servers;

/// The benchmark harness of tolqin.
#[derive(Parser, Debug)]
#[command(name = "tolqin-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every workload against every server and write the results.
    Compare(compare::CompareArgs),
    /// tokio-tungstenite echo server (single-threaded).
    ServeTungstenite(Listen),
    /// fastwebsockets echo server on hyper (single-threaded).
    ServeFastwebsockets(Listen),
    /// Raw TCP echo after the handshake: the bound.
    ServeRaw(Listen),
    /// Client-side load with tolqin's or tokio-tungstenite's client (prints JSON).
    ClientLoad(client_load::ClientArgs),
    /// Re-render BENCHMARKS.md and the chart from a compare.json (no measuring).
    Render(compare::RenderArgs),
}

#[derive(clap::Args, Debug)]
struct Listen {
    /// Address to listen on; port 0 picks a free one (the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Compare(a) => compare::run(a),
        Command::ServeTungstenite(l) => servers::tungstenite(l.listen),
        Command::ServeFastwebsockets(l) => servers::fastwebsockets(l.listen),
        Command::ServeRaw(l) => servers::raw(l.listen),
        Command::ClientLoad(a) => client_load::run(a),
        Command::Render(a) => compare::render(a),
    }
}
