//! A testee client for Autobahn-style fuzzing servers (`tolqin conformance client`, or the
//! Autobahn|Testsuite's `fuzzingserver`):
//!
//! ```text
//! cargo run --release -p tolqin --example autobahn_client -- ws://127.0.0.1:9001 AGENT
//! ```
//!
//! It asks for the case count, runs every case by echoing each message it gets, then asks the
//! server to write its reports.

use tolqin::{Client, Message, Options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "tolqin".into());
    let base = base.trim_end_matches('/');

    let count = case_count(base).await?;
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(e) = run_case(&url).await {
            eprintln!("case {case}: {e}");
        }
    }
    let mut ws = tolqin::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    ws.close_and_wait(None, "").await?;
    eprintln!("reports updated");
    Ok(())
}

async fn case_count(base: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let mut ws = tolqin::connect(&format!("{base}/getCaseCount")).await?;
    let count = match ws.recv().await {
        Some(Ok(Message::Text(t))) => t.parse()?,
        other => return Err(format!("unexpected answer to getCaseCount: {other:?}").into()),
    };
    ws.close_and_wait(None, "").await?;
    Ok(count)
}

async fn run_case(url: &str) -> tolqin::Result<()> {
    let mut protocol = tolqin::proto::Config::default();
    protocol.max_message_size = 64 << 20;
    // Offer client_no_context_takeover too, as Autobahn's own testee clients do: its fuzzing
    // server asks for no context takeover (cases 13.2, 13.5, 13.6) only from clients that
    // offer it. (RFC 7692 7.1.1.2: the offer promises we will not use context takeover.)
    protocol.deflate = protocol.deflate.with_no_context_takeover(true, false);
    let mut ws = Client::new(url)?
        .options(Options::default().with_protocol(protocol))
        .connect()
        .await?;
    while let Some(message) = ws.recv().await {
        ws.feed(message?)?;
        while let Some(message) = ws.try_recv_buffered() {
            ws.feed(message?)?;
        }
        if let Err(e) = ws.flush().await {
            // The server may close while our echo is in flight; the stream reports how.
            tracing::debug!(error = %e, "flush failed");
        }
    }
    Ok(())
}
