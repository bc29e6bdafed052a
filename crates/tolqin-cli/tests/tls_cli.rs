//! `tolqin echo` over TLS as a user runs it: `--tls-self-signed`, `--tls-cert/--tls-key`
//! (several, by SNI), and the messages for files that cannot be used.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{TempDir, echo, self_signed};
use tolqin::tls::TlsClient;
use tolqin::{Client, Message};

async fn echo_round_trip(url: &str, tls: TlsClient) {
    let mut ws = Client::new(url).unwrap().tls(tls).connect().await.unwrap();
    for m in [
        Message::text("over TLS"),
        Message::binary(vec![7u8; 100_000]),
    ] {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), m);
    }
    assert!(ws.close_and_wait(None, "").await.unwrap().was_clean);
}

#[tokio::test]
async fn self_signed_prints_its_certificate_and_serves_wss() {
    let server = echo(&["--tls-self-signed"]);
    assert!(server.url.starts_with("wss://127.0.0.1:"), "{}", server.url);
    let cert = server
        .note("certificate")
        .expect("certificate line")
        .to_string();
    let spki = server.note("spki-sha256").expect("spki-sha256 line");
    assert_eq!(spki.len(), 44, "base64 of 32 bytes: {spki}");
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let trust = || {
        TlsClient::builder()
            .default_roots(false)
            .add_ca_file(&cert)
            .unwrap()
            .build()
            .unwrap()
    };
    let port = server.url.rsplit(':').next().unwrap();
    let run = async {
        echo_round_trip(&format!("{}/", server.url), trust()).await;
        echo_round_trip(&format!("wss://localhost:{port}/"), trust()).await;
        // Not trusted by default: the error says so.
        let err = tolqin::connect(&format!("{}/", server.url))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not signed by a trusted certificate authority"),
            "{err}"
        );
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
}

#[tokio::test]
async fn cert_and_key_files_several_by_sni() {
    let dir = TempDir::new("sni");
    let (cert_a, key_a) = self_signed(&dir, &["127.0.0.1"]);
    let (cert_b, key_b) = self_signed(&dir, &["localhost"]);
    let server = echo(&[
        "--tls-cert",
        cert_a.to_str().unwrap(),
        "--tls-key",
        key_a.to_str().unwrap(),
        "--tls-cert",
        cert_b.to_str().unwrap(),
        "--tls-key",
        key_b.to_str().unwrap(),
    ]);
    assert!(server.notes.is_empty(), "{:?}", server.notes);
    let port = server.url.rsplit(':').next().unwrap();
    let trust = |cert| {
        TlsClient::builder()
            .default_roots(false)
            .add_ca_file(cert)
            .unwrap()
            .build()
            .unwrap()
    };
    let run = async {
        // 127.0.0.1: no SNI, the first certificate; localhost: SNI picks the second.
        echo_round_trip(&format!("wss://127.0.0.1:{port}/"), trust(&cert_a)).await;
        echo_round_trip(&format!("wss://localhost:{port}/"), trust(&cert_b)).await;
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded");
}

#[test]
fn unusable_files_get_clear_messages() {
    let dir = TempDir::new("bad-files");
    let (cert, key) = self_signed(&dir, &["localhost"]);
    let (_, other_key) = self_signed(&dir, &["other.test"]);
    let missing = dir.path().join("missing.pem");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let cases = [
        (
            vec!["--tls-cert", &s(&cert), "--tls-key", &s(&other_key)],
            "does not match the certificate",
        ),
        (
            vec!["--tls-cert", &s(&missing), "--tls-key", &s(&key)],
            "cannot read the certificate file",
        ),
        (
            vec!["--tls-cert", &s(&cert), "--tls-key", &s(&missing)],
            "cannot read the private key file",
        ),
        (
            vec!["--tls-cert", &s(&key), "--tls-key", &s(&key)],
            "no PEM certificate found",
        ),
        (
            vec!["--tls-cert", &s(&cert), "--tls-key", &s(&cert)],
            "no PEM private key found",
        ),
    ]
    .map(|(args, words)| {
        (
            args.into_iter().map(String::from).collect::<Vec<_>>(),
            words,
        )
    });
    for (args, words) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tolqin"))
            .args(["echo", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("tolqin: ") && stderr.contains(words),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "no ready line: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // clap refuses a certificate without its key.
    let out = Command::new(env!("CARGO_BIN_EXE_tolqin"))
        .args(["echo", "--tls-cert", &s(&cert)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
