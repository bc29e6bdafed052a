//! Interop with Node `ws` (pinned in interop/package.json), both roles, with compression off,
//! on by default, and with each permessage-deflate parameter.
//!
//! scripts/test.sh runs `npm ci --prefix interop`. Without it the tests skip with a message,
//! except in CI (`CI` set), where a missing peer fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{echo, interop_dir, node_ws, run_client, start};
use tolqin::proto::Config;
use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Client, CloseCode, Message, Options};

const COMBOS: &[&str] = &[
    "off",
    "default",
    "snct",
    "cnct",
    "smwb=10",
    "cmwb=9",
    "snct,cnct,smwb=9,cmwb=11",
];

#[test]
fn node_clients_against_tolqin_echo() {
    if !node_ws() {
        return;
    }
    let server = echo(&[]);
    let url = &server.url;
    for combo in COMBOS {
        println!("{combo}:");
        let mut client = Command::new("node");
        client
            .arg(interop_dir().join("node_ws.mjs"))
            .args(["client", &format!("{url}/"), combo]);
        let stdout = run_client(client, 8);
        assert!(!stdout.contains("FAIL"), "{stdout}");
    }
}

#[tokio::test]
async fn tolqin_client_against_node_servers() {
    if !node_ws() {
        return;
    }
    for combo in COMBOS {
        let mut server = Command::new("node");
        server
            .arg(interop_dir().join("node_ws.mjs"))
            .args(["server", combo]);
        let server = start(server);
        let base = &server.url;
        let run = async {
            let mut ws = tolqin::connect(&format!("{base}/echo")).await.unwrap();
            let negotiated = ws.extensions();
            assert_eq!(
                *combo != "off",
                negotiated.starts_with("permessage-deflate"),
                "{combo}: {negotiated}"
            );
            let text = "the same compressible text, again and again. ".repeat(40);
            for m in [
                Message::text(text.as_str()),
                Message::text(text.as_str()),
                Message::text(""),
                Message::binary((0..1 << 20).map(|i| (i % 7) as u8).collect::<Vec<u8>>()),
            ] {
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), m, "{combo}");
            }
            let info = ws
                .close_and_wait(Some(CloseCode(4001)), "done")
                .await
                .unwrap();
            assert_eq!((info.code.0, info.was_clean), (4001, true), "{combo}");

            // Without compression on our side, the same server still works.
            let plain = Options::default()
                .with_protocol(Config::default().with_deflate(DeflateConfig::disabled()));
            let mut ws = Client::new(&format!("{base}/echo"))
                .unwrap()
                .options(plain)
                .connect()
                .await
                .unwrap();
            assert_eq!(ws.extensions(), "");
            ws.send("plain").await.unwrap();
            assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("plain"));
            ws.close_and_wait(None, "").await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("bounded");
    }
    // Close codes, a dropped connection, subprotocols (with the default server).
    let mut server = Command::new("node");
    server
        .arg(interop_dir().join("node_ws.mjs"))
        .args(["server", "default"]);
    let server = start(server);
    let base = &server.url;
    let run = async {
        let mut ws = tolqin::connect(&format!("{base}/close4000")).await.unwrap();
        ws.send("hi").await.unwrap();
        assert!(ws.recv().await.is_none());
        let info = ws.close_info();
        assert_eq!(
            (info.code.0, info.reason.as_str(), info.was_clean),
            (4000, "bye", true)
        );

        let mut ws = tolqin::connect(&format!("{base}/drop")).await.unwrap();
        ws.send("hi").await.unwrap();
        assert!(ws.recv().await.is_none());
        assert_eq!(
            (ws.close_info().code, ws.close_info().was_clean),
            (CloseCode::ABNORMAL, false)
        );

        let mut ws = Client::new(&format!("{base}/protocol"))
            .unwrap()
            .protocol("chat")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("chat"));
        assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some("chat"));
        ws.close_and_wait(None, "").await.unwrap();
        let mut ws = Client::new(&format!("{base}/protocol"))
            .unwrap()
            .protocol("mqtt")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), None, "refused: no protocol in common");
        assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some(""));
        ws.close_and_wait(None, "").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
}
