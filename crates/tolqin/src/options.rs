//! Options of the async layer: the protocol limits plus the timers the sans-I/O core does not own.

use std::time::Duration;

use tolqin_proto::Config;

/// Options for a connection, with documented defaults.
///
/// | field | default | what it does |
/// |---|---|---|
/// | `protocol` | [`Config::default`] | frame and message limits (the inflate ratio of compressed messages included), handshake header limits |
/// | `handshake_timeout` | 10 s | the whole opening handshake (slowloris guard) |
/// | `close_timeout` | 5 s | wait for the peer's close frame (or the server's TCP close), then drop the connection |
/// | `ping_interval` | none | send a ping this often; no pong by the next tick closes the connection (1006) |
/// | `write_buffer_size` | 128 KiB | a `Sink` flushes before accepting more once this much is queued |
/// | `max_write_buffer` | 64 MiB | sending past this fails with [`crate::Error::WriteBufferFull`] |
/// | `write_timeout` | 30 s | queued output that makes no progress this long (the peer does not read): close 1008 queued, connection dropped |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limits enforced by the protocol core.
    pub protocol: Config,
    /// Time allowed for the whole opening handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for the close handshake before the transport is dropped.
    pub close_timeout: Duration,
    /// Keepalive: send a ping at this interval, and fail the connection when the previous
    /// ping has had no pong by the next tick.
    pub ping_interval: Option<Duration>,
    /// Queued bytes above which the `Sink` flushes before taking another message.
    pub write_buffer_size: usize,
    /// Queued bytes above which sending fails: a peer that never reads can't grow our memory.
    pub max_write_buffer: usize,
    /// How long queued output may make no progress before the connection is failed.
    pub write_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            protocol: Config::default(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            write_buffer_size: 128 << 10,
            max_write_buffer: 64 << 20,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl Options {
    /// Sets the protocol limits.
    pub fn with_protocol(mut self, config: Config) -> Self {
        self.protocol = config;
        self
    }
    /// Sets [`Options::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`Options::close_timeout`].
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
    /// Sets [`Options::ping_interval`].
    pub fn with_ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }
    /// Sets [`Options::write_buffer_size`].
    pub fn with_write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }
    /// Sets [`Options::write_timeout`].
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets [`Options::max_write_buffer`].
    pub fn with_max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }
}
