#![no_main]
//! See `monitor_events_fuzz::link::check_link_host`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| monitor_events_fuzz::check_link_host(data));
