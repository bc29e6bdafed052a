//! Reaching the server through a proxy: HTTP `CONNECT` (with basic auth) and SOCKS5
//! (RFC 1928, with RFC 1929 user/password), from explicit options or from the conventional
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` environment variables.
//!
//! ```
//! use tolqin::proxy::Proxy;
//! let proxy = Proxy::parse("http://user:secret@proxy.example:3128").unwrap();
//! assert_eq!(proxy.to_string(), "http://user:***@proxy.example:3128");
//! let socks = Proxy::parse("socks5h://127.0.0.1:1080").unwrap();
//! assert_eq!(socks.to_string(), "socks5h://127.0.0.1:1080");
//! ```

use std::net::IpAddr;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a proxy could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL is not `http://`, `socks5://` or `socks5h://` with a host and port.
    #[error("invalid proxy URL {0:?}")]
    BadUrl(String),
    /// The TCP connection to the proxy failed.
    #[error(
        "cannot connect to the proxy {proxy}: {}",
        crate::error::io_text(source)
    )]
    Connect {
        /// The proxy's URL, its password masked.
        proxy: Box<str>,
        /// Why (`ConnectionRefused`...).
        source: std::io::Error,
    },
    /// The tunnel through the proxy broke.
    #[error("proxy I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP proxy refused the `CONNECT` (407: authentication required or wrong).
    #[error("the HTTP proxy refused the tunnel with HTTP {}", http_status_text(*.0))]
    HttpStatus(u16),
    /// The HTTP proxy's answer is not HTTP.
    #[error("HTTP proxy sent a malformed response")]
    HttpMalformed,
    /// The SOCKS5 proxy accepts none of our authentication methods.
    #[error("SOCKS5 proxy accepts no authentication method we offered")]
    SocksNoMethod,
    /// The SOCKS5 proxy rejected the user name and password.
    #[error("SOCKS5 proxy rejected the credentials")]
    SocksAuthFailed,
    /// The SOCKS5 proxy could not connect (its reply code, RFC 1928 6).
    #[error("SOCKS5 proxy could not connect: {0}")]
    SocksReply(&'static str),
    /// The SOCKS5 proxy broke the protocol.
    #[error("SOCKS5 proxy sent a malformed reply")]
    SocksMalformed,
}

/// A proxy's status with its reason phrase, and what to do about a 407.
fn http_status_text(code: u16) -> String {
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    if code == 407 {
        format!(
            "{code}{reason} (give the user and password in the proxy URL: \
             http://user:password@host:port)"
        )
    } else {
        format!("{code}{reason}")
    }
}

/// The kind of proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP `CONNECT` tunnel.
    Http,
    /// SOCKS5, resolving the target host locally (`socks5://`).
    Socks5,
    /// SOCKS5, letting the proxy resolve the target host (`socks5h://`).
    Socks5h,
}

/// A proxy to tunnel the connection through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({self})")
    }
}

impl std::fmt::Display for Proxy {
    /// The URL with the password masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.credentials {
            Some((user, _)) => write!(f, "{scheme}://{user}:***@{host}:{}", self.port),
            None => write!(f, "{scheme}://{host}:{}", self.port),
        }
    }
}

/// Decodes `%XX` escapes (user names and passwords in proxy URLs); anything else is kept.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Proxy {
    /// A proxy of `kind` at `host:port`.
    pub fn new(kind: ProxyKind, host: impl Into<String>, port: u16) -> Self {
        Proxy {
            kind,
            host: host.into(),
            port,
            credentials: None,
        }
    }

    /// Sets the user name and password (HTTP basic auth, or SOCKS5 user/password).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The kind of proxy.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// Parses `http://[user:pass@]host[:port]`, `socks5://...` or `socks5h://...` (a URL
    /// without a scheme is taken as `http://`, as curl does; default ports 80 and 1080).
    ///
    /// # Errors
    /// [`ProxyError::BadUrl`].
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        let bad = || ProxyError::BadUrl(url.to_string());
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            _ => return Err(bad()),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((percent_decode(user), percent_decode(pass))), hostport)
            }
            None => (None, authority),
        };
        let default_port = if kind == ProxyKind::Http { 80 } else { 1080 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), port.parse().map_err(|_| bad())?),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Proxy {
            kind,
            host,
            port,
            credentials,
        })
    }

    /// The proxy the environment names for a `ws://` (`secure == false`) or `wss://`
    /// connection to `host`: `HTTPS_PROXY` for wss and `HTTP_PROXY` for ws (lower-case names
    /// first, as curl reads them), else `ALL_PROXY`; none if `NO_PROXY` matches the host.
    pub fn from_env(secure: bool, host: &str) -> Option<Proxy> {
        Self::from_vars(secure, host, |name| std::env::var(name).ok())
    }

    /// [`Proxy::from_env`] with a custom variable lookup (for tests and embedders).
    pub fn from_vars(
        secure: bool,
        host: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Option<Proxy> {
        let get = |name: &str| {
            var(&name.to_ascii_lowercase())
                .or_else(|| var(&name.to_ascii_uppercase()))
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(no_proxy) = get("no_proxy")
            && no_proxy_matches(&no_proxy, host)
        {
            return None;
        }
        let value = if secure {
            get("https_proxy")
        } else {
            get("http_proxy")
        }
        .or_else(|| get("all_proxy"))?;
        Proxy::parse(value.trim()).ok()
    }

    /// Opens a TCP connection to the proxy and a tunnel through it to `host:port`.
    ///
    /// # Errors
    /// [`ProxyError`]: the proxy unreachable ([`ProxyError::Connect`]), refusing, or
    /// rejecting the credentials.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| ProxyError::Connect {
                proxy: self.to_string().into(),
                source,
            })?;
        tcp.set_nodelay(true)?;
        match self.kind {
            ProxyKind::Http => self.http_connect(&mut tcp, host, port).await?,
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                self.socks5_connect(&mut tcp, host, port).await?
            }
        }
        Ok(tcp)
    }

    async fn http_connect(
        &self,
        tcp: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> Result<(), ProxyError> {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some((user, pass)) = &self.credentials {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await?;
        // Read the response head byte by byte: nothing after it may be consumed, it belongs
        // to the tunnel. The head is short; bound it anyway.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 << 10 {
                return Err(ProxyError::HttpMalformed);
            }
            head.push(tcp.read_u8().await?);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(ProxyError::HttpMalformed),
        }
        match response.code {
            Some(code) if (200..300).contains(&code) => Ok(()),
            Some(code) => Err(ProxyError::HttpStatus(code)),
            None => Err(ProxyError::HttpMalformed),
        }
    }

    async fn socks5_connect(
        &self,
        tcp: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> Result<(), ProxyError> {
        // RFC 1928 3: greeting with our methods: 0x00 no auth, 0x02 user/password.
        let greeting: &[u8] = if self.credentials.is_some() {
            &[5, 2, 0x00, 0x02]
        } else {
            &[5, 1, 0x00]
        };
        tcp.write_all(greeting).await?;
        let mut choice = [0u8; 2];
        tcp.read_exact(&mut choice).await?;
        if choice[0] != 5 {
            return Err(ProxyError::SocksMalformed);
        }
        match (choice[1], &self.credentials) {
            (0x00, _) => {}
            (0x02, Some((user, pass))) => {
                // RFC 1929 2: version 1, user and password, each at most 255 bytes.
                if user.len() > 255 || pass.len() > 255 {
                    return Err(ProxyError::SocksAuthFailed);
                }
                let mut auth = vec![1, user.len() as u8];
                auth.extend_from_slice(user.as_bytes());
                auth.push(pass.len() as u8);
                auth.extend_from_slice(pass.as_bytes());
                tcp.write_all(&auth).await?;
                let mut status = [0u8; 2];
                tcp.read_exact(&mut status).await?;
                if status[1] != 0 {
                    return Err(ProxyError::SocksAuthFailed);
                }
            }
            _ => return Err(ProxyError::SocksNoMethod),
        }
        // RFC 1928 4: CONNECT request.
        let mut request = vec![5, 1, 0];
        let local_ip = if self.kind == ProxyKind::Socks5 && host.parse::<IpAddr>().is_err() {
            tokio::net::lookup_host((host, port))
                .await?
                .next()
                .map(|a| a.ip())
        } else {
            host.parse::<IpAddr>().ok()
        };
        match local_ip {
            Some(IpAddr::V4(ip)) => {
                request.push(1);
                request.extend_from_slice(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                request.push(4);
                request.extend_from_slice(&ip.octets());
            }
            None => {
                if host.len() > 255 {
                    return Err(ProxyError::SocksReply("host name longer than 255 bytes"));
                }
                request.push(3);
                request.push(host.len() as u8);
                request.extend_from_slice(host.as_bytes());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());
        tcp.write_all(&request).await?;
        let mut reply = [0u8; 4];
        tcp.read_exact(&mut reply).await?;
        if reply[0] != 5 {
            return Err(ProxyError::SocksMalformed);
        }
        if reply[1] != 0 {
            return Err(ProxyError::SocksReply(match reply[1] {
                1 => "general failure",
                2 => "connection not allowed by ruleset",
                3 => "network unreachable",
                4 => "host unreachable",
                5 => "connection refused",
                6 => "TTL expired",
                7 => "command not supported",
                8 => "address type not supported",
                _ => "unknown error",
            }));
        }
        // The bound address, which we do not need: skip it.
        let skip = match reply[3] {
            1 => 4,
            4 => 16,
            3 => tcp.read_u8().await? as usize,
            _ => return Err(ProxyError::SocksMalformed),
        };
        let mut rest = vec![0u8; skip + 2];
        tcp.read_exact(&mut rest).await?;
        Ok(())
    }
}

/// Whether `NO_PROXY` (comma- or space-separated host names, domain suffixes such as
/// `.example.com` or `example.com`, IP addresses, or `*`) covers `host`.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            // Drop a port, if any (but not from a bare IPv6 address).
            let entry = entry.to_ascii_lowercase();
            let entry = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => {
                    h.to_string()
                }
                _ => entry,
            };
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            let suffix = entry.trim_start_matches('.');
            host == suffix || host.ends_with(&format!(".{suffix}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_proxy_urls() {
        let p = Proxy::parse("http://alice:p%40ss@proxy.local:3128").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::Http, "proxy.local", 3128)
        );
        assert_eq!(p.credentials, Some(("alice".into(), "p@ss".into())));
        assert_eq!(Proxy::parse("proxy.local").unwrap().port, 80);
        assert_eq!(Proxy::parse("socks5://[::1]").unwrap().port, 1080);
        assert_eq!(
            Proxy::parse("socks5h://h:9/").unwrap().kind,
            ProxyKind::Socks5h
        );
        for bad in ["ftp://x:1", "http://:80", "http://h:port", "socks5://[::1"] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_variables_and_no_proxy() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = env(&[
            ("HTTPS_PROXY", "http://secure:1"),
            ("http_proxy", "http://plain:2"),
            ("ALL_PROXY", "socks5://all:3"),
        ]);
        assert_eq!(
            Proxy::from_vars(true, "example.com", vars).unwrap().host,
            "secure"
        );
        assert_eq!(
            Proxy::from_vars(false, "example.com", vars).unwrap().host,
            "plain"
        );
        let only_all = env(&[("ALL_PROXY", "socks5://all:3")]);
        assert_eq!(
            Proxy::from_vars(false, "example.com", only_all)
                .unwrap()
                .kind,
            ProxyKind::Socks5
        );
        let with_no = env(&[
            ("ALL_PROXY", "socks5://all:3"),
            ("NO_PROXY", "localhost, .internal.example,10.0.0.1:80"),
        ]);
        assert!(Proxy::from_vars(false, "localhost", with_no).is_none());
        assert!(Proxy::from_vars(false, "api.internal.example", with_no).is_none());
        assert!(Proxy::from_vars(false, "internal.example", with_no).is_none());
        assert!(Proxy::from_vars(false, "10.0.0.1", with_no).is_none());
        assert!(Proxy::from_vars(false, "example.com", with_no).is_some());
        assert!(no_proxy_matches("*", "anything"));
        assert!(!no_proxy_matches("example.com", "notexample.com"));
    }
}
