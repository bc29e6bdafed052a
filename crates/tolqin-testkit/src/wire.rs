//! Raw frames and handshakes, for test peers that misbehave on purpose.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tolqin_proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};

/// The masking key of [`client_frame`].
pub const KEY: [u8; 4] = [1, 2, 3, 4];

/// A client frame (masked with [`KEY`]) with any bits, valid or not.
pub fn client_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode: OpCode::from_bits(opcode),
        mask: Some(KEY),
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut body = payload.to_vec();
    tolqin_proto::mask::apply_mask(&mut body, KEY, 0);
    [&head[..n], &body[..]].concat()
}

/// Connects to `addr` (`HOST:PORT`) and does the client handshake by hand; returns the stream
/// right after the 101 response (nothing past it read).
///
/// # Panics
/// If the server does not answer 101.
pub async fn handshake(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("send the request");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Reads an HTTP head byte by byte (so no byte after it is consumed).
///
/// # Panics
/// If the connection ends inside the head.
pub async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.expect("the head ends"));
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads one unmasked server frame: (fin, opcode, payload); `None` at the end of the stream.
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h).await.ok()?;
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => tcp.read_u16().await.ok()? as usize,
        127 => tcp.read_u64().await.ok()? as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x80 != 0, h[0] & 0x0f, payload))
}

/// Reads frames until a close frame; returns its code (1005 if it has none).
///
/// # Panics
/// If the stream ends first.
pub async fn close_code(tcp: &mut TcpStream) -> u16 {
    loop {
        let (_, opcode, payload) = read_frame(tcp).await.expect("a close frame before the end");
        if opcode == 0x8 {
            return if payload.len() >= 2 {
                u16::from_be_bytes([payload[0], payload[1]])
            } else {
                1005
            };
        }
    }
}

/// Reads until the peer closes the connection (end of file or reset).
pub async fn wait_closed(tcp: &mut TcpStream) {
    let mut buf = vec![0u8; 64 << 10];
    while !matches!(tcp.read(&mut buf).await, Ok(0) | Err(_)) {}
}
