//! A compression bomb against `tolqin echo`: about 1 MB on the wire that inflates to 1 GiB.
//! The server closes with 1009 without ever holding the inflated data, its memory stays
//! bounded, and a normal client connected alongside keeps getting its echoes.

mod support;

use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tolqin::proto::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tolqin_testkit::rss_kib;

/// 1 GiB of zeros as one raw DEFLATE stream ending in a sync flush, without the tail.
fn bomb() -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::best(), false, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(2 << 20);
    for i in 0..1024 {
        let flush = if i == 1023 {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let start = c.total_in();
        while ((c.total_in() - start) as usize) < zeros.len()
            || (flush == FlushCompress::Sync && !out.ends_with(&[0, 0, 0xff, 0xff]))
        {
            let done = (c.total_in() - start) as usize;
            out.reserve(64 << 10);
            c.compress_vec(&zeros[done..], &mut out, flush).unwrap();
        }
    }
    out.truncate(out.len() - 4);
    out
}

#[tokio::test]
async fn rfc7692_compression_bomb_closes_1009_with_bounded_memory() {
    let server = support::echo(&["--threads", "1", "--max-message-size", "4194304"]);
    let pid = server.process.id();
    let url = server.url.clone();
    let addr = server.addr().to_string();

    let mut normal = tolqin::connect(&format!("{url}/")).await.unwrap();
    normal.send("before").await.unwrap();
    normal.recv().await.unwrap().unwrap();
    let baseline = rss_kib(pid);

    let payload = bomb();
    assert!(
        payload.len() < 2 << 20,
        "the bomb is small: {} bytes",
        payload.len()
    );
    let run = async {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("permessage-deflate"), "{head}");
        let key = [9, 8, 7, 6];
        let header = FrameHeader {
            fin: true,
            rsv: 0b100,
            opcode: OpCode::Binary,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut h);
        let mut body = payload.clone();
        tolqin::proto::mask::apply_mask(&mut body, key, 0);
        tcp.write_all(&h[..n]).await.unwrap();
        let _ = tcp.write_all(&body).await; // the server may close before reading it all
        let mut reply = [0u8; 4];
        tcp.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[0], 0x88, "a close frame");
        assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), 1009);
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
    let after = rss_kib(pid);
    // The limit is 4 MiB; inflating must never approach the bomb's 1 GiB.
    assert!(
        after < baseline + 64 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
    normal.send("after").await.unwrap();
    assert_eq!(
        normal.recv().await.unwrap().unwrap().as_text(),
        Some("after")
    );
}
