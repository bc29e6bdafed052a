//! The transport of a client connection: plain TCP for `ws://`, TLS over TCP for `wss://`,
//! one type for both so that [`connect`](crate::connect) returns one `WebSocket` type.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::split::IntoSplit;
#[cfg(feature = "tls")]
use crate::tls::TlsStream;

/// A client's connection to the server: `ws://` or `wss://`.
///
/// Not exhaustive: [`Tls`](ClientStream::Tls) exists only with the `tls` feature.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP (boxed, so that `ws://` connections do not pay for its size).
    /// With the `tls` feature only.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP stream underneath (for `peer_addr`, `local_addr`, socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.get_ref(),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
            #[cfg(feature = "tls")]
            ClientStream::Tls(_) => true,
        }
    }
}

/// Forwards a call to whichever stream is inside.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            ClientStream::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
            #[cfg(feature = "tls")]
            ClientStream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        forward!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => s.poll_shutdown(cx))
    }
}

/// The read side of a split [`ClientStream`] (not exhaustive, as [`ClientStream`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientReadHalf {
    /// Plain TCP: tokio's owned half, no lock.
    Plain(OwnedReadHalf),
    /// TLS: one TLS state shared by both halves (`tokio::io::split`). With the `tls`
    /// feature only.
    #[cfg(feature = "tls")]
    Tls(tokio::io::ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The write side of a split [`ClientStream`] (not exhaustive, as [`ClientStream`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientWriteHalf {
    /// Plain TCP: tokio's owned half, no lock.
    Plain(OwnedWriteHalf),
    /// TLS: one TLS state shared by both halves (`tokio::io::split`). With the `tls`
    /// feature only.
    #[cfg(feature = "tls")]
    Tls(tokio::io::WriteHalf<Box<TlsStream<TcpStream>>>),
}

impl AsyncRead for ClientReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            ClientReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientWriteHalf::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            ClientWriteHalf::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl IntoSplit for ClientStream {
    type Read = ClientReadHalf;
    type Write = ClientWriteHalf;

    fn into_split(self) -> (ClientReadHalf, ClientWriteHalf) {
        match self {
            ClientStream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (ClientReadHalf::Plain(r), ClientWriteHalf::Plain(w))
            }
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (ClientReadHalf::Tls(r), ClientWriteHalf::Tls(w))
            }
        }
    }
}

#[cfg(feature = "tls")]
impl<S> IntoSplit for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;

    fn into_split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}
