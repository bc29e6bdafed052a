//! A WebSocket split into halves used from two tasks at once.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;
use tolqin::{Acceptor, CloseCode, Message};

#[tokio::test]
async fn halves_send_and_receive_concurrently() {
    let addr = echo_server().await;
    let ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    let (mut rx, mut tx) = ws.into_split();
    const N: usize = 2000;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            tx.feed(Message::text(format!("message {i}"))).unwrap();
            if i % 50 == 0 {
                tx.flush().await.unwrap();
            }
        }
        tx.flush().await.unwrap();
        tx
    });
    for i in 0..N {
        let m = bounded(rx.recv()).await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(format!("message {i}").as_str()));
    }
    let mut tx = writer.await.unwrap();
    tx.close(Some(CloseCode::NORMAL), "done").await.unwrap();
    assert!(bounded(rx.recv()).await.is_none());
    let info = rx.close_info();
    assert_eq!((info.code, info.was_clean), (CloseCode::NORMAL, true));
    assert_eq!(rx.ready_state(), tolqin::ReadyState::Closed);
    assert!(tx.send("late").await.is_err());
}

#[tokio::test]
async fn read_half_answers_pings_while_the_write_half_is_idle() {
    // The server splits and only ever reads.
    let addr = serve(Acceptor::new(), |ws| async move {
        let (mut rx, _tx) = ws.unwrap().split();
        while rx.recv().await.is_some() {}
    })
    .await;
    let mut tcp = raw_client(addr).await;
    tcp.write_all(&client_frame(true, 0x9, b"are you there"))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut tcp).await,
        Some((true, 0xa, b"are you there".to_vec()))
    );
    // And the close echo, also written by the read half.
    tcp.write_all(&client_frame(true, 0x8, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut tcp).await,
        Some((true, 0x8, 1000u16.to_be_bytes().to_vec()))
    );
    assert!(wait_closed(&mut tcp).await);
}

#[tokio::test]
async fn keepalive_drops_a_peer_that_never_answers_pings() {
    let options = tolqin::Options::default().with_ping_interval(Some(Duration::from_millis(100)));
    let (tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let addr = serve(Acceptor::new().options(options), move |ws| {
        let tx = tx.clone();
        async move {
            let mut ws = ws.unwrap();
            let mut last = None;
            while let Some(item) = ws.recv().await {
                last = Some(item);
            }
            let _ = tx.send((last.map(|r| r.is_err()), ws.close_info()));
        }
    })
    .await;
    let mut tcp = raw_client(addr).await;
    // The server pings; this peer reads the pings but never answers.
    assert_eq!(read_frame(&mut tcp).await.map(|f| f.1), Some(0x9));
    let (ended_with_error, info) = bounded(done.recv()).await.unwrap();
    assert_eq!(
        ended_with_error,
        Some(true),
        "the stream reports the keepalive timeout"
    );
    assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));
    assert!(wait_closed(&mut tcp).await);
}

#[tokio::test]
async fn keepalive_keeps_a_responsive_peer() {
    let options = tolqin::Options::default().with_ping_interval(Some(Duration::from_millis(50)));
    let addr = echo_server_with(Acceptor::new().options(options)).await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    // Our client answers pings while it reads; several intervals pass.
    let reader = async {
        for i in 0..10 {
            ws.send(format!("{i}")).await.unwrap();
            assert!(ws.recv().await.unwrap().is_ok());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    bounded(reader).await;
    assert_eq!(ws.ready_state(), tolqin::ReadyState::Open);
}
