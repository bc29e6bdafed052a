//! Chat-like JSON for the deflate tests, the memory test and the `deflate_memory` example (one
//! generator, so they all measure the same data): records with repeated keys and varying
//! values, less regular than a repeated sentence, so the memory level shows in the ratio.

/// `len` bytes of records numbered from `first_id`, deterministic for a given `first_id`.
pub fn chat_json(first_id: u32, len: usize) -> Vec<u8> {
    let words = [
        "hello", "world", "tolqin", "deflate", "window", "the", "a", "message",
    ];
    let mut seed = 0x2545_f491_u32 ^ first_id;
    let mut out = Vec::with_capacity(len + 100);
    let mut id = first_id;
    while out.len() < len {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let (user, w1, w2) = (
            seed >> 24,
            (seed >> 8) as usize % 8,
            (seed >> 16) as usize % 8,
        );
        out.extend_from_slice(
            format!(
                r#"{{"id":{id},"user":"u{user}","content":"{} {} {id}"}}"#,
                words[w1], words[w2]
            )
            .as_bytes(),
        );
        id += 1;
    }
    out.truncate(len);
    out
}
