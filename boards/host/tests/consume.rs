//! `monitor-events consume` against an in-process device on 127.0.0.1: a thread
//! runs a `DeviceLink` over a TCP connection with its `EventStore` on `SimFlash`.
//! The command prints every event once and acks it (at once or deferred through
//! the barrier), and the store ends empty; a peer of another protocol version
//! and a peer that is not a monitor-events device end it with one line and
//! exit code 1.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monitor_events::{ChannelId, Config, EventStore, Geometry, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_flash::SimFlash;
use monitor_events_link::message::encode_device;
use monitor_events_link::{DeviceHeader, DeviceLink, MAX_FRAME_LEN};

mod common;
use common::run;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};

/// A device on an ephemeral port: pushes `events` events (a few at a time, as
/// room allows), serves one connection until the consumer leaves; returns the
/// address and, from the thread, the ids still pending at the end.
fn device(events: u64) -> (String, JoinHandle<Vec<u64>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut store =
            EventStore::<SimFlash, 16>::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN))
                .unwrap();
        store.no_updates_in_flight();
        let (mut sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut link = DeviceLink::<16>::new();
        let (mut pushed, mut buf, mut frame) = (0u64, [0u8; 512], [0u8; MAX_FRAME_LEN]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            while pushed < events && store.free_slots() > 0 {
                let channel = ChannelId([pushed as u8; 32]);
                let e = if pushed % 2 == 0 {
                    MonitorEvent::CommitmentTxConfirmed { channel }
                } else {
                    MonitorEvent::UpdateCompleted {
                        channel,
                        update_id: pushed,
                    }
                };
                store.push(&e).unwrap();
                pushed += 1;
            }
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => link.receive(&mut store, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
            loop {
                let n = link.poll_transmit(&mut store, &mut frame);
                if n == 0 || sock.write_all(&frame[..n]).is_err() {
                    break;
                }
            }
        }
        store.pending().map(|p| p.id.0).collect()
    });
    (addr, handle)
}

/// Reads until the consumer hangs up.
fn drain(mut s: TcpStream) {
    let mut buf = [0u8; 256];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// I1, I2 through the CLI: 40 events, each printed once (text), all acked, the
/// device's store empty at the end.
#[test]
fn consume_prints_and_acks_every_event() {
    let (addr, dev) = device(40);
    let o = run(&[
        "consume",
        "--tcp",
        &addr,
        "--count",
        "40",
        "--timeout-ms",
        "50",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 40, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("#{i} ")), "{line}");
    }
    assert!(lines[0].contains("CommitmentTxConfirmed"), "{}", lines[0]);
    assert!(err.contains("consume: 40 events, 40 acked"), "{err}");
    assert_eq!(
        dev.join().unwrap(),
        Vec::<u64>::new(),
        "I2: every ack landed"
    );
}

/// `--defer --json --until-idle`: the acks wait in the barrier until the line
/// goes quiet, then all go; one JSON object per event.
#[test]
fn consume_deferred_json_until_idle() {
    let (addr, dev) = device(25);
    let o = run(&[
        "consume",
        "--tcp",
        &addr,
        "--defer",
        "--json",
        "--until-idle",
        "--timeout-ms",
        "100",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let ids: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            assert!(v["kind"].is_string() && v["channel"].is_string(), "{l}");
            v["id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        (0..25).collect::<Vec<_>>(),
        "each event once, in id order"
    );
    assert_eq!(dev.join().unwrap(), Vec::<u64>::new());
}

/// A peer that speaks another protocol version: one line, exit code 1.
#[test]
fn consume_protocol_mismatch_exits_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut f = [0u8; MAX_FRAME_LEN];
        let hello = DeviceHeader::Hello {
            protocol: 9,
            next_id: 0,
            pending: 0,
        };
        let n = encode_device(&hello, &[], &mut f).unwrap();
        let _ = s.write_all(&f[..n]);
        drain(s);
    });
    let o = run(&["consume", "--tcp", &addr, "--timeout-ms", "2000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("protocol mismatch") && err.contains("v9"),
        "{err}"
    );
    t.join().unwrap();
}

/// A peer that is not a monitor-events device (it talks, but no frame checks):
/// one line, exit code 1.
#[test]
fn consume_not_a_device_exits_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut s, _): (TcpStream, _) = listener.accept().unwrap();
        let noise = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n\0".repeat(100);
        let _ = s.write_all(&noise);
        drain(s);
    });
    let o = run(&["consume", "--tcp", &addr, "--timeout-ms", "2000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a monitor-events device"), "{err}");
    t.join().unwrap();
}
