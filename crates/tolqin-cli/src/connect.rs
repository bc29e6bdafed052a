//! `tolqin connect URL`: the terminal client (like wscat or websocat).
//!
//! Lines typed become text messages; messages received are printed. With a terminal it shows a
//! prompt and marks incoming lines with `< `; piped, it prints only the messages, one per line,
//! so it composes in shell scripts. Ctrl-D closes with 1000. The exit status is 0 after a clean
//! close and 1 otherwise.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue};
use tokio::io::AsyncBufReadExt;
use tolqin::events::{EventSocket, SocketEvent};
use tolqin::{Client, CloseCode, Message, Options};

/// How binary messages are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryFormat {
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Options of `tolqin connect`.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The server: ws://HOST:PORT/PATH or wss://...
    pub url: String,
    /// A request header, `Name: value` (cookies, tokens); repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A subprotocol to offer; repeatable, in order of preference.
    #[arg(long = "protocol", value_name = "P")]
    pub protocols: Vec<String>,
    /// The `Origin` header to send.
    #[arg(long)]
    pub origin: Option<String>,
    /// Send this message once open (repeatable), print the replies, and close after --wait.
    #[arg(short = 'x', long = "execute", value_name = "MSG")]
    pub execute: Vec<String>,
    /// Seconds to wait for replies after --execute before closing.
    #[arg(short = 'w', long, default_value_t = 2.0)]
    pub wait: f64,
    /// Send a ping this often (seconds); no pong by the next one closes the connection.
    #[arg(long, value_name = "SECS")]
    pub ping_interval: Option<f64>,
    /// How binary messages are printed.
    #[arg(long, value_enum, default_value_t = BinaryFormat::Hex)]
    pub binary: BinaryFormat,
    /// Trust this CA certificate (PEM) for wss://, in addition to the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Skip certificate verification for wss:// (development only: anyone can impersonate
    /// the server).
    #[arg(long)]
    pub insecure: bool,
    /// Do not offer permessage-deflate.
    #[arg(long)]
    pub no_deflate: bool,
}

/// Why `tolqin connect` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A `-H` argument that is not `Name: value`.
    #[error("invalid header {0:?}: expected 'Name: value'")]
    BadHeader(String),
    /// The URL, or the TLS options, are unusable.
    #[error(transparent)]
    Tolqin(#[from] tolqin::Error),
    /// The CA file or TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tolqin::tls::TlsError),
}

fn client(args: &ConnectArgs) -> Result<Client, ConnectError> {
    let mut client = Client::new(&args.url)?;
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| ConnectError::BadHeader(header.clone()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ConnectError::BadHeader(header.clone()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| ConnectError::BadHeader(header.clone()))?;
        client = client.append_header(name, value);
    }
    for protocol in &args.protocols {
        client = client.protocol(protocol.clone());
    }
    if let Some(origin) = &args.origin {
        client = client.origin(origin.clone());
    }
    let mut protocol = tolqin::proto::Config::default();
    protocol.deflate.enabled = !args.no_deflate;
    let options = Options::default()
        .with_protocol(protocol)
        .with_ping_interval(args.ping_interval.map(Duration::from_secs_f64));
    client = client.options(options);
    if args.ca.is_some() || args.insecure {
        let mut tls = tolqin::tls::TlsClient::builder();
        if let Some(ca) = &args.ca {
            tls = tls.add_ca_file(ca)?;
        }
        if args.insecure {
            tls = tls.danger_skip_verification_for_development();
        }
        client = client.tls(tls.build()?);
    }
    Ok(client)
}

fn format_message(message: &Message, binary: BinaryFormat) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        Message::Binary(bytes) => match binary {
            BinaryFormat::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            BinaryFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        },
    }
}

/// Runs the client; returns the process exit code.
pub async fn run(args: ConnectArgs) -> Result<u8, ConnectError> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut socket = EventSocket::builder(client(&args)?).start();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = args.execute.is_empty();
    let mut opened = false;
    let deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(deadline);
    let prompt = |out: &mut std::io::StdoutLock<'_>| {
        if interactive {
            let _ = write!(out, "> ");
            let _ = out.flush();
        }
    };
    loop {
        tokio::select! {
            event = socket.next_event() => {
                let Some(event) = event else { return Ok(1) };
                let mut out = std::io::stdout().lock();
                match event {
                    SocketEvent::Open { protocol, extensions } => {
                        opened = true;
                        if interactive {
                            let _ = writeln!(out, "connected to {} (protocol: {}, extensions: {})", args.url,
                                protocol.as_deref().unwrap_or("none"), if extensions.is_empty() { "none" } else { &extensions });
                        }
                        for message in &args.execute {
                            let _ = socket.send(message.as_str());
                        }
                        if !args.execute.is_empty() {
                            deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs_f64(args.wait.max(0.0)));
                        }
                        prompt(&mut out);
                    }
                    SocketEvent::Message(message) => {
                        let text = format_message(&message, args.binary);
                        if interactive {
                            let kind = if message.is_text() { "" } else { "[binary] " };
                            let _ = write!(out, "\r< {kind}{text}\n");
                            prompt(&mut out);
                        } else {
                            let _ = writeln!(out, "{text}");
                        }
                        let _ = out.flush();
                    }
                    SocketEvent::Error(e) => eprintln!("error: {e}"),
                    SocketEvent::Close { code, reason, was_clean } => {
                        if interactive {
                            let _ = writeln!(out);
                        }
                        eprintln!("closed: code {code}{}{}, {}", if reason.is_empty() { "" } else { " reason " },
                            reason, if was_clean { "clean" } else { "not clean" });
                        return Ok(if was_clean && opened { 0 } else { 1 });
                    }
                    _ => {}
                }
            }
            line = stdin.next_line(), if stdin_open && opened => match line {
                Ok(Some(line)) => {
                    if let Err(e) = socket.send(line) {
                        eprintln!("error: {e}");
                    }
                    prompt(&mut std::io::stdout().lock());
                }
                // Ctrl-D or the end of piped input: close politely.
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    let _ = socket.close(Some(CloseCode::NORMAL), "");
                }
            },
            () = &mut deadline, if !args.execute.is_empty() && opened => {
                let _ = socket.close(Some(CloseCode::NORMAL), "");
                deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(u64::MAX / 4));
            }
        }
    }
}
