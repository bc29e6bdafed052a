//! [`WebSocket`]: a message stream and sink over any `AsyncRead + AsyncWrite`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tolqin_proto::connection::CloseInfo;
use tolqin_proto::prepared::PreparedMessage;
use tolqin_proto::{CloseCode, Connection, Message, MessageRef, Role, State};

use crate::reader::{Reader, Replies};
use crate::transport::WriteState;
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
    pub(crate) reader: Reader,
    /// Shared with the acceptor or client that made the connection.
    pub(crate) options: Arc<Options>,
    /// Boxed: only clients have one, and every server connection would pay for the field.
    url: Option<Box<http::Uri>>,
    /// Gather buffer (for TLS) and the write timeout.
    pub(crate) writer: WriteState,
}

/// Replies written straight to the transport the whole socket reads from.
struct Direct<'a>(&'a mut WriteState);

impl<S: AsyncWrite + Unpin> Replies<S> for Direct<'_> {
    fn poll_replies(
        &mut self,
        io: &mut S,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_write(io, conn, cx)
    }
    fn pending(&self, conn: &Connection) -> bool {
        conn.wants_write()
    }
    fn poll_shutdown(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(io).poll_shutdown(cx)
    }
}

/// The write-buffer limit: `len` more bytes may be queued behind `pending` (a peer that does
/// not read cannot make us queue without bound).
fn check_room(pending: usize, len: usize, max_write_buffer: usize) -> Result<()> {
    if pending + len > max_write_buffer {
        return Err(Error::WriteBufferFull(max_write_buffer));
    }
    Ok(())
}

/// Where a handler given to [`WebSocket::recv_with`] queues its replies: the connection's
/// sending side, with the same write-buffer limit as [`WebSocket::feed`]. What is queued is
/// written by the next [`WebSocket::flush`] (or the next read, which writes queued bytes too).
#[derive(Debug)]
pub struct Outbox<'a> {
    inner: tolqin_proto::Outbox<'a>,
    max_write_buffer: usize,
}

impl<'a> Outbox<'a> {
    pub(crate) fn new(inner: tolqin_proto::Outbox<'a>, max_write_buffer: usize) -> Self {
        Outbox {
            inner,
            max_write_buffer,
        }
    }

    fn check_room(&self, len: usize) -> Result<()> {
        check_room(self.inner.pending_bytes(), len, self.max_write_buffer)
    }

    /// Queues a copy of a borrowed message (an echo, a relay): a server copies a small
    /// message straight into its output buffer, with no allocation of its own.
    ///
    /// # Errors
    /// As [`WebSocket::feed`].
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.check_room(message.len())?;
        self.inner.send_ref(message)?;
        Ok(())
    }

    /// Queues an owned message.
    ///
    /// # Errors
    /// As [`WebSocket::feed`].
    pub fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        let message = message.into();
        self.check_room(message.len())?;
        self.inner.send(message)?;
        Ok(())
    }

    /// Server: queues a message encoded once for many connections (see
    /// [`WebSocket::feed_prepared`]).
    ///
    /// # Errors
    /// As [`WebSocket::feed_prepared`].
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.check_room(message.payload_len())?;
        self.inner.send_prepared(message)?;
        Ok(())
    }

    /// The browser's `bufferedAmount`: application bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.inner.buffered_amount()
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.reader.conn.role())
            .field("state", &self.reader.conn.state())
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
        Self::from_connection(io, conn, Arc::new(options), None)
    }

    /// Wraps a transport whose opening handshake another HTTP server completed with
    /// `response` (from [`crate::Acceptor::check`]): subprotocol, extensions and
    /// permessage-deflate are taken from it, and so is the place in
    /// [`crate::Acceptor::max_connections`] that `check` took: it is freed when this socket is
    /// dropped.
    pub fn from_upgraded(io: S, response: &http::Response<()>, options: Options) -> Self {
        let conn = Connection::from_response(Role::Server, options.protocol.clone(), response);
        let mut ws = Self::from_connection(io, conn, Arc::new(options), None);
        // `Acceptor::check`'s place in its connection limit, if it has one.
        ws.reader.permit = response
            .extensions()
            .get::<crate::server::Permit>()
            .cloned();
        ws
    }

    /// Wraps a transport and a protocol core that is already open (after [`crate::accept`] or
    /// [`crate::connect`] ran the handshake on them).
    pub(crate) fn from_connection(
        io: S,
        conn: Connection,
        options: Arc<Options>,
        url: Option<Box<http::Uri>>,
    ) -> Self {
        WebSocket {
            io,
            reader: Reader::new(conn, &options),
            writer: WriteState::new(options.write_timeout),
            options,
            url,
        }
    }

    /// The browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        if self.reader.done {
            return ReadyState::Closed;
        }
        match self.reader.conn.state() {
            State::Connecting => ReadyState::Connecting,
            State::Open => ReadyState::Open,
            State::Closing | State::Closed => ReadyState::Closing,
        }
    }

    /// The browser's `bufferedAmount`: payload bytes of messages queued and not yet written to
    /// the transport.
    pub fn buffered_amount(&self) -> usize {
        self.reader.conn.buffered_amount()
    }

    /// The subprotocol the server chose (the browser's `protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.reader.conn.protocol()
    }

    /// The negotiated extensions as a header value (the browser's `extensions`), empty if none.
    pub fn extensions(&self) -> String {
        self.reader
            .conn
            .extensions()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The URL this client connected to (the browser's `url`); `None` on a server.
    pub fn url(&self) -> Option<&http::Uri> {
        self.url.as_deref()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.reader.conn.role()
    }

    /// How the connection ended: the peer's code and reason and whether the close handshake
    /// completed; code 1006 and `was_clean == false` if the connection dropped without one.
    /// Meaningful once the stream has ended.
    pub fn close_info(&self) -> CloseInfo {
        self.reader.conn.close_info()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The sans-I/O protocol core.
    pub fn protocol_core(&self) -> &Connection {
        &self.reader.conn
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

    /// Receives messages without taking ownership of them: every message is lent to `handler`
    /// as a [`MessageRef`] together with an [`Outbox`] to queue replies through, and the call
    /// returns how many were handled once the input already received is used up (at least
    /// one); `None` once the connection is closed, as [`recv`](Self::recv).
    ///
    /// A whole message in one uncompressed frame is lent straight out of the read buffer: no
    /// allocation, no copy, no per-message object (see
    /// [`Connection::next_event_with`](tolqin_proto::Connection::next_event_with)). For
    /// servers that answer many small messages this is the fast path; replies queued with
    /// [`Outbox::send_ref`] are copied into one output buffer, written by the next
    /// [`flush`](Self::flush):
    ///
    /// ```no_run
    /// # async fn echo(mut ws: tolqin::WebSocket<tokio::net::TcpStream>) -> tolqin::Result<()> {
    /// while let Some(handled) = ws.recv_with(|message, out| out.send_ref(message)).await {
    ///     handled?;
    ///     ws.flush().await?; // the replies to everything that arrived together, in one write
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and the handler's error, returned at once (the messages
    /// after the one that failed stay buffered for the next call).
    ///
    /// (Not an `async fn`: the future is the poll function itself, so it holds the handler
    /// once and nothing else but `self`; it is what every idle connection waiting in it
    /// keeps.)
    pub fn recv_with<F>(&mut self, mut handler: F) -> impl Future<Output = Option<Result<usize>>>
    where
        F: FnMut(MessageRef<'_>, &mut Outbox<'_>) -> Result<()>,
    {
        poll_fn(move |cx| {
            self.reader.poll_recv_with(
                &mut self.io,
                &mut Direct(&mut self.writer),
                cx,
                self.options.max_write_buffer,
                &mut handler,
            )
        })
    }

    /// A message already received and buffered, without reading from the transport; `None`
    /// if completing one needs more input. Lets a server batch replies to pipelined messages
    /// before one flush.
    ///
    /// # Errors
    /// A protocol violation found in the buffered input.
    pub fn try_recv_buffered(&mut self) -> Option<Result<Message>> {
        self.reader.try_buffered()
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
        check_room(
            self.reader.conn.pending_bytes(),
            message.len(),
            self.options.max_write_buffer,
        )?;
        self.reader.conn.send(message)?;
        Ok(())
    }

    /// Server: queues a message encoded once for many connections (a broadcast), sharing its
    /// bytes instead of encoding (and compressing) it again for each; see
    /// [`tolqin_proto::prepared`]. Write it with [`flush`](Self::flush).
    ///
    /// # Errors
    /// As [`feed`](Self::feed); on a client, [`Error::Send`] (client frames are masked one by
    /// one and can't be shared).
    pub fn feed_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        check_room(
            self.reader.conn.pending_bytes(),
            message.payload_len(),
            self.options.max_write_buffer,
        )?;
        self.reader.conn.send_prepared(message)?;
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of payload.
    ///
    /// # Errors
    /// As [`send`](Self::send), and a payload over 125 bytes.
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<()> {
        self.reader.conn.send_ping(payload)?;
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
        self.reader.conn.close(code, reason)?;
        self.flush().await
    }

    /// Like [`close`](Self::close) with any code valid on the wire, for servers (1001 going
    /// away, 1008 policy violation, 1011 internal error...).
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.reader.conn.close_with(code, reason)?;
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
        if !self.reader.conn.close_sent()
            && !self.reader.done
            && self.reader.conn.state() != State::Closed
        {
            self.close(code, reason).await?;
        }
        while let Some(item) = self.recv().await {
            if let Err(e) = item {
                tracing::debug!(error = %e, "error while waiting for the close handshake");
            }
        }
        Ok(self.close_info())
    }

    /// The stream's poll: parse buffered input, answer pings, run the close handshake and the
    /// timers, read more.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.reader
            .poll_recv(&mut self.io, &mut Direct(&mut self.writer), cx)
    }

    /// Writes everything queued, then flushes the transport.
    pub(crate) fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer
            .poll_write(&mut self.io, &mut self.reader.conn, cx)
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
        if this.reader.conn.pending_bytes() >= this.options.write_buffer_size {
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
        if !this.reader.conn.close_sent() && this.reader.conn.state() == State::Open {
            this.reader.conn.close(Some(CloseCode::NORMAL), "")?;
        }
        this.poll_write_pending(cx).map_err(Error::Io)
    }
}
