//! Shared setup of the CLI tests: the `tolqin` binary as a server, certificates; the rest comes
//! from `tolqin-testkit`.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::process::Command;

pub use tolqin_testkit::TempDir;
pub use tolqin_testkit::peers::{interop_dir, node_ws, pproxy, python, require};
pub use tolqin_testkit::process::{Kill, Started, start};

/// The `tolqin` binary.
pub fn tolqin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tolqin"))
}

/// `tolqin echo` on a free port with these extra arguments.
pub fn echo(extra: &[&str]) -> Started {
    let mut command = tolqin();
    command
        .args(["echo", "--listen", "127.0.0.1:0"])
        .args(extra);
    start(command)
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

/// Runs a peer's check script (one `ok ...` / `FAIL ...` line per check), prints what it said,
/// and asserts it passed with at least `min_ok` checks.
pub fn run_client(mut command: Command, min_ok: usize) -> String {
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "client checks failed:\n{stdout}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok")).count() >= min_ok,
        "{stdout}"
    );
    stdout
}
