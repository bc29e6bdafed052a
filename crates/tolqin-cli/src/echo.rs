//! `tolqin echo`: the echo server that conformance runs and benchmarks drive.

use std::io::Write;

use tokio::net::TcpListener;
use tolqin::{Acceptor, Options, WebSocket};

use crate::EchoArgs;

/// Serves until interrupted (Ctrl-C / SIGTERM).
pub async fn run(args: EchoArgs) -> std::io::Result<()> {
    // TLS first: a bad certificate or key fails before the port is taken.
    let tls = args.tls.server(&mut std::io::stdout().lock())?;
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}://{addr}", args.tls.scheme())?;
        out.flush()?;
    }
    // `tls` lives until the server stops (it removes a --tls-self-signed certificate file).
    let tls_server = tls.as_ref().map(|t| t.tls.clone());
    let mut protocol = tolqin::proto::Config::default();
    protocol.max_message_size = args.max_message_size;
    protocol.max_frame_size = protocol.max_frame_size.min(args.max_message_size);
    protocol.deflate.enabled = !args.no_deflate;
    let acceptor = Acceptor::new().options(Options::default().with_protocol(protocol));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
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
                let tls_server = tls_server.clone();
                tokio::spawn(async move {
                    let result = match &tls_server {
                        None => match acceptor.accept(tcp).await {
                            Ok(ws) => Ok(echo(ws).await),
                            Err(e) => Err(e),
                        },
                        Some(tls) => match acceptor.accept_tls(tls, tcp).await {
                            Ok(ws) => Ok(echo(ws).await),
                            Err(e) => Err(e),
                        },
                    };
                    match result {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "handshake failed"),
                    }
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Echoes every message; replies to messages that arrived together go out in one write.
async fn echo<S>(mut ws: WebSocket<S>) -> tolqin::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = ws.recv().await {
        ws.feed(message?)?;
        while let Some(message) = ws.try_recv_buffered() {
            ws.feed(message?)?;
        }
        ws.flush().await?;
    }
    Ok(())
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
