//! The server side of TLS: certificates from PEM, chosen by SNI, ALPN `http/1.1`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ALPN_HTTP11, TlsError, TlsStream, pem, provider, stream};

/// A server's TLS setup: its certificates and keys, ready to accept connections. Cheap to
/// clone; build once and share among connections.
///
/// ```no_run
/// # fn run() -> Result<(), tolqin::tls::TlsError> {
/// use tolqin::tls::TlsServer;
/// // One certificate:
/// let tls = TlsServer::from_pem_files("fullchain.pem", "privkey.pem")?;
/// // Several, chosen by the name the client asks for (SNI); the first is the default:
/// let tls = TlsServer::builder()
///     .cert_files("a.example.pem", "a.example.key")?
///     .cert_files("b.example.pem", "b.example.key")?
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

impl TlsServer {
    /// One certificate chain (PEM, the end entity first) and its private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`TlsError::ReadFile`], [`TlsError::NoCertificate`], [`TlsError::NoPrivateKey`],
    /// [`TlsError::Pem`], [`TlsError::BadCertificate`], [`TlsError::UnsupportedKey`],
    /// [`TlsError::KeyMismatch`] when the key is not the certificate's.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::builder().cert_files(cert, key)?.build()
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text in memory.
    ///
    /// # Errors
    /// As [`from_pem_files`](Self::from_pem_files), without `ReadFile`.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Self::builder().cert_pem(cert_pem, key_pem)?.build()
    }

    /// A builder for several certificates.
    pub fn builder() -> TlsServerBuilder {
        TlsServerBuilder::default()
    }

    /// A server with a rustls config built by hand (client certificates, session tickets...).
    /// Set `alpn_protocols` to `[b"http/1.1"]` so ALPN-speaking clients agree on HTTP/1.1.
    /// The config is used as it is: rustls runs the handshake and protects the records with
    /// the config's crypto provider.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        TlsServer { config }
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the TLS handshake on an accepted stream, with no timeout of its own (use
    /// [`Acceptor::accept_tls`](crate::Acceptor::accept_tls) to bound the TLS and WebSocket
    /// handshakes together).
    ///
    /// # Errors
    /// [`crate::Error::Tls`] ([`TlsError::Handshake`]: the client refused our certificate,
    /// speaks no TLS, shares no protocol version...), [`crate::Error::Io`].
    pub async fn accept<S>(&self, io: S) -> crate::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        stream::accept(self.config.clone(), io, "the client").await
    }
}

/// Builds a [`TlsServer`] with one or more certificates. With several, the one valid for the
/// name the client sends (SNI) is chosen; the first one is used when none matches or the
/// client sends no name (as when it connects to an IP address).
#[derive(Default)]
pub struct TlsServerBuilder {
    certs: Vec<Arc<CertifiedKey>>,
}

impl fmt::Debug for TlsServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerBuilder")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl TlsServerBuilder {
    /// Adds a certificate chain and its key from PEM files.
    ///
    /// # Errors
    /// As [`TlsServer::from_pem_files`].
    pub fn cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cert_pem = pem::read(cert, "certificate")?;
        let key_pem = pem::read(key, "private key")?;
        let chain = pem::certificates(&cert_pem, &cert.display().to_string())?;
        let key_der = pem::private_key(&key_pem, &key.display().to_string())?;
        self.add(
            chain,
            key_der,
            cert.display().to_string(),
            key.display().to_string(),
        )
    }

    /// Adds a certificate chain and its key from PEM text.
    ///
    /// # Errors
    /// As [`TlsServer::from_pem`].
    pub fn cert_pem(self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain = pem::certificates(cert_pem, "certificate PEM")?;
        let key = pem::private_key(key_pem, "private key PEM")?;
        self.add(
            chain,
            key,
            "certificate PEM".into(),
            "private key PEM".into(),
        )
    }

    /// Adds a certificate chain and its key, DER-encoded.
    ///
    /// # Errors
    /// [`TlsError::NoCertificate`] for an empty chain, [`TlsError::UnsupportedKey`],
    /// [`TlsError::BadCertificate`], [`TlsError::KeyMismatch`].
    pub fn cert_der(
        self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                origin: "certificate chain".into(),
            });
        }
        self.add(chain, key, "certificate chain".into(), "private key".into())
    }

    fn add(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_origin: String,
        key_origin: String,
    ) -> Result<Self, TlsError> {
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::UnsupportedKey {
                origin: key_origin.clone(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // A key that cannot tell its public half is checked by the first handshake.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(TlsError::KeyMismatch {
                    cert: cert_origin,
                    key: key_origin,
                });
            }
            Err(e) => {
                return Err(TlsError::BadCertificate {
                    origin: cert_origin,
                    reason: e.to_string(),
                });
            }
        }
        self.certs.push(Arc::new(certified));
        Ok(self)
    }

    /// Builds the server config: TLS 1.2 and 1.3, ALPN `http/1.1`, the `ring` provider.
    ///
    /// # Errors
    /// [`TlsError::NoCertificate`] when no certificate was added, [`TlsError::Config`].
    pub fn build(self) -> Result<TlsServer, TlsError> {
        if self.certs.is_empty() {
            return Err(TlsError::NoCertificate {
                origin: "TlsServer::builder()".into(),
            });
        }
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni { certs: self.certs }));
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        // Our suite order (AES-128-GCM first, see `provider`) over the client's.
        config.ignore_client_order = true;
        Ok(TlsServer::from_config(Arc::new(config)))
    }
}

/// Chooses the first certificate valid for the client's SNI name, else the first one.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.certs.len() > 1
            && let Some(name) = hello
                .server_name()
                .and_then(|n| ServerName::try_from(n).ok())
        {
            let valid = |c: &&Arc<CertifiedKey>| {
                c.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
            };
            if let Some(cert) = self.certs.iter().find(valid) {
                return Some(cert.clone());
            }
        }
        self.certs.first().cloned()
    }
}
