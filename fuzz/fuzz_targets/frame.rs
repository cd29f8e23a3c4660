//! A frame and a segment header at the start of the input, and the input as the payload of
//! every frame type (`runlog::journal::frame`, `runlog::journal::payload`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runlog_e2e::fuzz_checks::check_frame(data));
