//! The TLS record layer for application traffic, after rustls has run the handshake.
//!
//! rustls negotiates the connection and hands over the traffic keys
//! ([`dangerous_into_kernel_connection`](rustls::server::UnbufferedServerConnection::dangerous_into_kernel_connection));
//! from then on records are protected here, with `ring`'s AEADs, in buffers the stream owns:
//! a record is opened in place and its plaintext moved up against the plaintext before it in the
//! same pass (`open_within`), so a run of records becomes one contiguous run of plaintext with
//! no copy; a record is sealed in place in the output buffer the plaintext was copied into.
//! (With tokio-rustls each byte was copied four more times than over plain TCP; bench note,
//! issue 5.)
//!
//! This module is only the cryptography and the record format (RFC 8446 5.2, RFC 5246 6.2.3.3,
//! RFC 7905): which records may come, key updates, alerts and limits are the stream's
//! ([`super::stream`]).

use ring::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use rustls::ConnectionTrafficSecrets;

use super::error::RecordError;

/// A record's header: content type, legacy version, length.
pub(crate) const HEADER: usize = 5;
/// Largest plaintext in one record (both versions).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// The AEAD tag (all the suites we take: AES-GCM, ChaCha20-Poly1305).
const TAG: usize = 16;
/// TLS 1.2 AES-GCM records carry the last 8 bytes of their nonce.
const EXPLICIT_NONCE: usize = 8;
/// Largest record payload a peer may send: 2^14 + 256 in TLS 1.3 (RFC 8446 5.2), 2^14 + 2048 in
/// TLS 1.2 (RFC 5246 6.2.3).
const MAX_CIPHERTEXT_13: usize = MAX_PLAINTEXT + 256;
const MAX_CIPHERTEXT_12: usize = MAX_PLAINTEXT + 2048;
/// Most bytes a sealed record adds to its plaintext (TLS 1.2 GCM: header, explicit nonce, tag;
/// TLS 1.3: header, content type, tag).
pub(crate) const MAX_OVERHEAD: usize = HEADER + EXPLICIT_NONCE + TAG;
/// The largest whole record a peer may send, header included.
pub(crate) const MAX_RECORD: usize = HEADER + MAX_CIPHERTEXT_12;

/// Record content types (RFC 8446 B.1).
pub(crate) mod content {
    /// `alert`.
    pub(crate) const ALERT: u8 = 21;
    /// `handshake`.
    pub(crate) const HANDSHAKE: u8 = 22;
    /// `application_data`.
    pub(crate) const APPLICATION_DATA: u8 = 23;
}

/// The protocol version the handshake settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// TLS 1.2: the content type is in the header, authenticated as additional data.
    Tls12,
    /// TLS 1.3: every record is `application_data` outside; the real type is inside.
    Tls13,
}

/// One direction's traffic key, IV and sequence number.
pub(crate) struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    /// TLS 1.2 with AES-GCM: 8 bytes of the nonce travel with each record.
    explicit_nonce: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material in logs.
        f.debug_struct("Keys")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys from what rustls extracted, starting at sequence number `seq`.
    pub(crate) fn new(
        secrets: ConnectionTrafficSecrets,
        seq: u64,
        version: Version,
    ) -> Result<Keys, RecordError> {
        let (algorithm, key, iv, gcm) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv, true),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&CHACHA20_POLY1305, key, iv, false)
            }
            _ => return Err(RecordError::UnsupportedSuite),
        };
        let iv: [u8; 12] = iv
            .as_ref()
            .try_into()
            .map_err(|_| RecordError::UnsupportedSuite)?;
        Keys::with(
            algorithm,
            key.as_ref(),
            iv,
            seq,
            gcm && version == Version::Tls12,
        )
    }

    /// Keys from their parts.
    fn with(
        algorithm: &'static ring::aead::Algorithm,
        key: &[u8],
        iv: [u8; 12],
        seq: u64,
        explicit_nonce: bool,
    ) -> Result<Keys, RecordError> {
        let key = UnboundKey::new(algorithm, key).map_err(|_| RecordError::UnsupportedSuite)?;
        Ok(Keys {
            key: LessSafeKey::new(key),
            iv,
            seq,
            explicit_nonce,
        })
    }

    /// Records protected with these keys so far (the next record's sequence number).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The per-record nonce: the IV with the sequence number XORed into its last 8 bytes
    /// (RFC 8446 5.3; RFC 5288 3 as rustls and every peer builds it; RFC 7905 2).
    fn nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// Moves to the next sequence number; a connection may never wrap it (RFC 8446 5.3).
    fn advance(&mut self) -> Result<(), RecordError> {
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(RecordError::SequenceExhausted)?;
        Ok(())
    }

    /// TLS 1.2's additional data: sequence number, type, version, plaintext length.
    fn aad12(&self, content_type: u8, len: usize) -> [u8; 13] {
        let mut aad = [0; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = content_type;
        aad[9..11].copy_from_slice(&[3, 3]);
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }
}

/// The length of the whole record starting at `header` (at least [`HEADER`] bytes), checked
/// against what the version allows before any of its payload is waited for.
pub(crate) fn record_len(header: &[u8], version: Version) -> Result<usize, RecordError> {
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let allowed = match version {
        // RFC 8446 5.2: after the handshake every record is application_data outside.
        Version::Tls13 if header[0] != content::APPLICATION_DATA => {
            return Err(RecordError::UnexpectedMessage("a record not protected"));
        }
        Version::Tls13 => MAX_CIPHERTEXT_13,
        Version::Tls12 => match header[0] {
            content::ALERT | content::HANDSHAKE | content::APPLICATION_DATA => MAX_CIPHERTEXT_12,
            _ => {
                return Err(RecordError::UnexpectedMessage(
                    "a record of an unexpected type",
                ));
            }
        },
    };
    if len > allowed {
        return Err(RecordError::RecordOverflow);
    }
    Ok(HEADER + len)
}

/// A record opened in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    /// Its real content type.
    pub(crate) content_type: u8,
    /// Its plaintext's length; the plaintext now starts where it was asked to.
    pub(crate) len: usize,
}

/// Opens the whole record at `buf[at..]` (its length known from [`record_len`]) so that its
/// plaintext starts at `buf[dst]`, `dst <= at`: the plaintext of consecutive records is laid
/// out end to end, in the same pass as the decryption.
pub(crate) fn open(
    keys: &mut Keys,
    version: Version,
    buf: &mut [u8],
    dst: usize,
    at: usize,
) -> Result<Opened, RecordError> {
    debug_assert!(dst <= at);
    let header: [u8; HEADER] = buf[at..at + HEADER].try_into().expect("a whole header");
    let end = at + record_len(&header, version)?;
    let payload = end - at - HEADER;
    let opened = match version {
        Version::Tls13 => {
            // The content type byte and the tag at least.
            if payload < TAG + 1 {
                return Err(RecordError::BadRecordMac);
            }
            let nonce = Nonce::assume_unique_for_key(keys.nonce());
            let plain = keys
                .key
                .open_within(
                    nonce,
                    Aad::from(header),
                    &mut buf[dst..end],
                    at + HEADER - dst..,
                )
                .map_err(|_| RecordError::BadRecordMac)?;
            // TLSInnerPlaintext: content, the type, zero padding (RFC 8446 5.4).
            let Some(type_at) = plain.iter().rposition(|&b| b != 0) else {
                return Err(RecordError::UnexpectedMessage(
                    "a record with no content type",
                ));
            };
            if type_at > MAX_PLAINTEXT {
                return Err(RecordError::RecordOverflow);
            }
            Opened {
                content_type: plain[type_at],
                len: type_at,
            }
        }
        Version::Tls12 => {
            let explicit = if keys.explicit_nonce {
                EXPLICIT_NONCE
            } else {
                0
            };
            let Some(len) = payload.checked_sub(explicit + TAG) else {
                return Err(RecordError::BadRecordMac);
            };
            if len > MAX_PLAINTEXT {
                return Err(RecordError::RecordOverflow);
            }
            let mut nonce = keys.nonce();
            if keys.explicit_nonce {
                // RFC 5288 3: the salt from the key block, then the record's own 8 bytes.
                nonce[4..].copy_from_slice(&buf[at + HEADER..at + HEADER + EXPLICIT_NONCE]);
            }
            let aad = keys.aad12(header[0], len);
            keys.key
                .open_within(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf[dst..end],
                    at + HEADER + explicit - dst..,
                )
                .map_err(|_| RecordError::BadRecordMac)?;
            Opened {
                content_type: header[0],
                len,
            }
        }
    };
    keys.advance()?;
    Ok(opened)
}

/// Appends one record of `content_type` holding `len` bytes (at most [`MAX_PLAINTEXT`]) that
/// `fill` appends to `out`.
pub(crate) fn seal(
    keys: &mut Keys,
    version: Version,
    content_type: u8,
    len: usize,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<(), RecordError> {
    debug_assert!(len <= MAX_PLAINTEXT);
    let start = out.len();
    out.reserve(len + MAX_OVERHEAD);
    let nonce = keys.nonce();
    let tag = match version {
        Version::Tls13 => {
            let payload = len + 1 + TAG;
            out.extend_from_slice(&[content::APPLICATION_DATA, 3, 3]);
            out.extend_from_slice(&(payload as u16).to_be_bytes());
            fill(out);
            debug_assert_eq!(out.len(), start + HEADER + len);
            out.push(content_type);
            let header: [u8; HEADER] = out[start..start + HEADER].try_into().expect("header");
            keys.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut out[start + HEADER..],
            )
        }
        Version::Tls12 => {
            let explicit = if keys.explicit_nonce {
                EXPLICIT_NONCE
            } else {
                0
            };
            let payload = explicit + len + TAG;
            out.extend_from_slice(&[content_type, 3, 3]);
            out.extend_from_slice(&(payload as u16).to_be_bytes());
            if keys.explicit_nonce {
                out.extend_from_slice(&nonce[4..]);
            }
            fill(out);
            debug_assert_eq!(out.len(), start + HEADER + explicit + len);
            let aad = keys.aad12(content_type, len);
            keys.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[start + HEADER + explicit..],
            )
        }
    }
    .map_err(|_| RecordError::SequenceExhausted)?;
    out.extend_from_slice(tag.as_ref());
    keys.advance()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(suite: u8, version: Version) -> Keys {
        let (algorithm, key_len, gcm) = match suite {
            0 => (&AES_128_GCM, 16, true),
            1 => (&AES_256_GCM, 32, true),
            _ => (&CHACHA20_POLY1305, 32, false),
        };
        let key = [suite + 1; 32];
        Keys::with(
            algorithm,
            &key[..key_len],
            [9; 12],
            7,
            gcm && version == Version::Tls12,
        )
        .unwrap()
    }

    /// Seals records of the given sizes and types, then opens them all in one buffer.
    fn round_trip(suite: u8, version: Version, records: &[(u8, usize)]) {
        let (mut tx, mut rx) = (keys(suite, version), keys(suite, version));
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, &(content_type, len)) in records.iter().enumerate() {
            let plain: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            seal(&mut tx, version, content_type, len, &mut wire, |out| {
                out.extend_from_slice(&plain)
            })
            .unwrap();
            expected.push((content_type, plain));
        }
        let (mut dst, mut at) = (0, 0);
        for (content_type, plain) in expected {
            let len = record_len(&wire[at..at + HEADER], version).unwrap();
            let opened = open(&mut rx, version, &mut wire, dst, at).unwrap();
            assert_eq!(opened.content_type, content_type);
            assert_eq!(&wire[dst..dst + opened.len], &plain[..]);
            dst += opened.len;
            at += len;
        }
        assert_eq!(at, wire.len());
        assert_eq!(rx.seq(), tx.seq());
    }

    #[test]
    fn records_open_end_to_end_in_place() {
        for version in [Version::Tls13, Version::Tls12] {
            for suite in 0..3 {
                round_trip(
                    suite,
                    version,
                    &[
                        (content::APPLICATION_DATA, 0),
                        (content::APPLICATION_DATA, 1),
                        (content::HANDSHAKE, 5),
                        (content::APPLICATION_DATA, MAX_PLAINTEXT),
                        (content::ALERT, 2),
                        (content::APPLICATION_DATA, 1000),
                    ],
                );
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_a_bad_record_mac() {
        for version in [Version::Tls13, Version::Tls12] {
            let mut tx = keys(0, version);
            let mut wire = Vec::new();
            seal(
                &mut tx,
                version,
                content::APPLICATION_DATA,
                40,
                &mut wire,
                |o| o.extend_from_slice(&[5; 40]),
            )
            .unwrap();
            // Every bit after the length (a changed header type or length fails earlier or
            // changes which bytes are a record).
            for byte in HEADER..wire.len() {
                let mut bad = wire.clone();
                bad[byte] ^= 0x10;
                let mut rx = keys(0, version);
                assert_eq!(
                    open(&mut rx, version, &mut bad, 0, 0),
                    Err(RecordError::BadRecordMac),
                    "{version:?} byte {byte}"
                );
            }
            // A replayed or reordered record: the sequence number is in the nonce.
            let mut rx = keys(0, version);
            let mut again = wire.clone();
            open(&mut rx, version, &mut again, 0, 0).unwrap();
            assert_eq!(
                open(&mut rx, version, &mut wire, 0, 0),
                Err(RecordError::BadRecordMac)
            );
        }
    }

    #[test]
    fn lengths_and_types_are_checked_before_decrypting() {
        let big = (MAX_CIPHERTEXT_13 + 1) as u16;
        let over13 = [23, 3, 3, (big >> 8) as u8, big as u8];
        assert_eq!(
            record_len(&over13, Version::Tls13),
            Err(RecordError::RecordOverflow)
        );
        assert_eq!(
            record_len(&over13, Version::Tls12),
            Ok(HEADER + MAX_CIPHERTEXT_13 + 1)
        );
        assert!(matches!(
            record_len(&[22, 3, 3, 0, 20], Version::Tls13),
            Err(RecordError::UnexpectedMessage(_))
        ));
        assert!(matches!(
            record_len(&[20, 3, 3, 0, 1], Version::Tls12),
            Err(RecordError::UnexpectedMessage(_))
        ));
        // Too short to hold a tag.
        let mut rx = keys(2, Version::Tls13);
        let mut short = vec![23, 3, 3, 0, 16];
        short.extend_from_slice(&[0; 16]);
        assert_eq!(
            open(&mut rx, Version::Tls13, &mut short, 0, 0),
            Err(RecordError::BadRecordMac)
        );
    }

    #[test]
    fn padding_is_stripped_and_all_zero_is_refused() {
        // A TLS 1.3 record whose inner plaintext is content, type, then zeros; and one that
        // is zeros only (no type): sealed by hand with the same keys.
        let mut tx = keys(0, Version::Tls13);
        let mut wire = Vec::new();
        // seal() writes content then type; emulate padding by sealing a "type" that is then
        // followed by zeros: seal the inner plaintext [b'h', b'i', 23, 0, 0, 0] as the type
        // 0 record's content (seal appends its own type byte 0: all-zero tail).
        seal(&mut tx, Version::Tls13, 0, 5, &mut wire, |o| {
            o.extend_from_slice(b"hi\x17\0\0")
        })
        .unwrap();
        seal(&mut tx, Version::Tls13, 0, 3, &mut wire, |o| {
            o.extend_from_slice(&[0; 3])
        })
        .unwrap();
        let mut rx = keys(0, Version::Tls13);
        let at = record_len(&wire[..HEADER], Version::Tls13).unwrap();
        let first = open(&mut rx, Version::Tls13, &mut wire, 0, 0).unwrap();
        assert_eq!(
            first,
            Opened {
                content_type: content::APPLICATION_DATA,
                len: 2
            }
        );
        assert_eq!(&wire[..2], b"hi");
        assert!(matches!(
            open(&mut rx, Version::Tls13, &mut wire, 0, at),
            Err(RecordError::UnexpectedMessage(_))
        ));
    }
}
