//! Shared setup of the CLI tests: processes killed on drop, `tolqin echo` over TLS, peers that
//! skip (or fail in CI) when missing, temporary directories.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Kills the process when the test ends, however it ends.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server process and what it printed before its ready line.
pub struct Started {
    pub process: Kill,
    /// The URL of the ready line (`listening on URL`).
    pub url: String,
    /// Every line before it.
    pub notes: Vec<String>,
}

impl Started {
    /// The value of a `name: value` line printed before the ready line.
    pub fn note(&self, name: &str) -> Option<&str> {
        self.notes
            .iter()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // `tolqin echo --tls-self-signed` removes its certificate file on a graceful stop;
        // the test kills it, so remove it here.
        if let Some(cert) = self.note("certificate") {
            let _ = std::fs::remove_file(cert);
        }
    }
}

/// Starts a process and reads its stdout up to its `listening on URL` line.
pub fn start(mut command: Command) -> Started {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("process starts");
    let stdout = child.stdout.take().unwrap();
    let process = Kill(child);
    let mut notes = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            return Started {
                process,
                url: url.to_string(),
                notes,
            };
        }
        notes.push(line);
    }
    panic!("no ready line; before it: {notes:?}");
}

/// `tolqin echo` on a free port with these extra arguments.
pub fn echo(extra: &[&str]) -> Started {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tolqin"));
    command
        .args(["echo", "--listen", "127.0.0.1:0"])
        .args(extra);
    start(command)
}

/// `None` (a skip, with a message) when a peer is missing, except in CI (`CI` set), where a
/// missing peer fails the test.
pub fn require<T>(peer: Option<T>, what: &str) -> Option<T> {
    if peer.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing in CI: scripts/test.sh installs it"
        );
        eprintln!("skipped: {what} not installed (run scripts/test.sh)");
    }
    peer
}

/// The interop directory (peers' scripts and pins).
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The python with `websockets` (`TOLQIN_PYTHON`, else `python3`), or a skip.
pub fn python() -> Option<String> {
    let python = std::env::var("TOLQIN_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(ok.then_some(python), "python websockets")
}

/// A directory removed when the test ends.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tolqin-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `names` and its key, PEM, written to `dir`.
pub fn self_signed(dir: &TempDir, names: &[&str]) -> (PathBuf, PathBuf) {
    let first = names[0];
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    (
        dir.write(&format!("{first}-cert.pem"), &certified.cert.pem()),
        dir.write(
            &format!("{first}-key.pem"),
            &certified.signing_key.serialize_pem(),
        ),
    )
}
