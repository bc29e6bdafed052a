//! The read side's state machine, shared by [`crate::WebSocket`] and its split read half:
//! parse events, get the obliged replies written, run the close handshake and its timeout,
//! keepalive pings, and read more input.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Interval, Sleep};
use tolqin_proto::{Connection, Event, Message, MessageRef, Role, State};

use crate::{Error, Options, Result, transport};

/// How the read side gets its replies written and the transport shut down: directly on the
/// transport it reads from (a whole [`crate::WebSocket`]), or through the write half.
pub(crate) trait Replies<R> {
    /// Writes what `conn` has queued; `Pending` only means "not yet".
    fn poll_replies(
        &mut self,
        io: &mut R,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>;
    /// Whether anything waits to be written (checked on every poll: no lock here).
    fn pending(&self, conn: &Connection) -> bool;
    /// Closes the transport's write side.
    fn poll_shutdown(&mut self, io: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Whether the other half sent a close frame.
    fn close_sent_elsewhere(&self) -> bool {
        false
    }
}

struct Keepalive {
    interval: Interval,
    awaiting_pong: bool,
}

/// The close handshake's time limit.
enum CloseTimer {
    /// Not started: the timeout to run once our close frame is queued.
    Armed(Duration),
    /// Running.
    Running(Pin<Box<Sleep>>),
    /// The stream ended.
    Done,
}

/// Read-side state of one connection.
pub(crate) struct Reader {
    pub(crate) conn: Connection,
    /// Boxed: most connections have no keepalive, and every idle one pays for the field.
    keepalive: Option<Box<Keepalive>>,
    /// The close timeout, then (once our close frame is queued) its running timer: one field,
    /// not two, as every idle connection pays for the fields.
    close_timer: CloseTimer,
    /// Error to report once the close frame is written and the transport closed.
    /// Boxed, for the same reason.
    error: Option<Box<Error>>,
    /// The stream has ended.
    pub(crate) done: bool,
    /// The slot this connection holds in its acceptor's connection limit.
    pub(crate) permit: Option<crate::server::Permit>,
}

impl Reader {
    pub(crate) fn new(conn: Connection, options: &Options) -> Self {
        let keepalive = options.ping_interval.map(|period| {
            Box::new(Keepalive {
                interval: tokio::time::interval_at(Instant::now() + period, period),
                awaiting_pong: false,
            })
        });
        Reader {
            conn,
            keepalive,
            close_timer: CloseTimer::Armed(options.close_timeout),
            error: None,
            done: false,
            permit: None,
        }
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
                self.error = Some(Box::new(Error::Protocol(e)));
            }
            Event::Close(frame) => tracing::trace!(code = %frame.code, "close frame received"),
            _ => {}
        }
        None
    }

    fn finish<T>(&mut self) -> Poll<Option<Result<T>>> {
        self.done = true;
        self.close_timer = CloseTimer::Done;
        self.keepalive = None;
        self.conn.shrink_read_buffer();
        Poll::Ready(self.error.take().map(|e| Err(*e)))
    }

    fn fail_io<T>(&mut self, e: io::Error) -> Poll<Option<Result<T>>> {
        tracing::debug!(error = %e, "transport failed");
        self.conn.receive_eof();
        self.error.get_or_insert(Box::new(Error::Io(e)));
        self.finish()
    }

    /// A message already buffered, without reading.
    pub(crate) fn try_buffered(&mut self) -> Option<Result<Message>> {
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

    pub(crate) fn poll_recv<R, P>(
        &mut self,
        io: &mut R,
        replies: &mut P,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message>>>
    where
        R: AsyncRead + Unpin,
        P: Replies<R>,
    {
        self.poll_input(io, replies, cx, |reader| {
            while let Some(event) = reader.conn.next_event() {
                if let Some(message) = reader.on_event(event) {
                    return Some(Ok(message));
                }
            }
            None
        })
    }

    /// [`Reader::poll_recv`] with every message lent to `handler` instead of returned
    /// ([`Connection::next_event_with`]): ready with how many were handled once the input
    /// buffered is used up and at least one was.
    pub(crate) fn poll_recv_with<R, P, F>(
        &mut self,
        io: &mut R,
        replies: &mut P,
        cx: &mut Context<'_>,
        max_write_buffer: usize,
        handler: &mut F,
    ) -> Poll<Option<Result<usize>>>
    where
        R: AsyncRead + Unpin,
        P: Replies<R>,
        F: FnMut(MessageRef<'_>, &mut crate::Outbox<'_>) -> Result<()>,
    {
        self.poll_input(io, replies, cx, |reader| {
            let mut handled = 0;
            loop {
                let next = reader.conn.next_event_with(|message, out| {
                    handled += 1;
                    handler(
                        message,
                        &mut crate::Outbox::new(out.reborrow(), max_write_buffer),
                    )
                });
                match next {
                    // Never a message: those went to the handler.
                    Ok(Some(event)) => {
                        reader.on_event(event);
                    }
                    Ok(None) => break,
                    Err(e) => return Some(Err(e)),
                }
            }
            (handled > 0).then_some(Ok(handled))
        })
    }

    /// The read side's loop: `parse` takes what it wants of the buffered input (returning it
    /// ends the poll); then the obliged replies, the close handshake, the timers, and more
    /// input.
    fn poll_input<R, P, T>(
        &mut self,
        io: &mut R,
        replies: &mut P,
        cx: &mut Context<'_>,
        mut parse: impl FnMut(&mut Self) -> Option<Result<T>>,
    ) -> Poll<Option<Result<T>>>
    where
        R: AsyncRead + Unpin,
        P: Replies<R>,
    {
        loop {
            if self.done {
                return Poll::Ready(self.error.take().map(|e| Err(*e)));
            }
            if !self.conn.close_sent() && replies.close_sent_elsewhere() {
                self.conn.note_close_sent();
            }
            if let Some(parsed) = parse(self) {
                return Poll::Ready(Some(parsed));
            }
            // Replies the protocol obliges (pong, close echo) go out without waiting for the
            // caller to write; Pending only means the transport is full for now.
            if replies.pending(&self.conn)
                && let Poll::Ready(Err(e)) = replies.poll_replies(io, &mut self.conn, cx)
            {
                return self.fail_io(e);
            }
            if self.conn.close_sent()
                && let CloseTimer::Armed(timeout) = self.close_timer
            {
                self.close_timer = CloseTimer::Running(Box::pin(tokio::time::sleep_until(
                    Instant::now() + timeout,
                )));
            }
            if let CloseTimer::Running(deadline) = &mut self.close_timer
                && deadline.as_mut().poll(cx).is_ready()
            {
                tracing::debug!("close handshake timed out; dropping the connection");
                self.conn.receive_eof();
                let _ = replies.poll_shutdown(io, cx);
                return self.finish();
            }
            if self.conn.state() == State::Closed {
                // Everything queued goes out before the transport closes (woken when writable,
                // or by the close deadline).
                match replies.poll_replies(io, &mut self.conn, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return self.fail_io(e),
                    Poll::Pending => return Poll::Pending,
                }
                if self.conn.role() == Role::Client && self.conn.close_info().was_clean {
                    // RFC 6455 7.1.1: the client waits for the server to close the TCP
                    // connection first (bounded by the close deadline above).
                    let mut sink = [0u8; 512];
                    let mut buf = ReadBuf::new(&mut sink);
                    match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                        Poll::Ready(_) => {}
                    }
                }
                if replies.poll_shutdown(io, cx).is_pending() {
                    return Poll::Pending;
                }
                return self.finish();
            }
            if let Some(k) = &mut self.keepalive
                && k.interval.poll_tick(cx).is_ready()
            {
                if k.awaiting_pong {
                    tracing::debug!(
                        "no pong before the next keepalive ping; dropping the connection"
                    );
                    self.conn.receive_eof();
                    self.error = Some(Box::new(Error::KeepaliveTimeout));
                    let _ = replies.poll_shutdown(io, cx);
                    return self.finish();
                }
                if self.conn.state() == State::Open && self.conn.send_ping(Bytes::new()).is_ok() {
                    k.awaiting_pong = true;
                }
                continue;
            }
            match transport::poll_fill(io, &mut self.conn, cx) {
                Poll::Ready(Ok(0)) => self.conn.receive_eof(),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return self.fail_io(e),
                Poll::Pending => {
                    self.conn.shrink_read_buffer();
                    return Poll::Pending;
                }
            }
        }
    }
}
