//! The peer echo servers, each single-threaded (a `current_thread` tokio runtime), each printing
//! `listening on ws://ADDR:PORT` once it accepts connections.
//!
//! The two WebSocket peers are written the way their own examples write an echo server
//! (tokio-tungstenite's `examples/echo-server.rs`, fastwebsockets' `examples/echo_server.rs`),
//! with one change for all: `TCP_NODELAY`, as `tolqin echo` sets it. The raw TCP server is the
//! bound: it answers the handshake and then sends every byte back as it came, so the generator
//! gets the same bytes with no WebSocket work done on the server.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt, future};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A single-threaded runtime, as every server in the comparison gets.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on ws://{}", listener.local_addr()?)?;
    out.flush()?;
    Ok(listener)
}

/// Serves every connection accepted on `listen` (with `TCP_NODELAY`, as `tolqin echo` sets
/// it) with `handle`, on the single-threaded runtime.
fn serve<F>(listen: SocketAddr, handle: fn(TcpStream) -> F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.block_on(async move {
        let listener = bind(listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(handle(stream));
        }
    })
}

/// tokio-tungstenite: `accept_async`, then the stream of messages forwarded into the sink.
pub fn tungstenite(listen: SocketAddr) -> anyhow::Result<()> {
    serve(listen, |stream| async move {
        let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let (write, read) = ws.split();
        let _ = read
            .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
            .forward(write)
            .await;
    })
}

/// fastwebsockets: a hyper HTTP/1 connection with upgrades, then a `FragmentCollector` loop.
pub fn fastwebsockets(listen: SocketAddr) -> anyhow::Result<()> {
    use fastwebsockets::{OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = fastwebsockets::FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn server_upgrade(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::task::spawn(async move {
            let _ = tokio::task::unconstrained(handle_client(fut)).await;
        });
        Ok(response)
    }

    serve(listen, |stream| async move {
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = http1::Builder::new()
            .serve_connection(io, service_fn(server_upgrade))
            .with_upgrades()
            .await;
    })
}

/// Raw TCP: answers the opening handshake, then echoes bytes unchanged (frames stay masked;
/// the generator parses headers only, so it does not mind).
pub fn raw(listen: SocketAddr) -> anyhow::Result<()> {
    serve(listen, |stream| async move {
        let _ = raw_echo(stream).await;
    })
}

async fn raw_echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut have = 0;
    // The handshake: the request head, then a 101 with the accept key.
    let head_end = loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if have == buf.len() {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(&buf[head_end..have]).await?;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// RFC 6455 4.2.2: base64(SHA-1(key ++ GUID)).
fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    use sha1::{Digest as _, Sha1};
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc6455_1_3_accept_key() {
        assert_eq!(
            super::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
