//! `tolqin chat`: the chat server and its web page (crate `tolqin-chat`).

use std::io::Write;
use std::time::Duration;

use tolqin_chat::{ChatConfig, ChatServer};

use crate::tls_args::TlsArgs;

/// Options of `tolqin chat`.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// Address to listen on: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (a name that resolves to
    /// several addresses listens on the first that can be bound); port 0 picks a free port
    /// (the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub listen: crate::listen::ListenAddr,
    /// https:// and wss://: --tls-cert/--tls-key or --tls-self-signed.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Another origin allowed to open /ws (`scheme://host[:port]`); the page's own always is.
    /// Repeat for more.
    #[arg(long = "allow-origin", value_name = "URL")]
    pub allow_origins: Vec<String>,
    /// Cut each message's content to this many characters.
    #[arg(long, default_value_t = 50)]
    pub max_chars: usize,
    /// Messages a newcomer receives first.
    #[arg(long, default_value_t = 20)]
    pub history: usize,
    /// Largest message accepted, in bytes (larger: refused with an error).
    #[arg(long, default_value_t = 4096)]
    pub max_message_size: usize,
    /// Messages per second each client may send.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Messages a client may send in a burst.
    #[arg(long, default_value_t = 10)]
    pub burst: u32,
    /// Messages queued to one client before it is dropped as too slow (1008).
    #[arg(long, default_value_t = 1024)]
    pub client_queue: usize,
    /// Decline permessage-deflate.
    #[arg(long)]
    pub no_deflate: bool,
    /// A `Host` name the server answers for besides its listen address (`name` for any
    /// port, or `name:port`); other names get 421 (DNS rebinding protection). Repeat for
    /// more. On `0.0.0.0` / `[::]` with neither this nor --public-url, any Host is accepted
    /// (with a warning).
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// The URL people open (behind a proxy, say: `https://chat.example/`): its host is an
    /// allowed Host and its origin an allowed origin. Repeat for more.
    #[arg(long = "public-url", value_name = "URL")]
    pub public_urls: Vec<String>,
    /// Open TCP connections (pages and sockets); past it, 503 with Retry-After before any
    /// upgrade.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open TCP connections from one IP address (IPv6: one /64); past it, 503.
    #[arg(long, default_value_t = 32)]
    pub max_connections_per_ip: usize,
    /// Messages per second the whole room broadcasts (all clients together); excess is
    /// refused like the per-client limit.
    #[arg(long, default_value_t = 50.0)]
    pub room_rate: f64,
    /// Messages the room broadcasts in a burst.
    #[arg(long, default_value_t = 100)]
    pub room_burst: u32,
    /// Seconds between keepalive pings on /ws and /hello; a peer that has not answered one
    /// by the next is dropped (0: no pings).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub ping_interval: u64,
    /// Seconds a /hello client has to send its first message (then: close 1008).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub first_message_timeout: u64,
    /// Seconds for the HTTP request head (and the TLS handshake).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub handshake_timeout: u64,
    /// Serve /metrics on this address (`IP:PORT`) instead of nowhere, or `same` to serve it on
    /// the public listener (by default it is not served there).
    #[arg(long, value_name = "ADDR|same")]
    pub metrics_listen: Option<String>,
    /// Worker threads (1 = a single-threaded runtime). Default: one per CPU.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Serves until interrupted (Ctrl-C / SIGTERM), then closes every client with 1001.
pub fn run(args: ChatArgs) -> std::io::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    crate::runtime(threads).block_on(serve(args))
}

async fn serve(args: ChatArgs) -> std::io::Result<()> {
    // TLS first: a bad certificate or key fails before the port is taken.
    let tls = args.tls.server(&mut std::io::stdout().lock())?;
    let mut config = ChatConfig::default()
        .with_tls(tls.as_ref().map(|t| t.tls.clone()))
        .with_max_chars(args.max_chars)
        .with_history(args.history)
        .with_max_message_size(args.max_message_size)
        .with_rate(args.rate, args.burst)
        .with_client_queue(args.client_queue)
        .with_deflate(!args.no_deflate)
        .with_max_connections(args.max_connections, args.max_connections_per_ip)
        .with_room_rate(args.room_rate, args.room_burst)
        .with_ping_interval(
            (args.ping_interval > 0).then(|| Duration::from_secs(args.ping_interval)),
        )
        .with_first_message_timeout(Duration::from_secs(args.first_message_timeout))
        .with_handshake_timeout(Duration::from_secs(args.handshake_timeout.max(1)))
        .with_session_key(session_key()?);
    for origin in args.allow_origins {
        config = config.allow_origin(origin);
    }
    for host in args.allow_hosts {
        config = config.allow_host(host);
    }
    for url in args.public_urls {
        config = config.public_url(&url).map_err(invalid)?;
    }
    match args.metrics_listen.as_deref() {
        None => {}
        Some("same") => config = config.with_public_metrics(true),
        Some(addr) => {
            let addr = addr
                .parse()
                .map_err(|_| invalid(format!("--metrics-listen: not IP:PORT or same: {addr}")))?;
            config = config.with_metrics_listen(Some(addr));
        }
    }
    // Names the address when it cannot be bound (in use, no such interface...).
    let listener = crate::listen::bind(&args.listen).await?;
    let server = ChatServer::with_listener(config, listener).map_err(std::io::Error::other)?;
    {
        // One write: a reader that stops after the ready line never sees half of it.
        let mut ready = format!(
            "listening on {}\nopen {} in a browser to chat\n",
            server.ws_url(),
            server.page_url()
        );
        if let Some(addr) = server.metrics_addr() {
            ready.push_str(&format!("metrics on http://{addr}/metrics\n"));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(ready.as_bytes())?;
        out.flush()?;
    }
    server
        .run(shutdown_signal())
        .await
        .map_err(std::io::Error::other)?;
    // `tls` lives until here: it removes a --tls-self-signed certificate file.
    drop(tls);
    Ok(())
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

/// The session key: the contents of the file named by `TOLQIN_CHAT_SECRET_FILE` (never a
/// command-line argument, which other users can see), or `None` for a random one.
fn session_key() -> std::io::Result<Option<Vec<u8>>> {
    let Some(path) = std::env::var_os("TOLQIN_CHAT_SECRET_FILE") else {
        return Ok(None);
    };
    let key = std::fs::read(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "TOLQIN_CHAT_SECRET_FILE {}: {e}",
                std::path::Path::new(&path).display()
            ),
        )
    })?;
    // A trailing newline from an editor or `echo` is not part of the key.
    let key = key.trim_ascii_end().to_vec();
    if key.len() < 16 {
        return Err(invalid(
            "TOLQIN_CHAT_SECRET_FILE: the key must have at least 16 bytes",
        ));
    }
    Ok(Some(key))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
