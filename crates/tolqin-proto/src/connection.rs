//! The connection state machine: bytes in, events out, bytes to send out.
//!
//! ```text
//!                 client: Connection::client(handshake)     server: Connection::server()
//!                                   |                                   |
//!                                   v                                   v
//!   +------------------------------------------------------------------------------+
//!   | Connecting   client: request queued, waiting for the 101 response            |
//!   |              server: waiting for the request, then for accept() / reject()   |
//!   +------------------------------------------------------------------------------+
//!        | 101 verified / accept()                   | handshake failed / reject()
//!        v                                            |
//!   +---------+   close() sent by us    +---------+   |
//!   |  Open   | ----------------------> | Closing |   |
//!   +---------+                         +---------+   |
//!        | peer's close received,            | peer's close received
//!        | echo queued; or protocol          | (close handshake complete);
//!        | error, close frame queued         | or protocol error
//!        v                                   v        v
//!   +------------------------------------------------------------------------------+
//!   | Closed       no frame is parsed or may be sent; flush data_to_send(), then   |
//!   |              close the transport (RFC 6455 7.1.1: the server closes first)   |
//!   +------------------------------------------------------------------------------+
//! ```
//!
//! `Connection::new(role, config)` starts directly in `Open`, for connections whose handshake
//! was done elsewhere (for example by hyper).
//!
//! A protocol error "fails the WebSocket connection" (RFC 6455 7.1.7): the close frame with the
//! code that [`ProtocolError::close_code`] gives is queued, the state becomes `Closed`, and the
//! close is unclean. The mapping from error to close code lives only here.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame, ClosePayloadError, MAX_REASON_LEN, truncate_utf8};
use crate::config::Config;
use crate::deflate::{self, Codec, DeflateConfig, DeflateParams, InflateError, InflateRatio};
use crate::frame::{FrameError, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
use crate::handshake::{self, ClientHandshake, Extension, HandshakeError, ValidRequest};
use crate::mask::{self, apply_mask};
use crate::message::{Assembler, AssemblyError, Message, MessageRef, Utf8Bytes};
use crate::prepared::PreparedMessage;
use crate::utf8;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client: masks every frame it sends; receives unmasked frames.
    Client,
    /// The server: receives masked frames only; never masks.
    Server,
}

/// The connection's state (the browser's `readyState` 0-3, with `Closed` meaning the protocol is
/// done and only the transport remains to be closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// The opening handshake is in progress.
    Connecting,
    /// Messages may be sent and received.
    Open,
    /// We sent a close frame and wait for the peer's.
    Closing,
    /// The close handshake is done, or the connection failed.
    Closed,
}

/// A valid upgrade request that the server must [`Connection::accept`] or [`Connection::reject`].
#[derive(Debug)]
pub struct UpgradeRequest {
    /// The request as received.
    pub request: http::Request<()>,
    /// What the handshake checks extracted: key, origin, offered subprotocols and extensions.
    pub valid: ValidRequest,
    /// permessage-deflate parameters for the client's first acceptable offer (when this
    /// server has it enabled): put `params.to_extension()` in the response to accept them.
    pub deflate: Option<DeflateParams>,
}

/// Something that happened on the connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Server: a valid upgrade request arrived; call [`Connection::accept`] or
    /// [`Connection::reject`].
    Request(Box<UpgradeRequest>),
    /// Client: the server accepted the handshake; the connection is open.
    Open(Box<http::Response<()>>),
    /// A complete data message.
    Message(Message),
    /// A ping (already answered when [`Config::auto_pong`] is on and we have not sent a close).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame. If we had not sent a close, the echo is queued.
    Close(CloseFrame),
    /// The opening handshake failed. A server has queued the HTTP error response.
    HandshakeFailed(HandshakeError),
    /// The peer violated the protocol; the close frame with [`ProtocolError::close_code`] is
    /// queued and the connection is `Closed`.
    Error(ProtocolError),
}

/// A protocol violation by the peer, and the close code it calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame header's length encoding is invalid.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// RFC 6455 5.2: a reserved opcode.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RFC 6455 5.2: a reserved bit set that no extension negotiated.
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// RFC 6455 5.5: control frames must not be fragmented.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// RFC 6455 5.5: control frames carry at most 125 bytes.
    #[error("control frame of {0} bytes")]
    ControlTooLong(u64),
    /// RFC 6455 5.1: a server must fail on an unmasked client frame.
    #[error("unmasked frame from client")]
    UnmaskedClientFrame,
    /// RFC 6455 5.1: a client must fail on a masked server frame.
    #[error("masked frame from server")]
    MaskedServerFrame,
    /// RFC 6455 5.4: a continuation frame with no message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// RFC 6455 5.4: a new data frame while a fragmented message is in progress.
    #[error("new message while a fragmented message is in progress")]
    ExpectedContinuation,
    /// RFC 6455 5.5.1: an invalid close frame payload.
    #[error(transparent)]
    ClosePayload(#[from] ClosePayloadError),
    /// A frame larger than [`Config::max_frame_size`].
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooBig {
        /// The frame's announced payload length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A message over [`Config::max_message_size`] or [`Config::max_fragments`].
    #[error(transparent)]
    Message(#[from] AssemblyError),
    /// A compressed message that inflates past the size limit, or is not valid DEFLATE.
    #[error(transparent)]
    Inflate(#[from] InflateError),
}

impl ProtocolError {
    /// The close code this error calls for (RFC 6455 7.4.1): 1007 for invalid UTF-8, 1009 for
    /// size limits, 1002 for everything else.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::ClosePayload(ClosePayloadError::InvalidReason)
            | ProtocolError::Message(AssemblyError::InvalidUtf8)
            | ProtocolError::Inflate(InflateError::Corrupt) => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooBig { .. }
            | ProtocolError::Inflate(InflateError::TooBig(_))
            | ProtocolError::Inflate(InflateError::Ratio { .. })
            | ProtocolError::Message(AssemblyError::TooBig { .. })
            | ProtocolError::Message(AssemblyError::TooManyFragments { .. }) => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// Why something can't be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The opening handshake is not complete (the browser's `InvalidStateError`).
    #[error("the connection is not open yet")]
    NotOpen,
    /// A close frame was already sent; nothing may follow it (RFC 6455 5.5.1).
    #[error("the connection is closing or closed")]
    Closed,
    /// RFC 6455 5.5: control frame payloads are at most 125 bytes.
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlTooLong(usize),
    /// The browser's `close()` accepts only 1000 and 3000-4999.
    #[error("close code {0} may not be sent by an application (1000 or 3000-4999)")]
    InvalidCloseCode(u16),
    /// The browser's `close()` accepts a reason of at most 123 bytes of UTF-8.
    #[error("close reason of {0} bytes (at most 123)")]
    ReasonTooLong(usize),
    /// Frames can be shared between connections only on the server side (client frames are
    /// masked one by one).
    #[error("prepared messages can only be sent by a server")]
    NotServer,
    /// `accept` / `reject` called when no upgrade request is waiting for a decision.
    #[error("no upgrade request is waiting for accept or reject")]
    NoPendingRequest,
}

/// How the connection ended, as the browser's `CloseEvent` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The peer's close code; 1005 if its close frame had none; 1006 if no close frame was
    /// received or the connection failed.
    pub code: CloseCode,
    /// The peer's close reason.
    pub reason: Utf8Bytes,
    /// Whether the close handshake completed: both close frames exchanged, no failure.
    pub was_clean: bool,
}

/// A frame in the output queue: the encoded header inline, the payload shared. A *batch* is
/// several small data frames already encoded back to back (`head_len` 0, `counted`): its
/// unused `head` holds how many application bytes it carries.
#[derive(Debug)]
struct OutFrame {
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    payload: Bytes,
    /// Whether the payload counts toward `buffered_amount` (application data).
    counted: bool,
}

impl OutFrame {
    fn len(&self) -> usize {
        self.head_len as usize + self.payload.len()
    }

    /// A batch of encoded frames carrying `data` application bytes.
    fn batch(frames: Vec<u8>, data: usize) -> Self {
        let mut head = [0u8; MAX_HEADER_LEN];
        head[..8].copy_from_slice(&(data as u64).to_le_bytes());
        OutFrame {
            head,
            head_len: 0,
            payload: Bytes::from(frames),
            counted: true,
        }
    }

    /// The application bytes of a batch, or `None` for a single frame.
    fn batch_data(&self) -> Option<usize> {
        (self.head_len == 0 && self.counted).then(|| {
            let mut data = [0u8; 8];
            data.copy_from_slice(&self.head[..8]);
            u64::from_le_bytes(data) as usize
        })
    }

    /// The application bytes this frame adds to `buffered_amount`.
    fn data_len(&self) -> usize {
        match self.batch_data() {
            Some(data) => data,
            None if self.counted => self.payload.len(),
            None => 0,
        }
    }
}

/// The most [`Connection::receive`] reserves ahead for a frame announced but not yet received:
/// a reservation is address space, touched only as bytes arrive, but a peer that announces
/// large frames and stalls should not make every connection reserve its whole size.
const MAX_FRAME_RESERVE: usize = 1 << 20;

/// Up to this payload size, a message is copied out of the read buffer rather than split off
/// it: a small allocation costs less than the shared buffer's reference count, taken and
/// released atomically for every message.
const SMALL_COPY: usize = 64;

/// Whole frames up to this payload size are lent straight from the read buffer by
/// [`Connection::next_event_with`]; larger ones are split off it as owned messages (no copy)
/// and lent from those, so that a handler that sends them on ([`Outbox::send_ref`]) shares
/// their payload instead of copying it.
const LEND_MAX: usize = 1024;

/// From this payload size on, [`Connection::receive`] unmasks a server's first frame while
/// copying it; smaller frames are copied together with whatever follows them and unmasked in
/// place, which costs less for a batch of small messages.
const FUSED_UNMASK_MIN: usize = 512;

/// The parts of a connection most never use, boxed and made on first use: every idle connection
/// would pay for the fields (the subprotocol and extensions are set only when negotiated; the
/// peer's close frame only at the end; the handshake and the mask arena only on clients).
#[derive(Debug, Default)]
struct Extras {
    protocol: Option<Box<str>>,
    extensions: Vec<Extension>,
    client_handshake: Option<ClientHandshake>,
    close_received: Option<CloseFrame>,
    /// Reusable buffer the client masks outgoing payloads it does not own into.
    mask_arena: BytesMut,
    /// The size of the arena's allocation (its `capacity` is only what is left of it).
    mask_arena_size: usize,
}

/// The largest mask arena a client keeps while idle (see [`Connection::shrink_read_buffer`]).
const MAX_ARENA_KEPT: usize = 1 << 20;

/// Unsent pongs kept at most: every ping is answered while the peer reads.
const MAX_UNSENT_PONGS: usize = 32;

/// Small data frames queued behind others are copied into one batch, up to this size each...
const BATCH_FRAME_MAX: usize = 256;
/// ... and up to this size in all: a control frame may wait behind one batch on the wire.
const BATCH_MAX: usize = 16 << 10;

/// The output queue, written in this order: the frame partly written (`current`), then every
/// control frame (ping, pong), then the data frames, then the batch of small data frames. A
/// frame pushed when the queue is empty goes straight to `current`: the common case of one
/// reply at a time never allocates a queue, and an idle connection keeps none (the rest of the
/// queue is boxed and freed when everything is written and the connection waits for input).
/// So a control frame waits for at most the one frame (or batch) already on the wire, and a
/// pong not yet started can still be replaced by a newer one (RFC 6455 5.5.3): past
/// [`MAX_UNSENT_PONGS`], the oldest unsent pong is dropped, which bounds what a peer flooding
/// pings without reading can make us queue.
///
/// Small data frames queued behind others (pipelined replies) are encoded back to back into one
/// buffer instead of queued one by one: one copy of a few bytes each, instead of a queue entry
/// each, two slices each for the write, and a release of each payload after it. The batch is
/// written as one slice; while it is partly written, `buffered_amount` still counts all of its
/// application bytes (it errs high, never low).
#[derive(Debug, Default)]
struct Outgoing {
    /// The frame partly written (or next to write), and how many of its bytes are written.
    current: Option<OutFrame>,
    offset: usize,
    /// The frames behind `current`, boxed: most connections never queue more than one.
    rest: Option<Box<Queue>>,
    /// Application payload bytes not yet written.
    buffered: usize,
    /// All bytes not yet written.
    pending: usize,
}

/// The part of [`Outgoing`] behind its first frame.
#[derive(Debug, Default)]
struct Queue {
    /// The frames not started: the first `controls` are control frames (ping, pong), the
    /// rest data.
    frames: VecDeque<OutFrame>,
    controls: usize,
    /// Small data frames, encoded, after all of `frames` (none of it written yet).
    batch: Vec<u8>,
    /// Application bytes in `batch`.
    batch_data: usize,
}

impl Queue {
    /// Moves the batch, if any, to the back of `frames` as one frame (so that a frame queued
    /// next goes after it).
    fn seal_batch(&mut self) {
        if let Some(batch) = self.take_batch() {
            self.frames.push_back(batch);
        }
    }

    fn take_batch(&mut self) -> Option<OutFrame> {
        if self.batch.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.batch_data);
        Some(OutFrame::batch(std::mem::take(&mut self.batch), data))
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.batch.is_empty()
    }
}

impl OutFrame {
    /// Ping or pong: the frames that go ahead of unstarted data (a close frame ends the data
    /// and keeps its place; raw handshake bytes have no header).
    fn is_control(&self) -> bool {
        self.head_len > 0 && matches!(self.head[0] & 0x0f, 0x9 | 0xa)
    }

    fn is_pong(&self) -> bool {
        self.head_len > 0 && self.head[0] & 0x0f == OpCode::Pong.bits()
    }
}

impl Outgoing {
    fn push(&mut self, frame: OutFrame, control: bool) {
        self.pending += frame.len();
        self.buffered += frame.data_len();
        if self.is_empty() {
            self.current = Some(frame);
            self.offset = 0;
            return;
        }
        let queue = self.rest.get_or_insert_with(Box::default);
        if control {
            if self.offset == 0
                && let Some(data) = self.current.take_if(|f| !f.is_control())
            {
                // A data frame not yet started does not hold a control frame back.
                queue.frames.insert(queue.controls, data);
            }
            let controls = queue.frames.range(..queue.controls);
            if frame.is_pong() && controls.filter(|f| f.is_pong()).count() >= MAX_UNSENT_PONGS {
                // RFC 6455 5.5.3 allows answering only the most recent pings: a peer that
                // floods pings without reading gets its oldest unsent pongs dropped.
                let oldest = queue.frames.iter().position(OutFrame::is_pong);
                if let Some(old) = oldest.and_then(|at| queue.frames.remove(at)) {
                    self.pending -= old.len();
                    queue.controls -= 1;
                }
            }
            queue.frames.insert(queue.controls, frame);
            queue.controls += 1;
        } else if frame.counted
            && frame.len() <= BATCH_FRAME_MAX
            && queue.batch.len() + frame.len() <= BATCH_MAX
        {
            if queue.batch.capacity() == 0 {
                queue.batch.reserve(BATCH_FRAME_MAX * 4);
            }
            queue.batch_data += frame.data_len();
            queue
                .batch
                .extend_from_slice(&frame.head[..frame.head_len as usize]);
            queue.batch.extend_from_slice(&frame.payload);
        } else {
            queue.seal_batch();
            queue.frames.push_back(frame);
        }
    }

    /// Queues a small data frame given as a header and a borrowed payload, copied into the
    /// batch (even when nothing else is queued: the batch is then what goes out first).
    fn push_copy(&mut self, head: &[u8], payload: &[u8]) {
        let len = head.len() + payload.len();
        self.pending += len;
        self.buffered += payload.len();
        let queue = self.rest.get_or_insert_with(Box::default);
        if queue.batch.len() + len > BATCH_MAX {
            queue.seal_batch();
        }
        if queue.batch.capacity() == 0 {
            queue.batch.reserve(BATCH_FRAME_MAX * 4);
        }
        queue.batch_data += payload.len();
        queue.batch.extend_from_slice(head);
        queue.batch.extend_from_slice(payload);
    }

    /// Every frame not fully written, in the order they go out, then the batch.
    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let queue = self.rest.as_deref();
        let frames = self
            .current
            .iter()
            .chain(queue.into_iter().flat_map(|q| q.frames.iter()));
        frames
            .flat_map(|f| [&f.head[..f.head_len as usize], &f.payload[..]])
            .chain(queue.map(|q| &q.batch[..]))
    }

    fn is_empty(&self) -> bool {
        self.current.is_none() && self.rest.as_ref().is_none_or(|q| q.is_empty())
    }

    fn fill<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut skip = self.offset;
        for part in self.parts() {
            if n == dst.len() {
                break;
            }
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            dst[n] = IoSlice::new(&part[skip..]);
            skip = 0;
            n += 1;
        }
        n
    }

    fn take_all(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pending);
        let mut skip = self.offset;
        for part in self.parts() {
            let from = skip.min(part.len());
            skip -= from;
            out.extend_from_slice(&part[from..]);
        }
        *self = Outgoing::default();
        out
    }

    /// The frames in the order they go out, each with whether it is a control frame; the
    /// batch as one data frame.
    fn into_frames(self) -> impl Iterator<Item = (OutFrame, bool)> {
        let current = self.current.map(|f| {
            let control = f.is_control();
            (f, control)
        });
        let queued = self.rest.into_iter().flat_map(|mut q| {
            q.seal_batch();
            let controls = q.controls;
            q.frames
                .into_iter()
                .enumerate()
                .map(move |(i, f)| (f, i < controls))
        });
        current.into_iter().chain(queued)
    }

    fn advance(&mut self, mut n: usize) {
        if n >= self.pending {
            // Everything went out (the common case): drop the frames without the per-frame
            // bookkeeping below, keeping the queue's allocations for the next batch.
            self.current = None;
            if let Some(queue) = &mut self.rest {
                queue.frames.clear();
                queue.controls = 0;
                queue.batch.clear();
                queue.batch_data = 0;
            }
            self.offset = 0;
            self.pending = 0;
            self.buffered = 0;
            return;
        }
        self.pending -= n;
        while n > 0 {
            if self.current.is_none() {
                let Some(queue) = &mut self.rest else { break };
                self.current = match queue.frames.pop_front() {
                    Some(frame) => {
                        queue.controls = queue.controls.saturating_sub(1);
                        Some(frame)
                    }
                    // The write ends inside the batch: it becomes the frame on the wire, so
                    // that nothing is queued ahead of its rest.
                    None => queue.take_batch(),
                };
                self.offset = 0;
            }
            let Some(frame) = &self.current else { break };
            let head = frame.head_len as usize;
            let len = frame.len();
            let take = n.min(len - self.offset);
            if let Some(data) = frame.batch_data() {
                if self.offset + take == len {
                    self.buffered -= data;
                }
            } else if frame.counted {
                // Payload bytes within [offset, offset + take).
                let start = self.offset.max(head);
                let end = (self.offset + take).max(head);
                self.buffered -= end - start;
            }
            self.offset += take;
            n -= take;
            if self.offset == len {
                self.current = None;
                self.offset = 0;
            }
        }
    }
}

/// Appends `src` masked with `key` (from offset 0) to `buf`: the copy and the masking in one
/// pass ([`mask::copy_masked`]), into the buffer's spare capacity.
fn extend_masked(buf: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    buf.reserve(src.len());
    let len = buf.len();
    mask::copy_masked(&mut buf.spare_capacity_mut()[..src.len()], src, key, 0);
    #[allow(unsafe_code)]
    // SAFETY: `copy_masked` initialized the first `src.len()` bytes of the spare capacity
    // (reserved just above), which directly follow the `len` bytes already initialized.
    // Exercised by the connection tests and fuzz targets (a server's large first frame) and
    // by the client tests that send shared payloads.
    unsafe {
        buf.set_len(len + src.len());
    }
}

/// What a handler given to [`Connection::next_event_with`] sends through: the connection's
/// sending side, while its read buffer is lent out.
#[derive(Debug)]
pub struct Outbox<'a> {
    conn: &'a mut Connection,
    /// The owned message being lent, if the handler was given one (assembled, or large):
    /// [`Outbox::send_ref`] of that same message queues its payload without a copy.
    lent: Option<&'a Message>,
}

impl Outbox<'_> {
    /// Queues a copy of a borrowed message: [`Connection::send_ref`]; or, when `message` is
    /// the owned message this handler was lent, that message itself, its payload shared.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<(), SendError> {
        if let Some(lent) = self.lent
            && MessageRef::from(lent).is_same(&message)
        {
            // The message lent is an owned one: its payload is shared, not copied (an echo of
            // a large message costs no copy).
            return self.conn.send(lent.clone());
        }
        self.conn.send_ref(message)
    }

    /// Queues an owned message: [`Connection::send`].
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.conn.send(message)
    }

    /// Queues a message encoded once for many connections: [`Connection::send_prepared`].
    ///
    /// # Errors
    /// As [`Connection::send_prepared`].
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), SendError> {
        self.conn.send_prepared(prepared)
    }

    /// [`Connection::buffered_amount`]: application bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }

    /// [`Connection::pending_bytes`]: all bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.conn.pending_bytes()
    }

    /// The connection's role.
    pub fn role(&self) -> Role {
        self.conn.role
    }

    /// A shorter-lived `Outbox` to the same connection (for adapters that wrap it).
    pub fn reborrow(&mut self) -> Outbox<'_> {
        Outbox {
            conn: self.conn,
            lent: self.lent,
        }
    }
}

/// A WebSocket connection with no I/O: feed it bytes, take events and bytes to send.
///
/// See the [module documentation](self) for the state diagram.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    state: State,
    /// Shared by the connections of one server or client: a connection costs a pointer.
    config: Arc<Config>,
    rbuf: BytesMut,
    /// The frame whose header is parsed and whose payload is still arriving, and how many of
    /// its payload bytes are already unmasked.
    current: Option<(FrameHeader, usize)>,
    assembler: Assembler,
    out: Outgoing,
    /// Reserved bits that negotiated extensions allow.
    allowed_rsv: u8,
    close_sent: bool,
    failed: bool,
    awaiting_decision: bool,
    /// What most connections never have: made on first use (see [`Extras`]).
    extras: Option<Box<Extras>>,
    /// The permessage-deflate codec, when negotiated.
    codec: Option<Box<Codec>>,
    /// The incoming message in progress is compressed (RSV1 on its first frame).
    compressed_message: bool,
}

impl Connection {
    /// A connection whose opening handshake is already done: the state is `Open`.
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Self {
        Connection {
            role,
            state: State::Open,
            config: config.into(),
            rbuf: BytesMut::new(),
            current: None,
            assembler: Assembler::new(),
            out: Outgoing::default(),
            allowed_rsv: 0,
            close_sent: false,
            failed: false,
            awaiting_decision: false,
            extras: None,
            codec: None,
            compressed_message: false,
        }
    }

    /// An open connection whose handshake was done elsewhere (for example by hyper),
    /// configured from the `101` response that was sent (server) or received (client): its
    /// subprotocol, its extensions and, if negotiated there, permessage-deflate.
    pub fn from_response(
        role: Role,
        config: impl Into<Arc<Config>>,
        response: &http::Response<()>,
    ) -> Self {
        let mut conn = Connection::new(role, config);
        conn.configure_from_response(response);
        conn
    }

    fn configure_from_response(&mut self, response: &http::Response<()>) {
        let protocol = response
            .headers()
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(Box::from);
        let extensions = handshake::parse_extensions(
            response
                .headers()
                .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS),
        )
        .unwrap_or_default();
        let deflate = extensions
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(deflate::NAME));
        let params = deflate.and_then(|e| DeflateConfig::params_of_response(e).ok());
        self.set_codec(params);
        self.set_negotiated(protocol, extensions);
    }

    /// Records the negotiated subprotocol and extensions (nothing is allocated for none).
    fn set_negotiated(&mut self, protocol: Option<Box<str>>, extensions: Vec<Extension>) {
        if protocol.is_some() || !extensions.is_empty() {
            let extras = self.extras_mut();
            extras.protocol = protocol;
            extras.extensions = extensions;
        }
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_default()
    }

    /// A client connection that starts with the opening handshake: the request is queued in
    /// [`Connection::data_to_send`], and [`Event::Open`] comes once the response is verified.
    pub fn client(handshake: ClientHandshake, config: impl Into<Arc<Config>>) -> Self {
        let mut conn = Connection::new(Role::Client, config);
        conn.state = State::Connecting;
        let mut request = Vec::with_capacity(256);
        handshake.encode(&mut request);
        conn.push_raw(Bytes::from(request));
        conn.extras_mut().client_handshake = Some(handshake);
        conn
    }

    /// A server connection that starts by reading the opening handshake request:
    /// [`Event::Request`] comes once a valid request arrived.
    pub fn server(config: impl Into<Arc<Config>>) -> Self {
        let mut conn = Connection::new(Role::Server, config);
        conn.state = State::Connecting;
        conn
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, shared: a connection created from it costs a pointer, not a copy.
    pub fn shared_config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The negotiated subprotocol, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.extras.as_ref().and_then(|x| x.protocol.as_deref())
    }

    /// The negotiated extensions.
    pub fn extensions(&self) -> &[Extension] {
        self.extras.as_ref().map_or(&[], |x| &x.extensions)
    }

    /// Application payload bytes queued and not yet written (the browser's `bufferedAmount`);
    /// for a compressed message, its compressed size. Exact but for one case, where it errs
    /// high: small messages queued behind others go out as one batch, which counts whole until
    /// all of it is written (at most 16 KiB).
    pub fn buffered_amount(&self) -> usize {
        self.out.buffered
    }

    /// All bytes queued and not yet written, framing included.
    pub fn pending_bytes(&self) -> usize {
        self.out.pending
    }

    /// Whether there is anything to write.
    pub fn wants_write(&self) -> bool {
        self.out.pending > 0
    }

    /// Whether we have sent (queued) a close frame.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// The peer's close frame, once received.
    pub fn close_received(&self) -> Option<&CloseFrame> {
        self.extras.as_ref().and_then(|x| x.close_received.as_ref())
    }

    /// How the connection ended (meaningful once `Closed`).
    pub fn close_info(&self) -> CloseInfo {
        match self.close_received() {
            Some(frame) if !self.failed => CloseInfo {
                code: frame.code,
                reason: frame.reason.clone(),
                was_clean: self.close_sent,
            },
            _ => CloseInfo {
                code: CloseCode::ABNORMAL,
                reason: Utf8Bytes::default(),
                was_clean: false,
            },
        }
    }

    // ----- input -----

    /// Appends received bytes. Events are parsed lazily by [`Connection::next_event`].
    pub fn receive(&mut self, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        if self.rbuf.is_empty()
            && self.current.is_none()
            && self.state != State::Connecting
            && let Ok(Some((header, n))) = FrameHeader::decode(data)
        {
            if let Some(consumed) = self.receive_masked_frame(data, header, n) {
                self.rbuf.extend_from_slice(&data[consumed..]);
                return;
            }
            // A frame bigger than what came: room for all of it (up to a bound) before the
            // copy, so the rest is read straight into place instead of the buffer growing,
            // and being copied, step by step.
            let frame = (header.payload_len as usize).saturating_add(n);
            if frame > data.len() && header.payload_len <= self.config.max_frame_size as u64 {
                self.rbuf.reserve(frame.min(MAX_FRAME_RESERVE));
            }
        }
        self.rbuf.extend_from_slice(data);
    }

    /// Server, nothing buffered: a large masked frame at the start of `data` is copied into the
    /// read buffer unmasked on the way (one pass instead of a copy and then an unmasking pass),
    /// with room reserved for the rest of it. Returns how much of `data` was taken, or `None`
    /// to leave `data` to the plain copy (small frames, which are copied together; anything
    /// [`Connection::next_event`] will reject).
    fn receive_masked_frame(
        &mut self,
        data: &[u8],
        header: FrameHeader,
        n: usize,
    ) -> Option<usize> {
        let key = header.mask?;
        let len = header.payload_len as usize;
        if len < FUSED_UNMASK_MIN || self.check_header(&header).is_err() {
            return None;
        }
        let here = (data.len() - n).min(len);
        self.rbuf.reserve(if here < len {
            len.min(MAX_FRAME_RESERVE)
        } else {
            data.len() - n
        });
        extend_masked(&mut self.rbuf, &data[n..n + here], key);
        // What `read_frame` does with a header; the payload bytes here are already unmasked.
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            self.compressed_message = header.rsv & 0b100 != 0;
        }
        self.current = Some((header, here));
        Some(n + here)
    }

    /// The read buffer, for adapters that read from their transport straight into it
    /// (no copy). Append only; then call [`Connection::next_event`].
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Bytes still missing to complete the frame in progress (0 between frames): an adapter
    /// can reserve this much in [`Connection::read_buffer`] and read the payload in one go.
    pub fn frame_bytes_missing(&self) -> usize {
        match &self.current {
            Some((h, _)) => (h.payload_len as usize).saturating_sub(self.rbuf.len()),
            None => 0,
        }
    }

    /// Releases the read buffer's memory when nothing is buffered (an idle connection should
    /// hold almost nothing).
    pub fn shrink_read_buffer(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
        if self.out.pending == 0 {
            // Nothing left to write: the queue behind the first frame goes too.
            self.out.rest = None;
        }
        if self.out.pending == 0
            && let Some(extras) = &mut self.extras
            && extras.mask_arena_size > MAX_ARENA_KEPT
        {
            // A small arena is kept for the next message (its frames written, the allocation
            // is ours alone again and is reused without a fresh one and its page faults); a
            // large one is not kept by an idle connection.
            extras.mask_arena = BytesMut::new();
            extras.mask_arena_size = 0;
        }
    }

    /// The transport reached end of file. Unless the close handshake was done, the connection
    /// ends uncleanly (close code 1006).
    pub fn receive_eof(&mut self) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.failed = self.close_received().is_none() || self.failed;
        }
        self.rbuf = BytesMut::new();
        self.current = None;
    }

    /// The next event parsed from the bytes received so far, or `None` if more bytes are
    /// needed (or the connection is closed).
    pub fn next_event(&mut self) -> Option<Event> {
        match self.state {
            State::Connecting => match self.role {
                Role::Server => self.read_request(),
                Role::Client => self.read_response(),
            },
            State::Open | State::Closing => self.read_frame(),
            State::Closed => None,
        }
    }

    /// Like [`Connection::next_event`], but every data message goes to `handler` instead of
    /// being returned, lent as a [`MessageRef`]: a whole message of up to 1 KiB in one
    /// uncompressed frame is unmasked in place and lent straight out of the read buffer, with
    /// no allocation and no copy; any other message (larger, fragmented, compressed) is made
    /// as `next_event` makes it (a large one split off the buffer, not copied) and lent from
    /// the [`Message`]. The handler can queue replies through the [`Outbox`] it is given:
    /// [`Outbox::send_ref`] copies a small reply straight into the output batch on a server,
    /// and sends the owned message it was lent by sharing its payload. Returns the next event that is not a data message (ping, pong, close, error,
    /// handshake), or `None` once everything buffered is handled.
    ///
    /// This is the hot path of servers that answer many small messages (an echo, a relay of
    /// each message to a channel): the per-message object of [`Connection::next_event`] is
    /// where their time goes besides the system calls.
    ///
    /// ```
    /// use tolqin_proto::{Config, Connection, Role};
    /// # use tolqin_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
    /// # let mut frame = [0u8; MAX_HEADER_LEN];
    /// # let mut header = FrameHeader::new(OpCode::Text, 2);
    /// # header.mask = Some([0; 4]);
    /// # let n = header.encode(&mut frame);
    /// # let mut masked_hi = frame[..n].to_vec();
    /// # masked_hi.extend_from_slice(b"hi");
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.receive(&masked_hi); // a client's masked text frame "hi"
    /// let mut echoed = 0;
    /// let event = server.next_event_with(|message, out| {
    ///     echoed += 1;
    ///     out.send_ref(message)
    /// })?;
    /// assert!(event.is_none());
    /// assert_eq!(echoed, 1);
    /// assert_eq!(server.data_to_send(), b"\x81\x02hi");
    /// # Ok::<(), tolqin_proto::SendError>(())
    /// ```
    ///
    /// # Errors
    /// The handler's first error, returned at once; the message it was given counts as
    /// handled, and what follows it stays buffered for the next call.
    pub fn next_event_with<E, F>(&mut self, mut handler: F) -> Result<Option<Event>, E>
    where
        F: FnMut(MessageRef<'_>, &mut Outbox<'_>) -> Result<(), E>,
    {
        loop {
            if matches!(self.state, State::Open | State::Closing) && self.current.is_none() {
                // The read buffer is moved out while messages are lent from it, so that the
                // handler can be given the connection to send through.
                let mut rbuf = std::mem::take(&mut self.rbuf);
                let lent = self.lend_whole_messages(&mut rbuf, &mut handler);
                if self.state != State::Closed {
                    // (A failed connection keeps no input: `fail` emptied the buffer.)
                    self.rbuf = rbuf;
                }
                if let Some(event) = lent? {
                    return Ok(Some(event));
                }
            }
            match self.next_event() {
                Some(Event::Message(message)) => {
                    let mut out = Outbox {
                        conn: self,
                        lent: Some(&message),
                    };
                    handler(MessageRef::from(&message), &mut out)?;
                }
                other => return Ok(other),
            }
        }
    }

    /// [`Connection::next_event_with`]'s fast path over the read buffer moved out of `self`:
    /// lends every whole single-frame uncompressed message at the front of `rbuf`, stopping at
    /// the first frame that needs [`Connection::next_event`]. Returns the event of a text
    /// message that is not valid UTF-8 (the connection failed).
    fn lend_whole_messages<E, F>(
        &mut self,
        rbuf: &mut BytesMut,
        handler: &mut F,
    ) -> Result<Option<Event>, E>
    where
        F: FnMut(MessageRef<'_>, &mut Outbox<'_>) -> Result<(), E>,
    {
        // The messages lent are consumed from the buffer once, at the end (`advance` per
        // message was 5% of an echo server's instructions).
        let mut pos = 0;
        let lent = loop {
            let Ok(Some((header, n))) = FrameHeader::decode(&rbuf[pos..]) else {
                break Ok(None);
            };
            let start = pos + n;
            let len = header.payload_len as usize;
            if rbuf.len() - start < len || len > LEND_MAX || self.check_header(&header).is_err() {
                // Incomplete, large, or an error: left to `next_event`.
                break Ok(None);
            }
            // What `read_frame` records of a data frame's header, then its test for a plain
            // whole message (anything else is left to `next_event`, which records it again).
            if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                self.compressed_message = header.rsv & 0b100 != 0;
            }
            if !self.is_plain_message(&header) {
                break Ok(None);
            }
            let end = start + len;
            if let Some(key) = header.mask {
                apply_mask(&mut rbuf[start..end], key, 0);
            }
            let payload = &rbuf[start..end];
            let message = if header.opcode == OpCode::Text {
                match utf8::validate_str(payload) {
                    Ok(text) => MessageRef::Text(text),
                    Err(e) => break Ok(Some(self.fail(AssemblyError::from(e).into()))),
                }
            } else {
                MessageRef::Binary(payload)
            };
            let handled = handler(
                message,
                &mut Outbox {
                    conn: self,
                    lent: None,
                },
            );
            pos = end;
            if let Err(e) = handled {
                break Err(e);
            }
        };
        rbuf.advance(pos);
        lent
    }

    fn read_request(&mut self) -> Option<Event> {
        if self.awaiting_decision {
            return None;
        }
        let parsed = handshake::parse_request(&self.rbuf, &self.config).and_then(|p| {
            p.map(|(req, n)| {
                let valid = handshake::validate_request(&req)?;
                let deflate = self.config.deflate.negotiate(&valid.extensions)?;
                Ok((req, valid, deflate, n))
            })
            .transpose()
        });
        match parsed {
            Ok(None) => None,
            Ok(Some((request, valid, deflate, n))) => {
                self.rbuf.advance(n);
                self.awaiting_decision = true;
                Some(Event::Request(Box::new(UpgradeRequest {
                    request,
                    valid,
                    deflate,
                })))
            }
            Err(err) => {
                let mut out = Vec::new();
                handshake::encode_response(&handshake::error_response(&err), &mut out);
                self.push_raw(Bytes::from(out));
                Some(self.fail_handshake(err))
            }
        }
    }

    fn read_response(&mut self) -> Option<Event> {
        let parsed = handshake::parse_response(&self.rbuf, &self.config);
        let (response, n) = match parsed {
            Ok(None) => return None,
            Ok(Some(p)) => p,
            Err(err) => return Some(self.fail_handshake(err)),
        };
        let handshake = self
            .extras
            .as_mut()
            .and_then(|x| x.client_handshake.take())
            .expect("client in Connecting has a handshake");
        let verified = handshake.verify(&response).and_then(|accepted| {
            let codec = self.client_codec(&accepted.extensions)?;
            Ok((accepted, codec))
        });
        match verified {
            Ok((accepted, codec)) => {
                self.rbuf.advance(n);
                self.set_negotiated(
                    accepted.protocol.map(String::into_boxed_str),
                    accepted.extensions,
                );
                self.set_codec(codec);
                self.state = State::Open;
                Some(Event::Open(Box::new(response)))
            }
            Err(err @ (HandshakeError::UnofferedExtension(_) | HandshakeError::Deflate(_))) => {
                // The server switched protocols, so the connection is open at the HTTP level:
                // fail it with 1010 (RFC 6455 7.4.1) rather than just dropping it.
                self.state = State::Open;
                let frame = CloseFrame {
                    code: CloseCode::MANDATORY_EXTENSION,
                    reason: Utf8Bytes::from("extension negotiation failed"),
                };
                self.push_frame(OpCode::Close, frame.encode(), true, false, 0);
                self.close_sent = true;
                Some(self.fail_handshake(err))
            }
            Err(err) => Some(self.fail_handshake(err)),
        }
    }

    /// Client: the codec for the extensions the server accepted.
    fn client_codec(
        &self,
        accepted: &[Extension],
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        let mut params = None;
        for ext in accepted
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(deflate::NAME))
        {
            if params.is_some() {
                return Err(deflate::NegotiationError::Repeated.into());
            }
            params = Some(self.config.deflate.verify_response(ext)?);
        }
        Ok(params)
    }

    fn set_codec(&mut self, params: Option<DeflateParams>) {
        if let Some(params) = params {
            self.codec = Some(Box::new(Codec::new(
                self.role,
                params,
                &self.config.deflate,
            )));
            // RFC 7692 6: permessage-deflate uses RSV1.
            self.allowed_rsv |= 0b100;
        }
    }

    fn fail_handshake(&mut self, err: HandshakeError) -> Event {
        self.state = State::Closed;
        self.failed = true;
        self.rbuf = BytesMut::new();
        Event::HandshakeFailed(err)
    }

    /// Server: accepts the pending upgrade request with `response` (normally built by
    /// [`ValidRequest::accept`], possibly with headers added). The connection is then `Open`,
    /// and frames that arrived right after the request are parsed by the next `next_event`.
    ///
    /// # Errors
    /// [`SendError::NoPendingRequest`] unless an [`Event::Request`] is waiting for a decision.
    pub fn accept(&mut self, response: http::Response<()>) -> Result<(), SendError> {
        if !self.awaiting_decision || self.state != State::Connecting {
            return Err(SendError::NoPendingRequest);
        }
        self.awaiting_decision = false;
        self.configure_from_response(&response);
        let mut out = Vec::with_capacity(160);
        handshake::encode_response(&response, &mut out);
        self.push_raw(Bytes::from(out));
        self.state = State::Open;
        Ok(())
    }

    /// Server: refuses the pending upgrade request with an HTTP response (401, 403, ...). The
    /// connection is `Closed` once the response is written.
    ///
    /// # Errors
    /// [`SendError::NoPendingRequest`] unless an [`Event::Request`] is waiting for a decision.
    pub fn reject<B: handshake::ResponseBody>(
        &mut self,
        response: &http::Response<B>,
    ) -> Result<(), SendError> {
        if !self.awaiting_decision || self.state != State::Connecting {
            return Err(SendError::NoPendingRequest);
        }
        self.awaiting_decision = false;
        let mut out = Vec::new();
        handshake::encode_response(response, &mut out);
        self.push_raw(Bytes::from(out));
        self.state = State::Closed;
        self.failed = true;
        self.rbuf = BytesMut::new();
        Ok(())
    }

    fn read_frame(&mut self) -> Option<Event> {
        loop {
            if self.current.is_none() {
                let (header, n) = match FrameHeader::decode(&self.rbuf) {
                    Ok(None) => return None,
                    Ok(Some(h)) => h,
                    Err(e) => return Some(self.fail(e.into())),
                };
                if let Err(e) = self.check_header(&header) {
                    return Some(self.fail(e));
                }
                if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                    self.compressed_message = header.rsv & 0b100 != 0;
                }
                let len = header.payload_len as usize;
                if self.rbuf.len() - n >= len && self.is_plain_message(&header) {
                    // The common case: a whole message in one frame, all of it here. Unmasked
                    // in place and handed out as one slice of the buffer, without the
                    // assembler's bookkeeping (the hot path of small pipelined messages).
                    if let Some(key) = header.mask {
                        apply_mask(&mut self.rbuf[n..n + len], key, 0);
                    }
                    let payload = if len <= SMALL_COPY {
                        let payload = Bytes::copy_from_slice(&self.rbuf[n..n + len]);
                        self.rbuf.advance(n + len);
                        payload
                    } else {
                        let mut payload = self.rbuf.split_to(n + len).freeze();
                        payload.advance(n);
                        payload
                    };
                    return Some(self.single_message(&header, payload));
                }
                self.rbuf.advance(n);
                self.current = Some((header, 0));
            }
            let (header, unmasked) = self.current.expect("set above");
            let len = header.payload_len as usize;
            let have = self.rbuf.len().min(len);
            if have > unmasked {
                if let Some(key) = header.mask {
                    apply_mask(&mut self.rbuf[unmasked..have], key, unmasked);
                }
                self.current = Some((header, have));
            }
            if have < len {
                // RFC 6455 8.1 fail fast: validate the text received so far, mid-frame.
                // (A compressed message is validated as it is inflated, frame by frame.)
                let text = !self.compressed_message
                    && match header.opcode {
                        OpCode::Text => true,
                        OpCode::Continuation => self.assembler.is_text() == Some(true),
                        _ => false,
                    };
                if let Err(e) = self.assembler.validate_partial(text, &self.rbuf[..have]) {
                    return Some(self.fail(e.into()));
                }
                return None;
            }
            self.current = None;
            let payload = self.rbuf.split_to(len).freeze();
            if self.is_plain_message(&header) {
                return Some(self.single_message(&header, payload));
            }
            let event = match header.opcode {
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    let first = match header.opcode {
                        OpCode::Text => Some(true),
                        OpCode::Binary => Some(false),
                        _ => None,
                    };
                    let payload = if self.compressed_message {
                        match self.inflate(&payload, header.fin) {
                            Ok(inflated) => inflated,
                            Err(e) => return Some(self.fail(e)),
                        }
                    } else {
                        payload
                    };
                    match self.assembler.push(first, payload, header.fin) {
                        Ok(Some(message)) => Event::Message(message),
                        Ok(None) => continue,
                        Err(e) => self.fail(e.into()),
                    }
                }
                OpCode::Ping => {
                    if self.config.auto_pong && !self.close_sent {
                        self.push_frame(OpCode::Pong, payload.clone(), true, false, 0);
                    }
                    Event::Ping(payload)
                }
                OpCode::Pong => Event::Pong(payload),
                OpCode::Close => match CloseFrame::parse(payload) {
                    Ok(frame) => self.on_close(frame),
                    Err(e) => self.fail(e.into()),
                },
                OpCode::Reserved(_) => unreachable!("rejected by check_header"),
            };
            return Some(event);
        }
    }

    /// Whether a data frame is a whole message by itself, uncompressed, with nothing of it
    /// validated piecemeal: [`Connection::single_message`] makes the message.
    #[inline]
    fn is_plain_message(&self, header: &FrameHeader) -> bool {
        header.fin
            && !self.compressed_message
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
            && self.assembler.is_idle()
    }

    /// The message of a frame that [`Connection::is_plain_message`] accepted.
    #[inline]
    fn single_message(&mut self, header: &FrameHeader, payload: Bytes) -> Event {
        match Assembler::single(header.opcode == OpCode::Text, payload) {
            Ok(message) => Event::Message(message),
            Err(e) => self.fail(e.into()),
        }
    }

    /// Inflates one frame of a compressed message, within what is left of the message limit
    /// and what the compressed bytes inflated so far allow ([`Config::max_inflate_ratio`],
    /// and [`Config::inflate_ratio_floor`] if the frame completes the message).
    fn inflate(&mut self, payload: &[u8], fin: bool) -> Result<Bytes, ProtocolError> {
        let limit = self
            .config
            .max_message_size
            .saturating_sub(self.assembler.buffered());
        let ratio = InflateRatio {
            max_ratio: self.config.max_inflate_ratio,
            floor: self.config.inflate_ratio_floor,
        };
        let codec = self
            .codec
            .as_mut()
            .expect("RSV1 is only allowed with a codec");
        let mut out = Vec::new();
        codec.inflate_with_ratio(payload, fin, limit, ratio, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn check_header(&self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if h.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        // RFC 7692 6.1: RSV1 marks a compressed message on its first frame only; never on a
        // continuation or control frame.
        if h.rsv & 0b100 != 0 && !matches!(h.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        if let OpCode::Reserved(bits) = h.opcode {
            return Err(ProtocolError::ReservedOpcode(bits));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong(h.payload_len));
            }
            return Ok(());
        }
        match (h.opcode, self.assembler.in_progress()) {
            (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, true) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }
        if h.payload_len > self.config.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                len: h.payload_len,
                limit: self.config.max_frame_size,
            });
        }
        self.assembler.check_frame(
            h.payload_len,
            self.config.max_message_size,
            self.config.max_fragments,
        )?;
        Ok(())
    }

    fn on_close(&mut self, frame: CloseFrame) -> Event {
        if !self.close_sent {
            // RFC 6455 5.5.1: reply with a close frame, typically echoing the status code; the
            // reason is echoed too, so an initiator sees its own words in its close event.
            let echo = frame.encode();
            self.push_frame(OpCode::Close, echo, true, false, 0);
            self.close_sent = true;
        }
        self.extras_mut().close_received = Some(frame.clone());
        self.state = State::Closed;
        self.rbuf = BytesMut::new();
        Event::Close(frame)
    }

    /// Fails the connection (RFC 6455 7.1.7): queues a close frame with the error's code.
    fn fail(&mut self, err: ProtocolError) -> Event {
        if !self.close_sent {
            let reason = err.to_string();
            let frame = CloseFrame {
                code: err.close_code(),
                reason: Utf8Bytes::from(truncate_utf8(&reason, MAX_REASON_LEN)),
            };
            self.push_frame(OpCode::Close, frame.encode(), true, false, 0);
            self.close_sent = true;
        }
        self.state = State::Closed;
        self.failed = true;
        self.rbuf = BytesMut::new();
        self.current = None;
        Event::Error(err)
    }

    // ----- output -----

    fn push_raw(&mut self, bytes: Bytes) {
        self.out.push(
            OutFrame {
                head: [0; MAX_HEADER_LEN],
                head_len: 0,
                payload: bytes,
                counted: false,
            },
            false,
        );
    }

    fn push_frame(&mut self, opcode: OpCode, payload: Bytes, fin: bool, counted: bool, rsv: u8) {
        if self.role == Role::Server {
            return self.push_encoded(opcode, payload, None, fin, counted, rsv);
        }
        match payload.try_into_mut() {
            // The payload is ours alone (a message the caller handed over): masked in place,
            // no copy.
            Ok(owned) => self.push_frame_owned(opcode, owned, fin, counted, rsv),
            // Shared (a broadcast, static bytes): masked into the arena.
            Err(shared) => {
                // RFC 6455 5.3: a fresh, unpredictable key for every frame.
                let key: [u8; 4] = rand::random();
                self.reserve_mask_arena(shared.len());
                let arena = &mut self.extras_mut().mask_arena;
                extend_masked(arena, &shared, key);
                let masked = arena.split().freeze();
                self.push_encoded(opcode, masked, Some(key), fin, counted, rsv);
            }
        }
    }

    /// Client: room for `len` more bytes in the mask arena. One reservation for a whole
    /// message, made before its first frame, serves all its frames: each is split off the
    /// same allocation. Once every frame sharing it is written, the allocation is reused.
    fn reserve_mask_arena(&mut self, len: usize) {
        let extras = self.extras_mut();
        if extras.mask_arena.capacity() < len {
            extras.mask_arena.reserve(len);
            // Reused in place (everything split off it written and dropped) or allocated
            // anew: either way the allocation now holds at least `len` bytes.
            extras.mask_arena_size = extras.mask_arena_size.max(extras.mask_arena.capacity());
        }
    }

    /// [`Connection::push_frame`] for a payload only this connection holds: a client masks it
    /// in place.
    fn push_frame_owned(
        &mut self,
        opcode: OpCode,
        mut payload: BytesMut,
        fin: bool,
        counted: bool,
        rsv: u8,
    ) {
        // RFC 6455 5.3: a fresh, unpredictable key for every frame.
        let mask = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        self.push_encoded(opcode, payload.freeze(), mask, fin, counted, rsv);
    }

    /// Queues a frame whose payload is ready (masked already if `mask` is given).
    fn push_encoded(
        &mut self,
        opcode: OpCode,
        payload: Bytes,
        mask: Option<[u8; 4]>,
        fin: bool,
        counted: bool,
        rsv: u8,
    ) {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv = rsv;
        header.mask = mask;
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head) as u8;
        let control = matches!(opcode, OpCode::Ping | OpCode::Pong);
        self.out.push(
            OutFrame {
                head,
                head_len,
                payload,
                counted,
            },
            control,
        );
    }

    fn check_can_send(&self) -> Result<(), SendError> {
        match self.state {
            State::Connecting => Err(SendError::NotOpen),
            _ if self.close_sent => Err(SendError::Closed),
            State::Closed => Err(SendError::Closed),
            _ => Ok(()),
        }
    }

    /// Queues a message. Messages longer than [`Config::write_frame_size`] are sent as several
    /// frames; the payload is shared, not copied (a client copies once to mask it).
    ///
    /// # Errors
    /// [`SendError::NotOpen`] before the handshake, [`SendError::Closed`] after a close frame
    /// was sent.
    pub fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.check_can_send()?;
        let (opcode, payload) = match message {
            Message::Text(t) => (OpCode::Text, t.into_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        self.send_payload(opcode, payload);
        Ok(())
    }

    /// Queues a copy of a borrowed message (for example one lent by
    /// [`Connection::next_event_with`]: an echo, a relay). A server copies a small
    /// uncompressed message straight into its output batch, with no allocation of its own;
    /// anything else is copied once into an owned payload and sent as [`Connection::send`]
    /// does.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<(), SendError> {
        self.check_can_send()?;
        let (opcode, payload) = match message {
            MessageRef::Text(t) => (OpCode::Text, t.as_bytes()),
            MessageRef::Binary(b) => (OpCode::Binary, b),
        };
        if self.role == Role::Server
            && self.codec.is_none()
            && payload.len() + MAX_HEADER_LEN <= BATCH_FRAME_MAX
            && payload.len() <= self.config.write_frame_size
        {
            let mut head = [0u8; MAX_HEADER_LEN];
            let head_len = FrameHeader::new(opcode, payload.len() as u64).encode(&mut head);
            self.out.push_copy(&head[..head_len], payload);
            return Ok(());
        }
        self.send_payload(opcode, Bytes::copy_from_slice(payload));
        Ok(())
    }

    /// [`Connection::send`] once the state is checked: compresses, fragments and queues.
    fn send_payload(&mut self, opcode: OpCode, payload: Bytes) {
        // RFC 7692 6: a compressed message has RSV1 set on its first frame only.
        let (payload, rsv) = match self.codec.as_mut().and_then(|c| c.compress(&payload)) {
            Some(compressed) => (compressed, 0b100),
            None => (payload, 0),
        };
        let step = self.config.write_frame_size.max(1);
        if payload.len() <= step {
            self.push_frame(opcode, payload, true, true, rsv);
            return;
        }
        // A client masks each frame: a payload it holds alone is cut into frames that are
        // masked in place; a shared one is sliced, and each frame masked into the arena.
        let mut owned = match payload.try_into_mut() {
            Ok(owned) => owned,
            Err(shared) => {
                if self.role == Role::Client {
                    // Every frame is masked into one allocation.
                    self.reserve_mask_arena(shared.len());
                }
                let mut at = 0;
                while at < shared.len() {
                    let end = (at + step).min(shared.len());
                    let (op, rsv) = if at == 0 {
                        (opcode, rsv)
                    } else {
                        (OpCode::Continuation, 0)
                    };
                    self.push_frame(op, shared.slice(at..end), end == shared.len(), true, rsv);
                    at = end;
                }
                return;
            }
        };
        let (mut op, mut rsv) = (opcode, rsv);
        while !owned.is_empty() {
            let piece = owned.split_to(step.min(owned.len()));
            let fin = owned.is_empty();
            self.push_frame_owned(op, piece, fin, true, rsv);
            (op, rsv) = (OpCode::Continuation, 0);
        }
    }

    /// Server: queues a message encoded once for many connections (see
    /// [`crate::prepared`]); the shared bytes are queued without copying.
    ///
    /// # Errors
    /// As [`Connection::send`]. A client must mask each frame itself and so cannot share
    /// frames: it gets [`SendError::NotServer`].
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.role != Role::Server {
            return Err(SendError::NotServer);
        }
        let (frame, head_len) = prepared.frame_for(self.codec.as_ref().map(|c| c.params()));
        let mut head = [0u8; MAX_HEADER_LEN];
        head[..head_len].copy_from_slice(&frame[..head_len]);
        let payload = frame.slice(head_len..);
        self.out.push(
            OutFrame {
                head,
                head_len: head_len as u8,
                payload,
                counted: true,
            },
            false,
        );
        Ok(())
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), SendError> {
        self.send(Message::Text(text.into()))
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues one data frame of a message the caller fragments itself: `opcode` is `Text` or
    /// `Binary` for the first frame and `Continuation` after; `fin` marks the last.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_fragment(
        &mut self,
        opcode: OpCode,
        payload: Bytes,
        fin: bool,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        self.push_frame(opcode, payload, fin, true, 0);
        Ok(())
    }

    /// Queues a ping; it goes out ahead of any data frame not yet started.
    ///
    /// # Errors
    /// [`SendError::ControlTooLong`] over 125 bytes, or the state errors of [`Connection::send`].
    pub fn send_ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload.into())
    }

    /// Queues an unsolicited pong (a unidirectional heartbeat, RFC 6455 5.5.3).
    ///
    /// # Errors
    /// As [`Connection::send_ping`].
    pub fn send_pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload.into())
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError> {
        self.check_can_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong(payload.len()));
        }
        self.push_frame(opcode, payload, true, false, 0);
        Ok(())
    }

    /// Starts the close handshake as the browser's `close(code, reason)` does: `code` must be
    /// 1000 or 3000-4999 and `reason` at most 123 bytes; `None` sends a close frame with no
    /// body. The close frame goes after every message already queued.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`], [`SendError::ReasonTooLong`], or the state errors of
    /// [`Connection::send`].
    pub fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<(), SendError> {
        if let Some(code) = code
            && !code.is_allowed_for_application()
        {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        self.close_with(code.unwrap_or(CloseCode::NO_STATUS), reason)
    }

    /// Starts the close handshake with any code valid on the wire (for servers: 1001 going
    /// away, 1008 policy, 1011 internal error...). [`CloseCode::NO_STATUS`] sends no body.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for a code not valid on the wire,
    /// [`SendError::ReasonTooLong`], or the state errors of [`Connection::send`].
    pub fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_can_send()?;
        if code != CloseCode::NO_STATUS && !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ReasonTooLong(reason.len()));
        }
        let reason = if code == CloseCode::NO_STATUS {
            ""
        } else {
            reason
        };
        let payload = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        }
        .encode();
        self.push_frame(OpCode::Close, payload, true, false, 0);
        self.close_sent = true;
        if self.state == State::Open {
            self.state = State::Closing;
        }
        Ok(())
    }

    /// Notes that a close frame was sent for this connection by another `Connection` sharing
    /// its transport (the sending half of a split connection): no pong is queued from now on,
    /// and a close frame received completes the close handshake instead of being echoed.
    pub fn note_close_sent(&mut self) {
        self.close_sent = true;
        if self.state == State::Open {
            self.state = State::Closing;
        }
    }

    /// Moves everything `from` has queued for sending into this connection's queue: control
    /// frames stay control frames (ahead of unstarted data), and a close frame ends the queue
    /// (frames after it, or after one this connection already sent, are dropped).
    ///
    /// This is how a connection split into halves works: the receiving half's `Connection`
    /// queues the replies the protocol obliges (pongs, the close echo, a close after a
    /// protocol error) and the sending half's `Connection` writes them.
    pub fn take_output(&mut self, from: &mut Connection) {
        let out = std::mem::take(&mut from.out);
        if self.out.is_empty() && !self.close_sent {
            // Nothing queued here: take the queue whole, a partly written frame included.
            self.out = out;
        } else {
            debug_assert_eq!(out.offset, 0, "a source that writes nothing itself");
            // `current` was pushed first, into an empty queue: a control frame (ping, pong)
            // when its opcode says so.
            let frames = out.into_frames();
            for (frame, control) in frames {
                if self.close_sent {
                    break;
                }
                let is_close = frame.head_len > 0 && frame.head[0] & 0x0f == OpCode::Close.bits();
                self.out.push(frame, control);
                if is_close {
                    self.note_close_sent();
                }
            }
        }
        if from.close_sent {
            self.note_close_sent();
        }
        if from.state == State::Closed {
            self.state = State::Closed;
        }
    }

    /// Fills `dst` with the next slices to write, in order, for a vectored write; returns how
    /// many were filled. Report what was written with [`Connection::advance_written`].
    pub fn io_slices<'a>(&'a mut self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.fill(dst)
    }

    /// Marks `n` bytes, from the front of what [`Connection::io_slices`] gave, as written.
    pub fn advance_written(&mut self, n: usize) {
        self.out.advance(n);
    }

    /// Takes everything queued for sending, as one buffer.
    pub fn data_to_send(&mut self) -> Vec<u8> {
        self.out.take_all()
    }
}

#[cfg(test)]
mod tests;
