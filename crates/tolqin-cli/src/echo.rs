//! `tolqin echo`: the echo server that conformance runs and benchmarks drive.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tolqin::{CloseCode, WebSocket};

use crate::EchoArgs;

/// Set when the server starts shutting down, before `stopping` is cancelled: the flag that a
/// connection busy receiving checks once per batch of messages. An atomic load, where
/// `CancellationToken::is_cancelled` locks the mutex that every connection's token shares (a
/// lock per batch on every connection, contended across threads with `--threads`). One server
/// per process: `run` is the binary's.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Serves until interrupted (Ctrl-C / SIGTERM).
pub async fn run(args: EchoArgs) -> std::io::Result<()> {
    // TLS first: a bad certificate or key fails before the port is taken.
    let tls = args.tls.server(&mut std::io::stdout().lock())?;
    // Names the address when it cannot be bound (in use, no such interface...).
    let listener = crate::listen::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}://{addr}", args.tls.scheme())?;
        out.flush()?;
    }
    // `tls` lives until the server stops (it removes a --tls-self-signed certificate file).
    let tls_server = tls.as_ref().map(|t| t.tls.clone());
    let acceptor = args.limits.acceptor(!args.no_deflate);
    let close_timeout = acceptor.connection_options().close_timeout;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // Graceful shutdown: every connection task watches `stopping`; `tasks` waits for them.
    let stopping = CancellationToken::new();
    let tasks = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: log, back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let stopping = stopping.clone();
                // Two task types, so that a plain connection's task is not as large as a TLS
                // one's (the rustls state is kilobytes): the task's future is what an idle
                // connection costs.
                match &tls_server {
                    None => {
                        let handshake = async move { logged(acceptor.accept(tcp).await, peer) };
                        tasks.spawn(serve(Box::pin(handshake), stopping, |ws| {
                            ws.get_ref().peer_addr().ok()
                        }));
                    }
                    Some(tls) => {
                        let tls = tls.clone();
                        let handshake =
                            async move { logged(acceptor.accept_tls(&tls, tcp).await, peer) };
                        tasks.spawn(serve(Box::pin(handshake), stopping, |ws| {
                            ws.get_ref().get_ref().peer_addr().ok()
                        }));
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    // Stop accepting, close every connection with 1001 (after what was already queued for
    // it), and wait for the close handshakes, bounded by the close timeout.
    drop(listener);
    tracing::info!(connections = tasks.len(), "shutting down");
    STOPPING.store(true, Ordering::Release);
    stopping.cancel();
    tasks.close();
    let _ = tokio::time::timeout(close_timeout + Duration::from_secs(1), tasks.wait()).await;
    Ok(())
}

/// The handshake's outcome, its failure logged with the peer's address.
fn logged<S>(result: tolqin::Result<WebSocket<S>>, peer: SocketAddr) -> Option<WebSocket<S>> {
    result
        .inspect_err(|e| tracing::debug!(%peer, error = %e, "handshake failed"))
        .ok()
}

/// Runs one connection: the handshake (boxed, so that once it is done the task keeps only the
/// much smaller echo state), then the echo loop.
///
/// The task's state is what every idle connection costs (`tolqin bench --idle`), so it is kept
/// small: the handshake is boxed and freed once done; this is a function returning an `async
/// move` block rather than an `async fn`, which would keep its arguments twice
/// (rust-lang/rust#62958); and the peer's address is not kept but asked of the socket
/// (`peer_of`, a zero-sized closure) if there is an error to log.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice"
)]
fn serve<S, H>(
    handshake: Pin<Box<H>>,
    stopping: CancellationToken,
    peer_of: impl Fn(&WebSocket<S>) -> Option<SocketAddr>,
) -> impl Future<Output = ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    H: Future<Output = Option<WebSocket<S>>>,
{
    async move {
        let Some(ws) = handshake.await else { return };
        echo(ws, stopping, peer_of).await;
    }
}

/// Echoes every message; replies to messages that arrived together go out in one write. When
/// `stopping` fires, closes with 1001 after the echoes already queued and waits for the close
/// handshake. (Not an `async fn`, for the reason given on [`serve`].)
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice"
)]
fn echo<S>(
    mut ws: WebSocket<S>,
    stopping: CancellationToken,
    peer_of: impl Fn(&WebSocket<S>) -> Option<SocketAddr>,
) -> impl Future<Output = ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    async move {
        // The loop is written inline, errors as `break Err(..)`, rather than as a nested
        // future borrowing `ws`: that saves the references and padding a nested state keeps.
        let mut closing = false;
        let ended: tolqin::Result<()> = loop {
            // No local lives across an await but `ws` and `closing`: each would take room in
            // the state every idle connection keeps.
            let stop = {
                // Biased, receiving first: while messages are ready the shutdown signal is not
                // even polled (its registration would cost two lock round trips per wake-up),
                // and no random number is drawn per message; a connection that keeps
                // receiving still sees the signal, through the check on the flag.
                //
                // Every message already received is lent to the handler straight from the
                // read buffer and its echo copied into the output buffer (no per-message
                // allocation); the echoes of messages that arrived together go out in one
                // write, by the flush below.
                let received = tokio::select! {
                    biased;
                    () = std::future::ready(()), if !closing && STOPPING.load(Ordering::Acquire) => None,
                    received = ws.recv_with(echo_message) => Some(received),
                    () = stopping.cancelled(), if !closing => None,
                };
                match received {
                    None => true,
                    Some(None) => break Ok(()),
                    Some(Some(Err(e))) => break Err(e),
                    Some(Some(Ok(_))) if closing => continue,
                    Some(Some(Ok(_))) => false,
                }
            };
            if stop {
                closing = true;
                let going_away = ws.close_with(CloseCode::GOING_AWAY, "server shutting down");
                if let Err(e) = going_away.await {
                    break Err(e);
                }
            } else if let Err(e) = ws.flush().await {
                break Err(e);
            }
        };
        if let Err(e) = ended {
            let peer = peer_of(&ws);
            tracing::debug!(?peer, error = %e, "connection ended with an error");
        }
    }
}

/// Queues the echo of one message. Once our close frame is sent, nothing may follow it: the
/// messages still arriving are dropped. (A function, not a closure capturing `closing`: the
/// handler is kept in the state of every connection waiting for input.)
fn echo_message(
    message: tolqin::MessageRef<'_>,
    out: &mut tolqin::Outbox<'_>,
) -> tolqin::Result<()> {
    match out.send_ref(message) {
        Err(tolqin::Error::Send(tolqin::proto::SendError::Closed)) => Ok(()),
        sent => sent,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
