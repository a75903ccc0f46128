//! The checks behind the link's fuzz targets: each end's frame decoder and state
//! machine on arbitrary input.
//!
//! Compiled twice, like `checks.rs`: as a module of the fuzz crate and, through
//! `#[path]`, in `adapters/link/tests/fuzz_regressions.rs`, which replays the
//! seeds on stable. Uses `monitor-events`, `monitor-events-flash` (feature `sim`),
//! `monitor-events-link` and `std` only.
//!
//! | check | target | invariants |
//! |---|---|---|
//! | [`check_link_device`] | `link_device_frames` | I9: no panic on any bytes; the store changes only by acks the device answers `Acked`, durably (I2); the window stays within the credit; every frame the device sends reads at a host |
//! | [`check_link_host`] | `link_host_frames` | I9: no panic on any bytes; every byte consumed and counted; what comes out as an event validates and re-encodes |
//!
//! Input: byte 0 picks the mode. Even: the rest is raw line bytes, fed in chunks
//! of `1 + byte0 / 2` bytes. Odd: the rest is a list of payloads
//! (`[len][len bytes]`…), each wrapped into a valid frame (COBS, CRC, delimiter)
//! so the fuzzer reaches the message parser and the state machine behind the CRC.

use monitor_events::{ChannelId, Config, EventStore, Geometry, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_flash::sim::SimFlash;
use monitor_events_link::{
    encode_payload, AckStatus, DeviceLink, Direction, HostEvent, HostLink, MAX_FRAME_LEN,
};
use std::collections::BTreeSet;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
type Store = EventStore<SimFlash, 16>;

/// The line chunks an input describes (see the module docs).
pub fn line_of(data: &[u8], dir: Direction) -> Vec<Vec<u8>> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode % 2 == 0 {
        return rest
            .chunks(1 + usize::from(mode / 2))
            .map(<[u8]>::to_vec)
            .collect();
    }
    let mut chunks = Vec::new();
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let mut out = [0u8; 2 * MAX_FRAME_LEN];
        if let Some(n) = encode_payload(dir, &tail[..len], &mut out) {
            chunks.push(out[..n].to_vec());
        }
        rest = &tail[len..];
    }
    chunks
}

/// A store holding events 0..4 on channels 0..4 (a claim, a failure, a
/// force-close, an update completion).
fn store() -> Store {
    let mut s = Store::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN))
        .expect("a blank flash opens");
    s.no_updates_in_flight();
    for i in 0..4u8 {
        let channel = ChannelId([i; 32]);
        let e = match i {
            0 => MonitorEvent::CommitmentTxConfirmed { channel },
            1 => MonitorEvent::HolderForceClosed {
                channel,
                reason: monitor_events::CloseReason::HtlcsTimedOut,
            },
            2 => MonitorEvent::UpdateCompleted {
                channel,
                update_id: 7,
            },
            _ => MonitorEvent::CommitmentTxConfirmed { channel },
        };
        s.push(&e).expect("room for four");
    }
    s
}

fn pending(s: &Store) -> BTreeSet<u64> {
    s.pending().map(|p| p.id.0).collect()
}

/// `link_device_frames`: see the module docs.
pub fn check_link_device(data: &[u8]) {
    let mut s = store();
    let before = pending(&s);
    let mut dev = DeviceLink::<4, 4>::new();
    let mut host = HostLink::<4>::with_credit(0);
    let mut acked = BTreeSet::new();
    let mut out = [0u8; MAX_FRAME_LEN];
    for chunk in line_of(data, Direction::HostToDevice) {
        dev.receive(&mut s, &chunk);
        let limit = usize::try_from(dev.credit()).unwrap_or(usize::MAX).min(4);
        for _ in 0..3 {
            let window = dev.in_flight().len();
            let n = dev.poll_transmit(&mut s, &mut out);
            if n == 0 {
                break;
            }
            if dev.in_flight().len() > window {
                assert!(
                    dev.in_flight().len() <= limit,
                    "the window exceeds the credit"
                );
            }
            let (k, e) = host.receive(&out[..n]);
            assert_eq!(k, n, "one frame per poll");
            match e {
                Some(HostEvent::Event { id, .. }) => {
                    assert!(before.contains(&id.0), "I4: an event never pushed");
                    assert!(!acked.contains(&id.0), "I2: sent after its Acked");
                }
                Some(HostEvent::AckResult { id, outcome }) => {
                    if outcome == AckStatus::Acked {
                        assert!(before.contains(&id.0) && acked.insert(id.0), "Acked twice");
                    }
                    if outcome.is_success() {
                        assert!(!pending(&s).contains(&id.0), "I2: success but pending");
                    }
                }
                Some(HostEvent::Hello { .. }) => {}
                other => panic!("I9: the device sent {other:?}"),
            }
        }
    }
    // Drain the AckResults still queued.
    while dev.queued_results() > 0 {
        let n = dev.poll_transmit(&mut s, &mut out);
        if let (
            _,
            Some(HostEvent::AckResult {
                id,
                outcome: AckStatus::Acked,
            }),
        ) = host.receive(&out[..n])
        {
            acked.insert(id.0);
        }
    }
    let now = pending(&s);
    assert!(now.is_subset(&before), "I9: the store gained events");
    let gone: BTreeSet<u64> = before.difference(&now).copied().collect();
    // An AckResult may be dropped from a full queue; every one sent is true.
    assert!(acked.is_subset(&gone), "an Acked that did not ack");
    if dev.counters().queue_full == 0 {
        assert_eq!(acked, gone, "I2: an ack nobody was told about");
    }
    let s = Store::open(s.into_medium(), Config::new(GEO, MAX_ENCODED_LEN))
        .expect("I10: reopen after acks");
    assert_eq!(pending(&s), now, "I2: acks are durable");
}

/// `link_host_frames`: see the module docs.
pub fn check_link_host(data: &[u8]) {
    let mut host = HostLink::<4>::with_credit(1);
    let mut total = 0usize;
    for chunk in line_of(data, Direction::DeviceToHost) {
        total += chunk.len();
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let (k, e) = host.receive(rest);
            assert!(
                k > 0 && k <= rest.len(),
                "receive consumed {k} of {}",
                rest.len()
            );
            rest = &rest[k..];
            if let Some(HostEvent::Event { event, .. }) = e {
                let mut buf = [0u8; MAX_ENCODED_LEN];
                let bytes = event
                    .encode(&mut buf)
                    .expect("I9: a delivered event encodes");
                assert_eq!(MonitorEvent::decode(bytes).as_ref(), Ok(&event));
            }
        }
    }
    let c = host.counters();
    assert_eq!(c.bytes_in as usize, total, "every byte counted");
    let mut out = [0u8; MAX_FRAME_LEN];
    while host.poll_transmit(&mut out) > 0 {}
}
