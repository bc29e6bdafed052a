//! A few cases of every section, in both roles, against tolqin itself over real sockets on
//! 127.0.0.1: an in-process echo server, and an in-process Autobahn testee client.

use std::time::Duration;

use tokio::net::TcpListener;
use tolqin::{Acceptor, Client, Message, Options, WebSocket};
use tolqin_conformance::{
    ClientTest, Report, Selection, ServerTest, Verdict, test_clients, test_server,
};

/// Nothing here may hang CI.
const LIMIT: Duration = Duration::from_secs(90);

/// Cases that do not depend on timing, a few per section.
const CASES: &str = "1.1.1,1.1.8,1.2.6,2.1,2.5,2.10,3.1,3.7,4.1.1,4.2.2,5.1,5.6,5.9,5.18,\
                     6.1.2,6.2.3,6.3.2,6.5.1,6.12.8,6.21.1,7.1.1,7.1.3,7.3.2,7.3.5,7.7.13,7.9.3,\
                     9.1.1,9.3.1,9.7.1,10.1.1,12.1.1,12.2.11,13.3.4,13.7.18";

fn protocol_options() -> Options {
    let mut protocol = tolqin::proto::Config::default();
    protocol.max_message_size = 64 << 20;
    Options::default().with_protocol(protocol)
}

async fn echo<S>(mut ws: WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

fn assert_verdicts(report: &Report) {
    assert_eq!(report.results.len(), CASES.split(',').count());
    for r in &report.results {
        assert_eq!(
            (r.behavior, r.behavior_close),
            (Verdict::Ok, Verdict::Ok),
            "case {}: {} / {}",
            r.id,
            r.result,
            r.result_close
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolqin_echo_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = Acceptor::new().options(protocol_options());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(ws) = acceptor.accept(tcp).await {
                    echo(ws).await;
                }
            });
        }
    });
    let test = ServerTest {
        url: format!("ws://{addr}/"),
        agent: "tolqin".into(),
        selection: Selection::new(CASES, ""),
        deflate_messages: Some(50),
    };
    let report = tokio::time::timeout(LIMIT, test_server(&test, &mut |_| {}))
        .await
        .expect("the run finishes in time")
        .unwrap();
    assert_verdicts(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolqin_testee_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let dir = std::env::temp_dir().join(format!("tolqin-conformance-it-{}", std::process::id()));
    let test = ClientTest {
        tls: None,
        selection: Selection::new(CASES, ""),
        report_dir: Some(dir.clone()),
        keep_running: false,
        deflate_messages: Some(50),
    };
    let server = tokio::spawn(async move { test_clients(&test, listener, &mut |_| {}).await });
    let testee = async {
        let mut ws = tolqin::connect(&format!("{base}/getCaseCount"))
            .await
            .unwrap();
        let count: usize = match ws.recv().await {
            Some(Ok(Message::Text(t))) => t.parse().unwrap(),
            other => panic!("unexpected answer to getCaseCount: {other:?}"),
        };
        while ws.recv().await.is_some() {}
        for case in 1..=count {
            let url = format!("{base}/runCase?case={case}&agent=tolqin-it");
            let Ok(ws) = Client::new(&url)
                .unwrap()
                .options(protocol_options())
                .connect()
                .await
            else {
                continue;
            };
            echo(ws).await;
        }
        let mut ws = tolqin::connect(&format!("{base}/updateReports?agent=tolqin-it"))
            .await
            .unwrap();
        while ws.recv().await.is_some() {}
    };
    tokio::time::timeout(LIMIT, testee)
        .await
        .expect("the testee finishes in time");
    let report = tokio::time::timeout(LIMIT, server)
        .await
        .expect("the fuzzing server returns after /updateReports")
        .unwrap()
        .unwrap();
    assert_verdicts(&report);
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(index.contains("\"tolqin-it\""), "{index}");
    assert!(dir.join("tolqin_it_case_9_7_1.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
