//! A simple echo load: N connections, each with one message in flight, for D seconds.
//! Prints messages per second. (The real benchmark harness is `tolqin bench`; this is the
//! quick measurement.)
//!
//! ```text
//! cargo run --release -p tolqin --example echo_load -- ws://127.0.0.1:9001 CONNECTIONS SIZE SECONDS
//! cargo run --release -p tolqin --example echo_load -- wss://127.0.0.1:9443 100 20 5 --ca cert.pem
//! cargo run --release -p tolqin --example echo_load -- wss://127.0.0.1:9443 100 20 5 --insecure
//! ```
//!
//! For `wss://`: `--ca FILE` trusts that PEM certificate (such as the one
//! `tolqin echo --tls-self-signed` writes), `--insecure` skips verification (development only);
//! neither: the default roots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tolqin::tls::TlsClient;
use tolqin::{Client, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = vec![String::new()];
    let mut tls = TlsClient::builder();
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "--insecure" => tls = tls.danger_skip_verification_for_development(),
            "--ca" => tls = tls.add_ca_file(raw.next().ok_or("--ca needs a file")?)?,
            _ => args.push(arg),
        }
    }
    let tls = tls.build()?;
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let connections: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let size: usize = args.get(3).map_or(Ok(20), |s| s.parse())?;
    let seconds: u64 = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Every connection opens first; all start sending together.
    let (start_tx, start_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let opening = Instant::now();
    for _ in 0..connections {
        let mut ws = Client::new(&url)?.tls(tls.clone()).connect().await?;
        let (count, stop) = (count.clone(), stop.clone());
        let mut start_rx = start_rx.clone();
        let payload = Message::binary(vec![b'x'; size]);
        tasks.push(tokio::spawn(async move {
            start_rx.wait_for(|go| *go).await?;
            while !stop.load(Ordering::Relaxed) {
                ws.send(payload.clone()).await?;
                ws.recv().await.ok_or("closed")??;
                count.fetch_add(1, Ordering::Relaxed);
            }
            ws.close_and_wait(None, "").await?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    eprintln!(
        "{connections} connections opened in {:.2} s",
        opening.elapsed().as_secs_f64()
    );
    start_tx.send(true)?;
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let n = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let rate = n as f64 / elapsed;
    println!(
        "{connections} connections x {size} B: {rate:.0} msg/s, {:.1} MB/s each way",
        rate * size as f64 / 1e6
    );
    Ok(())
}
