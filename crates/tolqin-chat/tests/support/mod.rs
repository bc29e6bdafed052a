//! Shared setup of the chat tests: an in-process server, its session cookie, clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tolqin::{Client, Message};
use tolqin_chat::{ChatConfig, ChatServer};

/// A chat server running on a task; stopped (gracefully) by [`Running::stop`] or on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: std::sync::Arc<tolqin_chat::metrics::Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the server and waits until it has closed every client.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a chat server on a free port (or the config's address) of the current runtime.
pub async fn start(config: ChatConfig) -> Running {
    let server = ChatServer::bind(config)
        .await
        .expect("the chat server binds");
    let addr = server.local_addr();
    let metrics = server.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        metrics,
        stop: Some(stop),
        task: Some(task),
    }
}

/// The default configuration on a free loopback port.
pub fn config() -> ChatConfig {
    ChatConfig::default().with_listen("127.0.0.1:0".parse().unwrap())
}

/// A raw HTTP/1.1 exchange: status, head, body.
pub async fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// GET `path` with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Loads the page and returns its session cookie (`tolqin_session=...`).
pub async fn session_cookie(addr: SocketAddr) -> String {
    let (status, head, _) = get(addr, "/").await;
    assert_eq!(status, 200, "{head}");
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap().to_string())
        })
        .expect("the page sets the session cookie")
}

/// A chat client as the page would connect: own origin, session cookie.
pub async fn join(
    server: &Running,
    cookie: &str,
) -> tolqin::WebSocket<tolqin::stream::ClientStream> {
    Client::new(&server.ws_url("/ws"))
        .unwrap()
        .origin(server.origin())
        .header(header::COOKIE, HeaderValue::from_str(cookie).unwrap())
        .connect()
        .await
        .expect("the chat socket opens")
}

/// The next message as JSON, within 10 s.
pub async fn next_json<S>(ws: &mut tolqin::WebSocket<S>) -> serde_json::Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let message = tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("a message within 10 s")
        .expect("the socket is open")
        .expect("no error");
    match message {
        Message::Text(text) => serde_json::from_str(&text).expect("JSON"),
        other => panic!("binary message: {other:?}"),
    }
}

/// A chat message `{"user","content"}`.
pub fn say(user: &str, content: &str) -> String {
    serde_json::json!({ "user": user, "content": content }).to_string()
}

/// The HTTP status of a refused handshake, as the client reports it.
pub fn rejected_status(error: &tolqin::Error) -> Option<u16> {
    match error {
        tolqin::Error::Refused(refusal) => Some(refusal.status().as_u16()),
        _ => None,
    }
}
