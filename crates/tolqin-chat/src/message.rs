//! Chat messages on the wire: what clients send, how the server checks and cuts it, and the
//! JSON every client receives.
//!
//! A client sends `{"user":"...","content":"..."}`, or plain text (content from an anonymous
//! user). The server removes control characters, cuts the content to the room's limit in
//! characters (never splitting one), and broadcasts
//! `{"id":N,"user":"...","content":"...","ts":UNIX_MS}`. A refused message gets
//! `{"error":"..."}` back, to its sender only.

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

/// A message that passed the checks: what the room broadcasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's name (never empty).
    pub user: String,
    /// The content, cut to the limit (never empty).
    pub content: String,
}

/// Why a message was refused; the text is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// JSON that is not `{"user": string, "content": string}`.
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
/// [`MessageError::Shape`] for a JSON object of another shape, [`MessageError::Empty`].
pub fn parse(text: &str, limits: Limits) -> Result<Incoming, MessageError> {
    let (user, content) = if text.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(text) {
            // Valid JSON: it must be our object.
            Ok(value) if value.is_object() => {
                let wire: Wire = serde_json::from_value(value)
                    .map_err(|e| MessageError::Shape(e.to_string()))?;
                (wire.user.unwrap_or_default(), wire.content)
            }
            // Not JSON after all ("{hi"): plain text.
            _ => (String::new(), text.to_string()),
        }
    } else {
        (String::new(), text.to_string())
    };
    let content = clean(&content, true);
    let content = cut(content.trim(), limits.max_chars).trim_end();
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
    Ok(Incoming {
        user,
        content: content.to_string(),
    })
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

/// The JSON of a refusal: `{"error":"..."}`.
pub fn error_json(error: &str) -> String {
    serde_json::json!({ "error": error }).to_string()
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
        assert_eq!(error_json("too \"fast\""), r#"{"error":"too \"fast\""}"#);
    }
}
