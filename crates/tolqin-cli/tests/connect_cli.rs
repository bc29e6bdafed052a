//! `tolqin connect` as people use it: piped in a script, and typed at a terminal (a real
//! pseudo-terminal), against `tolqin echo` and against small servers in the test that close,
//! drop or stall the connection. Every client is a real process, bounded in time and killed if
//! the test fails.

mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;
use support::{Kill, Started, tolqin};
use tokio::net::TcpStream;
use tolqin::{CloseCode, Message, WebSocket};

/// Exit statuses of `tolqin connect` (its `--help` lists them).
const CLEAN: i32 = 0;
const UNCLEAN: i32 = 1;
const NOT_CONNECTED: i32 = 3;

fn echo_server() -> (Started, String) {
    let server = support::echo(&["--threads", "1"]);
    let url = format!("{}/", server.url);
    (server, url)
}

/// A tolqin server for one connection, on a runtime thread of its own: `script` runs on the
/// accepted WebSocket, and what it returns comes back on the receiver. Bounded: a script still
/// running after 30 s is dropped (and nothing comes back).
fn serve_one<T, F, Fut>(script: F) -> (String, mpsc::Receiver<T>)
where
    T: Send + 'static,
    F: FnOnce(WebSocket<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let run = async {
                let (tcp, _) = listener.accept().await.unwrap();
                script(tolqin::accept(tcp).await.unwrap()).await
            };
            if let Ok(result) = tokio::time::timeout(Duration::from_secs(30), run).await {
                let _ = tx.send(result);
            }
        });
    });
    (format!("ws://{addr}/"), rx)
}

/// Reads until the client's close arrives and the close handshake ends; returns the code the
/// client sent and whether the handshake completed.
async fn until_closed(ws: &mut WebSocket<TcpStream>) -> (CloseCode, bool) {
    while let Some(Ok(_)) = ws.recv().await {}
    let info = ws.close_info();
    (info.code, info.was_clean)
}

/// Closes from the server's side with `code` and `reason`, and waits for the client's answer.
async fn close_from_server(ws: &mut WebSocket<TcpStream>, code: u16, reason: &str) {
    ws.close_with(CloseCode(code), reason).await.unwrap();
    while let Some(Ok(_)) = ws.recv().await {}
}

/// Waits (bounded) for the process to exit; `None` if it is still running after `within`.
fn exit_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects a pipe of the child in a thread: its whole text once it ends.
fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
    });
    rx
}

/// Reads a pipe of the child line by line in a thread.
fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Runs `tolqin connect` with `input` on stdin; returns (exit code, stdout, stderr). Bounded:
/// a client that does not exit within 30 s is killed and the test fails.
fn piped(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = tolqin()
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("tolqin connect {args:?} did not exit within 30 s");
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `tolqin connect` with stdin, stdout and stderr pipes; stdin stays open until the test drops
/// it.
struct PipedClient {
    child: Kill,
    stdin: std::process::ChildStdin,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl PipedClient {
    fn start(args: &[&str]) -> PipedClient {
        let mut child = tolqin()
            .arg("connect")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        PipedClient {
            child: Kill(child),
            stdin,
            stdout,
            stderr,
        }
    }

    /// Waits (bounded) for this line on stdout.
    fn expect_line(&self, want: &str) {
        let line = self
            .stdout
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line {want:?} on stdout"));
        assert_eq!(line, want);
    }

    fn interrupt(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
    }

    /// The exit status within `within` (the test fails otherwise), and stderr.
    fn exit_within(&mut self, within: Duration) -> (i32, String) {
        let status = exit_within(&mut self.child.0, within)
            .unwrap_or_else(|| panic!("tolqin connect did not exit within {within:?}"));
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(10))
            .expect("stderr ends");
        (status.code().unwrap_or(-1), stderr)
    }
}

#[test]
fn piped_prints_only_messages_and_exits_0_on_clean_close() {
    let (_server, url) = echo_server();
    let (code, stdout, stderr) = piped(&[&url], "hello\nκόσμε\n");
    assert_eq!(stdout, "hello\nκόσμε\n", "stderr: {stderr}");
    assert!(stderr.contains("closed: code 1000"), "{stderr}");
    assert!(stderr.contains("clean"), "{stderr}");
    assert_eq!(code, CLEAN);
}

#[test]
fn piped_exits_when_the_server_closes_though_stdin_stays_open() {
    let (url, received) = serve_one(|mut ws| async move {
        let first = ws.recv().await.unwrap().unwrap();
        close_from_server(&mut ws, 4000, "bye").await;
        first
    });
    let mut client = PipedClient::start(&[&url]);
    client.stdin.write_all(b"hello\n").unwrap();
    client.stdin.flush().unwrap();
    let (code, stderr) = client.exit_within(Duration::from_secs(5));
    assert!(
        stderr.contains("closed: code 4000 reason \"bye\", clean"),
        "{stderr}"
    );
    assert_eq!(code, CLEAN, "{stderr}");
    let first = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first, Message::text("hello"));
    // Still open: the client did not wait for the end of its input.
    drop(client.stdin);
}

#[test]
fn piped_wait_keeps_the_connection_for_late_replies_after_the_end_of_input() {
    // The server answers 300 ms after each message; without --wait the client closes at the
    // end of its input and the reply is lost in the close handshake.
    let (url, _) = serve_one(|mut ws| async move {
        let got = ws.recv().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = ws.send(got).await;
        until_closed(&mut ws).await
    });
    let (code, stdout, stderr) = piped(&[&url, "--wait", "2"], "late\n");
    assert_eq!(stdout, "late\n", "{stderr}");
    assert_eq!(code, CLEAN, "{stderr}");
}

#[test]
fn piped_ctrl_c_sends_a_close_1000_and_exits_when_it_is_answered() {
    let (url, closed) = serve_one(|mut ws| async move {
        ws.send("ready").await.unwrap();
        until_closed(&mut ws).await
    });
    let mut client = PipedClient::start(&[&url]);
    client.expect_line("ready");
    client.interrupt();
    let (code, stderr) = client.exit_within(Duration::from_secs(5));
    assert_eq!(code, CLEAN, "{stderr}");
    assert!(stderr.contains("closed: code 1000, clean"), "{stderr}");
    let (code, clean) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(code, CloseCode::NORMAL);
    assert!(clean);
}

#[test]
fn ctrl_c_waits_at_most_the_close_timeout_and_twice_exits_at_once() {
    // A server that never reads again: the close is not answered.
    let stall = |mut ws: WebSocket<TcpStream>| async move {
        ws.send("ready").await.unwrap();
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(ws);
    };
    let (url, _) = serve_one(stall);
    let mut client = PipedClient::start(&[&url, "--close-timeout", "1"]);
    client.expect_line("ready");
    let start = Instant::now();
    client.interrupt();
    let (code, stderr) = client.exit_within(Duration::from_secs(4));
    assert!(start.elapsed() >= Duration::from_millis(900), "{stderr}");
    assert_eq!(code, UNCLEAN, "{stderr}");
    assert!(stderr.contains("not clean"), "{stderr}");

    let (url, _) = serve_one(stall);
    let mut client = PipedClient::start(&[&url, "--close-timeout", "20"]);
    client.expect_line("ready");
    let start = Instant::now();
    client.interrupt();
    std::thread::sleep(Duration::from_millis(200));
    client.interrupt();
    let (code, stderr) = client.exit_within(Duration::from_secs(4));
    assert!(start.elapsed() < Duration::from_secs(4));
    assert_eq!(code, UNCLEAN, "{stderr}");
    assert!(stderr.contains("interrupted again"), "{stderr}");
}

#[test]
fn ctrl_c_while_connecting_exits_at_once_as_not_connected() {
    // A server that takes the TCP connection and never answers the handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let mut client = PipedClient::start(&[&url]);
    let start = Instant::now();
    let _held = loop {
        match listener.accept() {
            Ok((tcp, _)) => break tcp,
            Err(_) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the client did not connect: {e}"),
        }
    };
    client.interrupt();
    let (code, stderr) = client.exit_within(Duration::from_secs(3));
    assert_eq!(code, NOT_CONNECTED, "{stderr}");
    assert!(
        stderr.contains("interrupted before the connection opened"),
        "{stderr}"
    );
    assert!(!stderr.contains("closed"), "{stderr}");
}

#[test]
fn a_dropped_connection_exits_with_the_unclean_status_and_says_so() {
    let (url, _) = serve_one(|mut ws| async move {
        ws.send("ready").await.unwrap();
        // Gone without a close frame.
        drop(ws);
    });
    let mut client = PipedClient::start(&[&url]);
    client.expect_line("ready");
    let (code, stderr) = client.exit_within(Duration::from_secs(5));
    assert_eq!(code, UNCLEAN, "{stderr}");
    assert!(stderr.contains("closed: code 1006"), "{stderr}");
    assert!(
        stderr.contains("dropped without a close handshake"),
        "{stderr}"
    );
}

#[test]
fn execute_sends_prints_replies_and_exits() {
    let (_server, url) = echo_server();
    let (code, stdout, _) = piped(
        &[
            &url,
            "-x",
            "one",
            "-x",
            "two",
            "--wait",
            "0.5",
            "-H",
            "X-Test: 1",
            "--protocol",
            "p1",
            "--origin",
            "http://localhost",
        ],
        "",
    );
    assert_eq!(stdout, "one\ntwo\n");
    assert_eq!(code, CLEAN);
}

#[test]
fn a_connection_that_never_opened_prints_only_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, stdout, stderr) = piped(&[&format!("ws://127.0.0.1:{port}/")], "");
    assert_eq!(stdout, "");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("closed"), "{stderr}");
    assert_eq!(code, NOT_CONNECTED, "{stderr}");
}

#[test]
fn bad_arguments_exit_2() {
    let (code, _, stderr) = piped(&["ws://127.0.0.1:1/", "-H", "no colon"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid header"), "{stderr}");
    let (code, _, stderr) = piped(&["ws://127.0.0.1:1/", "--wait", "-1"], "");
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = piped(&["127.0.0.1:1"], "");
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn help_documents_the_exit_statuses() {
    let out = tolqin().args(["connect", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in ["Exit status:", "  0  ", "  1  ", "  2  ", "  3  ", "Ctrl-C"] {
        assert!(help.contains(line), "{line:?} missing from:\n{help}");
    }
}

#[test]
fn an_untrusted_certificate_hints_at_ca_and_insecure_and_insecure_warns_without_colour() {
    let server = support::echo(&["--tls-self-signed", "--threads", "1"]);
    let url = format!("{}/", server.url);
    let (code, _, stderr) = piped(&[&url, "-x", "hi", "--wait", "0"], "");
    assert_eq!(code, NOT_CONNECTED, "{stderr}");
    assert!(stderr.contains("--ca FILE"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert!(!stderr.contains("closed"), "{stderr}");

    let (code, stdout, stderr) = piped(&[&url, "--insecure", "-x", "hi", "--wait", "0.3"], "");
    assert_eq!(code, CLEAN, "{stderr}");
    assert_eq!(stdout, "hi\n");
    assert!(stderr.contains("verification is off"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes on a pipe: {stderr:?}"
    );
}

/// `tolqin connect` on a pseudo-terminal: stdin, stdout and stderr.
struct Terminal {
    child: Kill,
    master: std::fs::File,
    /// The terminal's side the client has (to read its settings).
    slave: OwnedFd,
    screen: Screen,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave = pty.slave;
        let child = tolqin()
            .arg("connect")
            .args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child: Kill(child),
            master,
            slave,
            screen: Screen {
                rx,
                seen: String::new(),
            },
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    fn exit_within(&mut self, within: Duration) -> ExitStatus {
        exit_within(&mut self.child.0, within).unwrap_or_else(|| {
            panic!(
                "tolqin connect did not exit within {within:?}; the screen shows {:?}",
                self.screen.seen
            )
        })
    }

    /// The terminal is back in its usual mode: lines, echo.
    fn assert_restored(&self) {
        let flags = tcgetattr(&self.slave).unwrap().local_flags;
        assert!(
            flags.contains(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
            "the terminal was left in raw mode: {flags:?}"
        );
    }
}

/// Reads the terminal's output in a thread; `expect` waits (bounded) for a piece of text.
struct Screen {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Screen {
    /// Waits for `text`; returns where it ends.
    fn expect(&mut self, text: &str) -> usize {
        self.expect_after(0, text)
    }

    /// Waits for `text` after the byte `from` of what was seen; returns where it ends.
    fn expect_after(&mut self, from: usize, text: &str) -> usize {
        let start = Instant::now();
        loop {
            if let Some(at) = self.seen.get(from..).and_then(|s| s.find(text)) {
                return from + at + text.len();
            }
            let left = Duration::from_secs(20).saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!(
                    "timed out waiting for {text:?}; the screen shows {:?}",
                    self.seen
                ),
            }
        }
    }
}

#[test]
fn terminal_shows_a_prompt_marks_replies_and_ctrl_d_closes_1000() {
    let (_server, url) = echo_server();
    let mut term = Terminal::start(&[&url]);
    term.screen.expect("connected to");
    term.screen.expect("> ");
    term.type_keys(b"hello terminal\r");
    let echo = term.screen.expect("< hello terminal");
    // The next prompt: the editor reads keys again (between two lines the terminal is the
    // kernel's, which would take a Ctrl-D for itself).
    term.screen.expect_after(echo, "> ");
    term.type_keys(&[0x04]); // Ctrl-D
    term.screen.expect("closed: code 1000");
    let status = term.exit_within(Duration::from_secs(20));
    assert!(status.success());
    term.assert_restored();
}

#[test]
fn terminal_exits_when_the_server_closes_without_enter_being_typed() {
    let (url, _) = serve_one(|mut ws| async move {
        ws.send("welcome").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        close_from_server(&mut ws, 4000, "bye").await;
    });
    let mut term = Terminal::start(&[&url]);
    term.screen.expect("< welcome");
    term.screen
        .expect("closed: code 4000 reason \"bye\", clean");
    let status = term.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(CLEAN), "{:?}", term.screen.seen);
    term.assert_restored();
}

#[test]
fn terminal_keeps_a_half_typed_line_when_a_message_arrives() {
    let (go, went) = tokio::sync::oneshot::channel::<()>();
    let (url, received) = serve_one(|mut ws| async move {
        let _ = went.await;
        ws.send("ping!").await.unwrap();
        let line = ws.recv().await.unwrap().unwrap();
        close_from_server(&mut ws, 1000, "").await;
        line
    });
    let mut term = Terminal::start(&[&url]);
    term.screen.expect("connected to");
    let prompt = term.screen.expect("> ");
    term.type_keys(b"hal");
    term.screen.expect_after(prompt, "hal");
    go.send(()).unwrap();
    let message = term.screen.expect("< ping!");
    // Printed above the line being typed, which is drawn again, as it was.
    term.screen.expect_after(message, "> hal");
    term.type_keys(b"f\r");
    let line = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(line, Message::text("half"));
    term.screen.expect("closed: code 1000, clean");
    let status = term.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(CLEAN), "{:?}", term.screen.seen);
    term.assert_restored();
}

#[test]
fn terminal_ctrl_c_sends_a_close_1000() {
    let (url, closed) = serve_one(|mut ws| async move { until_closed(&mut ws).await });
    let mut term = Terminal::start(&[&url]);
    term.screen.expect("connected to");
    term.screen.expect("> ");
    term.type_keys(b"unsent");
    term.type_keys(&[0x03]); // Ctrl-C
    let (code, clean) = closed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(code, CloseCode::NORMAL);
    assert!(clean);
    term.screen.expect("closed: code 1000, clean");
    let status = term.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(CLEAN), "{:?}", term.screen.seen);
    term.assert_restored();
}
