//! Verdicts, and how an observed run is judged against a plan (Autobahn's rules).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::case::{Check, Event, ExpectedClose, Plan, Post};

/// A verdict on the behaviour or on the close, spelled as in Autobahn's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// As the RFC requires.
    #[serde(rename = "OK")]
    Ok,
    /// Conforming, but not what a strict implementation does (a SHOULD not followed).
    #[serde(rename = "NON-STRICT")]
    NonStrict,
    /// The RFC leaves it open; recorded for information.
    #[serde(rename = "INFORMATIONAL")]
    Informational,
    /// The peer does not implement the feature (permessage-deflate).
    #[serde(rename = "UNIMPLEMENTED")]
    Unimplemented,
    /// Close only: the peer's close code is not one of those expected.
    #[serde(rename = "WRONG CODE")]
    WrongCode,
    /// Close only: the closing handshake was required to be clean and was not.
    #[serde(rename = "UNCLEAN")]
    Unclean,
    /// Close only: the fuzzer (as the client) had to drop the TCP connection.
    #[serde(rename = "FAILED BY CLIENT")]
    FailedByClient,
    /// Not conforming.
    #[serde(rename = "FAILED")]
    Failed,
}

impl Verdict {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Informational => "INFORMATIONAL",
            Verdict::Unimplemented => "UNIMPLEMENTED",
            Verdict::WrongCode => "WRONG CODE",
            Verdict::Unclean => "UNCLEAN",
            Verdict::FailedByClient => "FAILED BY CLIENT",
            Verdict::Failed => "FAILED",
        }
    }

    /// The class that decides the exit status: [`Verdict::Failed`] for FAILED and UNCLEAN,
    /// [`Verdict::NonStrict`] for NON-STRICT, WRONG CODE and FAILED BY CLIENT (which Autobahn's
    /// report colours as "almost"), and the verdict itself otherwise.
    pub fn class(self) -> Verdict {
        match self {
            Verdict::Failed | Verdict::Unclean => Verdict::Failed,
            Verdict::NonStrict | Verdict::WrongCode | Verdict::FailedByClient => Verdict::NonStrict,
            other => other,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the fuzzer saw of one run, as far as judging needs.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Events, in order.
    pub received: Vec<Event>,
    /// The fuzzer is the server (testing a client).
    pub is_server: bool,
    /// The fuzzer sent the first close frame.
    pub closed_by_me: bool,
    /// The fuzzer dropped the TCP connection.
    pub dropped_by_me: bool,
    /// Close frames went both ways and the server dropped TCP in time.
    pub was_clean: bool,
    /// The code of the peer's close frame, if it had one.
    pub remote_close_code: Option<u16>,
    /// For [`Check::Echo`] and [`Check::Compressed`]: whether every echo arrived intact, and
    /// if not, why.
    pub echo: Option<Result<(), String>>,
    /// For [`Check::Compressed`]: whether permessage-deflate was negotiated.
    pub deflate_negotiated: bool,
}

/// The two verdicts with their explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The behaviour verdict.
    pub behavior: Verdict,
    /// Why.
    pub result: String,
    /// The close verdict.
    pub behavior_close: Verdict,
    /// Why.
    pub result_close: String,
}

/// Judges a run against its plan.
pub fn judge(plan: &Plan, seen: &Observed) -> Judgement {
    let (mut behavior, mut result) = match &plan.check {
        Check::Events { ok, non_strict, .. } => {
            if &seen.received == ok {
                (
                    Verdict::Ok,
                    "Actual events match at least one expected.".to_owned(),
                )
            } else if non_strict.as_ref() == Some(&seen.received) {
                (
                    Verdict::NonStrict,
                    "Actual events match at least one expected.".to_owned(),
                )
            } else {
                (
                    Verdict::Failed,
                    "Actual events differ from any expected.".to_owned(),
                )
            }
        }
        Check::Echo { count, .. } => match &seen.echo {
            Some(Ok(())) => (
                Verdict::Ok,
                format!("Received all {count} echoed messages."),
            ),
            Some(Err(why)) => (Verdict::Failed, why.clone()),
            None => (
                Verdict::Failed,
                "Did not receive the echoed messages in time.".to_owned(),
            ),
        },
        Check::Compressed { .. } if !seen.deflate_negotiated => (
            Verdict::Unimplemented,
            "The peer did not negotiate permessage-deflate.".to_owned(),
        ),
        Check::Compressed { count, .. } => match &seen.echo {
            Some(Ok(())) => (
                Verdict::Ok,
                format!("Received all {count} echoed messages."),
            ),
            Some(Err(why)) => (Verdict::Failed, why.clone()),
            None => (
                Verdict::Failed,
                "Did not receive the echoed messages in time.".to_owned(),
            ),
        },
    };
    let (mut behavior_close, result_close) = judge_close(&plan.close, seen);
    match plan.post {
        Post::None => {}
        Post::WrongCodeFails => {
            if behavior_close == Verdict::WrongCode {
                behavior = Verdict::Failed;
                result = result_close.clone();
            }
        }
        Post::Informational => {
            behavior = Verdict::Informational;
            behavior_close = Verdict::Informational;
            result = format!("Implementation-defined; observed: {result}");
        }
    }
    Judgement {
        behavior,
        result,
        behavior_close,
        result_close,
    }
}

fn judge_close(expected: &ExpectedClose, seen: &Observed) -> (Verdict, String) {
    if expected.closed_by_me != seen.closed_by_me {
        (
            Verdict::Failed,
            "The connection was failed by the wrong endpoint.".to_owned(),
        )
    } else if expected.require_clean && !seen.was_clean {
        (
            Verdict::Unclean,
            "The RFC requires the connection to be closed cleanly here.".to_owned(),
        )
    } else if let Some(code) = seen
        .remote_close_code
        .filter(|c| !expected.codes.contains(c))
    {
        let codes: Vec<String> = expected.codes.iter().map(u16::to_string).collect();
        (
            Verdict::WrongCode,
            format!(
                "The close code should have been {} or empty, not {code}.",
                codes.join(",")
            ),
        )
    } else if !seen.is_server && seen.dropped_by_me {
        (
            Verdict::FailedByClient,
            "It is preferred that the server close the TCP connection.".to_owned(),
        )
    } else {
        (Verdict::Ok, "Connection was properly closed.".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Step, code};
    use bytes::Bytes;

    fn plan(ok: Vec<Event>, non_strict: Option<Vec<Event>>, close: ExpectedClose) -> Plan {
        let mut p = Plan::events(Vec::<Step>::new(), ok, close);
        if let Some(ns) = non_strict {
            p = p.non_strict(ns);
        }
        p
    }

    fn clean_client() -> Observed {
        Observed {
            closed_by_me: true,
            was_clean: true,
            remote_close_code: Some(1000),
            ..Observed::default()
        }
    }

    #[test]
    fn events_pick_ok_then_non_strict_then_failed() {
        let hello = Event::text(Bytes::from_static(b"Hello"));
        let p = plan(
            vec![hello.clone()],
            Some(vec![]),
            ExpectedClose::peer_fails(code::PROTOCOL_ERROR),
        );
        let mut seen = Observed {
            received: vec![hello.clone()],
            remote_close_code: Some(1002),
            ..Observed::default()
        };
        assert_eq!(judge(&p, &seen).behavior, Verdict::Ok);
        seen.received.clear();
        assert_eq!(judge(&p, &seen).behavior, Verdict::NonStrict);
        seen.received = vec![hello.clone(), hello];
        assert_eq!(judge(&p, &seen).behavior, Verdict::Failed);
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::Ok);
    }

    #[test]
    fn close_rules_in_autobahn_order() {
        let p = plan(vec![], None, ExpectedClose::normal());
        assert_eq!(judge(&p, &clean_client()).behavior_close, Verdict::Ok);
        // The peer closed first although the fuzzer was expected to.
        let seen = Observed {
            closed_by_me: false,
            ..clean_client()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::Failed);
        let seen = Observed {
            was_clean: false,
            ..clean_client()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::Unclean);
        let seen = Observed {
            remote_close_code: Some(1001),
            ..clean_client()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::WrongCode);
        let seen = Observed {
            remote_close_code: None,
            ..clean_client()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::Ok);
        // Dropping TCP as the client is only "almost"; as the server it is fine.
        let p = plan(
            vec![],
            None,
            ExpectedClose::peer_fails(code::PROTOCOL_ERROR),
        );
        let seen = Observed {
            dropped_by_me: true,
            ..Observed::default()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::FailedByClient);
        let seen = Observed {
            dropped_by_me: true,
            is_server: true,
            ..Observed::default()
        };
        assert_eq!(judge(&p, &seen).behavior_close, Verdict::Ok);
    }

    #[test]
    fn post_rules() {
        let p = plan(vec![], None, ExpectedClose::normal()).post(Post::WrongCodeFails);
        let seen = Observed {
            remote_close_code: Some(1002),
            ..clean_client()
        };
        let j = judge(&p, &seen);
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Verdict::Failed, Verdict::WrongCode)
        );
        let p = plan(vec![], None, ExpectedClose::normal()).post(Post::Informational);
        let j = judge(&p, &Observed::default());
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Verdict::Informational, Verdict::Informational)
        );
    }

    #[test]
    fn deflate_declined_is_unimplemented() {
        let mut p = plan(vec![], None, ExpectedClose::normal());
        p.check = Check::Compressed {
            count: 1,
            len: 1,
            frag: 0,
            data: Bytes::from_static(b"x"),
            binary: false,
        };
        let j = judge(&p, &clean_client());
        assert_eq!(
            (j.behavior, j.behavior_close),
            (Verdict::Unimplemented, Verdict::Ok)
        );
    }

    #[test]
    fn verdict_classes_and_names() {
        assert_eq!(Verdict::Unclean.class(), Verdict::Failed);
        assert_eq!(Verdict::WrongCode.class(), Verdict::NonStrict);
        assert_eq!(Verdict::FailedByClient.class(), Verdict::NonStrict);
        assert_eq!(Verdict::Informational.class(), Verdict::Informational);
        assert_eq!(
            serde_json::to_string(&Verdict::NonStrict).unwrap(),
            "\"NON-STRICT\""
        );
        let v: Verdict = serde_json::from_str("\"WRONG CODE\"").unwrap();
        assert_eq!(v, Verdict::WrongCode);
    }
}
