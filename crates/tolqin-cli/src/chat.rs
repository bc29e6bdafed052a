//! `tolqin chat`: the chat server and its web page (crate `tolqin-chat`).

use std::io::Write;

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
        .with_deflate(!args.no_deflate);
    for origin in args.allow_origins {
        config = config.allow_origin(origin);
    }
    // Names the address when it cannot be bound (in use, no such interface...).
    let listener = crate::listen::bind(&args.listen).await?;
    let server = ChatServer::with_listener(config, listener).map_err(std::io::Error::other)?;
    {
        // One write: a reader that stops after the ready line never sees half of it.
        let ready = format!(
            "listening on {}\nopen {} in a browser to chat\n",
            server.ws_url(),
            server.page_url()
        );
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
