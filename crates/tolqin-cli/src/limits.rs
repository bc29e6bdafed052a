//! Limits and timeouts shared by the servers of the `tolqin` binary, as command-line options.
//! Their defaults are the library's (see the README's table).

use std::time::Duration;

use tolqin::{Acceptor, Options};

/// Limits and timeouts of a server.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest message accepted (after decompression), in bytes; past it: close 1009.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes; past it: close 1009.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_frame_size: usize,
    /// Most frames one message may be split into; past it: close 1009.
    #[arg(long, default_value_t = 100_000)]
    pub max_fragments: usize,
    /// Largest handshake request head (request line and headers), in bytes; past it: 431.
    #[arg(long, default_value_t = 16 << 10)]
    pub max_header_block: usize,
    /// Most header fields in a handshake request; past it: 431.
    #[arg(long, default_value_t = 64)]
    pub max_headers: usize,
    /// Most open connections; past it: 503 before upgrading (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,
    /// Seconds allowed for the whole opening handshake (TLS included).
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Seconds to wait for the peer's close frame before dropping the connection.
    #[arg(long, default_value_t = 5.0)]
    pub close_timeout: f64,
    /// Seconds queued output may make no progress (the peer does not read) before the
    /// connection is failed (close 1008).
    #[arg(long, default_value_t = 30.0)]
    pub write_timeout: f64,
    /// Keepalive: ping every this many seconds; no pong by the next ping drops the connection.
    #[arg(long)]
    pub ping_interval: Option<f64>,
    /// Most bytes queued for one connection before sending fails.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_write_buffer: usize,
}

impl LimitArgs {
    /// The connection options these limits describe, with permessage-deflate on or off.
    pub fn options(&self, deflate: bool) -> Options {
        let mut protocol = tolqin::proto::Config::default()
            .with_max_message_size(self.max_message_size)
            .with_max_frame_size(self.max_frame_size.min(self.max_message_size))
            .with_max_fragments(self.max_fragments)
            .with_max_header_block(self.max_header_block)
            .with_max_headers(self.max_headers);
        protocol.deflate.enabled = deflate;
        Options::default()
            .with_protocol(protocol)
            .with_handshake_timeout(Duration::from_secs_f64(self.handshake_timeout))
            .with_close_timeout(Duration::from_secs_f64(self.close_timeout))
            .with_write_timeout(Duration::from_secs_f64(self.write_timeout))
            .with_ping_interval(self.ping_interval.map(Duration::from_secs_f64))
            .with_max_write_buffer(self.max_write_buffer)
    }

    /// An acceptor with these options and the connection limit.
    pub fn acceptor(&self, deflate: bool) -> Acceptor {
        let acceptor = Acceptor::new().options(self.options(deflate));
        if self.max_connections > 0 {
            acceptor.max_connections(self.max_connections)
        } else {
            acceptor
        }
    }
}
