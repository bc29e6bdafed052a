//! Counters of the chat server, rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The server's counters; every field is updated with relaxed atomics (no lock).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Chat sockets open now.
    pub connections: AtomicU64,
    /// Chat sockets opened since the start.
    pub connections_total: AtomicU64,
    /// `/hello` sockets opened since the start.
    pub hello_connections_total: AtomicU64,
    /// Upgrade requests refused (bad origin, no session, malformed).
    pub handshakes_rejected: AtomicU64,
    /// Messages received from chat clients.
    pub messages_in: AtomicU64,
    /// Messages broadcast (each counted once, however many recipients).
    pub messages_broadcast: AtomicU64,
    /// Messages queued to clients (broadcast deliveries, history, error replies).
    pub messages_out: AtomicU64,
    /// Messages refused (rate limit, size, shape) with an error to their sender.
    pub messages_refused: AtomicU64,
    /// Clients closed with 1008 because their outgoing queue was full.
    pub dropped_slow: AtomicU64,
    /// Clients closed with 1008 for repeated refused messages.
    pub dropped_abuse: AtomicU64,
    /// TCP connections open now (pages and sockets, both listeners).
    pub tcp_connections: AtomicU64,
    /// Connections refused (503) because [`crate::ChatConfig::max_connections`] were open.
    pub refused_total_limit: AtomicU64,
    /// Connections refused (503) because their IP address had its
    /// [`crate::ChatConfig::max_connections_per_ip`] open.
    pub refused_per_ip_limit: AtomicU64,
    /// Requests refused (421) for a `Host` this server does not answer for.
    pub hosts_rejected: AtomicU64,
    /// Messages refused because the room was over its rate.
    pub room_limited: AtomicU64,
    /// `/hello` sockets closed (1008) for sending no first message in time.
    pub hello_timeouts: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Subtracts `n` from a gauge.
    pub(crate) fn sub(gauge: &AtomicU64, n: u64) {
        gauge.fetch_sub(n, Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, &AtomicU64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Relaxed));
            }
        };
        metric(
            "tolqin_chat_connections",
            "gauge",
            "Chat WebSocket connections open now.",
            &[("", &self.connections)],
        );
        metric(
            "tolqin_chat_connections_total",
            "counter",
            "WebSocket connections opened, by endpoint.",
            &[
                ("{endpoint=\"ws\"}", &self.connections_total),
                ("{endpoint=\"hello\"}", &self.hello_connections_total),
            ],
        );
        metric(
            "tolqin_chat_handshakes_rejected_total",
            "counter",
            "Upgrade requests refused (foreign origin, no session cookie, malformed).",
            &[("", &self.handshakes_rejected)],
        );
        metric(
            "tolqin_chat_messages_in_total",
            "counter",
            "Messages received from chat clients.",
            &[("", &self.messages_in)],
        );
        metric(
            "tolqin_chat_messages_broadcast_total",
            "counter",
            "Messages broadcast to the room.",
            &[("", &self.messages_broadcast)],
        );
        metric(
            "tolqin_chat_messages_out_total",
            "counter",
            "Messages queued to clients (one per recipient).",
            &[("", &self.messages_out)],
        );
        metric(
            "tolqin_chat_messages_refused_total",
            "counter",
            "Messages refused with an error to their sender.",
            &[("", &self.messages_refused)],
        );
        metric(
            "tolqin_chat_clients_dropped_total",
            "counter",
            "Clients closed with 1008, by reason.",
            &[
                ("{reason=\"too_slow\"}", &self.dropped_slow),
                ("{reason=\"abuse\"}", &self.dropped_abuse),
            ],
        );
        metric(
            "tolqin_chat_tcp_connections",
            "gauge",
            "TCP connections open now (pages and sockets).",
            &[("", &self.tcp_connections)],
        );
        metric(
            "tolqin_chat_connections_refused_total",
            "counter",
            "Connections refused with 503, by limit.",
            &[
                ("{limit=\"total\"}", &self.refused_total_limit),
                ("{limit=\"per_ip\"}", &self.refused_per_ip_limit),
            ],
        );
        metric(
            "tolqin_chat_hosts_rejected_total",
            "counter",
            "Requests refused with 421 for a Host this server does not answer for.",
            &[("", &self.hosts_rejected)],
        );
        metric(
            "tolqin_chat_room_limited_total",
            "counter",
            "Messages refused because the room was over its rate.",
            &[("", &self.room_limited)],
        );
        metric(
            "tolqin_chat_hello_timeouts_total",
            "counter",
            "/hello sockets closed for sending no first message in time.",
            &[("", &self.hello_timeouts)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        Metrics::add(&m.dropped_slow, 2);
        let text = m.render();
        assert!(text.contains("# TYPE tolqin_chat_clients_dropped_total counter\n"));
        assert!(text.contains("tolqin_chat_clients_dropped_total{reason=\"too_slow\"} 2\n"));
        assert!(text.contains("tolqin_chat_connections 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
        }
    }
}
