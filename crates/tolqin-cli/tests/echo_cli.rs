//! `tolqin echo` as a user runs it: the binary, its ready line, many clients at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tolqin::Message;

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tolqin echo` on a free port and waits for its ready line.
fn start_echo(extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tolqin"))
        .args(["echo", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("tolqin starts");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .unwrap_or_else(|| panic!("ready line: {line:?}"));
    assert!(!addr.ends_with(":0"), "the real port is printed");
    (server, format!("ws://{addr}/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_binary_serves_many_clients() {
    let (_server, url) = start_echo(&[]);
    let mut tasks = Vec::new();
    for c in 0..300 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = tolqin::connect(&url).await.unwrap();
            for i in 0..20usize {
                let m = if i % 2 == 0 {
                    Message::text(format!("client {c} message {i}"))
                } else {
                    Message::binary(vec![(c % 251) as u8; i * 1000])
                };
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap(), m);
            }
            assert!(ws.close_and_wait(None, "").await.unwrap().was_clean);
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("bounded");
}

#[tokio::test]
async fn echo_binary_limits_message_size() {
    let (_server, url) = start_echo(&["--max-message-size", "1000", "--threads", "1"]);
    let mut ws = tolqin::connect(&url).await.unwrap();
    ws.send(Message::binary(vec![0u8; 1001])).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .unwrap();
    assert!(ended.is_none());
    assert_eq!(ws.close_info().code, tolqin::CloseCode::MESSAGE_TOO_BIG);
}
