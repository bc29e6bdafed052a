//! Header value grammars of the handshake: token lists, `Sec-WebSocket-Protocol` and
//! `Sec-WebSocket-Extensions` (RFC 6455 4.3 and 9.1), and the wire spelling of header names.

use std::borrow::Cow;
use std::fmt;

use http::header::AsHeaderName;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::HandshakeError;

/// RFC 7230 3.2.6 `tchar` (the same set as RFC 2616's `token`, which RFC 6455 cites): visible
/// ASCII except the delimiters `"(),/:;<=>?@[\]{}`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 7230 3.2.6 `token = 1*tchar`.
pub(super) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Strips RFC 7230 3.2.3 optional whitespace (spaces and tabs) from both ends.
pub(super) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The elements of a comma-separated header value, whitespace-trimmed (RFC 7230 7 `#rule`).
fn list_items(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value.as_bytes().split(|&b| b == b',').map(trim_ows)
}

/// Returns true if any of the `name` header fields, read as comma-separated lists, contains
/// `token`, compared ASCII case-insensitively.
///
/// This is how `Connection: keep-alive, Upgrade` is recognised as containing `upgrade`, and
/// how a token split across several fields of the same name is found.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CONNECTION};
/// use tolqin_proto::handshake::header_contains_token;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
/// assert!(header_contains_token(&headers, CONNECTION, "upgrade"));
/// assert!(!header_contains_token(&headers, CONNECTION, "close"));
/// ```
pub fn header_contains_token<K: AsHeaderName>(headers: &HeaderMap, name: K, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(list_items)
        .any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses every `Sec-WebSocket-Protocol` field: comma-separated subprotocol tokens, in order.
///
/// No fields give an empty list.
///
/// # Errors
///
/// [`HandshakeError::BadProtocolHeader`] if an element is empty or not a token
/// (RFC 6455 4.1 item 10 and 11.3.4).
pub fn parse_protocols<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
) -> Result<Vec<String>, HandshakeError> {
    let mut protocols = Vec::new();
    for value in values {
        for item in list_items(value) {
            protocols.push(token_string(item).ok_or(HandshakeError::BadProtocolHeader)?);
        }
    }
    Ok(protocols)
}

/// `bytes` as an owned string if it is a token (tokens are ASCII, hence valid UTF-8).
fn token_string(bytes: &[u8]) -> Option<String> {
    if is_token(bytes) {
        String::from_utf8(bytes.to_vec()).ok()
    } else {
        None
    }
}

/// One element of `Sec-WebSocket-Extensions`: an extension name and its parameters.
///
/// RFC 6455 9.1: `extension = extension-token *( ";" extension-param )`,
/// `extension-param = token [ "=" (token | quoted-string) ]`.
///
/// ```
/// use tolqin_proto::handshake::Extension;
///
/// let offer = Extension::new("permessage-deflate").with_param("client_max_window_bits", Some("10"));
/// assert_eq!(offer.to_header_string(), "permessage-deflate; client_max_window_bits=10");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters in order: name, and value (`None` for a bare parameter). Values are
    /// stored unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl Extension {
    /// An extension with no parameters.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Extension {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Appends a parameter, with a value or bare (`None`).
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.params.push((name.into(), value.map(str::to_owned)));
        self
    }

    /// The element as it appears in a `Sec-WebSocket-Extensions` header, e.g.
    /// `permessage-deflate; client_max_window_bits=10`.
    ///
    /// Values that are not tokens are written as quoted strings, though RFC 6455 9.1 does not
    /// allow them: [`ClientRequest::build`](super::ClientRequest::build) rejects such offers.
    pub fn to_header_string(&self) -> String {
        self.to_string()
    }

    /// True if the name, every parameter name and every value are tokens (RFC 6455 9.1), so
    /// that the element can be sent and parsed back unchanged.
    pub(super) fn is_valid(&self) -> bool {
        is_token(self.name.as_bytes())
            && self.params.iter().all(|(name, value)| {
                is_token(name.as_bytes()) && value.as_ref().is_none_or(|v| is_token(v.as_bytes()))
            })
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            write!(f, "; {name}")?;
            match value {
                None => {}
                Some(value) if is_token(value.as_bytes()) => write!(f, "={value}")?,
                Some(value) => {
                    // RFC 7230 3.2.6 quoted-pair: backslash-escape the quote and the backslash.
                    f.write_str("=\"")?;
                    for c in value.chars() {
                        if matches!(c, '"' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"")?;
                }
            }
        }
        Ok(())
    }
}

/// Parses every `Sec-WebSocket-Extensions` field into its elements, in order.
///
/// Each field is a comma-separated list of extensions (RFC 6455 9.1); quoted parameter values
/// are unquoted, and must still be tokens. No fields give an empty list.
///
/// ```
/// use http::HeaderValue;
/// use tolqin_proto::handshake::{Extension, parse_extensions};
///
/// let value = HeaderValue::from_static("permessage-deflate; client_max_window_bits, x-foo");
/// let parsed = parse_extensions([&value])?;
/// assert_eq!(parsed, [
///     Extension::new("permessage-deflate").with_param("client_max_window_bits", None),
///     Extension::new("x-foo"),
/// ]);
/// # Ok::<(), tolqin_proto::handshake::HandshakeError>(())
/// ```
///
/// # Errors
///
/// [`HandshakeError::BadExtensionHeader`] on any deviation from the grammar: an empty field or
/// element (`a,,b`, trailing comma), an empty parameter (`a;;b`), `=` without a value, a byte
/// that is not allowed in a token, an unterminated quoted string, or a quoted value that is not
/// a token.
pub fn parse_extensions<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
) -> Result<Vec<Extension>, HandshakeError> {
    let mut extensions = Vec::new();
    for value in values {
        parse_extension_list(value.as_bytes(), &mut extensions)
            .ok_or(HandshakeError::BadExtensionHeader)?;
    }
    Ok(extensions)
}

/// Parses one field value, appending its elements to `out`; `None` if it is malformed.
fn parse_extension_list(value: &[u8], out: &mut Vec<Extension>) -> Option<()> {
    let mut input = Cursor(value);
    loop {
        input.skip_ows();
        let mut extension = Extension::new(input.token()?);
        input.skip_ows();
        while input.eat(b';') {
            input.skip_ows();
            let name = input.token()?;
            input.skip_ows();
            let value = if input.eat(b'=') {
                input.skip_ows();
                Some(if input.peek() == Some(b'"') {
                    input.quoted_token()?
                } else {
                    input.token()?
                })
            } else {
                None
            };
            extension.params.push((name, value));
            input.skip_ows();
        }
        out.push(extension);
        if input.0.is_empty() {
            return Some(());
        }
        if !input.eat(b',') {
            return None;
        }
    }
}

/// The unread rest of a header value.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        match self.0 {
            [first, rest @ ..] if *first == byte => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn skip_ows(&mut self) {
        while let [b' ' | b'\t', rest @ ..] = self.0 {
            self.0 = rest;
        }
    }

    /// `1*tchar`.
    fn token(&mut self) -> Option<String> {
        let len = self.0.iter().take_while(|&&b| is_tchar(b)).count();
        let (token, rest) = self.0.split_at(len);
        self.0 = rest;
        token_string(token)
    }

    /// A quoted-string (RFC 7230 3.2.6) whose unescaped content is a token, as RFC 6455 9.1
    /// requires for extension parameter values.
    fn quoted_token(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut content = Vec::new();
        loop {
            match self.0 {
                [b'"', rest @ ..] => {
                    self.0 = rest;
                    return token_string(&content);
                }
                [b'\\', escaped, rest @ ..] | [escaped, rest @ ..] => {
                    content.push(*escaped);
                    self.0 = rest;
                }
                // Unterminated, or a trailing lone backslash.
                [] => return None,
            }
        }
    }
}

/// The spelling of a header name on the wire.
///
/// Field names are case-insensitive (RFC 7230 3.2) and `http` stores them in lowercase, but
/// some servers compare them literally, so the handshake's own fields are written as RFC 6455
/// spells them and the others in the usual `Title-Case`.
pub(super) fn wire_name(name: &HeaderName) -> Cow<'static, str> {
    let canonical = match name.as_str() {
        "host" => "Host",
        "upgrade" => "Upgrade",
        "connection" => "Connection",
        "origin" => "Origin",
        "sec-websocket-key" => "Sec-WebSocket-Key",
        "sec-websocket-accept" => "Sec-WebSocket-Accept",
        "sec-websocket-version" => "Sec-WebSocket-Version",
        "sec-websocket-protocol" => "Sec-WebSocket-Protocol",
        "sec-websocket-extensions" => "Sec-WebSocket-Extensions",
        other => {
            let mut title = String::with_capacity(other.len());
            let mut word_start = true;
            for c in other.chars() {
                title.push(if word_start {
                    c.to_ascii_uppercase()
                } else {
                    c
                });
                word_start = c == '-';
            }
            return Cow::Owned(title);
        }
    };
    Cow::Borrowed(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONNECTION, UPGRADE};

    fn values(fields: &[&str]) -> Vec<HeaderValue> {
        fields
            .iter()
            .map(|field| HeaderValue::from_str(field).unwrap())
            .collect()
    }

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        params
            .iter()
            .fold(Extension::new(name), |e, &(n, v)| e.with_param(n, v))
    }

    #[test]
    fn rfc6455_9_1_extension_grammar_accepted() {
        let cases: Vec<(&[&str], Vec<Extension>)> = vec![
            (
                &["permessage-deflate; client_max_window_bits, permessage-deflate"],
                vec![
                    ext("permessage-deflate", &[("client_max_window_bits", None)]),
                    ext("permessage-deflate", &[]),
                ],
            ),
            (&[r#"x; y="10""#], vec![ext("x", &[("y", Some("10"))])]),
            (&[r#"x; y="1\0""#], vec![ext("x", &[("y", Some("10"))])]),
            (
                &["permessage-deflate;client_max_window_bits=10;server_no_context_takeover"],
                vec![ext(
                    "permessage-deflate",
                    &[
                        ("client_max_window_bits", Some("10")),
                        ("server_no_context_takeover", None),
                    ],
                )],
            ),
            (
                &[" a ; b = 1 ,\tc\t"],
                vec![ext("a", &[("b", Some("1"))]), ext("c", &[])],
            ),
            (
                &["a", "b; c=d", "e, f"],
                vec![
                    ext("a", &[]),
                    ext("b", &[("c", Some("d"))]),
                    ext("e", &[]),
                    ext("f", &[]),
                ],
            ),
            (&[], vec![]),
        ];
        for (fields, expected) in cases {
            assert_eq!(
                parse_extensions(&values(fields)).as_ref(),
                Ok(&expected),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn rfc6455_9_1_extension_grammar_rejected() {
        let cases: &[&[&str]] = &[
            &[""],
            &[" "],
            &["a,"],
            &[",a"],
            &["a,,b"],
            &["a, ,b"],
            &["a;;b"],
            &["a;"],
            &["a; b="],
            &["a; b= ,c"],
            &["a; =1"],
            &["a; b==1"],
            &["a@b"],
            &["a b"],
            &["a; b c"],
            &["a; b=c d"],
            &["a; b=1/2"],
            &[r#"a; b="10"#],
            &[r#"a; b="\"#],
            &[r#"a; b="\""#],
            &[r#"a; b="1 0""#],
            &[r#"a; b="""#],
            &[r#"a; b="1"2"#],
            &[r#""a""#],
            &["a", ""],
            &["ok", "a;;b"],
        ];
        for &fields in cases {
            assert_eq!(
                parse_extensions(&values(fields)),
                Err(HandshakeError::BadExtensionHeader),
                "{fields:?}"
            );
        }
        // Bytes HeaderValue allows but tokens do not (obs-text).
        let obs_text = HeaderValue::from_bytes(b"perm\xe9ssage").unwrap();
        assert_eq!(
            parse_extensions([&obs_text]),
            Err(HandshakeError::BadExtensionHeader)
        );
    }

    #[test]
    fn rfc6455_9_1_extension_header_string() {
        let cases = [
            (ext("permessage-deflate", &[]), "permessage-deflate"),
            (
                ext(
                    "permessage-deflate",
                    &[("client_max_window_bits", Some("10"))],
                ),
                "permessage-deflate; client_max_window_bits=10",
            ),
            (ext("a", &[("b", None), ("c", Some("d"))]), "a; b; c=d"),
            // Not valid per 9.1, but written unambiguously.
            (ext("a", &[("b", Some(r#"x "y"\"#))]), r#"a; b="x \"y\"\\""#),
        ];
        for (extension, expected) in cases {
            assert_eq!(extension.to_header_string(), expected);
            assert_eq!(extension.to_string(), expected);
        }
    }

    #[test]
    fn rfc6455_9_1_extension_round_trip() {
        let offers = [
            ext("permessage-deflate", &[("client_max_window_bits", None)]),
            ext(
                "x-webkit",
                &[("a", Some("1")), ("b", None), ("c", Some("~!"))],
            ),
        ];
        let joined = offers
            .iter()
            .map(Extension::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let value = HeaderValue::from_str(&joined).unwrap();
        assert_eq!(parse_extensions([&value]).unwrap(), offers);
        assert!(offers.iter().all(Extension::is_valid));
        assert!(!ext("a b", &[]).is_valid());
        assert!(!ext("a", &[("b", Some("1 0"))]).is_valid());
        assert!(!ext("a", &[("", None)]).is_valid());
    }

    #[test]
    fn rfc6455_4_1_protocol_list() {
        let ok: &[(&[&str], &[&str])] = &[
            (&["chat, superchat"], &["chat", "superchat"]),
            (&["chat", " v2.b ,\tv1 "], &["chat", "v2.b", "v1"]),
            (&[], &[]),
        ];
        for &(fields, expected) in ok {
            assert_eq!(
                parse_protocols(&values(fields)).unwrap(),
                expected,
                "{fields:?}"
            );
        }
        let bad: &[&[&str]] = &[
            &[""],
            &["a,"],
            &["a,,b"],
            &["a b"],
            &["a/b"],
            &["chat", " "],
        ];
        for &fields in bad {
            assert_eq!(
                parse_protocols(&values(fields)),
                Err(HandshakeError::BadProtocolHeader),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn rfc7230_6_1_connection_token_list() {
        let cases: &[(&[&str], bool)] = &[
            (&["Upgrade"], true),
            (&["upgrade"], true),
            (&["UPGRADE"], true),
            (&["keep-alive, Upgrade"], true),
            (&["keep-alive,Upgrade,close"], true),
            (&["keep-alive", "Upgrade"], true),
            (&[" \tupgrade\t "], true),
            (&["keep-alive"], false),
            (&["Upgrade2"], false),
            (&["no-upgrade"], false),
            (&["Upgrade websocket"], false),
            (&[], false),
        ];
        for &(fields, expected) in cases {
            let mut headers = HeaderMap::new();
            for value in values(fields) {
                headers.append(CONNECTION, value);
            }
            assert_eq!(
                header_contains_token(&headers, CONNECTION, "upgrade"),
                expected,
                "{fields:?}"
            );
            assert_eq!(
                header_contains_token(&headers, "connection", "Upgrade"),
                expected
            );
            assert!(!header_contains_token(&headers, UPGRADE, "upgrade"));
        }
    }

    const TOKEN: &str = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}";

    proptest::proptest! {
        #[test]
        fn rfc6455_9_1_extension_round_trip_any(
            name in TOKEN,
            params in proptest::collection::vec((TOKEN, proptest::option::of(TOKEN)), 0..4),
        ) {
            let extension = Extension { name, params };
            let value = HeaderValue::from_str(&extension.to_header_string()).unwrap();
            proptest::prop_assert_eq!(parse_extensions([&value]), Ok(vec![extension]));
        }

        #[test]
        fn rfc6455_9_1_header_parsers_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            // Only what a HeaderValue can hold can reach the parsers.
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let _ = parse_extensions([&value]);
                let _ = parse_protocols([&value]);
            }
        }

        #[test]
        fn rfc6455_9_1_extension_grammar_never_panics(
            text in r#"[a-c;=,"\\ \t]{0,24}"#,
        ) {
            let value = HeaderValue::from_str(&text).unwrap();
            let _ = parse_extensions([&value]);
        }
    }

    #[test]
    fn rfc7230_3_2_wire_names() {
        let cases = [
            (http::header::SEC_WEBSOCKET_KEY, "Sec-WebSocket-Key"),
            (http::header::HOST, "Host"),
            (http::header::CONTENT_LENGTH, "Content-Length"),
            (HeaderName::from_static("x-custom-thing"), "X-Custom-Thing"),
        ];
        for (name, expected) in cases {
            assert_eq!(wire_name(&name), expected);
        }
    }
}
