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
//! ## Many small messages
//! [`WebSocket::recv_with`] lends each message to a handler (from the read buffer, without an
//! allocation or a [`Message`] per message) with an [`Outbox`] to queue replies through; one
//! [`flush`](WebSocket::flush) then writes the replies to everything that arrived together.
//! It is the fast path of servers that answer many small messages (`tolqin echo` runs it).
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
pub mod tls;
mod transport;

pub use bytes::Bytes;
pub use client::{Client, connect};
pub use error::{Error, Result};
pub use options::Options;
pub use server::{Acceptor, accept};
pub use socket::{Outbox, ReadyState, WebSocket};
pub use split::{GenericReadHalf, GenericWriteHalf, IntoSplit, ReadHalf, WriteHalf};
pub use tolqin_proto::connection::CloseInfo;
pub use tolqin_proto::prepared::PreparedMessage;
pub use tolqin_proto::{self as proto, CloseCode, Message, MessageRef, Role, Utf8Bytes};

/// The README's examples, compiled as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
