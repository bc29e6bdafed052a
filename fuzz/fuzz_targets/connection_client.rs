//! `Connection` in the client role: a valid `101` answer (or, by the mode byte, one from the
//! input), then arbitrary bytes from the server. See `tolqin_fuzz::run_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolqin_proto::Role;

fuzz_target!(|data: &[u8]| tolqin_fuzz::run_connection(Role::Client, data));
