//! Replays inputs through a check on stable, with a normal backtrace:
//! `FUZZ_TRACE=1 cargo run --example replay -- <target> <file>...` in `core/fuzz`.
//! `FUZZ_TRACE` makes `ops_with_power_cuts` print every operation.

use monitor_events_fuzz::checks::{check_decode, check_open, check_ops};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay <target> <file>...");
    for file in args {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{target} {file} ({} B): {data:02x?}", data.len());
        match target.as_str() {
            "decode_event" => check_decode(&data),
            "open_image" => check_open(&data),
            "ops_with_power_cuts" => eprintln!("{:?}", check_ops(&data)),
            t => panic!("unknown target {t}"),
        }
    }
}
