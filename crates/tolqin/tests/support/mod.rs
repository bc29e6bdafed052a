//! Shared setup for the integration tests: servers on 127.0.0.1 port 0, raw peers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tolqin::{Acceptor, WebSocket};
use tolqin_testkit::wire;

/// Every test is bounded: nothing here may hang CI.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` within [`LIMIT`].
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

/// Serves on a fresh port: each accepted connection goes through `acceptor`, then `handler`.
pub async fn serve<F, Fut>(acceptor: Acceptor, handler: F) -> SocketAddr
where
    F: Fn(tolqin::Result<WebSocket<TcpStream>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = std::sync::Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move { handler(acceptor.accept(tcp).await).await });
        }
    });
    addr
}

/// An echo server with default options.
pub async fn echo_server() -> SocketAddr {
    echo_server_with(Acceptor::new()).await
}

/// An echo server with this acceptor.
pub async fn echo_server_with(acceptor: Acceptor) -> SocketAddr {
    serve(acceptor, |ws| async move {
        let Ok(mut ws) = ws else { return };
        while let Some(Ok(m)) = ws.recv().await {
            if ws.send(m).await.is_err() {
                break;
            }
        }
    })
    .await
}

pub fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A raw TCP peer that has done the client handshake by hand.
pub async fn raw_client(addr: SocketAddr) -> TcpStream {
    bounded(wire::handshake(&addr.to_string())).await
}

/// Sends a raw request and returns the whole response (until the server closes).
pub async fn raw_request(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = bounded(tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an HTTP head byte by byte (so no frame byte after it is consumed).
pub async fn read_head(tcp: &mut TcpStream) -> String {
    bounded(wire::read_head(tcp)).await
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    wire::client_frame(fin, 0, opcode, payload)
}

/// Reads one unmasked server frame: (fin, opcode, payload).
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    bounded(wire::read_frame(tcp)).await
}

/// Reads until the server closes the connection; true once it did (EOF or reset).
pub async fn wait_closed(tcp: &mut TcpStream) -> bool {
    bounded(wire::wait_closed(tcp)).await;
    true
}
