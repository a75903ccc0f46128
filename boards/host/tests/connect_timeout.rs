//! `monitor-events consume` never waits forever for a device: against a peer
//! that accepts the connection and stays silent, and against a listener that
//! never accepts, it gives up after `--connect-timeout` with one line on stderr
//! and exit code 1; with nothing listening it says so at once.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_monitor-events");

fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let o = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run monitor-events");
    (o, start.elapsed())
}

/// Checks the run ended by the connect timeout of `secs`: exit code 1, one line
/// naming the peer and the limit, no event printed, after the limit and within
/// a few read timeouts of it.
fn assert_timed_out(addr: &str, secs: u64, (o, took): (Output, Duration)) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!(
            "{addr}: no monitor-events device answered within {secs} s (no Hello)"
        )),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "no event printed");
    let limit = Duration::from_secs(secs);
    assert!(
        took >= limit && took < limit + Duration::from_secs(5),
        "gave up after {took:?}"
    );
}

/// A listener that accepts, reads what the consumer sends (its greeting, again
/// on every read timeout) and never answers.
#[test]
fn silent_listener_times_out_with_one_line_and_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let (mut buf, mut got) = ([0u8; 256], 0usize);
        while let Ok(n @ 1..) = s.read(&mut buf) {
            got += n;
        }
        got
    });
    let r = run(&[
        "consume",
        "--tcp",
        &addr,
        "--connect-timeout",
        "1",
        "--timeout-ms",
        "100",
    ]);
    assert_timed_out(&addr, 1, r);
    assert!(
        peer.join().unwrap() > 0,
        "the consumer greeted the silent peer"
    );
}

/// A listener that never accepts: the kernel completes the handshake, nothing
/// is ever read or sent on the other end.
#[test]
fn listener_that_never_accepts_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    let r = run(&[
        "consume",
        "--tcp",
        &addr,
        "--connect-timeout",
        "2",
        "--timeout-ms",
        "300",
    ]);
    assert_timed_out(&addr, 2, r);
    drop(listener);
}

/// Nothing listens on the port: one line and exit code 1 at once, well before
/// the default 10 s connect timeout.
#[test]
fn nothing_listening_fails_at_once() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().unwrap().to_string()
    };
    let (o, took) = run(&["consume", "--tcp", &addr]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// `--connect-timeout` is documented with its default.
#[test]
fn help_names_the_connect_timeout_and_its_default() {
    let (o, _) = run(&["consume", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    let line = help
        .lines()
        .position(|l| l.contains("--connect-timeout <SECS>"))
        .expect("the option is listed");
    let rest: String = help.lines().skip(line).take(4).collect();
    assert!(rest.contains("[default: 10]"), "{rest}");
}
