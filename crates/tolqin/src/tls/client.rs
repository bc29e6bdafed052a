//! The client side of TLS: which servers to trust.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ALPN_HTTP11, TlsError, TlsStream, pem, provider, stream};

/// A client's TLS setup: which servers it trusts. Cheap to clone.
///
/// [`Client::connect`](crate::Client::connect) uses [`TlsClient::new`] for `wss://` unless
/// given another with [`Client::tls`](crate::Client::tls).
///
/// ```no_run
/// # async fn run() -> tolqin::Result<()> {
/// use tolqin::{Client, tls::TlsClient};
/// // Trust a private CA (or a self-signed server certificate) besides the default roots:
/// let tls = TlsClient::builder().add_ca_file("dev-ca.pem")?.build()?;
/// let ws = Client::new("wss://localhost:9443/")?.tls(tls).connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts the default roots: the platform's (feature `native-roots`, on by default; it
    /// honours `SSL_CERT_FILE` and `SSL_CERT_DIR`) and/or the bundled Mozilla roots (feature
    /// `webpki-roots`). Built once per process and shared.
    ///
    /// # Errors
    /// [`TlsError::NoRoots`] when no root certificate could be found.
    pub fn new() -> Result<Self, TlsError> {
        static DEFAULT: OnceLock<TlsClient> = OnceLock::new();
        if let Some(client) = DEFAULT.get() {
            return Ok(client.clone());
        }
        let client = Self::builder().build()?;
        Ok(DEFAULT.get_or_init(|| client).clone())
    }

    /// A builder: default roots or not, custom CAs, or no verification (development only).
    pub fn builder() -> TlsClientBuilder {
        TlsClientBuilder::default()
    }

    /// A client with a rustls config built by hand (client certificates, a custom
    /// verifier, another crypto provider...), used as it is: rustls runs the handshake and
    /// protects the records with the config's provider. Set `alpn_protocols` to
    /// `[b"http/1.1"]` to offer ALPN as tolqin's own configs do.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        TlsClient { config }
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the TLS handshake over `io` for `host` (sent as SNI unless it is an IP address;
    /// the certificate must be valid for it).
    ///
    /// # Errors
    /// [`crate::Error::Tls`]: [`TlsError::InvalidServerName`], and for a certificate that
    /// does not verify [`TlsError::CertificateExpired`], [`TlsError::WrongHost`],
    /// [`TlsError::UnknownIssuer`], [`TlsError::InvalidCertificate`]; [`TlsError::NotTls`]
    /// when the server answers with something that is not TLS (a plain HTTP server);
    /// otherwise [`TlsError::Handshake`]. [`crate::Error::Io`] when the transport fails.
    pub async fn connect<S>(&self, host: &str, io: S) -> crate::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::InvalidServerName(host.to_string()))?;
        stream::connect(self.config.clone(), name, io, host)
            .await
            .map_err(|e| not_tls(e, host))
    }
}

/// A handshake that failed on the server's first bytes not being a TLS record (rustls finds
/// no content type or version it knows): the server does not speak TLS.
fn not_tls(e: crate::Error, host: &str) -> crate::Error {
    use rustls::{Error as RustlsError, InvalidMessage};
    match e {
        crate::Error::Tls(tls) => match *tls {
            TlsError::Handshake {
                source:
                    source @ RustlsError::InvalidMessage(
                        InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
                    ),
                ..
            } => TlsError::NotTls {
                host: host.to_string(),
                source,
            }
            .into(),
            tls => crate::Error::Tls(Box::new(tls)),
        },
        e => e,
    }
}

/// Builds a [`TlsClient`].
#[derive(Debug, Clone)]
pub struct TlsClientBuilder {
    default_roots: bool,
    cas: Vec<CertificateDer<'static>>,
    skip_verification: bool,
}

impl Default for TlsClientBuilder {
    fn default() -> Self {
        TlsClientBuilder {
            default_roots: true,
            cas: Vec::new(),
            skip_verification: false,
        }
    }
}

impl TlsClientBuilder {
    /// Whether to trust the default roots as well (default: yes). With `false`, only the CAs
    /// added here are trusted.
    pub fn default_roots(mut self, yes: bool) -> Self {
        self.default_roots = yes;
        self
    }

    /// Trusts the certificates of a PEM file: a private CA, or a self-signed server
    /// certificate such as the one `tolqin echo --tls-self-signed` writes.
    ///
    /// # Errors
    /// [`TlsError::ReadFile`], [`TlsError::NoCertificate`], [`TlsError::Pem`],
    /// [`TlsError::BadCertificate`].
    pub fn add_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let pem = pem::read(path, "CA certificate")?;
        self.add_ca_pem_from(&pem, &path.display().to_string())
    }

    /// Trusts the certificates of PEM text.
    ///
    /// # Errors
    /// [`TlsError::NoCertificate`], [`TlsError::Pem`], [`TlsError::BadCertificate`].
    pub fn add_ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        self.add_ca_pem_from(pem, "CA certificate PEM")
    }

    fn add_ca_pem_from(mut self, pem: &[u8], origin: &str) -> Result<Self, TlsError> {
        let certs = pem::certificates(pem, origin)?;
        // Reject now what the root store would reject at build time.
        let mut check = RootCertStore::empty();
        for cert in &certs {
            check
                .add(cert.clone())
                .map_err(|e| TlsError::BadCertificate {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                })?;
        }
        self.cas.extend(certs);
        Ok(self)
    }

    /// **Development only**: accepts any server certificate — expired, self-signed, for
    /// another host — so anyone on the path can read and change the traffic. Handshake
    /// signatures are still checked. Logs a warning when the client is built.
    pub fn danger_skip_verification_for_development(mut self) -> Self {
        self.skip_verification = true;
        self
    }

    /// Builds the client config: TLS 1.2 and 1.3, ALPN `http/1.1`, the `ring` provider.
    ///
    /// # Errors
    /// [`TlsError::NoRoots`] when verification is on and no root is trusted,
    /// [`TlsError::Config`].
    pub fn build(self) -> Result<TlsClient, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let mut config = if self.skip_verification {
            tracing::warn!("TLS certificate verification is off: for development only");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            let why_none = if self.default_roots {
                add_default_roots(&mut roots)
            } else {
                vec!["default roots off".to_string()]
            };
            let (_, _) = roots.add_parsable_certificates(self.cas);
            if roots.is_empty() {
                return Err(TlsError::NoRoots(format!(
                    "{}; add a CA file, or build tolqin with the `webpki-roots` feature",
                    why_none.join("; ")
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(TlsClient::from_config(Arc::new(config)))
    }
}

/// Adds the default roots; returns why some could not be found.
#[allow(unused_mut, unused_variables, clippy::vec_init_then_push)]
fn add_default_roots(roots: &mut RootCertStore) -> Vec<String> {
    let mut why_none = Vec::new();
    #[cfg(feature = "native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            why_none.push(format!(
                "no platform root certificates found{}",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join(", "))
                }
            ));
        }
    }
    #[cfg(feature = "webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(not(any(feature = "native-roots", feature = "webpki-roots")))]
    why_none.push("built without the `native-roots` and `webpki-roots` features".to_string());
    why_none
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
