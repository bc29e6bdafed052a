//! Runs one case's plan over an open WebSocket connection, in either role, and records what
//! happened the way Autobahn's fuzzing peer does.
//!
//! The peer's bytes are read on a task of their own, so that a peer echoing while the fuzzer is
//! still writing megabytes never deadlocks; this loop writes the script, answers pings and
//! close frames, keeps the timers and records events.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tolqin::proto::close::CloseFrame;
use tolqin::proto::deflate::Codec;
use tolqin::proto::frame::OpCode;
use tolqin::proto::utf8::Utf8Validator;

use crate::case::{Check, Event, Plan, Step, code};
use crate::verdict::Observed;
use crate::wire::{Input, RxFrame, WireLog, encode_frame, encode_header, read_frames};

/// RFC 6455 5.5: control frames carry at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// How long the fuzzer waits for the peer's close frame after sending its own, and (as the
/// client) for the server to drop TCP after the closing handshake: Autobahn's defaults.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest message the fuzzer inflates (section 9's largest is 16 MiB).
const MAX_INFLATED: usize = 64 << 20;

/// The pause between two chops of a frame written in pieces.
const CHOP_PAUSE: Duration = Duration::from_micros(20);

/// The fuzzer's side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Testing a server: frames are masked, the server is expected to drop TCP.
    Client,
    /// Testing a client: frames are unmasked, the fuzzer drops TCP after the handshake.
    Server,
}

/// Everything recorded about one run, for the verdict and the report.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub seen: Observed,
    pub failed_by_me: bool,
    pub was_not_clean_reason: Option<String>,
    pub was_close_handshake_timeout: bool,
    pub was_server_connection_drop_timeout: bool,
    pub local_close_code: Option<u16>,
    pub local_close_reason: Option<String>,
    pub remote_close_reason: Option<String>,
    pub duration_ms: u64,
    pub wirelog: Vec<serde_json::Value>,
    pub note: Option<String>,
}

/// Runs `plan` over `stream`, whose opening handshake is done; `leftover` holds the bytes that
/// arrived after the handshake.
pub(crate) async fn run<S>(
    stream: S,
    side: Side,
    plan: &Plan,
    leftover: BytesMut,
    codec: Option<Codec>,
) -> Record
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_frames(rd, leftover, tx));
    let start = Instant::now();
    let mut conn = Conn::new(wr, side, start);
    conn.record.seen.deflate_negotiated = codec.is_some();
    conn.codec = codec;
    conn.drive(plan, rx).await;
    reader.abort();
    let mut record = conn.record;
    record.duration_ms = start.elapsed().as_millis() as u64;
    record.wirelog = conn.log.entries;
    record
}

/// A message being reassembled.
struct Partial {
    binary: bool,
    /// RSV1 was set on its first frame: its payload is deflated.
    compressed: bool,
    data: Vec<u8>,
}

struct Conn<W> {
    wr: WriteHalf<W>,
    side: Side,
    batch: Vec<u8>,
    log: WireLog,
    record: Record,
    sent_close: bool,
    got_close: bool,
    tcp_down: bool,
    /// A write failed: nothing more is written, but reading goes on to the end.
    write_broken: bool,
    /// The message being reassembled.
    partial: Option<Partial>,
    codec: Option<Codec>,
    /// For [`Check::Compressed`]: the message last sent, and how many were sent.
    compressed_sent: (Bytes, usize),
    utf8: Utf8Validator,
    /// The frame announced by [`Step::FrameHeader`]: its mask and how much payload went out.
    open_frame: Option<(Option<[u8; 4]>, usize)>,
    echoed: usize,
    close_after: Option<Instant>,
    kill_at: Option<Instant>,
    close_deadline: Option<Instant>,
    drop_deadline: Option<Instant>,
    limit_at: Instant,
    rng: u64,
}

/// Why an echoed message differs from the one sent, if it does.
fn echo_problem(binary: bool, expected_binary: bool, got: &[u8], sent: &[u8]) -> Option<String> {
    if binary != expected_binary {
        Some(format!(
            "Echoed message type differs (got binary = {binary})."
        ))
    } else if got.len() != sent.len() {
        Some(format!(
            "Echoed message length differs (got {}, expected {}).",
            got.len(),
            sent.len()
        ))
    } else if got != sent {
        Some("Echoed message contents differ from what was sent.".to_owned())
    } else {
        None
    }
}

impl<W: AsyncRead + AsyncWrite> Conn<W> {
    fn new(wr: WriteHalf<W>, side: Side, start: Instant) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Conn {
            wr,
            side,
            batch: Vec::new(),
            log: WireLog::default(),
            record: Record {
                seen: Observed {
                    is_server: side == Side::Server,
                    ..Observed::default()
                },
                ..Record::default()
            },
            sent_close: false,
            got_close: false,
            tcp_down: false,
            write_broken: false,
            partial: None,
            codec: None,
            compressed_sent: (Bytes::new(), 0),
            utf8: Utf8Validator::new(),
            open_frame: None,
            echoed: 0,
            close_after: None,
            kill_at: None,
            close_deadline: None,
            drop_deadline: None,
            limit_at: start,
            rng: seed | 1,
        }
    }

    /// The WebSocket connection is open: no close frame went either way.
    fn open(&self) -> bool {
        !self.tcp_down && !self.sent_close && !self.got_close
    }

    /// A masking key when the fuzzer is the client (xorshift: a fuzzer needs no secrecy).
    fn mask(&mut self) -> Option<[u8; 4]> {
        if self.side == Side::Server {
            return None;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Some((self.rng as u32).to_be_bytes())
    }

    async fn drive(&mut self, plan: &Plan, mut rx: mpsc::UnboundedReceiver<Input>) {
        self.limit_at = Instant::now() + Duration::from_secs_f64(plan.limit_secs);
        if matches!(plan.check, Check::Echo { .. }) {
            // Megabytes of payload would drown the log; Autobahn switches it off too.
            self.log.enable(false);
        }
        if let Check::Compressed { .. } = &plan.check {
            if self.codec.is_none() {
                self.send_close(Some(code::NORMAL), b"").await;
            } else {
                self.log.enable(false);
                self.send_next_compressed(&plan.check).await;
            }
        }
        let mut next = 0;
        let mut resume: Option<(Instant, Option<&'static str>)> = None;
        loop {
            // Run the script up to the next wait.
            while !self.tcp_down && resume.is_none() && next < plan.steps.len() {
                let step = &plan.steps[next];
                next += 1;
                match step {
                    Step::Wait { secs, tag } => {
                        self.flush_batch().await;
                        self.log.note(json!(["CT", secs, tag]));
                        resume = Some((Instant::now() + Duration::from_secs_f64(*secs), *tag));
                    }
                    other => self.step(other).await,
                }
            }
            self.flush_batch().await;
            if self.tcp_down {
                break;
            }
            let deadline = [
                resume.map(|r| r.0),
                self.close_after,
                self.kill_at,
                self.close_deadline,
                self.drop_deadline,
                Some(self.limit_at),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("the case limit is always set");
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.input(input, plan).await,
                    None => self.peer_dropped(),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if let Some((at, tag)) = resume.filter(|r| r.0 <= now) {
                        resume = None;
                        self.log.note(json!(["CTE", tag]));
                        match tag {
                            Some(tag) if self.open() => self.record.seen.received.push(Event::Timeout(tag)),
                            Some(_) => next = plan.steps.len(),
                            None => {}
                        }
                        let _ = at;
                    }
                    self.timers(now).await;
                }
            }
        }
        let _ = self.wr.shutdown().await;
    }

    async fn timers(&mut self, now: Instant) {
        if self.close_after.is_some_and(|t| t <= now) {
            self.close_after = None;
            self.log.note(json!(["TIE"]));
            if self.open() {
                self.send_close(Some(code::NORMAL), b"").await;
            }
        }
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            self.log.note(json!(["KLE"]));
            if !self.tcp_down {
                self.fail("I failed the WebSocket connection by dropping the TCP connection");
            }
        }
        if self.close_deadline.is_some_and(|t| t <= now) {
            self.close_deadline = None;
            if !self.got_close && !self.tcp_down {
                self.record.was_close_handshake_timeout = true;
                self.drop_tcp("peer did not respond (in time) in closing handshake");
            }
        }
        if self.drop_deadline.is_some_and(|t| t <= now) {
            self.drop_deadline = None;
            if !self.tcp_down {
                self.record.was_server_connection_drop_timeout = true;
                self.drop_tcp("server did not drop TCP connection (in time)");
            }
        }
        if self.limit_at <= now && !self.tcp_down {
            self.record.note = Some("the case did not finish within its time limit".to_owned());
            self.fail("the case did not finish within its time limit");
        }
    }

    async fn step(&mut self, step: &Step) {
        match step {
            Step::Frame(f) => {
                let mask = self.mask();
                self.log
                    .tx_frame(&f.payload, f.opcode, f.fin, f.rsv, mask, f.chop, f.sync);
                if f.chop.is_none() && !f.sync {
                    encode_frame(&mut self.batch, f.opcode, f.fin, f.rsv, &f.payload, mask);
                    return;
                }
                self.flush_batch().await;
                let mut bytes = Vec::with_capacity(f.payload.len() + 14);
                encode_frame(&mut bytes, f.opcode, f.fin, f.rsv, &f.payload, mask);
                let chop = f.chop.unwrap_or(bytes.len()).max(1);
                for (i, piece) in bytes.chunks(chop).enumerate() {
                    if i > 0 {
                        // Autobahn writes each chop on its own turn of its event loop; a short
                        // pause keeps a fast peer from reading the chops back in one read.
                        // (tokio's timer has millisecond resolution; this pause is shorter.)
                        std::thread::sleep(CHOP_PAUSE);
                    }
                    self.write(piece, true).await;
                    // Let the reader take what the peer sent meanwhile: a peer that fails the
                    // connection resets it when more bytes arrive, and a reset discards what
                    // was received but not yet read.
                    tokio::task::yield_now().await;
                }
            }
            Step::FrameHeader { opcode, fin, len } => {
                self.flush_batch().await;
                let mask = self.mask();
                let mut bytes = Vec::new();
                encode_header(&mut bytes, *opcode, *fin, *len, 0, mask);
                self.open_frame = Some((mask, 0));
                self.write(&bytes, true).await;
            }
            Step::FrameData(data) => {
                let (mask, offset) = self.open_frame.unwrap_or((None, 0));
                let mut bytes = data.to_vec();
                if let Some(key) = mask {
                    tolqin::proto::mask::apply_mask(&mut bytes, key, offset);
                }
                self.open_frame = Some((mask, offset + data.len()));
                self.write(&bytes, true).await;
            }
            Step::Close { code, reason } => {
                self.send_close(*code, reason).await;
            }
            Step::CloseAfter(secs) => {
                self.log.note(json!(["TI", secs]));
                self.close_after = Some(Instant::now() + Duration::from_secs_f64(*secs));
            }
            Step::KillAfter(secs) => {
                self.log.note(json!(["KL", secs]));
                self.kill_at = Some(Instant::now() + Duration::from_secs_f64(*secs));
            }
            Step::Wait { .. } => unreachable!("waits are handled by the loop"),
        }
    }

    async fn write(&mut self, bytes: &[u8], sync: bool) {
        if self.tcp_down || self.write_broken {
            return;
        }
        self.log.tx_octets(bytes, sync);
        let result = async {
            self.wr.write_all(bytes).await?;
            self.wr.flush().await
        }
        .await;
        if result.is_err() {
            // The peer is gone, but what it sent before going may still be queued for the
            // reader: keep reading until it reports the end of the stream.
            self.write_broken = true;
        }
    }

    async fn flush_batch(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.write(&batch, false).await;
        }
    }

    /// Sends a control frame right away (after what is batched).
    async fn send_control(&mut self, opcode: u8, payload: &[u8]) {
        self.flush_batch().await;
        let mask = self.mask();
        self.log
            .tx_frame(payload, opcode, true, 0, mask, None, false);
        let mut bytes = Vec::with_capacity(payload.len() + 14);
        encode_frame(&mut bytes, opcode, true, 0, payload, mask);
        self.write(&bytes, false).await;
    }

    /// Starts (or answers) the closing handshake; the payload is sent as given.
    async fn send_close(&mut self, code: Option<u16>, reason: &[u8]) {
        if self.sent_close || self.tcp_down {
            return;
        }
        self.log.enable(true);
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
        }
        payload.extend_from_slice(reason);
        self.sent_close = true;
        self.record.local_close_code = code;
        self.record.local_close_reason = if reason.is_empty() {
            None
        } else {
            Some(crate::wire::payload_repr(reason))
        };
        if !self.got_close {
            self.record.seen.closed_by_me = true;
            self.close_deadline = Some(Instant::now() + CLOSE_TIMEOUT);
        }
        self.send_control(OpCode::Close.bits(), &payload).await;
        self.after_close_frames();
    }

    /// Called when a close frame has gone either way: once both have, the handshake is done.
    fn after_close_frames(&mut self) {
        if !(self.sent_close && self.got_close) || self.tcp_down {
            return;
        }
        self.record.seen.was_clean = true;
        match self.side {
            // RFC 6455 7.1.1: the server closes the TCP connection first.
            Side::Server => self.drop_tcp_clean(),
            Side::Client => self.drop_deadline = Some(Instant::now() + CLOSE_TIMEOUT),
        }
    }

    fn drop_tcp_clean(&mut self) {
        self.tcp_down = true;
        self.record.seen.dropped_by_me = true;
    }

    /// Drops TCP before the closing handshake completed.
    fn drop_tcp(&mut self, why: &str) {
        self.tcp_down = true;
        self.record.seen.dropped_by_me = true;
        self.record.seen.was_clean = false;
        self.record.was_not_clean_reason = Some(why.to_owned());
    }

    /// Fails the connection by dropping TCP, as Autobahn's fuzzer does.
    fn fail(&mut self, why: &str) {
        self.record.failed_by_me = true;
        if self.record.note.is_none() {
            self.record.note = Some(why.to_owned());
        }
        self.drop_tcp("I failed the WebSocket connection by dropping the TCP connection");
    }

    fn peer_dropped(&mut self) {
        if self.tcp_down {
            return;
        }
        self.tcp_down = true;
        if !(self.sent_close && self.got_close) {
            self.record.seen.was_clean = false;
            self.record.was_not_clean_reason = Some(
                "peer dropped the TCP connection without previous WebSocket closing handshake"
                    .to_owned(),
            );
        }
    }

    async fn input(&mut self, input: Input, plan: &Plan) {
        match input {
            Input::Octets(len, head) => self.log.rx_octets(len, &head),
            Input::Eof => self.peer_dropped(),
            Input::Bad(why) => {
                if !self.tcp_down {
                    self.fail(&format!("invalid frame from the peer: {why}"));
                }
            }
            Input::Frame(frame) => {
                if !self.tcp_down {
                    self.log.rx_frame(&frame);
                    self.frame(frame, plan).await;
                }
            }
        }
    }

    async fn frame(&mut self, frame: RxFrame, plan: &Plan) {
        let h = frame.header;
        // RFC 6455 5.1: clients mask every frame, servers none.
        let masked_ok = match self.side {
            Side::Client => h.mask.is_none(),
            Side::Server => h.mask.is_some(),
        };
        if !masked_ok {
            return self.fail("the peer's frame is masked wrongly for its role");
        }
        // RFC 6455 5.2 and RFC 7692 6: only permessage-deflate gives a meaning to a reserved
        // bit, RSV1, on the first frame of a data message.
        let compressed = h.rsv == 0b100
            && self.codec.is_some()
            && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv != 0 && !compressed {
            return self.fail("the peer set reserved bits");
        }
        if h.opcode.is_control() && (!h.fin || frame.payload.len() > MAX_CONTROL_PAYLOAD) {
            return self.fail("the peer sent a fragmented or oversized control frame");
        }
        match h.opcode {
            OpCode::Reserved(_) => self.fail("the peer used a reserved opcode"),
            OpCode::Close => self.close_frame(frame.payload).await,
            // After its close, the peer must send nothing more (RFC 6455 5.5.1).
            _ if self.got_close => {}
            OpCode::Ping => {
                if !self.sent_close {
                    self.send_control(OpCode::Pong.bits(), &frame.payload).await;
                }
            }
            OpCode::Pong => {
                self.record.seen.received.push(Event::Pong(frame.payload));
                self.after_event(plan).await;
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                self.data_frame(h.opcode, h.fin, compressed, frame.payload, plan)
                    .await;
            }
        }
    }

    async fn data_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        compressed: bool,
        payload: Bytes,
        plan: &Plan,
    ) {
        let mut partial = match (opcode, self.partial.take()) {
            (OpCode::Continuation, Some(partial)) => partial,
            (OpCode::Continuation, None) => {
                return self.fail("the peer sent a continuation frame with nothing to continue");
            }
            (_, Some(_)) => return self.fail("the peer started a message inside another"),
            (op, None) => {
                self.utf8.reset();
                Partial {
                    binary: op == OpCode::Binary,
                    compressed,
                    data: Vec::new(),
                }
            }
        };
        let start = partial.data.len();
        if partial.compressed {
            let codec = self.codec.as_mut().expect("compressed only with a codec");
            if let Err(e) = codec.inflate(&payload, fin, MAX_INFLATED, &mut partial.data) {
                return self.fail(&format!(
                    "the peer sent a compressed message that does not inflate: {e}"
                ));
            }
        } else {
            partial.data.extend_from_slice(&payload);
        }
        if !partial.binary && self.utf8.feed(&partial.data[start..]).is_err() {
            return self.fail("the peer sent a text message that is not valid UTF-8");
        }
        if !fin {
            self.partial = Some(partial);
            return;
        }
        if !partial.binary && self.utf8.finish().is_err() {
            return self.fail("the peer sent a text message that is not valid UTF-8");
        }
        let (binary, data) = (partial.binary, partial.data);
        let payload = Bytes::from(data);
        if let Check::Compressed {
            count,
            binary: expected_binary,
            ..
        } = &plan.check
        {
            if self.record.seen.echo.is_some() {
                return;
            }
            let expected = self.compressed_sent.0.clone();
            if let Some(problem) = echo_problem(binary, *expected_binary, &payload, &expected) {
                self.record.seen.echo = Some(Err(problem));
                self.send_close(Some(code::NORMAL), b"").await;
            } else if self.compressed_sent.1 >= *count {
                self.record.seen.echo = Some(Ok(()));
                self.send_close(Some(code::NORMAL), b"").await;
            } else {
                self.send_next_compressed(&plan.check).await;
            }
            return;
        }
        if let Check::Echo {
            count,
            payload: expected,
            binary: expected_binary,
            resend,
        } = &plan.check
        {
            if self.record.seen.echo.is_some() {
                return;
            }
            let problem = echo_problem(binary, *expected_binary, &payload, expected);
            if let Some(problem) = problem {
                self.record.seen.echo = Some(Err(problem));
                self.send_close(Some(code::NORMAL), b"").await;
                return;
            }
            self.echoed += 1;
            if self.echoed >= *count {
                self.record.seen.echo = Some(Ok(()));
                self.send_close(Some(code::NORMAL), b"").await;
            } else {
                for step in resend {
                    self.step(step).await;
                }
                self.flush_batch().await;
            }
            return;
        }
        self.record
            .seen
            .received
            .push(Event::Message { payload, binary });
        self.after_event(plan).await;
    }

    /// Sends the next message of a [`Check::Compressed`] case, compressed if the codec wants
    /// to (RSV1 on its first frame), in frames of `frag` bytes.
    async fn send_next_compressed(&mut self, check: &Check) {
        let Check::Compressed {
            len,
            frag,
            data,
            binary,
            ..
        } = check
        else {
            return;
        };
        let n = self.compressed_sent.1;
        let at = n * len % data.len().max(1);
        // Cut `len` bytes from `at`, wrapping around the end of the data.
        let mut message = Vec::with_capacity(*len);
        let mut from = at;
        while message.len() < *len && !data.is_empty() {
            let take = (*len - message.len()).min(data.len() - from);
            message.extend_from_slice(&data[from..from + take]);
            from = (from + take) % data.len();
        }
        let message = Bytes::from(message);
        let Some(codec) = self.codec.as_mut() else {
            return;
        };
        let (body, rsv) = match codec.compress(&message) {
            Some(deflated) => (deflated, 0b100),
            None => (message.clone(), 0),
        };
        self.compressed_sent = (message, n + 1);
        let opcode = if *binary {
            OpCode::Binary
        } else {
            OpCode::Text
        }
        .bits();
        let size = if *frag == 0 { body.len().max(1) } else { *frag };
        let mut at = 0;
        loop {
            let end = (at + size).min(body.len());
            let first = at == 0;
            let mask = self.mask();
            let op = if first {
                opcode
            } else {
                OpCode::Continuation.bits()
            };
            let rsv = if first { rsv } else { 0 };
            self.log.tx_frame(
                &body[at..end],
                op,
                end == body.len(),
                rsv,
                mask,
                None,
                false,
            );
            encode_frame(
                &mut self.batch,
                op,
                end == body.len(),
                rsv,
                &body[at..end],
                mask,
            );
            at = end;
            if at >= body.len() {
                break;
            }
        }
        self.flush_batch().await;
    }

    /// Autobahn's `finishWhenDone`: once the events equal every expected list, close.
    async fn after_event(&mut self, plan: &Plan) {
        let Check::Events {
            ok,
            non_strict,
            auto_close,
        } = &plan.check
        else {
            return;
        };
        let seen = &self.record.seen.received;
        let done = seen == ok && non_strict.as_ref().is_none_or(|ns| ns == seen);
        if done && *auto_close && plan.close.closed_by_me {
            let code = plan.close.codes.first().copied();
            self.send_close(code, b"").await;
        }
    }

    async fn close_frame(&mut self, payload: Bytes) {
        if self.got_close {
            return;
        }
        self.got_close = true;
        match payload.len() {
            0 => {}
            1 => return self.fail("the peer sent a close frame with a 1-byte payload"),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                self.record.seen.remote_close_code = Some(code);
                let reason = &payload[2..];
                if !reason.is_empty() {
                    self.record.remote_close_reason = Some(crate::wire::payload_repr(reason));
                }
                if CloseFrame::parse(payload).is_err() {
                    return self.fail("the peer sent an invalid close code or reason");
                }
            }
        }
        if self.sent_close {
            self.after_close_frames();
        } else {
            // Answer with a normal close (no code if the peer gave none).
            let code = self.record.seen.remote_close_code.map(|_| code::NORMAL);
            self.send_close(code, b"").await;
        }
    }
}
