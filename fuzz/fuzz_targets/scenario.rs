//! The scenario parser on arbitrary bytes: errors are fine, panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/bpf");
        let _ = harness::scenario::Scenario::parse(text, Path::new("fuzz.yaml"), &bpf);
    }
});
