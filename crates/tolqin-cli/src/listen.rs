//! `--listen HOST:PORT` of the servers: an IP address or a host name, bound to the first of its
//! addresses that works, and an error that names the address and what to do.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;

use tokio::net::TcpListener;

/// What `--listen` takes: `IP:PORT` (`[IPv6]:PORT`) or `HOST:PORT`; port 0 picks a free port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// The host name or IP address (an IPv6 address without brackets).
    host: String,
    /// The port.
    port: u16,
}

/// Why a `--listen` value is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenAddrError {
    /// No `:PORT`.
    #[error("{0:?} has no port: write HOST:PORT (127.0.0.1:9001, localhost:9001, [::1]:9001)")]
    NoPort(String),
    /// No host before the port.
    #[error("{0:?} has no host: write HOST:PORT (0.0.0.0:{1} for every interface)")]
    NoHost(String, String),
    /// A port that is not a number from 0 to 65535.
    #[error("the port {port:?} of {addr:?} is not a number from 0 to 65535")]
    BadPort {
        /// The value.
        addr: String,
        /// Its port.
        port: String,
    },
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(ListenAddrError::NoPort(s.to_string()));
        };
        let port_number = port
            .parse::<u16>()
            .ok()
            .filter(|_| port.bytes().all(|b| b.is_ascii_digit()));
        let Some(port_number) = port_number else {
            return Err(ListenAddrError::BadPort {
                addr: s.to_string(),
                port: port.to_string(),
            });
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(ListenAddrError::NoHost(s.to_string(), port.to_string()));
        }
        Ok(ListenAddr {
            host: host.to_string(),
            port: port_number,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a server could not listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The host name does not resolve.
    #[error("cannot listen on {addr}: cannot resolve {host}: {source}")]
    Resolve {
        /// The `--listen` value.
        addr: ListenAddr,
        /// Its host.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The host name resolves to no address.
    #[error("cannot listen on {addr}: {host} has no address")]
    NoAddress {
        /// The `--listen` value.
        addr: ListenAddr,
        /// Its host.
        host: String,
    },
    /// Binding failed, on every address the host resolved to.
    #[error(
        "cannot listen on {}: {}{}",
        tried_text(addr, tried),
        io_text(source),
        hint(source)
    )]
    Bind {
        /// The `--listen` value.
        addr: ListenAddr,
        /// The addresses tried; `source` is the last one's error.
        tried: Vec<SocketAddr>,
        /// Why the last one failed.
        source: io::Error,
    },
}

impl ListenError {
    /// The kind of the underlying I/O error (`AddrInUse`...).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            ListenError::Resolve { source, .. } | ListenError::Bind { source, .. } => source.kind(),
            ListenError::NoAddress { .. } => io::ErrorKind::NotFound,
        }
    }
}

impl From<ListenError> for io::Error {
    fn from(e: ListenError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// The address, and for a name that resolved to others, the addresses tried.
fn tried_text(addr: &ListenAddr, tried: &[SocketAddr]) -> String {
    match tried {
        [one] if one.to_string() == addr.to_string() => addr.to_string(),
        [] => addr.to_string(),
        tried => {
            let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
            format!("{addr} (tried {})", list.join(", "))
        }
    }
}

/// `address already in use` rather than `Address already in use (os error 98)`.
fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second))
            if first.is_ascii_uppercase() && second.is_ascii_lowercase() =>
        {
            format!("{}{}", first.to_ascii_lowercase(), &text[1..])
        }
        _ => text.to_string(),
    }
}

/// What to do about the usual failures.
fn hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            " (is another server running there? pick another port with --listen)"
        }
        io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need privileges: pick a port above 1023 with --listen)"
        }
        io::ErrorKind::AddrNotAvailable => {
            " (no interface of this machine has that address: try 127.0.0.1 or 0.0.0.0)"
        }
        _ => "",
    }
}

/// Resolves `addr` and binds the first of its addresses that works.
///
/// # Errors
/// [`ListenError`], naming the address.
pub async fn bind(addr: &ListenAddr) -> Result<TcpListener, ListenError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((addr.host.as_str(), addr.port))
        .await
        .map_err(|source| ListenError::Resolve {
            addr: addr.clone(),
            host: addr.host.clone(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpListener::bind(a).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(source) => ListenError::Bind {
            addr: addr.clone(),
            tried: addrs,
            source,
        },
        None => ListenError::NoAddress {
            addr: addr.clone(),
            host: addr.host.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let ok = [
            ("127.0.0.1:9001", "127.0.0.1", 9001),
            ("0.0.0.0:80", "0.0.0.0", 80),
            ("[::1]:0", "::1", 0),
            ("localhost:9001", "localhost", 9001),
        ];
        for (text, host, port) in ok {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!((addr.host.as_str(), addr.port), (host, port), "{text}");
        }
        assert_eq!(
            "[::1]:0".parse::<ListenAddr>().unwrap().to_string(),
            "[::1]:0"
        );
        let bad = [
            (
                "localhost",
                r#""localhost" has no port: write HOST:PORT (127.0.0.1:9001, localhost:9001, [::1]:9001)"#,
            ),
            (
                ":9001",
                r#"":9001" has no host: write HOST:PORT (0.0.0.0:9001 for every interface)"#,
            ),
            (
                "localhost:99999",
                r#"the port "99999" of "localhost:99999" is not a number from 0 to 65535"#,
            ),
            (
                "localhost:+1",
                r#"the port "+1" of "localhost:+1" is not a number from 0 to 65535"#,
            ),
        ];
        for (text, error) in bad {
            assert_eq!(
                text.parse::<ListenAddr>().unwrap_err().to_string(),
                error,
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn an_address_in_use_is_named() {
        let first = bind(&"127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let err = bind(&addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(
            err.to_string(),
            format!(
                "cannot listen on 127.0.0.1:{port}: address already in use (is another server \
                 running there? pick another port with --listen)"
            )
        );
        // Through io::Error (what the servers return), the text is the same.
        assert_eq!(
            io::Error::from(err).to_string(),
            format!(
                "cannot listen on 127.0.0.1:{port}: address already in use (is another server running there? pick another port with --listen)"
            )
        );
    }
}
