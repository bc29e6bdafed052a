//! Processes the tests start: killed when the test ends, however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the process when dropped.
#[derive(Debug)]
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Kill {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// A server process and what it printed before its ready line.
#[derive(Debug)]
pub struct Started {
    /// The process (killed on drop).
    pub process: Kill,
    /// The URL of the ready line (`listening on URL`).
    pub url: String,
    /// Every line printed before it.
    pub notes: Vec<String>,
}

impl Drop for Started {
    /// After the process is killed (the `process` field drops after this), removes the
    /// development certificate a `--tls-self-signed` server wrote to the temp dir: killed, it
    /// cannot remove it itself.
    fn drop(&mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
        if let Some(path) = self.note("certificate") {
            let path = std::path::Path::new(path);
            if path.starts_with(std::env::temp_dir()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Started {
    /// The value of a `name: value` line printed before the ready line.
    pub fn note(&self, name: &str) -> Option<&str> {
        self.notes
            .iter()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }

    /// `ADDR:PORT` of the URL.
    pub fn addr(&self) -> &str {
        self.url
            .split("://")
            .nth(1)
            .unwrap_or(&self.url)
            .trim_end_matches('/')
    }
}

/// Starts `command` with its stdout piped and reads up to its `listening on URL` line.
///
/// # Panics
/// If the process ends before printing it.
pub fn start(mut command: Command) -> Started {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Kill(child);
    let mut notes = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is text");
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
