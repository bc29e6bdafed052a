//! The floor under any TLS record layer: what a 16 KiB WebSocket echo costs when the records
//! are nothing but AES-128-GCM and their framing (5-byte header, up to 16 KiB, tag), with fixed
//! keys and no handshake, opened in place into one run of plaintext and sealed in place. No
//! TLS implementation can protect records for less, so `sealed / plain` here bounds what
//! `bench/tls.sh` can measure for `wss://` on this machine (BENCHMARKS.md, "wss://").
//!
//! ```text
//! cargo run --release -p tolqin --example tls_floor -- server plain|sealed
//! cargo run --release -p tolqin --example tls_floor -- client plain|sealed ADDR CONNECTIONS SIZE SECONDS
//! ```
//!
//! The server prints `listening on ws://ADDR`; the client prints `N msg/s`. Not TLS: the keys
//! are constants. A measuring instrument only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

const MAX_PLAIN: usize = 16 << 10;
const TAG: usize = 16;
const HEADER: usize = 5;

/// AES-128-GCM records over TCP, and nothing else.
struct Sealed {
    io: TcpStream,
    tx: LessSafeKey,
    rx: LessSafeKey,
    tx_seq: u64,
    rx_seq: u64,
    /// `[plain_start, plain_end)` plaintext, `[cipher_start, cipher_end)` received bytes.
    rbuf: Vec<u8>,
    plain_start: usize,
    plain_end: usize,
    cipher_start: usize,
    cipher_end: usize,
    wbuf: Vec<u8>,
    wpos: usize,
}

fn key(byte: u8) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[byte; 16]).expect("a 16-byte key"))
}

fn nonce(seq: u64) -> Nonce {
    let mut nonce = [7u8; 12];
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    Nonce::assume_unique_for_key(nonce)
}

impl Sealed {
    fn new(io: TcpStream, server: bool) -> Sealed {
        let (tx, rx) = if server { (1, 2) } else { (2, 1) };
        Sealed {
            io,
            tx: key(tx),
            rx: key(rx),
            tx_seq: 0,
            rx_seq: 0,
            rbuf: vec![0; 64 << 10],
            plain_start: 0,
            plain_end: 0,
            cipher_start: 0,
            cipher_end: 0,
            wbuf: Vec::with_capacity(80 << 10),
            wpos: 0,
        }
    }

    /// Opens every whole record, its plaintext laid after the plaintext before it.
    fn open_all(&mut self) -> io::Result<()> {
        while self.cipher_end - self.cipher_start >= HEADER {
            let at = self.cipher_start;
            let header: [u8; HEADER] = self.rbuf[at..at + HEADER].try_into().expect("header");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if self.cipher_end - at < HEADER + len {
                break;
            }
            let end = at + HEADER + len;
            let plain = self
                .rx
                .open_within(
                    nonce(self.rx_seq),
                    Aad::from(header),
                    &mut self.rbuf[self.plain_end..end],
                    at + HEADER - self.plain_end..,
                )
                .map_err(|_| io::Error::other("bad record"))?;
            self.plain_end += plain.len();
            self.rx_seq += 1;
            self.cipher_start = end;
        }
        Ok(())
    }

    /// Seals the slices into records of up to 16 KiB; returns the bytes taken.
    fn seal(&mut self, bufs: &[io::IoSlice<'_>]) -> usize {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let (mut taken, mut slice, mut offset) = (0, 0, 0);
        while taken < total && self.wbuf.len() < (64 << 10) {
            let start = self.wbuf.len();
            self.wbuf.extend_from_slice(&[23, 3, 3, 0, 0]);
            let mut room = MAX_PLAIN;
            while room > 0 && slice < bufs.len() {
                let rest = &bufs[slice][offset..];
                let n = rest.len().min(room);
                self.wbuf.extend_from_slice(&rest[..n]);
                room -= n;
                taken += n;
                offset += n;
                if offset == bufs[slice].len() {
                    slice += 1;
                    offset = 0;
                }
            }
            let len = (self.wbuf.len() - start - HEADER + TAG) as u16;
            self.wbuf[start + 3..start + HEADER].copy_from_slice(&len.to_be_bytes());
            let header: [u8; HEADER] = self.wbuf[start..start + HEADER].try_into().expect("h");
            let tag = self
                .tx
                .seal_in_place_separate_tag(
                    nonce(self.tx_seq),
                    Aad::from(header),
                    &mut self.wbuf[start + HEADER..],
                )
                .expect("sealed");
            self.tx_seq += 1;
            self.wbuf.extend_from_slice(tag.as_ref());
        }
        taken
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]))?;
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Sealed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_start < this.plain_end {
                let n = out.remaining().min(this.plain_end - this.plain_start);
                out.put_slice(&this.rbuf[this.plain_start..this.plain_start + n]);
                this.plain_start += n;
                return Poll::Ready(Ok(()));
            }
            let partial = this.cipher_end - this.cipher_start;
            this.rbuf.copy_within(this.cipher_start..this.cipher_end, 0);
            (this.plain_start, this.plain_end) = (0, 0);
            (this.cipher_start, this.cipher_end) = (0, partial);
            let mut read = ReadBuf::new(&mut this.rbuf[partial..]);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            this.cipher_end += n;
            this.open_all()?;
        }
    }
}

impl AsyncWrite for Sealed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wpos < this.wbuf.len() {
            ready!(this.poll_drain(cx))?;
        }
        let n = this.seal(bufs);
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// As `tolqin echo --no-deflate`.
fn options() -> tolqin::Options {
    let mut config = tolqin::proto::Config::default();
    config.deflate = tolqin::proto::deflate::DeflateConfig::disabled();
    tolqin::Options::default().with_protocol(config)
}

fn echo_message(
    message: tolqin::MessageRef<'_>,
    out: &mut tolqin::Outbox<'_>,
) -> tolqin::Result<()> {
    match out.send_ref(message) {
        Err(tolqin::Error::Send(tolqin::proto::SendError::Closed)) => Ok(()),
        sent => sent,
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(io: S) {
    let Ok(mut ws) = tolqin::Acceptor::new().options(options()).accept(io).await else {
        return;
    };
    while let Some(Ok(_)) = ws.recv_with(echo_message).await {
        if ws.flush().await.is_err() {
            return;
        }
    }
}

async fn load<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    size: usize,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tolqin::Result<()> {
    let client = tolqin::Client::new("ws://127.0.0.1/")?.options(options());
    let mut ws = client.handshake_on(io).await?;
    let payload = tolqin::Message::binary(vec![b'x'; size]);
    while !stop.load(Ordering::Relaxed) {
        ws.send(payload.clone()).await?;
        if ws.recv().await.transpose()?.is_none() {
            break;
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: tls_floor server plain|sealed | client plain|sealed ADDR CONNECTIONS SIZE SECONDS";
    let (server, sealed) = match args.as_slice() {
        [role, mode, ..] => (role == "server", mode == "sealed"),
        _ => return Err(usage.into()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if server {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            println!("listening on ws://{}", listener.local_addr()?);
            loop {
                let (tcp, _) = listener.accept().await?;
                tcp.set_nodelay(true)?;
                if sealed {
                    tokio::spawn(serve(Sealed::new(tcp, true)));
                } else {
                    tokio::spawn(serve(tcp));
                }
            }
        }
        let [_, _, addr, connections, size, seconds] = args.as_slice() else {
            return Err(usage.into());
        };
        let (connections, size): (usize, usize) = (connections.parse()?, size.parse()?);
        let seconds: u64 = seconds.parse()?;
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..connections {
            let tcp = TcpStream::connect(addr.as_str()).await?;
            tcp.set_nodelay(true)?;
            let (count, stop) = (count.clone(), stop.clone());
            if sealed {
                tokio::spawn(load(Sealed::new(tcp, false), size, count, stop));
            } else {
                tokio::spawn(load(tcp, size, count, stop));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (before, start) = (count.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let done = count.load(Ordering::Relaxed) - before;
        println!(
            "{} msg/s",
            (done as f64 / start.elapsed().as_secs_f64()) as u64
        );
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })
}
