//! Session cookies: proof that a WebSocket client loaded the chat page first.
//!
//! The page (`/`) and `/session` set `tolqin_session=<token>; HttpOnly; SameSite=Strict;
//! Path=/` (plus `Secure` over TLS). A token is signed and stateless: 16 random bytes (the
//! session's id) and the issue time (seconds since the Unix epoch, 8 bytes big-endian),
//! followed by HMAC-SHA256 of those 24 bytes under the server's key, all in base64url. `/ws`
//! accepts a token whose signature is right and whose issue time is within
//! [`crate::ChatConfig::session_max_age`].
//!
//! The server keeps nothing per token, so minting any number of them (a flood of
//! `/session`) costs no memory and cannot push a real visitor's session out. The key is
//! random per process unless one is given ([`crate::ChatConfig::session_key`], which
//! `tolqin chat` reads from the file named by `TOLQIN_CHAT_SECRET_FILE`): with a random key, a
//! page that outlived a restart gets a new token from `/session` before it reconnects; with a
//! shared key, every node of a cluster accepts every node's tokens.
//!
//! Together with the `Host` and `Origin` checks this stops cross-site WebSocket hijacking: a
//! page on another site can neither pass the `Origin` check nor make the browser send a
//! `SameSite=Strict` cookie with its request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE_NAME: &str = "tolqin_session";

/// Bytes of a token before base64: id (16), issue time (8), HMAC-SHA256 (32).
const TOKEN_BYTES: usize = 16 + 8 + 32;
/// A token issued this far in the future is still accepted (clocks of a cluster differ).
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Issues and checks signed session tokens; holds only the key.
#[derive(Clone)]
pub struct Sessions {
    key: Vec<u8>,
    max_age: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Sessions")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sessions {
    /// Tokens signed with `key` (any length; 32 random bytes or more is right), valid for
    /// `max_age` after they are issued.
    pub fn new(key: &[u8], max_age: Duration) -> Self {
        Sessions {
            key: key.to_vec(),
            max_age,
        }
    }

    /// Tokens signed with a new random 256-bit key, valid for `max_age`.
    pub fn random(max_age: Duration) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key, max_age)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// Issues a new token and returns it, base64url-encoded.
    pub fn issue(&self) -> String {
        self.issue_at(now_secs())
    }

    fn issue_at(&self, issued: u64) -> String {
        let mut token = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut token[..16]);
        token[16..24].copy_from_slice(&issued.to_be_bytes());
        let mut mac = self.mac();
        mac.update(&token[..24]);
        token[24..].copy_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` (base64url) was signed with this key and is not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        let mut decoded = [0u8; TOKEN_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), &mut decoded) {
            Ok(TOKEN_BYTES) => {}
            _ => return false,
        }
        let mut mac = self.mac();
        mac.update(&decoded[..24]);
        // Constant-time comparison.
        if mac.verify_slice(&decoded[24..]).is_err() {
            return false;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&decoded[16..24]);
        let issued = u64::from_be_bytes(issued);
        let now = now_secs();
        issued <= now.saturating_add(CLOCK_SKEW.as_secs())
            && now.saturating_sub(issued) <= self.max_age.as_secs()
    }

    /// Whether any `Cookie` header of `headers` carries a valid session token.
    pub fn has_valid_cookie(&self, headers: &http::HeaderMap) -> bool {
        cookie_values(headers, COOKIE_NAME).any(|token| self.is_valid(token))
    }

    /// The `Set-Cookie` value for a new token (a browser-session cookie: no `Max-Age`).
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

    const DAY: Duration = Duration::from_secs(86_400);

    fn headers(cookie: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, cookie.parse().unwrap());
        h
    }

    #[test]
    fn only_signed_tokens_are_valid() {
        let sessions = Sessions::random(DAY);
        let token = sessions.issue();
        assert_eq!(token.len(), 75, "56 bytes in base64url without padding");
        assert!(sessions.is_valid(&token));
        assert!(sessions.has_valid_cookie(&headers(&format!("a=b; tolqin_session={token}; c=d"))));
        assert!(
            !sessions.has_valid_cookie(&headers(&format!("tolqin_session={}", "A".repeat(75))))
        );
        assert!(!sessions.has_valid_cookie(&headers("tolqin_session=not base64!")));
        assert!(!sessions.has_valid_cookie(&headers(&format!("other={token}"))));
        assert!(!sessions.has_valid_cookie(&http::HeaderMap::new()));
        // Another key (another server, or this one after a restart) does not accept it.
        assert!(!Sessions::random(DAY).is_valid(&token));
        // One changed bit anywhere breaks the signature.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[20] ^= 1;
        assert!(!sessions.is_valid(&URL_SAFE_NO_PAD.encode(&bytes)));
    }

    #[test]
    fn a_shared_key_is_accepted_by_every_node() {
        let a = Sessions::new(b"shared secret of the cluster", DAY);
        let b = Sessions::new(b"shared secret of the cluster", DAY);
        assert!(b.is_valid(&a.issue()));
    }

    #[test]
    fn tokens_expire_and_minting_evicts_nothing() {
        let sessions = Sessions::random(DAY);
        let now = now_secs();
        assert!(!sessions.is_valid(&sessions.issue_at(now - DAY.as_secs() - 10)));
        assert!(sessions.is_valid(&sessions.issue_at(now - DAY.as_secs() + 10)));
        assert!(!sessions.is_valid(&sessions.issue_at(now + 3600)));
        let first = sessions.issue();
        for _ in 0..10_000 {
            sessions.issue();
        }
        assert!(sessions.is_valid(&first));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let sessions = Sessions::random(DAY);
        let cookie = sessions.set_cookie(false);
        assert!(cookie.starts_with("tolqin_session="));
        assert!(cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/"));
        assert!(sessions.set_cookie(true).ends_with("; Secure"));
    }
}
