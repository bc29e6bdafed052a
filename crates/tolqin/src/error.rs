//! The error type of the async layer.

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
    /// The handshake was refused with this HTTP status: on a server, by the origin check,
    /// the connection limit or the authentication hook (the response was sent); on a client,
    /// by the server (401, 403, 503...).
    #[error("handshake refused with HTTP {0}")]
    Rejected(http::StatusCode),
    /// The opening handshake did not complete within the handshake timeout.
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
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The proxy could not be used.
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The outgoing buffer exceeded its limit because the peer does not read.
    #[error("outgoing buffer over its limit of {0} bytes")]
    WriteBufferFull(usize),
    /// TLS failed: a certificate or key that cannot be used, a server certificate that does
    /// not verify (expired, wrong host, unknown CA), or the TLS handshake. Boxed because it is
    /// the largest variant, and every connection's state holds room for one `Error`.
    #[error(transparent)]
    Tls(Box<crate::tls::TlsError>),
}

impl From<crate::tls::TlsError> for Error {
    fn from(e: crate::tls::TlsError) -> Self {
        Error::Tls(Box::new(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
