//! Shared setup for the integration tests: servers on 127.0.0.1 port 0, raw peers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tolqin::{Acceptor, WebSocket};

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
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
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
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        let n = bounded(tcp.read(&mut b)).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed in the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    use tolqin::proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
    let key = [1, 2, 3, 4];
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode: OpCode::from_bits(opcode),
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut body = payload.to_vec();
    tolqin::proto::mask::apply_mask(&mut body, key, 0);
    [&head[..n], &body[..]].concat()
}

/// Reads one unmasked server frame: (fin, opcode, payload).
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    if bounded(tcp.read_exact(&mut h)).await.is_err() {
        return None;
    }
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            tcp.read_exact(&mut b).await.unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            tcp.read_exact(&mut b).await.unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.unwrap();
    Some((h[0] & 0x80 != 0, h[0] & 0x0f, payload))
}

/// Reads until the server closes the connection; true if it did (EOF or reset).
pub async fn wait_closed(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match bounded(tcp.read(&mut buf)).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}
