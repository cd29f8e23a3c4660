//! The input as a segment (`runlog::journal::reader::scan_segment`), as is and with its CRCs
//! fixed, then as the segments of one run in a journal on an in-memory file system: listed,
//! read, recovered (`runlog::journal::retention::sweep_job`) and read again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runlog_e2e::fuzz_checks::check_segment(data));
