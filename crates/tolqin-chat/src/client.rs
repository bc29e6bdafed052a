//! One chat client's task: reads its messages, writes its queue, obeys the room.
//!
//! One task owns the whole socket (no split, no lock): a single poll drives the write of the
//! queued messages and the read of incoming ones, so a client that is slow to read never
//! delays its own reading or anyone else. The queue is drained only when the previous batch
//! is fully written, so a client that does not read lets its bounded queue fill, and the
//! room drops it.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tolqin::{CloseCode, Message, WebSocket};

use crate::message::{self, Limits, MessageError};
use crate::metrics::Metrics;
use crate::rate::TokenBucket;
use crate::room::{Room, Stop};
use crate::server::Shared;

/// Most queued messages written in one batch (one vectored write when they fit).
const BATCH: usize = 256;

enum Step {
    Incoming(Option<tolqin::Result<Message>>),
    Stop(Stop),
    WriteFailed(tolqin::Error),
}

/// Serves one chat socket until it closes.
pub(crate) async fn serve<S>(mut ws: WebSocket<S>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let room: &Arc<Room> = &shared.room;
    let Some((mut membership, _guard)) = room.join() else {
        close(
            &mut ws,
            CloseCode::GOING_AWAY,
            "server is shutting down",
            &shared,
        )
        .await;
        return;
    };
    let config = &shared.config;
    let metrics = &shared.metrics;
    let limits = Limits {
        max_chars: config.max_chars,
        max_user_chars: config.max_user_chars,
    };
    let start = Instant::now();
    let mut rate = TokenBucket::new(f64::from(config.burst), config.rate, start);
    let mut patience = TokenBucket::new(f64::from(config.abuse_limit), 1.0, start);
    let mut writing = false;
    loop {
        let step = poll_fn(|cx| {
            if let Poll::Ready(stop) = Pin::new(&mut membership.stop).poll(cx) {
                // A dropped sender without a message: the room forgot us; treat as going away.
                return Poll::Ready(Step::Stop(stop.unwrap_or(Stop::GoingAway)));
            }
            if writing {
                match Pin::new(&mut ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => writing = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Step::WriteFailed(e)),
                    Poll::Pending => {}
                }
            }
            if !writing {
                let mut fed = 0;
                while fed < BATCH {
                    match membership.queue.poll_recv(cx) {
                        Poll::Ready(Some(prepared)) => {
                            if let Err(e) = ws.feed_prepared(&prepared) {
                                return Poll::Ready(Step::WriteFailed(e));
                            }
                            fed += 1;
                        }
                        Poll::Ready(None) | Poll::Pending => break,
                    }
                }
                if fed > 0 {
                    writing = true;
                    match Pin::new(&mut ws).poll_flush(cx) {
                        Poll::Ready(Ok(())) => {
                            writing = false;
                            // More may be queued: come back after the read side had its turn.
                            if fed == BATCH {
                                cx.waker().wake_by_ref();
                            }
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Step::WriteFailed(e)),
                        Poll::Pending => {}
                    }
                }
            }
            ws.poll_recv(cx).map(Step::Incoming)
        })
        .await;
        match step {
            Step::Incoming(Some(Ok(message))) => {
                Metrics::add(&metrics.messages_in, 1);
                let now = Instant::now();
                let verdict = if !rate.try_take(now) {
                    Err(format!(
                        "rate limit: at most {} messages per second (bursts of {})",
                        config.rate, config.burst
                    ))
                } else if message.len() > config.max_message_size {
                    Err(format!(
                        "message too large: {} bytes, at most {}",
                        message.len(),
                        config.max_message_size
                    ))
                } else {
                    match message.as_text() {
                        Some(text) => message::parse(text, limits).map_err(|e| e.to_string()),
                        None => Err(MessageError::Binary.to_string()),
                    }
                };
                match verdict {
                    Ok(incoming) => {
                        room.broadcast(&incoming);
                    }
                    Err(error) => {
                        Metrics::add(&metrics.messages_refused, 1);
                        if !patience.try_take(now) {
                            Metrics::add(&metrics.dropped_abuse, 1);
                            let reason = "too many refused messages";
                            close(&mut ws, CloseCode::POLICY_VIOLATION, reason, &shared).await;
                            return;
                        }
                        if ws.feed(Message::text(message::error_json(&error))).is_err() {
                            break;
                        }
                        Metrics::add(&metrics.messages_out, 1);
                        writing = true;
                    }
                }
            }
            Step::Incoming(Some(Err(e))) => {
                tracing::debug!(error = %e, "chat client failed");
            }
            Step::Incoming(None) => break,
            Step::Stop(Stop::TooSlow) => {
                close(&mut ws, CloseCode::POLICY_VIOLATION, "too slow", &shared).await;
                return;
            }
            Step::Stop(Stop::GoingAway) => {
                close(
                    &mut ws,
                    CloseCode::GOING_AWAY,
                    "server is shutting down",
                    &shared,
                )
                .await;
                return;
            }
            Step::WriteFailed(e) => {
                tracing::debug!(error = %e, "writing to a chat client failed");
                break;
            }
        }
    }
}

/// Starts the close handshake and waits for its end, within the close timeout (a peer that
/// does not read never gets the close frame: it is dropped when the time is up).
pub(crate) async fn close<S>(ws: &mut WebSocket<S>, code: CloseCode, reason: &str, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let closing = async {
        if let Err(e) = ws.close_with(code, reason).await {
            tracing::debug!(error = %e, "close failed");
        }
        while ws.recv().await.is_some() {}
    };
    let _ = tokio::time::timeout(shared.config.close_timeout, closing).await;
}
