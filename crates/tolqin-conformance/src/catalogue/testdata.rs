//! Test data for the permessage-deflate sections. Autobahn ships five files (a novel, a
//! bitmap, a PDF, a JSON and an HTML document); this suite generates data of the same five
//! kinds instead, deterministically, so that no file has to be vendored.

use std::sync::OnceLock;

use bytes::Bytes;

/// The kinds of data, in the order of sections 12.1 to 12.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Human-readable prose (sent as binary, as Autobahn does).
    Prose,
    /// A greyscale bitmap: smooth gradients with some noise (binary).
    Bitmap,
    /// A document mixing text streams and already-compressed bytes (binary).
    Document,
    /// A JSON document (text).
    Json,
    /// An HTML document (text).
    Html,
}

impl Kind {
    /// All kinds, in section order.
    pub const ALL: [Kind; 5] = [
        Kind::Prose,
        Kind::Bitmap,
        Kind::Document,
        Kind::Json,
        Kind::Html,
    ];

    /// Whether messages of this kind are sent as binary.
    pub fn binary(self) -> bool {
        matches!(self, Kind::Prose | Kind::Bitmap | Kind::Document)
    }

    /// A short description for the case texts.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Prose => "human-readable prose (binary)",
            Kind::Bitmap => "a greyscale bitmap (binary)",
            Kind::Document => "a document of text and compressed streams (binary)",
            Kind::Json => "a JSON document (text)",
            Kind::Html => "an HTML document (text)",
        }
    }

    /// The data, generated once (a few hundred KiB, ASCII for the text kinds so that any slice
    /// is valid UTF-8).
    pub fn data(self) -> Bytes {
        static DATA: OnceLock<[Bytes; 5]> = OnceLock::new();
        let all = DATA.get_or_init(|| Kind::ALL.map(generate));
        all[Kind::ALL.iter().position(|k| *k == self).expect("listed")].clone()
    }
}

const SIZE: usize = 256 << 10;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: [&str; 48] = [
    "der",
    "die",
    "und",
    "in",
    "den",
    "von",
    "zu",
    "das",
    "mit",
    "sich",
    "des",
    "auf",
    "für",
    "ist",
    "im",
    "dem",
    "nicht",
    "ein",
    "Geist",
    "Welt",
    "Himmel",
    "Erde",
    "Nacht",
    "Tag",
    "habe",
    "nun",
    "ach",
    "Philosophie",
    "Juristerei",
    "Medizin",
    "leider",
    "auch",
    "Theologie",
    "durchaus",
    "studiert",
    "heißem",
    "Bemühn",
    "da",
    "steh",
    "ich",
    "armer",
    "Tor",
    "bin",
    "so",
    "klug",
    "als",
    "wie",
    "zuvor",
];

fn words(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    for i in 0..n {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
    }
}

fn ascii_words(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    let mut tmp = Vec::new();
    words(rng, &mut tmp, n);
    out.extend(tmp.into_iter().filter(u8::is_ascii));
}

fn generate(kind: Kind) -> Bytes {
    let mut rng = Rng(0x7015_u64 ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut out = Vec::with_capacity(SIZE + 4096);
    match kind {
        Kind::Prose => {
            while out.len() < SIZE {
                let n = 4 + rng.below(12);
                words(&mut rng, &mut out, n);
                out.extend_from_slice(if rng.below(4) == 0 { b".\r\n" } else { b", " });
            }
        }
        Kind::Bitmap => {
            // A BMP-like header, then 512 x 512 greyscale pixels.
            out.extend_from_slice(b"BM");
            out.extend_from_slice(&[0u8; 52]);
            for y in 0..512usize {
                for x in 0..512usize {
                    let base = ((x * 3 + y * 5) / 8 + (x ^ y) / 16) as u8;
                    out.push(base.wrapping_add((rng.next() % 7) as u8));
                }
            }
        }
        Kind::Document => {
            out.extend_from_slice(b"%PDF-1.4\n");
            let mut object = 1;
            while out.len() < SIZE {
                out.extend_from_slice(
                    format!("{object} 0 obj\n<< /Length 512 >>\nstream\n").as_bytes(),
                );
                if object % 3 == 0 {
                    out.extend((0..512).map(|_| rng.next() as u8));
                } else {
                    out.extend_from_slice(b"BT /F1 12 Tf 72 712 Td (");
                    ascii_words(&mut rng, &mut out, 60);
                    out.extend_from_slice(b") Tj ET");
                }
                out.extend_from_slice(b"\nendstream\nendobj\n");
                object += 1;
            }
        }
        Kind::Json => {
            out.push(b'[');
            let mut id = 0;
            while out.len() < SIZE {
                let mut name = Vec::new();
                ascii_words(&mut rng, &mut name, 2);
                let mut text = Vec::new();
                ascii_words(&mut rng, &mut text, 8);
                out.extend_from_slice(
                    format!(
                        "{{\"id\": {id}, \"name\": \"{}\", \"active\": {}, \"score\": {}.{}, \"tags\": [\"a{}\", \"b{}\"], \"text\": \"{}\"}},\n",
                        String::from_utf8_lossy(&name),
                        rng.below(2) == 0,
                        rng.below(1000),
                        rng.below(100),
                        rng.below(50),
                        rng.below(50),
                        String::from_utf8_lossy(&text),
                    )
                    .as_bytes(),
                );
                id += 1;
            }
            out.extend_from_slice(b"{}]\n");
        }
        Kind::Html => {
            out.extend_from_slice(
                b"<!DOCTYPE html>\n<html><head><title>Data</title></head><body>\n",
            );
            while out.len() < SIZE {
                let tag = ["p", "div", "li", "span", "td"][rng.below(5)];
                out.extend_from_slice(
                    format!(
                        "<{tag} class=\"c{}\" id=\"e{}\">",
                        rng.below(20),
                        rng.below(100_000)
                    )
                    .as_bytes(),
                );
                let n = 5 + rng.below(20);
                ascii_words(&mut rng, &mut out, n);
                out.extend_from_slice(format!("</{tag}>\n").as_bytes());
            }
            out.extend_from_slice(b"</body></html>\n");
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_text_kinds_are_ascii() {
        for kind in Kind::ALL {
            let a = kind.data();
            assert!(a.len() >= SIZE, "{kind:?}");
            assert_eq!(a, generate(kind));
            if !kind.binary() {
                assert!(a.is_ascii(), "{kind:?}");
            }
        }
    }
}
