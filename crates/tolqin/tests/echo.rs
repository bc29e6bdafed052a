//! Our client against our server over real sockets: messages of every size class.

mod support;

use support::*;
use tolqin::{Client, Message, Options};

#[tokio::test]
async fn text_binary_and_empty_messages_echo() {
    let addr = echo_server().await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    let messages = [
        Message::text("Hello"),
        Message::text(""),
        Message::binary(vec![]),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("κόσμε €𝄞"),
    ];
    for m in messages {
        ws.send(m.clone()).await.unwrap();
        let back = bounded(ws.recv()).await.unwrap().unwrap();
        assert_eq!(back, m);
    }
    let info = bounded(ws.close_and_wait(None, "")).await.unwrap();
    assert!(info.was_clean);
}

#[tokio::test]
async fn rfc6455_5_2_length_boundaries_and_16_mib() {
    let addr = echo_server().await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    // Varied bytes and two-byte characters (xorshift), not a repeated pattern: over 1 MiB, one
    // that deflates past 128x is refused as a compression bomb (`Config::max_inflate_ratio`).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for len in [125usize, 126, 65535, 65536, 16 << 20] {
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        ws.send(Message::binary(payload.clone())).await.unwrap();
        let back = bounded(ws.recv()).await.unwrap().unwrap();
        assert_eq!(back.len(), len);
        assert!(
            back.as_bytes() == &payload[..],
            "payload of {len} bytes came back changed"
        );
        let text: String = (0..len / 2)
            .map(|_| char::from_u32(0xc0 + (next() % 64) as u32).unwrap()) // À to ÿ, as é
            .collect();
        ws.send(Message::text(text.clone())).await.unwrap();
        let back = bounded(ws.recv()).await.unwrap().unwrap();
        assert_eq!(back.as_text(), Some(text.as_str()));
    }
    bounded(ws.close_and_wait(None, "")).await.unwrap();
}

#[tokio::test]
async fn rfc6455_5_4_fragmented_messages_both_ways() {
    let addr = echo_server().await;
    // Our client fragments everything over 1000 bytes; the server reassembles.
    let mut protocol = tolqin::proto::Config::default();
    protocol.write_frame_size = 1000;
    let mut ws = bounded(
        Client::new(&url(addr))
            .unwrap()
            .options(Options::default().with_protocol(protocol))
            .connect(),
    )
    .await
    .unwrap();
    let text = "fragment ".repeat(1000);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap().as_text(),
        Some(text.as_str())
    );
}

#[tokio::test]
async fn rfc6455_5_4_pings_between_fragments_are_answered() {
    let addr = echo_server().await;
    let mut tcp = raw_client(addr).await;
    use tokio::io::AsyncWriteExt;
    let wire = [
        client_frame(false, 0x1, b"Hel"),
        client_frame(true, 0x9, b"p1"),
        client_frame(false, 0x0, b"l"),
        client_frame(true, 0x9, b"p2"),
        client_frame(true, 0x0, b"o"),
    ]
    .concat();
    // Byte by byte, to exercise every split.
    for b in wire {
        tcp.write_all(&[b]).await.unwrap();
    }
    assert_eq!(
        read_frame(&mut tcp).await,
        Some((true, 0xa, b"p1".to_vec()))
    );
    assert_eq!(
        read_frame(&mut tcp).await,
        Some((true, 0xa, b"p2".to_vec()))
    );
    assert_eq!(
        read_frame(&mut tcp).await,
        Some((true, 0x1, b"Hello".to_vec()))
    );
}

#[tokio::test]
async fn many_concurrent_clients() {
    let addr = echo_server().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            let mut ws = tolqin::connect(&url(addr)).await.unwrap();
            for j in 0..20 {
                let m = format!("client {i} message {j}");
                ws.send(m.as_str()).await.unwrap();
                assert_eq!(
                    ws.recv().await.unwrap().unwrap().as_text(),
                    Some(m.as_str())
                );
            }
            ws.close_and_wait(None, "").await.unwrap()
        }));
    }
    for t in tasks {
        assert!(bounded(t).await.unwrap().was_clean);
    }
}

#[tokio::test]
async fn browser_api_members() {
    let addr = echo_server().await;
    // Without compression, so that buffered_amount counts the bytes as given.
    let no_deflate = tolqin::proto::Config::default()
        .with_deflate(tolqin::proto::deflate::DeflateConfig::disabled());
    let client = Client::new(&url(addr))
        .unwrap()
        .options(Options::default().with_protocol(no_deflate));
    let mut ws = bounded(client.connect()).await.unwrap();
    assert_eq!(ws.ready_state(), tolqin::ReadyState::Open);
    assert_eq!(ws.url().map(|u| u.to_string()), Some(url(addr)));
    assert_eq!(ws.protocol(), None);
    assert_eq!(ws.extensions(), "");
    ws.feed(Message::binary(vec![0u8; 1000])).unwrap();
    assert_eq!(ws.buffered_amount(), 1000);
    ws.flush().await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    bounded(ws.recv()).await.unwrap().unwrap();
    ws.close(Some(tolqin::CloseCode(4000)), "bye")
        .await
        .unwrap();
    assert_eq!(ws.ready_state(), tolqin::ReadyState::Closing);
    assert!(ws.send("late").await.is_err(), "no send after close");
    while bounded(ws.recv()).await.is_some() {}
    assert_eq!(ws.ready_state(), tolqin::ReadyState::Closed);
    let info = ws.close_info();
    assert_eq!((info.code.0, info.was_clean), (4000, true));
}

#[tokio::test]
async fn rfc7692_deflate_negotiated_by_default_and_declined_when_off() {
    let addr = echo_server().await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    assert_eq!(ws.extensions(), "permessage-deflate");
    for len in [0usize, 10, 1000, 1 << 20] {
        let text: String = (0..len).map(|i| (b'a' + (i % 7) as u8) as char).collect();
        ws.send(text.as_str()).await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap().as_text(),
            Some(text.as_str())
        );
    }
    let off = tolqin::Acceptor::new().options(
        Options::default().with_protocol(
            tolqin::proto::Config::default()
                .with_deflate(tolqin::proto::deflate::DeflateConfig::disabled()),
        ),
    );
    let addr = echo_server_with(off).await;
    let ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    assert_eq!(ws.extensions(), "");
}

/// An echo server that lends every message to its handler (`WebSocket::recv_with`) and
/// echoes it with `Outbox::send_ref`, one flush per batch; handler errors are reported on
/// `errors`.
async fn lending_echo_server(
    acceptor: tolqin::Acceptor,
    errors: tokio::sync::mpsc::UnboundedSender<tolqin::Error>,
) -> std::net::SocketAddr {
    serve(acceptor, move |ws| {
        let errors = errors.clone();
        async move {
            let Ok(mut ws) = ws else { return };
            while let Some(handled) = ws.recv_with(|m, out| out.send_ref(m)).await {
                if let Err(e) = handled {
                    let _ = errors.send(e);
                    break;
                }
                if ws.flush().await.is_err() {
                    break;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn lent_messages_echo_pipelined_with_and_without_deflate() {
    // Whole small frames (lent from the read buffer, echoed through the output batch), large
    // and fragmented messages (assembled, then lent), compressed ones when negotiated; all
    // pipelined, so that many arrive in one read. They come back whole and in order.
    for deflate in [true, false] {
        let mut protocol = tolqin::proto::Config::default();
        protocol.write_frame_size = 50_000;
        if !deflate {
            protocol = protocol.with_deflate(tolqin::proto::deflate::DeflateConfig::disabled());
        }
        let options = Options::default().with_protocol(protocol);
        let (errors, mut errors_rx) = tokio::sync::mpsc::unbounded_channel();
        let acceptor = tolqin::Acceptor::new().options(options.clone());
        let addr = lending_echo_server(acceptor, errors).await;
        let mut ws = bounded(Client::new(&url(addr)).unwrap().options(options).connect())
            .await
            .unwrap();
        assert_eq!(ws.extensions().is_empty(), !deflate);
        let sent: Vec<Message> = (0..300usize)
            .map(|i| {
                let len = [0, 1, 20, 125, 126, 300, 70_000][i % 7];
                if i % 2 == 0 {
                    Message::text("é".repeat(len / 2) + &i.to_string())
                } else {
                    Message::binary(vec![i as u8; len])
                }
            })
            .collect();
        for m in &sent {
            ws.feed(m.clone()).unwrap();
        }
        bounded(ws.flush()).await.unwrap();
        for m in &sent {
            let back = bounded(ws.recv()).await.unwrap().unwrap();
            assert!(back == *m, "message of {} bytes came back changed", m.len());
        }
        let info = bounded(ws.close_and_wait(None, "")).await.unwrap();
        assert!(info.was_clean);
        assert!(errors_rx.try_recv().is_err());
    }
}

#[tokio::test]
async fn a_lending_handler_gets_the_write_buffer_limit() {
    // The outbox holds replies to the same limit as `feed`: a peer that sends more than it
    // reads back cannot grow the server's output without bound.
    let options = Options::default().with_max_write_buffer(4096);
    let (errors, mut errors_rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = lending_echo_server(tolqin::Acceptor::new().options(options), errors).await;
    let mut ws = bounded(tolqin::connect(&url(addr))).await.unwrap();
    ws.send(Message::binary(vec![1u8; 100])).await.unwrap();
    assert_eq!(bounded(ws.recv()).await.unwrap().unwrap().len(), 100);
    ws.send(Message::binary(vec![2u8; 5000])).await.unwrap();
    let e = bounded(errors_rx.recv()).await.unwrap();
    assert!(matches!(e, tolqin::Error::WriteBufferFull(4096)), "{e:?}");
}
