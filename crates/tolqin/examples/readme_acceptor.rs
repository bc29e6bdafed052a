//! The README's public server: an `Acceptor` that checks the origin, picks a subprotocol and
//! asks for a session cookie, then echoes. `cargo run -p tolqin --example readme_acceptor`
//! listens on 127.0.0.1:9001.
//! (README.md shows this file from `readme-begin` to `readme-end`; tests/readme.rs checks it.)

// readme-begin
use tokio::net::TcpStream;
use tolqin::{Acceptor, WebSocket, server::Reject};

async fn accept(tcp: TcpStream) -> tolqin::Result<WebSocket<TcpStream>> {
    let acceptor = Acceptor::new()
        .allow_origin("https://chat.example") // anything else: 403
        .protocols(["chat.v2", "chat.v1"]) // the first one the client also offers
        .authenticate(|req| match req.headers().get("cookie") {
            Some(c) if c.as_bytes().starts_with(b"session=") => Ok(Default::default()),
            _ => Err(Reject::unauthorized("log in first")), // 401
        });
    acceptor.accept(tcp).await
}
// readme-end

#[tokio::main]
async fn main() -> tolqin::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let mut ws = match accept(tcp).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: {e}"),
            };
            while let Some(Ok(message)) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
