//! XOR masking (RFC 6455 5.3), in place and many bytes at a time.
//!
//! Unmasking is the read path's hot loop on the server side: every payload byte of every client
//! frame passes through [`apply_mask`], and masking is the client's. The key is rotated to the
//! payload's offset and widened once; short payloads (chat messages) go eight bytes per step,
//! long ones a 64-byte block per step, which LLVM compiles to AVX2 where the CPU has it (checked
//! once at run time) and to SSE2 otherwise. All of it is safe code but for the one call that
//! enables AVX2, justified where it is made.

use std::mem::MaybeUninit;

/// From this length on, payloads are masked in 64-byte blocks.
const WIDE: usize = 64;

/// XORs `buf` with the four-byte masking `key`, in place.
///
/// `offset` is the position of `buf[0]` within the frame's payload, so that a payload can be
/// unmasked in pieces as it arrives: unmasking `p[..a]` with offset 0 and then `p[a..]` with
/// offset `a` is the same as unmasking `p` at once. Masking and unmasking are the same operation.
///
/// ```
/// use tolqin_proto::mask::apply_mask;
/// // RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
/// let mut data = *b"Hello";
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    if buf.len() < WIDE {
        mask_words(buf, key);
    } else {
        mask_wide(buf, key);
    }
}

/// The key rotated so that byte 0 of the buffer lines up with byte `offset % 4` of the key.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // As a little-endian word, rotating the bytes left by one is rotating the word right by 8
    // bits: one instruction, where `<[u8]>::rotate_left` is a call into the generic slice
    // rotation (3% of the echo server's instructions under W6, once per message).
    let bits = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

/// The key repeated over a 64-bit word, in memory order.
#[inline]
fn key_word(key: [u8; 4]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&key);
    bytes[4..].copy_from_slice(&key);
    u64::from_ne_bytes(bytes)
}

/// Eight bytes per step, then what is left: a 20-byte chat message costs a handful of
/// instructions.
#[inline]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let word = key_word(key);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        xor_word(chunk, word);
    }
    // The remainder starts at a multiple of 8 bytes, hence of 4: the key lines up again.
    for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

/// XORs an 8-byte chunk with `word`.
#[inline(always)]
fn xor_word(chunk: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

/// 64-byte blocks, then [`mask_words`] for the rest.
#[inline(never)]
fn mask_wide(buf: &mut [u8], key: [u8; 4]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `mask_blocks_avx2` is safe code compiled with AVX2 enabled; its only
        // requirement is that the CPU executing it supports AVX2, which was just checked.
        // Exercised by this module's tests and proptest (lengths past `WIDE`, every offset)
        // and by every fuzz target that feeds frames (on any AVX2 machine).
        return unsafe { mask_blocks_avx2(buf, key) };
    }
    mask_blocks(buf, key);
}

/// [`mask_blocks`] compiled for AVX2 (two 32-byte XORs per block).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask_blocks_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_blocks(buf, key);
}

#[inline(always)]
fn mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let word = key_word(key);
    let mut blocks = buf.chunks_exact_mut(WIDE);
    for block in &mut blocks {
        // Eight words with no dependency between them: one or two vector XORs.
        for chunk in block.chunks_exact_mut(8) {
            xor_word(chunk, word);
        }
    }
    // A multiple of 64 bytes was done: the key lines up again at the remainder.
    mask_words(blocks.into_remainder(), key);
}

/// Writes `src` XORed with the masking `key` into `dst`, in one pass: the copy and the masking
/// of [`apply_mask`] fused, for payloads that are moved anyway (a frame read into a scratch
/// buffer and copied into the connection's, a shared payload a client must mask). `offset` is
/// as for [`apply_mask`]; every byte of `dst` is initialized on return.
///
/// # Panics
/// If `dst` and `src` differ in length.
///
/// ```
/// use std::mem::MaybeUninit;
/// use tolqin_proto::mask::copy_masked;
/// let mut dst = [MaybeUninit::uninit(); 5];
/// copy_masked(&mut dst, b"Hello", [0x37, 0xfa, 0x21, 0x3d], 0);
/// let masked: Vec<u8> = dst.iter().map(|b| unsafe { b.assume_init() }).collect();
/// assert_eq!(masked, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn copy_masked(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "copy_masked: lengths differ");
    let key = rotate(key, offset);
    #[cfg(target_arch = "x86_64")]
    if src.len() >= WIDE && std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `copy_blocks_avx2` is safe code compiled with AVX2 enabled; its only
        // requirement is that the CPU executing it supports AVX2, which was just checked.
        // Exercised by this module's tests (lengths past `WIDE`, every offset) and through
        // `Connection::receive` by the connection tests and fuzz targets.
        return unsafe { copy_blocks_avx2(dst, src, key) };
    }
    copy_blocks(dst, src, key);
}

/// [`copy_blocks`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_blocks_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    copy_blocks(dst, src, key);
}

#[inline(always)]
fn copy_blocks(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    let mut pattern = [0u8; WIDE];
    for (p, k) in pattern.iter_mut().zip(key.iter().cycle()) {
        *p = *k;
    }
    let mut d = dst.chunks_exact_mut(WIDE);
    let mut s = src.chunks_exact(WIDE);
    for (d, s) in (&mut d).zip(&mut s) {
        for ((d, s), p) in d.iter_mut().zip(s).zip(&pattern) {
            d.write(s ^ p);
        }
    }
    // Whole blocks were done: the pattern lines up again at the remainder.
    let (d, s) = (d.into_remainder(), s.remainder());
    for ((d, s), p) in d.iter_mut().zip(s).zip(&pattern) {
        d.write(s ^ p);
    }
}

/// The obvious byte-at-a-time masking loop; the reference [`apply_mask`] is tested against and
/// the baseline its benchmark is compared with.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn rfc6455_5_3_every_length_and_offset_matches_bytewise() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in (0..300).chain([1000, 4099, 65_536 + 13]) {
            for offset in 0..4 {
                let src: Vec<u8> = (0..len as u8).collect();
                let mut fast = src.clone();
                let mut slow = src.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_bytewise(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn copy_masked_matches_apply_mask_for_every_length_and_offset() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        for len in (0..300).chain([4099, 65_536 + 7]) {
            for offset in 0..4 {
                let src: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut expected = src.clone();
                apply_mask(&mut expected, key, offset);
                let mut dst = vec![MaybeUninit::new(0xaa); len];
                copy_masked(&mut dst, &src, key, offset);
                #[allow(unsafe_code)]
                // SAFETY: every element was initialized with `MaybeUninit::new` above (and
                // `copy_masked` overwrites, never uninitializes).
                let got: Vec<u8> = dst.iter().map(|b| unsafe { b.assume_init() }).collect();
                assert_eq!(got, expected, "len {len} offset {offset}");
            }
        }
    }

    proptest! {
        #[test]
        fn rfc6455_5_3_unmasking_in_pieces_equals_at_once(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            key in any::<[u8; 4]>(),
            split in 0usize..300,
        ) {
            let split = split.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            prop_assert_eq!(whole, pieces);
        }
    }
}
