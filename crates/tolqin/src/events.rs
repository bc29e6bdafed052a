//! A browser-style client: a socket that connects in the background and reports what happens
//! as events, as the browser's `WebSocket` does, plus what the browser lacks: opt-in
//! reconnection with backoff and a re-authentication hook.
//!
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! use tolqin::events::{EventSocket, SocketEvent};
//!
//! let mut socket = EventSocket::connect("ws://127.0.0.1:9001/")?; // readyState CONNECTING
//! while let Some(event) = socket.next_event().await {
//!     match event {
//!         SocketEvent::Open { .. } => socket.send("hello")?,
//!         SocketEvent::Message(m) => println!("got {m:?}"),
//!         SocketEvent::Error(e) => eprintln!("error: {e}"),
//!         SocketEvent::Close { code, reason, was_clean } => {
//!             println!("closed {code} {reason:?} clean={was_clean}");
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Events come in the browser's order: `Open` first; then messages; an `Error` always comes
//! right before the `Close` it causes; every failure before `Open` is reported as an `Error`
//! (with the real cause) followed by `Close` with code 1006.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tolqin_proto::{CloseCode, Message, SendError};

use crate::{Client, Error, ReadyState, Result};

/// Something that happened on an [`EventSocket`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SocketEvent {
    /// The connection is open (the browser's `open`).
    Open {
        /// The subprotocol the server chose.
        protocol: Option<String>,
        /// The negotiated extensions, as a header value.
        extensions: String,
    },
    /// A message (the browser's `message`).
    Message(Message),
    /// Something failed (the browser's `error`); a `Close` follows unless reconnection
    /// takes over.
    Error(Error),
    /// The connection closed (the browser's `close`): the peer's code (1005 if it sent none,
    /// 1006 if the connection dropped or never opened) and whether the close handshake
    /// completed.
    Close {
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
        /// Whether the close handshake completed.
        was_clean: bool,
    },
    /// Reconnection: waiting `delay` before attempt number `attempt`.
    Reconnecting {
        /// The attempt about to be made, from 1.
        attempt: u32,
        /// How long until it is made.
        delay: Duration,
    },
    /// Reconnection succeeded; the socket is open again.
    Reconnected {
        /// The subprotocol the server chose.
        protocol: Option<String>,
        /// The negotiated extensions, as a header value.
        extensions: String,
    },
    /// Messages handed to [`EventSocket::send`] that were not sent and will not be: they
    /// are the caller's again (when reconnection does not re-send them).
    Unsent(Vec<Message>),
}

/// Opt-in reconnection: exponential backoff with jitter and a cap.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reconnect {
    /// Delay before the first attempt (default 500 ms).
    pub initial_delay: Duration,
    /// Longest delay (default 30 s).
    pub max_delay: Duration,
    /// Growth per attempt (default 2.0).
    pub factor: f64,
    /// Random spread: each delay is multiplied by a factor in `[1 - jitter, 1 + jitter]`
    /// (default 0.3), so that many clients do not reconnect in step.
    pub jitter: f64,
    /// Give up after this many failed attempts in a row (default: never).
    pub max_attempts: Option<u32>,
    /// Re-send, after reconnecting, the messages that could not be sent (default: `false`:
    /// they are returned in [`SocketEvent::Unsent`]).
    pub resend_unsent: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.3,
            max_attempts: None,
            resend_unsent: false,
        }
    }
}

impl Reconnect {
    /// Sets the first and the longest delay.
    pub fn with_delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max;
        self
    }
    /// Sets [`Reconnect::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }
    /// Sets [`Reconnect::resend_unsent`].
    pub fn with_resend_unsent(mut self, resend: bool) -> Self {
        self.resend_unsent = resend;
        self
    }
    /// Sets [`Reconnect::jitter`] (0 to 1).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The delay before attempt `attempt` (from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.initial_delay.as_secs_f64()
            * self.factor.powi(attempt.saturating_sub(1).min(64) as i32);
        let capped = base.min(self.max_delay.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * rand_unit() - 1.0);
        Duration::from_secs_f64((capped * spread).max(0.0))
    }
}

/// A number in [0, 1) from the thread's random generator.
fn rand_unit() -> f64 {
    (rand_u32() as f64) / (u32::MAX as f64 + 1.0)
}

fn rand_u32() -> u32 {
    // The protocol core already depends on a CSPRNG for masking keys; reuse its entropy.
    let key = tolqin_proto::handshake::generate_key();
    let bytes = key.as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        ^ u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])
}

type ReauthFuture = Pin<Box<dyn Future<Output = Result<Client>> + Send>>;
type ReauthHook = Arc<dyn Fn(Client) -> ReauthFuture + Send + Sync>;

enum Command {
    Send(Message),
    Close(Option<CloseCode>, String),
}

struct Shared {
    state: AtomicU8,
    /// Payload bytes handed to `send`.
    queued: AtomicUsize,
    /// Payload bytes written, or handed back to the caller.
    done: AtomicUsize,
    /// Woken whenever `done` grows or the socket closes for good.
    progress: Notify,
    /// The socket will not open again.
    finished: std::sync::atomic::AtomicBool,
    protocol: Mutex<Option<String>>,
    extensions: Mutex<String>,
    /// The first connection opened (sends are accepted from then on).
    opened_once: std::sync::atomic::AtomicBool,
}

/// A client socket with the browser's API: it connects in the background, and everything that
/// happens arrives as a [`SocketEvent`] from [`EventSocket::next_event`].
///
/// | browser | tolqin |
/// |---|---|
/// | `new WebSocket(url, protocols)` | [`EventSocket::connect`], [`EventSocket::builder`]`(client)` |
/// | `readyState` | [`EventSocket::ready_state`] |
/// | `bufferedAmount` | [`EventSocket::buffered_amount`], and [`EventSocket::drained_below`] to pace a sender |
/// | `protocol`, `extensions`, `url` | [`EventSocket::protocol`], [`EventSocket::extensions`], [`EventSocket::url`] |
/// | `send(data)` | [`EventSocket::send`] (before open: an error, the browser's `InvalidStateError`) |
/// | `close(code, reason)` | [`EventSocket::close`] |
/// | `binaryType` | not needed: binary messages are [`Message::Binary`] holding `Bytes` |
/// | `onopen`, `onmessage`, `onerror`, `onclose` | [`SocketEvent::Open`], [`SocketEvent::Message`], [`SocketEvent::Error`], [`SocketEvent::Close`] |
pub struct EventSocket {
    url: String,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<SocketEvent>,
}

impl std::fmt::Debug for EventSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSocket")
            .field("url", &self.url)
            .field("ready_state", &self.ready_state())
            .finish()
    }
}

/// Builds an [`EventSocket`] from a [`Client`] (headers, origin, subprotocols, options).
pub struct EventSocketBuilder {
    client: Client,
    reconnect: Option<Reconnect>,
    reauth: Option<ReauthHook>,
    event_capacity: usize,
}

impl EventSocketBuilder {
    /// Enables reconnection with this policy.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// A hook called before every reconnection attempt with the client used so far; it
    /// returns the client to connect with (for example with a fresh `Authorization` header).
    pub fn reauthenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Client>> + Send + 'static,
    {
        self.reauth = Some(Arc::new(move |client| Box::pin(hook(client))));
        self
    }

    /// How many events may wait unread before the socket stops reading from the network
    /// (default 1024): a slow reader slows the sender through TCP, and memory stays bounded.
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events.max(1);
        self
    }

    /// Starts connecting in the background and returns at once (`ready_state` is
    /// `Connecting`). Needs a tokio runtime.
    pub fn start(self) -> EventSocket {
        let url = self.client.uri().to_string();
        let shared = Arc::new(Shared {
            state: AtomicU8::new(ReadyState::Connecting as u8),
            queued: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            progress: Notify::new(),
            finished: Default::default(),
            protocol: Mutex::new(None),
            extensions: Mutex::new(String::new()),
            opened_once: Default::default(),
        });
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::channel(self.event_capacity);
        let driver = Driver {
            client: self.client,
            reconnect: self.reconnect,
            reauth: self.reauth,
            shared: shared.clone(),
            commands: command_rx,
            events: event_tx,
            pending: VecDeque::new(),
        };
        tokio::spawn(driver.run());
        EventSocket {
            url,
            shared,
            commands: command_tx,
            events: event_rx,
        }
    }
}

impl EventSocket {
    /// Connects to `url` in the background (the browser's `new WebSocket(url)`).
    ///
    /// # Errors
    /// [`Error::Url`] at once, as the browser throws `SyntaxError`.
    pub fn connect(url: &str) -> Result<EventSocket> {
        Ok(Self::builder(Client::new(url)?).start())
    }

    /// A builder around a configured [`Client`].
    pub fn builder(client: Client) -> EventSocketBuilder {
        EventSocketBuilder {
            client,
            reconnect: None,
            reauth: None,
            event_capacity: 1024,
        }
    }

    /// The next event; `None` once the socket has closed for good and every event was read.
    pub async fn next_event(&mut self) -> Option<SocketEvent> {
        self.events.recv().await
    }

    /// The browser's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        match self.shared.state.load(Ordering::Acquire) {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }

    /// The browser's `bufferedAmount`: payload bytes handed to [`send`](Self::send) and not
    /// yet written to the network. Exact at message granularity (a message counts until all
    /// of it is written); it never goes down after the socket closed for good.
    pub fn buffered_amount(&self) -> usize {
        let queued = self.shared.queued.load(Ordering::Acquire);
        queued.saturating_sub(self.shared.done.load(Ordering::Acquire))
    }

    /// Waits until [`buffered_amount`](Self::buffered_amount) is below `bytes`: a sender
    /// paces itself on a slow link without polling.
    ///
    /// # Errors
    /// [`Error::Send`] if the socket closes for good first.
    pub async fn drained_below(&self, bytes: usize) -> Result<()> {
        loop {
            let progressed = self.shared.progress.notified();
            if self.buffered_amount() < bytes {
                return Ok(());
            }
            if self.shared.finished.load(Ordering::Acquire) {
                return Err(Error::Send(SendError::Closed));
            }
            progressed.await;
        }
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<String> {
        self.shared
            .protocol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The negotiated extensions.
    pub fn extensions(&self) -> String {
        self.shared
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues a message (the browser's `send`). After the socket closed, the message is
    /// discarded but still counted in `buffered_amount`, as in the browser.
    ///
    /// # Errors
    /// [`Error::Send`] (`NotOpen`) before the socket first opened (the browser's
    /// `InvalidStateError`).
    pub fn send(&self, message: impl Into<Message>) -> Result<()> {
        if !self.shared.opened_once.load(Ordering::Acquire) {
            return Err(Error::Send(SendError::NotOpen));
        }
        let message = message.into();
        self.shared
            .queued
            .fetch_add(message.len(), Ordering::AcqRel);
        let _ = self.commands.send(Command::Send(message));
        Ok(())
    }

    /// Starts the close handshake (the browser's `close(code, reason)`): code 1000 or
    /// 3000-4999, reason at most 123 bytes. No reconnection follows.
    ///
    /// # Errors
    /// [`Error::Send`] for an invalid code or reason.
    pub fn close(&self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        if let Some(code) = code
            && !code.is_allowed_for_application()
        {
            return Err(Error::Send(SendError::InvalidCloseCode(code.0)));
        }
        if reason.len() > tolqin_proto::close::MAX_REASON_LEN {
            return Err(Error::Send(SendError::ReasonTooLong(reason.len())));
        }
        let state = self.ready_state();
        if state == ReadyState::Open || state == ReadyState::Connecting {
            self.shared
                .state
                .store(ReadyState::Closing as u8, Ordering::Release);
        }
        let _ = self.commands.send(Command::Close(code, reason.to_string()));
        Ok(())
    }
}

/// How one connection ended.
enum Ended {
    /// The caller closed it, or it closed and reconnection is off: stop.
    Final,
    /// It dropped or the server closed it: reconnect if enabled.
    Lost,
}

struct Driver {
    client: Client,
    reconnect: Option<Reconnect>,
    reauth: Option<ReauthHook>,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<SocketEvent>,
    /// Messages to re-send after reconnecting.
    pending: VecDeque<Message>,
}

impl Driver {
    fn set_state(&self, state: ReadyState) {
        self.shared.state.store(state as u8, Ordering::Release);
    }

    fn mark_done(&self, bytes: usize) {
        self.shared.done.fetch_add(bytes, Ordering::AcqRel);
        self.shared.progress.notify_waiters();
    }

    async fn emit(&self, event: SocketEvent) {
        let _ = self.events.send(event).await;
    }

    async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            let client = self.client.clone();
            let result = client.connect().await;
            match result {
                Ok(ws) => {
                    let protocol = ws.protocol().map(str::to_owned);
                    let extensions = ws.extensions();
                    *self
                        .shared
                        .protocol
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = protocol.clone();
                    *self
                        .shared
                        .extensions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = extensions.clone();
                    if self.shared.state.load(Ordering::Acquire) == ReadyState::Closing as u8 {
                        // close() was called while connecting.
                        let mut ws = ws;
                        let _ = ws.close_and_wait(None, "").await;
                        self.finish(CloseCode::ABNORMAL, String::new(), false).await;
                        return;
                    }
                    self.set_state(ReadyState::Open);
                    self.shared.opened_once.store(true, Ordering::Release);
                    if attempt == 0 {
                        self.emit(SocketEvent::Open {
                            protocol,
                            extensions,
                        })
                        .await;
                    } else {
                        self.emit(SocketEvent::Reconnected {
                            protocol,
                            extensions,
                        })
                        .await;
                    }
                    attempt = 0;
                    match self.drive(ws).await {
                        Ended::Final => return,
                        Ended::Lost => {}
                    }
                }
                Err(e) => {
                    self.emit(SocketEvent::Error(e)).await;
                    if self.reconnect.is_none()
                        || self.shared.state.load(Ordering::Acquire) == ReadyState::Closing as u8
                    {
                        self.finish(CloseCode::ABNORMAL, String::new(), false).await;
                        return;
                    }
                }
            }
            // Reconnect.
            let Some(policy) = self.reconnect.clone() else {
                return;
            };
            attempt += 1;
            if policy.max_attempts.is_some_and(|max| attempt > max) {
                self.finish(CloseCode::ABNORMAL, String::new(), false).await;
                return;
            }
            self.set_state(ReadyState::Connecting);
            let delay = policy.delay(attempt);
            self.emit(SocketEvent::Reconnecting { attempt, delay })
                .await;
            tokio::time::sleep(delay).await;
            if let Some(hook) = &self.reauth {
                match hook(self.client.clone()).await {
                    Ok(client) => self.client = client,
                    Err(e) => self.emit(SocketEvent::Error(e)).await,
                }
            }
        }
    }

    /// The socket is done for good: report the close, hand back what was never sent.
    async fn finish(&mut self, code: CloseCode, reason: String, was_clean: bool) {
        self.set_state(ReadyState::Closed);
        let mut unsent: Vec<Message> = self.pending.drain(..).collect();
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Send(m) = command {
                unsent.push(m);
            }
        }
        self.shared.finished.store(true, Ordering::Release);
        self.shared.progress.notify_waiters();
        // The browser order: the close event ends the stream of events.
        if !unsent.is_empty() {
            self.emit(SocketEvent::Unsent(unsent)).await;
        }
        self.emit(SocketEvent::Close {
            code,
            reason,
            was_clean,
        })
        .await;
    }

    /// Runs one open connection until it ends.
    async fn drive(&mut self, ws: crate::WebSocket<crate::stream::ClientStream>) -> Ended {
        let (mut rx, mut tx) = ws.into_split();
        let mut closing_by_us = false;
        // Messages fed to the writer and not yet flushed.
        let mut in_flight: Vec<Message> = Vec::new();
        // Re-send what a lost connection could not (opt-in).
        let resend: Vec<Message> = self.pending.drain(..).collect();
        for m in resend {
            let len = m.len();
            if tx.feed(m.clone()).is_ok() {
                in_flight.push(m);
            } else {
                self.mark_done(len);
            }
        }
        let mut last_error: Option<Error> = None;
        loop {
            if !in_flight.is_empty() {
                match tx.flush().await {
                    Ok(()) => {
                        let bytes: usize = in_flight.iter().map(Message::len).sum();
                        in_flight.clear();
                        self.mark_done(bytes);
                    }
                    Err(e) => {
                        last_error = Some(e);
                    }
                }
            }
            tokio::select! {
                item = rx.recv() => match item {
                    Some(Ok(message)) => self.emit(SocketEvent::Message(message)).await,
                    Some(Err(e)) => last_error = Some(e),
                    None => break,
                },
                command = self.commands.recv(), if !closing_by_us => {
                    // Take whatever else is queued too, for one write; a close queued behind
                    // the sends ends the batch (the sends before it still go out first).
                    let mut command = command;
                    let close = loop {
                        match command {
                            Some(Command::Send(message)) => match tx.feed(message.clone()) {
                                Ok(()) => in_flight.push(message),
                                // Closing or closed: this one is not sent.
                                Err(_) => self.pending.push_back(message),
                            },
                            Some(Command::Close(code, reason)) => break Some((code, reason)),
                            // The EventSocket was dropped: close politely.
                            None => break Some((Some(CloseCode::NORMAL), String::new())),
                        }
                        match self.commands.try_recv() {
                            Ok(next) => command = Some(next),
                            Err(mpsc::error::TryRecvError::Empty) => break None,
                            Err(mpsc::error::TryRecvError::Disconnected) => command = None,
                        }
                    };
                    if let Some((code, reason)) = close {
                        closing_by_us = true;
                        // The close frame goes out after the messages fed before it.
                        match tx.close(code, &reason).await {
                            Ok(()) => {
                                let bytes: usize = in_flight.iter().map(Message::len).sum();
                                in_flight.clear();
                                self.mark_done(bytes);
                            }
                            Err(e) => last_error = Some(e),
                        }
                    }
                }
            }
        }
        let info = rx.close_info();
        // Whatever was fed but not flushed, or refused, is unsent.
        self.pending.extend(in_flight.drain(..));
        let lost = !closing_by_us && (!info.was_clean || info.code != CloseCode::NORMAL);
        if let Some(e) = last_error {
            self.emit(SocketEvent::Error(e)).await;
        }
        if lost && self.reconnect.is_some() {
            self.set_state(ReadyState::Connecting);
            let resend = self.reconnect.as_ref().is_some_and(|p| p.resend_unsent);
            if !resend && !self.pending.is_empty() {
                let unsent: Vec<Message> = self.pending.drain(..).collect();
                self.mark_done(unsent.iter().map(Message::len).sum());
                self.emit(SocketEvent::Unsent(unsent)).await;
            }
            self.emit(SocketEvent::Close {
                code: info.code,
                reason: info.reason.to_string(),
                was_clean: info.was_clean,
            })
            .await;
            return Ended::Lost;
        }
        self.finish(info.code, info.reason.to_string(), info.was_clean)
            .await;
        Ended::Final
    }
}
