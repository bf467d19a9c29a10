//! The decoder of what the guest sends on the results channel: errors are fine, panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bpfh_protocol::decode_stream(&String::from_utf8_lossy(data));
});
