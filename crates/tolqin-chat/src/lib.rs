//! # tolqin-chat: the chat server and its web page
//!
//! A room that sends every message it receives to every connected socket, as in the
//! articles the project started from, made safe to expose:
//!
//! - `/` the chat page (embedded in the binary); it sets a session cookie (`HttpOnly`,
//!   `SameSite=Strict`);
//! - `/ws` the room: JSON `{"user","content"}` in (or plain text), JSON
//!   `{"id","user","content","ts"}` out to everyone, newest history first to newcomers;
//!   only the page's own origin (and [`ChatConfig::allow_origins`]) with a session cookie
//!   may connect (403 / 401 otherwise): no cross-site WebSocket hijacking;
//! - `/hello` and `/demo`: the article's hello demo;
//! - `/session`, `/healthz`; `/metrics` (Prometheus text) on its own listener (`--metrics-listen`).
//!
//! Each client has a token bucket (excess refused with an error, persistent abuse closed
//! with 1008) and a bounded outgoing queue: a client that can't keep up is closed with 1008
//! "too slow" and counted, and the broadcaster never waits on a socket. A message is encoded
//! (and compressed, without context takeover) once and its bytes shared by every recipient.
//!
//! ```no_run
//! # async fn run() -> Result<(), tolqin_chat::ChatError> {
//! use tolqin_chat::{ChatConfig, ChatServer};
//! let config = ChatConfig::default().allow_origin("https://chat.example");
//! let server = ChatServer::bind(config).await?;
//! println!("listening on {}", server.ws_url());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod assets;
mod client;
pub mod config;
mod error;
pub mod hello;
mod http;
pub mod message;
pub mod metrics;
pub mod rate;
pub mod room;
mod server;
pub mod session;

pub use config::ChatConfig;
pub use error::ChatError;
pub use server::{ChatServer, room_deflate};
