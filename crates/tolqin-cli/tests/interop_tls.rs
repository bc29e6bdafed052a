//! wss:// with real peers nobody here wrote: python `websockets` (both roles), Node `ws` and
//! headless Chromium, against `tolqin echo --tls-self-signed`.
//!
//! scripts/test.sh installs the peers (a python venv, `npm ci --prefix interop`, Chromium when
//! /usr/bin/chromium is missing). Without them the tests skip with a message, except in CI
//! (`CI` set), where a missing peer fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Kill, TempDir, echo, interop_dir, python, require, self_signed, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tolqin::tls::TlsClient;
use tolqin::{Client, CloseCode, Message};

/// Runs a client script, prints what it said, and checks it passed with `min_ok` checks.
fn run_client(mut command: Command, min_ok: usize) {
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "client checks failed:\n{stdout}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok")).count() >= min_ok,
        "{stdout}"
    );
}

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
            Message::binary((0..4 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
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

        // Python's certificate is not for this name: refused, and said so.
        let url = base.replace("127.0.0.1", "127.0.0.2");
        if let Ok(client) = Client::new(&url) {
            let err = client.tls(tls.clone()).connect().await.unwrap_err();
            assert!(
                matches!(err, tolqin::Error::Tls(_) | tolqin::Error::Io(_)),
                "{err}"
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
}

#[test]
fn node_ws_client_over_wss_with_node_extra_ca_certs() {
    let installed = interop_dir().join("node_modules/ws/package.json").exists()
        && Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if require(installed.then_some(()), "node and interop/node_modules/ws").is_none() {
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

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TOLQIN_CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    require(found, "chromium")
}

/// Serves the page and waits for its POSTed results.
async fn page_server(
    page: String,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Ok((mut tcp, _)) = listener.accept().await {
            let Some((head, body)) = read_request(&mut tcp).await else {
                continue;
            };
            let response = if head.starts_with("GET / ") {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                )
            } else if head.starts_with("POST /result ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(body);
                }
                "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_string()
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    });
    (addr, rx)
}

/// An HTTP/1.1 request: its head and its body (by Content-Length).
async fn read_request(tcp: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .and_then(Result::ok)
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        head,
        String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
    ))
}

fn chromium_command(chromium: &Path, profile: &Path, spki: &str, url: &str) -> Command {
    let tmp = profile.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
        .arg(url)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test]
async fn headless_chromium_over_wss_with_the_spki_flag() {
    let Some(chromium) = chromium() else { return };
    let server = echo(&["--tls-self-signed"]);
    let spki = server.note("spki-sha256").unwrap().to_string();
    let (addr, results) = page_server(PAGE.replace("WSS_URL", &format!("{}/", server.url))).await;
    let profile = TempDir::new("chromium");
    let browser = Kill(
        chromium_command(&chromium, profile.path(), &spki, &format!("http://{addr}/"))
            .spawn()
            .unwrap(),
    );
    let results = tokio::time::timeout(Duration::from_secs(90), results)
        .await
        .expect("chromium reported within 90 s")
        .unwrap();
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
