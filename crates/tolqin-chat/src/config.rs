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
/// | `session_max_age` | 7 days | a signed session token is accepted this long after it is issued |
/// | `session_key` | random per process | key of the session tokens' HMAC-SHA256 |
/// | `allow_hosts` | none | `Host` names served besides the listen address (and `localhost` on loopback) |
/// | `max_connections` | 10 000 | open TCP connections (pages and sockets); past it, 503 before any upgrade |
/// | `max_connections_per_ip` | 32 | open TCP connections from one IP address; past it, 503 |
/// | `room_rate` / `room_burst` | 50/s, 100 | the room's token bucket: broadcasts of all clients together |
/// | `ping_interval` | 30 s | keepalive ping on `/ws` and `/hello`; no pong by the next ping: dropped |
/// | `first_message_timeout` | 10 s | a `/hello` socket that sends nothing this long is closed (1008) |
/// | `metrics_listen` | none | serve `/metrics` on this address only |
/// | `public_metrics` | off | also serve `/metrics` on the public listener |
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
    /// How long a session token is accepted after it is issued.
    pub session_max_age: Duration,
    /// The key signing session tokens (`None`: a random one per process). Give the same key
    /// to every node that must accept the others' tokens.
    pub session_key: Option<Vec<u8>>,
    /// `Host` values served besides the listen address's own (`name` or `name:port`, without
    /// a port: any port), lowercase. A request naming another host gets 421: the defence
    /// against DNS rebinding. See [`ChatConfig::allow_host`].
    pub allow_hosts: Vec<String>,
    /// Open TCP connections allowed (pages, `/session` and sockets together).
    pub max_connections: usize,
    /// Open TCP connections allowed from one IP address.
    pub max_connections_per_ip: usize,
    /// Broadcasts per second of the whole room (token bucket refill rate).
    pub room_rate: f64,
    /// Broadcasts the room takes at once (token bucket capacity).
    pub room_burst: u32,
    /// Keepalive ping interval of `/ws` and `/hello` (`None`: no pings, no idle timeout).
    pub ping_interval: Option<Duration>,
    /// Time a `/hello` socket has to send its first message before it is closed with 1008.
    pub first_message_timeout: Duration,
    /// Serve `/metrics` on its own listener at this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `/metrics` on the public listener too (off: 404 there).
    pub public_metrics: bool,
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
            session_max_age: Duration::from_secs(7 * 86_400),
            session_key: None,
            allow_hosts: Vec::new(),
            max_connections: 10_000,
            max_connections_per_ip: 32,
            room_rate: 50.0,
            room_burst: 100,
            ping_interval: Some(Duration::from_secs(30)),
            first_message_timeout: Duration::from_secs(10),
            metrics_listen: None,
            public_metrics: false,
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
    /// Allows requests whose `Host` is `host` (`name` or `name:port`; without a port, any
    /// port): the names the server is reached by besides its listen address (a DNS name,
    /// the address a proxy forwards to...).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        let host = host
            .into()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.allow_hosts.push(host);
        self
    }
    /// The URL people open (`https://chat.example/`, behind a proxy say): its host (and port)
    /// is an allowed `Host` and its origin an allowed origin.
    ///
    /// # Errors
    /// [`crate::ChatError::Config`] when `url` is not `http(s)://host[:port][/...]`.
    pub fn public_url(self, url: &str) -> Result<Self, crate::ChatError> {
        let bad = || crate::ChatError::Config(format!("not an http(s) URL: {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let authority = authority.to_ascii_lowercase();
        Ok(self
            .allow_origin(format!("{scheme}://{authority}"))
            .allow_host(authority))
    }
    /// Sets [`ChatConfig::max_connections`] and [`ChatConfig::max_connections_per_ip`].
    pub fn with_max_connections(mut self, total: usize, per_ip: usize) -> Self {
        self.max_connections = total;
        self.max_connections_per_ip = per_ip;
        self
    }
    /// Sets the room's rate limit: `rate` broadcasts per second, `burst` at once.
    pub fn with_room_rate(mut self, rate: f64, burst: u32) -> Self {
        self.room_rate = rate;
        self.room_burst = burst;
        self
    }
    /// Sets [`ChatConfig::ping_interval`].
    pub fn with_ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }
    /// Sets [`ChatConfig::first_message_timeout`].
    pub fn with_first_message_timeout(mut self, timeout: Duration) -> Self {
        self.first_message_timeout = timeout;
        self
    }
    /// Sets [`ChatConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`ChatConfig::metrics_listen`].
    pub fn with_metrics_listen(mut self, addr: Option<SocketAddr>) -> Self {
        self.metrics_listen = addr;
        self
    }
    /// Sets [`ChatConfig::public_metrics`].
    pub fn with_public_metrics(mut self, on: bool) -> Self {
        self.public_metrics = on;
        self
    }
    /// Sets [`ChatConfig::session_key`].
    pub fn with_session_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.session_key = key;
        self
    }
    /// Sets [`ChatConfig::session_max_age`].
    pub fn with_session_max_age(mut self, max_age: Duration) -> Self {
        self.session_max_age = max_age;
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
        if !(self.room_rate.is_finite() && self.room_rate > 0.0) || self.room_burst == 0 {
            return bad("the room's rate limit must allow at least one message");
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return bad("the connection limits must allow at least one connection");
        }
        if self.session_key.as_ref().is_some_and(|k| k.len() < 16) {
            return bad("the session key must have at least 16 bytes");
        }
        if self.ping_interval.is_some_and(|p| p.is_zero()) {
            return bad("the ping interval must not be zero");
        }
        if self.max_message_size == 0 {
            return bad("max_message_size must be at least 1 byte");
        }
        Ok(())
    }
}
