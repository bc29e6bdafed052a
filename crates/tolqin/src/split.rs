//! A [`WebSocket`] split into a read half and a write half that work concurrently.
//!
//! The read half owns the read side of the transport and its own protocol core: reading takes
//! no lock. The write half's transport side and core sit behind a mutex that the read half
//! takes only when the protocol obliges a reply (a pong, the close echo), which is rare, so
//! the writer's mutex is uncontended on the hot path. Replies are written by whichever half
//! gets there first; the read half flushes them itself when the write half is idle, so pings
//! are answered even if the application never writes.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tolqin_proto::connection::CloseInfo;
use tolqin_proto::{CloseCode, Connection, Message, State};

use crate::reader::{Reader, Replies};
use crate::socket::ReadyState;
use crate::transport::WriteState;
use crate::{Error, Result, WebSocket};

struct Writer<W> {
    io: W,
    conn: Connection,
    state: WriteState,
}

struct Shared<W> {
    writer: Mutex<Writer<W>>,
    /// The write half sent a close frame.
    close_sent: AtomicBool,
    /// Replies were handed to the writer but not fully written yet.
    needs_flush: AtomicBool,
    write_buffer_size: usize,
    max_write_buffer: usize,
}

impl<W: AsyncWrite + Unpin> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, Writer<W>> {
        // A panic while holding the lock leaves the writer consistent (no invariant spans a
        // poll), so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.lock();
        let w = &mut *guard;
        let result = w.state.poll_write(&mut w.io, &mut w.conn, cx);
        self.needs_flush
            .store(result.is_pending(), Ordering::Release);
        if w.conn.close_sent() {
            self.close_sent.store(true, Ordering::Release);
        }
        result
    }
}

/// The read half of [`WebSocket::split`] over any transport.
pub type GenericReadHalf<S> = ReadHalf<tokio::io::ReadHalf<S>, tokio::io::WriteHalf<S>>;
/// The write half of [`WebSocket::split`] over any transport.
pub type GenericWriteHalf<S> = WriteHalf<tokio::io::WriteHalf<S>>;

/// The read half of a split [`WebSocket`]: a [`Stream`] of messages.
pub struct ReadHalf<R, W> {
    io: R,
    reader: Reader,
    shared: Arc<Shared<W>>,
}

/// The write half of a split [`WebSocket`]: a [`Sink`] of messages.
pub struct WriteHalf<W> {
    shared: Arc<Shared<W>>,
}

struct ViaWriter<'a, W>(&'a Shared<W>);

impl<R, W: AsyncWrite + Unpin> Replies<R> for ViaWriter<'_, W> {
    fn poll_replies(
        &mut self,
        _io: &mut R,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if conn.wants_write() || conn.close_sent() {
            let mut w = self.0.lock();
            w.conn.take_output(conn);
        }
        self.0.poll_flush(cx)
    }
    fn pending(&self, conn: &Connection) -> bool {
        conn.wants_write() || self.0.needs_flush.load(Ordering::Acquire)
    }
    fn poll_shutdown(&mut self, _io: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0.lock().io).poll_shutdown(cx)
    }
    fn close_sent_elsewhere(&self) -> bool {
        self.0.close_sent.load(Ordering::Acquire)
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Splits into a read half and a write half for two tasks, over any transport (through
    /// `tokio::io::split`, which locks the transport per call; for TCP prefer
    /// [`WebSocket::into_split`]).
    pub fn split(self) -> (GenericReadHalf<S>, GenericWriteHalf<S>) {
        self.split_with(tokio::io::split)
    }

    fn split_with<R, W>(
        self,
        split_io: impl FnOnce(S) -> (R, W),
    ) -> (ReadHalf<R, W>, WriteHalf<W>) {
        let WebSocket {
            io,
            mut reader,
            options,
            writer,
            ..
        } = self;
        let (read_io, write_io) = split_io(io);
        let mut conn = Connection::new(reader.conn.role(), reader.conn.shared_config().clone());
        conn.take_output(&mut reader.conn);
        let shared = Arc::new(Shared {
            close_sent: AtomicBool::new(conn.close_sent()),
            needs_flush: AtomicBool::new(conn.wants_write()),
            writer: Mutex::new(Writer {
                io: write_io,
                conn,
                state: writer,
            }),
            write_buffer_size: options.write_buffer_size,
            max_write_buffer: options.max_write_buffer,
        });
        (
            ReadHalf {
                io: read_io,
                reader,
                shared: shared.clone(),
            },
            WriteHalf { shared },
        )
    }
}

/// A transport that splits into owned read and write halves: TCP without a lock (tokio's
/// owned halves), TLS through `tokio::io::split` (one TLS state serves both directions).
pub trait IntoSplit: AsyncRead + AsyncWrite + Unpin + Sized {
    /// The read half.
    type Read: AsyncRead + Unpin;
    /// The write half.
    type Write: AsyncWrite + Unpin;
    /// Splits the transport.
    fn into_split(self) -> (Self::Read, Self::Write);
}

impl IntoSplit for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        TcpStream::into_split(self)
    }
}

impl<S: IntoSplit> WebSocket<S> {
    /// Splits into halves for two tasks, with the transport's own split (see [`IntoSplit`]):
    /// TCP halves share no lock on the transport. Works on what [`crate::connect`] returns,
    /// for `ws://` and `wss://` alike.
    #[allow(clippy::type_complexity)]
    pub fn into_split(self) -> (ReadHalf<S::Read, S::Write>, WriteHalf<S::Write>) {
        self.split_with(S::into_split)
    }
}

impl<R, W> ReadHalf<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Receives the next message; `None` once closed (see [`close_info`](Self::close_info)).
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A message already buffered, without reading (see [`WebSocket::try_recv_buffered`]).
    ///
    /// # Errors
    /// A protocol violation found in the buffered input.
    pub fn try_recv_buffered(&mut self) -> Option<Result<Message>> {
        self.reader.try_buffered()
    }

    /// Polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        let ReadHalf { io, reader, shared } = self;
        reader.poll_recv(io, &mut ViaWriter(shared), cx)
    }

    /// How the connection ended (meaningful once the stream has ended).
    pub fn close_info(&self) -> CloseInfo {
        self.reader.conn.close_info()
    }

    /// The browser's `readyState`, as seen from the read side.
    pub fn ready_state(&self) -> ReadyState {
        if self.reader.done {
            return ReadyState::Closed;
        }
        match self.reader.conn.state() {
            State::Connecting => ReadyState::Connecting,
            State::Open if !self.shared.close_sent.load(Ordering::Acquire) => ReadyState::Open,
            _ => ReadyState::Closing,
        }
    }
}

impl<W> WriteHalf<W>
where
    W: AsyncWrite + Unpin,
{
    /// Queues a message without writing it.
    ///
    /// # Errors
    /// As [`WebSocket::feed`].
    pub fn feed(&mut self, message: Message) -> Result<()> {
        let mut w = self.shared.lock();
        if w.conn.pending_bytes() + message.len() > self.shared.max_write_buffer {
            return Err(Error::WriteBufferFull(self.shared.max_write_buffer));
        }
        w.conn.send(message)?;
        Ok(())
    }

    /// Queues a message encoded once for many connections (see
    /// [`WebSocket::feed_prepared`]).
    ///
    /// # Errors
    /// As [`WebSocket::feed_prepared`].
    pub fn feed_prepared(
        &mut self,
        message: &tolqin_proto::prepared::PreparedMessage,
    ) -> Result<()> {
        let mut w = self.shared.lock();
        if w.conn.pending_bytes() + message.payload_len() > self.shared.max_write_buffer {
            return Err(Error::WriteBufferFull(self.shared.max_write_buffer));
        }
        w.conn.send_prepared(message)?;
        Ok(())
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.feed(message.into())?;
        self.flush().await
    }

    /// Writes everything queued and flushes the transport.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.shared.poll_flush(cx))
            .await
            .map_err(Error::Io)
    }

    /// Starts the close handshake as the browser's `close(code, reason)` does; the read half
    /// ends when the peer's close frame arrives or the close timeout passes.
    ///
    /// # Errors
    /// As [`WebSocket::close`].
    pub async fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        self.shared.lock().conn.close(code, reason)?;
        self.shared.close_sent.store(true, Ordering::Release);
        self.flush().await
    }

    /// Like [`close`](Self::close) with any code valid on the wire (1001 going away, 1008
    /// policy violation, 1011 internal error...), for servers.
    ///
    /// # Errors
    /// As [`WebSocket::close_with`].
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.shared.lock().conn.close_with(code, reason)?;
        self.shared.close_sent.store(true, Ordering::Release);
        self.flush().await
    }

    /// Payload bytes queued and not yet written (the browser's `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.shared.lock().conn.buffered_amount()
    }
}

impl<R, W> Stream for ReadHalf<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<W> Sink<Message> for WriteHalf<W>
where
    W: AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let pending = self.shared.lock().conn.pending_bytes();
        if pending >= self.shared.write_buffer_size {
            ready!(self.shared.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.get_mut().feed(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_flush(cx).map_err(Error::Io)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        {
            let mut w = self.shared.lock();
            if !w.conn.close_sent() {
                w.conn.close(Some(CloseCode::NORMAL), "")?;
            }
        }
        self.shared.close_sent.store(true, Ordering::Release);
        self.shared.poll_flush(cx).map_err(Error::Io)
    }
}
