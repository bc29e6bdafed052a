//! Interop with python `websockets` (a peer nobody here wrote), both roles.
//!
//! scripts/test.sh installs the pinned peer into `target/interop-venv` and points
//! `TOLQIN_PYTHON` at it. Without it the tests skip with a message, except in CI (`CI` set),
//! where a missing peer fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{echo, interop_dir, python, run_client, start};
use tolqin::{Client, CloseCode, Message};

#[test]
fn python_client_against_tolqin_echo() {
    let Some(python) = python() else { return };
    let server = echo(&[]);
    let url = &server.url;
    let mut client = Command::new(python);
    client
        .arg(interop_dir().join("py_client.py"))
        .arg(format!("{url}/"));
    run_client(client, 11);
}

#[tokio::test]
async fn tolqin_client_against_python_server() {
    let Some(python) = python() else { return };
    let mut server = Command::new(python);
    server.arg(interop_dir().join("py_server.py"));
    let server = start(server);
    let base = &server.url;
    let run = async {
        // Echo of every kind and size.
        let mut ws = tolqin::connect(&format!("{base}/echo")).await.unwrap();
        assert!(
            ws.extensions().starts_with("permessage-deflate"),
            "{}",
            ws.extensions()
        );
        let big_text = "compressible text ".repeat(50_000);
        for m in [
            Message::text(big_text.as_str()),
            Message::text("Hello from tolqin"),
            Message::text(""),
            Message::binary(vec![1u8, 2, 3]),
            Message::binary((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
        ] {
            ws.send(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap().unwrap(), m);
        }
        let info = ws
            .close_and_wait(Some(CloseCode(4001)), "done")
            .await
            .unwrap();
        assert_eq!((info.code.0, info.was_clean), (4001, true));

        // The server closes with 4000 and a reason.
        let mut ws = tolqin::connect(&format!("{base}/close4000")).await.unwrap();
        ws.send("hi").await.unwrap();
        assert!(ws.recv().await.is_none());
        let info = ws.close_info();
        assert_eq!(
            (info.code.0, info.reason.as_str(), info.was_clean),
            (4000, "bye", true)
        );

        // The server drops TCP: 1006, unclean.
        let mut ws = tolqin::connect(&format!("{base}/drop")).await.unwrap();
        ws.send("hi").await.unwrap();
        assert!(ws.recv().await.is_none());
        let info = ws.close_info();
        assert_eq!((info.code, info.was_clean), (CloseCode::ABNORMAL, false));

        // Subprotocol chosen by the python server, and refused (none in common).
        let mut ws = Client::new(&format!("{base}/protocol"))
            .unwrap()
            .protocol("superchat")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("superchat"));
        assert_eq!(
            ws.recv().await.unwrap().unwrap().as_text(),
            Some("superchat")
        );
        ws.close_and_wait(None, "").await.unwrap();
        let mut ws = Client::new(&format!("{base}/protocol"))
            .unwrap()
            .protocol("mqtt")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), None);
        assert_eq!(ws.recv().await.unwrap().unwrap().as_text(), Some(""));
        ws.close_and_wait(None, "").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
}

/// The permessage-deflate parameter combinations both roles are checked with.
const DEFLATE_COMBOS: &[&str] = &[
    "default",
    "snct",
    "cnct",
    "smwb=10",
    "cmwb=9",
    "snct,cnct,smwb=9,cmwb=11",
];

#[test]
fn rfc7692_python_clients_with_every_deflate_combination() {
    let Some(python) = python() else { return };
    let server = echo(&[]);
    let url = &server.url;
    for combo in DEFLATE_COMBOS {
        println!("{combo}:");
        let mut client = Command::new(&python);
        client
            .arg(interop_dir().join("py_deflate.py"))
            .args(["client", &format!("{url}/"), combo]);
        run_client(client, 7);
    }
}

#[tokio::test]
async fn rfc7692_tolqin_client_against_python_servers_with_every_deflate_combination() {
    let Some(python) = python() else { return };
    for combo in DEFLATE_COMBOS {
        let mut server = Command::new(&python);
        server
            .arg(interop_dir().join("py_deflate.py"))
            .args(["server", combo]);
        let server = start(server);
        let base = &server.url;
        let run = async {
            let mut ws = tolqin::connect(&format!("{base}/")).await.unwrap();
            let negotiated = ws.extensions();
            assert!(
                negotiated.starts_with("permessage-deflate"),
                "{combo}: {negotiated}"
            );
            for (param, flag) in [
                ("snct", "server_no_context_takeover"),
                ("cnct", "client_no_context_takeover"),
            ] {
                assert_eq!(
                    combo.contains(param),
                    negotiated.contains(flag),
                    "{combo}: {negotiated}"
                );
            }
            let text = "the same compressible text, again and again. ".repeat(40);
            for m in [
                Message::text(text.as_str()),
                Message::text(text.as_str()),
                Message::binary((0..1 << 20).map(|i| (i % 7) as u8).collect::<Vec<u8>>()),
                Message::text(""),
            ] {
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), m, "{combo}");
            }
            assert!(ws.close_and_wait(None, "").await.unwrap().was_clean);
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("bounded");
    }
}
