//! [`ReadAhead`]: one large read from the transport under rustls, served to its small ones.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the transport at once: two 16 KiB records and their overhead.
const READ_AHEAD: usize = 32 << 10;

/// A read-ahead buffer under rustls. rustls asks its transport for at most 4 KiB per read, so
/// a 16 KiB record would take four or five `recv` calls; this serves those small reads from one
/// larger read. The buffer exists only while data is flowing: it is freed whenever the
/// transport has nothing more, so an idle connection holds none. Writes pass straight through
/// (vectored too).
#[derive(Debug)]
pub(crate) struct ReadAhead<S> {
    io: S,
    buf: Vec<u8>,
    pos: usize,
}

impl<S> ReadAhead<S> {
    pub(crate) fn new(io: S) -> Self {
        ReadAhead {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
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
            this.buf.reserve_exact(READ_AHEAD);
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Small reads are served from one large read, in order, and large reads go straight
    /// through; an idle stream ends up holding no buffer.
    #[tokio::test]
    async fn serves_small_reads_from_one_large_read_and_frees_when_idle() {
        let (mut peer, io) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        peer.write_all(&data).await.unwrap();
        let mut ahead = ReadAhead::new(io);
        let mut got = Vec::new();
        let mut small = [0u8; 4096];
        while got.len() < 60_000 {
            let n = ahead.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        let mut large = vec![0u8; 64 << 10];
        while got.len() < data.len() {
            let n = ahead.read(&mut large).await.unwrap();
            got.extend_from_slice(&large[..n]);
        }
        assert_eq!(got, data);
        // Drained, and the transport has nothing: the next read is pending and frees the buffer.
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), ahead.read(&mut small))
                .await;
        assert!(pending.is_err());
        assert_eq!(ahead.buf.capacity(), 0);
    }
}
