#![no_main]
//! See `monitor_events_fuzz::checks::check_ops`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    monitor_events_fuzz::check_ops(data);
});
