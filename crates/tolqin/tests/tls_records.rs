//! tolqin's TLS stream against a plain tokio-rustls peer, over loopback: every cipher suite of
//! TLS 1.3 and TLS 1.2 in both roles, records split and joined at random sizes, key updates
//! asked for by the peer, `close_notify` both ways, and records that are forged, oversized or
//! of the wrong type, each refused with a typed error (and an alert to the peer), also as
//! seen through a WebSocket.

mod support;

use std::sync::Arc;

use rustls::crypto::ring::cipher_suite as cs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use support::bounded;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tolqin::tls::{TlsClient, TlsError, TlsServer, TlsStream};

/// A self-signed certificate for `localhost`: PEM, and DER for rustls.
struct Cert {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn cert() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Cert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// The peer's provider, limited to `suite`. rustls 0.23.48 deprecates `ring`'s provider (no
/// post-quantum key exchange) without a replacement in rustls 0.23; see `tls::ring_provider`.
#[allow(deprecated)]
fn provider(suite: SupportedCipherSuite) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    Arc::new(provider)
}

fn version_of(suite: SupportedCipherSuite) -> &'static SupportedProtocolVersion {
    match suite {
        SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
    }
}

/// Every suite both sides have: TLS 1.3's three, TLS 1.2's two for an ECDSA certificate.
fn suites() -> Vec<SupportedCipherSuite> {
    vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

fn peer_client(cert: &Cert, suite: SupportedCipherSuite) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(provider(suite))
        .with_protocol_versions(&[version_of(suite)])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn peer_server(cert: &Cert, suite: SupportedCipherSuite) -> tokio_rustls::TlsAcceptor {
    let key = PrivateKeyDer::try_from(cert.key_der.clone()).unwrap();
    let config = ServerConfig::builder_with_provider(provider(suite))
        .with_protocol_versions(&[version_of(suite)])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn our_client(cert: &Cert) -> TlsClient {
    TlsClient::builder()
        .default_roots(false)
        .add_ca_pem(cert.cert_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// Echoes what it reads until end of file, then shuts down (our `close_notify`).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut tls: TlsStream<S>) -> std::io::Result<()> {
    let mut buf = vec![0; 50_000];
    loop {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return tls.shutdown().await;
        }
        tls.write_all(&buf[..n]).await?;
        tls.flush().await?;
    }
}

/// Pseudo-random bytes and write sizes.
use tolqin_testkit::noise as pattern;

/// Writes `data` in pieces of varied size (1 byte to 40 KiB: records split and joined),
/// optionally refreshing the traffic keys midway; reads the echo back and compares.
async fn exchange<S>(tls: &mut tokio_rustls::TlsStream<S>, data: &[u8], key_updates: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sizes = pattern(64, 7);
    let (mut sent, mut got, mut i) = (0, Vec::with_capacity(data.len()), 0);
    let mut buf = vec![0; 64 << 10];
    while sent < data.len() {
        let size = match sizes[i % sizes.len()] % 4 {
            0 => 1 + usize::from(sizes[i % sizes.len()]),
            1 => 16 << 10,
            2 => 40 << 10,
            _ => 16_385,
        };
        i += 1;
        let end = (sent + size).min(data.len());
        if key_updates && i % 3 == 0 {
            match tls {
                tokio_rustls::TlsStream::Client(c) => c.get_mut().1.refresh_traffic_keys(),
                tokio_rustls::TlsStream::Server(s) => s.get_mut().1.refresh_traffic_keys(),
            }
            .unwrap();
        }
        tls.write_all(&data[sent..end]).await.unwrap();
        tls.flush().await.unwrap();
        sent = end;
        // Keep the echo flowing (the windows are finite).
        while got.len() + (128 << 10) < sent {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "early end of file");
            got.extend_from_slice(&buf[..n]);
        }
    }
    while got.len() < data.len() {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "early end of file");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == data, "echo differs");
}

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Our server, rustls's client: echo, then the client's `close_notify` ends it cleanly.
async fn server_round(cert: &Cert, suite: SupportedCipherSuite, key_updates: bool) {
    let ours = TlsServer::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = ours.accept(tcp).await.unwrap();
        echo(tls).await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = peer_client(cert, suite).connect(name, tcp).await.unwrap();
    let mut tls = tokio_rustls::TlsStream::Client(tls);
    let data = pattern(300_000, 1);
    exchange(&mut tls, &data, key_updates).await;
    tls.shutdown().await.unwrap();
    // Our side answers with its own close_notify: a clean end of file here.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    server.await.unwrap().unwrap();
}

/// Our client, rustls's server.
async fn client_round(cert: &Cert, suite: SupportedCipherSuite, key_updates: bool) {
    let acceptor = peer_server(cert, suite);
    let (listener, addr) = listener().await;
    let expected = pattern(300_000, 2);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut tls = tokio_rustls::TlsStream::Server(tls);
        exchange(&mut tls, &expected, key_updates).await;
        tls.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = our_client(cert).connect("localhost", tcp).await.unwrap();
    assert_eq!(tls.negotiated_cipher_suite().suite(), suite.suite());
    echo(tls).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn every_suite_interoperates_with_rustls_in_both_roles() {
    let cert = cert();
    for suite in suites() {
        bounded(server_round(&cert, suite, false)).await;
        bounded(client_round(&cert, suite, false)).await;
    }
}

#[tokio::test]
async fn key_updates_from_the_peer_are_followed_and_answered() {
    // rustls asks for our key update each time (update_requested): if we did not follow its
    // new key, or answered wrongly, the echo would fail to decrypt on one side or the other.
    let cert = cert();
    for suite in suites()
        .into_iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
    {
        bounded(server_round(&cert, suite, true)).await;
        bounded(client_round(&cert, suite, true)).await;
    }
}

/// Our server after a handshake with rustls's client; returns the raw TCP under the peer.
async fn raw_after_handshake(
    cert: &Cert,
    suite: SupportedCipherSuite,
) -> (
    tokio::task::JoinHandle<std::io::Result<usize>>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let ours = TlsServer::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // Bytes sent right after the client's Finished may reach rustls with it: then they
        // fail the handshake (an error all the same).
        let mut tls = ours.accept(tcp).await.map_err(std::io::Error::other)?;
        let mut buf = vec![0; 1024];
        tls.read(&mut buf).await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = peer_client(cert, suite).connect(name, tcp).await.unwrap();
    (server, tls)
}

/// What rustls found, inside an I/O error from our stream: a typed [`TlsError`] as its source
/// (after the handshake, or with it when the bad record came with the client's Finished).
fn connection_error(e: std::io::Error) -> rustls::Error {
    if let Some(TlsError::Connection(r)) = e.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) {
        return r.clone();
    }
    match e.get_ref().and_then(|e| e.downcast_ref::<tolqin::Error>()) {
        Some(tolqin::Error::Tls(tls)) => match &**tls {
            TlsError::Handshake { source, .. } => source.clone(),
            _ => panic!("not a TLS connection error: {e:?}"),
        },
        _ => panic!("not a TLS connection error: {e:?}"),
    }
}

/// Bytes written on the raw TCP under a peer after the handshake, each refused as rustls
/// refuses it.
type Expected = fn(&rustls::Error) -> bool;
fn bad_records() -> [(&'static str, Vec<u8>, Expected); 4] {
    use rustls::{Error as E, InvalidMessage};
    [
        (
            "forged",
            [&[23, 3, 3, 0, 40][..], &pattern(40, 3)].concat(),
            |e| *e == E::DecryptError,
        ),
        ("too short for a tag", vec![23, 3, 3, 0, 3, 1, 2, 3], |e| {
            *e == E::DecryptError
        }),
        // Longer than any TLS version allows (2^14 + 2048): refused from its header.
        ("oversized", vec![23, 3, 3, 0x48, 0x01], |e| {
            *e == E::InvalidMessage(InvalidMessage::MessageTooLarge)
        }),
        (
            "unprotected handshake record",
            vec![22, 3, 3, 0, 4, 24, 0, 0, 1],
            |e| {
                matches!(
                    e,
                    E::DecryptError | E::PeerMisbehaved(_) | E::InappropriateMessage { .. }
                )
            },
        ),
    ]
}

#[tokio::test]
async fn forged_oversized_and_misplaced_records_are_refused_with_an_alert() {
    let cert = cert();
    let cases = bad_records();
    for (name, bytes, expected) in cases {
        let (server, mut peer) =
            bounded(raw_after_handshake(&cert, cs::TLS13_AES_128_GCM_SHA256)).await;
        peer.get_mut().0.write_all(&bytes).await.unwrap();
        let err = bounded(server).await.unwrap().unwrap_err();
        let err = connection_error(err);
        assert!(expected(&err), "{name}: {err:?}");
        // The alert reached the peer: its read fails with it, not a bare end of file.
        let mut buf = [0; 64];
        let peer_err = bounded(peer.read(&mut buf)).await.unwrap_err();
        assert!(
            peer_err.to_string().contains("alert"),
            "{name}: the peer saw {peer_err}"
        );
    }
}

#[tokio::test]
async fn an_end_of_file_without_close_notify_is_an_error() {
    // A truncation attack must not look like a clean end.
    let cert = cert();
    let (server, mut peer) =
        bounded(raw_after_handshake(&cert, cs::TLS13_AES_128_GCM_SHA256)).await;
    peer.get_mut().0.shutdown().await.unwrap();
    let err = bounded(server).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn junk_after_the_handshake_is_an_error_never_a_panic_or_a_hang() {
    // Seeded junk: records with plausible and implausible headers, lengths past what TLS
    // allows, cut short; then the peer's end of file. Every case ends in an error.
    let cert = cert();
    for seed in 1..=40u64 {
        let noise = pattern(70_000, seed);
        let len = match noise[7] % 3 {
            0 => usize::from(noise[1]),
            1 => usize::from(u16::from_be_bytes([noise[1], noise[2]])) % 17_000,
            _ => usize::from(u16::from_be_bytes([noise[1], noise[2]])),
        };
        let kind = noise[0] % 4;
        let mut junk = match kind {
            0 => vec![23, 3, 3],
            1 => vec![noise[3], 3, 3],
            2 => vec![noise[3], noise[4], noise[5]],
            _ => vec![21, 3, 1],
        };
        junk.extend_from_slice(&(len as u16).to_be_bytes());
        junk.extend_from_slice(&noise[8..8 + len.min(noise[6] as usize * 300)]);
        let suite = if seed % 2 == 0 {
            cs::TLS13_CHACHA20_POLY1305_SHA256
        } else {
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        };
        let (server, mut peer) = bounded(raw_after_handshake(&cert, suite)).await;
        let raw = &mut peer.get_mut().0;
        let _ = raw.write_all(&junk).await;
        let _ = raw.shutdown().await;
        let result = bounded(server).await.expect("no panic");
        assert!(result.is_err(), "seed {seed}: {result:?}");
    }
}

#[tokio::test]
async fn a_websocket_reports_a_tls_failure_as_a_typed_error() {
    // Our wss:// server after the opening handshake; the peer forges a record. What `recv`
    // returns names the TLS failure without downcasting.
    let cert = cert();
    let ours = TlsServer::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tolqin::Acceptor::new()
            .accept_tls(&ours, tcp)
            .await
            .unwrap();
        ws.recv().await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut peer = peer_client(&cert, cs::TLS13_AES_128_GCM_SHA256)
        .connect(name, tcp)
        .await
        .unwrap();
    peer.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    peer.flush().await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        assert_eq!(bounded(peer.read(&mut byte)).await.unwrap(), 1);
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    let forged = [&[23, 3, 3, 0, 40][..], &pattern(40, 4)].concat();
    peer.get_mut().0.write_all(&forged).await.unwrap();
    let err = match bounded(server).await.unwrap() {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(
        matches!(
            err.tls_error(),
            Some(TlsError::Connection(rustls::Error::DecryptError))
        ),
        "{err:?}"
    );
}
