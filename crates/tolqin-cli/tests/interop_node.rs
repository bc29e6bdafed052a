//! Interop with Node `ws` (pinned in interop/package.json), both roles, with compression off,
//! on by default, and with each permessage-deflate parameter.
//!
//! scripts/test.sh runs `npm ci --prefix interop`. Without it the tests skip with a message,
//! except in CI (`CI` set), where a missing peer fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tolqin::proto::Config;
use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Client, CloseCode, Message, Options};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

fn node() -> bool {
    let ok = interop_dir().join("node_modules/ws/package.json").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "node ws is missing in CI: scripts/test.sh installs it"
        );
        eprintln!("skipped: node ws not installed (run scripts/test.sh)");
    }
    ok
}

fn start(mut command: Command) -> (Kill, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("process starts");
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("ready line: {line:?}"))
        .to_string();
    (child, url)
}

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
    if !node() {
        return;
    }
    let mut echo = Command::new(env!("CARGO_BIN_EXE_tolqin"));
    echo.args(["echo", "--listen", "127.0.0.1:0"]);
    let (_server, url) = start(echo);
    for combo in COMBOS {
        let out = Command::new("node")
            .arg(interop_dir().join("node_ws.mjs"))
            .args(["client", &format!("{url}/"), combo])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{combo}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "node client with {combo} failed:\n{stdout}"
        );
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("ok")).count(),
            8,
            "{stdout}"
        );
    }
}

#[tokio::test]
async fn tolqin_client_against_node_servers() {
    if !node() {
        return;
    }
    for combo in COMBOS {
        let mut server = Command::new("node");
        server
            .arg(interop_dir().join("node_ws.mjs"))
            .args(["server", combo]);
        let (_server, base) = start(server);
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
    let (_server, base) = start(server);
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
