//! Test support shared by tolqin's test suites (STYLE.md: test helpers live in their own crate,
//! not copied into each test file).
//!
//! - [`process`]: start a server and wait for its `listening on URL` line; kill it on drop.
//! - [`peers`]: the real peers the tests talk to (python `websockets`, Node `ws`, `pproxy`,
//!   Chromium), skipped with a message when missing, except in CI where a missing peer fails.
//! - [`browser`]: headless Chromium on a page served by the test, reporting results back.
//! - [`wire`]: raw client frames and handshakes, for peers that misbehave on purpose.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod browser;
pub mod peers;
pub mod process;
pub mod wire;

use std::path::{Path, PathBuf};

/// A directory removed when the test ends.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system's temp dir, named after `name`, this process and a
    /// counter (tests in one process run in parallel).
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tolqin-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `text` in it; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Resident memory of a process, in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `len` pseudo-random bytes from `seed` (xorshift): varied, incompressible test data without a
/// random crate, the same for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
