//! The two fuzzing peers: a client that tests servers, and a server that tests clients through
//! the Autobahn testee protocol.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use http::Uri;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tolqin::proto::deflate::{self, Codec, DeflateConfig, DeflateParams};
use tolqin::proto::handshake::{
    ClientRequest, Extension, encode_response, error_response, parse_request, parse_response,
    validate_request,
};
use tolqin::proto::{Config, Role};

use crate::Error;
use crate::case::{
    Case, Check, Deflate, Event, ExpectedClose, FrameSpec, Plan, Post, Selection, Step, code,
};
use crate::catalogue;
use crate::engine::{self, Record, Side};
use crate::report::{CaseResult, Report};
use crate::verdict::{Judgement, Verdict, judge};
use crate::wire::payload_repr;

/// How long the opening handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// RFC 7692 7.1.2: the largest LZ77 window, 2^15 bytes.
const MAX_WINDOW_BITS: u8 = 15;

/// The fuzzer's own compressor settings: every message compressed, quickly (the level does
/// not matter to the peer).
fn fuzzer_deflate() -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.level = 1;
    config.threshold = 0;
    config
}

/// Autobahn's client offer: it accepts `client_no_context_takeover` and
/// `client_max_window_bits` from the server, and asks for `server_no_context_takeover` and
/// `server_max_window_bits` as the case says.
fn offer((no_context_takeover, bits): (bool, Option<u8>)) -> Extension {
    let mut e = Extension::new(deflate::NAME)
        .with_param("client_no_context_takeover", None)
        .with_param("client_max_window_bits", None);
    if no_context_takeover {
        e = e.with_param("server_no_context_takeover", None);
    }
    if let Some(bits) = bits {
        e = e.with_param("server_max_window_bits", Some(&bits.to_string()));
    }
    e
}

/// The server's side: the first offer that says it accepts what the server asks of it (the
/// answers in order of preference), answered with what it requested of the server.
fn accept_offer(setup: &Deflate, offers: &[Extension]) -> Option<DeflateParams> {
    let offers: Vec<&Extension> = offers.iter().filter(|e| e.name == deflate::NAME).collect();
    let has = |e: &Extension, name: &str| e.params.iter().any(|(n, _)| n == name);
    for &(ask_no_takeover, ask_bits) in setup.accepts {
        for e in &offers {
            if (ask_no_takeover && !has(e, "client_no_context_takeover"))
                || (ask_bits.is_some() && !has(e, "client_max_window_bits"))
            {
                continue;
            }
            let requested_bits = e
                .params
                .iter()
                .find(|(n, _)| n == "server_max_window_bits")
                .and_then(|(_, v)| v.as_deref()?.parse::<u8>().ok())
                .filter(|b| (8..=MAX_WINDOW_BITS).contains(b));
            return Some(DeflateParams {
                server_no_context_takeover: has(e, "server_no_context_takeover"),
                client_no_context_takeover: ask_no_takeover,
                server_max_window_bits: requested_bits.unwrap_or(MAX_WINDOW_BITS),
                client_max_window_bits: ask_bits.unwrap_or(MAX_WINDOW_BITS),
            });
        }
    }
    None
}

/// Options of [`test_server`].
#[derive(Debug, Clone)]
pub struct ServerTest {
    /// The server under test, `ws://HOST:PORT/PATH`.
    pub url: String,
    /// The name of the server under test in the reports.
    pub agent: String,
    /// Which cases to run.
    pub selection: Selection,
    /// Messages per permessage-deflate case (sections 12 and 13); `None` for Autobahn's 1000.
    pub deflate_messages: Option<usize>,
}

/// Options of [`test_clients`].
#[derive(Debug, Clone)]
pub struct ClientTest {
    /// Which cases the testee clients run (`/getCaseCount` counts these).
    pub selection: Selection,
    /// Where `/updateReports` writes the reports, if anywhere.
    pub report_dir: Option<PathBuf>,
    /// Serve forever instead of returning after the first `/updateReports`.
    pub keep_running: bool,
    /// Messages per permessage-deflate case (sections 12 and 13); `None` for Autobahn's 1000.
    pub deflate_messages: Option<usize>,
    /// Serve wss:// with this TLS configuration (clients connect with TLS first).
    pub tls: Option<tolqin::tls::TlsServer>,
}

/// A transport the fuzzing server speaks over: plain TCP or TLS.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Transport for T {}

/// The plan of `case`, with the number of compressed messages overridden if asked.
fn plan_of(case: &Case, deflate_messages: Option<usize>) -> Plan {
    let mut plan = case.plan();
    if let (Check::Compressed { count, .. }, Some(n)) = (&mut plan.check, deflate_messages) {
        *count = n.max(1);
    }
    plan
}

/// The selected cases, in order.
///
/// # Errors
/// [`Error::NoCases`] if none is selected.
pub fn selected_cases(selection: &Selection) -> Result<Vec<Case>, Error> {
    let cases: Vec<Case> = catalogue::all()
        .into_iter()
        .filter(|c| selection.matches(c.id))
        .collect();
    if cases.is_empty() {
        return Err(Error::NoCases);
    }
    Ok(cases)
}

/// Runs the selected cases against a server, one connection each, calling `on_result` after
/// each case.
///
/// # Errors
/// [`Error::BadUrl`] for a URL that is not `ws://` with a host, [`Error::NoCases`] if nothing
/// is selected. A server that misbehaves (even one that refuses connections) gets FAILED
/// verdicts, not an error.
pub async fn test_server(
    test: &ServerTest,
    on_result: &mut (dyn FnMut(&CaseResult) + Send),
) -> Result<Report, Error> {
    let uri: Uri = test
        .url
        .parse()
        .map_err(|_| Error::BadUrl(test.url.clone()))?;
    if uri.scheme_str() != Some("ws") || uri.host().is_none() {
        return Err(Error::BadUrl(test.url.clone()));
    }
    let cases = selected_cases(&test.selection)?;
    let mut report = Report::default();
    for (index, case) in cases.iter().enumerate() {
        let result =
            run_against_server(&uri, case, index + 1, &test.agent, test.deflate_messages).await;
        on_result(&result);
        report.results.push(result);
    }
    Ok(report)
}

struct Opened {
    stream: TcpStream,
    leftover: BytesMut,
    request: String,
    response: String,
    codec: Option<Codec>,
}

async fn open_client(uri: &Uri, deflate: Option<Deflate>) -> Result<Opened, String> {
    let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut request = ClientRequest::new(uri.clone()).map_err(|e| e.to_string())?;
    for &o in deflate.map_or(&[][..], |d| d.offers) {
        request = request.extension(offer(o));
    }
    let handshake = request.build().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    handshake.encode(&mut out);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let config = Config::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some((response, head_len)) =
            parse_response(&buf, &config).map_err(|e| e.to_string())?
        {
            let raw = String::from_utf8_lossy(&buf[..head_len]).into_owned();
            let accepted = handshake.verify(&response).map_err(|e| e.to_string())?;
            let codec = match accepted.extensions.iter().find(|e| e.name == deflate::NAME) {
                None => None,
                Some(e) => {
                    let mut params = DeflateConfig::params_of_response(e)
                        .map_err(|e| format!("invalid permessage-deflate response: {e}"))?;
                    // Every offer hinted that the client does not take over its context.
                    params.client_no_context_takeover = true;
                    Some(Codec::new(Role::Client, params, &fuzzer_deflate()))
                }
            };
            let leftover = buf.split_off(head_len);
            return Ok(Opened {
                stream,
                leftover,
                request: String::from_utf8_lossy(&out).into_owned(),
                response: raw,
                codec,
            });
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection during the opening handshake".into());
        }
    }
}

async fn run_against_server(
    uri: &Uri,
    case: &Case,
    index: usize,
    agent: &str,
    deflate_messages: Option<usize>,
) -> CaseResult {
    let plan = plan_of(case, deflate_messages);
    let started = utc_now();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, open_client(uri, plan.deflate)).await {
        Ok(Ok(opened)) => {
            let record = engine::run(
                opened.stream,
                Side::Client,
                &plan,
                opened.leftover,
                opened.codec,
            )
            .await;
            let http = (opened.request, opened.response);
            finish(case, index, agent, &plan, record, started, http)
        }
        Ok(Err(e)) => handshake_failed(case, index, agent, &plan, started, &e),
        Err(_) => handshake_failed(case, index, agent, &plan, started, "timed out"),
    }
}

fn handshake_failed(
    case: &Case,
    index: usize,
    agent: &str,
    plan: &Plan,
    started: String,
    why: &str,
) -> CaseResult {
    let judgement = Judgement {
        behavior: Verdict::Failed,
        result: format!("The opening handshake failed: {why}"),
        behavior_close: Verdict::Failed,
        result_close: "The WebSocket connection was never open.".to_owned(),
    };
    let record = Record::default();
    build_result(
        case,
        index,
        agent,
        plan,
        &record,
        judgement,
        started,
        (String::new(), String::new()),
    )
}

fn finish(
    case: &Case,
    index: usize,
    agent: &str,
    plan: &Plan,
    record: Record,
    started: String,
    http: (String, String),
) -> CaseResult {
    let judgement = judge(plan, &record.seen);
    build_result(case, index, agent, plan, &record, judgement, started, http)
}

fn event_json(e: &Event) -> Value {
    match e {
        Event::Message { payload, binary } => json!(["message", payload_repr(payload), binary]),
        Event::Pong(p) => json!(["pong", payload_repr(p)]),
        Event::Timeout(tag) => json!(["timeout", tag]),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_result(
    case: &Case,
    index: usize,
    agent: &str,
    plan: &Plan,
    record: &Record,
    j: Judgement,
    started: String,
    (request, response): (String, String),
) -> CaseResult {
    let seen = &record.seen;
    let expected = match &plan.check {
        Check::Events { ok, non_strict, .. } => {
            let mut m = serde_json::Map::new();
            m.insert("OK".into(), ok.iter().map(event_json).collect());
            if let Some(ns) = non_strict {
                m.insert("NON-STRICT".into(), ns.iter().map(event_json).collect());
            }
            Value::Object(m)
        }
        _ => json!({}),
    };
    let detail = json!({
        "agent": agent,
        "behavior": j.behavior,
        "behaviorClose": j.behavior_close,
        "case": index,
        "closedByMe": seen.closed_by_me,
        "createWirelog": true,
        "description": case.description,
        "droppedByMe": seen.dropped_by_me,
        "duration": record.duration_ms,
        "expectation": case.expectation,
        "expected": expected,
        "expectedClose": {
            "closeCode": plan.close.codes,
            "closedByMe": plan.close.closed_by_me,
            "requireClean": plan.close.require_clean,
        },
        "failedByMe": record.failed_by_me,
        "fuzzerNote": record.note,
        "httpRequest": request,
        "httpResponse": response,
        "id": case.id.to_string(),
        "isServer": seen.is_server,
        "localCloseCode": record.local_close_code,
        "localCloseReason": record.local_close_reason,
        "received": seen.received.iter().map(event_json).collect::<Vec<_>>(),
        "remoteCloseCode": seen.remote_close_code,
        "remoteCloseReason": record.remote_close_reason,
        "reportTime": plan.report_time,
        "result": j.result,
        "resultClose": j.result_close,
        "started": started,
        "wasClean": seen.was_clean,
        "wasCloseHandshakeTimeout": record.was_close_handshake_timeout,
        "wasNotCleanReason": record.was_not_clean_reason,
        "wasOpenHandshakeTimeout": false,
        "wasServerConnectionDropTimeout": record.was_server_connection_drop_timeout,
        "wirelog": record.wirelog,
    });
    CaseResult {
        id: case.id,
        agent: agent.to_owned(),
        behavior: j.behavior,
        behavior_close: j.behavior_close,
        result: j.result,
        result_close: j.result_close,
        duration_ms: record.duration_ms,
        remote_close_code: seen.remote_close_code,
        report_time: plan.report_time,
        detail,
    }
}

/// Serves the Autobahn testee protocol on `listener` until a testee asks for the reports (or
/// forever with [`ClientTest::keep_running`]), running one connection at a time:
///
/// * `GET /getCaseCount`: the number of selected cases, as a text message;
/// * `GET /runCase?case=N&agent=A`: runs the N-th selected case (from 1) against agent A,
///   which is expected to echo every message;
/// * `GET /updateReports?agent=A`: writes the reports into [`ClientTest::report_dir`].
///
/// `on_result` is called after each case.
///
/// # Errors
/// [`Error::NoCases`] if nothing is selected, [`Error::Io`] if accepting or writing the
/// reports fails. Misbehaving clients get verdicts, not errors.
pub async fn test_clients(
    test: &ClientTest,
    listener: TcpListener,
    on_result: &mut (dyn FnMut(&CaseResult) + Send),
) -> Result<Report, Error> {
    let cases = selected_cases(&test.selection)?;
    let mut results: BTreeMap<String, Vec<CaseResult>> = BTreeMap::new();
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let mut stream: Box<dyn Transport> = match &test.tls {
            None => Box::new(tcp),
            Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(tls_stream)) => Box::new(tls_stream),
                _ => continue, // a failed TLS handshake is the client's problem, not a case
            },
        };
        let Ok(Some((request, leftover, raw))) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, read_request(&mut stream))
                .await
                .unwrap_or(Ok(None))
        else {
            continue;
        };
        let valid = match validate_request(&request) {
            Ok(v) => v,
            Err(e) => {
                let mut out = Vec::new();
                encode_response(&error_response(&e), &mut out);
                let _ = stream.write_all(&out).await;
                continue;
            }
        };
        let query = query_params(request.uri().query().unwrap_or(""));
        let agent = query
            .get("agent")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        // permessage-deflate only in the cases about it, as Autobahn's fuzzing server does.
        let case_index = query.get("case").and_then(|n| n.parse::<usize>().ok());
        let case = match request.uri().path() {
            "/runCase" => case_index
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| cases.get(n)),
            _ => None,
        };
        let plan = case.map(|c| plan_of(c, test.deflate_messages));
        let params = plan
            .as_ref()
            .and_then(|p| p.deflate.as_ref())
            .and_then(|d| accept_offer(d, &valid.extensions));
        let extensions: Vec<Extension> = params.iter().map(DeflateParams::to_extension).collect();
        let mut response = Vec::new();
        encode_response(&valid.accept(None, &extensions), &mut response);
        if stream.write_all(&response).await.is_err() {
            continue;
        }
        let http = (raw, String::from_utf8_lossy(&response).into_owned());
        match request.uri().path() {
            "/getCaseCount" => {
                let count = cases.len().to_string();
                let plan = command_plan(vec![
                    Step::Frame(FrameSpec::new(0x1, count.into_bytes())),
                    close_step(),
                ]);
                engine::run(stream, Side::Server, &plan, leftover, None).await;
            }
            "/runCase" => {
                let (Some(case), Some(plan)) = (case, plan) else {
                    let plan = command_plan(vec![close_step()]);
                    engine::run(stream, Side::Server, &plan, leftover, None).await;
                    continue;
                };
                let started = utc_now();
                let codec = params.map(|p| Codec::new(Role::Server, p, &fuzzer_deflate()));
                let record = engine::run(stream, Side::Server, &plan, leftover, codec).await;
                let index = case_index.unwrap_or(0);
                let result = finish(case, index, &agent, &plan, record, started, http);
                on_result(&result);
                let list = results.entry(agent).or_default();
                list.retain(|r| r.id != result.id);
                list.push(result);
            }
            "/updateReports" => {
                let mut report = Report {
                    results: results.get(&agent).cloned().unwrap_or_default(),
                };
                report.results.sort_by_key(|r| r.id);
                if let Some(dir) = &test.report_dir {
                    let all = Report {
                        results: results.values().flatten().cloned().collect(),
                    };
                    all.write(dir)?;
                }
                let plan = command_plan(vec![close_step()]);
                engine::run(stream, Side::Server, &plan, leftover, None).await;
                if !test.keep_running {
                    return Ok(report);
                }
            }
            _ => {
                let plan = command_plan(vec![close_step()]);
                engine::run(stream, Side::Server, &plan, leftover, None).await;
            }
        }
    }
}

fn close_step() -> Step {
    Step::Close {
        code: Some(code::NORMAL),
        reason: bytes::Bytes::new(),
    }
}

/// A plan for the command endpoints: send, close, judge nothing.
fn command_plan(steps: Vec<Step>) -> Plan {
    Plan {
        steps,
        check: Check::Events {
            ok: vec![],
            non_strict: None,
            auto_close: false,
        },
        close: ExpectedClose::normal(),
        post: Post::None,
        report_time: false,
        limit_secs: 5.0,
        deflate: None,
    }
}

type Head = (http::Request<()>, BytesMut, String);

async fn read_request<S: Transport + ?Sized>(stream: &mut S) -> Result<Option<Head>, Error> {
    let config = Config::default();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match parse_request(&buf, &config) {
            Ok(Some((request, head_len))) => {
                let raw = String::from_utf8_lossy(&buf[..head_len]).into_owned();
                let leftover = buf.split_off(head_len);
                return Ok(Some((request, leftover, raw)));
            }
            Ok(None) => {}
            Err(e) => {
                let mut out = Vec::new();
                encode_response(&error_response(&e), &mut out);
                let _ = stream.write_all(&out).await;
                return Ok(None);
            }
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// `a=1&b=x%20y` as a map, percent-decoded (`+` is a space).
fn query_params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The current time as `2026-01-02T03:04:05.678Z`.
fn utc_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let q = query_params("case=12&agent=my%20agent+v1&x");
        assert_eq!(q["case"], "12");
        assert_eq!(q["agent"], "my agent v1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn timestamps_are_iso_8601() {
        let t = utc_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
