//! What the CLI tests share: running the `monitor-events` binary and reading what
//! it printed. Each test file uses part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_monitor-events");

/// Runs the binary with `args` (no backtraces, so a panic reads as one line).
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run monitor-events")
}

/// What it printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What it printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Its stdout as one JSON object.
pub fn json(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).expect("stdout is one JSON object")
}
