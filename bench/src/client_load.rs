//! The client side: the same echo workloads with a real WebSocket client as the generator
//! (tolqin's or tokio-tungstenite's), against one fixed server. Each connection sends one
//! message, waits for its echo, and repeats; the client's own CPU time per message is the
//! figure that does not depend on the server.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};

/// Which client library drives the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// tolqin's client.
    Tolqin,
    /// tokio-tungstenite's client.
    TokioTungstenite,
}

/// Options of `tolqin-bench client-load`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The echo server: ws://HOST:PORT/
    pub url: String,
    /// The client library.
    #[arg(long, value_enum)]
    pub client: ClientKind,
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: usize,
    #[arg(long, short = 's', default_value_t = 20)]
    pub size: usize,
    #[arg(long, short = 'd', default_value_t = 5.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Text messages (default: binary).
    #[arg(long)]
    pub text: bool,
}

/// Runs the load on a single-threaded runtime and prints one JSON object.
pub fn run(args: ClientArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, drive(args.clone()))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

#[derive(serde::Serialize)]
struct ClientResult {
    client: ClientKind,
    connections: usize,
    size: usize,
    messages: u64,
    duration_secs: f64,
    messages_per_sec: f64,
    mb_per_sec: f64,
    client_cpu_percent: f64,
    client_cpu_us_per_message: f64,
    failed: u64,
}

async fn drive(args: ClientArgs) -> anyhow::Result<ClientResult> {
    let count = Rc::new(Cell::new(0u64));
    let failed = Rc::new(Cell::new(0u64));
    let payload: bytes::Bytes = (0..args.size).map(|i| b'a' + (i % 26) as u8).collect();
    let message = Prebuilt::new(args.client, &payload, args.text);
    let mut sockets = Vec::new();
    for _ in 0..args.connections {
        sockets.push(Socket::open(&args).await?);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let from = start + Duration::from_secs_f64(args.warmup);
    let end = from + Duration::from_secs_f64(args.duration);
    for mut socket in sockets {
        let (count, failed) = (count.clone(), failed.clone());
        let message = message.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(start.into()).await;
            loop {
                if socket.round_trip(&message).await.is_err() {
                    failed.set(failed.get() + 1);
                    return;
                }
                let now = Instant::now();
                if now >= end {
                    return;
                }
                if now >= from {
                    count.set(count.get() + 1);
                }
            }
        });
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu0 = own_cpu_secs()?;
    let t0 = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = own_cpu_secs()?;
    let wall = t0.elapsed().as_secs_f64();
    let secs = end.duration_since(from).as_secs_f64();
    let messages = count.get();
    Ok(ClientResult {
        client: args.client,
        connections: args.connections,
        size: args.size,
        messages,
        duration_secs: secs,
        messages_per_sec: messages as f64 / secs,
        mb_per_sec: messages as f64 * args.size as f64 / secs / 1e6,
        client_cpu_percent: (cpu1 - cpu0) / wall * 100.0,
        client_cpu_us_per_message: if messages > 0 {
            (cpu1 - cpu0) * 1e6 / messages as f64
        } else {
            f64::NAN
        },
        failed: failed.get(),
    })
}

enum Socket {
    Tolqin(Box<tolqin::WebSocket<tolqin::stream::ClientStream>>),
    Tungstenite(
        Box<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
        >,
    ),
}

impl Socket {
    async fn open(args: &ClientArgs) -> anyhow::Result<Self> {
        Ok(match args.client {
            ClientKind::Tolqin => {
                // No permessage-deflate offer: tokio-tungstenite makes none either.
                let config = tolqin::proto::Config::default()
                    .with_deflate(tolqin::proto::deflate::DeflateConfig::disabled());
                let ws = tolqin::Client::new(&args.url)?
                    .options(tolqin::Options::default().with_protocol(config))
                    .connect()
                    .await
                    .context("tolqin client connect")?;
                Socket::Tolqin(Box::new(ws))
            }
            ClientKind::TokioTungstenite => {
                let (ws, _) = tokio_tungstenite::connect_async(args.url.as_str())
                    .await
                    .context("tokio-tungstenite connect")?;
                Socket::Tungstenite(Box::new(ws))
            }
        })
    }

    /// Sends one message and waits for its echo. The message is built once per connection and
    /// cloned here (a reference count, for both libraries), so that the harness does not
    /// measure its own allocation and copy of the payload.
    async fn round_trip(&mut self, message: &Prebuilt) -> anyhow::Result<()> {
        match (self, message) {
            (Socket::Tolqin(ws), Prebuilt::Tolqin(m)) => {
                ws.send(m.clone()).await?;
                ws.recv().await.context("closed")??;
            }
            (Socket::Tungstenite(ws), Prebuilt::Tungstenite(m)) => {
                ws.send(m.clone()).await?;
                ws.next().await.context("closed")??;
            }
            _ => anyhow::bail!("message built for the other client"),
        }
        Ok(())
    }
}

/// The message a connection sends, in its library's own type.
#[derive(Clone)]
enum Prebuilt {
    Tolqin(tolqin::Message),
    Tungstenite(tokio_tungstenite::tungstenite::Message),
}

impl Prebuilt {
    fn new(client: ClientKind, payload: &bytes::Bytes, text: bool) -> Self {
        use tokio_tungstenite::tungstenite::Message as TMessage;
        let as_text = || String::from_utf8(payload.to_vec()).expect("ASCII payload");
        match (client, text) {
            (ClientKind::Tolqin, true) => Prebuilt::Tolqin(tolqin::Message::text(as_text())),
            (ClientKind::Tolqin, false) => {
                Prebuilt::Tolqin(tolqin::Message::binary(payload.clone()))
            }
            (ClientKind::TokioTungstenite, true) => {
                Prebuilt::Tungstenite(TMessage::text(as_text()))
            }
            (ClientKind::TokioTungstenite, false) => {
                Prebuilt::Tungstenite(TMessage::binary(payload.clone()))
            }
        }
    }
}

/// This process's user + system CPU time, from /proc/self/stat (in USER_HZ = 100 ticks/s).
fn own_cpu_secs() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t =
        |i: usize| -> anyhow::Result<f64> { Ok(f.get(i).context("stat field")?.parse::<f64>()?) };
    Ok((t(11)? + t(12)?) / 100.0)
}
