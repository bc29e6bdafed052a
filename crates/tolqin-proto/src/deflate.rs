//! permessage-deflate (RFC 7692): negotiation of its parameters, and the per-message codec.
//!
//! Negotiation: a client offers [`DeflateConfig::offer`]; a server picks the first offer it can
//! honour with [`DeflateConfig::negotiate`]; the client checks the answer with
//! [`DeflateConfig::verify_response`]. Both ends then hold the same [`DeflateParams`].
//!
//! Window bits 8: zlib's raw deflate cannot compress with a 256-byte window (it silently uses
//! 512, which a peer with a 256-byte window could not decode). So when the window this end must
//! compress with is 8 bits, it honours the limit by sending its messages uncompressed, which
//! RFC 7692 allows per message. Decompression is never a problem: a larger window decodes any
//! stream made with a smaller one.
//!
//! ## Compression bombs
//!
//! [`Codec::inflate`] stops as soon as a message passes a size limit, and
//! [`Codec::inflate_with_ratio`] also as soon as it passes a ratio of inflated to compressed
//! bytes ([`InflateRatio`]); a connection applies both (`Config::max_message_size`,
//! `Config::max_inflate_ratio` and `Config::inflate_ratio_floor`).
//!
//! ## Memory per connection
//!
//! zlib's state is large, so it is allocated on first use in each direction (a connection that
//! never exchanges a compressed message holds none), and with no context takeover it is freed
//! after every message (it is rebuilt for the next one).
//!
//! Measured on one server codec after it compressed one 16 KiB chat-like JSON message and
//! inflated one (zlib-rs 0.6.8, x86_64, release build for the last three columns):
//! *allocated* counts the bytes held, exactly, with a counting global allocator
//! (`cargo test -p tolqin-proto --test deflate_memory -- --nocapture`, which also asserts the
//! trends below); *RSS* is the resident memory the OS reports, growth over 1,000 such codecs
//! divided by 1,000, each setting in a fresh process, and *compress* the time to compress one
//! such message, averaged over 200 successive different messages
//! (`cargo run --release -p tolqin-proto --example deflate_memory`).
//!
//! | window bits | level | memory level | no context takeover | allocated: compressor + decompressor | RSS | 16 KiB compressed to | compress |
//! |---|---|---|---|---|---|---|---|
//! | 15 (default) | 6 (default) | 8 (default) | no (default) | 371 + 47 = 418 KiB | 349 KiB | 3,118 bytes | 256 µs |
//! | 15 | 1 | 8 | no | 371 + 47 = 418 KiB | 351 KiB | 4,738 bytes | 34 µs |
//! | 15 | 6 | 9 | no | 483 + 47 = 530 KiB | 397 KiB | 3,118 bytes | 256 µs |
//! | 15 | 6 | 4 | no | 266 + 47 = 313 KiB | 301 KiB | 3,072 bytes | 260 µs |
//! | 15 | 6 | 1 | no | 260 + 47 = 307 KiB | 295 KiB | 3,284 bytes | 290 µs |
//! | 12 | 6 | 8 | no | 259 + 47 = 306 KiB | 237 KiB | 3,041 bytes | 116 µs |
//! | 10 | 6 | 8 | no | 247 + 47 = 294 KiB | 225 KiB | 3,232 bytes | 130 µs |
//! | 9 | 6 | 8 | no | 245 + 47 = 292 KiB | 223 KiB | 3,582 bytes | 175 µs |
//! | 9 | 6 | 1 | no | 134 + 47 = 181 KiB | 169 KiB | 4,474 bytes | 280 µs |
//! | 15 | 6 | 8 | yes, both directions | 0 between messages (418 KiB while one is processed) | 1 KiB | 3,118 bytes | 140 µs |
//!
//! Where it goes (zlib-rs 0.6): the compressor holds its window and hash chains (4 bytes per
//! window byte: 128 KiB at 15 bits, 2 KiB at 9), a hash table of a fixed 128 KiB, and the
//! memory level's pending-symbol buffers (7 x 2^(memory level + 6) bytes: 224 KiB at 9,
//! 112 KiB at 8, 7 KiB at 4, under 1 KiB at 1); the decompressor always allocates a 32 KiB
//! window, whatever the window bits, plus its state. RSS is lower than allocated because
//! buffers a 16 KiB message does not reach are never touched.
//!
//! So: the memory level saves up to 111 KiB per compressor (8 to 1) at a small cost in ratio
//! (5% here at 1, none at 4) and in CPU (13% at 1 with 15 window bits, 60% with 9); below 12
//! window bits the fixed hash table dominates. A server with many connections should choose
//! `server_no_context_takeover` (its compressor is then freed after each message), or else
//! limit `server_max_window_bits` (its own compressor's window; limiting the client's window
//! saves the server nothing, as the inflater's window is always 32 KiB) and lower
//! `mem_level`, at some cost in compression ratio for small repeated messages. The
//! compression level changes CPU, not memory. Timings are from a 2-core VM, within about 10%.

// zlib-rs directly rather than through flate2: flate2 wraps these very types (it is a thin
// layer over `zlib_rs::{Deflate, Inflate}`) but fixes the compressor's memory level at 8. The
// inflater comes from zlib-rs too, so that the codec speaks one library's API and tolqin-proto
// does not depend on two; its behaviour is the same as through flate2.
use bytes::Bytes;
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Method, Status, Strategy};

use crate::connection::Role;
use crate::handshake::Extension;

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// RFC 7692 7.2.1: the four octets a sync flush ends with, removed before sending and appended
/// before inflating.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// RFC 7692 7.1.2: window sizes are 2^8 to 2^15 bytes.
const MIN_WINDOW_BITS: u8 = 8;
const MAX_WINDOW_BITS: u8 = 15;

/// zlib's memory levels: 1 (least memory) to 9; 8 is zlib's default.
const MIN_MEM_LEVEL: u8 = 1;
const MAX_MEM_LEVEL: u8 = 9;
const DEFAULT_MEM_LEVEL: u8 = 8;

/// permessage-deflate settings of one end, with documented defaults.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `enabled` | `true` | client: offer it (as browsers do); server: accept offers |
/// | `level` | 6 | zlib compression level, 0-9 |
/// | `mem_level` | 8 | zlib memory level of this end's compressor, 1-9: less memory (7 x 2^(level+6) bytes) for a lower ratio and speed |
/// | `client_max_window_bits` | 15 | the window the client compresses with (a client asks for it; a server limits the client to it when the client allows) |
/// | `server_max_window_bits` | 15 | the window the server compresses with (a client asks the server for it; a server uses at most this) |
/// | `client_no_context_takeover` | `false` | the client resets its compressor after each message |
/// | `server_no_context_takeover` | `false` | the server resets its compressor after each message |
/// | `threshold` | 32 bytes | messages shorter than this are sent uncompressed |
///
/// The memory level is local: it is not negotiated, and the peer decodes the stream whatever
/// level made it. See the [module docs](self#memory-per-connection) for what each setting
/// costs per connection.
///
/// ```
/// use tolqin_proto::deflate::DeflateConfig;
///
/// // Many mostly idle connections: smaller compressor, reset after every message.
/// let config = DeflateConfig::default()
///     .with_mem_level(4)
///     .with_max_window_bits(15, 12)
///     .with_no_context_takeover(false, true);
/// assert_eq!(config.mem_level, 4);
/// assert_eq!(DeflateConfig::default().with_mem_level(0).mem_level, 1); // clamped
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Whether to offer (client) or accept (server) the extension.
    pub enabled: bool,
    /// zlib compression level, 0 (none) to 9 (best).
    pub level: u32,
    /// zlib memory level of the compressor, 1 to 9 (values outside are clamped when the codec
    /// is built); it trades memory for speed and ratio. It sizes the buffers of pending
    /// symbols, `2^(mem_level + 6)` entries of 7 bytes (224 KiB at 9, 112 KiB at 8, 7 KiB at
    /// 4, 896 bytes at 1), which bound the length of a deflate block: a lower level saves that
    /// memory but cuts messages into more, shorter blocks, each with its own Huffman tables,
    /// so at 1 the ratio is a few percent worse and compressing is slower; from 4 up the
    /// difference is small. zlib-rs's hash table is a fixed 128 KiB at every level. The
    /// decompressor does not depend on it (it is not negotiated).
    pub mem_level: u8,
    /// Window bits (8-15) for the client's compressor.
    pub client_max_window_bits: u8,
    /// Window bits (8-15) for the server's compressor.
    pub server_max_window_bits: u8,
    /// Ask (client) or require (server) that the client resets its compressor per message.
    pub client_no_context_takeover: bool,
    /// Ask (client) or choose (server) that the server resets its compressor per message.
    pub server_no_context_takeover: bool,
    /// Messages with fewer payload bytes than this are sent uncompressed.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: true,
            level: 6,
            mem_level: DEFAULT_MEM_LEVEL,
            client_max_window_bits: MAX_WINDOW_BITS,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            threshold: 32,
        }
    }
}

/// Parameters both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// Window bits of the server's compressor.
    pub server_max_window_bits: u8,
    /// Window bits of the client's compressor.
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// The response element a server sends for these parameters.
    pub fn to_extension(&self) -> Extension {
        let client_bits =
            (self.client_max_window_bits < MAX_WINDOW_BITS).then_some(self.client_max_window_bits);
        element(
            self.server_no_context_takeover,
            self.client_no_context_takeover,
            self.server_max_window_bits,
            client_bits.map(Some),
        )
    }
}

/// A permessage-deflate element with these parameters; window bits of 15 are left out (the
/// default), and `client_bits` is `None` (absent), `Some(None)` (present without a value) or
/// `Some(Some(bits))`.
fn element(
    server_nct: bool,
    client_nct: bool,
    server_bits: u8,
    client_bits: Option<Option<u8>>,
) -> Extension {
    let mut ext = Extension::new(NAME);
    if server_nct {
        ext = ext.with_param("server_no_context_takeover", None);
    }
    if client_nct {
        ext = ext.with_param("client_no_context_takeover", None);
    }
    if server_bits < MAX_WINDOW_BITS {
        ext = ext.with_param("server_max_window_bits", Some(&server_bits.to_string()));
    }
    match client_bits {
        None => ext,
        Some(bits) => ext.with_param(
            "client_max_window_bits",
            bits.map(|b| b.to_string()).as_deref(),
        ),
    }
}

/// Why permessage-deflate parameters are unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A parameter RFC 7692 does not define.
    #[error("unknown permessage-deflate parameter {0:?}")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("permessage-deflate parameter {0:?} given twice")]
    DuplicateParameter(String),
    /// A value that is not allowed (window bits outside 8-15, a value on a flag...).
    #[error("invalid value for permessage-deflate parameter {0:?}")]
    InvalidValue(String),
    /// The server answered with parameters the client did not allow.
    #[error("the server's permessage-deflate parameters do not match the offer: {0}")]
    ResponseMismatch(&'static str),
    /// The server accepted permessage-deflate more than once.
    #[error("permessage-deflate accepted more than once")]
    Repeated,
}

/// The parameters of one offer or response element, syntax checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in offers only).
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_bits(name: &str, value: &str) -> Result<u8, NegotiationError> {
    // RFC 7692 7.1.2.1: 1*DIGIT in 8..=15, no leading zero.
    match value.parse::<u8>() {
        Ok(bits)
            if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) && !value.starts_with('0') =>
        {
            Ok(bits)
        }
        _ => Err(NegotiationError::InvalidValue(name.to_string())),
    }
}

fn parse(ext: &Extension) -> Result<Parsed, NegotiationError> {
    let mut p = Parsed::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &ext.params {
        if seen.contains(&name.as_str()) {
            return Err(NegotiationError::DuplicateParameter(name.clone()));
        }
        seen.push(name);
        let value = value.as_deref();
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => p.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => p.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                p.server_max_window_bits = Some(parse_bits(name, v)?)
            }
            ("client_max_window_bits", None) => p.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                p.client_max_window_bits = Some(Some(parse_bits(name, v)?))
            }
            (
                "server_no_context_takeover"
                | "client_no_context_takeover"
                | "server_max_window_bits",
                _,
            ) => {
                return Err(NegotiationError::InvalidValue(name.clone()));
            }
            _ => return Err(NegotiationError::UnknownParameter(name.clone())),
        }
    }
    Ok(p)
}

impl DeflateConfig {
    /// A disabled configuration.
    pub fn disabled() -> Self {
        DeflateConfig {
            enabled: false,
            ..Self::default()
        }
    }

    /// Sets [`DeflateConfig::enabled`].
    pub fn with_enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Sets [`DeflateConfig::level`] (0-9).
    pub fn with_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::mem_level`] (1-9; values outside are clamped).
    pub fn with_mem_level(mut self, mem_level: u8) -> Self {
        self.mem_level = mem_level.clamp(MIN_MEM_LEVEL, MAX_MEM_LEVEL);
        self
    }

    /// Sets both window sizes (8-15 bits; values outside are clamped).
    pub fn with_max_window_bits(mut self, client: u8, server: u8) -> Self {
        self.client_max_window_bits = client.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self.server_max_window_bits = server.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }

    /// Sets both no-context-takeover flags.
    pub fn with_no_context_takeover(mut self, client: bool, server: bool) -> Self {
        self.client_no_context_takeover = client;
        self.server_no_context_takeover = server;
        self
    }

    /// Sets [`DeflateConfig::threshold`].
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The client's offer: always `client_max_window_bits` (so the server may limit our
    /// window), and the other parameters where this configuration differs from the defaults.
    pub fn offer(&self) -> Extension {
        // client_max_window_bits always: without a value it says "you may limit my window".
        let client_bits =
            (self.client_max_window_bits < MAX_WINDOW_BITS).then_some(self.client_max_window_bits);
        element(
            self.server_no_context_takeover,
            self.client_no_context_takeover,
            self.server_max_window_bits,
            Some(client_bits),
        )
    }

    /// Server: the parameters for the first permessage-deflate offer among `offers`, in the
    /// client's order of preference; `Ok(None)` if there is none (or this end is disabled).
    ///
    /// # Errors
    /// [`NegotiationError`] for a malformed offer (unknown or repeated parameter, invalid
    /// value): the handshake fails with 400.
    pub fn negotiate(
        &self,
        offers: &[Extension],
    ) -> Result<Option<DeflateParams>, NegotiationError> {
        if !self.enabled {
            return Ok(None);
        }
        let mut chosen = None;
        for offer in offers.iter().filter(|e| e.name.eq_ignore_ascii_case(NAME)) {
            let p = parse(offer)?;
            if chosen.is_some() {
                continue; // later offers are still checked for syntax
            }
            // RFC 7692 7.1.2.1: answer server_max_window_bits with the offered value or less.
            let server_bits = p
                .server_max_window_bits
                .unwrap_or(MAX_WINDOW_BITS)
                .min(self.server_max_window_bits);
            // RFC 7692 7.1.2.2: the client's window may be limited only if it said so.
            let client_bits = match p.client_max_window_bits {
                None => MAX_WINDOW_BITS,
                Some(offered) => offered
                    .unwrap_or(MAX_WINDOW_BITS)
                    .min(self.client_max_window_bits),
            };
            chosen = Some(DeflateParams {
                server_no_context_takeover: p.server_no_context_takeover
                    || self.server_no_context_takeover,
                client_no_context_takeover: p.client_no_context_takeover
                    || self.client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
            });
        }
        Ok(chosen)
    }

    /// Client: checks the server's response element against what [`DeflateConfig::offer`]
    /// sent.
    ///
    /// # Errors
    /// [`NegotiationError`] if the response is malformed or grants what the offer did not
    /// allow: the client fails the connection with 1010.
    pub fn verify_response(&self, response: &Extension) -> Result<DeflateParams, NegotiationError> {
        let p = parse(response)?;
        let client_bits = match p.client_max_window_bits {
            None => self.client_max_window_bits,
            Some(None) => {
                return Err(NegotiationError::InvalidValue(
                    "client_max_window_bits".into(),
                ));
            }
            Some(Some(bits)) => bits.min(self.client_max_window_bits),
        };
        let server_bits = match p.server_max_window_bits {
            Some(bits) if bits > self.server_max_window_bits => {
                return Err(NegotiationError::ResponseMismatch(
                    "server_max_window_bits larger than offered",
                ));
            }
            Some(bits) => bits,
            None if self.server_max_window_bits < MAX_WINDOW_BITS => {
                return Err(NegotiationError::ResponseMismatch(
                    "server_max_window_bits missing",
                ));
            }
            None => MAX_WINDOW_BITS,
        };
        if self.server_no_context_takeover && !p.server_no_context_takeover {
            return Err(NegotiationError::ResponseMismatch(
                "server_no_context_takeover missing",
            ));
        }
        Ok(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    }

    /// Reads the parameters back from a response element this crate's server built (the
    /// server's own `accept`).
    ///
    /// # Errors
    /// [`NegotiationError`] if the element is malformed.
    pub fn params_of_response(response: &Extension) -> Result<DeflateParams, NegotiationError> {
        let p = parse(response)?;
        Ok(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover,
            server_max_window_bits: p.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
            client_max_window_bits: p
                .client_max_window_bits
                .flatten()
                .unwrap_or(MAX_WINDOW_BITS),
        })
    }
}

/// Why a compressed message can't be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The inflated message would exceed the limit (close 1009).
    #[error("inflated message larger than {0} bytes")]
    TooBig(usize),
    /// The compressed data is not valid DEFLATE (close 1007).
    #[error("invalid compressed data")]
    Corrupt,
    /// The message inflates past what its compressed bytes allow under an [`InflateRatio`]
    /// (a compression bomb; close 1009).
    #[error("{compressed} compressed bytes inflate past {limit} bytes (inflate ratio limit)")]
    Ratio {
        /// The message's compressed bytes inflated so far.
        compressed: usize,
        /// The inflated size they allow.
        limit: usize,
    },
}

/// The inflate ratio limit of [`Codec::inflate_with_ratio`]: a compressed message may inflate
/// to at most `max_ratio` times its compressed bytes inflated so far, or to `floor` bytes in
/// the frame that completes it, whichever is more. Checked at every inflate step (16 KiB of
/// output), so a bomb stops within one step of passing it. `Config::max_inflate_ratio`
/// explains the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflateRatio {
    /// Inflated bytes allowed per compressed byte; `usize::MAX`: no ratio limit.
    pub max_ratio: usize,
    /// Inflated bytes allowed whatever the ratio, to the frame that completes the message.
    pub floor: usize,
}

/// Bytes inflated per step: the most a compression bomb makes us allocate past the limit.
const INFLATE_CHUNK: usize = 16 << 10;

/// The per-connection codec: compresses outgoing messages, inflates incoming ones.
/// Compressor and decompressor are created on first use, so a connection that never sends or
/// never receives a compressed message never pays for them.
pub struct Codec {
    params: DeflateParams,
    role: Role,
    level: u32,
    mem_level: u8,
    threshold: usize,
    compressor: Option<Box<Deflate>>,
    decompressor: Option<Box<Inflate>>,
    /// A block with BFINAL set ended the stream inside the current message: the rest of the
    /// message, tail included, is not DEFLATE data.
    stream_ended: bool,
    /// The incoming message in progress: compressed bytes inflated so far (the tail not
    /// counted), and the bytes they inflated to, for [`InflateRatio`].
    message_in: usize,
    message_out: usize,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("params", &self.params)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec for `role` with the negotiated `params`.
    pub fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        Codec {
            params,
            role,
            level: config.level.min(9),
            mem_level: config.mem_level.clamp(MIN_MEM_LEVEL, MAX_MEM_LEVEL),
            threshold: config.threshold,
            compressor: None,
            decompressor: None,
            stream_ended: false,
            message_in: 0,
            message_out: 0,
        }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    fn own_window_and_reset(&self) -> (u8, bool) {
        match self.role {
            Role::Client => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
            Role::Server => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
        }
    }

    fn peer_window_and_reset(&self) -> (u8, bool) {
        match self.role {
            Role::Client => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
            Role::Server => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
        }
    }

    /// Compresses a whole message payload, without the trailing `00 00 ff ff`; `None` when
    /// the message should go uncompressed (under the threshold, or an 8-bit window).
    pub fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        let (bits, reset) = self.own_window_and_reset();
        if payload.len() < self.threshold || bits < 9 {
            return None;
        }
        let config = zlib_rs::DeflateConfig {
            level: self.level as i32,
            method: Method::Deflated,
            // Negative: a raw deflate stream, no zlib header (as in C zlib).
            window_bits: -i32::from(bits),
            mem_level: i32::from(self.mem_level),
            strategy: Strategy::Default,
        };
        let c = self
            .compressor
            .get_or_insert_with(|| Box::new(Deflate::new_with_config(config)));
        // Zero-filled rather than spare capacity: filling it needs no unsafe, and costs little
        // next to compressing.
        let mut out = vec![0; payload.len() / 2 + 64];
        let mut written = 0;
        let (in0, out0) = (c.total_in(), c.total_out());
        loop {
            if out.len() - written < 64 {
                out.resize(out.len() * 2, 0);
            }
            let consumed = (c.total_in() - in0) as usize;
            if c.compress(
                &payload[consumed..],
                &mut out[written..],
                DeflateFlush::SyncFlush,
            )
            .is_err()
            {
                // Cannot happen with a valid stream state; fall back to sending it plain.
                c.reset();
                return None;
            }
            written = (c.total_out() - out0) as usize;
            let consumed = (c.total_in() - in0) as usize;
            // Done when all input is in and the flush had room to finish.
            if consumed == payload.len() && out.len() - written >= 64 {
                break;
            }
        }
        out.truncate(written);
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // zlib emits nothing for a sync flush with no input since the last one (an empty
            // message with context takeover). An empty payload would make the receiver's
            // appended tail start a stored block and desynchronize its inflater: send the
            // empty message as RFC 7692 7.2.3.6 does, a single 0x00.
            out.push(0x00);
        }
        if reset {
            // Nothing carries over to the next message: free zlib's state (hundreds of KiB)
            // rather than keep it for an idle connection; it is rebuilt on the next message.
            self.compressor = None;
        }
        Some(Bytes::from(out))
    }

    /// Inflates one frame of a compressed message, appending to `out`; at the message's last
    /// frame (`fin`), the tail is appended first. Stops with [`InflateError::TooBig`] as soon
    /// as `out` would grow past `limit` bytes, having allocated at most one chunk more.
    ///
    /// # Errors
    /// [`InflateError::TooBig`] or [`InflateError::Corrupt`].
    pub fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        self.inflate_frame(input, fin, limit, None, out)
    }

    /// [`Codec::inflate`], and stops with [`InflateError::Ratio`] as soon as the message
    /// (all its frames so far) has inflated past what `ratio` allows for the compressed bytes
    /// inflated so far: one more comparison per 16 KiB inflate step.
    ///
    /// # Errors
    /// [`InflateError::TooBig`], [`InflateError::Ratio`] or [`InflateError::Corrupt`].
    pub fn inflate_with_ratio(
        &mut self,
        input: &[u8],
        fin: bool,
        limit: usize,
        ratio: InflateRatio,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let ratio = (ratio.max_ratio != usize::MAX).then_some(InflateRatio {
            floor: if fin { ratio.floor } else { 0 },
            ..ratio
        });
        self.inflate_frame(input, fin, limit, ratio, out)
    }

    fn inflate_frame(
        &mut self,
        input: &[u8],
        fin: bool,
        limit: usize,
        ratio: Option<InflateRatio>,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let inflated = self
            .inflate_part(input, true, limit, ratio, out)
            .and_then(|()| match fin {
                true => self.inflate_part(&TAIL, false, limit, ratio, out),
                false => Ok(()),
            });
        if fin || inflated.is_err() {
            self.message_in = 0;
            self.message_out = 0;
        }
        inflated?;
        if fin {
            self.stream_ended = false;
            let (_, reset) = self.peer_window_and_reset();
            if reset {
                self.decompressor = None;
            }
        }
        Ok(())
    }

    /// Inflates `input` into `out`; `counted`: its bytes count for the ratio (not the tail's).
    fn inflate_part(
        &mut self,
        mut input: &[u8],
        counted: bool,
        limit: usize,
        ratio: Option<InflateRatio>,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        if self.stream_ended {
            return Ok(());
        }
        let (bits, _) = self.peer_window_and_reset();
        // A 9-bit window decodes 8-bit streams too (zlib rejects 8 for raw streams).
        let d = self
            .decompressor
            .get_or_insert_with(|| Box::new(Inflate::new(false, bits.max(9))));
        loop {
            // One byte past the limit is enough to tell that the limit is exceeded.
            let room = INFLATE_CHUNK.min(limit.saturating_sub(out.len()).saturating_add(1));
            let len = out.len();
            if out.capacity() < len + room {
                // Grow geometrically, but never past the limit plus one chunk: a bomb cannot
                // make us allocate more than that.
                let target = (out.capacity() * 2)
                    .max(len + room)
                    .min(limit.saturating_add(INFLATE_CHUNK + 1));
                out.reserve_exact(target.max(len + room) - len);
            }
            out.resize(len + room, 0);
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d.decompress(input, &mut out[len..], InflateFlush::SyncFlush);
            let produced = (d.total_out() - out0) as usize;
            let consumed = (d.total_in() - in0) as usize;
            out.truncate(len + produced);
            input = &input[consumed..];
            if counted {
                self.message_in += consumed;
            }
            self.message_out += produced;
            let ended = match status {
                Err(_) => return Err(InflateError::Corrupt),
                Ok(Status::StreamEnd) => {
                    // RFC 7692 7.2.3.4: a block with BFINAL set ends the stream; whatever
                    // follows (the tail) is ignored, and the next message starts afresh.
                    d.reset(false);
                    self.stream_ended = true;
                    true
                }
                Ok(_) => false,
            };
            if out.len() > limit {
                return Err(InflateError::TooBig(limit));
            }
            if let Some(ratio) = ratio {
                let allowed = ratio
                    .max_ratio
                    .saturating_mul(self.message_in)
                    .max(ratio.floor);
                if self.message_out > allowed {
                    return Err(InflateError::Ratio {
                        compressed: self.message_in,
                        limit: allowed,
                    });
                }
            }
            if ended || (input.is_empty() && produced < room) {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(InflateError::Corrupt);
            }
        }
    }
}

#[cfg(test)]
mod tests;
