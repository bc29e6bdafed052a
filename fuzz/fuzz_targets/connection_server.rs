//! `Connection` in the server role: a valid opening handshake (or, by the mode byte, one from
//! the input), then arbitrary bytes from the client. See `tolqin_fuzz::run_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_proto::Role;

fuzz_target!(|data: &[u8]| tolqin_fuzz::run_connection(Role::Server, data));
