//! Each close path over real sockets: clean close from either side, close timeout, TCP drop.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tolqin::{Acceptor, CloseCode, CloseInfo, Options};

/// A server that runs `script` on each connection and reports how it ended.
async fn reporting_server<F, Fut>(
    acceptor: Acceptor,
    script: F,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<CloseInfo>)
where
    F: Fn(tolqin::WebSocket<tokio::net::TcpStream>) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = tolqin::WebSocket<tokio::net::TcpStream>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let addr = serve(acceptor, move |ws| {
        let tx = tx.clone();
        async move {
            let ws = script(ws.unwrap()).await;
            let _ = tx.send(ws.close_info());
        }
    })
    .await;
    (addr, rx)
}

async fn drain(
    mut ws: tolqin::WebSocket<tokio::net::TcpStream>,
) -> tolqin::WebSocket<tokio::net::TcpStream> {
    while ws.recv().await.is_some() {}
    ws
}

#[tokio::test]
async fn rfc6455_7_clean_close_from_the_client() {
    let (addr, mut infos) = reporting_server(Acceptor::new(), drain).await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    let info = bounded(ws.close_and_wait(Some(CloseCode::NORMAL), "done"))
        .await
        .unwrap();
    assert_eq!((info.code, info.was_clean), (CloseCode::NORMAL, true));
    let server_side = bounded(infos.recv()).await.unwrap();
    assert_eq!(
        (
            server_side.code,
            server_side.reason.as_str(),
            server_side.was_clean
        ),
        (CloseCode::NORMAL, "done", true)
    );
}

#[tokio::test]
async fn rfc6455_7_clean_close_from_the_server() {
    let (addr, mut infos) = reporting_server(Acceptor::new(), |mut ws| async move {
        ws.close_with(CloseCode::GOING_AWAY, "shutting down")
            .await
            .unwrap();
        drain(ws).await
    })
    .await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    assert!(bounded(ws.recv()).await.is_none());
    let info = ws.close_info();
    assert_eq!(
        (info.code, info.reason.as_str(), info.was_clean),
        (CloseCode::GOING_AWAY, "shutting down", true)
    );
    let server_side = bounded(infos.recv()).await.unwrap();
    assert_eq!(
        (server_side.code, server_side.was_clean),
        (CloseCode::GOING_AWAY, true)
    );
}

#[tokio::test]
async fn rfc6455_7_1_1_close_timeout_drops_a_silent_peer() {
    let options = Options::default().with_close_timeout(Duration::from_millis(300));
    let (addr, mut infos) =
        reporting_server(Acceptor::new().options(options), |mut ws| async move {
            ws.close(None, "").await.unwrap();
            drain(ws).await
        })
        .await;
    // A peer that completes the handshake and then never answers the close frame.
    let mut tcp = raw_client(addr).await;
    assert_eq!(read_frame(&mut tcp).await, Some((true, 0x8, vec![])));
    let info = bounded(infos.recv()).await.unwrap();
    assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));
    assert!(
        wait_closed(&mut tcp).await,
        "the server dropped the TCP connection"
    );
}

#[tokio::test]
async fn rfc6455_7_1_5_tcp_drop_is_1006_on_the_server() {
    let (addr, mut infos) = reporting_server(Acceptor::new(), drain).await;
    let mut tcp = raw_client(addr).await;
    tcp.write_all(&client_frame(false, 0x1, b"half a mess"))
        .await
        .unwrap();
    drop(tcp);
    let info = bounded(infos.recv()).await.unwrap();
    assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));
}

#[tokio::test]
async fn rfc6455_7_1_5_tcp_drop_is_1006_on_the_client() {
    let addr = serve(Acceptor::new(), |ws| async move {
        let mut ws = ws.unwrap();
        let _ = ws.recv().await; // wait for one message, then drop the TCP connection
    })
    .await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    ws.send("bye").await.unwrap();
    assert!(bounded(ws.recv()).await.is_none());
    let info = ws.close_info();
    assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));
}

#[tokio::test]
async fn rfc6455_7_4_protocol_error_closes_with_code() {
    let (addr, mut infos) = reporting_server(Acceptor::new(), drain).await;
    let cases: &[(&[u8], u16)] = &[
        (&[0x81, 0x02, b'h', b'i'], 1002), // unmasked client frame
        (&[0x83, 0x80, 1, 2, 3, 4], 1002), // reserved opcode
    ];
    for (wire, code) in cases {
        let mut tcp = raw_client(addr).await;
        tcp.write_all(wire).await.unwrap();
        let (_, opcode, payload) = read_frame(&mut tcp).await.expect("a close frame");
        assert_eq!(opcode, 0x8);
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), *code);
        assert!(wait_closed(&mut tcp).await);
        let info = bounded(infos.recv()).await.unwrap();
        assert!(!info.was_clean);
    }
    // Invalid UTF-8: 1007, and the close frame arrives before the frame is complete.
    let mut tcp = raw_client(addr).await;
    let frame = client_frame(true, 0x1, &[b'a', 0xff, b'b', b'c']);
    tcp.write_all(&frame[..frame.len() - 2]).await.unwrap();
    let (_, opcode, payload) = read_frame(&mut tcp).await.expect("a close frame");
    assert_eq!(
        (opcode, u16::from_be_bytes([payload[0], payload[1]])),
        (0x8, 1007)
    );
}

#[tokio::test]
async fn write_timeout_drops_a_peer_that_never_reads() {
    let options = Options::default()
        .with_write_timeout(Duration::from_millis(300))
        .with_max_write_buffer(256 << 20);
    let (tx, mut results) = mpsc::unbounded_channel();
    let addr = serve(Acceptor::new().options(options), move |ws| {
        let tx = tx.clone();
        async move {
            let mut ws = ws.unwrap();
            let chunk = tolqin::Message::binary(vec![0u8; 1 << 20]);
            let mut sent = 0;
            let error = loop {
                // Stop after 200 MiB: the kernel's buffers can't hold that much.
                if sent == 200 {
                    break None;
                }
                match ws.send(chunk.clone()).await {
                    Ok(()) => sent += 1,
                    Err(e) => break Some(e),
                }
            };
            let _ = tx.send((sent, error.map(|e| e.to_string())));
        }
    })
    .await;
    let _tcp = raw_client(addr).await; // completes the handshake, then never reads
    let (sent, error) = bounded(results.recv()).await.unwrap();
    let error = error.unwrap_or_else(|| panic!("sent {sent} MiB to a peer that does not read"));
    assert!(error.contains("does not read"), "{error}");
}
