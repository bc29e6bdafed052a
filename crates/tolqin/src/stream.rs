//! The transport of a client connection: plain TCP for `ws://`, TLS over TCP for `wss://`,
//! one type for both so that [`connect`](crate::connect) returns one `WebSocket` type.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::split::IntoSplit;
use crate::tls::{ClientTlsStream, ServerTlsStream};

/// A client's connection to the server: `ws://` or `wss://`.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP (boxed: the TLS state is large), reading ahead (see
    /// [`ReadAhead`]).
    Tls(Box<ClientTlsStream<ReadAhead<TcpStream>>>),
}

impl ClientStream {
    /// The TCP stream underneath (for `peer_addr`, `local_addr`, socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => tls.get_ref().0.get_ref(),
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
    Tls(tokio::io::ReadHalf<Box<ClientTlsStream<ReadAhead<TcpStream>>>>),
}

/// The write side of a split [`ClientStream`].
#[derive(Debug)]
pub enum ClientWriteHalf {
    /// Plain TCP: tokio's owned half, no lock.
    Plain(OwnedWriteHalf),
    /// TLS: one TLS state shared by both halves (`tokio::io::split`).
    Tls(tokio::io::WriteHalf<Box<ClientTlsStream<ReadAhead<TcpStream>>>>),
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

impl<S> IntoSplit for ServerTlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;

    fn into_split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// Bytes read from the transport at once under TLS.
const READ_AHEAD: usize = 32 << 10;

/// A read-ahead buffer under TLS. rustls asks its transport for at most 4 KiB per read, so a
/// 16 KiB record would take four or five `recv` calls; this serves those small reads from one
/// larger read. The buffer exists only while data is flowing: it is freed whenever it is
/// drained and the transport has nothing more, so an idle connection holds none. Writes pass
/// straight through (vectored too).
#[derive(Debug)]
pub struct ReadAhead<S> {
    io: S,
    buf: Vec<u8>,
    pos: usize,
}

impl<S> ReadAhead<S> {
    /// Wraps a transport.
    pub fn new(io: S) -> Self {
        ReadAhead {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably (reading from it directly would skip buffered bytes).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.buf.len() {
            if out.remaining() >= READ_AHEAD {
                return Pin::new(&mut this.io).poll_read(cx, out);
            }
            this.buf.clear();
            this.pos = 0;
            if this.buf.capacity() < READ_AHEAD {
                this.buf.reserve_exact(READ_AHEAD);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut this.buf) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Nothing to read: an idle connection keeps no buffer.
                    this.buf = Vec::new();
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(this.buf.len() - this.pos);
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
