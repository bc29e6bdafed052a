//! The two I/O loops every adapter shares: fill the core's read buffer from a transport, and
//! write the core's queued frames to one.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tolqin_proto::{CloseCode, Connection};

/// Bytes read at once, into a per-thread scratch buffer (also used to gather small frames for
/// writing), when the connection holds no read
/// buffer: an idle connection waiting for input holds no heap buffer at all. Large enough that
/// a 16 KiB message arrives in one read: a read that does not fill the buffer tells tokio the
/// socket is drained, which saves the `EAGAIN` read (a syscall per message) that a full one
/// costs. Per thread rather than on the stack: a 64 KiB stack frame costs page probes on every
/// poll, measurable on 20-byte echoes.
const SCRATCH_READ: usize = 64 << 10;
/// Largest total of small frames copied into the scratch buffer for one write
/// ([`poll_write_slices`]).
const SMALL_GATHER: usize = 16 << 10;
/// Up to this many bytes, even a single frame's header and payload are copied together.
const SMALL_PAIR: usize = 512;
/// The scratch buffer's fallback on the stack, when the scratch is already in use on this
/// thread (a transport that is itself a WebSocket).
const STACK_READ: usize = 4 << 10;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(SCRATCH_READ));
}

/// The smallest reservation for a frame still arriving.
const MIN_RESERVE: usize = 8 << 10;
/// Largest single reservation for a frame still arriving: the frame is bounded by the max frame
/// size, and this bounds what a peer that announces a big frame and stalls makes us reserve.
const MAX_RESERVE: usize = 1 << 20;
/// Slices per vectored write.
const MAX_SLICES: usize = 64;
/// Largest gather buffer for transports without vectored writes.
const MAX_GATHER: usize = 64 << 10;

/// Reads more input into `conn`; `Ok(0)` is end of file.
pub(crate) fn poll_fill<R: AsyncRead + Unpin>(
    io: &mut R,
    conn: &mut Connection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let missing = conn.frame_bytes_missing();
    let buf = conn.read_buffer();
    if buf.is_empty() && missing == 0 {
        // Uninitialized: zeroing the buffer on every poll was most of the user-space work of
        // small echoes (bench profile, W1). ReadBuf tracks what the read initialized.
        return SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => read_via(io, conn, cx, scratch.spare_capacity_mut()),
            Err(_) => read_via(io, conn, cx, &mut [MaybeUninit::uninit(); STACK_READ]),
        });
    }
    // Mid-frame: read straight into the core's buffer, sized for the rest of the frame, so a
    // large payload is read once and unmasked in place.
    let want = missing.clamp(MIN_RESERVE, MAX_RESERVE);
    if buf.capacity() - buf.len() < want {
        buf.reserve(want);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Reads once into `spare` (uninitialized memory) and hands what came to `conn`.
fn read_via<R: AsyncRead + Unpin>(
    io: &mut R,
    conn: &mut Connection,
    cx: &mut Context<'_>,
    spare: &mut [MaybeUninit<u8>],
) -> Poll<io::Result<usize>> {
    let mut read = ReadBuf::uninit(spare);
    ready!(Pin::new(io).poll_read(cx, &mut read))?;
    conn.receive(read.filled());
    Poll::Ready(Ok(read.filled().len()))
}

/// Writes everything `conn` has queued, then flushes. Frames go out with vectored writes
/// (over TLS: into one record, see [`crate::tls::TlsStream`]); for transports without them,
/// frames are gathered into one buffer first.
pub(crate) fn poll_write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    conn: &mut Connection,
    gather: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while conn.wants_write() {
        let written = if io.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = conn.io_slices(&mut slices);
            ready!(poll_write_slices(&mut *io, &slices[..n], cx))?
        } else {
            if gather.is_empty() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = conn.io_slices(&mut slices);
                let total: usize = slices[..n].iter().map(|s| s.len()).sum();
                gather.reserve(total.min(MAX_GATHER));
                for s in &slices[..n] {
                    if !gather.is_empty() && gather.len() + s.len() > MAX_GATHER {
                        break;
                    }
                    gather.extend_from_slice(s);
                }
            }
            let n = ready!(Pin::new(&mut *io).poll_write(cx, gather))?;
            gather.drain(..n);
            n
        };
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        conn.advance_written(written);
    }
    Pin::new(io).poll_flush(cx)
}

/// One vectored write of `slices`; but many small frames (pipelined echoes) are copied into one
/// contiguous buffer first: a long list of tiny slices costs the kernel more per byte than the
/// copy does (bench profile, W6).
fn poll_write_slices<W: AsyncWrite + Unpin>(
    io: &mut W,
    slices: &[IoSlice<'_>],
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if let [one] = slices {
        return Pin::new(io).poll_write(cx, one);
    }
    let total: usize = slices.iter().map(|s| s.len()).sum();
    // One small frame is two slices (header, payload): copied too, as `send` costs the
    // kernel less than `writev` (no iovec to import; W4's round trip).
    if (slices.len() > 2 && total <= SMALL_GATHER) || total <= SMALL_PAIR {
        let gathered = SCRATCH.with(|scratch| {
            let mut buf = scratch.try_borrow_mut().ok()?;
            buf.clear();
            for s in slices {
                buf.extend_from_slice(s);
            }
            let result = Pin::new(&mut *io).poll_write(cx, &buf);
            buf.clear();
            Some(result)
        });
        if let Some(result) = gathered {
            return result;
        }
    }
    Pin::new(io).poll_write_vectored(cx, slices)
}

/// The write side's state: the gather buffer, and the timer that fails a connection whose peer
/// stopped reading.
#[derive(Debug)]
pub(crate) struct WriteState {
    /// Only for transports without vectored writes, and only while output is pending: boxed,
    /// and freed once everything is written, so an idle connection holds none.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes in every connection instead of 24"
    )]
    gather: Option<Box<Vec<u8>>>,
    /// The write timeout in nanoseconds: 8 bytes where a `Duration` takes 16 (every idle
    /// connection pays for the fields).
    timeout_ns: u64,
    /// Running while queued output makes no progress.
    stall: Option<Pin<Box<Sleep>>>,
}

impl WriteState {
    pub(crate) fn new(timeout: Duration) -> Self {
        WriteState {
            gather: None,
            timeout_ns: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            stall: None,
        }
    }

    /// Writes everything queued; fails with `TimedOut` when nothing could be written for the
    /// write timeout (the peer does not read): a close frame with 1008 is queued for the
    /// record, and the caller drops the transport.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let before = conn.pending_bytes();
        let result = if io.is_write_vectored() {
            poll_write_all(io, conn, &mut Vec::new(), cx)
        } else {
            let gather = self.gather.get_or_insert_default();
            let result = poll_write_all(io, conn, gather, cx);
            if result.is_ready() {
                self.gather = None;
            }
            result
        };
        if result.is_ready() || conn.pending_bytes() < before {
            self.stall = None;
        }
        if result.is_ready() {
            return result;
        }
        let timeout = Duration::from_nanos(self.timeout_ns);
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_ready() {
            self.stall = None;
            tracing::debug!(
                pending = conn.pending_bytes(),
                "the peer does not read; failing the connection"
            );
            let _ = conn.close_with(CloseCode::POLICY_VIOLATION, "peer not reading");
            conn.receive_eof();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer does not read (write timeout)",
            )));
        }
        Poll::Pending
    }
}

/// Opening handshake: reads more bytes into `conn`.
///
/// # Errors
/// `UnexpectedEof` when the peer closed before the handshake completed, or the read error.
pub(crate) async fn read_handshake<R: AsyncRead + Unpin>(
    io: &mut R,
    conn: &mut Connection,
) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let buf = conn.read_buffer();
    buf.reserve(1024);
    if io.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A handshake that ends here: writes what `conn` queued (an HTTP error, a close frame) and
/// shuts the transport down, ignoring errors (the peer may be gone already).
pub(crate) async fn write_all_and_shutdown<W: AsyncWrite + Unpin>(
    io: &mut W,
    conn: &mut Connection,
) {
    use tokio::io::AsyncWriteExt;
    let bytes = conn.data_to_send();
    if !bytes.is_empty() {
        let _ = io.write_all(&bytes).await;
    }
    let _ = io.shutdown().await;
}
