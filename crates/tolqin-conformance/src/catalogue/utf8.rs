//! The byte sequences of sections 6.5-6.23, after Markus Kuhn's UTF-8 decoder capability and
//! stress test (<https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt>), grouped as
//! Autobahn groups them. Each sequence carries whether it is valid UTF-8 (RFC 3629).

/// "κόσμε", Greek for "cosmos": a valid string of multi-byte code points.
pub const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

/// κόσμε, then a lone UTF-16 surrogate (U+D800, invalid from its 2nd byte), then "edited".
pub const INVALID_SURROGATE: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

/// κόσμε, then 0x110000 in the UTF-8 scheme (out of range, invalid from its 2nd byte, the
/// 13th of the string), then "edited".
pub const INVALID_OUT_OF_RANGE: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64";

type Group = (&'static str, Vec<(bool, Vec<u8>)>);

fn group(title: &'static str, valid: bool, seqs: &[&[u8]]) -> Group {
    (title, seqs.iter().map(|s| (valid, s.to_vec())).collect())
}

/// The groups of sections 6.5 to 6.23, in order.
pub fn sequences() -> Vec<Group> {
    let mut groups = vec![group(
        "Some valid UTF-8 sequences",
        true,
        &[
            b"hello\x24world",
            b"hello\xc2\xa2world",
            b"hello\xe2\x82\xacworld",
            b"hello\xf0\xa4\xad\xa2world",
            KOSME,
        ],
    )];
    groups.push((
        "All prefixes of a valid UTF-8 string with multi-byte code points",
        (1..=KOSME.len())
            .map(|n| {
                (
                    std::str::from_utf8(&KOSME[..n]).is_ok(),
                    KOSME[..n].to_vec(),
                )
            })
            .collect(),
    ));
    groups.push(group(
        "First possible sequence of a certain length",
        true,
        &[b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"],
    ));
    groups.push(group(
        "First possible sequence of length 5 and 6 (invalid code points)",
        false,
        &[b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"],
    ));
    groups.push(group(
        "Last possible sequence of a certain length",
        true,
        &[b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"],
    ));
    groups.push(group(
        "Last possible sequence of length 4, 5 and 6 (invalid code points)",
        false,
        &[
            b"\xf7\xbf\xbf\xbf",
            b"\xfb\xbf\xbf\xbf\xbf",
            b"\xfd\xbf\xbf\xbf\xbf\xbf",
        ],
    ));
    let mut boundary = group(
        "Other boundary conditions",
        true,
        &[
            b"\xed\x9f\xbf",
            b"\xee\x80\x80",
            b"\xef\xbf\xbd",
            b"\xf4\x8f\xbf\xbf",
        ],
    );
    boundary.1.push((false, b"\xf4\x90\x80\x80".to_vec()));
    groups.push(boundary);
    let mut continuation = group(
        "Unexpected continuation bytes",
        false,
        &[
            b"\x80",
            b"\xbf",
            b"\x80\xbf",
            b"\x80\xbf\x80",
            b"\x80\xbf\x80\xbf",
            b"\x80\xbf\x80\xbf\x80",
            b"\x80\xbf\x80\xbf\x80\xbf",
        ],
    );
    continuation.1.push((false, (0x80..0xbf).collect()));
    groups.push(continuation);
    // Each start byte of a range (end exclusive) followed by a space.
    groups.push((
        "Lonely start characters",
        [
            (0xc0u8, 0xdfu8),
            (0xe0, 0xef),
            (0xf0, 0xf7),
            (0xf8, 0xfb),
            (0xfc, 0xfd),
        ]
        .iter()
        .map(|&(lo, hi)| (false, (lo..hi).flat_map(|b| [b, 0x20]).collect()))
        .collect(),
    ));
    let missing: [&[u8]; 10] = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ];
    groups.push(group(
        "Sequences with the last continuation byte missing",
        false,
        &missing,
    ));
    groups.push((
        "Concatenation of incomplete sequences",
        vec![(false, missing.concat())],
    ));
    groups.push(group(
        "Impossible bytes",
        false,
        &[b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"],
    ));
    groups.push(group(
        "Overlong ASCII character",
        false,
        &[
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xf0\x80\x80\xaf",
            b"\xf8\x80\x80\x80\xaf",
            b"\xfc\x80\x80\x80\x80\xaf",
        ],
    ));
    groups.push(group(
        "Maximum overlong sequences",
        false,
        &[
            b"\xc1\xbf",
            b"\xe0\x9f\xbf",
            b"\xf0\x8f\xbf\xbf",
            b"\xf8\x87\xbf\xbf\xbf",
            b"\xfc\x83\xbf\xbf\xbf\xbf",
        ],
    ));
    groups.push(group(
        "Overlong representation of the NUL character",
        false,
        &[
            b"\xc0\x80",
            b"\xe0\x80\x80",
            b"\xf0\x80\x80\x80",
            b"\xf8\x80\x80\x80\x80",
            b"\xfc\x80\x80\x80\x80\x80",
        ],
    ));
    groups.push(group(
        "Single UTF-16 surrogates",
        false,
        &[
            b"\xed\xa0\x80",
            b"\xed\xad\xbf",
            b"\xed\xae\x80",
            b"\xed\xaf\xbf",
            b"\xed\xb0\x80",
            b"\xed\xbe\x80",
            b"\xed\xbf\xbf",
        ],
    ));
    let high: [&[u8]; 4] = [
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
    ];
    let low: [&[u8]; 2] = [b"\xed\xb0\x80", b"\xed\xbf\xbf"];
    groups.push((
        "Paired UTF-16 surrogates",
        high.iter()
            .flat_map(|h| low.iter().map(move |l| (false, [*h, *l].concat())))
            .collect(),
    ));
    // Non-characters are valid UTF-8: U+FFFE, U+FFFF, and U+nFFFE / U+nFFFF in every plane.
    let mut nonchars = group(
        "Non-character code points (valid UTF-8)",
        true,
        &[b"\xef\xbf\xbe", b"\xef\xbf\xbf"],
    );
    for z1 in [0xf0u8, 0xf1, 0xf2, 0xf3, 0xf4] {
        for z2 in [0x8fu8, 0x9f, 0xaf, 0xbf] {
            if z1 == 0xf4 && z2 != 0x8f {
                continue; // beyond U+10FFFF
            }
            if z1 == 0xf0 && z2 == 0x8f {
                continue; // overlong
            }
            for z3 in [0xbeu8, 0xbf] {
                nonchars.1.push((true, vec![z1, z2, 0xbf, z3]));
            }
        }
    }
    groups.push(nonchars);
    groups.push(group(
        "Unicode specials (the replacement character and its neighbours)",
        true,
        &[
            b"\xef\xbf\xb9",
            b"\xef\xbf\xba",
            b"\xef\xbf\xbb",
            b"\xef\xbf\xbc",
            b"\xef\xbf\xbd",
            b"\xef\xbf\xbe",
            b"\xef\xbf\xbf",
        ],
    ));
    groups
}
