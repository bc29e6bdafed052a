//! The error type of the async layer, and the errors of a client connecting: the URL, reaching
//! the server, and a server's refusal.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tolqin_proto::SendError;
use tolqin_proto::connection::ProtocolError;
use tolqin_proto::handshake::HandshakeError;

/// Everything that can go wrong on a WebSocket connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The opening handshake failed (on a server, the HTTP error response was sent).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// On a server: the handshake was refused with this HTTP status by the origin check, the
    /// connection limit or the authentication hook (the response was sent). A client refused
    /// by its server gets [`Error::Refused`].
    #[error("handshake refused with HTTP {0}")]
    Rejected(http::StatusCode),
    /// On a client: the server answered the opening handshake with another status than 101
    /// (401, 403, 503...): the status, the headers and the start of the body, which often says
    /// why. Boxed, as the other large variants.
    #[error(transparent)]
    Refused(Box<Refusal>),
    /// On a server: the opening handshake did not complete within the handshake timeout. A
    /// client's timeout is a [`ConnectError::Timeout`] that names the step.
    #[error("the opening handshake timed out")]
    HandshakeTimeout,
    /// The peer violated the protocol; the close frame with the right code was sent.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The message could not be sent (not open yet, already closing, invalid close code...).
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
    /// No pong came back within the pong timeout after a keepalive ping.
    #[error("no pong within the keepalive timeout")]
    KeepaliveTimeout,
    /// The URL cannot be connected to: refused by [`Client::new`](crate::Client::new) (or, for
    /// a `wss://` URL in a build without the `tls` feature, by
    /// [`Client::connect`](crate::Client::connect)) before anything is dialled.
    #[error(transparent)]
    Url(Box<UrlError>),
    /// The server could not be reached: its name does not resolve, the TCP connection failed,
    /// a step took longer than the handshake timeout, or it closed without answering.
    #[error(transparent)]
    Connect(Box<ConnectError>),
    /// The proxy could not be used.
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The outgoing buffer exceeded its limit because the peer does not read.
    #[error("outgoing buffer over its limit of {0} bytes")]
    WriteBufferFull(usize),
    /// TLS failed: a certificate or key that cannot be used, a server certificate that does
    /// not verify (expired, wrong host, unknown CA), the TLS handshake, or TLS on one side
    /// only (`wss://` to a plain server, `ws://` to a TLS one). Boxed because it is the
    /// largest variant, and every connection's state holds room for one `Error`.
    ///
    /// With the `tls` feature only.
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(Box<crate::tls::TlsError>),
}

#[cfg(feature = "tls")]
impl From<crate::tls::TlsError> for Error {
    fn from(e: crate::tls::TlsError) -> Self {
        Error::Tls(Box::new(e))
    }
}

#[cfg(feature = "tls")]
impl Error {
    /// The TLS failure this error is, if it is one: an [`Error::Tls`] (certificates, the
    /// handshake), or an [`Error::Io`] of a `wss://` connection whose source is a
    /// [`TlsError`](crate::tls::TlsError) (after the handshake: a forged record, a fatal
    /// alert from the peer, [`TlsError::Connection`](crate::tls::TlsError::Connection)).
    /// No downcasting needed.
    ///
    /// With the `tls` feature only.
    pub fn tls_error(&self) -> Option<&crate::tls::TlsError> {
        match self {
            Error::Tls(e) => Some(e),
            Error::Io(e) => e.get_ref()?.downcast_ref(),
            _ => None,
        }
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(Box::new(e))
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        Error::Connect(Box::new(e))
    }
}

impl From<Refusal> for Error {
    fn from(e: Refusal) -> Self {
        Error::Refused(Box::new(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a URL cannot be connected to. Each variant carries the URL (a password in it masked as
/// `***`) and the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at the start (`127.0.0.1:9001`).
    #[error("invalid URL {url:?}: no scheme; write ws://{url} (or wss://{url} for TLS)")]
    MissingScheme {
        /// The URL.
        url: String,
    },
    /// A scheme other than `ws`, `wss` (and their aliases `http`, `https`).
    #[error("invalid URL {url:?}: the scheme {scheme:?} is not supported; use ws:// or wss://")]
    UnsupportedScheme {
        /// The URL.
        url: String,
        /// The scheme given.
        scheme: String,
    },
    /// No host between `//` and the port or path (`ws:///x`, `ws://:9001/`).
    #[error("invalid URL {url:?}: no host; write ws://HOST[:PORT]/PATH")]
    MissingHost {
        /// The URL.
        url: String,
    },
    /// A host that is not a name or an IP address (a bracketed IPv6 address that does not
    /// parse, characters a host cannot have).
    #[error("invalid URL {url:?}: {host:?} is not a valid host name or IP address")]
    InvalidHost {
        /// The URL.
        url: String,
        /// The host part.
        host: String,
    },
    /// A port that is not a decimal number.
    #[error("invalid URL {url:?}: the port {port:?} is not a number")]
    PortNotANumber {
        /// The URL.
        url: String,
        /// The port part.
        port: String,
    },
    /// A port outside 1 to 65535 (port 0 cannot be connected to).
    #[error(
        "invalid URL {url:?}: the port {port} is out of range; a port to connect to is 1 to 65535"
    )]
    PortOutOfRange {
        /// The URL.
        url: String,
        /// The port part.
        port: String,
    },
    /// A fragment (`#...`): RFC 6455 section 3 forbids them in WebSocket URLs.
    #[error(
        "invalid URL {url:?}: a WebSocket URL cannot have a fragment ({fragment:?}; RFC 6455 \
         section 3); remove it, or write a # that belongs to the path or query as %23"
    )]
    Fragment {
        /// The URL.
        url: String,
        /// The fragment, with its `#`.
        fragment: String,
    },
    /// A user name (and password) before the host: tolqin does not send them.
    #[error(
        "invalid URL {url:?}: credentials in the URL ({user:?}) are not sent; remove them and \
         send them in a header: Client::header(http::header::AUTHORIZATION, ...)"
    )]
    UserInfo {
        /// The URL, the password masked.
        url: String,
        /// The user name.
        user: String,
    },
    /// Not a URL at all: what the URL parser found.
    #[error("invalid URL {url:?}: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `wss://` URL given to [`Client::connect`](crate::Client::connect) in a build of tolqin
    /// without its `tls` feature (never returned when the feature is on). A TLS stream of your
    /// own can still carry the handshake: [`Client::handshake_on`](crate::Client::handshake_on).
    #[error(
        "cannot connect to {url:?}: wss:// needs TLS, and this build of tolqin has no TLS; \
         enable tolqin's `tls` feature (or `native-roots` or `webpki-roots`), or run the \
         handshake over a TLS stream of your own with Client::handshake_on"
    )]
    TlsNotEnabled {
        /// The URL.
        url: String,
    },
}

impl UrlError {
    /// The URL (a password in it masked as `***`).
    pub fn url(&self) -> &str {
        match self {
            UrlError::MissingScheme { url }
            | UrlError::UnsupportedScheme { url, .. }
            | UrlError::MissingHost { url }
            | UrlError::InvalidHost { url, .. }
            | UrlError::PortNotANumber { url, .. }
            | UrlError::PortOutOfRange { url, .. }
            | UrlError::Fragment { url, .. }
            | UrlError::UserInfo { url, .. }
            | UrlError::Malformed { url, .. }
            | UrlError::TlsNotEnabled { url } => url,
        }
    }
}

/// The step of [`Client::connect`](crate::Client::connect) that a timeout interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectStep {
    /// Resolving the host name.
    Resolve,
    /// Opening the TCP connection.
    Tcp,
    /// Opening the tunnel through the proxy.
    Proxy,
    /// The TLS handshake (`wss://`).
    Tls,
    /// The WebSocket opening handshake: waiting for the server's response.
    Handshake,
}

impl fmt::Display for ConnectStep {
    /// What was being done: `resolving`, `connecting to`...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectStep::Resolve => "resolving",
            ConnectStep::Tcp => "connecting to",
            ConnectStep::Proxy => "opening the proxy tunnel to",
            ConnectStep::Tls => "in the TLS handshake with",
            ConnectStep::Handshake => "waiting for the WebSocket handshake response of",
        })
    }
}

/// Why a client could not reach its server. The I/O errors are kept as sources, so that their
/// [`kind`](io::Error::kind) can still be matched ([`ConnectError::io_error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name could not be resolved (DNS).
    #[error("cannot resolve {host}: {}", io_text(source))]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// The host name resolved to no address.
    #[error("cannot resolve {host}: it has no address")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// The TCP connection failed, to every address the host resolved to.
    #[error("cannot connect to {}{}: {}", authority(host, *port), tried_text(host, tried), io_text(source))]
    Tcp {
        /// The host, as in the URL (an IPv6 address without brackets).
        host: String,
        /// The port.
        port: u16,
        /// The addresses tried, in order; `source` is the last one's error.
        tried: Vec<SocketAddr>,
        /// Why the last one failed (`ConnectionRefused`, `TimedOut`...).
        #[source]
        source: io::Error,
    },
    /// A step did not finish within the handshake timeout
    /// ([`Options::with_handshake_timeout`](crate::Options::with_handshake_timeout)), which
    /// covers them all.
    #[error(
        "timed out {step} {target} (the handshake timeout of {} covers every step; \
         Options::with_handshake_timeout sets it)",
        humantime::format_duration(*timeout)
    )]
    Timeout {
        /// The step.
        step: ConnectStep,
        /// What it was about: the host name, `address:port`, or `host:port`.
        target: String,
        /// The handshake timeout.
        timeout: Duration,
    },
    /// The server closed the connection before its handshake response was complete.
    #[error(
        "{target} closed the connection {}{}",
        if *received == 0 { "before answering the WebSocket handshake" }
        else { "in the middle of its handshake response" },
        if *received == 0 && !*secure { " (a TLS server? then use wss://)" } else { "" }
    )]
    Closed {
        /// `host:port`.
        target: String,
        /// Bytes of the response received before the end.
        received: usize,
        /// Whether the connection was over TLS.
        secure: bool,
    },
}

impl ConnectError {
    /// The underlying I/O error, if any: match its [`kind`](io::Error::kind).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ConnectError::Resolve { source, .. } | ConnectError::Tcp { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `host:port`, the host in brackets if it is an IPv6 address.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// ` (tried A, B)` when the host is a name; nothing when it is the address tried.
fn tried_text(host: &str, tried: &[SocketAddr]) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() || tried.is_empty() {
        return String::new();
    }
    let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
    format!(" (tried {})", list.join(", "))
}

/// An I/O error in words: `connection refused` rather than `Connection refused (os error 111)`.
pub(crate) fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Lower-case a capitalized first word ("Connection refused"), not an acronym.
        Some(first)
            if first.is_ascii_uppercase()
                && chars.next().is_some_and(|c| c.is_ascii_lowercase()) =>
        {
            format!("{}{}", first.to_ascii_lowercase(), &text[1..])
        }
        _ => text.to_string(),
    }
}

/// Bytes of a refusal's body kept (and shown at most).
pub(crate) const REFUSAL_BODY_LIMIT: usize = 1024;

/// A server's refusal of the opening handshake: an HTTP response with another status than 101.
///
/// Its `Display` is the status line and the body, control characters escaped (a server cannot
/// drive the terminal the message is printed on) and cut with `…` past 1 KiB:
/// `ws://127.0.0.1:9001/ refused the WebSocket handshake: HTTP/1.1 401 Unauthorized: log in first`.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub(crate) url: String,
    pub(crate) version: u8,
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) truncated: bool,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase the server sent (`Unauthorized`), possibly empty.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The response's header fields (`WWW-Authenticate`, `Retry-After`...).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, or its first 1 KiB: what arrived within a short wait after the head
    /// (chunked transfer coding removed).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether the body was longer than [`Refusal::body`], or did not all arrive in time.
    pub fn is_body_truncated(&self) -> bool {
        self.truncated
    }

    /// The URL whose handshake was refused.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason.trim() {
            "" => self.status.canonical_reason().unwrap_or(""),
            reason => reason,
        };
        write!(
            f,
            "{} refused the WebSocket handshake: HTTP/1.{} {}",
            self.url,
            self.version,
            self.status.as_str()
        )?;
        if !reason.is_empty() {
            write!(f, " {}", escape(reason.as_bytes(), usize::MAX))?;
        }
        let body = self.body.trim_ascii();
        if !body.is_empty() {
            let mut shown = escape(body, REFUSAL_BODY_LIMIT);
            if self.truncated && !shown.ends_with('…') {
                shown.push('…');
            }
            write!(f, ": {shown}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

/// Text from a peer, safe to print on a terminal: control characters escaped (`\n`, `\x1b`),
/// as are the bidirectional overrides that reorder what is shown and bytes that are not UTF-8;
/// cut with `…` after `max` characters.
pub(crate) fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        let invalid = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        let valid = chunk.valid().chars().map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => format!("\\u{{{:04x}}}", c as u32),
            c => c.to_string(),
        });
        for piece in valid.chain(invalid) {
            if shown == max {
                out.push('…');
                return out;
            }
            out.push_str(&piece);
            shown += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_control_characters_and_cut() {
        assert_eq!(escape(b"plain text", 100), "plain text");
        assert_eq!(escape(b"a\nb\r\tc", 100), "a\\nb\\r\\tc");
        assert_eq!(escape(b"\x1b[31mred\x1b[0m", 100), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("\u{7f}\u{9b}".as_bytes(), 100), "\\x7f\\x9b");
        assert_eq!(escape("a\u{202e}b".as_bytes(), 100), "a\\u{202e}b");
        assert_eq!(escape(b"ok \xff\xfe!", 100), "ok \\xff\\xfe!");
        assert_eq!(escape("żółw".as_bytes(), 100), "żółw");
        assert_eq!(escape(b"abcdef", 3), "abc…");
        assert_eq!(escape(b"abc", 3), "abc");
    }

    #[test]
    fn io_errors_in_words() {
        // ECONNREFUSED is 111 on Linux.
        #[cfg(target_os = "linux")]
        assert_eq!(
            io_text(&io::Error::from_raw_os_error(111)),
            "connection refused"
        );
        assert_eq!(io_text(&io::Error::other("TLS alert")), "TLS alert");
        assert_eq!(io_text(&io::Error::other("failed")), "failed");
    }
}
