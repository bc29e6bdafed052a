//! The data a case is made of: what the fuzzer sends, what it expects back, and how the
//! connection should end.
//!
//! A [`Case`] is cheap to hold (an id, two texts and a constructor); its [`Plan`] is built only
//! when the case runs, so that the catalogue does not keep section 9's megabytes alive.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;

/// The standard close codes the cases refer to (RFC 6455 7.4.1).
pub mod code {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1007: invalid frame payload data (bad UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
}

/// A case identifier: `1.1.1`, or two components such as `2.10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(pub [u16; 3]);

impl CaseId {
    /// The section, the first component.
    pub fn section(self) -> u16 {
        self.0[0]
    }

    /// The id with `_` between components, as used in report file names (`1_1_1`).
    pub fn underscored(self) -> String {
        self.to_string().replace('.', "_")
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        if c == 0 {
            write!(f, "{a}.{b}")
        } else {
            write!(f, "{a}.{b}.{c}")
        }
    }
}

impl FromStr for CaseId {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::Error::BadCaseId(s.to_owned());
        let parts: Vec<u16> = s
            .split('.')
            .map(|p| p.parse::<u16>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [a, b] if a > 0 && b > 0 => Ok(CaseId([a, b, 0])),
            [a, b, c] if a > 0 && b > 0 && c > 0 => Ok(CaseId([a, b, c])),
            _ => Err(bad()),
        }
    }
}

/// One frame the fuzzer sends, possibly broken on purpose.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// The opcode's four bits, reserved ones included.
    pub opcode: u8,
    /// FIN.
    pub fin: bool,
    /// RSV1-3 as bits 2, 1, 0.
    pub rsv: u8,
    /// The payload, sent as is.
    pub payload: Bytes,
    /// Write the encoded frame in pieces of this many bytes, one write each.
    pub chop: Option<usize>,
    /// Write this frame on its own, rather than batched with the frames around it.
    pub sync: bool,
}

impl FrameSpec {
    /// A final frame with no reserved bits, batched with its neighbours.
    pub fn new(opcode: u8, payload: impl Into<Bytes>) -> Self {
        FrameSpec {
            opcode,
            fin: true,
            rsv: 0,
            payload: payload.into(),
            chop: None,
            sync: false,
        }
    }

    /// Sets FIN.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// Sets the reserved bits.
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    /// Sets the chop size (`None` for one write).
    pub fn chop(mut self, chop: Option<usize>) -> Self {
        self.chop = chop;
        self
    }

    /// Sets whether the frame is written on its own.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }
}

/// One step of a case's script, run in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send a frame.
    Frame(FrameSpec),
    /// Send the header of a frame whose payload follows in [`Step::FrameData`] steps.
    FrameHeader {
        /// The opcode.
        opcode: u8,
        /// FIN.
        fin: bool,
        /// The whole payload's length.
        len: u64,
    },
    /// Send the next piece of the payload announced by [`Step::FrameHeader`].
    FrameData(Bytes),
    /// Start the closing handshake: send a close frame whose payload is the code (if any)
    /// followed by `reason`, sent as is even when invalid.
    Close {
        /// The close code, if any.
        code: Option<u16>,
        /// The reason bytes.
        reason: Bytes,
    },
    /// Wait, still reading. With a tag: afterwards, if the connection is still open, record
    /// [`Event::Timeout`] with the tag and go on, otherwise stop the script. Without a tag: go
    /// on while the TCP connection is up.
    Wait {
        /// Seconds to wait.
        secs: f64,
        /// The tag recorded.
        tag: Option<&'static str>,
    },
    /// Start the closing handshake after this many seconds if the connection is still open.
    CloseAfter(f64),
    /// Drop the TCP connection after this many seconds if it is still up.
    KillAfter(f64),
}

/// What the fuzzer observes, in order; compared with the expected lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message arrived.
    Message {
        /// Its payload.
        payload: Bytes,
        /// Binary (true) or text (false).
        binary: bool,
    },
    /// A pong arrived.
    Pong(Bytes),
    /// A [`Step::Wait`] ended with the connection still open.
    Timeout(&'static str),
}

impl Event {
    /// A text message event.
    pub fn text(payload: impl Into<Bytes>) -> Self {
        Event::Message {
            payload: payload.into(),
            binary: false,
        }
    }

    /// A binary message event.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Event::Message {
            payload: payload.into(),
            binary: true,
        }
    }
}

/// How the behaviour part of the verdict is decided.
#[derive(Debug, Clone)]
pub enum Check {
    /// Compare the events received with the lists: equal to `ok` gives OK, equal to
    /// `non_strict` gives NON-STRICT, anything else FAILED. When `auto_close` is set and the
    /// events equal every list, the fuzzer starts the closing handshake (if it is expected to).
    Events {
        /// The events of a strictly conforming peer.
        ok: Vec<Event>,
        /// The events of a peer that is conforming but not strict, if that is allowed.
        non_strict: Option<Vec<Event>>,
        /// Close as soon as the events match.
        auto_close: bool,
    },
    /// A throughput case: `count` messages equal to `payload` are echoed one after another;
    /// after each echo `resend` is sent again, after the last the fuzzer closes.
    Echo {
        /// Number of round trips.
        count: usize,
        /// The message sent each time.
        payload: Bytes,
        /// Binary or text.
        binary: bool,
        /// The steps that send the message again.
        resend: Vec<Step>,
    },
    /// A permessage-deflate case (sections 12 and 13): UNIMPLEMENTED unless the extension is
    /// negotiated; then `count` compressed messages of `len` bytes, cut from `data` one after
    /// the other, are echoed one after another, each sent in frames of `frag` bytes (0: one
    /// frame).
    Compressed {
        /// Number of round trips.
        count: usize,
        /// Payload length of each message.
        len: usize,
        /// Frame size for the compressed payload (0: unfragmented).
        frag: usize,
        /// The data the messages are cut from, cyclically.
        data: Bytes,
        /// Binary or text.
        binary: bool,
    },
}

/// One permessage-deflate choice: a no-context-takeover flag and a window size (`None`: not
/// mentioned).
pub type Negotiation = (bool, Option<u8>);

/// How permessage-deflate is negotiated in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// As the client, the fuzzer's offers, in order of preference: each is
    /// (`server_no_context_takeover`, `server_max_window_bits`) requested of the server, and
    /// every offer also says the client accepts `client_no_context_takeover` and
    /// `client_max_window_bits` (Autobahn's offers).
    pub offers: &'static [Negotiation],
    /// As the server, what the fuzzer answers to the first acceptable offer: the
    /// (`client_no_context_takeover`, `client_max_window_bits`) it asks of the client, in order
    /// of preference; an offer that does not say it accepts what is asked is not acceptable.
    pub accepts: &'static [Negotiation],
}

/// How the connection is expected to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedClose {
    /// The fuzzer, not the peer, starts the closing handshake.
    pub closed_by_me: bool,
    /// The close codes accepted from the peer (none at all is accepted too).
    pub codes: Vec<u16>,
    /// A full closing handshake is required (close frames both ways, then the server drops
    /// TCP).
    pub require_clean: bool,
}

impl ExpectedClose {
    /// The fuzzer closes normally and requires a clean close.
    pub fn normal() -> Self {
        ExpectedClose {
            closed_by_me: true,
            codes: vec![code::NORMAL],
            require_clean: true,
        }
    }

    /// The peer fails the connection with `code`; a dropped TCP connection is acceptable.
    pub fn peer_fails(code: u16) -> Self {
        ExpectedClose {
            closed_by_me: false,
            codes: vec![code],
            require_clean: false,
        }
    }
}

/// Rules applied after the verdict, as some Autobahn cases do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// None.
    None,
    /// A wrong close code from the peer fails the behaviour too (section 7).
    WrongCodeFails,
    /// The outcome is recorded but both verdicts are INFORMATIONAL.
    Informational,
}

/// Everything needed to run one case.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The script.
    pub steps: Vec<Step>,
    /// How the behaviour is judged.
    pub check: Check,
    /// How the connection should end.
    pub close: ExpectedClose,
    /// Rules applied after judging.
    pub post: Post,
    /// The duration matters (section 9): it is shown in the summary.
    pub report_time: bool,
    /// Upper bound on the whole case, in seconds, after which the fuzzer drops the connection.
    pub limit_secs: f64,
    /// permessage-deflate negotiation, for sections 12 and 13 only.
    pub deflate: Option<Deflate>,
}

impl Plan {
    /// A plan judged by [`Check::Events`] with auto close, no post rule, a 10 s limit.
    pub fn events(steps: Vec<Step>, ok: Vec<Event>, close: ExpectedClose) -> Self {
        Plan {
            steps,
            check: Check::Events {
                ok,
                non_strict: None,
                auto_close: true,
            },
            close,
            post: Post::None,
            report_time: false,
            limit_secs: 10.0,
            deflate: None,
        }
    }

    /// Adds a NON-STRICT alternative.
    pub fn non_strict(mut self, events: Vec<Event>) -> Self {
        if let Check::Events { non_strict, .. } = &mut self.check {
            *non_strict = Some(events);
        }
        self
    }

    /// Keeps the fuzzer from closing when the events match (Autobahn's `suppressClose`).
    pub fn no_auto_close(mut self) -> Self {
        if let Check::Events { auto_close, .. } = &mut self.check {
            *auto_close = false;
        }
        self
    }

    /// Sets the post rule.
    pub fn post(mut self, post: Post) -> Self {
        self.post = post;
        self
    }
}

/// A case of the catalogue.
#[derive(Clone)]
pub struct Case {
    /// Its id.
    pub id: CaseId,
    /// What the fuzzer does.
    pub description: String,
    /// What a conforming peer does.
    pub expectation: String,
    make: Arc<dyn Fn() -> Plan + Send + Sync>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Case {
    /// A case whose plan `make` builds when it runs.
    pub fn new(
        id: [u16; 3],
        description: impl Into<String>,
        expectation: impl Into<String>,
        make: impl Fn() -> Plan + Send + Sync + 'static,
    ) -> Self {
        Case {
            id: CaseId(id),
            description: description.into(),
            expectation: expectation.into(),
            make: Arc::new(make),
        }
    }

    /// Builds the plan.
    pub fn plan(&self) -> Plan {
        (self.make)()
    }
}

/// Selects case ids with Autobahn's patterns: comma-separated, `*` matches any run of
/// characters, anything else matches itself (`1.*`, `6.4.*`, `2.10`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    /// A selection from comma-separated include and exclude lists; an empty include list
    /// selects everything.
    pub fn new(include: &str, exclude: &str) -> Self {
        let split = |s: &str| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        Selection {
            include: split(include),
            exclude: split(exclude),
        }
    }

    /// Whether `id` is selected.
    pub fn matches(&self, id: CaseId) -> bool {
        let id = id.to_string();
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, &id)))
            && !self.exclude.iter().any(|p| glob(p, &id))
    }
}

/// `*`-only glob over the whole string.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    let (last, middle) = pieces
        .split_last()
        .expect("split yields one piece at least");
    for piece in middle {
        match text.find(piece) {
            Some(at) => text = &text[at + piece.len()..],
            None => return false,
        }
    }
    text.len() >= last.len() && text.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_round_trip_and_sort_numerically() {
        let mut ids: Vec<CaseId> = ["2.10", "2.9", "1.1.1", "10.1.1", "9.1.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["1.1.1", "2.9", "2.10", "9.1.1", "10.1.1"]);
        assert!("1".parse::<CaseId>().is_err());
        assert!("1.x".parse::<CaseId>().is_err());
        assert_eq!(CaseId([6, 4, 3]).underscored(), "6_4_3");
    }

    #[test]
    fn selection_follows_autobahn_patterns() {
        let id = |s: &str| s.parse::<CaseId>().unwrap();
        let sel = Selection::new("1.*,6.4.*", "1.2.*");
        assert!(sel.matches(id("1.1.8")));
        assert!(!sel.matches(id("1.2.1")));
        assert!(sel.matches(id("6.4.3")));
        assert!(!sel.matches(id("6.5.1")));
        assert!(!sel.matches(id("10.1.1")));
        let all = Selection::new("", "12.*,13.*");
        assert!(all.matches(id("9.7.6")));
        assert!(!all.matches(id("12.1.1")));
        assert!(Selection::new("2.1", "").matches(id("2.1")));
        assert!(!Selection::new("2.1", "").matches(id("2.10")));
        assert!(Selection::new("*.1.*", "").matches(id("9.1.6")));
    }
}
