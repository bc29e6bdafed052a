//! What can go wrong with TLS, in words a user can act on.

use std::path::PathBuf;

use rustls::{CertificateError, Error as RustlsError};

/// A TLS failure: loading certificates and keys, the TLS handshake, or the connection after it.
///
/// Reached through [`Error::Tls`](crate::Error::Tls), or for a failure after the handshake
/// through [`Error::tls_error`](crate::Error::tls_error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read the {what} file {}: {source}", path.display())]
    ReadFile {
        /// `"certificate"`, `"private key"` or `"CA certificate"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM text holds no `CERTIFICATE` block.
    #[error("{origin}: no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)")]
    NoCertificate {
        /// The file (or `"certificate PEM"` for PEM in memory).
        origin: String,
    },
    /// The PEM text holds no private key block.
    #[error(
        "{origin}: no PEM private key found (expected a -----BEGIN PRIVATE KEY-----, \
         RSA PRIVATE KEY or EC PRIVATE KEY block)"
    )]
    NoPrivateKey {
        /// The file (or `"private key PEM"` for PEM in memory).
        origin: String,
    },
    /// The PEM text is malformed.
    #[error("{origin}: malformed PEM: {source}")]
    Pem {
        /// The file or in-memory source.
        origin: String,
        /// What the PEM parser found.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate could not be parsed as X.509.
    #[error("{origin}: not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// The file or in-memory source.
        origin: String,
        /// What the parser found.
        reason: String,
    },
    /// The private key is of a kind the `ring` provider does not support, or malformed.
    #[error("{origin}: unusable private key: {source}")]
    UnsupportedKey {
        /// The file or in-memory source.
        origin: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The private key is not the key of the certificate it was paired with.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert: String,
        /// Where the key came from.
        key: String,
    },
    /// A client has no root certificate to verify servers with.
    #[error("no trusted root certificates: {0}")]
    NoRoots(String),
    /// The URL's host is not a valid TLS server name.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// The server's certificate has expired.
    #[error("the certificate of {host} has expired{when}")]
    CertificateExpired {
        /// The host the client connected to.
        host: String,
        /// When, in words (`" (not valid after 2001-01-01 00:00:00 UTC)"`), or empty.
        when: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The server's certificate is not valid yet (or the clock is wrong).
    #[error("the certificate of {host} is not valid yet{when}")]
    CertificateNotYetValid {
        /// The host the client connected to.
        host: String,
        /// When it becomes valid, in words, or empty.
        when: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The server's certificate is for other names than the host connected to.
    #[error("the certificate presented by {host} is not valid for that name: {source}")]
    WrongHost {
        /// The host the client connected to.
        host: String,
        /// What rustls said (with the names the certificate is valid for).
        source: RustlsError,
    },
    /// The server's certificate is not signed by any trusted root.
    #[error(
        "the certificate of {host} is not signed by a trusted certificate authority \
         (self-signed, or issued by a private CA? trust that certificate or CA with \
         Client::tls(TlsClient::builder().add_ca_file(PATH)?.build()?), or add_ca_pem(PEM) \
         for PEM in memory)"
    )]
    UnknownIssuer {
        /// The host the client connected to.
        host: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The server's certificate is invalid for another reason (revoked, bad signature...).
    #[error("the certificate of {host} is invalid: {source}")]
    InvalidCertificate {
        /// The host the client connected to.
        host: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The TLS handshake failed for another reason (the peer refused our certificate, no
    /// protocol version or cipher suite in common, the peer does not speak TLS...).
    #[error("TLS handshake with {peer} failed: {source}")]
    Handshake {
        /// The host connected to, or the peer address on a server.
        peer: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// The server answered the TLS handshake with something that is not TLS (a plain HTTP
    /// server answers `HTTP/1.1 400`): it does not speak TLS on this port, so the URL should
    /// be `ws://`.
    #[error(
        "{host} does not speak TLS (it answered the TLS handshake with something else, such \
         as plain HTTP): for a server without TLS, use ws:// instead of wss://"
    )]
    NotTls {
        /// The host the client connected to (with the port, from
        /// [`Client::connect`](crate::Client::connect)).
        host: String,
        /// What rustls said.
        source: RustlsError,
    },
    /// A `ws://` client's handshake request was answered with TLS (an alert or a handshake
    /// record): the server expects TLS, so the URL should be `wss://`.
    #[error("{target} answered with TLS: it expects a TLS connection; use wss:// instead of ws://")]
    ExpectsTls {
        /// `host:port`.
        target: String,
    },
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(RustlsError),
    /// After the handshake, rustls ended the connection: the peer broke the TLS protocol (a
    /// record that does not authenticate, is too long or out of place; key updates asked for
    /// without end) or sent a fatal alert. rustls sent the peer the alert for what it found.
    /// Reached as the source of an I/O error of the stream: see
    /// [`Error::tls_error`](crate::Error::tls_error).
    #[error("TLS connection failed: {0}")]
    Connection(RustlsError),
}

/// Turns an error of a TLS handshake into a typed one: certificate problems get their own
/// variants.
pub(crate) fn handshake_error(tls: &RustlsError, peer: &str) -> crate::Error {
    let host = peer.to_string();
    let source = tls.clone();
    let e = match tls {
        RustlsError::InvalidCertificate(cert) => match cert {
            CertificateError::Expired => TlsError::CertificateExpired {
                host,
                when: String::new(),
                source,
            },
            CertificateError::ExpiredContext { not_after, .. } => TlsError::CertificateExpired {
                host,
                when: format!(" (not valid after {})", utc(not_after.as_secs())),
                source,
            },
            CertificateError::NotValidYet => TlsError::CertificateNotYetValid {
                host,
                when: String::new(),
                source,
            },
            CertificateError::NotValidYetContext { not_before, .. } => {
                TlsError::CertificateNotYetValid {
                    host,
                    when: format!(" (not valid before {})", utc(not_before.as_secs())),
                    source,
                }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsError::WrongHost { host, source }
            }
            CertificateError::UnknownIssuer => TlsError::UnknownIssuer { host, source },
            _ => TlsError::InvalidCertificate { host, source },
        },
        _ => TlsError::Handshake { peer: host, source },
    };
    crate::Error::Tls(Box::new(e))
}

/// RFC 3339 (`2001-01-01T00:00:00Z`) for seconds since the Unix epoch. Certificate times end
/// at 9999-12-31 (X.509's four-digit years); clamped there, so no input can reach humantime's
/// range check.
fn utc(secs: u64) -> String {
    const END_OF_9999: u64 = 253_402_300_799;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.min(END_OF_9999));
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(978_307_200), "2001-01-01T00:00:00Z");
        assert_eq!(utc(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(utc(u64::MAX), "9999-12-31T23:59:59Z");
    }
}
