//! [`WebSocket`]: a message stream and sink over any `AsyncRead + AsyncWrite`.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Interval, Sleep};
use tolqin_proto::connection::CloseInfo;
use tolqin_proto::{CloseCode, Connection, Event, Message, Role, State};

use crate::{Error, Options, Result};

/// The browser's `WebSocket.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum ReadyState {
    /// 0: the opening handshake is in progress.
    Connecting = 0,
    /// 1: open; messages flow both ways.
    Open = 1,
    /// 2: the close handshake has started, or the transport is being closed.
    Closing = 2,
    /// 3: closed.
    Closed = 3,
}

/// Bytes read into the stack at once when the connection holds no read buffer, so an idle
/// connection holds no buffer at all.
const STACK_READ: usize = 8 << 10;
/// Largest single reservation for a frame that is still arriving (the frame itself is bounded
/// by the configured max frame size; this bounds what a peer that stalls can make us reserve).
const MAX_RESERVE: usize = 256 << 10;
/// Slices per vectored write.
const MAX_SLICES: usize = 64;

/// A WebSocket connection after the opening handshake, over the transport `S`.
///
/// It is a [`Stream`] of incoming [`Message`]s and a [`Sink`] of outgoing ones, and has the
/// browser's members where Rust allows: [`ready_state`](Self::ready_state),
/// [`buffered_amount`](Self::buffered_amount), [`protocol`](Self::protocol),
/// [`extensions`](Self::extensions), [`url`](Self::url) and [`close`](Self::close). Pings are
/// answered, and the close handshake and its timeout are handled, while the stream is polled.
/// When the stream ends, [`close_info`](Self::close_info) says how (code, reason, `was_clean`).
pub struct WebSocket<S> {
    pub(crate) io: S,
    pub(crate) conn: Connection,
    options: Options,
    url: Option<http::Uri>,
    keepalive: Option<Keepalive>,
    close_deadline: Option<Pin<Box<Sleep>>>,
    /// Error to report once the close frame is flushed and the transport closed.
    error: Option<Error>,
    /// The stream has ended: the transport is closed (or abandoned after an error).
    done: bool,
    /// Staging buffer for transports without vectored writes (TLS), so a frame header and its
    /// payload go out in one write.
    gather: Vec<u8>,
}

struct Keepalive {
    interval: Interval,
    awaiting_pong: bool,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.conn.role())
            .field("state", &self.conn.state())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a transport whose opening handshake is already done (for example a hyper upgrade).
    pub fn from_raw(io: S, role: Role, options: Options) -> Self {
        let conn = Connection::new(role, options.protocol.clone());
        Self::from_connection(io, conn, options, None)
    }

    /// Wraps a transport and a protocol core that is already open (after [`crate::accept`] or
    /// [`crate::connect`] ran the handshake on them).
    pub(crate) fn from_connection(
        io: S,
        conn: Connection,
        options: Options,
        url: Option<http::Uri>,
    ) -> Self {
        let keepalive = options.ping_interval.map(|period| Keepalive {
            interval: tokio::time::interval_at(Instant::now() + period, period),
            awaiting_pong: false,
        });
        WebSocket {
            io,
            conn,
            options,
            url,
            keepalive,
            close_deadline: None,
            error: None,
            done: false,
            gather: Vec::new(),
        }
    }

    /// The browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        if self.done {
            return ReadyState::Closed;
        }
        match self.conn.state() {
            State::Connecting => ReadyState::Connecting,
            State::Open => ReadyState::Open,
            State::Closing | State::Closed => ReadyState::Closing,
        }
    }

    /// The browser's `bufferedAmount`: payload bytes of messages queued and not yet written to
    /// the transport.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }

    /// The subprotocol the server chose (the browser's `protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.conn.protocol()
    }

    /// The negotiated extensions as a header value (the browser's `extensions`), empty if none.
    pub fn extensions(&self) -> String {
        self.conn
            .extensions()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The URL this client connected to (the browser's `url`); `None` on a server.
    pub fn url(&self) -> Option<&http::Uri> {
        self.url.as_ref()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.conn.role()
    }

    /// How the connection ended: the peer's code and reason and whether the close handshake
    /// completed; code 1006 and `was_clean == false` if the connection dropped without one.
    /// Meaningful once the stream has ended.
    pub fn close_info(&self) -> CloseInfo {
        self.conn.close_info()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The sans-I/O protocol core.
    pub fn protocol_core(&self) -> &Connection {
        &self.conn
    }

    /// Receives the next message; `None` once the connection is closed (see
    /// [`close_info`](Self::close_info)).
    ///
    /// # Errors
    /// A protocol violation by the peer (after the close frame was sent and the transport
    /// closed), an I/O error, or a keepalive timeout; the stream ends after it.
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A message already received and buffered, without reading from the transport; `None`
    /// if completing one needs more input. Lets a server batch replies to pipelined messages
    /// before one flush.
    ///
    /// # Errors
    /// A protocol violation found in the buffered input.
    pub fn try_recv_buffered(&mut self) -> Option<Result<Message>> {
        if self.done || self.error.is_some() {
            return None;
        }
        while let Some(event) = self.conn.next_event() {
            if let Some(message) = self.on_event(event) {
                return Some(Ok(message));
            }
        }
        None
    }

    /// Queues a message and writes everything queued.
    ///
    /// # Errors
    /// [`Error::Send`] if the connection is not open or is closing; [`Error::WriteBufferFull`]
    /// if the peer does not read; [`Error::Io`].
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.feed(message.into())?;
        self.flush().await
    }

    /// Queues a message without writing it (see [`flush`](Self::flush)).
    ///
    /// # Errors
    /// As [`send`](Self::send), without the I/O errors.
    pub fn feed(&mut self, message: Message) -> Result<()> {
        if self.conn.pending_bytes() + message.len() > self.options.max_write_buffer {
            return Err(Error::WriteBufferFull(self.options.max_write_buffer));
        }
        self.conn.send(message)?;
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of payload.
    ///
    /// # Errors
    /// As [`send`](Self::send), and a payload over 125 bytes.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<()> {
        self.conn.send_ping(payload)?;
        self.flush().await
    }

    /// Writes everything queued and flushes the transport.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.poll_write_pending(cx))
            .await
            .map_err(Error::Io)
    }

    /// Starts the close handshake as the browser's `close(code, reason)` does (code 1000 or
    /// 3000-4999, reason at most 123 bytes of UTF-8; `None` sends no code) and writes the close
    /// frame. Keep reading the stream: it ends when the peer's close frame arrives or the close
    /// timeout passes.
    ///
    /// # Errors
    /// [`Error::Send`] for an invalid code or reason or when already closing; [`Error::Io`].
    pub async fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        self.conn.close(code, reason)?;
        self.flush().await
    }

    /// Like [`close`](Self::close) with any code valid on the wire, for servers (1001 going
    /// away, 1008 policy violation, 1011 internal error...).
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.conn.close_with(code, reason)?;
        self.flush().await
    }

    /// Closes (code 1000 if open), then reads until the peer's close frame or the close
    /// timeout, discarding messages, and closes the transport.
    ///
    /// # Errors
    /// [`Error::Io`] while writing the close frame.
    pub async fn close_and_wait(
        &mut self,
        code: Option<CloseCode>,
        reason: &str,
    ) -> Result<CloseInfo> {
        if !self.conn.close_sent() && !self.done && self.conn.state() != State::Closed {
            self.close(code, reason).await?;
        }
        while let Some(item) = self.recv().await {
            if let Err(e) = item {
                tracing::debug!(error = %e, "error while waiting for the close handshake");
            }
        }
        Ok(self.close_info())
    }

    /// Handles one protocol event; returns a message for the caller.
    fn on_event(&mut self, event: Event) -> Option<Message> {
        match event {
            Event::Message(message) => return Some(message),
            Event::Pong(_) => {
                if let Some(k) = &mut self.keepalive {
                    k.awaiting_pong = false;
                }
            }
            Event::Error(e) => {
                tracing::debug!(code = %e.close_code(), error = %e, "failing the connection");
                self.error = Some(Error::Protocol(e));
            }
            Event::Close(frame) => {
                tracing::trace!(code = %frame.code, "close frame received");
            }
            _ => {}
        }
        None
    }

    fn finish(&mut self) -> Poll<Option<Result<Message>>> {
        self.done = true;
        self.close_deadline = None;
        self.keepalive = None;
        self.conn.shrink_read_buffer();
        Poll::Ready(self.error.take().map(Err))
    }

    /// The stream's poll: parse buffered input, answer pings, run the close handshake and the
    /// timers, read more.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        loop {
            if self.done {
                return Poll::Ready(self.error.take().map(Err));
            }
            while let Some(event) = self.conn.next_event() {
                if let Some(message) = self.on_event(event) {
                    return Poll::Ready(Some(Ok(message)));
                }
            }
            // Replies the protocol obliges (pong, close echo) go out without waiting for the
            // caller to write; Pending here just means the transport is full for now.
            if self.conn.wants_write() {
                if let Poll::Ready(Err(e)) = self.poll_write_pending(cx) {
                    self.conn.receive_eof();
                    self.error.get_or_insert(Error::Io(e));
                    return self.finish();
                }
            }
            if self.conn.close_sent() && self.close_deadline.is_none() {
                let deadline = Instant::now() + self.options.close_timeout;
                self.close_deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
            }
            if let Some(deadline) = &mut self.close_deadline {
                if deadline.as_mut().poll(cx).is_ready() {
                    tracing::debug!("close handshake timed out; dropping the connection");
                    self.conn.receive_eof();
                    return self.finish();
                }
            }
            if self.conn.state() == State::Closed {
                if self.conn.wants_write() {
                    return Poll::Pending; // woken when writable, or by the close deadline
                }
                let info = self.conn.close_info();
                if self.conn.role() == Role::Client && info.was_clean {
                    // RFC 6455 7.1.1: the client waits for the server to close the TCP
                    // connection first (bounded by the close timeout above).
                    let mut sink = [0u8; 512];
                    let mut buf = ReadBuf::new(&mut sink);
                    match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                        Poll::Ready(_) => {}
                    }
                }
                let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                return self.finish();
            }
            if let Some(k) = &mut self.keepalive {
                if k.interval.poll_tick(cx).is_ready() {
                    if k.awaiting_pong {
                        tracing::debug!(
                            "no pong before the next keepalive ping; dropping the connection"
                        );
                        self.conn.receive_eof();
                        self.error = Some(Error::KeepaliveTimeout);
                        let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                        return self.finish();
                    }
                    if self.conn.state() == State::Open && self.conn.send_ping(Bytes::new()).is_ok()
                    {
                        k.awaiting_pong = true;
                    }
                    continue;
                }
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => self.conn.receive_eof(),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    self.conn.receive_eof();
                    self.error.get_or_insert(Error::Io(e));
                    return self.finish();
                }
                Poll::Pending => {
                    self.conn.shrink_read_buffer();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Reads more input into the protocol core.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let missing = self.conn.frame_bytes_missing();
        let buf = self.conn.read_buffer();
        if buf.is_empty() && missing == 0 {
            // Between frames with nothing buffered: read into the stack, so that an idle
            // connection waiting here holds no heap buffer.
            let mut stack = [0u8; STACK_READ];
            let mut read = ReadBuf::new(&mut stack);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            self.conn.receive(read.filled());
            return Poll::Ready(Ok(n));
        }
        let want = missing.clamp(STACK_READ, MAX_RESERVE);
        if buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf)
    }

    /// Writes everything queued, then flushes the transport.
    pub(crate) fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let written = if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = self.conn.io_slices(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))?
            } else {
                // Gather small frames into one write: over TLS every write is a record.
                if self.gather.is_empty() {
                    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                    let n = self.conn.io_slices(&mut slices);
                    for s in &slices[..n] {
                        if !self.gather.is_empty() && self.gather.len() + s.len() > 64 << 10 {
                            break;
                        }
                        self.gather.extend_from_slice(s);
                    }
                }
                let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.gather))?;
                self.gather.drain(..n);
                n
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.conn.advance_written(written);
        }
        if self.gather.capacity() > 64 << 10 {
            self.gather = Vec::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S> Sink<Message> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.conn.pending_bytes() >= this.options.write_buffer_size {
            ready!(this.poll_write_pending(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.get_mut().feed(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_write_pending(cx).map_err(Error::Io)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if !this.conn.close_sent() && this.conn.state() == State::Open {
            this.conn.close(Some(CloseCode::NORMAL), "")?;
        }
        this.poll_write_pending(cx).map_err(Error::Io)
    }
}
