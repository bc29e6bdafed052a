//! Through real proxies (`pproxy` from PyPI, HTTP CONNECT and SOCKS5 with credentials):
//! explicit options on the client, and the environment variables through `tolqin connect`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Kill, echo, pproxy, tolqin};
use tolqin::proxy::{Proxy, ProxyError};
use tolqin::{Client, Error};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The two tests here each start a proxy on a port picked free a moment before; they take
/// turns, so that they can't pick the same one.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts pproxy (HTTP and SOCKS5 on one port, user alice, password secret). `--auth -1`:
/// check the credentials on every connection (pproxy otherwise trusts an IP for 30 days after
/// one success). If the port was taken meanwhile, pproxy exits: try another.
fn start_proxy(pproxy: &PathBuf) -> (Kill, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = Kill(
            Command::new(pproxy)
                .args([
                    "-l",
                    &format!("http+socks5://127.0.0.1:{port}#alice:secret"),
                    "--auth",
                    "-1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            && child.0.try_wait().unwrap().is_none()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "pproxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whoever answered, it must be our pproxy, still running.
        std::thread::sleep(Duration::from_millis(200));
        if child.0.try_wait().unwrap().is_none() {
            return (child, port);
        }
    }
    panic!("pproxy could not take a free port");
}

#[test]
fn through_http_connect_and_socks5_with_credentials() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(http_connect_and_socks5());
}

async fn http_connect_and_socks5() {
    let Some(pproxy) = pproxy() else { return };
    let (_proxy, port) = start_proxy(&pproxy);
    let server = echo(&["--threads", "1"]);
    let url = format!("{}/", server.url);
    let run = async {
        for scheme in ["http", "socks5", "socks5h"] {
            let proxy = Proxy::parse(&format!("{scheme}://alice:secret@127.0.0.1:{port}")).unwrap();
            let mut ws = Client::new(&url)
                .unwrap()
                .proxy(proxy)
                .connect()
                .await
                .unwrap();
            ws.send(format!("via {scheme}")).await.unwrap();
            assert_eq!(
                ws.recv().await.unwrap().unwrap().as_text(),
                Some(format!("via {scheme}").as_str())
            );
            assert!(ws.close_and_wait(None, "").await.unwrap().was_clean);
        }
        // Wrong credentials are reported as such.
        let wrong = Proxy::parse(&format!("http://alice:wrong@127.0.0.1:{port}")).unwrap();
        match Client::new(&url).unwrap().proxy(wrong).connect().await {
            Err(Error::Proxy(ProxyError::HttpStatus(407))) => {}
            other => panic!("expected 407, got {other:?}"),
        }
        let wrong = Proxy::parse(&format!("socks5://alice:wrong@127.0.0.1:{port}")).unwrap();
        match Client::new(&url).unwrap().proxy(wrong).connect().await {
            Err(Error::Proxy(
                ProxyError::SocksAuthFailed | ProxyError::Io(_) | ProxyError::SocksNoMethod,
            )) => {}
            other => panic!("expected an authentication failure, got {other:?}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
}

#[test]
fn environment_variables_choose_the_proxy_and_no_proxy_bypasses_it() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pproxy) = pproxy() else { return };
    let (_proxy, port) = start_proxy(&pproxy);
    let server = echo(&["--threads", "1"]);
    let url = format!("{}/", server.url);
    let connect = |vars: &[(&str, String)]| {
        let mut command = tolqin();
        command.args(["connect", &url, "-x", "hi", "--wait", "0.3"]);
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(name);
        }
        for (name, value) in vars {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let good = format!("http://alice:secret@127.0.0.1:{port}");
    let bad = format!("http://alice:wrong@127.0.0.1:{port}");
    let out = connect(&[("HTTP_PROXY", good.clone())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // Wrong credentials in the environment: the failure proves the proxy was used.
    let out = connect(&[("http_proxy", bad.clone())]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("407"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = connect(&[(
        "ALL_PROXY",
        format!("socks5://alice:wrong@127.0.0.1:{port}"),
    )]);
    assert!(!out.status.success(), "ALL_PROXY is used for ws:// too");
    // NO_PROXY bypasses it.
    let out = connect(&[
        ("HTTP_PROXY", bad),
        ("NO_PROXY", "localhost,127.0.0.1".into()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
