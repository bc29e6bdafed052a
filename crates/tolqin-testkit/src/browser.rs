//! Headless Chromium, driven the way a person's browser would be: it loads a page served by the
//! test, the page runs its checks in JavaScript, and POSTs what it saw back to the test.
//! No WebDriver, no downloaded browser: Debian's `chromium` with a fresh profile.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::TempDir;

/// A running headless Chromium with its own profile; closed (and the profile removed) on drop.
#[derive(Debug)]
pub struct Browser {
    process: Child,
    profile: TempDir,
}

impl Drop for Browser {
    /// Kills Chromium's whole process group (its renderer, GPU and crash-handler processes
    /// too: killed alone, the main process leaves them writing into the profile), then removes
    /// the profile.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.process.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        // A child may still be exiting; a few bounded tries.
        for _ in 0..20 {
            if std::fs::remove_dir_all(self.profile.path()).is_ok() || !self.profile.path().exists()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Browser {
    /// Opens `url` in headless Chromium with a fresh `--user-data-dir` (TMPDIR inside it), the
    /// flags this sandboxed machine needs (no sandbox, no GPU, no QUIC, no background
    /// networking), and `extra` flags (`--ignore-certificate-errors-spki-list=...`).
    pub fn open(chromium: &Path, url: &str, extra: &[String]) -> Browser {
        let profile = TempDir::new("chromium");
        let tmp = profile.0.join("tmp");
        std::fs::create_dir_all(&tmp).expect("profile tmp dir");
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
            .args(extra)
            .arg(url)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that drop kills its helper processes too.
            .process_group(0)
            .spawn()
            .expect("chromium starts");
        Browser {
            process: child,
            profile,
        }
    }
}

/// An HTTP server on 127.0.0.1 that serves fixed pages (GET) and collects what pages POST to
/// any path: the way a test page reports its results.
#[derive(Debug)]
pub struct PageServer {
    /// Its address.
    pub addr: SocketAddr,
    reports: mpsc::UnboundedReceiver<(String, String)>,
}

impl PageServer {
    /// Serves `pages` (path such as `/`, HTML) on a free port.
    pub async fn start(pages: Vec<(String, String)>) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                let pages = pages.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut tcp).await else {
                        return;
                    };
                    let mut parts = head.split(' ');
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let response = match (method, pages.iter().find(|(p, _)| p == path)) {
                        ("GET", Some((_, html))) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                             connection: close\r\n\r\n{html}",
                            html.len()
                        ),
                        ("POST", _) => {
                            let _ = tx.send((path.trim_start_matches('/').to_string(), body));
                            "HTTP/1.1 204 No Content\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n"
                                .to_string()
                        }
                        _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string(),
                    };
                    let _ = tcp.write_all(response.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                });
            }
        });
        PageServer { addr, reports }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next report a page POSTed: (path without the leading `/`, body).
    ///
    /// # Panics
    /// If none comes within `timeout`.
    pub async fn report(&mut self, timeout: Duration) -> (String, String) {
        tokio::time::timeout(timeout, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no report from the page within {timeout:?}"))
            .expect("the page server runs")
    }
}

/// One HTTP/1.1 request: its head and its body (by Content-Length), bounded in size and time.
async fn read_request(tcp: &mut TcpStream) -> Option<(String, String)> {
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
        .unwrap_or(0)
        .min(1 << 20);
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
