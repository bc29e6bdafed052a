//! Chat messages on the wire: what clients send, how the server checks and cuts it, and the
//! JSON every client receives.
//!
//! A client sends `{"user":"...","content":"..."}`, or plain text (content from an anonymous
//! user), optionally with `"cid":"..."`, a token of its choosing. The server removes control
//! characters, cuts the content to the room's limit in characters (never splitting one), and
//! broadcasts `{"id":N,"user":"...","content":"...","ts":UNIX_MS}` (the same bytes to
//! everyone).
//!
//! The sender alone may get one more message about its own:
//!
//! - accepted, with a `cid` or cut: [`Reply`], `{"ack":"CID","id":N}` (`ack` only with a
//!   `cid`), with `"notice":"cut","max_chars":50` when the content was cut;
//! - refused: [`Refusal`], `{"error":CODE,...,"message":"...","cid":"CID"}`: `CODE` is one of
//!   [`Refusal::code`]'s, for pages to word in their language, `message` is English for
//!   people reading the raw JSON, and `cid` is there when the message carried one.

use serde::{Deserialize, Serialize};

/// The name shown for a message without one.
pub const ANONYMOUS: &str = "anonymous";

/// Limits applied to incoming messages.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Content is cut to this many characters.
    pub max_chars: usize,
    /// User names are cut to this many characters.
    pub max_user_chars: usize,
}

/// Longest `cid` accepted, in bytes.
pub const MAX_CID_BYTES: usize = 64;

/// A message that passed the checks: what the room broadcasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's name (never empty).
    pub user: String,
    /// The content, cut to the limit (never empty).
    pub content: String,
}

/// An accepted message with what its sender is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the room broadcasts.
    pub message: Incoming,
    /// The sender's token for this message, echoed back to it alone.
    pub cid: Option<String>,
    /// The content was longer than the limit and was cut.
    pub cut: bool,
}

/// Why a message was refused; the text is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// JSON that is not `{"user": string, "content": string[, "cid": string]}`.
    #[error("expected {{\"user\":\"...\",\"content\":\"...\"}} or plain text: {0}")]
    Shape(String),
    /// Nothing to show once control characters and spaces are removed.
    #[error("empty message")]
    Empty,
    /// A binary message.
    #[error("binary messages are not accepted: send text or JSON")]
    Binary,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    user: Option<String>,
    content: String,
    #[serde(default)]
    cid: Option<String>,
}

/// Checks and normalises one text message.
///
/// ```
/// use tolqin_chat::message::{Incoming, Limits, parse};
/// let limits = Limits { max_chars: 5, max_user_chars: 10 };
/// assert_eq!(
///     parse(r#"{"user":"Ali","content":"salom dunyo"}"#, limits).unwrap(),
///     Incoming { user: "Ali".into(), content: "salom".into() },
/// );
/// assert_eq!(parse("hi", limits).unwrap().user, "anonymous");
/// ```
///
/// # Errors
/// As [`parse_request`].
pub fn parse(text: &str, limits: Limits) -> Result<Incoming, MessageError> {
    parse_request(text, limits).map(|request| request.message)
}

/// Checks and normalises one text message, keeping its `cid` and whether it was cut.
///
/// ```
/// use tolqin_chat::message::{Limits, parse_request};
/// let limits = Limits { max_chars: 5, max_user_chars: 10 };
/// let request = parse_request(r#"{"content":"salom dunyo","cid":"c1"}"#, limits).unwrap();
/// assert_eq!((request.message.content.as_str(), request.cid.as_deref(), request.cut),
///            ("salom", Some("c1"), true));
/// ```
///
/// # Errors
/// [`MessageError::Shape`] for a JSON object of another shape (or a `cid` longer than
/// [`MAX_CID_BYTES`]), [`MessageError::Empty`].
pub fn parse_request(text: &str, limits: Limits) -> Result<Request, MessageError> {
    let (user, content, cid) = if text.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(text) {
            // Valid JSON: it must be our object.
            Ok(value) if value.is_object() => {
                let wire: Wire = serde_json::from_value(value)
                    .map_err(|e| MessageError::Shape(e.to_string()))?;
                if wire.cid.as_ref().is_some_and(|c| c.len() > MAX_CID_BYTES) {
                    return Err(MessageError::Shape(format!(
                        "cid longer than {MAX_CID_BYTES} bytes"
                    )));
                }
                (wire.user.unwrap_or_default(), wire.content, wire.cid)
            }
            // Not JSON after all ("{hi"): plain text.
            _ => (String::new(), text.to_string(), None),
        }
    } else {
        (String::new(), text.to_string(), None)
    };
    let content = clean(&content, true);
    let whole = content.trim();
    let kept = cut(whole, limits.max_chars);
    let was_cut = kept.len() < whole.len();
    let content = kept.trim_end();
    if content.is_empty() {
        return Err(MessageError::Empty);
    }
    let user = clean(&user, false);
    let user = cut(user.trim(), limits.max_user_chars).trim_end();
    let user = if user.is_empty() {
        ANONYMOUS.to_string()
    } else {
        user.to_string()
    };
    Ok(Request {
        message: Incoming {
            user,
            content: content.to_string(),
        },
        cid,
        cut: was_cut,
    })
}

/// The `cid` of a message the server refuses without reading it (over the rate, say), if it
/// is a JSON object with a short string `cid`: so the sender knows which message was refused.
pub fn cid_of(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    #[derive(Deserialize)]
    struct Cid {
        cid: Option<String>,
    }
    serde_json::from_str::<Cid>(text)
        .ok()?
        .cid
        .filter(|c| c.len() <= MAX_CID_BYTES)
}

/// Removes control characters (keeping newlines and tabs in content).
fn clean(text: &str, multiline: bool) -> String {
    text.chars()
        .filter(|&c| !c.is_control() || (multiline && (c == '\n' || c == '\t')))
        .collect()
}

/// The first `max` characters of `text` as a person counts them: extended grapheme clusters
/// (UAX #29), so an emoji made of several code points (a family joined by U+200D, a flag of
/// two regional indicators, a letter with its combining accents) counts once and is kept or
/// dropped whole, never left half.
///
/// ```
/// use tolqin_chat::message::cut;
/// assert_eq!(cut("añb", 2), "añ");
/// // 👨‍👩‍👧 is five code points joined by U+200D: one character to a reader.
/// assert_eq!(cut("ab👨‍👩‍👧c", 3), "ab👨‍👩‍👧");
/// assert_eq!(cut("ab🇺🇿c", 2), "ab");
/// ```
pub fn cut(text: &str, max: usize) -> &str {
    use unicode_segmentation::UnicodeSegmentation;
    match text.grapheme_indices(true).nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A broadcast message as every client receives it.
#[derive(Debug, Serialize)]
pub struct Outgoing<'a> {
    /// Room-wide sequence number, from 1, in the order the server received the messages.
    pub id: u64,
    /// The sender's name.
    pub user: &'a str,
    /// The content.
    pub content: &'a str,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub ts: u64,
}

impl Outgoing<'_> {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Serialising strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the sender of an accepted message is told, to it alone: that the room has it (when
/// it carried a `cid`) and whether it was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply<'a> {
    /// The message's `cid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<&'a str>,
    /// The id the room gave the message.
    pub id: u64,
    /// `"cut"` when the content was cut to `max_chars`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'static str>,
    /// The limit the content was cut to (with `notice`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

impl<'a> Reply<'a> {
    /// The reply to `request`, broadcast with `id`, or `None` when there is nothing to say
    /// (no `cid`, not cut): a plain client sees only the broadcast.
    pub fn to(request: &'a Request, id: u64, max_chars: usize) -> Option<Self> {
        if request.cid.is_none() && !request.cut {
            return None;
        }
        Some(Reply {
            ack: request.cid.as_deref(),
            id,
            notice: request.cut.then_some("cut"),
            max_chars: request.cut.then_some(max_chars),
        })
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the server refused a message, as its sender is told.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Over the client's rate limit; the next message is accepted in `retry_ms`.
    #[error("rate limit: at most {rate} messages per second (bursts of {burst})")]
    RateLimited {
        /// Milliseconds until the next message is accepted.
        retry_ms: u64,
        /// The limit, in messages per second.
        rate: f64,
        /// The burst allowed.
        burst: u32,
    },
    /// Larger than the configured maximum.
    #[error("message too large: {bytes} bytes, at most {max}")]
    TooLarge {
        /// The message's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid message.
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl Refusal {
    /// The code pages word: `rate_limited`, `too_large`, `bad_shape`, `empty`, `binary`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Message(MessageError::Shape(_)) => "bad_shape",
            Refusal::Message(MessageError::Empty) => "empty",
            Refusal::Message(MessageError::Binary) => "binary",
        }
    }

    /// The JSON sent to the sender: `{"error":CODE,...details,"message":"...","cid":"..."}`.
    ///
    /// ```
    /// use tolqin_chat::message::Refusal;
    /// let refusal = Refusal::RateLimited { retry_ms: 180, rate: 5.0, burst: 10 };
    /// assert_eq!(
    ///     refusal.to_json(Some("c7")),
    ///     r#"{"error":"rate_limited","retry_ms":180,"message":"rate limit: at most 5 messages per second (bursts of 10)","cid":"c7"}"#,
    /// );
    /// ```
    pub fn to_json(&self, cid: Option<&str>) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            error: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_ms: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            bytes: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            max: Option<usize>,
            message: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            cid: Option<&'a str>,
        }
        let (retry_ms, bytes, max) = match self {
            Refusal::RateLimited { retry_ms, .. } => (Some(*retry_ms), None, None),
            Refusal::TooLarge { bytes, max } => (None, Some(*bytes), Some(*max)),
            Refusal::Message(_) => (None, None, None),
        };
        let json = Json {
            error: self.code(),
            retry_ms,
            bytes,
            max,
            message: self.to_string(),
            cid,
        };
        // Strings and integers: serialising cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_chars: 50,
        max_user_chars: 32,
    };

    #[test]
    fn json_plain_text_and_refusals() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                r#"{"user":"Ali","content":"salom"}"#,
                Some(("Ali", "salom")),
            ),
            (r#"{"content":"no name"}"#, Some((ANONYMOUS, "no name"))),
            (r#"{"user":"  ","content":"x"}"#, Some((ANONYMOUS, "x"))),
            (r#"{"user":null,"content":"x"}"#, Some((ANONYMOUS, "x"))),
            ("plain text", Some((ANONYMOUS, "plain text"))),
            ("{not json", Some((ANONYMOUS, "{not json"))),
            ("42", Some((ANONYMOUS, "42"))),
            ("  padded  ", Some((ANONYMOUS, "padded"))),
            ("a\u{0}b\u{7}c\nd", Some((ANONYMOUS, "abc\nd"))),
            (r#"{"user":"a\u0000b","content":"x"}"#, Some(("ab", "x"))),
            (r#"{"user":"Ali"}"#, None),
            (r#"{"user":1,"content":"x"}"#, None),
            (r#"{"content":["x"]}"#, None),
            (r#"{"content":"   "}"#, None),
            ("", None),
            ("\u{1}\u{2}", None),
        ];
        for (input, expected) in cases {
            let got = parse(input, LIMITS);
            match expected {
                Some((user, content)) => {
                    let got = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    assert_eq!((got.user.as_str(), got.content.as_str()), (*user, *content));
                }
                None => assert!(got.is_err(), "{input:?} accepted: {got:?}"),
            }
        }
    }

    #[test]
    fn content_is_cut_in_characters_never_splitting_one() {
        let sixty = "x".repeat(60);
        assert_eq!(parse(&sixty, LIMITS).unwrap().content.chars().count(), 50);
        // Two-, three- and four-byte characters: 60 of each, cut to 50 whole ones.
        for c in ['ў', '中', '😀'] {
            let text: String = std::iter::repeat_n(c, 60).collect();
            let content = parse(&text, LIMITS).unwrap().content;
            assert_eq!(content.chars().count(), 50);
            assert!(content.chars().all(|x| x == c));
        }
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("abc", 10), "abc");
        // Issue 21: 48 letters and a family, 49 letters and a flag: whole or not at all.
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        let text = format!("{}{family}tail", "x".repeat(48));
        assert_eq!(cut(&text, 50), format!("{}{family}t", "x".repeat(48)));
        assert_eq!(cut(&text, 49), format!("{}{family}", "x".repeat(48)));
        assert_eq!(cut(&text, 48), "x".repeat(48));
        let text = format!("{}🇺🇿🇺🇿", "x".repeat(49));
        assert_eq!(cut(&text, 50), format!("{}🇺🇿", "x".repeat(49)));
        // A letter with two combining marks is one character.
        let text = "e\u{301}\u{302}".repeat(60);
        assert_eq!(cut(&text, 50), "e\u{301}\u{302}".repeat(50));
        let long_name = format!(r#"{{"user":"{}","content":"x"}}"#, "n".repeat(40));
        assert_eq!(parse(&long_name, LIMITS).unwrap().user.len(), 32);
    }

    #[test]
    fn outgoing_json_escapes_what_it_must() {
        let json = Outgoing {
            id: 7,
            user: "a\"b",
            content: "<img src=x onerror=alert(1)>",
            ts: 1,
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"id":7,"user":"a\"b","content":"<img src=x onerror=alert(1)>","ts":1}"#
        );
    }

    #[test]
    fn cid_cut_replies_and_refusals() {
        let r = parse_request(r#"{"user":"A","content":"hi","cid":"c1"}"#, LIMITS).unwrap();
        assert_eq!((r.cid.as_deref(), r.cut), (Some("c1"), false));
        assert_eq!(
            Reply::to(&r, 4, 50).unwrap().to_json(),
            r#"{"ack":"c1","id":4}"#
        );
        // Cut: told even without a cid. Trailing spaces trimmed are not a cut.
        let long = format!("{}👨\u{200d}👩\u{200d}👧tail", "x".repeat(48));
        let r = parse_request(&long, LIMITS).unwrap();
        assert!(r.cut && r.cid.is_none());
        assert_eq!(
            Reply::to(&r, 5, 50).unwrap().to_json(),
            r#"{"id":5,"notice":"cut","max_chars":50}"#
        );
        let r = parse_request("short   ", LIMITS).unwrap();
        assert!(!r.cut);
        assert_eq!(Reply::to(&r, 6, 50), None);
        let too_long_cid = format!(r#"{{"content":"x","cid":"{}"}}"#, "c".repeat(65));
        assert!(matches!(
            parse_request(&too_long_cid, LIMITS),
            Err(MessageError::Shape(_))
        ));
        assert_eq!(
            cid_of(r#"{"content":"x","cid":"c9"}"#).as_deref(),
            Some("c9")
        );
        assert_eq!(cid_of(&too_long_cid), None);
        assert_eq!(cid_of("plain"), None);
        assert_eq!(cid_of(r#"{"cid":3}"#), None);
        for (refusal, code) in [
            (
                Refusal::RateLimited {
                    retry_ms: 1,
                    rate: 1.0,
                    burst: 1,
                },
                "rate_limited",
            ),
            (Refusal::TooLarge { bytes: 9, max: 8 }, "too_large"),
            (MessageError::Shape("x".into()).into(), "bad_shape"),
            (MessageError::Empty.into(), "empty"),
            (MessageError::Binary.into(), "binary"),
        ] {
            let json: serde_json::Value = serde_json::from_str(&refusal.to_json(None)).unwrap();
            assert_eq!(json["error"], code);
            assert_eq!(json["message"], refusal.to_string());
            assert!(json.get("cid").is_none());
        }
        assert_eq!(
            Refusal::TooLarge { bytes: 9, max: 8 }.to_json(Some("a\"b")),
            r#"{"error":"too_large","bytes":9,"max":8,"message":"message too large: 9 bytes, at most 8","cid":"a\"b"}"#
        );
    }
}
