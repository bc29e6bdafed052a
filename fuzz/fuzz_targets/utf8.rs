//! The incremental UTF-8 validator against `std::str::from_utf8`, fed in arbitrary pieces.
//!
//! Invariants: it accepts exactly the valid strings; it fails as soon as the bytes so far can
//! no longer start a valid string (fail fast, RFC 6455 8.1) and never before; `reset` starts
//! afresh.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{Input, pieces};
use tolqin_proto::utf8::Utf8Validator;

/// Whether `bytes` can be continued into valid UTF-8.
fn is_valid_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let sizes = [
        usize::from(input.byte()),
        usize::from(input.byte()),
        usize::from(input.byte()),
    ];
    let data = input.rest();

    let mut v = Utf8Validator::new();
    // Garbage left over from a previous message must not matter after a reset.
    let _ = v.feed(&[0xf0, 0x9f]);
    v.reset();

    let mut fed = 0;
    let mut failed = false;
    for piece in pieces(data, &sizes) {
        fed += piece.len();
        match v.feed(piece) {
            Ok(()) => assert!(
                is_valid_prefix(&data[..fed]),
                "accepted {:02x?}",
                &data[..fed]
            ),
            Err(_) => {
                assert!(
                    !is_valid_prefix(&data[..fed]),
                    "rejected {:02x?}",
                    &data[..fed]
                );
                // Fail fast: the bytes before this piece were still a valid prefix.
                assert!(is_valid_prefix(&data[..fed - piece.len()]));
                failed = true;
                break;
            }
        }
    }
    if !failed {
        assert_eq!(v.finish().is_ok(), std::str::from_utf8(data).is_ok());
    } else {
        assert!(std::str::from_utf8(data).is_err());
    }
});
