//! The README's wss:// examples: a client that trusts the platform's roots, one that trusts a
//! private CA, and a TLS server. With `tolqin echo --tls-self-signed` running (it prints
//! `certificate: FILE`), `cargo run -p tolqin --example readme_tls -- private FILE` connects
//! to it.
//! (README.md shows this file from `readme-begin` to `readme-end`; tests/readme.rs checks it.)

// readme-begin
use tokio::net::{TcpListener, TcpStream};
use tolqin::stream::ClientStream;
use tolqin::tls::{TlsClient, TlsServer, TlsStream};
use tolqin::{Acceptor, Client, WebSocket};

/// The certificate is checked against the platform's roots (feature `native-roots`, the
/// default; `webpki-roots` bundles Mozilla's instead).
async fn connect_public() -> tolqin::Result<WebSocket<ClientStream>> {
    tolqin::connect("wss://echo.example/").await
}

/// A private CA, or the development certificate of `tolqin echo --tls-self-signed`.
async fn connect_private(ca_file: &str) -> tolqin::Result<WebSocket<ClientStream>> {
    let tls = TlsClient::builder().add_ca_file(ca_file)?.build()?;
    Client::new("wss://localhost:9001/")?
        .tls(tls)
        .connect()
        .await
}

/// A server: the TLS and WebSocket handshakes within the one handshake timeout.
async fn accept_one() -> tolqin::Result<WebSocket<TlsStream<TcpStream>>> {
    let tls = TlsServer::from_pem_files("fullchain.pem", "privkey.pem")?;
    let listener = TcpListener::bind("0.0.0.0:443").await?;
    let (tcp, _) = listener.accept().await?;
    Acceptor::new().accept_tls(&tls, tcp).await
}
// readme-end

/// `readme_tls private CA_FILE` (the certificate `tolqin echo --tls-self-signed` prints),
/// `readme_tls public`, or `readme_tls server` (needs fullchain.pem, privkey.pem and port 443).
#[tokio::main]
async fn main() -> tolqin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["private", ca_file] => hello(connect_private(ca_file).await?).await,
        ["public"] => hello(connect_public().await?).await,
        ["server"] => {
            let mut ws = accept_one().await?;
            while let Some(message) = ws.recv().await {
                ws.send(message?).await?;
            }
            Ok(())
        }
        _ => {
            eprintln!("usage: readme_tls private CA_FILE | public | server");
            std::process::exit(2);
        }
    }
}

async fn hello(mut ws: WebSocket<ClientStream>) -> tolqin::Result<()> {
    ws.send("hello over TLS").await?;
    println!("{:?}", ws.recv().await.expect("a reply")?);
    let close = ws.close_and_wait(None, "").await?;
    println!("closed: code {} clean {}", close.code, close.was_clean);
    Ok(())
}
