//! `tolqin chat` as a user runs it: the ready lines, the page and the socket, wss:// with
//! `--tls-self-signed`, and Ctrl-C closing every client with 1001.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Kill;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tolqin::tls::TlsClient;
use tolqin::{Client, CloseCode};

/// `tolqin chat` on a free port: the process and every line up to the one after the ready
/// line (the URL to open).
fn chat(extra: &[&str]) -> (Kill, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tolqin"))
        .args(["chat", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("tolqin chat starts");
    let stdout = child.stdout.take().unwrap();
    let process = Kill(child);
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stdout).lines();
    while let Some(Ok(line)) = reader.next() {
        let ready = line.starts_with("listening on ");
        lines.push(line);
        if ready {
            lines.push(reader.next().unwrap().unwrap());
            return (process, lines);
        }
    }
    panic!("no ready line: {lines:?}");
}

/// GET / over `io`; returns the session cookie the page sets.
async fn page_cookie<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, host: &str) -> String {
    io.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = io.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("id=\"messages\""));
    text.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn ready_lines_then_ctrl_c_closes_every_client_with_1001() {
    let (mut server, lines) = chat(&[]);
    let url = lines[0].strip_prefix("listening on ").unwrap().to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{lines:?}");
    let host = url.strip_prefix("ws://").unwrap().to_string();
    assert_eq!(
        lines[1],
        format!("open http://{host}/ in a browser to chat")
    );

    let run = async {
        let cookie = page_cookie(tokio::net::TcpStream::connect(&host).await.unwrap(), &host).await;
        let connect = || {
            Client::new(&format!("{url}/ws"))
                .unwrap()
                .origin(format!("http://{host}"))
                .header(http::header::COOKIE, cookie.parse().unwrap())
                .connect()
        };
        let mut a = connect().await.unwrap();
        let mut b = connect().await.unwrap();
        a.send(r#"{"user":"cli","content":"hi"}"#).await.unwrap();
        for ws in [&mut a, &mut b] {
            let m = ws.recv().await.unwrap().unwrap();
            assert!(m.as_text().unwrap().contains(r#""content":"hi""#), "{m:?}");
        }
        // Ctrl-C.
        let pid = server.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let interrupted = Instant::now();
        for ws in [&mut a, &mut b] {
            while ws.recv().await.is_some() {}
            let close = ws.close_info();
            assert_eq!(
                (close.code, close.was_clean),
                (CloseCode::GOING_AWAY, true),
                "{close:?}"
            );
        }
        interrupted
    };
    let interrupted = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap();
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(6),
            "exits within the close timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn tls_self_signed_serves_https_and_wss() {
    let (_server, lines) = chat(&["--tls-self-signed"]);
    let cert = lines
        .iter()
        .find_map(|l| l.strip_prefix("certificate: "))
        .expect("certificate line")
        .to_string();
    let ready = lines
        .iter()
        .find(|l| l.starts_with("listening on "))
        .unwrap();
    let url = ready.strip_prefix("listening on ").unwrap().to_string();
    assert!(url.starts_with("wss://127.0.0.1:"), "{lines:?}");
    let host = url.strip_prefix("wss://").unwrap().to_string();
    assert_eq!(
        lines.last().unwrap(),
        &format!("open https://{host}/ in a browser to chat")
    );

    let trust = || {
        TlsClient::builder()
            .default_roots(false)
            .add_ca_file(&cert)
            .unwrap()
            .build()
            .unwrap()
    };
    let run = async {
        let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        let tls = trust().connect("127.0.0.1", tcp).await.unwrap();
        let cookie = page_cookie(tls, &host).await;
        let mut ws = Client::new(&format!("{url}/ws"))
            .unwrap()
            .tls(trust())
            .origin(format!("https://{host}"))
            .header(http::header::COOKIE, cookie.parse().unwrap())
            .connect()
            .await
            .unwrap();
        ws.send("over wss").await.unwrap();
        let m = ws.recv().await.unwrap().unwrap();
        assert!(m.as_text().unwrap().contains("over wss"), "{m:?}");
        // The http:// origin of the same host is another origin.
        let plain_origin = Client::new(&format!("{url}/ws"))
            .unwrap()
            .tls(trust())
            .origin(format!("http://{host}"))
            .header(http::header::COOKIE, cookie.parse().unwrap())
            .connect()
            .await;
        assert!(plain_origin.unwrap_err().to_string().contains("403"));
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();
}
