//! The async store against the blocking one: random operations driven through
//! both in lockstep must return the same answers and leave the same bytes on the
//! medium (invariants I1, I2, I3, I4), and an image written by either opens with
//! the other.

use embassy_futures::block_on;
use monitor_events::event::{HtlcOutcome, HtlcResolution, HtlcSource, PaymentPreimage};
use monitor_events::journal::{Auth, Config, Journal};
use monitor_events::{asynch, AckOutcome, ChannelId, EventId, EventStore, Geometry};
use monitor_events::{MonitorEvent, MonitorEventSource, MAX_ENCODED_LEN};
use monitor_events_flash::sim::SimFlash;
use monitor_events_flash::workload::Pcg32;
use std::panic::AssertUnwindSafe;

#[path = "support/yielding.rs"]
mod yielding;

use yielding::{poll_at_most, Yielding};

const N: usize = 24;

fn geometries() -> Vec<(Geometry, Config<N>)> {
    let mut out = Vec::new();
    for (sector_size, sector_count, write_size, multiwrite) in [
        (1024, 4, 4, true),
        (512, 8, 8, false),
        (4096, 3, 1, true),
        (256, 16, 4, true),
    ] {
        let g = Geometry {
            sector_size,
            sector_count,
            write_size,
            multiwrite,
        };
        if let Ok(c) = Config::<N>::try_new(g, 40) {
            out.push((g, c));
        }
        if let Ok(c) =
            Config::<N>::try_new(g, 40).and_then(|c| c.with_auth(Auth::new([7; 32], [1; 16])))
        {
            out.push((g, c));
        }
    }
    out
}

/// I1, I2, I3, I4: the same operations through both engines, same results, same
/// image after every one of them.
#[test]
fn i1_i4_async_and_blocking_write_the_same_bytes() {
    let (mut ops_total, mut erases) = (0u64, 0u64);
    for (seed, (g, config)) in geometries().into_iter().enumerate() {
        let mut rng = Pcg32::new(seed as u64 + 1);
        let mut b = Journal::<_, N>::open(SimFlash::new(g), config).unwrap();
        let mut a = block_on(asynch::Journal::<_, N>::open(SimFlash::new(g), config)).unwrap();
        for step in 0..3000 {
            let what = format!("{g:?} step {step}");
            match rng.next_u32() % 10 {
                0..=4 => {
                    let len = 1 + rng.next_u32() as usize % 40;
                    let body = vec![(step % 251) as u8; len];
                    let rb = b.push(&body);
                    let ra = block_on(a.push(&body));
                    assert_eq!(rb, ra, "{what}: push");
                }
                5..=8 => {
                    let ids: Vec<EventId> = b.pending().map(|p| p.0).collect();
                    if !ids.is_empty() {
                        let id = ids[rng.next_u32() as usize % ids.len()];
                        assert_eq!(b.ack(id), block_on(a.ack(id)), "{what}: ack");
                    }
                }
                _ => {
                    // Reopen each engine on the other's image.
                    let (fb, fa) = (b.into_medium(), a.into_medium());
                    b = Journal::open(fa, config).unwrap();
                    a = block_on(asynch::Journal::open(fb, config)).unwrap();
                }
            }
            assert_eq!(
                b.medium().image(),
                a.medium().image(),
                "{what}: images differ"
            );
            ops_total += 1;
        }
        let ids: Vec<_> = b.pending().collect();
        assert_eq!(ids, a.pending().collect::<Vec<_>>());
        erases += b.medium().stats().erases;
    }
    assert!(erases > 100, "{erases} erases: compaction barely ran");
    println!(
        "async and blocking in lockstep: {ops_total} operations, {erases} erases, images identical"
    );
}

fn channel(b: u8) -> ChannelId {
    ChannelId([b; 32])
}

/// A typed event: a claim (an HTLC event, held back while its channel has an
/// update in flight) or an update completion, of varied sizes.
fn event(rng: &mut Pcg32, n: u64) -> MonitorEvent {
    let ch = channel(1 + (rng.next_u32() % 4) as u8);
    if rng.next_u32() % 3 == 0 {
        MonitorEvent::UpdateCompleted {
            channel: ch,
            update_id: n,
        }
    } else {
        let preimage = PaymentPreimage([n as u8; 32]);
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel: ch,
            payment_hash: preimage.payment_hash(),
            amount_msat: 1000 + n,
            source: HtlcSource::Forward {
                prev_channel: channel(9),
                prev_htlc_id: n,
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: (n % 2 == 0).then_some(n),
            },
            resolved_on_chain: n % 5 == 0,
            user_channel_id: (n % 3 == 0).then_some(n as u128 * 7),
        })
    }
}

/// I1, I2, I4, I5: the typed store through both engines in lockstep: pushes and
/// batches, acks and ack batches in any order, releases, peeks, rewinds, in-flight
/// updates, and reopens of each engine on the other's image. Same answers, same
/// image after every operation.
#[test]
fn i1_i2_i4_i5_async_and_blocking_stores_in_lockstep() {
    const M: usize = 32;
    let (mut ops, mut released, mut erases) = (0u64, 0u64, 0u64);
    for (seed, (sector_size, sector_count, write_size, multiwrite, auth)) in [
        (4096u32, 6u32, 4u32, true, false),
        (4096, 8, 8, false, true),
        (2048, 12, 1, true, false),
    ]
    .into_iter()
    .enumerate()
    {
        let g = Geometry {
            sector_size,
            sector_count,
            write_size,
            multiwrite,
        };
        let mut config = Config::<M>::try_new(g, MAX_ENCODED_LEN).unwrap();
        assert!(
            config.region_bounded(),
            "{g:?}: meant to be bounded by the region"
        );
        if auth {
            config = config.with_auth(Auth::new([3; 32], [4; 16])).unwrap();
        }
        let mut rng = Pcg32::new(100 + seed as u64);
        let mut b = EventStore::<_, M>::open(SimFlash::new(g), config).unwrap();
        let mut a = block_on(asynch::EventStore::<_, M>::open(SimFlash::new(g), config)).unwrap();
        let mut n = 0u64;
        let mut in_flight: Vec<(ChannelId, u64)> = Vec::new();
        for step in 0..2500 {
            let what = format!("{g:?} auth {auth} step {step}");
            match rng.next_u32() % 16 {
                0..=3 => {
                    n += 1;
                    let e = event(&mut rng, n);
                    assert_eq!(b.push(&e), block_on(a.push(&e)), "{what}: push");
                }
                4 => {
                    let k = 1 + rng.next_u32() as usize % 4;
                    let events: Vec<_> =
                        (0..k).map(|i| event(&mut rng, n + 1 + i as u64)).collect();
                    n += k as u64;
                    let mut scratch = vec![0u8; MAX_ENCODED_LEN * 4];
                    let (mut ib, mut ia) = (vec![EventId(0); k], vec![EventId(0); k]);
                    let rb = b.push_batch(&events, &mut scratch, &mut ib);
                    let ra = block_on(a.push_batch(&events, &mut scratch, &mut ia));
                    assert_eq!((rb, ib), (ra, ia), "{what}: push_batch");
                }
                5..=7 => {
                    let rb = b.release_next();
                    assert_eq!(rb, block_on(a.release_next()), "{what}: release_next");
                    released += rb.is_some() as u64;
                }
                8..=10 => {
                    let pending: Vec<_> = b.pending().collect();
                    if !pending.is_empty() {
                        let p = pending[rng.next_u32() as usize % pending.len()];
                        let src = MonitorEventSource {
                            id: p.id,
                            channel: p.channel,
                        };
                        assert_eq!(b.ack(src), block_on(a.ack(src)), "{what}: ack");
                    }
                }
                11 => {
                    let pending: Vec<_> = b.pending().collect();
                    let sources: Vec<_> = pending
                        .iter()
                        .filter(|_| rng.next_u32() % 3 == 0)
                        .map(|p| MonitorEventSource {
                            id: p.id,
                            channel: p.channel,
                        })
                        .collect();
                    let (mut ob, mut oa) = (
                        vec![AckOutcome::Acked; sources.len()],
                        vec![AckOutcome::Acked; sources.len()],
                    );
                    let rb = b.ack_batch(&sources, &mut ob);
                    let ra = block_on(a.ack_batch(&sources, &mut oa));
                    assert_eq!((rb, ob), (ra, oa), "{what}: ack_batch");
                }
                12 => {
                    let ids: Vec<_> = b.pending().map(|p| p.id).collect();
                    if let Some(&id) = ids.first() {
                        let (mut xb, mut xa) = ([0u8; MAX_ENCODED_LEN], [0u8; MAX_ENCODED_LEN]);
                        assert_eq!(
                            b.peek(id, &mut xb),
                            block_on(a.peek(id, &mut xa)),
                            "{what}: peek"
                        );
                    }
                    b.rewind();
                    a.rewind();
                }
                13 => {
                    let ch = channel(1 + (rng.next_u32() % 4) as u8);
                    let u = step as u64;
                    assert_eq!(
                        b.begin_update(ch, u),
                        a.begin_update(ch, u),
                        "{what}: begin_update"
                    );
                    in_flight.push((ch, u));
                }
                14 => {
                    if let Some((ch, u)) = in_flight.pop() {
                        assert_eq!(
                            b.complete_update(ch, u),
                            a.complete_update(ch, u),
                            "{what}: complete"
                        );
                    }
                }
                _ => {
                    let (fb, fa) = (b.into_medium(), a.into_medium());
                    b = EventStore::open(fa, config).unwrap();
                    a = block_on(asynch::EventStore::open(fb, config)).unwrap();
                    if rng.next_u32() % 2 == 0 {
                        b.no_updates_in_flight();
                        a.no_updates_in_flight();
                        in_flight.clear();
                    } else {
                        assert_eq!(
                            b.restore_in_flight(&in_flight),
                            a.restore_in_flight(&in_flight)
                        );
                    }
                }
            }
            assert_eq!(b.in_flight_state(), a.in_flight_state(), "{what}");
            assert_eq!(
                b.pending().collect::<Vec<_>>(),
                a.pending().collect::<Vec<_>>(),
                "{what}: pending"
            );
            assert_eq!(
                b.journal().medium().image(),
                a.journal().medium().image(),
                "{what}: images differ"
            );
            ops += 1;
        }
        erases += b.journal().medium().stats().erases;
    }
    assert!(
        released > 1000 && erases > 50,
        "released {released}, erases {erases}: too little covered"
    );
    println!(
        "async and blocking stores in lockstep: {ops} operations, {released} releases, {erases} erases, images identical"
    );
}

/// I1, I2, I7: a push or an ack whose future is dropped between any two medium
/// operations (a `select` with a timeout, say) is a power cut at that point. The
/// store then refuses every further push, ack and read with a panic saying so,
/// instead of running on with RAM state the medium may not match; opening the
/// medium again recovers every event pushed before, and the dropped operation is
/// either whole or absent.
#[test]
fn i1_i2_i7_a_dropped_future_is_a_cut_and_stops_the_store() {
    const M: usize = 8;
    let g = Geometry {
        sector_size: 1024,
        sector_count: 4,
        write_size: 4,
        multiwrite: true,
    };
    let config = Config::<M>::try_new(g, 100).unwrap();
    // Silence the expected panics (only those).
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("did not complete") {
            previous(info);
        }
    }));
    let (mut dropped, mut completed, mut refused) = (0u32, 0u32, 0u32);
    // Base images with a few events pending, at several places in a sector and
    // with compactions due.
    for pushes in [12u8, 13, 15, 21, 40] {
        let mut base = SimFlash::new(g);
        let mut model = Vec::new();
        {
            let mut j = Journal::<_, M>::open(&mut base, config).unwrap();
            for k in 0..pushes {
                let id = j.push(&[k; 90]).unwrap();
                model.push((id, vec![k; 90]));
                if model.len() > 5 {
                    let (old, _) = model.remove(0);
                    j.ack(old).unwrap();
                }
            }
        }
        for ack in [false, true] {
            for polls in 1.. {
                let mut flash = base.clone();
                let mut y = Yielding(&mut flash);
                let mut j = block_on(asynch::Journal::<_, M>::open(&mut y, config)).unwrap();
                let body = [0xEE; 90];
                let target = model[2].0;
                let done = if ack {
                    poll_at_most(j.ack(target), polls).is_some()
                } else {
                    poll_at_most(j.push(&body), polls).is_some()
                };
                if done {
                    completed += 1;
                    break;
                }
                dropped += 1;
                let again = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    block_on(j.push(&[1; 8])).map(|_| ())
                }));
                let message = again.expect_err("the store ran on after a dropped push or ack");
                let text = message
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                assert!(text.contains("did not complete"), "polls {polls}: {text}");
                refused += 1;
                drop(j);
                // Reopen: everything pushed before is there; the dropped operation is
                // whole or absent; nothing else changed.
                let mut j = Journal::<_, M>::open(&mut flash, config)
                    .unwrap_or_else(|e| panic!("ack {ack} polls {polls}: open failed: {e}"));
                let mut got = Vec::new();
                for (id, _) in j.pending().collect::<Vec<_>>() {
                    let mut buf = [0u8; 100];
                    let n = j.read(id, &mut buf).unwrap();
                    got.push((id, buf[..n].to_vec()));
                }
                let mut want = model.clone();
                if ack {
                    let without: Vec<_> = want
                        .iter()
                        .filter(|(id, _)| *id != target)
                        .cloned()
                        .collect();
                    assert!(
                        got == want || got == without,
                        "ack {ack} polls {polls}: {got:?}"
                    );
                } else {
                    let before = want.clone();
                    want.push((
                        j.next_id().0.checked_sub(1).map(EventId).unwrap(),
                        body.to_vec(),
                    ));
                    assert!(
                        got == before || got == want,
                        "ack {ack} polls {polls}: {got:?}"
                    );
                }
                // And it goes on.
                j.push(&[2; 8]).unwrap();
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        dropped > 100 && completed == 10,
        "dropped {dropped}, completed {completed}"
    );
    println!(
        "dropped futures: {dropped} (at every medium operation of a push and an ack), refused afterwards {refused}, recovered {dropped}"
    );
}

/// I4: a `release_next` whose future is dropped before it completes (a
/// `select` with a timeout, say) releases nothing: the next one hands out the
/// same event, once. Dropped after each number of polls short of completion,
/// for every event pending, in every mode.
#[test]
fn i4_a_dropped_release_releases_nothing() {
    let mut dropped = 0u32;
    for (g, config) in geometries() {
        let mut flash = SimFlash::new(g);
        let mut pushed = Vec::new();
        {
            let mut s = EventStore::<_, N>::open(&mut flash, config).unwrap();
            for k in 0..6u8 {
                let e = MonitorEvent::UpdateCompleted {
                    channel: ChannelId([k; 32]),
                    update_id: u64::from(k),
                };
                pushed.push((s.push(&e).unwrap(), e));
            }
        }
        let mut s = block_on(asynch::EventStore::<_, N>::open(
            Yielding(&mut flash),
            config,
        ))
        .unwrap();
        s.no_updates_in_flight();
        for want in &pushed {
            for polls in 1.. {
                match poll_at_most(s.release_next(), polls) {
                    None => dropped += 1,
                    Some(got) => {
                        assert_eq!(got.as_ref(), Some(want), "{g:?}: I4 after {polls} polls");
                        assert!(polls > 1, "a read that never yields: nothing dropped");
                        break;
                    }
                }
            }
        }
        assert_eq!(block_on(s.release_next()), None, "{g:?}: I4, once each");
        // The store goes on: a read changes nothing on the medium.
        let (id, e) = &pushed[0];
        let source = MonitorEventSource {
            channel: e.channel(),
            id: *id,
        };
        assert_eq!(block_on(s.ack(source)), Ok(AckOutcome::Acked));
    }
    println!("dropped release_next futures: {dropped}, none released");
}
