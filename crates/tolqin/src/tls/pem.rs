//! Reading certificates and keys from PEM, with errors that name the file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Reads a whole file; `what` names it in the error.
pub(super) fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every `CERTIFICATE` block, in order (a chain: the end entity first); at least one.
pub(super) fn certificates(
    pem: &[u8],
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            origin: origin.to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            origin: origin.to_string(),
        });
    }
    for cert in &certs {
        webpki::EndEntityCert::try_from(cert).map_err(|e| TlsError::BadCertificate {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// The first private key block (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            origin: origin.to_string(),
        },
        source => TlsError::Pem {
            origin: origin.to_string(),
            source,
        },
    })
}
