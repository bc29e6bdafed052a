//! The browser's `WebSocket` API in headless Chromium against a tolqin server: every member the
//! second article teaches (open, message with `binaryType` both ways, `protocol`,
//! `extensions`, `bufferedAmount`, `close(code, reason)`, `wasClean`, the 1006 case). The page
//! runs the checks and POSTs what it saw; this test asserts on it.

use std::time::Duration;

use tolqin::{Acceptor, CloseCode};
use tolqin_testkit::browser::{Browser, PageServer};

/// Paths: `/echo` echoes; `/drop` drops the TCP connection after one message; `/bye` closes
/// with 4001 after one message.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = Acceptor::new().protocols(["chat.v2"]);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok((mut ws, request)) = acceptor.accept_with_request(tcp).await else {
                    return;
                };
                match request.uri().path() {
                    "/drop" => {
                        let _ = ws.recv().await;
                    }
                    "/bye" => {
                        let _ = ws.recv().await;
                        let _ = ws.close(Some(CloseCode(4001)), "server says bye").await;
                        while ws.recv().await.is_some() {}
                    }
                    _ => {
                        while let Some(Ok(m)) = ws.recv().await {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    format!("ws://{addr}")
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>tolqin browser API</title><script>
const results = [];
const log = (line) => results.push(line);
const opened = (url, protocols) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url, protocols);
  ws.onopen = () => resolve(ws);
  ws.onerror = () => log("error event on " + url);
  ws.onclose = (e) => reject(new Error("closed before open: " + e.code));
});
const next = (ws) => new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
const closed = (ws) => new Promise((resolve) => { ws.onclose = resolve; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function run() {
  const ws = await opened("WS/echo", ["chat.v2", "other"]);
  log("readyState " + ws.readyState);
  log("protocol " + ws.protocol);
  log("extensions " + ws.extensions);
  ws.send("hello");
  log("text " + (await next(ws)));
  ws.binaryType = "arraybuffer";
  const bytes = new Uint8Array(1000).map((_, i) => i % 251);
  ws.send(bytes);
  const ab = new Uint8Array(await next(ws));
  log("arraybuffer " + (ab.length === 1000 && ab.every((b, i) => b === i % 251)));
  ws.binaryType = "blob";
  ws.send(new Blob([bytes]));
  const blob = await next(ws);
  const fromBlob = new Uint8Array(await blob.arrayBuffer());
  log("blob " + (blob instanceof Blob && fromBlob.length === 1000 && fromBlob.every((b, i) => b === i % 251)));
  // bufferedAmount: 16 MiB queued at once is not all written at once; then it drains.
  ws.binaryType = "arraybuffer";
  let echoes = 0;
  ws.onmessage = () => { echoes += 1; };
  for (let i = 0; i < 16; i++) ws.send(new Uint8Array(1 << 20));
  log("buffered after send " + (ws.bufferedAmount > 0));
  for (let i = 0; i < 600 && (ws.bufferedAmount > 0 || echoes < 16); i++) await sleep(50);
  log("buffered drained " + ws.bufferedAmount + " echoes " + echoes);
  const done = closed(ws);
  ws.close(4000, "bye");
  log("readyState after close() " + ws.readyState);
  const e = await done;
  log("close " + e.code + " " + e.reason + " " + e.wasClean + " readyState " + ws.readyState);
  // The server closes first.
  const bye = await opened("WS/bye", []);
  const byeClosed = closed(bye);
  bye.send("x");
  const b = await byeClosed;
  log("server close " + b.code + " " + b.reason + " " + b.wasClean);
  // The connection just drops: 1006, not clean.
  const drop = await opened("WS/drop", []);
  const dropClosed = closed(drop);
  drop.send("x");
  const d = await dropClosed;
  log("dropped " + d.code + " " + d.wasClean);
  // A protocol the server does not speak: the server answers without one, and the browser,
  // having asked for one, fails the connection itself.
  try { await opened("WS/echo", ["mqtt"]); log("no common protocol: opened"); }
  catch (err) { log("no common protocol: refused by the browser"); }
}
run().catch((err) => log("exception " + err.message)).finally(() =>
  fetch("/results", { method: "POST", body: results.join("\n") }));
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_api_in_chromium_against_tolqin() {
    let Some(chromium) = tolqin_testkit::peers::chromium() else {
        return;
    };
    let ws = server().await;
    let mut pages =
        PageServer::start(vec![("/".into(), PAGE.replace("WS/", &format!("{ws}/")))]).await;
    let _browser = Browser::open(&chromium, &pages.url("/"), &[]);
    let (path, body) = pages.report(Duration::from_secs(90)).await;
    println!("{body}");
    assert_eq!(path, "results");
    let lines: Vec<&str> = body.lines().collect();
    for expected in [
        "readyState 1",
        "protocol chat.v2",
        "extensions permessage-deflate",
        "text hello",
        "arraybuffer true",
        "blob true",
        "buffered after send true",
        "buffered drained 0 echoes 16",
        "readyState after close() 2",
        "close 4000 bye true readyState 3",
        "server close 4001 server says bye true",
        "dropped 1006 false",
        "no common protocol: refused by the browser",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{body}"
        );
    }
    assert!(!lines.iter().any(|l| l.starts_with("exception")), "{body}");
}
