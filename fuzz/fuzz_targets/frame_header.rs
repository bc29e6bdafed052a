//! The frame header decoder (RFC 6455 5.2) on arbitrary bytes.
//!
//! Invariants: a decoded header is exactly its own minimal encoding (so decode and encode are
//! inverse); `encoded_len` is the length consumed; every shorter prefix of a decodable header
//! is "incomplete", never an error; the opcode's bits round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_proto::frame::{FrameError, FrameHeader, MAX_HEADER_LEN, OpCode};

fuzz_target!(|data: &[u8]| {
    match FrameHeader::decode(data) {
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len <= MAX_HEADER_LEN);
            assert_eq!(header.encoded_len(), len);
            assert!(header.payload_len >> 63 == 0);
            assert_eq!(header.opcode.bits(), data[0] & 0x0f);
            assert_eq!(OpCode::from_bits(header.opcode.bits()), header.opcode);
            assert_eq!(header.opcode.is_control(), data[0] & 0x08 != 0);
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut out);
            assert_eq!(&out[..n], &data[..len], "re-encoding {header:?}");
            for short in 0..len {
                assert_eq!(
                    FrameHeader::decode(&data[..short]),
                    Ok(None),
                    "prefix of {short} bytes of a valid header"
                );
            }
        }
        Ok(None) => {
            // Incomplete: no more than a whole header is missing.
            assert!(data.len() < MAX_HEADER_LEN);
        }
        Err(FrameError::NonMinimalLength) => {
            assert!(matches!(data[1] & 0x7f, 126 | 127));
        }
        Err(FrameError::LengthTopBitSet) => {
            assert_eq!(data[1] & 0x7f, 127);
            assert!(data[2] & 0x80 != 0);
        }
        Err(other) => panic!("unknown frame error {other:?}"),
    }

    // Encoding any header and decoding it gives it back.
    if data.len() >= 14 {
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&data[2..10]);
        let payload_len = u64::from_be_bytes(len_bytes) >> (data[1] % 64);
        let header = FrameHeader {
            fin: data[0] & 0x80 != 0,
            rsv: (data[0] >> 4) & 7,
            opcode: OpCode::from_bits(data[0]),
            mask: (data[1] & 0x80 != 0).then(|| [data[10], data[11], data[12], data[13]]),
            payload_len: payload_len >> 1,
        };
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut out);
        assert_eq!(n, header.encoded_len());
        assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((header, n))));
    }
});
