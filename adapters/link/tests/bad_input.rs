//! Bad input into both ends: garbage, truncated frames, oversize frames, other
//! protocol versions, frames of the other direction, acks of unknown ids; and
//! random bytes (proptest). Nothing panics, every drop is counted, the store
//! changes only through valid acks (invariant I9).

mod common;

use monitor_events::{ChannelId, Config, EventId, EventStore, Geometry, MAX_ENCODED_LEN};
use monitor_events_flash::rng::Pcg32;
use monitor_events_flash::SimFlash;
use monitor_events_link::{
    encode_payload, AckStatus, DeviceHeader, DeviceLink, Direction, HostEvent, HostLink,
    HostMessage, WireSource, MAX_DEVICE_FRAME_LEN, MAX_FRAME_LEN, MAX_HOST_FRAME_LEN, PROTOCOL,
};
use proptest::prelude::*;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
type Store = EventStore<SimFlash, 16>;

/// A store with 4 events (ids 0..4) on channels 0..4.
fn store() -> Store {
    let mut s = Store::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN)).unwrap();
    s.no_updates_in_flight();
    let mut rng = Pcg32::new(4);
    for i in 0..4u8 {
        let mut e = common::random_event(&mut rng);
        while e.channel() != ChannelId([i; 32]) {
            e = common::random_event(&mut rng);
        }
        s.push(&e).unwrap();
    }
    s
}

fn pending(s: &Store) -> Vec<u64> {
    s.pending().map(|p| p.id.0).collect()
}

fn host_frame(m: &HostMessage) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME_LEN];
    let n = monitor_events_link::message::encode_host(m, &mut out).unwrap();
    out[..n].to_vec()
}

fn ack(channel: u8, id: u64) -> HostMessage {
    HostMessage::Ack(WireSource {
        channel: [channel; 32],
        id,
    })
}

/// Everything the device sends now, as the host sees it.
fn drain(dev: &mut DeviceLink, s: &mut Store) -> Vec<HostEvent> {
    let mut host = HostLink::<4>::with_credit(0);
    let mut out = [0u8; MAX_FRAME_LEN];
    let mut seen = Vec::new();
    loop {
        let n = dev.poll_transmit(s, &mut out);
        if n == 0 {
            return seen;
        }
        let (_, e) = host.receive(&out[..n]);
        seen.push(e.expect("the device's frames read"));
    }
}

/// I9: 64 KiB of seeded garbage in random chunks into both ends: no panic, the
/// store unchanged, nothing accepted; a valid frame after it works.
#[test]
fn i9_garbage_into_both_ends() {
    let mut s = store();
    let mut dev = DeviceLink::<16>::new();
    let mut host = HostLink::<16>::with_credit(1);
    let mut rng = Pcg32::new(99);
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| match rng.below(8) {
            0 => 0,
            _ => rng.below(256) as u8,
        })
        .collect();
    let mut rest = &garbage[..];
    while !rest.is_empty() {
        let n = rest.len().min(1 + rng.below(300) as usize);
        dev.receive(&mut s, &rest[..n]);
        let mut chunk = &rest[..n];
        while !chunk.is_empty() {
            let (k, e) = host.receive(chunk);
            assert_eq!(e, None, "I9: garbage made an event");
            chunk = &chunk[k..];
        }
        rest = &rest[n..];
    }
    assert_eq!(pending(&s), [0, 1, 2, 3], "I9: the store is unchanged");
    let c = *dev.counters();
    assert_eq!(c.frames, 0);
    assert!(c.damaged > 1000, "{c:?}");
    assert_eq!(c.bytes_in as usize, garbage.len(), "every byte consumed");
    dev.receive(&mut s, &[0]);
    dev.receive(&mut s, &host_frame(&ack(1, 1)));
    assert_eq!(pending(&s), [0, 2, 3], "a valid frame after garbage works");
}

/// I9: every truncation of an ack frame (its tail and delimiter lost) merges
/// with the next frame and both are dropped as damaged; the frame after them
/// reads. The truncated ack never reaches the store.
#[test]
fn i9_every_truncation() {
    let a = host_frame(&ack(1, 1));
    let b = host_frame(&HostMessage::Credit { n: 2 });
    let c = host_frame(&ack(2, 2));
    for cut in 1..a.len() {
        let mut s = store();
        let mut dev = DeviceLink::<16>::new();
        let mut line = a[..cut].to_vec();
        line.extend_from_slice(&b);
        line.extend_from_slice(&c);
        dev.receive(&mut s, &line);
        assert_eq!(pending(&s), [0, 1, 3], "I9: cut at {cut}");
        assert_eq!(dev.credit(), 0, "the merged frame is dropped whole");
        assert_eq!(dev.counters().damaged, 1);
    }
}

/// I9: an oversize frame is dropped to its delimiter and counted once, at both
/// ends; the frames after it read.
#[test]
fn i9_oversize() {
    let mut s = store();
    let mut dev = DeviceLink::<16>::new();
    let mut line = vec![0x55u8; 3 * MAX_FRAME_LEN];
    line.push(0);
    line.extend(host_frame(&ack(3, 3)));
    dev.receive(&mut s, &line);
    assert_eq!(dev.counters().oversize, 1);
    assert_eq!(pending(&s), [0, 1, 2]);
    // One byte more than the longest host frame's encoding.
    let mut dev = DeviceLink::<16>::new();
    let mut line = vec![0x55u8; MAX_HOST_FRAME_LEN];
    line.push(0);
    dev.receive(&mut s, &line);
    assert_eq!(dev.counters().oversize, 1);

    let mut host = HostLink::<4>::with_credit(1);
    let mut line = vec![0x66u8; MAX_DEVICE_FRAME_LEN];
    line.push(0);
    let mut out = [0u8; MAX_FRAME_LEN];
    let hello = DeviceHeader::Hello {
        protocol: PROTOCOL,
        next_id: 4,
        pending: 4,
    };
    let n = monitor_events_link::message::encode_device(&hello, &[], &mut out).unwrap();
    line.extend_from_slice(&out[..n]);
    let (k, e) = host.receive(&line);
    assert_eq!(k, line.len());
    assert!(matches!(e, Some(HostEvent::Hello { pending: 4, .. })));
    assert_eq!(host.counters().oversize, 1);
}

/// I9: a Hello of another version: the device ignores it and counts it (no
/// answer); the host reports ProtocolMismatch. Frames of the other direction
/// fail the CRC at both ends.
#[test]
fn i9_wrong_version_and_direction() {
    let mut s = store();
    let mut dev = DeviceLink::<16>::new();
    let first = drain(&mut dev, &mut s);
    assert!(matches!(first[..], [HostEvent::Hello { .. }]));
    let mut out = [0u8; MAX_FRAME_LEN];
    let n = encode_payload(Direction::HostToDevice, &[0, 2], &mut out).unwrap();
    dev.receive(&mut s, &out[..n]);
    let n = encode_payload(Direction::HostToDevice, &[0, 0x81, 0x01, 1, 2, 3], &mut out).unwrap();
    dev.receive(&mut s, &out[..n]);
    assert_eq!(dev.counters().version, 2);
    assert!(
        drain(&mut dev, &mut s).is_empty(),
        "no answer to another version"
    );
    dev.receive(
        &mut s,
        &host_frame(&HostMessage::Hello { protocol: PROTOCOL }),
    );
    assert!(matches!(
        drain(&mut dev, &mut s)[..],
        [HostEvent::Hello { .. }]
    ));

    let mut host = HostLink::<4>::with_credit(1);
    let n = encode_payload(Direction::DeviceToHost, &[0, 9, 0, 0], &mut out).unwrap();
    assert_eq!(
        host.receive(&out[..n]).1,
        Some(HostEvent::ProtocolMismatch {
            device: 9,
            host: PROTOCOL
        })
    );
    // A host frame fed to the host (a loopback): damaged, not a message.
    let f = host_frame(&HostMessage::Resume);
    assert_eq!(host.receive(&f).1, None);
    assert_eq!(host.counters().damaged, 1);
    // A device frame fed to the device.
    let n = encode_payload(Direction::DeviceToHost, &[4], &mut out).unwrap();
    dev.receive(&mut s, &out[..n]);
    assert_eq!(dev.counters().damaged, 1);
    assert_eq!(dev.passes(), 0);
}

/// I2, I9: acks of unknown ids and of the wrong channel answer Unknown and
/// WrongChannel and change nothing; valid acks are durable and answered;
/// repeats are AlreadyAcked; unknown message variants are counted.
#[test]
fn i2_i9_acks_of_unknown_ids() {
    let mut s = store();
    let mut dev = DeviceLink::<16>::new();
    drain(&mut dev, &mut s);
    let mut line = Vec::new();
    for m in [
        ack(0, 99),
        ack(0, u64::MAX),
        ack(7, 2),
        ack(2, 2),
        ack(2, 2),
    ] {
        line.extend(host_frame(&m));
    }
    let mut out = [0u8; MAX_FRAME_LEN];
    for bad in [&[5u8][..], &[3], &[1, 0], &[2, 0], &[4, 4]] {
        let n = encode_payload(Direction::HostToDevice, bad, &mut out).unwrap();
        line.extend_from_slice(&out[..n]);
    }
    dev.receive(&mut s, &line);
    let results: Vec<(EventId, AckStatus)> = drain(&mut dev, &mut s)
        .into_iter()
        .map(|e| match e {
            HostEvent::AckResult { id, outcome } => (id, outcome),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        results,
        [
            (EventId(99), AckStatus::Unknown),
            (EventId(u64::MAX), AckStatus::Unknown),
            (EventId(2), AckStatus::WrongChannel),
            (EventId(2), AckStatus::Acked),
            (EventId(2), AckStatus::AlreadyAcked),
        ]
    );
    assert_eq!(dev.counters().unknown, 5);
    assert_eq!(pending(&s), [0, 1, 3]);
    drop(dev);
    let s = Store::open(s.into_medium(), Config::new(GEO, MAX_ENCODED_LEN)).unwrap();
    assert_eq!(pending(&s), [0, 1, 3], "I2: the ack is durable");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// I9: random bytes in random chunks into the device: no panic, the store
    /// unchanged, whatever the device sends reads at the host.
    #[test]
    fn i9_random_bytes_into_the_device(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..300,
    ) {
        let mut s = store();
        let mut dev = DeviceLink::<16>::new();
        for c in bytes.chunks(chunk) {
            dev.receive(&mut s, c);
        }
        prop_assert_eq!(pending(&s), vec![0, 1, 2, 3]);
        let c = dev.counters();
        prop_assert_eq!(c.bytes_in as usize, bytes.len());
        drain(&mut dev, &mut s);
    }

    /// I9: random bytes into the host: no panic, every consumed byte counted,
    /// nothing accepted.
    #[test]
    fn i9_random_bytes_into_the_host(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..600,
    ) {
        let mut host = HostLink::<4>::with_credit(1);
        for c in bytes.chunks(chunk) {
            let mut rest = c;
            while !rest.is_empty() {
                let (k, e) = host.receive(rest);
                prop_assert!(k > 0);
                prop_assert!(e.is_none());
                rest = &rest[k..];
            }
        }
    }

    /// I9: valid frames with random damage (a flipped, dropped or inserted
    /// byte) into the device: a damaged ack never acks, the undamaged ones do.
    #[test]
    fn i9_damaged_acks_never_ack(
        which in 0usize..4,
        pos in any::<usize>(),
        byte in any::<u8>(),
        kind in 0u8..3,
    ) {
        let mut s = store();
        let mut dev = DeviceLink::<16>::new();
        let mut frames: Vec<Vec<u8>> = (0..4u8).map(|i| host_frame(&ack(i, u64::from(i)))).collect();
        let f = &mut frames[which];
        let at = pos % (f.len() - 1);
        match kind {
            0 => f[at] ^= byte | 1,
            1 => { f.remove(at); }
            _ => f.insert(at, byte | 1),
        }
        dev.receive(&mut s, &frames.concat());
        let left = pending(&s);
        prop_assert_eq!(left, vec![which as u64], "I9: only the damaged ack is lost");
    }
}
