//! # tolqin: WebSocket client and server for tokio
//!
//! The async layer over [`tolqin_proto`], the sans-I/O RFC 6455 core. A [`WebSocket`] wraps
//! any `AsyncRead + AsyncWrite` transport; it is a `Stream` of [`Message`]s and a `Sink` of
//! them, answers pings, runs the close handshake with a timeout, and has the browser's
//! members where Rust allows.
//!
//! ## Server
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = tolqin::accept(tcp).await?;
//!         while let Some(message) = ws.recv().await {
//!             ws.send(message?).await?;
//!         }
//!         Ok::<(), tolqin::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! ## Client
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! let mut ws = tolqin::connect("ws://127.0.0.1:9001/").await?;
//! ws.send("hello").await?;
//! let reply = ws.recv().await.expect("a reply")?;
//! assert_eq!(reply.as_text(), Some("hello"));
//! let info = ws.close_and_wait(None, "").await?;
//! assert!(info.was_clean);
//! # Ok(()) }
//! ```
//!
//! ## Checking who connects
//! An [`Acceptor`] refuses other sites' pages (403), picks a subprotocol, and runs a hook that
//! sees the request and may refuse it (401 here):
//! ```no_run
//! # async fn run(tcp: tokio::net::TcpStream) -> tolqin::Result<()> {
//! use tolqin::{Acceptor, server::Reject};
//! let acceptor = Acceptor::new()
//!     .allow_origin("https://chat.example")
//!     .protocols(["chat.v2", "chat.v1"])
//!     .authenticate(|req| match req.headers().get("cookie") {
//!         Some(c) if c.as_bytes().starts_with(b"session=") => Ok(Default::default()),
//!         _ => Err(Reject::unauthorized("log in first")),
//!     });
//! let ws = acceptor.accept(tcp).await?;
//! # Ok(()) }
//! ```
//!
//! ## Many small messages
//! [`WebSocket::recv_with`] lends each message to a handler (from the read buffer, without an
//! allocation or a [`Message`] per message) with an [`Outbox`] to queue replies through; one
//! [`flush`](WebSocket::flush) then writes the replies to everything that arrived together.
//! It is the fast path of servers that answer many small messages (`tolqin echo` runs it).
//! ```no_run
//! # async fn run(mut ws: tolqin::WebSocket<tokio::net::TcpStream>) -> tolqin::Result<()> {
//! while let Some(handled) = ws.recv_with(|message, out| out.send_ref(message)).await {
//!     handled?; // how many messages the handler saw, or its first error
//!     ws.flush().await?; // every reply to them, in one write
//! }
//! # Ok(()) }
//! ```
//!
//! ## A client like the browser's
//! [`events::EventSocket`] connects in the background and reports open, message, error and
//! close events in the browser's order, with opt-in reconnection:
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! use std::time::Duration;
//! use tolqin::events::{EventSocket, Reconnect, SocketEvent};
//!
//! let client = tolqin::Client::new("ws://127.0.0.1:9001/")?;
//! let backoff = Reconnect::default().with_delays(Duration::from_millis(500), Duration::from_secs(30));
//! let mut socket = EventSocket::builder(client).reconnect(backoff).start();
//! while let Some(event) = socket.next_event().await {
//!     match event {
//!         SocketEvent::Open { .. } | SocketEvent::Reconnected { .. } => socket.send("hello")?,
//!         SocketEvent::Message(m) => println!("{m:?}"),
//!         SocketEvent::Close { code, was_clean, .. } => println!("closed {code} clean={was_clean}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## wss://
//! `wss://` URLs speak TLS ([`tls`]): clients check the server's certificate against the
//! default roots (features `native-roots`, the default, or `webpki-roots`) or a
//! [`TlsClient`](tls::TlsClient) of your own; servers take a [`TlsServer`](tls::TlsServer).
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! use tolqin::tls::{TlsClient, TlsServer};
//! use tolqin::{Acceptor, Client};
//!
//! let ws = tolqin::connect("wss://echo.example/").await?;
//!
//! // A private CA, or the development certificate of `tolqin echo --tls-self-signed`:
//! let tls = TlsClient::builder().add_ca_file("dev-cert.pem")?.build()?;
//! let ws = Client::new("wss://localhost:9001/")?.tls(tls).connect().await?;
//!
//! // A server: the TLS and WebSocket handshakes within the one handshake timeout.
//! let tls = TlsServer::from_pem_files("fullchain.pem", "privkey.pem")?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
//! let (tcp, _) = listener.accept().await?;
//! let ws = Acceptor::new().accept_tls(&tls, tcp).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tls` | yes, through `native-roots` | TLS with rustls and its `ring` provider: the [`tls`] module, `wss://` in [`Client`], [`Acceptor::accept_tls`], [`Error::Tls`], [`ClientStream::Tls`](stream::ClientStream::Tls) |
//! | `native-roots` | yes | `tls`, and `wss://` clients trust the platform's root certificates (`rustls-native-certs`; honours `SSL_CERT_FILE` and `SSL_CERT_DIR`) |
//! | `webpki-roots` | no | `tls`, and `wss://` clients trust the Mozilla roots bundled at build time (`webpki-roots`) |
//!
//! With `default-features = false` (TLS terminated by a proxy, or by a TLS stream of your
//! own), no rustls, ring or webpki is built: [`Client::connect`] refuses a `wss://` URL with
//! [`UrlError::TlsNotEnabled`], while [`Client::handshake_on`] and [`Acceptor::accept`] run the
//! handshake over any stream, a TLS one included.
//!
//! Of tokio, tolqin asks only for `net`, `io-util`, `rt`, `time`, `sync` and `macros`; the
//! runtime flavour (`rt-multi-thread`), signals and stdio are the application's to choose.
//!
//! ## Public dependencies
//!
//! Types of these crates are part of tolqin's API, on purpose (a new major version of one is a
//! new major version of tolqin): [`tolqin_proto`] (re-exported as [`proto`]); `bytes`
//! ([`Bytes`], re-exported); `http` (the handshake's requests, responses, headers, status codes
//! and URIs); `tokio` (`AsyncRead`, `AsyncWrite`, `TcpStream`); `futures-core` and
//! `futures-sink` (the `Stream` and `Sink` of a [`WebSocket`]); and, with `tls`, `rustls`
//! (re-exported as `tls::rustls`, for configs built by hand). The others (httparse, base64,
//! tokio-util, ring...) are details that may change in any release.
//!
//! ## The browser's `WebSocket`, member by member
//!
//! | browser | tolqin |
//! |---|---|
//! | `new WebSocket(url, protocols)` | [`Client::new`]`(url)?.protocol(p).connect().await` |
//! | `readyState` | [`WebSocket::ready_state`] |
//! | `bufferedAmount` | [`WebSocket::buffered_amount`] |
//! | `protocol` | [`WebSocket::protocol`] |
//! | `extensions` | [`WebSocket::extensions`] |
//! | `url` | [`WebSocket::url`] |
//! | `send(data)` | [`WebSocket::send`] (text: `&str`/`String`; binary: `Vec<u8>`/`Bytes`) |
//! | `close(code, reason)` | [`WebSocket::close`] |
//! | `onmessage` | [`WebSocket::recv`] / the `Stream` impl |
//! | `onclose` (`code`, `reason`, `wasClean`) | the stream ends; [`WebSocket::close_info`] |
//! | `onerror` | an `Err` item before the stream ends |
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// The documentation describes the whole crate (docs.rs builds the default features); without
// `tls`, its links to the TLS items have nothing to point at.
#![cfg_attr(not(feature = "tls"), allow(rustdoc::broken_intra_doc_links))]

pub mod client;
mod error;
pub mod events;
mod options;
pub mod proxy;
mod reader;
pub mod server;
mod socket;
mod split;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use bytes::Bytes;
pub use client::{Client, connect};
pub use error::{ConnectError, ConnectStep, Error, Refusal, Result, UrlError};
pub use options::Options;
pub use server::{Acceptor, accept};
pub use socket::{Outbox, ReadyState, WebSocket};
pub use split::{GenericReadHalf, GenericWriteHalf, IntoSplit, ReadHalf, WriteHalf};
pub use tolqin_proto::connection::CloseInfo;
pub use tolqin_proto::prepared::PreparedMessage;
pub use tolqin_proto::{self as proto, CloseCode, Message, MessageRef, Role, Utf8Bytes};
