//! TLS for `wss://`, by rustls (with its `ring` provider): the handshake and the records.
//!
//! - Servers: a [`TlsServer`] built from PEM files (or PEM in memory), one certificate or
//!   several chosen by SNI, ALPN `http/1.1`; [`Acceptor::accept_tls`](crate::Acceptor::accept_tls)
//!   runs the TLS handshake and the WebSocket handshake within the one handshake timeout.
//! - Clients: [`Client::connect`](crate::Client::connect) speaks TLS for `wss://` URLs, with the
//!   default roots (feature `native-roots`: the platform's, honouring `SSL_CERT_FILE` and
//!   `SSL_CERT_DIR`; feature `webpki-roots`: the Mozilla roots bundled at build time) or a
//!   [`TlsClient`] of your own: a custom CA, no default roots, or — for development only —
//!   no verification at all.
//!
//! The crypto provider (`ring`) is passed to every config this module builds, so no
//! process-level default provider is needed and rustls never panics for want of one.
//!
//! The records are protected by rustls's own record layer, through tokio-rustls
//! ([`TlsStream`]), with rustls's checks and limits: key updates (answered, and ours before
//! the cipher suite's limit), alerts, `close_notify` as end of file and an end without it as
//! an error, bounded buffers. A TLS failure after the handshake is reachable as a
//! [`TlsError`] through [`Error::tls_error`](crate::Error::tls_error). A hand-built config is
//! used as it is, its crypto provider included (a FIPS one, say).
//!
//! Earlier versions sealed and opened the records themselves, with `ring`, after taking the
//! keys from rustls: about 13% less server CPU for a 16 KiB echo, nothing measurable at 20 B,
//! and none of the protections rustls has beyond the cryptography. That layer is gone; the
//! figures are in BENCHMARKS.md ("wss://").
//!
//! ```no_run
//! # async fn run() -> tolqin::Result<()> {
//! use tolqin::{Acceptor, tls::TlsServer};
//! let tls = TlsServer::from_pem_files("cert.pem", "key.pem")?;
//! let acceptor = Acceptor::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
//! let (tcp, _) = listener.accept().await?;
//! let mut ws = acceptor.accept_tls(&tls, tcp).await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod pem;
mod read_ahead;
mod server;
mod stream;

use std::sync::Arc;

pub use client::{TlsClient, TlsClientBuilder};
pub use error::TlsError;
pub use server::{TlsServer, TlsServerBuilder};
pub use stream::TlsStream;

/// The rustls crate this build uses, for configs built by hand
/// ([`TlsServer::from_config`], [`TlsClient::from_config`]).
pub use rustls;

/// ALPN protocol a WebSocket handshake runs over (RFC 6455 4.1: an HTTP/1.1 upgrade).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every config here is built with: `ring`, passed explicitly, with the
/// AES-128-GCM suites first: as safe for TLS as AES-256-GCM (and what browsers prefer), and
/// about a third less CPU per byte, which is most of what TLS adds to a large message. Key
/// exchange offers X25519 first (rustls 0.23.48 moved P-384 first in `ring`'s defaults: a
/// slower key share on every handshake for no gain here).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS13_AES_128_GCM_SHA256,
    };
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut provider = ring_provider();
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// rustls's `ring` provider as rustls defines it. rustls 0.23.48 deprecates
/// `crypto::ring::default_provider` because `ring` has no post-quantum key exchange, and
/// names no replacement: rustls 0.23 has no other `ring` provider (the separate
/// `rustls-ring` crate is for rustls 0.24), and `aws-lc-rs`, which has one, is a C build this
/// crate avoids. So the one call is kept here, with the deprecation allowed, until tolqin moves to rustls 0.24.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(test)]
mod tests {
    use rustls::NamedGroup;

    /// Whatever order rustls's defaults take, our configs share an X25519 key first and prefer
    /// the AES-128-GCM suites.
    #[test]
    fn provider_prefers_x25519_and_aes_128_gcm() {
        let provider = super::provider();
        let groups: Vec<NamedGroup> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
        assert_eq!(
            provider.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }
}
