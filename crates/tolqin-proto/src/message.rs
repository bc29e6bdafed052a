//! Messages: text and binary payloads, and the reassembly of fragmented ones (RFC 6455 5.4).
//!
//! A [`Utf8Bytes`] (the payload of a [`Message::Text`]) is valid UTF-8 whichever safe way it was
//! made: from a `str`, by [`Utf8Bytes::try_from`], or by a [`Connection`](crate::Connection),
//! whose reassembler is private to this crate because it relies on being driven in order. The
//! reassembler is not reachable from outside (issue 17: through it, safe calls once built a
//! text of invalid UTF-8):
//!
//! ```compile_fail,E0603
//! let _ = tolqin_proto::message::Assembler::new();
//! ```

use bytes::{Bytes, BytesMut};

use crate::utf8::{InvalidUtf8, Utf8Validator};

/// Bytes that are known to be valid UTF-8: the payload of a text message.
///
/// Cheap to clone (a reference-counted [`Bytes`]), and a `&str` without copying or revalidating.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// A static string, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    #[inline]
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` either starts from a `str`/`String` or checks
        // the bytes with a full UTF-8 validation (`try_from`, or `Utf8Validator` over the whole
        // message before `from_validated`), and the inner `Bytes` is never mutated afterwards.
        // Exercised by the unit tests below and by the connection's property tests.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The inner [`Bytes`].
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wraps bytes that the caller has already validated in full.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl std::fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = InvalidUtf8;
    fn try_from(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        crate::utf8::validate(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = InvalidUtf8;
    fn try_from(bytes: Vec<u8>) -> Result<Self, InvalidUtf8> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A complete WebSocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 0x1), valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message (opcode 0x2).
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Message {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Message {
        Message::Binary(b.into())
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// The payload as [`Bytes`], whatever the type.
    pub fn into_payload(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// A complete data message borrowed rather than owned: what
/// [`Connection::next_event_with`](crate::Connection::next_event_with) lends a handler straight
/// out of the read buffer (no allocation, no copy), and what [`Message`]s lend with `From`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message, valid UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> MessageRef<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            MessageRef::Text(t) => t.as_bytes(),
            MessageRef::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, MessageRef::Text(_))
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            MessageRef::Text(t) => Some(t),
            MessageRef::Binary(_) => None,
        }
    }

    /// Whether both are the same bytes in memory (not merely equal), of the same type.
    pub fn is_same(&self, other: &MessageRef<'_>) -> bool {
        self.is_text() == other.is_text() && std::ptr::eq(self.as_bytes(), other.as_bytes())
    }

    /// An owned copy of the message.
    pub fn to_message(&self) -> Message {
        match *self {
            MessageRef::Text(t) => Message::Text(Utf8Bytes::from(t)),
            MessageRef::Binary(b) => Message::Binary(Bytes::copy_from_slice(b)),
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> Self {
        match message {
            Message::Text(t) => MessageRef::Text(t.as_str()),
            Message::Binary(b) => MessageRef::Binary(b),
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::text(s)
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::text(s)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(Bytes::from(b))
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

/// Why a fragment can't be added to the message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    /// The message would exceed the configured maximum size (close 1009).
    #[error("message larger than {limit} bytes")]
    TooBig {
        /// The limit in bytes.
        limit: usize,
    },
    /// The message has more fragments than allowed (close 1009).
    #[error("message split into more than {limit} frames")]
    TooManyFragments {
        /// The limit in frames.
        limit: usize,
    },
    /// A text message is not valid UTF-8 (close 1007).
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A new message started while a fragmented one was in progress (close 1002; RFC 6455
    /// 5.4: the fragments of one message are not interleaved with another's).
    #[error("a new data frame while a fragmented message is in progress")]
    Interleaved,
}

impl From<InvalidUtf8> for AssemblyError {
    fn from(_: InvalidUtf8) -> Self {
        AssemblyError::InvalidUtf8
    }
}

/// Reassembles a message from its data frames (RFC 6455 5.4) and validates text as it arrives.
///
/// A message in one frame is passed through without copying; only a message in several frames
/// is copied into the assembler's buffer.
///
/// Crate-private on purpose: [`Utf8Bytes::as_str`] trusts the texts this type builds, and it
/// builds a valid one only when driven as [`Connection`](crate::Connection) drives it: the
/// payload given to [`Assembler::push`] starts with exactly the bytes given to
/// [`Assembler::validate_partial`] for that frame, and a first frame (`Some(_)`) never arrives
/// while a fragmented message is in progress (the connection fails the peer with 1002 first).
/// Public, safe calls could break both (issue 17: UB through `as_str`), so `push` also re-checks
/// the second itself and refuses to mix messages.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// The fragmented message in progress, if any. Boxed: most messages come in one frame, and
    /// every idle connection would pay for the fields.
    fragmented: Option<Box<Fragmented>>,
    utf8: Utf8Validator,
    /// Bytes of the current frame already fed to `utf8` by [`Assembler::validate_partial`].
    validated_in_frame: usize,
}

/// A message arriving in several frames.
#[derive(Debug)]
struct Fragmented {
    is_text: bool,
    buf: BytesMut,
    fragments: usize,
}

impl Assembler {
    /// A new assembler with no message in progress.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Whether a fragmented message is in progress (a continuation frame is expected).
    pub(crate) fn in_progress(&self) -> bool {
        self.fragmented.is_some()
    }

    /// Whether the message being received (or about to start with `first_is_text`) is text.
    pub(crate) fn is_text(&self) -> Option<bool> {
        self.fragmented.as_ref().map(|f| f.is_text)
    }

    /// Bytes buffered so far for the message in progress.
    pub(crate) fn buffered(&self) -> usize {
        self.fragmented.as_ref().map_or(0, |f| f.buf.len())
    }

    /// Checks, at a frame's header, that a frame of `len` payload bytes may be added.
    ///
    /// # Errors
    /// [`AssemblyError::TooBig`] or [`AssemblyError::TooManyFragments`].
    pub(crate) fn check_frame(
        &self,
        len: u64,
        max_message: usize,
        max_fragments: usize,
    ) -> Result<(), AssemblyError> {
        if self.buffered() as u64 + len > max_message as u64 {
            return Err(AssemblyError::TooBig { limit: max_message });
        }
        if self.fragmented.as_ref().map_or(0, |f| f.fragments) + 1 > max_fragments {
            return Err(AssemblyError::TooManyFragments {
                limit: max_fragments,
            });
        }
        Ok(())
    }

    /// Validates part of a text frame's payload that has arrived (unmasked) before the frame is
    /// complete, so invalid UTF-8 fails the connection as soon as it arrives. `frame_prefix` is
    /// the whole payload received so far for this frame; bytes already validated are skipped.
    ///
    /// # Errors
    /// [`AssemblyError::InvalidUtf8`].
    pub(crate) fn validate_partial(
        &mut self,
        is_text: bool,
        frame_prefix: &[u8],
    ) -> Result<(), AssemblyError> {
        if !is_text || frame_prefix.len() <= self.validated_in_frame {
            return Ok(());
        }
        self.utf8.feed(&frame_prefix[self.validated_in_frame..])?;
        self.validated_in_frame = frame_prefix.len();
        Ok(())
    }

    /// Whether a frame can bypass [`Assembler::push`]: no fragmented message in progress and
    /// nothing of the frame validated piecemeal, so a complete single-frame message needs only
    /// [`Assembler::single`].
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.fragmented.is_none() && self.validated_in_frame == 0
    }

    /// A complete message in one frame, when [`Assembler::is_idle`]: text is validated whole,
    /// without the incremental validator's state. (The hot path of small messages.)
    ///
    /// # Errors
    /// [`AssemblyError::InvalidUtf8`].
    #[inline]
    pub(crate) fn single(is_text: bool, payload: Bytes) -> Result<Message, AssemblyError> {
        Ok(if is_text {
            Message::Text(Utf8Bytes::try_from(payload)?)
        } else {
            Message::Binary(payload)
        })
    }

    /// Adds a complete frame's payload. `first_is_text` is `Some` for the first frame of a
    /// message (text or binary) and `None` for a continuation frame. Returns the message when
    /// `fin` completes it.
    ///
    /// # Errors
    /// [`AssemblyError::InvalidUtf8`] when a text message is not valid UTF-8.
    pub(crate) fn push(
        &mut self,
        first_is_text: Option<bool>,
        payload: Bytes,
        fin: bool,
    ) -> Result<Option<Message>, AssemblyError> {
        let is_text = match (first_is_text, self.fragmented.as_ref()) {
            (Some(_), Some(_)) => return Err(AssemblyError::Interleaved),
            (Some(t), None) => t,
            (None, Some(f)) => f.is_text,
            // A continuation with nothing to continue: the connection refuses it before it
            // gets here (1002); treated as binary so that no text is ever built from it.
            (None, None) => false,
        };
        if is_text {
            let done = self.validated_in_frame.min(payload.len());
            self.utf8.feed(&payload[done..])?;
            if fin {
                self.utf8.finish()?;
            }
        }
        self.validated_in_frame = 0;
        if fin && self.fragmented.is_none() {
            // A single-frame message: no copy.
            return Ok(Some(if is_text {
                Message::Text(Utf8Bytes::from_validated(payload))
            } else {
                Message::Binary(payload)
            }));
        }
        let fragmented = self.fragmented.get_or_insert_with(|| {
            Box::new(Fragmented {
                is_text,
                buf: BytesMut::new(),
                fragments: 0,
            })
        });
        fragmented.fragments += 1;
        fragmented.buf.extend_from_slice(&payload);
        if !fin {
            return Ok(None);
        }
        let data = std::mem::take(&mut fragmented.buf).freeze();
        self.fragmented = None;
        Ok(Some(if is_text {
            Message::Text(Utf8Bytes::from_validated(data))
        } else {
            Message::Binary(data)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_4_fragments_reassembled() {
        let mut a = Assembler::new();
        assert_eq!(
            a.push(Some(true), Bytes::from_static(b"Hel"), false),
            Ok(None)
        );
        assert!(a.in_progress());
        let m = a
            .push(None, Bytes::from_static(b"lo"), true)
            .unwrap()
            .unwrap();
        assert_eq!(m, Message::text("Hello"));
        assert!(!a.in_progress());
    }

    #[test]
    fn rfc6455_8_1_utf8_split_across_fragments() {
        let euro = "€".as_bytes();
        let mut a = Assembler::new();
        assert_eq!(
            a.push(Some(true), Bytes::copy_from_slice(&euro[..2]), false),
            Ok(None)
        );
        let m = a
            .push(None, Bytes::copy_from_slice(&euro[2..]), true)
            .unwrap()
            .unwrap();
        assert_eq!(m.as_text(), Some("€"));
    }

    #[test]
    fn rfc6455_8_1_truncated_utf8_at_end_of_message() {
        let mut a = Assembler::new();
        assert_eq!(
            a.push(Some(true), Bytes::from_static(&[b'a', 0xe2, 0x82]), true),
            Err(AssemblyError::InvalidUtf8)
        );
    }

    #[test]
    fn rfc6455_8_1_partial_validation_fails_fast() {
        let mut a = Assembler::new();
        a.validate_partial(true, b"ab").unwrap();
        assert_eq!(
            a.validate_partial(true, &[b'a', b'b', 0xc0]),
            Err(AssemblyError::InvalidUtf8)
        );
    }

    #[test]
    fn limits_checked_before_buffering() {
        let mut a = Assembler::new();
        a.push(Some(false), Bytes::from_static(b"12345"), false)
            .unwrap();
        assert_eq!(
            a.check_frame(6, 10, 100),
            Err(AssemblyError::TooBig { limit: 10 })
        );
        assert_eq!(a.check_frame(5, 10, 100), Ok(()));
        assert_eq!(
            a.check_frame(1, 10, 1),
            Err(AssemblyError::TooManyFragments { limit: 1 })
        );
    }

    /// Issue 17, second sequence: a binary message in progress, then a text frame that claims to
    /// start a new message. Before the fix this built a `Utf8Bytes` of `ff ff 6f 6b`.
    #[test]
    fn issue_17_a_new_message_never_joins_one_in_progress() {
        let mut a = Assembler::new();
        assert_eq!(
            a.push(Some(false), Bytes::from_static(&[0xff, 0xff]), false),
            Ok(None)
        );
        assert_eq!(
            a.push(Some(true), Bytes::from_static(b"ok"), true),
            Err(AssemblyError::Interleaved)
        );
        // The same with the text first: the binary frame doesn't end it as binary either.
        let mut a = Assembler::new();
        a.push(Some(true), Bytes::from_static(b"ok"), false)
            .unwrap();
        assert_eq!(
            a.push(Some(false), Bytes::from_static(&[0xff]), true),
            Err(AssemblyError::Interleaved)
        );
        // A continuation with nothing to continue never makes a text.
        let mut a = Assembler::new();
        assert_eq!(
            a.push(None, Bytes::from_static(&[0xff]), true),
            Ok(Some(Message::Binary(Bytes::from_static(&[0xff]))))
        );
    }

    #[test]
    fn utf8_bytes_conversions() {
        assert!(Utf8Bytes::try_from(vec![0xff]).is_err());
        let t = Utf8Bytes::try_from(b"hi".to_vec()).unwrap();
        assert_eq!(t, "hi");
        assert_eq!(Utf8Bytes::from_static("x").as_str(), "x");
    }
}
