//! The README's "A server and a client in ten lines": an echo server on 127.0.0.1:9001 and a
//! client that sends it one message. `cargo run -p tolqin --example readme_echo`
//! (README.md shows this file from `readme-begin` to `readme-end`; tests/readme.rs checks it.)

// readme-begin
#[tokio::main]
async fn main() -> tolqin::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tolqin::accept(tcp).await?;
                while let Some(message) = ws.recv().await {
                    ws.send(message?).await?;
                }
                Ok::<(), tolqin::Error>(())
            });
        }
    });

    let mut ws = tolqin::connect("ws://127.0.0.1:9001/").await?;
    ws.send("Hello").await?;
    println!("{:?}", ws.recv().await.unwrap()?);
    let close = ws.close_and_wait(None, "").await?;
    println!("closed: code {} clean {}", close.code, close.was_clean);
    Ok(())
}
// readme-end
