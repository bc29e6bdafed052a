//! [`ChatServer`]: binds, serves the page and the sockets, and stops cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tolqin::Options;
use tolqin::proto::deflate::DeflateConfig;

use crate::config::ChatConfig;
use crate::metrics::Metrics;
use crate::room::Room;
use crate::session::Sessions;
use crate::{ChatError, http};

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) config: ChatConfig,
    pub(crate) room: Arc<Room>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) sessions: Sessions,
    pub(crate) options: Options,
    pub(crate) shutdown: CancellationToken,
}

/// The chat server: the page at `/`, the room at `/ws`, the hello demo at `/hello` and
/// `/demo`, `/healthz` and `/metrics`.
///
/// ```no_run
/// # async fn run() -> Result<(), tolqin_chat::ChatError> {
/// use tolqin_chat::{ChatConfig, ChatServer};
/// let server = ChatServer::bind(ChatConfig::default()).await?;
/// println!("listening on {}", server.ws_url());
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct ChatServer {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ChatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The permessage-deflate settings of the room: the server never keeps a compression
/// context, so one compressed frame per broadcast serves every client.
pub fn room_deflate(enabled: bool) -> DeflateConfig {
    DeflateConfig::default()
        .with_enabled(enabled)
        .with_no_context_takeover(false, true)
}

impl ChatServer {
    /// Checks `config` and binds its address.
    ///
    /// # Errors
    /// [`ChatError::Config`] for options that cannot work, [`ChatError::Bind`].
    pub async fn bind(config: ChatConfig) -> Result<Self, ChatError> {
        config.check()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ChatError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Self::with_listener(config, listener)
    }

    /// Checks `config` and serves on `listener`, bound by the caller (to the first address a
    /// host name resolves to, say); [`ChatConfig::listen`] is set to its address.
    ///
    /// # Errors
    /// [`ChatError::Config`] for options that cannot work, [`ChatError::Io`] if the
    /// listener's address cannot be read.
    pub fn with_listener(mut config: ChatConfig, listener: TcpListener) -> Result<Self, ChatError> {
        config.check()?;
        let addr = listener.local_addr()?;
        config.listen = addr;
        let metrics = Arc::new(Metrics::default());
        let deflate = room_deflate(config.deflate);
        let mut protocol = tolqin::proto::Config::default().with_deflate(deflate.clone());
        // Messages over the chat's own limit get an error reply; far over it, the protocol
        // closes with 1009 before buffering them.
        let hard_limit = (config.max_message_size.saturating_mul(4)).max(64 << 10);
        protocol.max_message_size = hard_limit;
        protocol.max_frame_size = hard_limit;
        let options = Options::default()
            .with_protocol(protocol)
            .with_handshake_timeout(config.handshake_timeout)
            .with_close_timeout(config.close_timeout)
            // Writes are bounded by the room's queue; this is the last line of defence.
            .with_max_write_buffer(8 << 20);
        let room = Arc::new(Room::new(
            config.history,
            config.client_queue,
            deflate,
            metrics.clone(),
        ));
        let shared = Arc::new(Shared {
            sessions: Sessions::new(config.sessions),
            config,
            room,
            metrics,
            options,
            shutdown: CancellationToken::new(),
        });
        Ok(ChatServer {
            listener,
            addr,
            shared,
        })
    }

    /// The address it listens on (with the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR:PORT`, or `wss://` with TLS: the ready line's URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The page's URL, `http://` or `https://` (an unspecified address shown as loopback).
    pub fn page_url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("{scheme}://{addr}/")
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every socket (1001)
    /// and returns when they are closed or the close timeout has passed.
    ///
    /// # Errors
    /// None so far: failed accepts (out of descriptors...) are logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ChatError> {
        let ChatServer {
            listener, shared, ..
        } = self;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tokio::spawn(connection(tcp, peer, shared.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        shared.shutdown.cancel();
        shared.room.close();
        let grace = shared.config.close_timeout + std::time::Duration::from_millis(500);
        if !shared.room.wait_idle(grace).await {
            tracing::warn!("some chat clients did not close in time");
        }
        Ok(())
    }
}

async fn connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    if let Some(bytes) = shared.config.send_buffer {
        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes);
    }
    match &shared.config.tls {
        None => http::serve(tcp, shared, false).await,
        Some(tls) => {
            let timeout = shared.config.handshake_timeout;
            match tokio::time::timeout(timeout, tls.accept(tcp)).await {
                Ok(Ok(stream)) => http::serve(stream, shared, true).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}
