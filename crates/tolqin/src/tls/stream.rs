//! [`TlsStream`]: TLS over any transport, the handshake run by rustls, the records by us.
//!
//! The handshake is rustls's unbuffered API driven over the transport; once it is done, rustls
//! hands over the traffic keys and a [`KernelConnection`] (which derives the next keys on a
//! key update and takes session tickets), and [`super::record`] protects the application
//! traffic in buffers this stream owns. What the stream does on top of the record format:
//!
//! - reads: one transport read of up to [`READ_BUF`] bytes; every whole record in it is opened
//!   in place, the plaintext laid end to end, and copied out to the caller once;
//! - writes: the caller's slices are copied into records (up to 16 KiB each) and sealed in
//!   place; vectored writes go into one record, so a frame's header and payload are not
//!   gathered first;
//! - after the handshake: TLS 1.3 key updates both ways (answering a peer's request, and ours
//!   before the cipher suite's confidentiality limit), session tickets (client), alerts
//!   (`close_notify` is end of file; `user_canceled` and TLS 1.2 warnings are skipped; others
//!   end the connection), TLS 1.2 `hello_request` skipped (no renegotiation);
//! - every violation ends the connection with the alert RFC 8446 names, sent before the error
//!   is returned, and every later call fails the same way.
//!
//! An idle connection holds no buffer: the read buffer is freed when it is empty and the
//! transport has nothing more, the write buffer once it is written.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::kernel::KernelConnection;
use rustls::pki_types::CertificateDer;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus};
use rustls::{
    AlertDescription, CommonState, ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion,
    SupportedCipherSuite,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::error::{RecordError, TlsError, handshake_error};
use super::record::{self, Keys, MAX_PLAINTEXT, MAX_RECORD, Version, content};

/// Bytes read from the transport at once: a whole 16 KiB record and then some, so one read
/// brings a 16 KiB message. (32 KiB: also the largest block jemalloc keeps per thread.)
pub(crate) const READ_BUF: usize = 32 << 10;
/// The least room a read is given.
const MIN_READ: usize = 4 << 10;
/// Sealed bytes the stream takes before it makes the caller wait for the transport.
const WRITE_HIGH: usize = 32 << 10;
/// Post-handshake messages (session tickets) are bounded like rustls bounds handshake ones.
const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;
/// During the handshake, the most bytes buffered waiting for a whole message.
const MAX_HANDSHAKE_BUFFER: usize = MAX_HANDSHAKE_MESSAGE + MAX_RECORD;
/// Our copies into records go in pieces this large: below glibc's `rep movsb` threshold, so
/// immune to its slow case on AMD CPUs (glibc BZ 30994; bench note, issue 5) whatever the
/// alignment of the caller's bytes.
const COPY_CHUNK: usize = 2 << 10;

/// Handshake message types after the handshake (RFC 8446 4; RFC 5246 7.4).
const HELLO_REQUEST: u8 = 0;
const NEW_SESSION_TICKET: u8 = 4;
const KEY_UPDATE: u8 = 24;

/// What rustls keeps after the handshake: the next traffic secrets, session tickets.
pub(crate) enum Kernel {
    Server(KernelConnection<ServerConnectionData>),
    Client(KernelConnection<ClientConnectionData>),
}

impl Kernel {
    fn update_rx(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_rx_secret(),
            Kernel::Client(k) => k.update_rx_secret(),
        }
    }

    fn update_tx(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_tx_secret(),
            Kernel::Client(k) => k.update_tx_secret(),
        }
    }
}

/// What the handshake settled, for callers.
struct Session {
    alpn: Option<Vec<u8>>,
    peer_certificates: Option<Vec<CertificateDer<'static>>>,
    protocol: ProtocolVersion,
    suite: SupportedCipherSuite,
}

/// A TLS connection over the transport `S` (TCP, usually), as
/// [`TlsServer::accept`](super::TlsServer::accept) and
/// [`TlsClient::connect`](super::TlsClient::connect) return it: TLS 1.2 or 1.3, the handshake by
/// rustls, the records by tolqin.
pub struct TlsStream<S> {
    io: S,
    state: Box<State>,
}

/// Everything but the transport (boxed: a connection is often moved, and this is large).
struct State {
    kernel: Kernel,
    session: Session,
    version: Version,
    rx: Keys,
    tx: Keys,
    /// Records one key may protect (the cipher suite's confidentiality limit).
    limit: u64,
    /// `[plain_start, plain_end)` is plaintext not yet read, `[cipher_start, len)` received
    /// bytes not yet opened (a partial record).
    rbuf: Vec<u8>,
    plain_start: usize,
    plain_end: usize,
    cipher_start: usize,
    /// A post-handshake message arriving in pieces.
    handshake: Vec<u8>,
    /// Sealed records not yet written, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The peer asked for a key update: ours goes out before our next record.
    owe_key_update: bool,
    /// `close_notify` received: end of file.
    read_closed: bool,
    /// `close_notify` or a fatal alert sent: nothing more may be.
    write_closed: bool,
    /// The connection failed; every later call reports it.
    failed: Option<RecordError>,
}

impl<S: fmt::Debug> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field("protocol", &self.state.session.protocol)
            .field("suite", &self.state.session.suite.suite())
            .finish_non_exhaustive()
    }
}

impl<S> TlsStream<S> {
    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably (reading or writing it directly would corrupt the TLS stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The ALPN protocol agreed on (`http/1.1` with tolqin's configs), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.state.session.alpn.as_deref()
    }

    /// The peer's certificate chain, the end entity first (a client's only when the server
    /// asked for one).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.state.session.peer_certificates.as_deref()
    }

    /// The protocol version: TLS 1.2 or 1.3.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.state.session.protocol
    }

    /// The cipher suite.
    pub fn negotiated_cipher_suite(&self) -> SupportedCipherSuite {
        self.state.session.suite
    }
}

/// An unbuffered rustls connection of either side, for the one handshake driver.
pub(crate) trait Unbuffered {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn common(&self) -> &CommonState;
    fn into_kernel(self) -> Result<(ExtractedSecrets, Kernel), rustls::Error>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &CommonState {
        self
    }
    fn into_kernel(self) -> Result<(ExtractedSecrets, Kernel), rustls::Error> {
        let (secrets, kernel) = self.dangerous_into_kernel_connection()?;
        Ok((secrets, Kernel::Server(kernel)))
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &CommonState {
        self
    }
    fn into_kernel(self) -> Result<(ExtractedSecrets, Kernel), rustls::Error> {
        let (secrets, kernel) = self.dangerous_into_kernel_connection()?;
        Ok((secrets, Kernel::Client(kernel)))
    }
}

/// Runs the TLS handshake of `conn` (either side) over `io`; `peer` names the other side in
/// errors.
pub(crate) async fn handshake<S, C>(
    mut io: S,
    mut conn: C,
    peer: &str,
) -> crate::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Unbuffered,
{
    // Received bytes rustls has not discarded; records it encoded, not yet sent; application
    // data that came during the handshake.
    let mut incoming: Vec<u8> = Vec::with_capacity(8 << 10);
    let mut outgoing: Vec<u8> = Vec::new();
    let mut early: Vec<u8> = Vec::new();
    // rustls sees `incoming[..fed]`, whole records, one more each time it needs input: the
    // records after the one that ends the handshake are never its to process. (Were they, a
    // key update among them would be answered by a message rustls keeps queued and drops when
    // the keys are handed over, and our next record would use keys the peer was never told
    // of.) Record headers are in clear, so the boundaries are known before decryption.
    let mut fed = 0;
    loop {
        let status = conn.process(&mut incoming[..fed]);
        let mut discard = status.discard;
        let mut need_input = false;
        let mut done = false;
        match status.state {
            Err(e) => {
                incoming.drain(..discard);
                fed -= discard;
                // rustls queued the alert for this failure: send it, as tokio-rustls did.
                send_alert(&mut conn, &mut io, &mut incoming[..fed], &mut outgoing).await;
                return Err(handshake_error(&e, peer));
            }
            Ok(ConnectionState::EncodeTlsData(mut data)) => encode(&mut data, &mut outgoing),
            Ok(ConnectionState::TransmitTlsData(data)) => {
                io.write_all(&outgoing).await?;
                io.flush().await?;
                outgoing.clear();
                data.done();
            }
            Ok(ConnectionState::BlockedHandshake) => need_input = true,
            // A server may send before the client's Finished; we wait for it.
            Ok(ConnectionState::WriteTraffic(_)) => {
                if conn.common().is_handshaking() {
                    need_input = true;
                } else {
                    done = true;
                }
            }
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(|e| handshake_error(&e, peer))?;
                    discard += record.discard;
                    early.extend_from_slice(record.payload);
                }
            }
            Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                return Err(eof("the peer closed the connection during the TLS handshake").into());
            }
            Ok(_) => {
                // Early data (never enabled here) or a state newer than this code.
                return Err(TlsError::Record(RecordError::UnexpectedMessage(
                    "early data or an unknown handshake state",
                ))
                .into());
            }
        }
        incoming.drain(..discard);
        fed -= discard;
        if done {
            break;
        }
        if need_input {
            // The next whole record, reading until it is here.
            loop {
                if incoming.len() - fed >= record::HEADER {
                    let header = &incoming[fed..fed + record::HEADER];
                    let len =
                        record::HEADER + usize::from(u16::from_be_bytes([header[3], header[4]]));
                    let plausible = (20..=24).contains(&header[0])
                        && header[1] == 3
                        && len <= record::MAX_RECORD;
                    if !plausible {
                        // Not TLS (an HTTP response, say): rustls says what it is.
                        fed = incoming.len();
                        break;
                    }
                    if incoming.len() - fed >= len {
                        fed += len;
                        break;
                    }
                }
                if incoming.len() >= MAX_HANDSHAKE_BUFFER {
                    return Err(TlsError::Record(RecordError::DecodeError(
                        "handshake message too long",
                    ))
                    .into());
                }
                incoming.reserve(READ_BUF);
                if io.read_buf(&mut incoming).await? == 0 {
                    return Err(
                        eof("the peer closed the connection during the TLS handshake").into(),
                    );
                }
            }
        }
    }
    if fed != 0 {
        // rustls kept bytes it had not finished with (it never does once the handshake is
        // over): they cannot be handed to the record layer.
        return Err(TlsError::Record(RecordError::UnexpectedMessage(
            "a handshake record left unprocessed",
        ))
        .into());
    }
    let common = conn.common();
    let protocol = common
        .protocol_version()
        .ok_or(rustls::Error::HandshakeNotComplete)
        .map_err(|e| handshake_error(&e, peer))?;
    let version = match protocol {
        ProtocolVersion::TLSv1_3 => Version::Tls13,
        _ => Version::Tls12,
    };
    let suite = common
        .negotiated_cipher_suite()
        .ok_or(rustls::Error::HandshakeNotComplete)
        .map_err(|e| handshake_error(&e, peer))?;
    let limit = match suite {
        SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
        SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
    };
    let session = Session {
        alpn: common.alpn_protocol().map(<[u8]>::to_vec),
        peer_certificates: common.peer_certificates().map(<[_]>::to_vec),
        protocol,
        suite,
    };
    let (secrets, kernel) = conn.into_kernel().map_err(|e| handshake_error(&e, peer))?;
    let rx = Keys::new(secrets.rx.1, secrets.rx.0, version).map_err(TlsError::Record)?;
    let tx = Keys::new(secrets.tx.1, secrets.tx.0, version).map_err(TlsError::Record)?;
    // What came after the handshake: plaintext rustls opened, then the start of a record.
    let plain_end = early.len();
    let mut rbuf = early;
    rbuf.reserve(READ_BUF.max(incoming.len()));
    rbuf.extend_from_slice(&incoming);
    Ok(TlsStream {
        io,
        state: Box::new(State {
            kernel,
            session,
            version,
            rx,
            tx,
            limit,
            rbuf,
            plain_start: 0,
            plain_end,
            cipher_start: plain_end,
            handshake: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            owe_key_update: false,
            read_closed: false,
            write_closed: false,
            failed: None,
        }),
    })
}

/// After a failed handshake: writes the alert rustls queued, if any (best effort). rustls
/// hands a queued record out before it looks at input again, so one call takes it without
/// reprocessing the input that failed. `incoming` is what rustls has not discarded: its
/// deframer keeps positions in it.
async fn send_alert<S, C>(conn: &mut C, io: &mut S, incoming: &mut [u8], outgoing: &mut Vec<u8>)
where
    S: AsyncWrite + Unpin,
    C: Unbuffered,
{
    let status = conn.process(incoming);
    if let Ok(ConnectionState::EncodeTlsData(mut data)) = status.state {
        encode(&mut data, outgoing);
    }
    if !outgoing.is_empty() {
        let _ = io.write_all(outgoing).await;
        let _ = io.flush().await;
    }
}

/// Appends the handshake record rustls has ready to `outgoing`.
fn encode<D>(data: &mut EncodeTlsData<'_, D>, outgoing: &mut Vec<u8>) {
    let at = outgoing.len();
    outgoing.resize(at + 4096, 0);
    let n = match data.encode(&mut outgoing[at..]) {
        Ok(n) => n,
        Err(EncodeError::InsufficientSize(size)) => {
            outgoing.resize(at + size.required_size, 0);
            data.encode(&mut outgoing[at..]).unwrap_or(0)
        }
        Err(_) => 0,
    };
    outgoing.truncate(at + n);
}

fn eof(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what)
}

/// The I/O error that carries a record-layer failure.
fn record_io_error(e: &RecordError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsError::Record(e.clone()))
}

impl State {
    /// Opens every whole record received (plaintext, a key change, or the end).
    fn open_records(&mut self) -> Result<(), RecordError> {
        while !self.read_closed && self.rbuf.len() - self.cipher_start >= record::HEADER {
            let at = self.cipher_start;
            let len = record::record_len(&self.rbuf[at..at + record::HEADER], self.version)?;
            if self.rbuf.len() - at < len {
                break;
            }
            let dst = self.plain_end;
            let opened = record::open(&mut self.rx, self.version, &mut self.rbuf, dst, at)?;
            self.cipher_start = at + len;
            let plain = dst..dst + opened.len;
            if opened.content_type != content::HANDSHAKE && !self.handshake.is_empty() {
                // RFC 8446 5.1: a handshake message split across records is not interleaved.
                return Err(RecordError::UnexpectedMessage(
                    "a record inside a fragmented handshake message",
                ));
            }
            match opened.content_type {
                content::APPLICATION_DATA => self.plain_end = plain.end,
                content::HANDSHAKE => {
                    if plain.is_empty() {
                        return Err(RecordError::UnexpectedMessage("an empty handshake record"));
                    }
                    if self.handshake.len() + plain.len() > MAX_HANDSHAKE_MESSAGE + 4 {
                        return Err(RecordError::DecodeError("handshake message too long"));
                    }
                    self.handshake.extend_from_slice(&self.rbuf[plain]);
                    self.handshake_messages()?;
                }
                content::ALERT => {
                    let &[level, description] = &self.rbuf[plain] else {
                        return Err(RecordError::DecodeError("an alert that is not two bytes"));
                    };
                    match AlertDescription::from(description) {
                        AlertDescription::CloseNotify => {
                            // RFC 8446 6.1: whatever follows is ignored.
                            self.read_closed = true;
                            self.rbuf.truncate(self.cipher_start);
                        }
                        AlertDescription::UserCanceled => {}
                        _ if self.version == Version::Tls12 && level == 1 => {}
                        alert => return Err(RecordError::PeerAlert(alert)),
                    }
                }
                _ => {
                    return Err(RecordError::UnexpectedMessage(
                        "a record of an unexpected content type",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Acts on the whole post-handshake messages received.
    fn handshake_messages(&mut self) -> Result<(), RecordError> {
        let mut at = 0;
        while self.handshake.len() - at >= 4 {
            let h = &self.handshake[at..];
            let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            if len > MAX_HANDSHAKE_MESSAGE {
                return Err(RecordError::DecodeError("handshake message too long"));
            }
            if h.len() < 4 + len {
                break;
            }
            let (kind, body) = (h[0], &h[4..4 + len]);
            let last = at + 4 + len == self.handshake.len();
            match (self.version, kind) {
                (Version::Tls13, KEY_UPDATE) => {
                    // RFC 8446 5.1: a message that changes keys ends its record.
                    if !last {
                        return Err(RecordError::UnexpectedMessage(
                            "a key update not at the end of its record",
                        ));
                    }
                    let &[request] = body else {
                        return Err(RecordError::DecodeError("a key update of the wrong length"));
                    };
                    if request > 1 {
                        return Err(RecordError::IllegalParameter);
                    }
                    let (seq, secrets) = self
                        .kernel
                        .update_rx()
                        .map_err(RecordError::PostHandshake)?;
                    self.rx = Keys::new(secrets, seq, self.version)?;
                    self.owe_key_update |= request == 1;
                }
                (Version::Tls13, NEW_SESSION_TICKET) => match &mut self.kernel {
                    Kernel::Client(kernel) => kernel
                        .handle_new_session_ticket(body)
                        .map_err(RecordError::PostHandshake)?,
                    Kernel::Server(_) => {
                        return Err(RecordError::UnexpectedMessage(
                            "a session ticket from a client",
                        ));
                    }
                },
                // A server asking to renegotiate: we do not (RFC 5246 7.4.1.1 lets us ignore it).
                (Version::Tls12, HELLO_REQUEST)
                    if len == 0 && matches!(self.kernel, Kernel::Client(_)) => {}
                _ => {
                    return Err(RecordError::UnexpectedMessage(
                        "a handshake message after the handshake",
                    ));
                }
            }
            at += 4 + len;
        }
        self.handshake.drain(..at);
        Ok(())
    }

    /// Before sealing: the key update we owe the peer, or ours at the confidentiality limit.
    fn keys_for_next_record(&mut self) -> Result<(), RecordError> {
        let at_limit = self.tx.seq() >= self.limit;
        if self.owe_key_update || at_limit {
            if self.version == Version::Tls12 {
                return Err(RecordError::LimitReached);
            }
            // KeyUpdate, update_not_requested, under the old key; then the new one.
            let message = [KEY_UPDATE, 0, 0, 1, 0];
            record::seal(
                &mut self.tx,
                self.version,
                content::HANDSHAKE,
                message.len(),
                &mut self.wbuf,
                |out| out.extend_from_slice(&message),
            )?;
            let (seq, secrets) = self
                .kernel
                .update_tx()
                .map_err(RecordError::PostHandshake)?;
            self.tx = Keys::new(secrets, seq, self.version)?;
            self.owe_key_update = false;
        }
        Ok(())
    }

    /// Seals the bytes of `bufs` into records, up to [`WRITE_HIGH`] pending; returns how many
    /// were taken.
    fn seal_slices(&mut self, bufs: &[IoSlice<'_>]) -> Result<usize, RecordError> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let (mut slice, mut offset) = (0, 0);
        let mut taken = 0;
        // One allocation for the records this call seals (and a key update), not a growing
        // buffer copied at each record.
        let sealing = total.min(WRITE_HIGH + MAX_PLAINTEXT);
        let records = sealing.div_ceil(MAX_PLAINTEXT) + 1;
        self.wbuf.reserve(sealing + records * record::MAX_OVERHEAD);
        while taken < total && self.wbuf.len() - self.wpos < WRITE_HIGH {
            self.keys_for_next_record()?;
            let len = (total - taken).min(MAX_PLAINTEXT);
            record::seal(
                &mut self.tx,
                self.version,
                content::APPLICATION_DATA,
                len,
                &mut self.wbuf,
                |out| {
                    let mut need = len;
                    while need > 0 {
                        let rest = &bufs[slice][offset..];
                        let n = rest.len().min(need);
                        for chunk in rest[..n].chunks(COPY_CHUNK) {
                            out.extend_from_slice(chunk);
                        }
                        need -= n;
                        offset += n;
                        if offset == bufs[slice].len() {
                            slice += 1;
                            offset = 0;
                        }
                    }
                },
            )?;
            taken += len;
        }
        Ok(taken)
    }

    /// Seals an alert; nothing more may be sent after it.
    fn seal_alert(&mut self, level: u8, alert: AlertDescription) {
        if self.write_closed {
            return;
        }
        self.write_closed = true;
        let body = [level, u8::from(alert)];
        let _ = record::seal(
            &mut self.tx,
            self.version,
            content::ALERT,
            2,
            &mut self.wbuf,
            |out| out.extend_from_slice(&body),
        );
    }

    /// Records a fatal failure and seals its alert for the peer.
    fn fail(&mut self, e: RecordError) -> io::Error {
        if e == RecordError::LimitReached {
            // Nothing is wrong: the connection ends as rustls ends it, with close_notify.
            self.seal_alert(1, AlertDescription::CloseNotify);
        } else if let Some(alert) = e.alert() {
            self.seal_alert(2, alert);
        }
        // Unread plaintext and partial records are dropped with the connection.
        self.rbuf = Vec::new();
        self.plain_start = 0;
        self.plain_end = 0;
        self.cipher_start = 0;
        let io = record_io_error(&e);
        self.failed = Some(e);
        io
    }
}

impl<S: AsyncWrite + Unpin> TlsStream<S> {
    /// Writes the sealed records; frees the buffer once they are all out.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let state = &mut *self.state;
        while state.wpos < state.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &state.wbuf[state.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            state.wpos += n;
        }
        state.wbuf = Vec::new();
        state.wpos = 0;
        Poll::Ready(Ok(()))
    }

    /// After a failure: the alert goes out if the transport takes it now.
    fn failed(&mut self, e: io::Error, cx: &mut Context<'_>) -> io::Error {
        let _ = self.poll_drain(cx);
        e
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let state = &mut *this.state;
            if state.plain_start < state.plain_end {
                let n = out.remaining().min(state.plain_end - state.plain_start);
                out.put_slice(&state.rbuf[state.plain_start..state.plain_start + n]);
                state.plain_start += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &state.failed {
                return Poll::Ready(Err(record_io_error(e)));
            }
            if state.read_closed {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = state.open_records() {
                let e = state.fail(e);
                return Poll::Ready(Err(this.failed(e, cx)));
            }
            if state.owe_key_update && !state.write_closed {
                // A peer that asks for key updates but does not read what we send waits: no
                // more of its input is read until our output drains, so answers cannot pile up.
                if state.wbuf.len() - state.wpos >= WRITE_HIGH {
                    ready!(this.poll_drain(cx))?;
                }
                let state = &mut *this.state;
                // The peer waits for our key update: it goes out now, not with our next data.
                if let Err(e) = state.keys_for_next_record() {
                    let e = state.fail(e);
                    return Poll::Ready(Err(this.failed(e, cx)));
                }
                if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            let state = &mut *this.state;
            if state.plain_start < state.plain_end || state.read_closed {
                continue;
            }
            // All plaintext read: what is left is the start of a record. It stays where it is
            // (its plaintext will start where the record does) while the rest of it fits
            // behind; otherwise it moves to the front.
            let partial = state.rbuf.len() - state.cipher_start;
            if partial == 0 {
                state.rbuf.clear();
                state.cipher_start = 0;
            }
            let rest = if partial >= record::HEADER {
                let header = &state.rbuf[state.cipher_start..state.cipher_start + record::HEADER];
                // Checked by open_records already.
                record::record_len(header, state.version).unwrap_or(MAX_RECORD) - partial
            } else {
                record::HEADER - partial
            };
            let room = state.rbuf.capacity() - state.rbuf.len();
            if room < rest.max(MIN_READ) {
                state.rbuf.drain(..state.cipher_start);
                state.cipher_start = 0;
                if state.rbuf.capacity() - state.rbuf.len() < rest.max(MIN_READ) {
                    state.rbuf.reserve(READ_BUF - partial);
                }
            }
            state.plain_start = state.cipher_start;
            state.plain_end = state.cipher_start;
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.io), cx, &mut state.rbuf) {
                Poll::Pending => {
                    if state.rbuf.is_empty() {
                        // Idle: a connection waiting for input holds no buffer.
                        state.rbuf = Vec::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(eof(
                        "the peer closed the connection without a TLS close_notify",
                    )));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = &this.state.failed {
            return Poll::Ready(Err(record_io_error(e)));
        }
        if this.state.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if this.state.wbuf.len() - this.state.wpos >= WRITE_HIGH {
            ready!(this.poll_drain(cx))?;
        }
        let taken = match this.state.seal_slices(bufs) {
            Ok(taken) => taken,
            Err(e) => {
                let e = this.state.fail(e);
                return Poll::Ready(Err(this.failed(e, cx)));
            }
        };
        // Taken means sealed: what the transport does not take now goes on the next call or
        // the flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.failed.is_none() {
            this.state.seal_alert(1, AlertDescription::CloseNotify);
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::crypto::ring::cipher_suite as cs;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    /// Our server and rustls's client (limited to `suite`), over an in-memory pipe.
    async fn pair(
        suite: SupportedCipherSuite,
    ) -> (
        TlsStream<DuplexStream>,
        tokio_rustls::client::TlsStream<DuplexStream>,
    ) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let server = super::super::TlsServer::from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let mut provider = crate::tls::ring_provider();
        provider.cipher_suites = vec![suite];
        let version = match suite {
            SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
            SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (a, b) = tokio::io::duplex(1 << 20);
        let ours = tokio::spawn(async move { server.accept(a).await.unwrap() });
        let peer = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), b)
            .await
            .unwrap();
        (ours.await.unwrap(), peer)
    }

    #[tokio::test]
    async fn we_update_our_keys_before_the_confidentiality_limit() {
        let (mut ours, mut peer) = pair(cs::TLS13_AES_128_GCM_SHA256).await;
        // Three records per key instead of millions: 20 full records take six updates; the
        // peer reads them all only if each update came, in order, under the old key.
        ours.state.limit = 3;
        let data: Vec<u8> = (0..20 * MAX_PLAINTEXT).map(|i| (i % 251) as u8).collect();
        let writer = async {
            ours.write_all(&data).await.unwrap();
            ours.flush().await.unwrap();
            ours
        };
        let reader = async {
            let mut got = vec![0; data.len()];
            peer.read_exact(&mut got).await.unwrap();
            (peer, got)
        };
        let (mut ours, (mut peer, got)) = tokio::join!(writer, reader);
        assert!(got == data);
        assert!(ours.state.tx.seq() <= 3, "the keys were updated");
        // And the other way still works.
        peer.write_all(b"after").await.unwrap();
        peer.flush().await.unwrap();
        let mut back = [0; 5];
        ours.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"after");
    }

    #[tokio::test]
    async fn tls12_ends_at_the_limit_it_cannot_update_past() {
        let (mut ours, mut peer) = pair(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256).await;
        let limit = ours.state.tx.seq() + 2;
        ours.state.limit = limit;
        ours.write_all(&[1; 2 * MAX_PLAINTEXT]).await.unwrap();
        ours.flush().await.unwrap();
        let err = ours.write_all(&[2; 10]).await.unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<TlsError>());
        assert!(
            matches!(inner, Some(TlsError::Record(RecordError::LimitReached))),
            "{err:?}"
        );
        // The records before the limit arrived; then a clean end (close_notify).
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert!(got.len() == 2 * MAX_PLAINTEXT && got.iter().all(|&b| b == 1));
    }
}
