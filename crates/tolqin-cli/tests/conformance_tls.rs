//! `tolqin conformance client` over wss://: a testee client that trusts the printed development
//! certificate runs the selected cases through TLS, and every one is OK.

mod support;

use std::time::Duration;

use support::{TempDir, start, tolqin};
use tolqin::Client;
use tolqin::tls::TlsClient;

async fn client(
    url: &str,
    ca: &str,
) -> tolqin::Result<tolqin::WebSocket<tolqin::stream::ClientStream>> {
    let tls = TlsClient::builder()
        .add_ca_file(ca)
        .unwrap()
        .build()
        .unwrap();
    Client::new(url)?.tls(tls).connect().await
}

#[tokio::test]
async fn the_fuzzing_server_speaks_wss() {
    let reports = TempDir::new("conformance-tls");
    let mut command = tolqin();
    command.args([
        "conformance",
        "client",
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--cases",
        "1.1.*,2.*,5.1",
    ]);
    command.arg("--report").arg(reports.path());
    let mut server = start(command);
    assert!(server.url.starts_with("wss://"), "{}", server.url);
    let ca = server
        .note("certificate")
        .expect("the certificate path is printed")
        .to_string();
    let base = server.url.clone();
    let run = async {
        let mut ws = client(&format!("{base}/getCaseCount"), &ca).await.unwrap();
        let count: u32 = ws
            .recv()
            .await
            .unwrap()
            .unwrap()
            .as_text()
            .unwrap()
            .parse()
            .unwrap();
        ws.close_and_wait(None, "").await.unwrap();
        assert!(count >= 10, "{count} cases");
        for case in 1..=count {
            let mut ws = client(&format!("{base}/runCase?case={case}&agent=tls"), &ca)
                .await
                .unwrap();
            while let Some(Ok(message)) = ws.recv().await {
                let _ = ws.send(message).await;
            }
        }
        let mut ws = client(&format!("{base}/updateReports?agent=tls"), &ca)
            .await
            .unwrap();
        ws.close_and_wait(None, "").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
    let status = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(status) = server.process.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the fuzzing server exits after /updateReports");
    assert!(status.success(), "no case FAILED: {status}");
    let index = std::fs::read_to_string(reports.path().join("index.json")).unwrap();
    assert!(index.contains("\"tls\""), "{index}");
    assert!(
        !index.contains("\"FAILED\"") && !index.contains("NON-STRICT"),
        "{index}"
    );
}
