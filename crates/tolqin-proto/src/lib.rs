//! # tolqin-proto: the sans-I/O WebSocket core
//!
//! This crate implements RFC 6455 for both roles with no I/O, no async runtime and no clock:
//! bytes go in with [`Connection::receive`], events come out of [`Connection::next_event`],
//! and the bytes to write come out of [`Connection::data_to_send`]. Every runtime adapter
//! (the `tolqin` crate for tokio, a blocking loop, a fuzzer, a test feeding one byte at a time)
//! is a thin loop around it.
//!
//! | module | owns |
//! |---|---|
//! | [`handshake`] | the opening handshake for both roles |
//! | [`frame`] | frame headers: encode and decode |
//! | [`mask`] | XOR masking in place, word at a time |
//! | [`utf8`] | incremental UTF-8 validation |
//! | [`message`] | reassembly of fragmented messages, size limits |
//! | [`close`] | close codes and close frame payloads |
//! | [`connection`] | the state machine |
//! | [`config`] | limits and options with documented defaults |
//!
//! ```
//! use tolqin_proto::{Connection, Config, Event, Role, Message};
//!
//! // A server-side connection after the opening handshake.
//! let mut server = Connection::new(Role::Server, Config::default());
//! // RFC 6455 5.7: a single-frame masked text message "Hello".
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! match server.next_event() {
//!     Some(Event::Message(Message::Text(text))) => assert_eq!(text.as_str(), "Hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! // Echo it back: server frames are not masked.
//! server.send_text("Hello").unwrap();
//! assert_eq!(server.data_to_send(), vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! ```
//!
//! ## Public dependencies
//!
//! Types of two crates are part of this crate's API, on purpose: `bytes` (message payloads are
//! `Bytes`) and `http` (the handshake's requests, responses, headers, status codes and URIs).
//! The others (httparse, sha1, base64, rand, simdutf8, zlib-rs) are details that may change in
//! any release: a malformed HTTP head, for one, is this crate's own
//! [`HttpError`](handshake::HttpError). No features.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod prepared;
pub mod utf8;

pub use close::CloseCode;
pub use config::Config;
pub use connection::{Connection, Event, Outbox, ProtocolError, Role, SendError, State};
pub use frame::OpCode;
pub use message::{Message, MessageRef, Utf8Bytes};
