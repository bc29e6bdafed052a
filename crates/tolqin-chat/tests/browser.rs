//! The real pages in headless Chromium, driven from a same-origin test page that loads them
//! in an iframe and reads their DOM, as a person would use them.
//!
//! Chromium is `TOLQIN_CHROMIUM` or /usr/bin/chromium (scripts/test.sh installs it). Without
//! it the tests skip with a message, except in CI (`CI` set), where they fail.

mod support;

use std::time::Duration;

use support::*;
use tolqin_chat::ChatConfig;
use tolqin_testkit::browser::{Browser, PageServer};

/// Waits for the page's report of `phase` (the path it POSTs to) and checks it reports no error.
async fn report(reports: &mut PageServer, phase: &str, secs: u64) -> String {
    let (got, body) = reports.report(Duration::from_secs(secs)).await;
    println!("{got}:\n{body}");
    assert_eq!(got, phase, "{body}");
    assert!(!body.lines().any(|l| l.starts_with("error")), "{body}");
    body
}

/// The results collector: a page server with no pages, that pages POST their results to.
async fn results_server() -> (String, PageServer) {
    let server = PageServer::start(Vec::new()).await;
    (server.url(""), server)
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
    let Some(chromium) = tolqin_testkit::peers::chromium() else {
        return;
    };
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

    let _browser = Browser::open(&chromium, &format!("http://{addr}/__test/chat"), &[]);
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
    let Some(chromium) = tolqin_testkit::peers::chromium() else {
        return;
    };
    let (results, mut reports) = results_server().await;
    let server = start(
        ChatConfig::default()
            .with_listen("127.0.0.1:0".parse().unwrap())
            .with_extra_page("/__test/demo", page(DEMO_DRIVER, &results)),
    )
    .await;
    let _browser = Browser::open(
        &chromium,
        &format!("http://{}/__test/demo", server.addr),
        &[],
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
