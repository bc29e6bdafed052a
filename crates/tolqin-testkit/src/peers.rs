//! The real peers the tests talk to. `scripts/test.sh` installs them; without them a test skips
//! with a message, except in CI (`CI` set), where a missing peer fails the test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `peer`, or `None` (a skip, with a message) when it is missing; in CI a missing peer fails.
///
/// # Panics
/// In CI, when the peer is missing.
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

/// The interop directory: the peers' scripts and version pins.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The python that has `websockets` (`TOLQIN_PYTHON`, else `python3`), or a skip.
pub fn python() -> Option<String> {
    let python = std::env::var("TOLQIN_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(ok.then_some(python), "python websockets")
}

/// `pproxy` (an HTTP and SOCKS5 proxy from PyPI) beside the interop python, or a skip.
pub fn pproxy() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var("TOLQIN_PYTHON").unwrap_or_else(|_| "python3".into()));
    let path = python.with_file_name("pproxy");
    require(path.exists().then_some(path), "pproxy")
}

/// Whether Node with the pinned `ws` (interop/node_modules) is there; a skip otherwise.
pub fn node_ws() -> bool {
    let ok = interop_dir().join("node_modules/ws/package.json").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    require(ok.then_some(()), "node ws").is_some()
}

/// Chromium (`TOLQIN_CHROMIUM`, else /usr/bin/chromium), or a skip.
pub fn chromium() -> Option<PathBuf> {
    let found = [
        std::env::var_os("TOLQIN_CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.exists());
    require(found, "chromium")
}
