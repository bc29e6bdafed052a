//! Session cookies: proof that a WebSocket client loaded the chat page first.
//!
//! The page (`/`) and `/session` set `tolqin_session=<token>; HttpOnly; SameSite=Strict;
//! Path=/` (plus `Secure` over TLS), where the token is 128 random bits in base64url. `/ws`
//! accepts only a token this server issued. Issued tokens are kept in a bounded set (the
//! oldest is forgotten first), so the memory is bounded whatever the number of visitors; a
//! page whose token was forgotten, or that outlived a restart, gets a new one from
//! `/session` before it reconnects.
//!
//! Together with the `Origin` check this stops cross-site WebSocket hijacking: a page on
//! another site can neither pass the `Origin` check nor make the browser send a
//! `SameSite=Strict` cookie with its request.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// The cookie's name.
pub const COOKIE_NAME: &str = "tolqin_session";

type Token = [u8; 16];

/// The set of session tokens this server issued, bounded.
#[derive(Debug)]
pub struct Sessions {
    capacity: usize,
    issued: Mutex<(HashSet<Token>, VecDeque<Token>)>,
}

impl Sessions {
    /// Remembers at most `capacity` tokens (at least 1).
    pub fn new(capacity: usize) -> Self {
        Sessions {
            capacity: capacity.max(1),
            issued: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Issues a new token and returns it, base64url-encoded.
    pub fn issue(&self) -> String {
        let mut token = [0u8; 16];
        rand::rng().fill_bytes(&mut token);
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *issued;
        if set.insert(token) {
            order.push_back(token);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` (base64url) was issued by this server and not forgotten since.
    pub fn is_valid(&self, token: &str) -> bool {
        let mut decoded = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), &mut decoded) {
            Ok(16) => {}
            _ => return false,
        }
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.0.contains(&decoded)
    }

    /// Whether any `Cookie` header of `headers` carries a valid session token.
    pub fn has_valid_cookie(&self, headers: &http::HeaderMap) -> bool {
        cookie_values(headers, COOKIE_NAME).any(|token| self.is_valid(token))
    }

    /// The `Set-Cookie` value for a new token.
    pub fn set_cookie(&self, secure: bool) -> String {
        let token = self.issue();
        let secure = if secure { "; Secure" } else { "" };
        format!("{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/{secure}")
    }
}

/// The values of the cookies named `name` in every `Cookie` header.
fn cookie_values<'a>(
    headers: &'a http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, cookie.parse().unwrap());
        h
    }

    #[test]
    fn only_issued_tokens_are_valid() {
        let sessions = Sessions::new(10);
        let token = sessions.issue();
        assert_eq!(token.len(), 22, "128 bits in base64url without padding");
        assert!(sessions.is_valid(&token));
        assert!(sessions.has_valid_cookie(&headers(&format!("a=b; tolqin_session={token}; c=d"))));
        assert!(!sessions.has_valid_cookie(&headers("tolqin_session=AAAAAAAAAAAAAAAAAAAAAA")));
        assert!(!sessions.has_valid_cookie(&headers("tolqin_session=not base64!")));
        assert!(!sessions.has_valid_cookie(&headers(&format!("other={token}"))));
        assert!(!sessions.has_valid_cookie(&http::HeaderMap::new()));
    }

    #[test]
    fn the_set_is_bounded_oldest_first() {
        let sessions = Sessions::new(2);
        let first = sessions.issue();
        let second = sessions.issue();
        let third = sessions.issue();
        assert!(!sessions.is_valid(&first));
        assert!(sessions.is_valid(&second) && sessions.is_valid(&third));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let sessions = Sessions::new(2);
        let cookie = sessions.set_cookie(false);
        assert!(cookie.starts_with("tolqin_session="));
        assert!(cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/"));
        assert!(sessions.set_cookie(true).ends_with("; Secure"));
    }
}
