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
/// | `max_inflate_ratio` | 128 | close 1009 as soon as a compressed message inflates past 128 x its compressed bytes so far |
/// | `inflate_ratio_floor` | 1 MiB | a compressed message may reach this size in its last frame whatever its ratio |
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
    /// Largest incoming message (all fragments together), in bytes. For a compressed message
    /// this is its inflated size; it stays the absolute cap whatever
    /// [`Config::max_inflate_ratio`] allows.
    pub max_message_size: usize,
    /// permessage-deflate: the most a compressed message may inflate to, as a multiple of its
    /// compressed bytes inflated so far (across its frames); past it, close 1009. Default 128.
    /// `usize::MAX` turns the ratio off (then only [`Config::max_message_size`] bounds a
    /// compressed message).
    ///
    /// Why: DEFLATE inflates up to about 1032 to 1, so without a ratio some 64 KiB of
    /// compressed input made a connection hold a 64 MiB message (the default
    /// `max_message_size`) while it waited for the message's next frame: a thousand
    /// connections held 64 GiB for 64 MB sent. What a message holds is its inflated bytes,
    /// kept until it completes; with the ratio, a message in progress never holds more than
    /// 128 bytes per compressed byte the peer sent, and inflating never costs more than 128
    /// bytes of output per byte of input. Real traffic stays far below it: JSON compresses 5
    /// to 20 times (9x for an API's list of records, 5x for chat messages, 19x for telemetry),
    /// logs with timestamps about 20 times, very repetitive ones rarely past 100; what goes
    /// beyond is data made of long runs: zero-filled buffers, one record or line repeated
    /// (300 to 1000 times), which [`Config::inflate_ratio_floor`] still lets through up to
    /// 1 MiB. 128 leaves six times the headroom of the most compressible JSON, and is in line
    /// with zip-bomb checks elsewhere (Apache POI refuses entries past 100x, beyond a grace
    /// size of 100 KiB).
    ///
    /// Checked as inflation runs, against the compressed bytes consumed so far (as POI does):
    /// a bomb stops within one 16 KiB step of passing the limit, its whole frame never
    /// inflated. So a message of more than 1 MiB whose start is far more compressible than
    /// the rest (1 MiB of zeros, then varied data) is refused even if the whole would pass;
    /// raise the ratio for such data. Cost: one multiplication and comparison per 16 KiB
    /// inflate step, nothing per byte.
    pub max_inflate_ratio: usize,
    /// permessage-deflate: inflated bytes a compressed message may reach whatever its ratio,
    /// in the frame that completes it. Default 1 MiB.
    ///
    /// Why: small messages have ratios that no large real data has: 1 MiB of zeros (a
    /// browser's `new Uint8Array(1 << 20)`) is about 1 KiB compressed, and with context
    /// takeover a message that repeats the previous one is a few hundred bytes. The floor is
    /// granted only to the frame that completes the message, whose inflated bytes go to the
    /// application at once rather than being held by the connection: the frames of a message
    /// still in progress (what a peer that stops sending could make the connection hold) are
    /// held to the ratio alone, so the floor is no free allowance per connection. Its cost is
    /// transient: one message of at most 1 MiB being inflated per worker thread.
    pub inflate_ratio_floor: usize,
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
            max_inflate_ratio: 128,
            inflate_ratio_floor: 1 << 20,
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
    /// Sets [`Config::max_inflate_ratio`] (`usize::MAX`: no ratio limit).
    pub fn with_max_inflate_ratio(mut self, ratio: usize) -> Self {
        self.max_inflate_ratio = ratio;
        self
    }
    /// Sets [`Config::inflate_ratio_floor`].
    pub fn with_inflate_ratio_floor(mut self, bytes: usize) -> Self {
        self.inflate_ratio_floor = bytes;
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
