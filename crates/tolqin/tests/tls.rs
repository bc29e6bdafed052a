//! wss://: our client against our server over TLS — echo, close codes, SNI, ALPN, the one
//! handshake timeout — and every way a certificate can fail, reported as such.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use support::bounded;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tolqin::tls::{TlsClient, TlsError, TlsServer};
use tolqin::{Acceptor, Client, CloseCode, Error, Message, Options};

/// A private CA that issues certificates for the tests.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names`, valid from `from` to `until` (years).
    fn issue_for_years(&self, names: &[&str], from: i32, until: i32) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A certificate for `names`, valid now.
    fn issue(&self, names: &[&str]) -> Leaf {
        self.issue_for_years(names, 2000, 4000)
    }

    /// A client that trusts this CA only.
    fn client(&self) -> TlsClient {
        TlsClient::builder()
            .default_roots(false)
            .add_ca_pem(self.pem.as_bytes())
            .unwrap()
            .build()
            .unwrap()
    }
}

fn server_tls(leaf: &Leaf) -> TlsServer {
    TlsServer::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap()
}

/// An echo server over TLS; path `/close4000` closes with 4000 "bye" after one message.
async fn tls_echo_server(acceptor: Acceptor, tls: TlsServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tls) = (acceptor.clone(), tls.clone());
            tokio::spawn(async move {
                let Ok((mut ws, request)) = acceptor.accept_tls_with_request(&tls, tcp).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.recv().await {
                    if request.uri().path() == "/close4000" {
                        let _ = ws.close(Some(CloseCode(4000)), "bye").await;
                        continue;
                    }
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn connect_with(
    url: &str,
    tls: TlsClient,
) -> tolqin::Result<tolqin::WebSocket<tolqin::stream::ClientStream>> {
    bounded(Client::new(url)?.tls(tls).connect()).await
}

fn tls_error(result: tolqin::Result<impl std::fmt::Debug>) -> TlsError {
    match result {
        Err(Error::Tls(e)) => *e,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn wss_echo_text_and_binary_up_to_16_mib() {
    let ca = Ca::new("test CA");
    let addr = tls_echo_server(
        Acceptor::new(),
        server_tls(&ca.issue(&["localhost", "127.0.0.1"])),
    )
    .await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("wss://{host}:{}/", addr.port());
        let mut ws = connect_with(&url, ca.client()).await.unwrap();
        assert!(ws.get_ref().is_tls());
        for m in [
            Message::text("Hello over TLS"),
            Message::text(""),
            Message::text("κόσμε €𝄞"),
            Message::binary(vec![1u8, 2, 3]),
            Message::binary((0..64 << 10).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
            // Varied, not a repeated pattern: over 1 MiB, one that deflates past 128x is
            // refused as a compression bomb (`Config::max_inflate_ratio`).
            Message::binary(varied(16 << 20)),
            Message::text(
                varied(16 << 20)
                    .iter()
                    .map(|b| char::from(b'a' + b % 26))
                    .collect::<String>(),
            ),
        ] {
            bounded(ws.send(m.clone())).await.unwrap();
            assert_eq!(bounded(ws.recv()).await.unwrap().unwrap(), m);
        }
        let info = bounded(ws.close_and_wait(Some(CloseCode(4001)), "done"))
            .await
            .unwrap();
        assert_eq!((info.code.0, info.was_clean), (4001, true));
    }
}

#[tokio::test]
async fn wss_close_codes_and_split_halves() {
    let ca = Ca::new("test CA");
    let addr = tls_echo_server(Acceptor::new(), server_tls(&ca.issue(&["127.0.0.1"]))).await;

    // The server closes with 4000 "bye".
    let mut ws = connect_with(&format!("wss://{addr}/close4000"), ca.client())
        .await
        .unwrap();
    ws.send("hi").await.unwrap();
    assert!(bounded(ws.recv()).await.is_none());
    let info = ws.close_info();
    assert_eq!(
        (info.code.0, info.reason.as_str(), info.was_clean),
        (4000, "bye", true)
    );

    // into_split works on what connect returns for wss:// too.
    let ws = connect_with(&format!("wss://{addr}/"), ca.client())
        .await
        .unwrap();
    let (mut rx, mut tx) = ws.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..500 {
            tx.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        tx
    });
    for i in 0..500 {
        let m = bounded(rx.recv()).await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(format!("m{i}").as_str()));
    }
    let mut tx = writer.await.unwrap();
    tx.close(Some(CloseCode::NORMAL), "").await.unwrap();
    assert!(bounded(rx.recv()).await.is_none());
    assert!(rx.close_info().was_clean);
}

#[tokio::test]
async fn alpn_is_http11_and_the_url_host_is_the_sni_name() {
    let ca = Ca::new("test CA");
    let a = ca.issue(&["a.test"]);
    let b = ca.issue(&["b.test"]);
    let tls = TlsServer::builder()
        .cert_pem(a.cert.as_bytes(), a.key.as_bytes())
        .unwrap()
        .cert_pem(b.cert.as_bytes(), b.key.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let addr = tls_echo_server(Acceptor::new(), tls).await;
    for (name, leaf) in [("a.test", &a), ("b.test", &b)] {
        // The names do not resolve: connect by address, give the name to TLS.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = bounded(ca.client().connect(name, tcp)).await.unwrap();
        assert_eq!(stream.alpn_protocol(), Some(&b"http/1.1"[..]));
        let presented = stream.peer_certificates().unwrap()[0].clone();
        let expected = rustls_pki_types_der(&leaf.cert);
        assert_eq!(
            presented.as_ref(),
            expected.as_slice(),
            "certificate for {name}"
        );
        let client = Client::new(&format!("wss://{name}/")).unwrap();
        let mut ws = bounded(client.handshake_on(stream)).await.unwrap();
        ws.send("sni").await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap().as_text(),
            Some("sni")
        );
    }
    // No SNI (an IP address): the first certificate, which is not valid for 127.0.0.1.
    let err = tls_error(connect_with(&format!("wss://{addr}/"), ca.client()).await);
    assert!(matches!(err, TlsError::WrongHost { .. }), "{err}");
}

fn rustls_pki_types_der(pem: &str) -> Vec<u8> {
    use tolqin::tls::rustls::pki_types::CertificateDer;
    use tolqin::tls::rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn verification_failures_are_reported_as_such() {
    let ca = Ca::new("test CA");
    let other_ca = Ca::new("another CA");
    /// (name, server certificate, client, the expected variant, words of the message)
    type Case = (
        &'static str,
        Leaf,
        TlsClient,
        fn(&TlsError) -> bool,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            "wrong host",
            ca.issue(&["elsewhere.test"]),
            ca.client(),
            |e| matches!(e, TlsError::WrongHost { .. }),
            "not valid for that name",
        ),
        (
            "unknown CA",
            other_ca.issue(&["127.0.0.1"]),
            ca.client(),
            |e| matches!(e, TlsError::UnknownIssuer { .. }),
            "not signed by a trusted certificate authority",
        ),
        (
            "unknown CA, default roots",
            ca.issue(&["127.0.0.1"]),
            TlsClient::builder()
                .build()
                .unwrap_or_else(|_| other_ca.client()),
            |e| matches!(e, TlsError::UnknownIssuer { .. }),
            "not signed by a trusted certificate authority",
        ),
        (
            "expired",
            ca.issue_for_years(&["127.0.0.1"], 2000, 2001),
            ca.client(),
            |e| matches!(e, TlsError::CertificateExpired { .. }),
            "has expired (not valid after 2001-01-01T00:00:00Z)",
        ),
    ];
    for (name, leaf, client, is_expected, words) in cases {
        let addr = tls_echo_server(Acceptor::new(), server_tls(&leaf)).await;
        let err = tls_error(connect_with(&format!("wss://{addr}/"), client).await);
        assert!(is_expected(&err), "{name}: {err:?}");
        assert!(err.to_string().contains(words), "{name}: {err}");
        assert!(
            err.to_string().contains("127.0.0.1"),
            "{name} names the host: {err}"
        );
    }
    // The development switch accepts even a certificate for another host from an unknown CA.
    let addr = tls_echo_server(
        Acceptor::new(),
        server_tls(&other_ca.issue(&["elsewhere.test"])),
    )
    .await;
    let insecure = TlsClient::builder()
        .danger_skip_verification_for_development()
        .build()
        .unwrap();
    let mut ws = connect_with(&format!("wss://{addr}/"), insecure)
        .await
        .unwrap();
    ws.send("trusting").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap().as_text(),
        Some("trusting")
    );
}

#[tokio::test]
async fn server_certificate_and_key_errors_are_clear() {
    let ca = Ca::new("test CA");
    let leaf = ca.issue(&["localhost"]);
    let stranger = ca.issue(&["localhost"]);
    let dir = TempDir::new("server-errors");
    let cert = dir.write("cert.pem", &leaf.cert);
    let key = dir.write("key.pem", &leaf.key);
    let wrong_key = dir.write("wrong-key.pem", &stranger.key);
    let missing = dir.0.join("missing.pem");

    TlsServer::from_pem_files(&cert, &key).unwrap();

    let err = TlsServer::from_pem_files(&cert, &wrong_key).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not match the certificate"),
        "{err}"
    );

    let err = TlsServer::from_pem_files(&missing, &key).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::ReadFile {
                what: "certificate",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = TlsServer::from_pem_files(&cert, &missing).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::ReadFile {
                what: "private key",
                ..
            }
        ),
        "{err:?}"
    );

    // The two files swapped.
    let err = TlsServer::from_pem_files(&key, &cert).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    let err = TlsServer::from_pem(leaf.cert.as_bytes(), leaf.cert.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    let err = TlsClient::builder().add_ca_file(&missing).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::ReadFile {
                what: "CA certificate",
                ..
            }
        ),
        "{err:?}"
    );
    let err = TlsClient::builder()
        .default_roots(false)
        .build()
        .unwrap_err();
    assert!(matches!(err, TlsError::NoRoots(_)), "{err:?}");
}

#[tokio::test]
async fn the_handshake_timeout_covers_tls_too() {
    let ca = Ca::new("test CA");
    let tls = server_tls(&ca.issue(&["127.0.0.1"]));
    let timeout = Duration::from_millis(400);
    let acceptor = Acceptor::new().options(Options::default().with_handshake_timeout(timeout));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    // A client that never starts TLS, and one that completes TLS and then stalls before the
    // HTTP request: each gets the one timeout, not one per stage.
    let silent = TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let start = Instant::now();
    let result = bounded(acceptor.accept_tls(&tls, tcp)).await;
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    assert!(start.elapsed() < timeout * 3);
    drop(silent);

    let client = tokio::spawn({
        let client_tls = ca.client();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = client_tls.connect("127.0.0.1", tcp).await.unwrap();
            // Trickle half a request, then stall.
            stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let start = Instant::now();
    let result = bounded(acceptor.accept_tls(&tls, tcp)).await;
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    assert!(start.elapsed() < timeout * 3, "{:?}", start.elapsed());
    client.abort();
}

#[tokio::test]
async fn plain_and_tls_mismatches_fail_cleanly() {
    let ca = Ca::new("test CA");
    // ws:// to a TLS server: the server sees no TLS, the client no HTTP response.
    let addr = tls_echo_server(Acceptor::new(), server_tls(&ca.issue(&["127.0.0.1"]))).await;
    assert!(
        bounded(tolqin::connect(&format!("ws://{addr}/")))
            .await
            .is_err()
    );
    // wss:// to a plain server: a TLS error that says so, not a panic.
    let plain = support::echo_server().await;
    let err = tls_error(connect_with(&format!("wss://{plain}/"), ca.client()).await);
    assert!(matches!(err, TlsError::NotTls { .. }), "{err:?}");
}

/// `len` varied bytes (incompressible: a repeated pattern would trip the inflate ratio limit).
fn varied(len: usize) -> Vec<u8> {
    tolqin_testkit::noise(len, 1)
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tolqin-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
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
