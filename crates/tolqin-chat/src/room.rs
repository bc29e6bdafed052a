//! The room: the set of connected clients, the recent history, and the broadcast.
//!
//! Each client has a bounded queue of [`PreparedMessage`]s, drained by its own task. The
//! broadcaster encodes a message once (and compresses it once, without context takeover),
//! then offers the same `Arc` to every queue with `try_send`: it never waits on a socket. A
//! client whose queue is full can't keep up; it is removed from the room and told to close
//! (1008 "too slow"), and the others carry on.
//!
//! Ids are assigned, the history updated and the queues filled under one lock, so every
//! client receives every message in the order the server received them, exactly once; a
//! newcomer's queue is filled with the history under the same lock, so nothing falls between
//! the history and the live messages.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot};
use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Message, PreparedMessage};

use crate::message::{Incoming, Outgoing};
use crate::metrics::Metrics;

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

struct Slot {
    queue: mpsc::Sender<Arc<PreparedMessage>>,
    stop: oneshot::Sender<Stop>,
}

struct State {
    next_message: u64,
    next_client: u64,
    clients: HashMap<u64, Slot>,
    history: VecDeque<Arc<PreparedMessage>>,
    closed: bool,
}

/// The chat room.
pub struct Room {
    state: Mutex<State>,
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
                next_message: 1,
                next_client: 1,
                clients: HashMap::new(),
                history: VecDeque::with_capacity(history),
                closed: false,
            }),
            history,
            queue: queue.max(1),
            deflate,
            metrics,
            running: AtomicUsize::new(0),
            idle: Notify::new(),
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
        for message in &state.history {
            let _ = tx.try_send(message.clone());
        }
        Metrics::add(&self.metrics.messages_out, state.history.len() as u64);
        let (stop_tx, stop_rx) = oneshot::channel();
        let id = state.next_client;
        state.next_client += 1;
        state.clients.insert(
            id,
            Slot {
                queue: tx,
                stop: stop_tx,
            },
        );
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
        let mut state = self.lock();
        let id = state.next_message;
        state.next_message += 1;
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
        if self.history > 0 {
            if state.history.len() == self.history {
                state.history.pop_front();
            }
            state.history.push_back(prepared.clone());
        }
        let mut slow = Vec::new();
        let mut sent = 0u64;
        for (&client, slot) in &state.clients {
            match slot.queue.try_send(prepared.clone()) {
                Ok(()) => sent += 1,
                // Full: too slow. Closed: its task ended and will leave; drop it now.
                Err(_) => slow.push(client),
            }
        }
        for client in slow {
            if let Some(slot) = state.clients.remove(&client)
                && !slot.queue.is_closed()
            {
                Metrics::add(&self.metrics.dropped_slow, 1);
                let _ = slot.stop.send(Stop::TooSlow);
            }
        }
        drop(state);
        Metrics::add(&self.metrics.messages_broadcast, 1);
        Metrics::add(&self.metrics.messages_out, sent);
        id
    }

    /// Clients in the room now.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether the room has no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the room: no one joins any more, and every client is told to go (1001).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for (_, slot) in state.clients.drain() {
            let _ = slot.stop.send(Stop::GoingAway);
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
        self.lock().clients.remove(&id);
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
}
