//! TLS options of every server that takes `--listen`: add `#[command(flatten)] tls: TlsArgs`
//! to its arguments, call [`TlsArgs::server`] before binding, print
//! `listening on {scheme}://ADDR` with [`TlsArgs::scheme`].

use std::io::{self, Write};
use std::path::PathBuf;

use base64::Engine;
use sha2::{Digest, Sha256};
use tolqin::tls::TlsServer;

/// `--tls-cert FILE --tls-key FILE` (repeatable: several certificates chosen by SNI) or
/// `--tls-self-signed`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve wss:// with this PEM certificate chain (end entity first), with --tls-key.
    /// Repeat --tls-cert/--tls-key pairs to serve several names (chosen by SNI; the first
    /// pair is the default).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Vec<PathBuf>,
    /// The PEM private key of the --tls-cert in the same position.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Vec<PathBuf>,
    /// Serve wss:// with a development certificate made now for localhost, 127.0.0.1 and ::1.
    /// Prints the certificate's file (trust it with SSL_CERT_FILE, NODE_EXTRA_CA_CERTS...)
    /// and its SHA-256 SPKI hash (for Chromium's --ignore-certificate-errors-spki-list).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
}

/// A server's TLS, and the development certificate file to remove when it stops.
#[derive(Debug)]
pub struct ServerTls {
    /// The TLS setup to accept with.
    pub tls: TlsServer,
    self_signed_file: Option<PathBuf>,
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        if let Some(path) = &self.self_signed_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl TlsArgs {
    /// Whether TLS is on.
    pub fn enabled(&self) -> bool {
        self.tls_self_signed || !self.tls_cert.is_empty()
    }

    /// `wss` with TLS, else `ws`.
    pub fn scheme(&self) -> &'static str {
        if self.enabled() { "wss" } else { "ws" }
    }

    /// The TLS setup these options ask for (`None`: plain `ws://`). With `--tls-self-signed`
    /// it writes `certificate: PATH` and `spki-sha256: HASH` lines to `out`: print them before
    /// the ready line.
    ///
    /// # Errors
    /// A certificate or key that cannot be used (the message says which file and why), or the
    /// development certificate cannot be written.
    pub fn server(&self, out: &mut impl Write) -> io::Result<Option<ServerTls>> {
        if self.tls_self_signed {
            return self_signed(out).map(Some);
        }
        if self.tls_cert.is_empty() {
            return Ok(None);
        }
        if self.tls_cert.len() != self.tls_key.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} --tls-cert but {} --tls-key: give them in pairs",
                    self.tls_cert.len(),
                    self.tls_key.len()
                ),
            ));
        }
        let mut builder = TlsServer::builder();
        for (cert, key) in self.tls_cert.iter().zip(&self.tls_key) {
            builder = builder.cert_files(cert, key).map_err(io::Error::other)?;
        }
        let tls = builder.build().map_err(io::Error::other)?;
        Ok(Some(ServerTls {
            tls,
            self_signed_file: None,
        }))
    }
}

/// Makes a certificate for localhost, writes it to a file named on `out` with its SPKI hash.
fn self_signed(out: &mut impl Write) -> io::Result<ServerTls> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(io::Error::other)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tolqin development certificate");
    let cert = params.self_signed(&key).map_err(io::Error::other)?;
    let cert_pem = cert.pem();
    let tls = TlsServer::from_pem(cert_pem.as_bytes(), key.serialize_pem().as_bytes())
        .map_err(io::Error::other)?;
    let path = std::env::temp_dir().join(format!("tolqin-self-signed-{}.pem", std::process::id()));
    std::fs::write(&path, &cert_pem)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))?;
    let spki = spki_sha256(&rcgen::PublicKeyData::subject_public_key_info(&key));
    writeln!(out, "certificate: {}", path.display())?;
    writeln!(out, "spki-sha256: {spki}")?;
    Ok(ServerTls {
        tls,
        self_signed_file: Some(path),
    })
}

/// The base64 SHA-256 of a DER SubjectPublicKeyInfo: what Chromium's
/// `--ignore-certificate-errors-spki-list` takes.
pub fn spki_sha256(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
}
