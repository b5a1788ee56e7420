#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| systemd_jobs::fuzzing::peer_bytes(data));
