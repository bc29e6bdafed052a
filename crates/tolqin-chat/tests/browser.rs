//! The real pages in headless Chromium, driven from a same-origin test page that loads them
//! in an iframe and reads their DOM, as a person would use them.
//!
//! Chromium is `TOLQIN_CHROMIUM` or /usr/bin/chromium (scripts/test.sh installs it). Without
//! it the tests skip with a message, except in CI (`CI` set), where they fail.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tolqin_chat::ChatConfig;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tolqin-chat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromium() -> Option<PathBuf> {
    let found = [
        std::env::var_os("TOLQIN_CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: scripts/test.sh installs it"
        );
        eprintln!("skipped: chromium not installed (run scripts/test.sh)");
    }
    found
}

fn launch(chromium: &Path, profile: &TempDir, url: &str) -> Kill {
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=en-US",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.0.join("profile").display()
        ))
        .arg(url)
        .env("TMPDIR", profile.0.join("tmp"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    Kill(child)
}

/// Receives the test page's reports: `POST /PHASE` with the lines as body.
async fn results_server() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body_start) = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..i]).into_owned(), i + 4);
                    }
                    match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk)).await
                    {
                        Ok(Ok(n)) if n > 0 && buf.len() < 1 << 20 => {
                            buf.extend_from_slice(&chunk[..n])
                        }
                        _ => return,
                    }
                };
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < body_start + length {
                    match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk)).await
                    {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let path = head.split(' ').nth(1).unwrap_or("").trim_start_matches('/');
                let body = String::from_utf8_lossy(&buf[body_start..body_start + length]);
                let _ = tx.send((path.to_string(), body.into_owned()));
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 204 No Content\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    (url, rx)
}

async fn report(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    phase: &str,
    secs: u64,
) -> String {
    let (got, body) = tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {phase} report from the page within {secs} s"))
        .unwrap();
    println!("{got}:\n{body}");
    assert_eq!(got, phase, "{body}");
    assert!(!body.lines().any(|l| l.starts_with("error")), "{body}");
    body
}

/// Shared by both test pages: waiting, reporting.
const HELPERS: &str = r##"
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, check, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const v = check(); if (v) return v; } catch (_) { /* not there yet */ }
    await sleep(50);
  }
  throw new Error("timed out waiting for " + what);
}
const report = (phase, lines) =>
  fetch("RESULTS/" + phase, { method: "POST", mode: "no-cors", body: lines.join("\n") });
const frame = () => document.getElementById("frame").contentDocument;
"##;

/// Drives the chat page in an iframe: name, message, submit; reads #messages.
const CHAT_DRIVER: &str = r##"<!doctype html><meta charset="utf-8"><title>chat e2e</title>
<iframe id="frame" src="/" width="900" height="700"></iframe>
<script>HELPERS
const state = () => frame().getElementById("state").dataset;
const items = () => [...frame().querySelectorAll("#messages li")].map((li) => ({
  user: li.querySelector(".user").textContent,
  content: li.querySelector(".content").textContent,
}));
const cut = (text) => [...text].slice(0, 50).join("");
async function say(name, text) {
  const d = frame();
  d.getElementById("name").value = name;
  d.getElementById("text").value = text;
  d.getElementById("send").requestSubmit();
  await until("the echo of " + text.slice(0, 20), () => items().some((m) => m.content === cut(text)));
}
async function phase1() {
  const lines = [];
  try {
    await until("the page to connect", () => state().state === "open");
    lines.push("open " + frame().getElementById("state").textContent);
    await say("Browser", "hello from the page");
    await until("the Rust client's answer", () => items()[0].content === "hello from rust");
    lines.push("top " + JSON.stringify(items().slice(0, 2)));
    const xss = '<img src=x onerror="parent.xssFired = 1">';
    await say("Browser", xss);
    await sleep(300);
    lines.push("xss img=" + frame().querySelectorAll("#messages img").length
      + " fired=" + (window.xssFired ? 1 : 0) + " shown=" + JSON.stringify(items()[0].content));
    await say("Browser", "0123456789".repeat(6));
    lines.push("cut " + items()[0].content.length + " " + items()[0].content);
  } catch (e) {
    lines.push("error " + e.message + " " + JSON.stringify(items().slice(0, 3)));
  }
  await report("phase1", lines);
}
async function phase2() {
  const lines = [];
  try {
    await until("the drop", () => state().state !== "open", 30000);
    lines.push("dropped " + state().state + " " + state().code + " " + frame().getElementById("state").textContent);
    await until("the reconnection", () => state().state === "open", 40000);
    lines.push("reconnected");
    await say("Browser", "after the restart");
    lines.push("after " + JSON.stringify(items()[0]));
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("phase2", lines);
}
phase1().then(phase2);
</script>"##;

/// Watches the hello demo page in an iframe until its close event.
const DEMO_DRIVER: &str = r##"<!doctype html><meta charset="utf-8"><title>demo e2e</title>
<iframe id="frame" src="/demo" width="900" height="700"></iframe>
<script>HELPERS
(async () => {
  const lines = [];
  try {
    const log = () => [...frame().querySelectorAll("#log li")];
    const message = await until("the answer", () => log().find((li) => li.dataset.kind === "message"), 20000);
    const answered = performance.now();
    const close = await until("the close", () => log().find((li) => li.dataset.kind === "close"), 20000);
    const closed = performance.now();
    for (const li of log()) lines.push(li.dataset.kind + " " + li.textContent);
    lines.push("data " + message.dataset.data);
    lines.push("close " + close.dataset.code + " " + close.dataset.reason + " " + close.dataset.clean);
    lines.push("after_ms " + Math.round(closed - answered));
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("demo", lines);
})();
</script>"##;

fn page(template: &str, results: &str) -> String {
    template
        .replace("HELPERS", &HELPERS.replace("RESULTS", results))
        .replace("RESULTS", results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_in_chromium_with_a_rust_client_then_a_restart() {
    let Some(chromium) = chromium() else { return };
    let (results, mut reports) = results_server().await;
    let driver = page(CHAT_DRIVER, &results);
    let chat_config = || config().with_extra_page("/__test/chat", driver.clone());
    let server = start(chat_config()).await;
    let addr = server.addr;

    // Our Rust client in the same room: answers the page's first message.
    let cookie = session_cookie(addr).await;
    let mut rust = join(&server, &cookie).await;
    let rust_side = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(Ok(message)) = rust.recv().await {
            let value: serde_json::Value =
                serde_json::from_str(message.as_text().unwrap()).unwrap();
            let content = value["content"].as_str().unwrap().to_string();
            if content == "hello from the page" {
                rust.send(say("Rust", "hello from rust")).await.unwrap();
            }
            seen.push((value["user"].as_str().unwrap().to_string(), content));
        }
        (seen, rust.close_info())
    });

    let profile = TempDir::new("chromium-chat");
    let _browser = launch(&chromium, &profile, &format!("http://{addr}/__test/chat"));
    let phase1 = report(&mut reports, "phase1", 90).await;
    let lines: Vec<&str> = phase1.lines().collect();
    assert_eq!(lines[0], "open Connected", "{phase1}");
    assert_eq!(
        lines[1],
        r#"top [{"user":"Rust","content":"hello from rust"},{"user":"Browser","content":"hello from the page"}]"#,
        "both messages, newest first"
    );
    assert_eq!(
        lines[2], r#"xss img=0 fired=0 shown="<img src=x onerror=\"parent.xssFired = 1\">""#,
        "markup is shown as text"
    );
    assert_eq!(
        lines[3],
        format!("cut 50 {}", &"0123456789".repeat(6)[..50])
    );

    // The server restarts on the same port; the page must reconnect by itself.
    server.stop().await;
    let (seen, close) = rust_side.await.unwrap();
    assert_eq!(close.code, tolqin::CloseCode::GOING_AWAY);
    let from_browser: Vec<&str> = seen
        .iter()
        .filter(|(user, _)| user == "Browser")
        .map(|(_, c)| c.as_str())
        .collect();
    assert_eq!(
        from_browser,
        [
            "hello from the page",
            "<img src=x onerror=\"parent.xssFired = 1\">",
            &"0123456789".repeat(6)[..50],
        ],
        "the Rust client saw the page's messages"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = start(chat_config().with_listen(addr)).await;
    let phase2 = report(&mut reports, "phase2", 90).await;
    let lines: Vec<&str> = phase2.lines().collect();
    assert!(lines[0].starts_with("dropped "), "{phase2}");
    assert_eq!(lines[1], "reconnected");
    assert_eq!(
        lines[2],
        r#"after {"user":"Browser","content":"after the restart"}"#
    );
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_demo_in_chromium_shows_open_hello_john_and_bye() {
    let Some(chromium) = chromium() else { return };
    let (results, mut reports) = results_server().await;
    let server = start(
        ChatConfig::default()
            .with_listen("127.0.0.1:0".parse().unwrap())
            .with_extra_page("/__test/demo", page(DEMO_DRIVER, &results)),
    )
    .await;
    let profile = TempDir::new("chromium-demo");
    let _browser = launch(
        &chromium,
        &profile,
        &format!("http://{}/__test/demo", server.addr),
    );
    let body = report(&mut reports, "demo", 90).await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "open [open] Connection established", "{body}");
    assert!(lines.contains(&"data Hello from server, John!"), "{body}");
    assert!(lines.contains(&"close 1000 Bye! true"), "{body}");
    let after: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("after_ms "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4500..7000).contains(&after),
        "closed {after} ms after the answer"
    );
    server.stop().await;
}
