//! `Codec::inflate` with a size limit, on arbitrary compressed messages cut into frames.
//!
//! Input: a parameters byte, a window-bits byte, a limit choice, a FIN pattern, two frame-size
//! bytes, then the compressed frames.
//!
//! Invariants: the output never grows past the limit plus one byte, and succeeds only within
//! the limit; memory reserved stays under the limit plus one 16 KiB inflate chunk (a
//! compression bomb costs no more than that); a message inflates to the same bytes, or fails,
//! whether it arrives in one frame or in many.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_fuzz::{Input, deflate_params, pieces};
use tolqin_proto::Role;
use tolqin_proto::deflate::{Codec, DeflateConfig, InflateError};

/// `deflate::INFLATE_CHUNK`: what inflating may allocate past the limit.
const CHUNK: usize = 16 << 10;
const LIMITS: [usize; 8] = [0, 1, 100, CHUNK - 1, CHUNK, 64 << 10, 1 << 20, 1 << 20];

/// Inflates one message from its frames into `out`.
fn inflate(
    codec: &mut Codec,
    frames: &[&[u8]],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), InflateError> {
    for (i, frame) in frames.iter().enumerate() {
        let result = codec.inflate(frame, i + 1 == frames.len(), limit, out);
        assert!(
            out.len() <= limit + 1,
            "{} bytes out with a limit of {limit}",
            out.len()
        );
        assert!(
            out.capacity() <= limit + CHUNK + 1,
            "{} bytes reserved with a limit of {limit}",
            out.capacity()
        );
        match result {
            Ok(()) => assert!(out.len() <= limit),
            Err(InflateError::TooBig(l)) => assert_eq!(l, limit),
            Err(_) => {}
        }
        result?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let params = deflate_params(input.byte(), input.byte());
    let limit = LIMITS[usize::from(input.byte() % 8)];
    let fins = input.byte();
    let sizes = [
        usize::from(input.byte()) + 1,
        usize::from(input.byte()) * 4 + 1,
    ];
    let frames = pieces(input.rest(), &sizes);

    // Group the frames into messages: frame i ends a message when bit i % 8 of `fins` is set,
    // and the last frame ends the last one.
    let mut messages: Vec<Vec<&[u8]>> = vec![Vec::new()];
    for (i, frame) in frames.iter().enumerate() {
        messages.last_mut().expect("not empty").push(frame);
        if fins & (1 << (i % 8)) != 0 && i + 1 < frames.len() {
            messages.push(Vec::new());
        }
    }

    let config = DeflateConfig::default();
    let mut split = Codec::new(Role::Server, params, &config);
    let mut whole = Codec::new(Role::Server, params, &config);
    for message in messages.iter().filter(|m| !m.is_empty()) {
        let mut split_out = Vec::new();
        let split_result = inflate(&mut split, message, limit, &mut split_out);
        let joined = message.concat();
        let mut whole_out = Vec::new();
        let whole_result = inflate(&mut whole, &[&joined], limit, &mut whole_out);
        assert_eq!(
            split_result.is_ok(),
            whole_result.is_ok(),
            "in {} frames: {split_result:?}, in one: {whole_result:?}",
            message.len()
        );
        if split_result.is_err() {
            // The connection fails here; the codec is not used again. (Data that is both
            // corrupt and over the limit may be reported either way, depending on where the
            // frames are cut: zlib reports the corruption with the output that passed the
            // limit, or the limit is hit first.)
            break;
        }
        assert!(
            split_out == whole_out,
            "in {} frames or in one",
            message.len()
        );
    }
});
