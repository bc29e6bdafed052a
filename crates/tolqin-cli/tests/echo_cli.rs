//! `tolqin echo` as a user runs it: the binary, its ready line, many clients at once.

mod support;

use std::time::Duration;

use support::{Started, echo};
use tolqin::Message;

/// Starts `tolqin echo` on a free port; returns it and its URL.
fn start_echo(extra: &[&str]) -> (Started, String) {
    let server = echo(extra);
    assert!(!server.url.ends_with(":0"), "the real port is printed");
    let url = format!("{}/", server.url);
    (server, url)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_with_1001_and_loses_no_accepted_message() {
    let (mut server, url) = start_echo(&["--close-timeout", "2"]);
    let ws = tolqin::connect(&url).await.unwrap();
    let (mut rx, mut tx) = ws.into_split();
    let sender = tokio::spawn(async move {
        for i in 0..100_000u32 {
            if tx.send(Message::text(i.to_string())).await.is_err() {
                break; // the server closed: nothing more may be sent
            }
        }
    });
    let mut next = 0u32;
    let pid = nix::unistd::Pid::from_raw(server.process.id() as i32);
    let run = async {
        while let Some(message) = rx.recv().await {
            let n: u32 = message.unwrap().as_text().unwrap().parse().unwrap();
            assert_eq!(n, next, "echoes arrive in order, with no gap");
            next += 1;
            if next == 100 {
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
    assert!(next >= 100);
    let info = rx.close_info();
    assert_eq!(
        (info.code, info.reason.as_str(), info.was_clean),
        (tolqin::CloseCode::GOING_AWAY, "server shutting down", true)
    );
    sender.await.unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.process.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

/// Runs `command` to its end (killed, and the test failed, if it still runs after 20 s);
/// returns its exit status and standard error.
fn run_to_end(mut command: std::process::Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = support::Kill(child);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running: {command:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn a_second_server_on_the_same_port_names_the_address() {
    let (first, _) = start_echo(&["--threads", "1"]);
    let addr = first.addr().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let expected = format!(
        "cannot listen on {addr}: address already in use (is another server running there? \
         pick another port with --listen)"
    );
    for server in ["echo", "chat"] {
        let mut command = support::tolqin();
        command.args([server, "--listen", &addr, "--threads", "1"]);
        let (status, stderr) = run_to_end(command);
        assert!(!status.success(), "{server}: {status}");
        assert!(stderr.contains(&expected), "{server}: {stderr}");
    }
    // The first one still serves.
    let url = format!("ws://{addr}/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut ws = tokio::time::timeout(Duration::from_secs(10), tolqin::connect(&url))
            .await
            .unwrap()
            .unwrap();
        ws.send("still here").await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), ws.recv())
            .await
            .unwrap();
        assert_eq!(reply.unwrap().unwrap(), Message::text("still here"));
    });
}

#[tokio::test]
async fn listen_takes_a_host_name() {
    let mut command = support::tolqin();
    command.args(["echo", "--listen", "localhost:0", "--threads", "1"]);
    let server = support::start(command);
    let addr: std::net::SocketAddr = server.addr().parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0, "the real port is printed");
    let url = format!("ws://localhost:{}/", addr.port());
    let mut ws = tokio::time::timeout(Duration::from_secs(10), tolqin::connect(&url))
        .await
        .unwrap()
        .unwrap();
    ws.send("by name").await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .unwrap();
    assert_eq!(reply.unwrap().unwrap(), Message::text("by name"));
}

#[test]
fn a_listen_address_without_a_port_is_refused() {
    let mut command = support::tolqin();
    command.args(["echo", "--listen", "localhost"]);
    let (status, stderr) = run_to_end(command);
    assert_eq!(status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains(r#""localhost" has no port: write HOST:PORT"#),
        "{stderr}"
    );
}
