//! Negotiation (RFC 7692 7.1) and codec (RFC 7692 7.2) tests.

use super::*;

#[path = "../../tests/support/chat_json.rs"]
mod chat_json;
use chat_json::chat_json;

fn ext(s: &str) -> Extension {
    let value = http::HeaderValue::from_str(s).unwrap();
    let mut all = crate::handshake::parse_extensions([&value]).unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn exts(s: &str) -> Vec<Extension> {
    let value = http::HeaderValue::from_str(s).unwrap();
    crate::handshake::parse_extensions([&value]).unwrap()
}

fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: sbits,
        client_max_window_bits: cbits,
    }
}

#[test]
fn rfc7692_7_1_default_offer_is_what_browsers_send() {
    assert_eq!(
        DeflateConfig::default().offer().to_string(),
        "permessage-deflate; client_max_window_bits"
    );
}

#[test]
fn rfc7692_7_1_server_negotiation_table() {
    let server = DeflateConfig::default();
    let cases: &[(&str, Option<DeflateParams>)] = &[
        ("permessage-deflate", Some(params(false, false, 15, 15))),
        (
            "permessage-deflate; client_max_window_bits",
            Some(params(false, false, 15, 15)),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            Some(params(false, false, 15, 10)),
        ),
        (
            "permessage-deflate; server_max_window_bits=9",
            Some(params(false, false, 9, 15)),
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            Some(params(false, false, 8, 15)),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            Some(params(true, false, 15, 15)),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some(params(false, true, 15, 15)),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11",
            Some(params(true, true, 12, 11)),
        ),
        ("x-webkit-deflate-frame", None),
        // Several offers: the first one is taken.
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
            Some(params(false, false, 10, 15)),
        ),
    ];
    for (offer, expected) in cases {
        assert_eq!(
            server.negotiate(&exts(offer)).unwrap(),
            *expected,
            "{offer}"
        );
    }
}

#[test]
fn rfc7692_7_1_server_limits_apply() {
    let server = DeflateConfig {
        server_max_window_bits: 11,
        client_max_window_bits: 12,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    // A client that allows limiting its window gets ours; one that does not keeps 15.
    assert_eq!(
        server
            .negotiate(&exts("permessage-deflate; client_max_window_bits"))
            .unwrap(),
        Some(params(true, true, 11, 12))
    );
    assert_eq!(
        server.negotiate(&exts("permessage-deflate")).unwrap(),
        Some(params(true, true, 11, 15))
    );
    let response = params(true, true, 11, 12).to_extension().to_string();
    assert_eq!(
        response,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12"
    );
    assert!(
        DeflateConfig::disabled()
            .negotiate(&exts("permessage-deflate"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn rfc7692_5_malformed_offers_fail_the_handshake() {
    let server = DeflateConfig::default();
    for offer in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; mystery",
        // A malformed later offer fails too, even if an earlier one was fine.
        "permessage-deflate, permessage-deflate; foo",
    ] {
        assert!(server.negotiate(&exts(offer)).is_err(), "{offer}");
    }
}

#[test]
fn rfc7692_7_1_client_verifies_the_response() {
    let client = DeflateConfig::default();
    assert_eq!(
        client.verify_response(&ext("permessage-deflate")).unwrap(),
        params(false, false, 15, 15)
    );
    assert_eq!(
        client
            .verify_response(&ext(
                "permessage-deflate; client_max_window_bits=9; server_no_context_takeover"
            ))
            .unwrap(),
        params(true, false, 15, 9)
    );
    for bad in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=20",
        "permessage-deflate; foo=bar",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ] {
        assert!(client.verify_response(&ext(bad)).is_err(), "{bad}");
    }
    // We asked the server for a 10-bit window: more, or silence, is a mismatch.
    let asking = DeflateConfig {
        server_max_window_bits: 10,
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    assert_eq!(
        asking.offer().to_string(),
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
    );
    assert!(
        asking
            .verify_response(&ext(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"
            ))
            .is_err()
    );
    assert!(
        asking
            .verify_response(&ext("permessage-deflate; server_no_context_takeover"))
            .is_err()
    );
    assert!(
        asking
            .verify_response(&ext("permessage-deflate; server_max_window_bits=10"))
            .is_err()
    );
    assert_eq!(
        asking
            .verify_response(&ext(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
            ))
            .unwrap(),
        params(true, false, 9, 15)
    );
}

fn codec(role: Role, p: DeflateParams) -> Codec {
    Codec::new(
        role,
        p,
        &DeflateConfig {
            threshold: 0,
            ..DeflateConfig::default()
        },
    )
}

fn inflate_all(c: &mut Codec, frames: &[&[u8]]) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        c.inflate(f, i + 1 == frames.len(), 1 << 20, &mut out)?;
    }
    Ok(out.to_vec())
}

#[test]
fn rfc7692_7_2_3_1_hello_compressed() {
    let wire = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut client = codec(Role::Client, params(false, false, 15, 15));
    assert_eq!(inflate_all(&mut client, &[&wire]).unwrap(), b"Hello");
    // Fragmented across two frames.
    let mut client = codec(Role::Client, params(false, false, 15, 15));
    assert_eq!(
        inflate_all(&mut client, &[&wire[..3], &wire[3..]]).unwrap(),
        b"Hello"
    );
    // And our compressor produces exactly these bytes.
    let mut server = codec(Role::Server, params(false, false, 15, 15));
    assert_eq!(&server.compress(b"Hello").unwrap()[..], &wire);
}

#[test]
fn rfc7692_7_2_3_2_sharing_the_window() {
    // The second "Hello" refers back to the first.
    let mut client = codec(Role::Client, params(false, false, 15, 15));
    assert_eq!(
        inflate_all(&mut client, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
        b"Hello"
    );
    assert_eq!(
        inflate_all(&mut client, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]]).unwrap(),
        b"Hello"
    );
    // Our compressor shares the window too (the second message is shorter), and without
    // context takeover it does not.
    let mut with = codec(Role::Server, params(false, false, 15, 15));
    let first = with.compress(b"Hello, Hello, Hello").unwrap();
    let second = with.compress(b"Hello, Hello, Hello").unwrap();
    assert!(second.len() < first.len());
    let mut without = codec(Role::Server, params(true, false, 15, 15));
    let first = without.compress(b"Hello, Hello, Hello").unwrap();
    let second = without.compress(b"Hello, Hello, Hello").unwrap();
    assert_eq!(first, second);
}

#[test]
fn rfc7692_7_2_3_3_to_5_other_block_forms() {
    let cases: &[&[u8]] = &[
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ], // stored block
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], // BFINAL set
        &[
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ], // two blocks
    ];
    for wire in cases {
        let mut c = codec(Role::Client, params(false, false, 15, 15));
        assert_eq!(inflate_all(&mut c, &[wire]).unwrap(), b"Hello", "{wire:x?}");
        // The codec is usable for the next message afterwards.
        assert_eq!(
            inflate_all(&mut c, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
    }
}

#[test]
fn rfc7692_7_2_roundtrip_every_mem_level_window_takeover_and_direction() {
    let repeated: Vec<u8> = (0..20_000)
        .map(|i| b"the quick brown fox jumps over the lazy dog "[i % 44])
        .collect();
    let json = chat_json(0, 20_000);
    for mem_level in 1..=9u8 {
        let config = DeflateConfig::default()
            .with_threshold(0)
            .with_mem_level(mem_level);
        for bits in 8..=15u8 {
            for nct in [false, true] {
                let p = params(nct, nct, bits, bits);
                for (sender, receiver) in
                    [(Role::Server, Role::Client), (Role::Client, Role::Server)]
                {
                    let mut tx = Codec::new(sender, p, &config);
                    let mut rx = Codec::new(receiver, p, &config);
                    let case = format!("mem {mem_level}, bits {bits}, nct {nct}, {sender:?} sends");
                    for text in [&repeated, &json, &repeated] {
                        match tx.compress(text) {
                            Some(compressed) => {
                                assert!(bits >= 9, "{case}: an 8-bit window is never used");
                                assert!(compressed.len() < text.len() / 2, "{case}");
                                assert_eq!(inflate_all(&mut rx, &[&compressed]).unwrap(), *text);
                            }
                            None => assert_eq!(bits, 8, "{case}"),
                        }
                    }
                    if bits >= 9 {
                        let compressed = tx.compress(&repeated).unwrap();
                        assert!(compressed.len() < repeated.len() / 4, "{case}");
                    }
                }
            }
        }
    }
}

#[test]
fn mem_level_defaults_to_8_and_is_clamped_to_1_to_9() {
    assert_eq!(DeflateConfig::default().mem_level, 8);
    for (asked, got) in [(0, 1), (1, 1), (4, 4), (9, 9), (10, 9), (255, 9)] {
        assert_eq!(
            DeflateConfig::default().with_mem_level(asked).mem_level,
            got,
            "{asked}"
        );
    }
    // Set directly, out of range: the codec clamps it rather than failing in zlib.
    for mem_level in [0, 10, 255] {
        let mut config = DeflateConfig::default().with_threshold(0);
        config.mem_level = mem_level;
        let mut tx = Codec::new(Role::Server, params(false, false, 15, 15), &config);
        let mut rx = Codec::new(Role::Client, params(false, false, 15, 15), &config);
        let compressed = tx.compress(b"Hello, Hello, Hello").unwrap();
        assert_eq!(
            inflate_all(&mut rx, &[&compressed]).unwrap(),
            b"Hello, Hello, Hello"
        );
    }
}

#[test]
fn lower_mem_level_compresses_varied_data_less_well() {
    // The trade the setting documents: fewer pending symbols, shorter blocks, more headers.
    let json = chat_json(0, 64 << 10);
    let size = |mem_level| {
        let config = DeflateConfig::default().with_mem_level(mem_level);
        Codec::new(Role::Server, params(false, false, 15, 15), &config)
            .compress(&json)
            .unwrap()
            .len()
    };
    assert!(size(1) > size(8), "{} <= {}", size(1), size(8));
}

#[test]
fn compression_bomb_stops_at_the_limit() {
    // 16 MiB of zeros compresses to about 16 KiB.
    let zeros = vec![0u8; 16 << 20];
    let mut server = codec(Role::Server, params(false, false, 15, 15));
    let bomb = server.compress(&zeros).unwrap();
    assert!(bomb.len() < 100_000);
    let mut client = codec(Role::Client, params(false, false, 15, 15));
    let mut out = Vec::new();
    let limit = 1 << 20;
    assert_eq!(
        client.inflate(&bomb, true, limit, &mut out),
        Err(InflateError::TooBig(limit))
    );
    assert!(
        out.capacity() <= limit + 2 * INFLATE_CHUNK,
        "allocated {} bytes",
        out.capacity()
    );
}

/// The ratio is counted per message and starts afresh with the next: two messages of 1 MiB of
/// zeros (1000x) pass one after the other under the floor, while the first half of a third,
/// as a frame that does not complete its message (no floor there), fails within one step of
/// 128x its bytes. `inflate` has no ratio.
#[test]
fn inflate_ratio_counts_each_message_across_its_frames() {
    const RATIO: InflateRatio = InflateRatio {
        max_ratio: 128,
        floor: 1 << 20,
    };
    let zeros = vec![0u8; 1 << 20];
    let mut peer = codec(Role::Client, params(false, false, 15, 15));
    let mut server = codec(Role::Server, params(false, false, 15, 15));
    for _ in 0..2 {
        let wire = peer.compress(&zeros).unwrap();
        let mut out = Vec::new();
        server
            .inflate_with_ratio(&wire, true, 64 << 20, RATIO, &mut out)
            .unwrap();
        assert_eq!(out, zeros);
    }
    let wire = peer.compress(&zeros).unwrap();
    let mut out = Vec::new();
    let half = wire.len() / 2;
    let err = server
        .inflate_with_ratio(&wire[..half], false, 64 << 20, RATIO, &mut out)
        .unwrap_err();
    let InflateError::Ratio { compressed, limit } = err else {
        panic!("{err:?}")
    };
    assert!(compressed <= half && limit == 128 * compressed, "{err:?}");
    assert!(
        out.len() <= limit + INFLATE_CHUNK,
        "{} bytes out",
        out.len()
    );

    let mut peer = codec(Role::Client, params(false, false, 15, 15));
    let mut server = codec(Role::Server, params(false, false, 15, 15));
    let wire = peer.compress(&vec![0u8; 8 << 20]).unwrap();
    let mut out = Vec::new();
    server.inflate(&wire, true, 8 << 20, &mut out).unwrap();
    assert_eq!(out.len(), 8 << 20);
}

#[test]
fn corrupt_data_is_an_error() {
    let mut c = codec(Role::Client, params(false, false, 15, 15));
    assert_eq!(
        inflate_all(&mut c, &[&[0xff, 0xff, 0xff, 0xff]]),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn below_threshold_is_sent_plain() {
    let mut c = Codec::new(
        Role::Server,
        params(false, false, 15, 15),
        &DeflateConfig::default(),
    );
    assert!(c.compress(b"short").is_none());
    assert!(c.compress(&[b'a'; 100]).is_some());
}

#[test]
fn rfc7692_7_2_3_6_empty_message_after_context_keeps_both_ends_in_step() {
    // Found by the frame_sequence fuzz target: "Hello", "", "world" with context takeover.
    for level in [0, 6, 9] {
        let config = DeflateConfig::default().with_level(level).with_threshold(0);
        let p = params(false, false, 15, 10);
        let mut sender = Codec::new(Role::Client, p, &config);
        let mut receiver = Codec::new(Role::Server, p, &config);
        for message in [&b"Hello"[..], b"", b"", b"world", b""] {
            let compressed = sender
                .compress(message)
                .expect("threshold 0 compresses everything");
            assert!(
                !compressed.is_empty(),
                "level {level}: a compressed message is never empty"
            );
            assert_eq!(
                inflate_all(&mut receiver, &[&compressed]).unwrap(),
                message,
                "level {level}"
            );
        }
    }
}
