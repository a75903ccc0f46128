//! Power cuts inside [`EventStore::push_batch`] and [`EventStore::ack_batch`], at
//! every medium operation of the batch and in every torn variant, on the simulated
//! flash. After power returns and the store reopens:
//!
//! - I1: every event whose push returned is there, byte-identical; of the cut
//!   batch, each event present is the one pushed with that id (never another);
//! - I2: every ack that returned stays; of a cut ack batch, each event is either
//!   still pending or acked, nothing else;
//! - I3: the next id is above every id assigned;
//! - I10: a push and an ack batch work afterwards.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use monitor_events::{
    AckOutcome, ChannelId, Config, EventId, EventStore, Geometry, HtlcOutcome, HtlcResolution,
    HtlcSource, MonitorEvent, MonitorEventSource, PaymentPreimage, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{quiet_power_cuts, Torn};
use monitor_events_flash::SimFlash;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
const CONFIG: Config<16> = Config::new(GEO, MAX_ENCODED_LEN);
type Store = EventStore<SimFlash, 16>;

fn claim(c: u8, n: u8) -> MonitorEvent {
    let preimage = PaymentPreimage([n; 32]);
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: ChannelId([c; 32]),
        payment_hash: preimage.payment_hash(),
        amount_msat: 1_000 + u64::from(n),
        source: HtlcSource::OutboundPayment {
            payment_id: [n; 32],
        },
        outcome: HtlcOutcome::Claimed {
            preimage,
            skimmed_fee_msat: None,
        },
        resolved_on_chain: false,
        user_channel_id: None,
    })
}

fn source(id: EventId, e: &MonitorEvent) -> MonitorEventSource {
    MonitorEventSource {
        channel: e.channel(),
        id,
    }
}

/// A store with `events` pushed one by one (returned) and the first `acked` of
/// them acked (returned). Fillers push and ack first so later batches cross a
/// sector boundary at some point of the sweep.
fn prepared(fill: u8) -> (Store, BTreeMap<EventId, MonitorEvent>) {
    let mut s = Store::open(SimFlash::new(GEO), CONFIG).unwrap();
    s.no_updates_in_flight();
    for i in 0..fill {
        let e = MonitorEvent::CommitmentTxConfirmed {
            channel: ChannelId([i; 32]),
        };
        let id = s.push(&e).unwrap();
        s.ack(source(id, &e)).unwrap();
    }
    let mut pending = BTreeMap::new();
    for n in 0..3 {
        let e = claim(1 + n % 2, n);
        pending.insert(s.push(&e).unwrap(), e);
    }
    (s, pending)
}

/// Reopens after the cut and checks I1-I3; returns the store and what it holds.
fn reopen(flash: SimFlash) -> (Store, BTreeMap<EventId, MonitorEvent>) {
    let mut s = Store::open(flash, CONFIG).expect("I10: opens after a cut");
    s.no_updates_in_flight();
    let got: BTreeMap<EventId, MonitorEvent> = std::iter::from_fn(|| s.release_next()).collect();
    if let Some(max) = got.keys().next_back() {
        assert!(s.next_id() > *max, "I3");
    }
    (s, got)
}

/// Cuts power at every operation of `run` (in each torn variant) until it runs
/// through; calls `check` with the store reopened after each cut.
fn sweep(
    fill: u8,
    run: impl Fn(&mut Store, &BTreeMap<EventId, MonitorEvent>),
    check: impl Fn(&BTreeMap<EventId, MonitorEvent>, &BTreeMap<EventId, MonitorEvent>, &mut Store),
) -> u64 {
    quiet_power_cuts();
    let mut cuts = 0;
    for torn in Torn::variants([1, 2]) {
        for k in 0.. {
            let (s, before) = prepared(fill);
            let mut flash = s.into_medium();
            flash.cut_after(k, torn);
            let mut s = Store::open(flash, CONFIG).unwrap();
            s.no_updates_in_flight();
            let r = catch_unwind(AssertUnwindSafe(|| run(&mut s, &before)));
            let mut flash = s.into_medium();
            if r.is_ok() && !flash.is_dead() {
                break; // the batch ran through: every operation was cut once
            }
            assert!(flash.is_dead(), "a panic that is not a power cut");
            flash.power_on();
            let (mut s, got) = reopen(flash);
            check(&before, &got, &mut s);
            cuts += 1;
            // I10: the store works on.
            let e = claim(3, 99);
            let id = s.push(&e).unwrap();
            let all: Vec<MonitorEventSource> = got
                .iter()
                .map(|(id, e)| source(*id, e))
                .chain([source(id, &e)])
                .collect();
            let mut out = vec![AckOutcome::Acked; all.len()];
            s.ack_batch(&all, &mut out).unwrap();
            assert!(out.iter().all(|o| *o == AckOutcome::Acked));
            let (_, left) = reopen(s.into_medium());
            assert!(left.is_empty(), "I2: acked events came back");
        }
    }
    cuts
}

fn batch() -> Vec<MonitorEvent> {
    (10..15).map(|n| claim(1 + n % 3, n)).collect()
}

/// I1: a cut anywhere inside a push batch keeps every returned event; events of
/// the cut batch that survive are exactly the ones pushed with those ids.
#[test]
fn i1_power_cut_inside_push_batch_keeps_every_returned_event() {
    let mut total = 0;
    for fill in [0, 14] {
        total += sweep(
            fill,
            |s, _| {
                let b = batch();
                let mut scratch = vec![0u8; b.len() * MAX_ENCODED_LEN];
                let mut ids = vec![EventId(0); b.len()];
                s.push_batch(&b, &mut scratch, &mut ids).unwrap();
            },
            |before, got, s| {
                for (id, e) in before {
                    assert_eq!(got.get(id), Some(e), "I1: returned event {id}");
                }
                let first = before.keys().next_back().unwrap().next();
                for (id, e) in got.iter().filter(|(id, _)| !before.contains_key(id)) {
                    let i = (id.0 - first.0) as usize;
                    assert_eq!(Some(e), batch().get(i), "I1: {id} is not what was pushed");
                }
                assert!(s.next_id() >= first, "I3");
            },
        );
    }
    println!("push_batch: {total} power cuts checked");
    assert!(total > 20);
}

/// I2: a cut anywhere inside an ack batch keeps every returned ack and every
/// event outside the batch; the batch's events are each pending or acked.
#[test]
fn i2_power_cut_inside_ack_batch_keeps_every_returned_ack() {
    let mut total = 0;
    for fill in [0, 14] {
        total += sweep(
            fill,
            |s, before| {
                let sources: Vec<_> = before
                    .iter()
                    .take(2)
                    .map(|(id, e)| source(*id, e))
                    .collect();
                let mut out = vec![AckOutcome::Acked; sources.len()];
                s.ack_batch(&sources, &mut out).unwrap();
            },
            |before, got, _| {
                let kept = before.keys().nth(2).unwrap();
                assert_eq!(got.get(kept), before.get(kept), "I1: outside the batch");
                for (id, e) in got {
                    assert_eq!(before.get(id), Some(e), "I2: {id} came from nowhere");
                }
            },
        );
    }
    println!("ack_batch: {total} power cuts checked");
    assert!(total > 5);
}
