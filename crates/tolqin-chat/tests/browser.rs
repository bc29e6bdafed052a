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
  // The box empties when the server acknowledges the message.
  await until("the acknowledgement", () => d.getElementById("text").value === "");
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
    // In Uzbek: the page's words, and its example's name with the Uzbek apostrophe.
    document.getElementById("frame").src = "/demo?lang=uz";
    await until("the Uzbek page", () => frame().location.search === "?lang=uz"
      && log().some((li) => li.dataset.kind === "message"));
    lines.push("uz title " + frame().title + " | " + frame().querySelector("h1").textContent
      + " | " + frame().querySelector("#again button").textContent);
    for (const li of log()) lines.push("uz " + li.dataset.kind + " " + li.textContent);
    frame().getElementById("demo-text").value = "Hi, I am John!";
    frame().getElementById("again").requestSubmit();
    const john = await until("John's answer", () => log().find((li) => li.dataset.kind === "message"
      && li.dataset.data !== "Hello from server, O‘tkir!"));
    lines.push("john " + john.dataset.data);
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("demo", lines);
})();
</script>"##;

/// Drives the chat page for people: the live count and the cut notice (English), a refusal
/// worded in Uzbek with the text kept and the wait shown, close reasons in words, and the
/// "reconnect now" button across a server restart.
const PEOPLE_DRIVER: &str = r##"<!doctype html><meta charset="utf-8"><title>chat for people</title>
<iframe id="frame" src="/?lang=en" width="900" height="700"></iframe>
<script>HELPERS
const el = (id) => frame().getElementById(id);
const state = () => el("state").dataset;
const newest = () => frame().querySelector("#messages li .content")?.textContent;
function type(text) {
  el("text").value = text;
  el("text").dispatchEvent(new (frame().defaultView.Event)("input"));
}
async function send(text) {
  type(text);
  el("send").requestSubmit();
}
async function delivered(text) {
  await send(text);
  await until("the acknowledgement of " + text, () => el("text").value === "" && newest() === text);
}
const count = () => el("count").textContent + " " + el("count").classList.contains("over");
const family = "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}";
async function counting() {
  const lines = [];
  try {
    await until("the page to connect", () => state().state === "open");
    await until("the limit from /config", () => el("count").dataset.max === "50");
    type("salom");
    lines.push("count " + count());
    type("x".repeat(49) + "\u{1F1FA}\u{1F1FF}");
    lines.push("count " + count());
    type("x".repeat(48) + family + "tail");
    lines.push("count " + count() + " " + el("count").title);
    el("send").requestSubmit();
    await until("the acknowledgement", () => el("text").value === "");
    lines.push("top " + (newest() === "x".repeat(48) + family + "t"));
    await until("the cut notice", () => !el("notice").hidden);
    lines.push("notice " + el("notice").dataset.code + " " + el("notice").textContent);
    lines.push("count " + count());
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("count", lines);
}
async function uzbek() {
  const lines = [];
  try {
    document.getElementById("frame").src = "/?lang=uz";
    await until("the Uzbek page", () => frame().location.search === "?lang=uz" && state().state === "open");
    lines.push("state " + el("state").textContent + " | " + el("submit").textContent);
    await delivered("bir");
    await delivered("ikki");
    // The burst of 2 is spent: refused, kept in the box, the wait shown and counted down.
    await send("uch");
    await until("the refusal", () => !el("error").hidden);
    const first = el("error").textContent;
    lines.push("refused " + el("error").dataset.code + " | " + first);
    lines.push("box " + el("text").value + " disabled=" + el("submit").disabled);
    await sleep(300);
    lines.push("later " + (el("error").textContent !== first) + " | " + el("error").textContent);
    await until("the end of the wait", () => !el("submit").disabled, 5000);
    lines.push("after_wait error_hidden=" + el("error").hidden + " box " + el("text").value);
    await delivered("uch");
    lines.push("sent " + newest());
    const words = frame().defaultView.tolqinChat.closeText;
    for (const [code, reason] of [[1000, ""], [1001, "server is shutting down"], [1006, ""],
        [1008, "too slow"], [1008, "too many refused messages"], [1008, "other"], [1009, ""],
        [1011, ""], [1012, ""], [1013, ""], [4000, ""]]) {
      lines.push("close " + code + " " + reason + " | " + words(code, reason));
    }
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("uz", lines);
}
async function reconnecting() {
  const lines = [];
  try {
    await until("the drop", () => state().state === "closed", 30000);
    lines.push("dropped " + state().code + " | " + el("state").textContent);
    lines.push("button hidden=" + el("reconnect").hidden + " " + el("reconnect").textContent);
    // Wait for a long backoff, then tell the test to restart the server.
    await until("a long backoff", () => state().state === "closed" && Number(el("state").textContent.match(/(\d+) soniya/)?.[1]) >= 3, 30000);
    lines.push("waiting " + el("state").textContent);
  } catch (e) {
    lines.push("error " + e.message);
  }
  await report("down", lines);
  const back = [];
  try {
    const end = Date.now() + 20000;
    for (let up = false; !up;) {
      if (Date.now() > end) throw new Error("timed out waiting for the restarted server");
      try { up = (await fetch("/healthz", { cache: "no-store" })).ok; } catch (_) { await sleep(100); }
    }
    const left = Number(el("state").textContent.match(/(\d+) soniya/)?.[1]);
    back.push("clicked state=" + state().state + " retry_in=" + left);
    const clicked = performance.now();
    el("reconnect").click();
    await until("the reconnection", () => state().state === "open", 10000);
    back.push("open_after_ms " + Math.round(performance.now() - clicked));
    back.push("state " + el("state").textContent + " button_hidden=" + el("reconnect").hidden);
  } catch (e) {
    back.push("error " + e.message);
  }
  await report("back", back);
}
counting().then(uzbek).then(reconnecting);
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

/// The points of issue 21 for people, in one browser session: each phase is reported and
/// checked on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_for_people_counts_words_errors_in_uzbek_and_reconnects_now() {
    let Some(chromium) = tolqin_testkit::peers::chromium() else {
        return;
    };
    let (results, mut reports) = results_server().await;
    let driver = page(PEOPLE_DRIVER, &results);
    let chat_config = || {
        config()
            .with_rate(1.0, 2)
            .with_extra_page("/__test/people", driver.clone())
    };
    let server = start(chat_config()).await;
    let addr = server.addr;
    let _browser = Browser::open(&chromium, &format!("http://{addr}/__test/people"), &[]);

    // The live count in characters as a person sees them, and the cut told to the sender.
    let body = report(&mut reports, "count", 60).await;
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
    assert_eq!(
        body.lines().collect::<Vec<_>>(),
        [
            "count 5/50 false",
            "count 50/50 false",
            "count 53/50 true Longer than 50 characters: the server will cut it.",
            "top true",
            "notice cut The server cut your message to 50 characters.",
            "count 0/50 false",
        ],
        "{family}"
    );

    // In Uzbek: a message over the rate limit stays in the box, the wait shown counting down.
    let body = report(&mut reports, "uz", 60).await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "state Ulandi | Yuborish");
    let wait = |line: &str| -> f64 {
        let rest = line
            .split_once("Juda koʻp xabar yuborildi: ")
            .and_then(|(_, rest)| {
                rest.strip_suffix(
                    " soniyadan keyin yana yubora olasiz. Xabaringiz maydonda turibdi.",
                )
            })
            .unwrap_or_else(|| panic!("not the Uzbek wait: {line}"));
        rest.replace(',', ".").parse().unwrap()
    };
    assert!(lines[1].starts_with("refused rate_limited | "), "{body}");
    let (first, later) = (wait(lines[1]), wait(lines[3]));
    assert!(first > 0.0 && first <= 1.0 && later < first, "{body}");
    assert_eq!(lines[2], "box uch disabled=true");
    assert!(lines[3].starts_with("later true | "), "{body}");
    assert_eq!(lines[4], "after_wait error_hidden=true box uch");
    assert_eq!(lines[5], "sent uch");
    // Close codes in words, each its own; only an unknown code falls back to the number.
    let closes: Vec<&str> = lines[6..]
        .iter()
        .map(|l| l.split_once(" | ").unwrap().1)
        .collect();
    assert_eq!(closes.len(), 11, "{body}");
    assert_eq!(closes[1], "Server qayta ishga tushmoqda yoki toʻxtamoqda.");
    assert_eq!(closes[3], "Server aloqani yopdi: ulanish xonaga ulgurmadi.");
    assert_eq!(closes[10], "Aloqa yopildi (kod 4000).");
    let distinct: std::collections::HashSet<&&str> = closes.iter().collect();
    assert_eq!(distinct.len(), closes.len(), "{body}");
    assert!(
        closes
            .iter()
            .all(|c| !c.contains("server") && !c.contains("too")),
        "{body}"
    );

    // The server stops: the reason in words, a "reconnect now" button; a restart on the
    // same port, and the button reconnects at once rather than at the end of the backoff.
    server.stop().await;
    let body = report(&mut reports, "down", 60).await;
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines[0].starts_with("dropped 1001 | Server qayta ishga tushmoqda yoki toʻxtamoqda. "),
        "{body}"
    );
    assert!(
        lines[0].ends_with(" soniyadan keyin qayta ulanadi."),
        "{body}"
    );
    assert_eq!(lines[1], "button hidden=false Hozir ulanish");
    let restarted = start(chat_config().with_listen(addr)).await;
    let body = report(&mut reports, "back", 60).await;
    let lines: Vec<&str> = body.lines().collect();
    let retry_in: u64 = lines[0]
        .strip_prefix("clicked state=closed retry_in=")
        .unwrap_or_else(|| panic!("{body}"))
        .parse()
        .unwrap();
    let after: u64 = lines[1]
        .strip_prefix("open_after_ms ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry_in >= 2 && after < 1500,
        "reconnected {after} ms after the click, the backoff had {retry_in} s left"
    );
    assert_eq!(lines[2], "state Ulandi button_hidden=true");
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_demo_in_chromium_shows_open_hello_john_and_bye_then_in_uzbek() {
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
    // The same demo in Uzbek: its words, and the name with an Uzbek apostrophe; then John.
    assert!(
        lines
            .contains(&"uz title tolqin: salom namoyishi | Salom namoyishi | Yana ishga tushirish"),
        "{body}"
    );
    assert!(lines.contains(&"uz open [open] Aloqa oʻrnatildi"), "{body}");
    assert!(
        lines.contains(&"uz send [send] Serverga yuborilmoqda: Mening ismim O‘tkir"),
        "{body}"
    );
    assert!(
        lines.contains(
            &"uz message [message] Serverdan kelgan maʼlumot: Hello from server, O‘tkir!"
        ),
        "{body}"
    );
    assert_eq!(
        lines.last(),
        Some(&"john Hello from server, John!"),
        "{body}"
    );
    server.stop().await;
}
