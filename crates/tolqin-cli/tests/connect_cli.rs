//! `tolqin connect` as people use it: piped in a script, and typed at a terminal (a real
//! pseudo-terminal), against `tolqin echo`.

mod support;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Kill, Started, tolqin};

fn echo_server() -> (Started, String) {
    let server = support::echo(&["--threads", "1"]);
    let url = format!("{}/", server.url);
    (server, url)
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
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("tolqin connect {args:?} did not exit within 30 s");
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn piped_prints_only_messages_and_exits_0_on_clean_close() {
    let (_server, url) = echo_server();
    let (code, stdout, stderr) = piped(&[&url], "hello\nκόσμε\n");
    assert_eq!(stdout, "hello\nκόσμε\n", "stderr: {stderr}");
    assert!(stderr.contains("closed: code 1000"), "{stderr}");
    assert!(stderr.contains("clean"), "{stderr}");
    assert_eq!(code, 0);
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
    assert_eq!(code, 0);
}

#[test]
fn failure_exits_nonzero_with_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, stdout, stderr) = piped(&[&format!("ws://127.0.0.1:{port}/")], "");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("error:") && stderr.contains("code 1006"),
        "{stderr}"
    );
    assert_eq!(code, 1);
    let (code, _, stderr) = piped(&["ws://127.0.0.1:1/", "-H", "no colon"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid header"), "{stderr}");
}

/// Reads the terminal's output in a thread; `expect` waits (bounded) for a piece of text.
struct Screen {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Screen {
    fn expect(&mut self, text: &str) {
        let start = Instant::now();
        while !self.seen.contains(text) {
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
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave;
    let child = tolqin()
        .args(["connect", &url])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut master = std::fs::File::from(pty.master);
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
    let mut screen = Screen {
        rx,
        seen: String::new(),
    };
    screen.expect("connected to");
    screen.expect("> ");
    master.write_all(b"hello terminal\n").unwrap();
    screen.expect("< hello terminal");
    master.write_all(&[0x04]).unwrap(); // Ctrl-D
    screen.expect("closed: code 1000");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tolqin connect did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}
