//! Limits and timeouts shared by the servers of the `tolqin` binary, as command-line options.
//! Their defaults are the library's (see the README's table).

use std::time::Duration;

use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Acceptor, Options};

/// Limits and timeouts of a server.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest message accepted (after decompression), in bytes; past it: close 1009.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_message_size: usize,
    /// permessage-deflate: a compressed message may inflate to at most this many times its
    /// compressed bytes inflated so far; past it: close 1009 (a compression bomb).
    /// 18446744073709551615: no ratio limit.
    #[arg(long, default_value_t = tolqin::proto::Config::default().max_inflate_ratio)]
    pub max_inflate_ratio: usize,
    /// permessage-deflate: size in bytes a compressed message may reach in its last frame
    /// whatever its ratio (small messages of zeros or repeats).
    #[arg(long, default_value_t = tolqin::proto::Config::default().inflate_ratio_floor)]
    pub inflate_ratio_floor: usize,
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
    /// permessage-deflate compression level, 0 (none) to 9 (best): CPU for ratio.
    #[arg(
        long,
        default_value_t = DeflateConfig::default().level,
        value_parser = clap::value_parser!(u32).range(0..=9),
    )]
    pub deflate_level: u32,
    /// permessage-deflate memory level of the compressor, 1 to 9: a lower level holds less
    /// memory per connection (111 KiB less at 1 than at 8) for a slightly worse ratio and speed.
    #[arg(
        long,
        default_value_t = DeflateConfig::default().mem_level,
        value_parser = clap::value_parser!(u8).range(1..=9),
    )]
    pub deflate_mem_level: u8,
}

impl LimitArgs {
    /// The connection options these limits describe, with permessage-deflate on or off.
    pub fn options(&self, deflate: bool) -> Options {
        let mut protocol = tolqin::proto::Config::default()
            .with_max_message_size(self.max_message_size)
            .with_max_inflate_ratio(self.max_inflate_ratio)
            .with_inflate_ratio_floor(self.inflate_ratio_floor)
            .with_max_frame_size(self.max_frame_size.min(self.max_message_size))
            .with_max_fragments(self.max_fragments)
            .with_max_header_block(self.max_header_block)
            .with_max_headers(self.max_headers);
        protocol.deflate = protocol
            .deflate
            .with_enabled(deflate)
            .with_level(self.deflate_level)
            .with_mem_level(self.deflate_mem_level);
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }

    fn deflate(args: &[&str]) -> Result<DeflateConfig, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("tolqin").chain(args.iter().copied()))?;
        Ok(cli.limits.options(true).protocol.deflate)
    }

    #[test]
    fn deflate_flags_default_to_the_library_and_reach_the_config() {
        assert_eq!(deflate(&[]).unwrap(), DeflateConfig::default());
        let config = deflate(&["--deflate-level", "1", "--deflate-mem-level", "4"]).unwrap();
        assert_eq!((config.level, config.mem_level), (1, 4));
        let cli = Cli::try_parse_from(["tolqin"]).unwrap();
        let defaults = tolqin::proto::Config::default();
        let protocol = cli.limits.options(true).protocol;
        assert_eq!(
            (protocol.max_inflate_ratio, protocol.inflate_ratio_floor),
            (defaults.max_inflate_ratio, defaults.inflate_ratio_floor)
        );
        let cli = Cli::try_parse_from([
            "tolqin",
            "--max-inflate-ratio",
            "64",
            "--inflate-ratio-floor",
            "65536",
        ])
        .unwrap();
        let protocol = cli.limits.options(true).protocol;
        assert_eq!(
            (protocol.max_inflate_ratio, protocol.inflate_ratio_floor),
            (64, 65536)
        );
        for bad in [
            &["--deflate-level", "10"][..],
            &["--deflate-mem-level", "0"],
            &["--deflate-mem-level", "10"],
        ] {
            assert!(deflate(bad).is_err(), "{bad:?}");
        }
    }
}
