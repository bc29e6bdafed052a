//! A tokio-tungstenite echo server (from crates.io, as its own examples write one), used to
//! check the checker: `tolqin conformance server` must give it tokio-tungstenite's published
//! Autobahn verdicts (296 OK, NON-STRICT only 6.4.3 and 6.4.4, 216 UNIMPLEMENTED: no
//! compression). Prints `listening on ws://ADDR:PORT` when ready.
//!
//! ```text
//! cargo run --release -p tolqin-conformance --example tungstenite_testee -- 127.0.0.1:0
//! ```

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            // tungstenite answers pings and the close handshake itself; echo data messages.
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
