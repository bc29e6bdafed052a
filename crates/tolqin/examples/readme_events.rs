//! The README's client like the browser's: events in the browser's order, reconnecting with
//! backoff. Start `tolqin echo` first, then `cargo run -p tolqin --example readme_events`
//! (it runs until stopped).
//! (README.md shows this file from `readme-begin` to `readme-end`; tests/readme.rs checks it.)

// readme-begin
use std::time::Duration;

use tolqin::events::{EventSocket, Reconnect, SocketEvent};

#[tokio::main]
async fn main() -> tolqin::Result<()> {
    let client = tolqin::Client::new("ws://127.0.0.1:9001/")?;
    let backoff =
        Reconnect::default().with_delays(Duration::from_millis(500), Duration::from_secs(30));
    let mut socket = EventSocket::builder(client).reconnect(backoff).start();
    while let Some(event) = socket.next_event().await {
        match event {
            SocketEvent::Open { .. } | SocketEvent::Reconnected { .. } => socket.send("hello")?,
            SocketEvent::Message(m) => println!("{m:?}"),
            SocketEvent::Close {
                code, was_clean, ..
            } => {
                println!("closed {code} clean={was_clean}")
            }
            _ => {}
        }
    }
    Ok(())
}
// readme-end
