//! Incremental UTF-8 validation across frames and fragments.
//!
//! RFC 6455 8.1: an endpoint that receives invalid UTF-8 in a text message must fail the
//! connection. A validator that waits for the whole message fails late; this one is fed the
//! payload as it arrives (even part of a frame) and reports the first invalid byte at once.
//! Validation of whole runs is done by `simdutf8`; only a code point split across two pieces is
//! handled here, in a four-byte carry.

/// Error: the bytes fed so far are not a prefix of any valid UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Up to this many bytes, a text is first checked for plain ASCII, word by word: for the short
/// messages of chat and telemetry that is several times cheaper than `simdutf8`, whose vector
/// code only pays from about a vector's width (and which falls back to the standard library's
/// validator below it).
const SHORT: usize = 64;

/// Validates a whole string.
///
/// # Errors
/// [`InvalidUtf8`].
#[inline]
pub fn validate(data: &[u8]) -> Result<(), InvalidUtf8> {
    validate_str(data).map(|_| ())
}

/// Validates a whole string and returns it as `&str` (the same checks as [`validate`]).
///
/// # Errors
/// [`InvalidUtf8`].
#[inline]
pub fn validate_str(data: &[u8]) -> Result<&str, InvalidUtf8> {
    if data.len() <= SHORT && data.is_ascii() {
        // The ASCII test costs a fraction of `str::from_utf8` on short texts (3% of the echo
        // server's time under W6 went to `from_utf8` on 20-byte messages).
        #[allow(unsafe_code)]
        // SAFETY: every byte is ASCII (checked just above), and a sequence of ASCII bytes is
        // valid UTF-8. Exercised by `validate_str_agrees_with_std` below and by the
        // connection's property tests (every lent text message).
        return Ok(unsafe { std::str::from_utf8_unchecked(data) });
    }
    simdutf8::basic::from_utf8(data).map_err(|_| InvalidUtf8)
}

/// Validates a UTF-8 stream fed in arbitrary pieces.
///
/// ```
/// use tolqin_proto::utf8::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let euro = "€".as_bytes(); // e2 82 ac
/// v.feed(&euro[..1]).unwrap();
/// v.feed(&euro[1..]).unwrap();
/// v.finish().unwrap();
/// // A byte that can never appear is reported as soon as it arrives.
/// assert!(Utf8Validator::new().feed(&[b'a', 0xff]).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    carry: [u8; 4],
    carry_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a string.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the stream.
    ///
    /// # Errors
    /// [`InvalidUtf8`] as soon as the stream so far can no longer be valid UTF-8, whatever follows.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            // Complete the code point that was split across pieces, one byte at a time.
            while self.carry_len < 4 && !data.is_empty() {
                self.carry[self.carry_len as usize] = data[0];
                self.carry_len += 1;
                data = &data[1..];
                match simdutf8::compat::from_utf8(&self.carry[..self.carry_len as usize]) {
                    Ok(_) => {
                        self.carry_len = 0;
                        break;
                    }
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) => {} // still a valid prefix
                }
            }
            if self.carry_len > 0 {
                return Ok(()); // data exhausted inside the code point
            }
        }
        match validate(data) {
            Ok(()) => Ok(()),
            Err(_) => match simdutf8::compat::from_utf8(data) {
                Ok(_) => Ok(()),
                Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
                Err(e) => {
                    // An incomplete but so far valid code point at the end: carry it over.
                    let tail = &data[e.valid_up_to()..];
                    self.carry[..tail.len()].copy_from_slice(tail);
                    self.carry_len = tail.len() as u8;
                    Ok(())
                }
            },
        }
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// [`InvalidUtf8`] if the stream stopped inside a code point.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let incomplete = self.carry_len > 0;
        self.carry_len = 0;
        if incomplete { Err(InvalidUtf8) } else { Ok(()) }
    }

    /// Forgets any partial code point, ready for a new string.
    pub fn reset(&mut self) {
        self.carry_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_in_pieces(data: &[u8], piece: usize) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for chunk in data.chunks(piece.max(1)) {
            v.feed(chunk)?;
        }
        v.finish()
    }

    #[test]
    fn rfc6455_8_1_valid_text_in_every_split() {
        let text = "κόσμε Hello-µ@ßöäüàá-UTF-8!! 𝄞 €".as_bytes();
        for piece in 1..=text.len() {
            assert_eq!(feed_in_pieces(text, piece), Ok(()), "piece {piece}");
        }
    }

    #[test]
    fn rfc6455_8_1_fail_fast_on_first_invalid_byte() {
        // Autobahn 6.4.1-style: a valid prefix, then a code point above U+10FFFF (f4 90 ...).
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        assert_eq!(v.feed(&[0xf4]), Ok(())); // f4 may start a valid 4-byte sequence
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8)); // f4 90 never can
    }

    #[test]
    fn rfc6455_8_1_invalid_sequences_rejected() {
        let cases: &[&[u8]] = &[
            &[0xff],
            &[0xc0, 0x80],             // overlong NUL
            &[0xed, 0xa0, 0x80],       // surrogate U+D800
            &[0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
            &[0xe2, 0x82],             // truncated at the end
            &[0x80],                   // lone continuation byte
        ];
        for case in cases {
            for piece in 1..=case.len() {
                assert!(
                    feed_in_pieces(case, piece).is_err(),
                    "{case:x?} piece {piece}"
                );
            }
        }
    }

    proptest! {
        /// `validate_str` accepts exactly what the standard library does, and returns the
        /// same text, on both sides of the short-text bound.
        #[test]
        fn validate_str_agrees_with_std(
            data in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..100),
                proptest::collection::vec(0u8..0x80, 0..100),
                "\\PC{0,40}".prop_map(String::into_bytes),
            ],
        ) {
            prop_assert_eq!(validate_str(&data).ok(), std::str::from_utf8(&data).ok());
        }
    }

    proptest! {
        #[test]
        fn any_split_agrees_with_std(data in proptest::collection::vec(any::<u8>(), 0..64), piece in 1usize..8) {
            let expected = std::str::from_utf8(&data).is_ok();
            prop_assert_eq!(feed_in_pieces(&data, piece).is_ok(), expected);
        }

        #[test]
        fn valid_strings_pass_any_split(s in "\\PC{0,40}", piece in 1usize..8) {
            prop_assert!(feed_in_pieces(s.as_bytes(), piece).is_ok());
        }
    }
}
