//! The chat server's options, with documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

use tolqin::tls::TlsServer;

/// Options of [`crate::ChatServer`].
///
/// | field | default | what it does |
/// |---|---|---|
/// | `listen` | `127.0.0.1:8080` | address of the page and the sockets (port 0: a free one) |
/// | `tls` | none | serve `https://` and `wss://` |
/// | `allow_origins` | none | origins allowed on `/ws` besides the page's own |
/// | `max_chars` | 50 | content is cut to this many characters |
/// | `max_user_chars` | 32 | names are cut to this many characters |
/// | `history` | 20 | messages a newcomer receives first |
/// | `max_message_size` | 4 KiB | longer messages are refused with an error (past 64 KiB: close 1009) |
/// | `rate` / `burst` | 5/s, 10 | per-client token bucket; excess refused with an error |
/// | `abuse_limit` | 20 | refusals (refilled at 1/s) before closing with 1008 |
/// | `client_queue` | 1024 | messages queued to a client before it is dropped as too slow |
/// | `send_buffer` | system | the kernel send buffer (`SO_SNDBUF`) of each connection |
/// | `deflate` | on | permessage-deflate, server without context takeover (compressed once per broadcast) |
/// | `handshake_timeout` | 10 s | HTTP request head and TLS handshake |
/// | `close_timeout` | 5 s | close handshake; on shutdown, the wait for every client |
/// | `sessions` | 100 000 | session tokens remembered (oldest forgotten first) |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Serve TLS (`https://`, `wss://`) with this.
    pub tls: Option<TlsServer>,
    /// Origins (`scheme://host[:port]`) allowed on `/ws` and `/hello` besides the page's own.
    pub allow_origins: Vec<String>,
    /// Content is cut to this many characters.
    pub max_chars: usize,
    /// User names are cut to this many characters.
    pub max_user_chars: usize,
    /// Messages kept for newcomers.
    pub history: usize,
    /// Largest message accepted, in bytes; larger ones are refused with an error.
    pub max_message_size: usize,
    /// Messages per second each client may send (token bucket refill rate).
    pub rate: f64,
    /// Messages a client may send at once (token bucket capacity).
    pub burst: u32,
    /// Refused messages tolerated (refilled at one per second) before closing with 1008.
    pub abuse_limit: u32,
    /// Messages queued to one client before it is dropped as too slow.
    pub client_queue: usize,
    /// `SO_SNDBUF` of each accepted connection (`None`: the system's).
    pub send_buffer: Option<usize>,
    /// Accept permessage-deflate.
    pub deflate: bool,
    /// Time for the request head (and the TLS handshake).
    pub handshake_timeout: Duration,
    /// Time for a close handshake, and for every client to go on shutdown.
    pub close_timeout: Duration,
    /// Session tokens remembered.
    pub sessions: usize,
    /// Extra pages served as `text/html` at these paths, on the page's origin: tests use
    /// them to drive the chat page from a same-origin frame.
    pub extra_pages: Vec<(String, String)>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            allow_origins: Vec::new(),
            max_chars: 50,
            max_user_chars: 32,
            history: 20,
            max_message_size: 4 << 10,
            rate: 5.0,
            burst: 10,
            abuse_limit: 20,
            client_queue: 1024,
            send_buffer: None,
            deflate: true,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            sessions: 100_000,
            extra_pages: Vec::new(),
        }
    }
}

impl ChatConfig {
    /// Sets [`ChatConfig::listen`].
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// Sets [`ChatConfig::tls`].
    pub fn with_tls(mut self, tls: Option<TlsServer>) -> Self {
        self.tls = tls;
        self
    }
    /// Adds an allowed origin (a trailing `/` is ignored).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into();
        self.allow_origins
            .push(origin.trim_end_matches('/').to_string());
        self
    }
    /// Sets [`ChatConfig::max_chars`].
    pub fn with_max_chars(mut self, chars: usize) -> Self {
        self.max_chars = chars;
        self
    }
    /// Sets [`ChatConfig::history`].
    pub fn with_history(mut self, messages: usize) -> Self {
        self.history = messages;
        self
    }
    /// Sets [`ChatConfig::max_message_size`].
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets the rate limit: `rate` messages per second, `burst` at once.
    pub fn with_rate(mut self, rate: f64, burst: u32) -> Self {
        self.rate = rate;
        self.burst = burst;
        self
    }
    /// Sets [`ChatConfig::abuse_limit`].
    pub fn with_abuse_limit(mut self, refusals: u32) -> Self {
        self.abuse_limit = refusals;
        self
    }
    /// Sets [`ChatConfig::client_queue`].
    pub fn with_client_queue(mut self, messages: usize) -> Self {
        self.client_queue = messages;
        self
    }
    /// Sets [`ChatConfig::send_buffer`].
    pub fn with_send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.send_buffer = bytes;
        self
    }
    /// Sets [`ChatConfig::deflate`].
    pub fn with_deflate(mut self, on: bool) -> Self {
        self.deflate = on;
        self
    }
    /// Sets [`ChatConfig::close_timeout`].
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
    /// Adds a page served at `path` (see [`ChatConfig::extra_pages`]).
    pub fn with_extra_page(mut self, path: impl Into<String>, html: impl Into<String>) -> Self {
        self.extra_pages.push((path.into(), html.into()));
        self
    }

    pub(crate) fn check(&self) -> Result<(), crate::ChatError> {
        let bad = |what: &str| Err(crate::ChatError::Config(what.to_string()));
        if self.max_chars == 0 {
            return bad("max_chars must be at least 1");
        }
        if self.client_queue == 0 {
            return bad("client_queue must be at least 1");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) || self.burst == 0 {
            return bad("the rate limit must allow at least one message");
        }
        if self.max_message_size == 0 {
            return bad("max_message_size must be at least 1 byte");
        }
        Ok(())
    }
}
