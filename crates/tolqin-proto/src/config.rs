//! Limits and options, with documented defaults.
//!
//! One `#[non_exhaustive]` struct; build it with [`Config::default`] and the `with_*` setters so
//! that new options never break callers.

use crate::deflate::DeflateConfig;

/// Limits and options for a connection and its opening handshake.
///
/// | field | default | what happens past it |
/// |---|---|---|
/// | `max_frame_size` | 16 MiB | close 1009 before the payload is buffered |
/// | `max_message_size` | 64 MiB | close 1009 before the payload is buffered |
/// | `max_fragments` | 100 000 | close 1009 (a 1-byte-per-frame message) |
/// | `max_header_block` | 16 KiB | HTTP 431 (server) / handshake error (client) |
/// | `max_headers` | 64 | HTTP 431 (server) / handshake error (client) |
/// | `write_frame_size` | 128 KiB | outgoing messages longer than this are sent as several frames |
/// | `auto_pong` | `true` | every ping is answered with a pong carrying its payload |
/// | `deflate` | enabled | permessage-deflate: offered by clients, accepted by servers ([`DeflateConfig`]) |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of a single incoming frame, in bytes.
    pub max_frame_size: usize,
    /// Largest incoming message (all fragments together), in bytes.
    pub max_message_size: usize,
    /// Most frames one incoming message may be split into.
    pub max_fragments: usize,
    /// Largest opening-handshake header block (request or response line and headers), in bytes.
    pub max_header_block: usize,
    /// Most header fields in an opening-handshake request or response.
    pub max_headers: usize,
    /// Outgoing data messages longer than this are fragmented into frames of at most this
    /// payload size, so that a pong or close never waits behind more than one such frame.
    pub write_frame_size: usize,
    /// Answer every ping with a pong automatically (RFC 6455 5.5.2).
    pub auto_pong: bool,
    /// permessage-deflate (RFC 7692) settings.
    pub deflate: DeflateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 100_000,
            max_header_block: 16 << 10,
            max_headers: 64,
            write_frame_size: 128 << 10,
            auto_pong: true,
            deflate: DeflateConfig::default(),
        }
    }
}

impl Config {
    /// Sets [`Config::max_frame_size`].
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_message_size`].
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`Config::max_fragments`].
    pub fn with_max_fragments(mut self, count: usize) -> Self {
        self.max_fragments = count;
        self
    }
    /// Sets [`Config::max_header_block`].
    pub fn with_max_header_block(mut self, bytes: usize) -> Self {
        self.max_header_block = bytes;
        self
    }
    /// Sets [`Config::max_headers`].
    pub fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }
    /// Sets [`Config::write_frame_size`] (at least 1).
    pub fn with_write_frame_size(mut self, bytes: usize) -> Self {
        self.write_frame_size = bytes.max(1);
        self
    }
    /// Sets [`Config::deflate`].
    pub fn with_deflate(mut self, deflate: DeflateConfig) -> Self {
        self.deflate = deflate;
        self
    }
    /// Sets [`Config::auto_pong`].
    pub fn with_auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }
}
