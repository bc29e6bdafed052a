//! One chat client's task: reads its messages, writes its queue, obeys the room.
//!
//! One task owns the whole socket (no split, no lock): a single poll drives the write of the
//! queued messages and the read of incoming ones, so a client that is slow to read never
//! delays its own reading or anyone else. The queue is drained only when the previous batch
//! is fully written, so a client that does not read lets its bounded queue fill, and the
//! room drops it.
//!
//! What the sender alone is told about its own message (an acknowledgement, a cut, a
//! refusal) waits in a short local queue and is written after the queued broadcasts, so a
//! sender sees the echo of its message before the acknowledgement of it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tolqin::{CloseCode, Message, WebSocket};

use crate::message::{self, Limits, MessageError, Refusal, Reply};
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
    // Replies to this client alone; bounded like its room queue.
    let mut replies: VecDeque<Message> = VecDeque::new();
    let max_replies = config.client_queue.max(1);
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
                while fed < BATCH {
                    let Some(reply) = replies.pop_front() else {
                        break;
                    };
                    if let Err(e) = ws.feed(reply) {
                        return Poll::Ready(Step::WriteFailed(e));
                    }
                    fed += 1;
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
                let text = message.as_text();
                let verdict = if !rate.try_take(now) {
                    let retry_ms = u64::try_from(rate.wait(now).as_millis()).unwrap_or(u64::MAX);
                    Err((
                        Refusal::RateLimited {
                            // At least 1 ms: a page waits, then sends.
                            retry_ms: retry_ms.max(1),
                            rate: config.rate,
                            burst: config.burst,
                        },
                        text.and_then(message::cid_of),
                    ))
                } else if message.len() > config.max_message_size {
                    let refusal = Refusal::TooLarge {
                        bytes: message.len(),
                        max: config.max_message_size,
                    };
                    Err((refusal, None))
                } else {
                    match text {
                        Some(text) => message::parse_request(text, limits)
                            .map_err(|e| (Refusal::from(e), message::cid_of(text))),
                        None => Err((MessageError::Binary.into(), None)),
                    }
                };
                // The room's own rate (N clients at the per-client rate would make N²
                // deliveries), taken last so that only well-formed messages spend it.
                let mut room_full = false;
                let verdict = verdict.and_then(|request| match room.admit(now) {
                    Ok(()) => Ok(request),
                    Err(wait) => {
                        room_full = true;
                        Metrics::add(&metrics.room_limited, 1);
                        let retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                        let refusal = Refusal::RateLimited {
                            retry_ms: retry_ms.max(1),
                            rate: config.room_rate,
                            burst: config.room_burst,
                        };
                        Err((refusal, request.cid))
                    }
                });
                let reply = match verdict {
                    Ok(request) => {
                        let id = room.broadcast(&request.message);
                        Reply::to(&request, id, config.max_chars).map(|r| r.to_json())
                    }
                    Err((refusal, cid)) => {
                        Metrics::add(&metrics.messages_refused, 1);
                        // A full room is not this client's fault: not counted as abuse.
                        if !room_full && !patience.try_take(now) {
                            Metrics::add(&metrics.dropped_abuse, 1);
                            let reason = "too many refused messages";
                            close(&mut ws, CloseCode::POLICY_VIOLATION, reason, &shared).await;
                            return;
                        }
                        Some(refusal.to_json(cid.as_deref()))
                    }
                };
                if let Some(reply) = reply {
                    if replies.len() >= max_replies {
                        // Sends without reading its replies: as slow as a full room queue.
                        Metrics::add(&metrics.dropped_slow, 1);
                        close(&mut ws, CloseCode::POLICY_VIOLATION, "too slow", &shared).await;
                        return;
                    }
                    replies.push_back(Message::text(reply));
                    Metrics::add(&metrics.messages_out, 1);
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
