//! wss:// with real peers nobody here wrote: python `websockets` (both roles), Node `ws` and
//! headless Chromium, against `tolqin echo --tls-self-signed`.
//!
//! scripts/test.sh installs the peers (a python venv, `npm ci --prefix interop`, Chromium when
//! /usr/bin/chromium is missing). Without them the tests skip with a message, except in CI
//! (`CI` set), where a missing peer fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{TempDir, echo, interop_dir, python, run_client, self_signed, start};
use tolqin::tls::TlsClient;
use tolqin::{Client, CloseCode, Message};
use tolqin_testkit::browser::{Browser, PageServer};

#[test]
fn python_client_over_wss_with_ssl_cert_file() {
    let Some(python) = python() else { return };
    let server = echo(&["--tls-self-signed"]);
    let cert = server.note("certificate").unwrap();
    let mut client = Command::new(python);
    client
        .arg(interop_dir().join("py_client.py"))
        .arg(format!("{}/", server.url))
        .env("SSL_CERT_FILE", cert);
    run_client(client, 8);
}

#[tokio::test]
async fn tolqin_client_against_python_wss_server() {
    let Some(python) = python() else { return };
    let dir = TempDir::new("py-wss");
    let (cert, key) = self_signed(&dir, &["127.0.0.1", "localhost"]);
    let mut command = Command::new(python);
    command
        .arg(interop_dir().join("py_wss_server.py"))
        .arg(&cert)
        .arg(&key);
    let server = start(command);
    let base = server.url.clone();
    assert!(base.starts_with("wss://"), "{base}");
    let tls = TlsClient::builder()
        .default_roots(false)
        .add_ca_file(&cert)
        .unwrap()
        .build()
        .unwrap();
    let connect = |path: &str| {
        Client::new(&format!("{base}{path}"))
            .unwrap()
            .tls(tls.clone())
            .connect()
    };
    let run = async {
        let mut ws = connect("/echo").await.unwrap();
        for m in [
            Message::text("Hello from tolqin over TLS"),
            Message::text(""),
            Message::binary(vec![1u8, 2, 3]),
            // Varied bytes (xorshift), not a repeated pattern: over 1 MiB, one that deflates
            // past 128x is refused as a compression bomb (`Config::max_inflate_ratio`).
            Message::binary(
                std::iter::successors(Some(0x9e37_79b9_7f4a_7c15_u64), |x| {
                    let x = x ^ (x << 13);
                    let x = x ^ (x >> 7);
                    Some(x ^ (x << 17))
                })
                .map(|x| x as u8)
                .take(4 << 20)
                .collect::<Vec<u8>>(),
            ),
        ] {
            ws.send(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap().unwrap(), m);
        }
        let info = ws
            .close_and_wait(Some(CloseCode(4001)), "done")
            .await
            .unwrap();
        assert_eq!((info.code.0, info.was_clean), (4001, true));

        let mut ws = connect("/close4000").await.unwrap();
        ws.send("hi").await.unwrap();
        assert!(ws.recv().await.is_none());
        let info = ws.close_info();
        assert_eq!(
            (info.code.0, info.reason.as_str(), info.was_clean),
            (4000, "bye", true)
        );

        // Python's certificate is not for this name: refused, and said so (or, where the
        // server listens on 127.0.0.1 alone, the TCP connection is refused, naming the address).
        let url = base.replace("127.0.0.1", "127.0.0.2");
        if let Ok(client) = Client::new(&url) {
            let err = client.tls(tls.clone()).connect().await.unwrap_err();
            match &err {
                tolqin::Error::Tls(_) => {}
                tolqin::Error::Connect(_) => {
                    assert!(err.to_string().contains("127.0.0.2"), "{err}")
                }
                other => panic!("unexpected error: {other}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
}

#[test]
fn node_ws_client_over_wss_with_node_extra_ca_certs() {
    if !support::node_ws() {
        return;
    }
    let server = echo(&["--tls-self-signed"]);
    let mut client = Command::new("node");
    client
        .arg(interop_dir().join("node_client.mjs"))
        .arg(format!("{}/", server.url))
        .env("NODE_EXTRA_CA_CERTS", server.note("certificate").unwrap());
    run_client(client, 7);
}

/// The page Chromium runs: echo text and binary over wss://, close, POST the results back.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>tolqin wss</title><script>
const results = [];
const report = () => fetch("/result", { method: "POST", body: results.join("\n") });
const ws = new WebSocket("WSS_URL");
ws.binaryType = "arraybuffer";
const binary = new Uint8Array(70000).map((_, i) => i % 251);
let step = 0;
ws.onopen = () => {
  results.push("open " + ws.protocol + "|" + ws.extensions);
  ws.send("hello from chromium");
};
ws.onmessage = (e) => {
  if (step === 0) {
    results.push(e.data === "hello from chromium" ? "ok text" : "bad text " + e.data);
    step = 1;
    ws.send(binary);
  } else {
    const back = new Uint8Array(e.data);
    const same = back.length === binary.length && back.every((b, i) => b === binary[i]);
    results.push(same ? "ok binary" : "bad binary " + back.length);
    ws.close(4000, "bye");
  }
};
ws.onerror = () => results.push("error");
ws.onclose = (e) => { results.push("close " + e.code + " " + e.wasClean); report(); };
</script>"#;

#[tokio::test]
async fn headless_chromium_over_wss_with_the_spki_flag() {
    let Some(chromium) = tolqin_testkit::peers::chromium() else {
        return;
    };
    let server = echo(&["--tls-self-signed"]);
    let spki = server.note("spki-sha256").unwrap().to_string();
    let page = PAGE.replace("WSS_URL", &format!("{}/", server.url));
    let mut pages = PageServer::start(vec![("/".into(), page)]).await;
    let browser = Browser::open(
        &chromium,
        &pages.url("/"),
        &[format!("--ignore-certificate-errors-spki-list={spki}")],
    );
    let (_, results) = pages.report(Duration::from_secs(90)).await;
    drop(browser);
    println!("{results}");
    let lines: Vec<&str> = results.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("open ")),
        "{results}"
    );
    assert!(lines.contains(&"ok text"), "{results}");
    assert!(lines.contains(&"ok binary"), "{results}");
    assert!(lines.contains(&"close 4000 true"), "{results}");
}
