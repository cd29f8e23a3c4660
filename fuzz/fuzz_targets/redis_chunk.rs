//! The input as a Redis chunk (compressed and decompressed), as a run's chunk index and as an
//! escaped job name (`runlog_shipper::schema`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runlog_e2e::fuzz_checks::check_redis_chunk(data));
