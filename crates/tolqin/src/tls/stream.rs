//! [`TlsStream`]: TLS over any transport, the handshake and the records by rustls (through
//! tokio-rustls).
//!
//! What the stream adds to tokio-rustls's: one type for both sides, what the handshake settled
//! (ALPN, certificates, version, suite) at hand, and errors in tolqin's words: a failed
//! handshake is an [`Error::Tls`](crate::Error::Tls) with the certificate problem named, and a
//! TLS failure after it (a forged record, a fatal alert) is an I/O error whose source is a
//! [`TlsError::Connection`], which [`Error::tls_error`](crate::Error::tls_error) finds.
//!
//! rustls does the rest: `close_notify` is end of file, an end of file without it is
//! [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) (a truncation), TLS 1.3 key updates are
//! followed and answered (and ours sent before the confidentiality limit), session tickets
//! are kept for resumption, and its buffers are bounded.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, CommonState, ProtocolVersion, ServerConfig, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::{TlsError, handshake_error};
use super::read_ahead::ReadAhead;

/// A TLS connection over the transport `S` (TCP, usually), as
/// [`TlsServer::accept`](super::TlsServer::accept) and
/// [`TlsClient::connect`](super::TlsClient::connect) return it: TLS 1.2 or 1.3, protected by
/// rustls.
pub struct TlsStream<S> {
    /// Boxed: a connection is often moved, and rustls's state is large. rustls reads at most
    /// 4 KiB at a time: [`ReadAhead`] serves it from one larger read.
    inner: Box<tokio_rustls::TlsStream<ReadAhead<S>>>,
    protocol: ProtocolVersion,
    suite: SupportedCipherSuite,
}

impl<S: fmt::Debug> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("io", self.get_ref())
            .field("protocol", &self.protocol)
            .field("suite", &self.suite.suite())
            .finish_non_exhaustive()
    }
}

impl<S> TlsStream<S> {
    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().0.get_ref()
    }

    /// The transport, mutably (reading or writing it directly would corrupt the TLS stream).
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut().0.get_mut()
    }

    fn common(&self) -> &CommonState {
        self.inner.get_ref().1
    }

    /// The ALPN protocol agreed on (`http/1.1` with tolqin's configs), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    /// The peer's certificate chain, the end entity first (a client's only when the server
    /// asked for one).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    /// The protocol version: TLS 1.2 or 1.3.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.protocol
    }

    /// The cipher suite.
    pub fn negotiated_cipher_suite(&self) -> SupportedCipherSuite {
        self.suite
    }

    /// After the handshake: what it settled, kept for the accessors that cannot fail.
    fn new(inner: tokio_rustls::TlsStream<ReadAhead<S>>, peer: &str) -> crate::Result<Self> {
        let common = inner.get_ref().1;
        let settled = common
            .protocol_version()
            .zip(common.negotiated_cipher_suite());
        let Some((protocol, suite)) = settled else {
            return Err(handshake_error(&rustls::Error::HandshakeNotComplete, peer));
        };
        Ok(TlsStream {
            inner: Box::new(inner),
            protocol,
            suite,
        })
    }
}

/// Runs a client's TLS handshake over `io` for `name`; `peer` names the server in errors.
pub(crate) async fn connect<S>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    io: S,
    peer: &str,
) -> crate::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, ReadAhead::new(io))
        .await
        .map_err(|e| handshake_io_error(e, peer))?;
    TlsStream::new(tokio_rustls::TlsStream::Client(tls), peer)
}

/// Runs a server's TLS handshake over `io`; `peer` names the client in errors.
pub(crate) async fn accept<S>(
    config: Arc<ServerConfig>,
    io: S,
    peer: &str,
) -> crate::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = tokio_rustls::TlsAcceptor::from(config)
        .accept(ReadAhead::new(io))
        .await
        .map_err(|e| handshake_io_error(e, peer))?;
    TlsStream::new(tokio_rustls::TlsStream::Server(tls), peer)
}

/// A failed handshake in tolqin's terms: what rustls refused becomes a typed [`TlsError`]
/// (tokio-rustls had already sent the peer rustls's alert for it), the peer leaving early an
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) that says so, and any other I/O error
/// stays one.
fn handshake_io_error(e: io::Error, peer: &str) -> crate::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        if let Some(Ok(tls)) = e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            return handshake_error(&tls, peer);
        }
        // Unreachable: the source was a rustls::Error a moment ago.
        return eof("the TLS handshake failed").into();
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return eof("the peer closed the connection during the TLS handshake").into();
    }
    e.into()
}

fn eof(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what)
}

/// An I/O error of the stream after the handshake: one whose source is what rustls found
/// becomes one whose source is a [`TlsError::Connection`], reachable without knowing rustls's
/// error type. Only failures pay for the check.
fn typed(e: io::Error) -> io::Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return e;
    }
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<rustls::Error>())
    {
        Some(Ok(tls)) => io::Error::new(kind, TlsError::Connection(*tls)),
        Some(Err(other)) => io::Error::new(kind, other),
        None => kind.into(),
    }
}

fn typed_poll<T>(poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    match poll {
        Poll::Ready(Err(e)) => Poll::Ready(Err(typed(e))),
        other => other,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        typed_poll(Pin::new(&mut *self.get_mut().inner).poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        typed_poll(Pin::new(&mut *self.get_mut().inner).poll_write(cx, buf))
    }

    /// Vectored: rustls seals the slices into records as they are, without gathering them
    /// first.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        typed_poll(Pin::new(&mut *self.get_mut().inner).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        typed_poll(Pin::new(&mut *self.get_mut().inner).poll_flush(cx))
    }

    /// Sends `close_notify`, then shuts the transport down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        typed_poll(Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx))
    }
}
