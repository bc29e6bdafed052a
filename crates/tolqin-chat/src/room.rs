//! The room: the set of connected clients, the recent history, and the broadcast.
//!
//! Each client has a bounded queue of [`PreparedMessage`]s, drained by its own task. The
//! broadcaster encodes a message once (and compresses it once, without context takeover),
//! then offers the same `Arc` to every queue with `try_send`: it never waits on a socket. A
//! client whose queue is full can't keep up; it is removed from the room and told to close
//! (1008 "too slow"), and the others carry on.
//!
//! The room's lock is held only for short, bounded steps, never for the encoding nor for the
//! fan-out: a broadcast takes its id from an atomic counter, encodes and compresses outside
//! the lock, then under the lock puts the message in the history and takes a snapshot of
//! the members (an `Arc` of the member list, copied on write by joins and leaves only while
//! a broadcast holds a snapshot), and offers it to the snapshot's queues with the lock
//! released. A newcomer's queue is filled with the history under the same lock, so every
//! client receives every message exactly once: a message put in the history before the
//! newcomer joined is in its history, and a later one finds it in the snapshot.
//!
//! Order: one client's messages reach everyone in the order it sent them (a client task
//! broadcasts one message at a time). Messages that two clients send at the same instant
//! may reach different clients in different orders; their ids (and the history) tell the
//! order the server took them in.
//!
//! The room has its own token bucket ([`Room::admit`]): N clients each at the per-client
//! rate would otherwise make N² deliveries a second.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};
use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Message, PreparedMessage};

use crate::message::{Incoming, Outgoing};
use crate::metrics::Metrics;
use crate::rate::TokenBucket;

/// Why the room tells a client to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its queue was full: 1008 "too slow".
    TooSlow,
    /// The server is stopping: 1001.
    GoingAway,
}

/// A client's place in the room: its queue and the signal to stop.
#[derive(Debug)]
pub struct Membership {
    /// The client's id in the room.
    pub id: u64,
    /// Messages to send to this client.
    pub queue: mpsc::Receiver<Arc<PreparedMessage>>,
    /// Fires when the room wants this client gone.
    pub stop: oneshot::Receiver<Stop>,
}

/// A member's queue, as the fan-out sees it.
#[derive(Clone)]
struct Member {
    id: u64,
    queue: mpsc::Sender<Arc<PreparedMessage>>,
}

struct State {
    next_client: u64,
    /// The members, shared with the broadcasts in flight (copied on write).
    members: Arc<Vec<Member>>,
    /// How to tell each member to stop; a member not in here has been told already.
    stops: HashMap<u64, oneshot::Sender<Stop>>,
    /// Recent messages with their ids, oldest first.
    history: VecDeque<(u64, Arc<PreparedMessage>)>,
    closed: bool,
}

/// The chat room.
pub struct Room {
    state: Mutex<State>,
    next_message: AtomicU64,
    /// The room-wide rate limit (its own lock, held for a few arithmetic operations).
    rate: Option<Mutex<TokenBucket>>,
    history: usize,
    queue: usize,
    deflate: DeflateConfig,
    metrics: Arc<Metrics>,
    /// Client tasks still running (they may have left the room's map already).
    running: AtomicUsize,
    idle: Notify,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("history", &self.history)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Room {
    /// A room keeping `history` messages for newcomers, with client queues of `queue`
    /// messages, compressing broadcasts with `deflate` when enabled.
    pub fn new(
        history: usize,
        queue: usize,
        deflate: DeflateConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Room {
            state: Mutex::new(State {
                next_client: 1,
                members: Arc::new(Vec::new()),
                stops: HashMap::new(),
                history: VecDeque::with_capacity(history),
                closed: false,
            }),
            next_message: AtomicU64::new(1),
            rate: None,
            history,
            queue: queue.max(1),
            deflate,
            metrics,
            running: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Limits the broadcasts of the whole room to `rate` a second, `burst` at once.
    pub fn with_rate(mut self, rate: f64, burst: u32) -> Self {
        self.rate = Some(Mutex::new(TokenBucket::new(
            f64::from(burst),
            rate,
            Instant::now(),
        )));
        self
    }

    /// Takes one of the room's broadcast tokens: `Err` with the time until the next one when
    /// the room is over its rate. A room without a limit always admits.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        let mut bucket = rate.lock().unwrap_or_else(|e| e.into_inner());
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(bucket.wait(now))
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No invariant spans a panic point, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a client; its queue starts with the history. `None` once the room is closed.
    pub fn join(self: &Arc<Self>) -> Option<(Membership, Guard)> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        // The queue holds the whole history plus the configured room for live messages.
        let (tx, rx) = mpsc::channel(self.queue + state.history.len());
        for (_, message) in &state.history {
            let _ = tx.try_send(message.clone());
        }
        Metrics::add(&self.metrics.messages_out, state.history.len() as u64);
        let (stop_tx, stop_rx) = oneshot::channel();
        let id = state.next_client;
        state.next_client += 1;
        state.stops.insert(id, stop_tx);
        Arc::make_mut(&mut state.members).push(Member { id, queue: tx });
        drop(state);
        self.running.fetch_add(1, Ordering::AcqRel);
        Metrics::add(&self.metrics.connections, 1);
        Metrics::add(&self.metrics.connections_total, 1);
        let membership = Membership {
            id,
            queue: rx,
            stop: stop_rx,
        };
        Some((
            membership,
            Guard {
                room: self.clone(),
                id,
            },
        ))
    }

    /// Broadcasts a checked message to every client, the sender included; returns its id.
    pub fn broadcast(&self, message: &Incoming) -> u64 {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let id = self.next_message.fetch_add(1, Ordering::Relaxed);
        let json = Outgoing {
            id,
            user: &message.user,
            content: &message.content,
            ts,
        }
        .to_json();
        let prepared = Arc::new(PreparedMessage::with_deflate(
            &Message::text(json),
            &self.deflate,
        ));
        let mut state = self.lock();
        if self.history > 0 {
            // Almost always at the end; a broadcast that overtook this one may be there.
            let at = state
                .history
                .iter()
                .rposition(|(other, _)| *other < id)
                .map_or(0, |i| i + 1);
            state.history.insert(at, (id, prepared.clone()));
            if state.history.len() > self.history {
                state.history.pop_front();
            }
        }
        let members = state.members.clone();
        drop(state);
        let mut slow = Vec::new();
        let mut sent = 0u64;
        for member in members.iter() {
            match member.queue.try_send(prepared.clone()) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(_)) => slow.push((member.id, true)),
                // Its task ended and will leave; drop it now.
                Err(TrySendError::Closed(_)) => slow.push((member.id, false)),
            }
        }
        drop(members);
        if !slow.is_empty() {
            let mut state = self.lock();
            Arc::make_mut(&mut state.members).retain(|m| !slow.iter().any(|(id, _)| *id == m.id));
            for (client, full) in slow {
                // Absent: another broadcast already told it.
                if let Some(stop) = state.stops.remove(&client)
                    && full
                {
                    Metrics::add(&self.metrics.dropped_slow, 1);
                    let _ = stop.send(Stop::TooSlow);
                }
            }
        }
        Metrics::add(&self.metrics.messages_broadcast, 1);
        Metrics::add(&self.metrics.messages_out, sent);
        id
    }

    /// Clients in the room now.
    pub fn len(&self) -> usize {
        self.lock().members.len()
    }

    /// Whether the room has no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the room: no one joins any more, and every client is told to go (1001).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.members = Arc::new(Vec::new());
        for (_, stop) in state.stops.drain() {
            let _ = stop.send(Stop::GoingAway);
        }
    }

    /// Waits until every client task has ended, at most `timeout`; `true` if they all did.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            if self.running.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.running.load(Ordering::Acquire) == 0;
            }
        }
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        if state.stops.remove(&id).is_some() || state.members.iter().any(|m| m.id == id) {
            Arc::make_mut(&mut state.members).retain(|m| m.id != id);
        }
        drop(state);
        Metrics::sub(&self.metrics.connections, 1);
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Removes its client from the room when the client's task ends, however it ends.
#[derive(Debug)]
pub struct Guard {
    room: Arc<Room>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.room.leave(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(history: usize, queue: usize) -> Arc<Room> {
        Arc::new(Room::new(
            history,
            queue,
            DeflateConfig::disabled(),
            Arc::new(Metrics::default()),
        ))
    }

    fn said(content: &str) -> Incoming {
        Incoming {
            user: "u".into(),
            content: content.into(),
        }
    }

    fn text(m: &PreparedMessage) -> String {
        let mut conn =
            tolqin::proto::Connection::new(tolqin::Role::Server, tolqin::proto::Config::default());
        conn.send_prepared(m).unwrap();
        let bytes = conn.data_to_send();
        String::from_utf8(bytes[2..].to_vec()).unwrap()
    }

    #[test]
    fn a_newcomer_gets_the_history_then_live_messages() {
        let room = room(2, 8);
        for c in ["one", "two", "three"] {
            room.broadcast(&said(c));
        }
        let (mut m, _guard) = room.join().unwrap();
        room.broadcast(&said("four"));
        let got: Vec<String> = std::iter::from_fn(|| m.queue.try_recv().ok())
            .map(|p| text(&p))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains(r#""id":2"#) && got[0].contains("two"));
        assert!(got[1].contains(r#""id":3"#));
        assert!(got[2].contains(r#""id":4"#) && got[2].contains("four"));
    }

    #[test]
    fn a_full_queue_drops_that_client_only() {
        let room = room(0, 2);
        let (mut slow, _g1) = room.join().unwrap();
        let (mut fast, _g2) = room.join().unwrap();
        for i in 0..5 {
            room.broadcast(&said(&i.to_string()));
            while fast.queue.try_recv().is_ok() {}
        }
        assert_eq!(slow.stop.try_recv(), Ok(Stop::TooSlow));
        assert!(fast.stop.try_recv().is_err());
        assert_eq!(room.len(), 1);
        assert_eq!(room.metrics.dropped_slow.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn close_tells_everyone_and_waits_for_their_tasks() {
        let room = room(0, 2);
        let (mut m, guard) = room.join().unwrap();
        room.close();
        assert_eq!(m.stop.try_recv(), Ok(Stop::GoingAway));
        assert!(room.join().is_none());
        assert!(!room.wait_idle(Duration::from_millis(10)).await);
        drop(guard);
        assert!(room.wait_idle(Duration::from_millis(10)).await);
    }

    #[test]
    fn the_room_rate_limits_all_clients_together() {
        let room = Room::new(
            0,
            8,
            DeflateConfig::disabled(),
            Arc::new(Metrics::default()),
        )
        .with_rate(10.0, 3);
        let now = Instant::now();
        assert_eq!((0..10).filter(|_| room.admit(now).is_ok()).count(), 3);
        let wait = room.admit(now).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(room.admit(now + Duration::from_millis(100)).is_ok());
        // No limit: always admitted.
        let free = room_of(0, 1);
        assert!((0..1000).all(|_| free.admit(now).is_ok()));
    }

    fn room_of(history: usize, queue: usize) -> Room {
        Room::new(
            history,
            queue,
            DeflateConfig::disabled(),
            Arc::new(Metrics::default()),
        )
    }
}
