//! [`ChatServer`]: binds, serves the page and the sockets, and stops cleanly.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tolqin::proto::deflate::DeflateConfig;
use tolqin::{Acceptor, Options};

use crate::config::ChatConfig;
use crate::http::{Hosts, Listener};
use crate::metrics::Metrics;
use crate::room::Room;
use crate::session::Sessions;
use crate::{ChatError, http};

/// Connections over a limit being answered 503 at once; past this, they are just closed.
const MAX_REFUSING: usize = 256;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) config: ChatConfig,
    pub(crate) room: Arc<Room>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) sessions: Sessions,
    pub(crate) shutdown: CancellationToken,
    /// The `Host` names of the public listener.
    pub(crate) hosts: Hosts,
    /// `/ws` and `/hello`'s.
    pub(crate) acceptors: [Acceptor; 2],
    limits: Arc<Limits>,
    refusing: Arc<Semaphore>,
}

/// Which connection limit refused a connection.
#[derive(Debug, Clone, Copy)]
enum Over {
    Total,
    PerIp,
}

/// The open TCP connections, in all and per IP address (IPv6: per /64, what one host
/// usually has).
#[derive(Debug)]
struct Limits {
    max: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    metrics: Arc<Metrics>,
}

/// A connection's place in the limits, freed when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !0u128 << 64).into()),
        },
    }
}

impl Limits {
    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Over> {
        let ip = ip_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        if *total >= self.max {
            return Err(Over::Total);
        }
        let mine = per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err(Over::PerIp);
        }
        *mine += 1;
        *total += 1;
        drop(open);
        Metrics::add(&self.metrics.tcp_connections, 1);
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_ip.get_mut(&self.ip) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_ip.remove(&self.ip);
            }
        }
        drop(open);
        Metrics::sub(&self.limits.metrics.tcp_connections, 1);
    }
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
    /// `--metrics-listen`'s, bound; made a tokio listener in `run`.
    metrics_listener: Option<(std::net::TcpListener, SocketAddr)>,
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
    /// listener's address cannot be read, [`ChatError::Bind`] for
    /// [`ChatConfig::metrics_listen`].
    pub fn with_listener(mut config: ChatConfig, listener: TcpListener) -> Result<Self, ChatError> {
        config.check()?;
        let addr = listener.local_addr()?;
        config.listen = addr;
        let metrics_listener = match config.metrics_listen {
            Some(at) => {
                let bind = |at| -> std::io::Result<_> {
                    let listener = std::net::TcpListener::bind(at)?;
                    listener.set_nonblocking(true)?;
                    let addr = listener.local_addr()?;
                    Ok((listener, addr))
                };
                Some(bind(at).map_err(|source| ChatError::Bind { addr: at, source })?)
            }
            None => None,
        };
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
            .with_max_write_buffer(8 << 20)
            // Keepalive and idle timeout: a peer that answers no ping is dropped.
            .with_ping_interval(config.ping_interval);
        let room = Arc::new(
            Room::new(
                config.history,
                config.client_queue,
                deflate,
                metrics.clone(),
            )
            .with_rate(config.room_rate, config.room_burst),
        );
        let sessions = match &config.session_key {
            Some(key) => Sessions::new(key, config.session_max_age),
            None => Sessions::random(config.session_max_age),
        };
        let hosts = Hosts::new(addr, &config.allow_hosts, config.tls.is_some());
        if hosts.is_open() {
            tracing::warn!(
                %addr,
                "listening on a wildcard address with no --allow-host/--public-url: any Host \
                 is accepted, so DNS rebinding protection is off; name the hosts to turn it on"
            );
        }
        let limits = Arc::new(Limits {
            max: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            open: Mutex::new((0, HashMap::new())),
            metrics: metrics.clone(),
        });
        let shared = Arc::new(Shared {
            acceptors: http::acceptors(
                sessions.clone(),
                options,
                http::Origins {
                    hosts: hosts.clone(),
                    allow: config.allow_origins.clone(),
                    tls: config.tls.is_some(),
                },
            ),
            sessions,
            config,
            room,
            metrics,
            shutdown: CancellationToken::new(),
            hosts,
            limits,
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        });
        Ok(ChatServer {
            listener,
            addr,
            shared,
            metrics_listener,
        })
    }

    /// The address of the metrics listener ([`ChatConfig::metrics_listen`]), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
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
            listener,
            shared,
            metrics_listener,
            ..
        } = self;
        if let Some((metrics_listener, metrics_addr)) = metrics_listener {
            let metrics_listener = TcpListener::from_std(metrics_listener)?;
            let shared = shared.clone();
            // Its own Host check: its address (and the allowed names).
            let hosts = Hosts::new(metrics_addr, &shared.config.allow_hosts, false);
            let metrics_shared = Arc::new(Shared {
                config: shared.config.clone(),
                room: shared.room.clone(),
                metrics: shared.metrics.clone(),
                sessions: shared.sessions.clone(),
                shutdown: shared.shutdown.clone(),
                hosts,
                acceptors: shared.acceptors.clone(),
                limits: shared.limits.clone(),
                refusing: shared.refusing.clone(),
            });
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        accepted = metrics_listener.accept() => match accepted {
                            Ok((tcp, peer)) => {
                                tokio::spawn(connection(tcp, peer, metrics_shared.clone(), Listener::Metrics));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "metrics accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                        },
                        () = metrics_shared.shutdown.cancelled() => break,
                    }
                }
            });
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tokio::spawn(connection(tcp, peer, shared.clone(), Listener::Public));
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

async fn connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>, listener: Listener) {
    let _ = tcp.set_nodelay(true);
    let permit = match shared.limits.try_acquire(peer.ip()) {
        Ok(permit) => Arc::new(permit),
        Err(over) => {
            let (counter, why) = match over {
                Over::Total => (
                    &shared.metrics.refused_total_limit,
                    "too many connections: try again later\n",
                ),
                Over::PerIp => (
                    &shared.metrics.refused_per_ip_limit,
                    "too many connections from your address: try again later\n",
                ),
            };
            Metrics::add(counter, 1);
            tracing::debug!(%peer, ?over, "connection over the limits refused");
            // A bounded number of 503s at once; a flood past it is just closed.
            let Ok(_refusing) = shared.refusing.clone().try_acquire_owned() else {
                return;
            };
            match (&shared.config.tls, listener) {
                (Some(tls), Listener::Public) => {
                    let timeout = std::time::Duration::from_secs(2);
                    if let Ok(Ok(stream)) = tokio::time::timeout(timeout, tls.accept(tcp)).await {
                        http::refuse(stream, why).await;
                    }
                }
                _ => http::refuse(tcp, why).await,
            }
            return;
        }
    };
    if let Some(bytes) = shared.config.send_buffer {
        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes);
    }
    match (&shared.config.tls, listener) {
        (None, _) | (_, Listener::Metrics) => {
            http::serve(tcp, shared, false, listener, permit).await;
        }
        (Some(tls), Listener::Public) => {
            let timeout = shared.config.handshake_timeout;
            match tokio::time::timeout(timeout, tls.accept(tcp)).await {
                Ok(Ok(stream)) => http::serve(stream, shared, true, listener, permit).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}
