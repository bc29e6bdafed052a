//! The README's "Many small messages": an echo server whose messages are lent to a handler
//! from the read buffer, as `tolqin echo` runs. `cargo run -p tolqin --example readme_lend`
//! listens on 127.0.0.1:9001.
//! (README.md shows this file from `readme-begin` to `readme-end`; tests/readme.rs checks it.)

// readme-begin
use tokio::net::TcpStream;
use tolqin::WebSocket;

async fn echo(mut ws: WebSocket<TcpStream>) -> tolqin::Result<()> {
    while let Some(handled) = ws.recv_with(|message, out| out.send_ref(message)).await {
        handled?; // how many messages the handler saw, or its first error
        ws.flush().await?; // every reply to them, in one write
    }
    Ok(())
}
// readme-end

#[tokio::main]
async fn main() -> tolqin::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let result = match tolqin::accept(tcp).await {
                Ok(ws) => echo(ws).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                eprintln!("{peer}: {e}");
            }
        });
    }
}
