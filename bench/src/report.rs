//! Turning runs into numbers: medians, min-max and ratios; the Markdown report; the SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

/// One figure of a workload's results.
pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    /// JSON pointer into one run's result.
    pub pointer: &'static str,
    pub higher_is_better: bool,
}

const fn m(key: &'static str, label: &'static str, pointer: &'static str, higher: bool) -> Metric {
    Metric {
        key,
        label,
        pointer,
        higher_is_better: higher,
    }
}

// Figures that several tables show.
const MSGS: Metric = m("msgs", "msgs/s", "/messages_per_sec", true);
const MBS: Metric = m("mbs", "MB/s", "/mb_per_sec", true);
const SRV_US: Metric = m(
    "srv_us",
    "server CPU us/msg",
    "/server/cpu_us_per_message",
    false,
);
const SRV_CPU: Metric = m("srv_cpu", "server CPU %", "/server/cpu_percent", false);
const GEN_CPU: Metric = m(
    "gen_cpu",
    "generator CPU %",
    "/generator_cpu_percent",
    false,
);
const GEN_US: Metric = m(
    "gen_us",
    "generator CPU us/msg",
    "/generator_cpu_us_per_message",
    false,
);
const OTHERS: Metric = m(
    "others",
    "other processes CPU %",
    "/others_cpu_percent",
    false,
);
const P99: Metric = m("p99", "p99 us", "/latency_us/p99", false);
const CONNS: Metric = m("conns", "connections", "/connections", true);

const THROUGHPUT: &[Metric] = &[MSGS, MBS, SRV_US, SRV_CPU, GEN_CPU, GEN_US, OTHERS, P99];
const BULK: &[Metric] = &[MBS, MSGS, SRV_US, SRV_CPU, GEN_CPU, GEN_US, OTHERS];
const LATENCY: &[Metric] = &[
    P99,
    m("p50", "p50 us", "/latency_us/p50", false),
    m("p999", "p99.9 us", "/latency_us/p999", false),
    MSGS,
    SRV_US,
];
const IDLE: &[Metric] = &[
    m(
        "bytes",
        "server bytes/idle conn",
        "/server/bytes_per_connection",
        false,
    ),
    m("hs", "handshakes/s", "/handshakes_per_sec", true),
    m(
        "srv_hs_us",
        "server CPU us/handshake",
        "/server/cpu_us_per_handshake",
        false,
    ),
    m(
        "gen_cpu",
        "generator CPU % (opening)",
        "/generator_cpu_percent",
        false,
    ),
    CONNS,
];
const DEFLATE: &[Metric] = &[
    MSGS,
    MBS,
    SRV_US,
    SRV_CPU,
    GEN_CPU,
    OTHERS,
    P99,
    m(
        "reply_b",
        "reply B on the wire",
        "/wire/reply_payload_bytes_per_message",
        false,
    ),
    m(
        "reply_ratio",
        "reply compression",
        "/wire/reply_ratio",
        true,
    ),
];
const DEFLATE_MEMORY: &[Metric] = &[
    m(
        "bytes",
        "server bytes/conn",
        "/server/bytes_per_connection",
        false,
    ),
    m(
        "srv_hs_us",
        "server CPU us/conn (handshake + echo)",
        "/server/cpu_us_per_handshake",
        false,
    ),
    m(
        "echo_b",
        "echo B on the wire",
        "/echo/reply_payload_bytes_per_message",
        false,
    ),
    CONNS,
];
const CLIENT: &[Metric] = &[
    MSGS,
    MBS,
    m(
        "cli_us",
        "client CPU us/msg",
        "/client_cpu_us_per_message",
        false,
    ),
    m("cli_cpu", "client CPU %", "/client_cpu_percent", false),
];

/// The order of rows: ours first, then the peers, the bound last; a server's deflate row
/// before its plain row.
pub fn rank(name: &str) -> (usize, usize) {
    let (base, mode) = split_row(name);
    let server = [
        "tolqin",
        "tolqin-2-threads",
        "fastwebsockets",
        "tokio-tungstenite",
        "node-ws",
        "raw-tcp",
    ]
    .iter()
    .position(|n| *n == base)
    .unwrap_or(usize::MAX);
    (server, usize::from(mode == Some("plain")))
}

/// `tolqin/deflate` -> (`tolqin`, Some(`deflate`)); `tolqin` -> (`tolqin`, None).
fn split_row(name: &str) -> (&str, Option<&str>) {
    match name.split_once('/') {
        Some((base, mode)) => (base, Some(mode)),
        None => (name, None),
    }
}

/// Framing workloads first, then compression, then the client side.
fn group(workload: &str) -> u8 {
    match workload.as_bytes().first() {
        Some(b'W') => 0,
        Some(b'D') => 1,
        Some(b'C') => 2,
        _ => 3,
    }
}

fn sorted_ids(summary: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut ids: Vec<&String> = summary.keys().collect();
    ids.sort_by_key(|w| (group(w), w.to_string()));
    ids
}

fn ranked(servers: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = servers.iter().collect();
    v.sort_by_key(|(n, _)| (rank(n), n.to_string()));
    v
}

/// The metrics of a workload, the first one primary.
pub fn metrics(workload: &str) -> &'static [Metric] {
    match workload {
        "W3" => BULK,
        "W4" => LATENCY,
        "W5" => IDLE,
        "C1" | "C2" | "C3" => CLIENT,
        "D1" | "D2" | "D3" => DEFLATE,
        "D4" => DEFLATE_MEMORY,
        _ => THROUGHPUT,
    }
}

/// The title of a workload.
pub fn title(workload: &str) -> &'static str {
    match workload {
        "W1" => "W1: 100 connections x 20 B text, 1 in flight",
        "W2" => "W2: 10 connections x 16 KiB binary",
        "W3" => "W3: 1 connection x 1 MiB binary",
        "W4" => "W4: 1 connection x 20 B, round-trip latency",
        "W5" => "W5: idle connections, server memory and handshakes/s",
        "W6" => "W6: 100 connections x 20 B text, 16 in flight (pipelined)",
        "D1" => "D1: 10 connections x 20 B JSON text, deflate vs plain (under the 32 B threshold)",
        "D2" => "D2: 10 connections x 1 KiB JSON text, deflate vs plain",
        "D3" => "D3: 10 connections x 64 KiB JSON text, deflate vs plain",
        "D4" => "D4: server memory per connection after one 16 KiB JSON echo, deflate vs plain",
        "C1" => "C1 (client side): 100 connections x 20 B text, against fastwebsockets",
        "C2" => "C2 (client side): 10 connections x 16 KiB binary, against fastwebsockets",
        "C3" => "C3 (client side): 1 connection x 1 MiB binary, against fastwebsockets",
        _ => "",
    }
}

/// A one-line summary of one run, for the progress log.
pub fn brief(workload: &str, v: &Value) -> String {
    metrics(workload)
        .iter()
        .take(3)
        .filter_map(|m| {
            v.pointer(m.pointer)
                .and_then(Value::as_f64)
                .map(|x| format!("{} {}", m.label, num(x)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `summary[workload][server][metric] = {median, min, max, n, vs_raw, vs_tolqin}`; rows of
/// the compression workloads (`NAME/deflate`, `NAME/plain`) also get `vs_plain` (the same
/// server without deflate) and `vs_node_ws` (node-ws in the same mode).
pub fn summarize(runs: &[Value]) -> Value {
    // workload -> server -> metric -> values
    let mut values: BTreeMap<String, BTreeMap<String, BTreeMap<&str, Vec<f64>>>> = BTreeMap::new();
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in runs {
        let (Some(w), Some(s)) = (r["workload"].as_str(), r["server"].as_str()) else {
            continue;
        };
        let servers = order.entry(w.to_owned()).or_default();
        if !servers.iter().any(|x| x == s) {
            servers.push(s.to_owned());
        }
        let per = values
            .entry(w.to_owned())
            .or_default()
            .entry(s.to_owned())
            .or_default();
        for m in metrics(w) {
            if let Some(x) = r["result"].pointer(m.pointer).and_then(Value::as_f64)
                && x.is_finite()
            {
                per.entry(m.key).or_default().push(x);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (w, servers) in &values {
        let median_of = |server: &str, key: &str| -> Option<f64> {
            servers
                .get(server)
                .and_then(|m| m.get(key))
                .map(|v| median(v))
        };
        let mut ws = serde_json::Map::new();
        for s in &order[w] {
            let mut ms = serde_json::Map::new();
            for m in metrics(w) {
                let Some(v) = servers[s].get(m.key) else {
                    continue;
                };
                let med = median(v);
                let ratio = |reference: &str| {
                    median_of(reference, m.key)
                        .filter(|r| *r != 0.0)
                        .map(|r| med / r)
                };
                let mut entry = json!({
                    "median": med,
                    "min": v.iter().cloned().fold(f64::INFINITY, f64::min),
                    "max": v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    "n": v.len(),
                    "vs_raw_tcp": ratio("raw-tcp"),
                    "vs_tolqin": ratio("tolqin"),
                    "vs_fastwebsockets": ratio("fastwebsockets"),
                    "vs_tokio_tungstenite": ratio("tokio-tungstenite"),
                });
                if let (base, Some(mode)) = split_row(s) {
                    entry["vs_plain"] = json!(ratio(&format!("{base}/plain")));
                    entry["vs_node_ws"] = json!(ratio(&format!("node-ws/{mode}")));
                }
                ms.insert(m.key.to_owned(), entry);
            }
            ws.insert(s.clone(), Value::Object(ms));
        }
        out.insert(w.clone(), Value::Object(ws));
    }
    Value::Object(out)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A number with a sensible number of digits.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "-".into()
    } else if a >= 10_000.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        let digits = s.trim_start_matches('-');
        if x < 0.0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(x: &Value) -> String {
    x.as_f64().map_or("-".into(), |r| format!("{r:.2}x"))
}

/// The Markdown report.
pub fn markdown(doc: &Value, chart: &str) -> String {
    let mut s = String::new();
    let machine = &doc["machine"];
    let empty = serde_json::Map::new();
    let summary = doc["summary"].as_object().unwrap_or(&empty);
    let ids = sorted_ids(summary);
    // The prose of the framing and client workloads only where they ran.
    let framing = ids.iter().any(|w| group(w) != 1);
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Produced by `{}` ({} repetition(s), {} s measured after {} s warm-up per run{}). Each \
         server is single-threaded{}; the generator is `tolqin bench` (one thread). Servers \
         alternate within every workload and repetition. The table gives the median of the \
         repetitions, the min-max range, and ratios of medians.\n",
        doc["command"].as_str().unwrap_or(""),
        doc["repetitions"],
        doc["duration_secs"],
        doc["warmup_secs"],
        if summary.contains_key("W5") {
            format!("; W5 with {} idle connections", doc["idle_connections"])
        } else {
            String::new()
        },
        if doc["pinned"].as_bool() == Some(true) {
            " and pinned to CPU 0 with the generator on CPU 1 (`taskset`)"
        } else {
            " (not pinned: taskset unavailable)"
        },
    );
    let _ = writeln!(
        s,
        "**Machine**: {} CPUs ({}), {} GiB, {}; {}; node {}.\n",
        machine["nproc"].as_str().unwrap_or("?"),
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["memory_gib"],
        machine["kernel"].as_str().unwrap_or("?"),
        machine["rustc"].as_str().unwrap_or("?"),
        machine["node"].as_str().unwrap_or("-"),
    );
    let _ = writeln!(
        s,
        "**Conditions**: load average {} before, {} after (1, 5, 15 min).{}\n",
        doc["loadavg_before"].as_str().unwrap_or("?"),
        doc["loadavg_after"].as_str().unwrap_or("?"),
        doc["note"]
            .as_str()
            .map(|n| format!(" {n}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "Reading the numbers: when the generator's CPU is near 100%, the workload measured the \
         generator's ceiling and servers at that ceiling tie; compare their *server CPU us/msg* \
         instead, which does not depend on who the bottleneck is.{}\n",
        if framing {
            " `raw-tcp` answers the handshake and then echoes bytes with no WebSocket work: the \
             bound. `x raw` and `x tolqin` divide medians (for latency and memory, lower is \
             better, so a ratio below 1 is better).\n\n\
             CPU-per-message columns carry their ratio in parentheses: to raw TCP for servers, \
             to tokio-tungstenite for clients."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "![bar chart of the primary metric of each workload]({chart})\n"
    );
    if ids.iter().any(|w| group(w) == 1) {
        let _ = writeln!(
            s,
            "**Compression (D workloads)**: JSON-like text messages (chat, telemetry and presence \
             records: repeated keys, varying values), generated deterministically; each \
             connection cycles through distinct messages spanning 128 KiB, so no message recurs \
             within a 32 KiB deflate window. *deflate* rows: the generator offers \
             permessage-deflate with client_no_context_takeover (its messages are compressed \
             once before the run, and it never inflates a reply) and the server accepts it with \
             the same settings in both servers: level 6, memory level 8, 15-bit windows, the \
             server's context kept between messages, messages under 32 B sent uncompressed \
             (Node ws: `perMessageDeflate` with those values, and `compress` set per message, \
             since ws applies its `threshold` only without context takeover). *plain* rows: no \
             offer, the server's deflate off. D1-D3: 10 connections, 1 message in flight each; \
             MB/s counts uncompressed payload; *reply B on the wire* is the payload of the \
             server's echo as sent (compressed), *reply compression* the message size over it. \
             D4: {} connections each echo one 16 KiB JSON message and stay open; the server's \
             RSS growth divided by the connections. `x without deflate` divides a deflate row \
             by the same server's plain row (the cost of compression); `x node-ws` divides by \
             node-ws in the same mode.\n",
            doc["deflate_idle_connections"]
        );
    }
    for w in ids {
        let servers = summary[w.as_str()].as_object().expect("object");
        if group(w) == 1 {
            deflate_table(&mut s, w, servers);
            continue;
        }
        let ms = metrics(w);
        let primary = &ms[0];
        let client = w.starts_with('C');
        let _ = writeln!(s, "## {}\n", title(w));
        let mut head = format!(
            "| {} | {} (median) | min-max |",
            if client { "client" } else { "server" },
            primary.label
        );
        head += if client {
            " x tokio-tungstenite | x tolqin |"
        } else {
            " x raw TCP | x tolqin |"
        };
        let mut rule = String::from("|---|---:|---:|---:|---:|");
        for m in &ms[1..] {
            head += &format!(" {} |", m.label);
            rule += "---:|";
        }
        let _ = writeln!(s, "{head}\n{rule}");
        for (name, v) in ranked(servers) {
            let p = &v[primary.key];
            let mut row = format!("| {name} | {} |", median_range(p));
            if client {
                row += &format!(" {} |", ratio(&p["vs_tokio_tungstenite"]));
            } else {
                row += &format!(" {} |", ratio(&p["vs_raw_tcp"]));
            }
            row += &format!(" {} |", ratio(&p["vs_tolqin"]));
            for m in &ms[1..] {
                let med = v[m.key]["median"].as_f64().map_or("-".into(), num);
                // CPU per message is the figure that does not depend on the bottleneck: give
                // its ratio too.
                let r = match m.key {
                    "srv_us" | "srv_hs_us" => v[m.key]["vs_raw_tcp"].as_f64(),
                    "cli_us" => v[m.key]["vs_tokio_tungstenite"].as_f64(),
                    _ => None,
                };
                match r {
                    Some(r) => row += &format!(" {med} ({r:.2}x) |"),
                    None => row += &format!(" {med} |"),
                }
            }
            let _ = writeln!(s, "{row}");
        }
        let _ = writeln!(s);
    }
    s
}

/// A compression workload's table: a deflate and a plain row per server, with the cost of
/// compression (`x without deflate`) and the comparison with Node ws (`x node-ws`) for the
/// primary metric and for the server's CPU.
fn deflate_table(s: &mut String, w: &str, servers: &serde_json::Map<String, Value>) {
    let ms = metrics(w);
    let primary = &ms[0];
    let _ = writeln!(s, "## {}\n", title(w));
    let mut head = format!(
        "| server | deflate | {} (median) | min-max | x without deflate | x node-ws |",
        primary.label
    );
    let mut rule = String::from("|---|---|---:|---:|---:|---:|");
    for m in &ms[1..] {
        head += &format!(" {} |", m.label);
        rule += "---:|";
        if is_cpu(m) {
            head += " CPU x without deflate | CPU x node-ws |";
            rule += "---:|---:|";
        }
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (name, v) in ranked(servers) {
        let (base, mode) = split_row(name);
        let p = &v[primary.key];
        let mut row = format!(
            "| {base} | {} | {} | {} | {} |",
            if mode == Some("deflate") { "on" } else { "off" },
            median_range(p),
            ratio(&p["vs_plain"]),
            ratio(&p["vs_node_ws"]),
        );
        for m in &ms[1..] {
            let x = &v[m.key];
            let med = x["median"].as_f64();
            if m.key == "reply_ratio" {
                row += &format!(" {} |", med.map_or("-".into(), |r| format!("{r:.2}x")));
            } else {
                row += &format!(" {} |", med.map_or("-".into(), num));
            }
            if is_cpu(m) {
                row += &format!(" {} | {} |", ratio(&x["vs_plain"]), ratio(&x["vs_node_ws"]));
            }
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s);
}

/// A figure's median and min-max cells.
fn median_range(p: &Value) -> String {
    let cell = |k: &str| p[k].as_f64().map_or("-".into(), num);
    format!("{} | {}-{}", cell("median"), cell("min"), cell("max"))
}

/// The server's CPU per unit of work: the figure that does not depend on the bottleneck.
fn is_cpu(m: &Metric) -> bool {
    matches!(m.key, "srv_us" | "srv_hs_us")
}

/// A bar chart of each workload's primary metric (median, with min-max whiskers).
pub fn svg(doc: &Value) -> String {
    let Some(summary) = doc["summary"].as_object() else {
        return String::from("<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n");
    };
    let ids = sorted_ids(summary);
    let (width, label_w, bar_w, row_h) = (760.0, 170.0, 440.0, 18.0);
    let mut body = String::new();
    let mut y = 10.0;
    let panels: Vec<(&String, &Metric)> = ids
        .iter()
        .flat_map(|w| {
            metrics(w)
                .iter()
                .enumerate()
                .filter(|(i, m)| *i == 0 || matches!(m.key, "srv_us" | "cli_us"))
                .map(move |(_, m)| (*w, m))
        })
        .collect();
    for (w, m) in panels {
        let servers = summary[w.as_str()].as_object().expect("object");
        let max = servers
            .values()
            .filter_map(|v| v[m.key]["max"].as_f64())
            .fold(0.0_f64, f64::max)
            .max(1e-12);
        let better = if m.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(
            body,
            "<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">{} ({}, {better})</text>",
            y + 14.0,
            xml(title(w)),
            xml(m.label)
        );
        y += 22.0;
        for (name, v) in ranked(servers) {
            let med = v[m.key]["median"].as_f64().unwrap_or(0.0);
            let lo = v[m.key]["min"].as_f64().unwrap_or(med);
            let hi = v[m.key]["max"].as_f64().unwrap_or(med);
            let len = |x: f64| (x / max * bar_w).max(0.0);
            let color = match split_row(name).0 {
                "tolqin" | "tolqin-2-threads" => "#d9480f",
                "raw-tcp" => "#868e96",
                _ => "#4263eb",
            };
            let _ = writeln!(
                body,
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
                 <rect x=\"{label_w:.0}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{color}\"/>\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#000\"/>\
                 <text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                label_w - 6.0,
                y + 12.0,
                xml(name),
                y + 2.0,
                len(med),
                row_h - 4.0,
                label_w + len(lo),
                label_w + len(hi),
                y + row_h / 2.0,
                y + row_h / 2.0,
                label_w + len(hi.max(med)) + 6.0,
                y + 12.0,
                num(med)
            );
            y += row_h;
        }
        y += 10.0;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{y:.0}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n{body}</svg>\n"
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_medians_and_ratios() {
        let runs: Vec<Value> = [
            ("raw-tcp", 100.0),
            ("tolqin", 80.0),
            ("tolqin", 90.0),
            ("tolqin", 60.0),
        ]
        .iter()
        .map(|(s, x)| json!({"workload": "W1", "server": s, "result": {"messages_per_sec": x}}))
        .collect();
        let sum = summarize(&runs);
        let t = &sum["W1"]["tolqin"]["msgs"];
        assert_eq!(t["median"], 80.0);
        assert_eq!(
            (t["min"].as_f64(), t["max"].as_f64()),
            (Some(60.0), Some(90.0))
        );
        assert_eq!(t["vs_raw_tcp"].as_f64(), Some(0.8));
        let doc = json!({"summary": sum, "machine": {}});
        assert!(
            markdown(&doc, "chart.svg").contains("| tolqin | 80.0 | 60.0-90.0 | 0.80x | 1.00x |")
        );
        assert!(svg(&doc).starts_with("<svg"));
    }

    #[test]
    fn deflate_rows_get_the_cost_of_compression_and_node_ratios() {
        let runs: Vec<Value> = [
            ("tolqin/deflate", 20.0, 5000.0),
            ("tolqin/plain", 10.0, 10000.0),
            ("node-ws/deflate", 40.0, 2500.0),
            ("node-ws/plain", 12.0, 8000.0),
        ]
        .iter()
        .map(|(s, us, rate)| {
            json!({"workload": "D2", "server": s, "result": {
                "messages_per_sec": rate,
                "server": {"cpu_us_per_message": us},
            }})
        })
        .collect();
        let sum = summarize(&runs);
        let cpu = &sum["D2"]["tolqin/deflate"]["srv_us"];
        assert_eq!(cpu["vs_plain"].as_f64(), Some(2.0));
        assert_eq!(cpu["vs_node_ws"].as_f64(), Some(0.5));
        assert_eq!(
            sum["D2"]["tolqin/plain"]["msgs"]["vs_node_ws"].as_f64(),
            Some(1.25)
        );
        let doc = json!({"summary": sum, "machine": {}, "deflate_idle_connections": 1000});
        let md = markdown(&doc, "chart.svg");
        // Rows in order: tolqin deflate, tolqin plain, node-ws deflate, node-ws plain.
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| tolqin |") || l.starts_with("| node-ws |"))
            .collect();
        assert_eq!(rows.len(), 4, "{md}");
        assert!(
            rows[0].starts_with("| tolqin | on | 5000 | 5000-5000 | 0.50x | 2.00x |"),
            "{}",
            rows[0]
        );
        assert!(rows[0].contains("| 20.0 | 2.00x | 0.50x |"), "{}", rows[0]);
        assert!(rows[1].starts_with("| tolqin | off |"), "{}", rows[1]);
        assert!(rows[2].starts_with("| node-ws | on |"), "{}", rows[2]);
    }
}
