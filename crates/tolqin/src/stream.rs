//! The transport of a client connection: plain TCP for `ws://`, TLS over TCP for `wss://`,
//! one type for both so that [`connect`](crate::connect) returns one `WebSocket` type.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::split::IntoSplit;
use crate::tls::TlsStream;

/// A client's connection to the server: `ws://` or `wss://`.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP (boxed, so that `ws://` connections do not pay for its size).
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP stream underneath (for `peer_addr`, `local_addr`, socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => tls.get_ref(),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
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

/// The read side of a split [`ClientStream`].
#[derive(Debug)]
pub enum ClientReadHalf {
    /// Plain TCP: tokio's owned half, no lock.
    Plain(OwnedReadHalf),
    /// TLS: one TLS state shared by both halves (`tokio::io::split`).
    Tls(tokio::io::ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The write side of a split [`ClientStream`].
#[derive(Debug)]
pub enum ClientWriteHalf {
    /// Plain TCP: tokio's owned half, no lock.
    Plain(OwnedWriteHalf),
    /// TLS: one TLS state shared by both halves (`tokio::io::split`).
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
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientWriteHalf::Plain(s) => s.is_write_vectored(),
            ClientWriteHalf::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientWriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
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
            ClientStream::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (ClientReadHalf::Tls(r), ClientWriteHalf::Tls(w))
            }
        }
    }
}

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
