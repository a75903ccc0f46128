//! The crash-point scenarios through the async engine (`monitor_events::asynch`,
//! driven by `embassy_futures::block_on` on the simulator's `AsyncMedium`): a
//! power cut at every medium operation of a W1 run in every torn variant and
//! every flavor (in-place acks, ack records, authenticated), two, three and ten
//! cuts in a row, two torn pushes then clean ones; every workload and every
//! recovery runs on the async journal. Then the same at the store level: typed
//! events pushed, released and acked through `asynch::EventStore`, every
//! operation cut in every torn variant, each fork reopened as a store.
//! Checks I1 (no returned push lost), I2 (no returned ack resurrected), I3 (no
//! id reused), I4 (byte-identical replay, each pending event released once, in
//! id order) and I8 (a torn tail opens silently).
//!
//! `ASYNC_CRASH_EVENTS` sets the events of the W1 run (default 800),
//! `ASYNC_CRASH_STORE_OPS` the operations of the store run (default 1000).

#[path = "support/crash.rs"]
mod crash;
mod support;

use crash::*;
use embassy_futures::block_on;
use monitor_events::asynch::EventStore;
use monitor_events::journal::{AckMode, Auth, Config};
use monitor_events::{
    AsyncMedium, ChannelId, CloseReason, EventId, FailureReason, HtlcOutcome, HtlcResolution,
    HtlcSource, MonitorEvent, MonitorEventSource, PaymentHash, PaymentPreimage, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use std::cell::RefCell;
use std::rc::Rc;
use support::*;

/// The store's configuration for a flavor: BENCH geometry, `N` = 16, events up
/// to [`MAX_ENCODED_LEN`].
fn store_config(mode: Flavor) -> Config<N> {
    let c = Config::<N>::try_new(mode.geometry(), MAX_ENCODED_LEN).unwrap();
    match mode {
        Flavor::InPlace => c.with_ack_mode(AckMode::InPlace).unwrap(),
        Flavor::Record => c.with_ack_mode(AckMode::Record).unwrap(),
        Flavor::RecordAuth => c
            .with_auth(Auth::new([0x24; 32], *b"async store cut "))
            .unwrap(),
    }
}

/// The channels the store run spreads its events over.
const CHANNELS: u8 = 5;

/// A random valid event of every kind, sizes from a few bytes to
/// [`MAX_ENCODED_LEN`].
fn event(rng: &mut Pcg32) -> MonitorEvent {
    let channel = ChannelId([1 + rng.below(u32::from(CHANNELS)) as u8; 32]);
    let mut bytes32 = || {
        let mut b = [0u8; 32];
        b.iter_mut().for_each(|x| *x = rng.next_u32() as u8);
        b
    };
    let (a, b, c) = (bytes32(), bytes32(), bytes32());
    match rng.below(6) {
        0 => MonitorEvent::CommitmentTxConfirmed { channel },
        1 => MonitorEvent::HolderForceClosed {
            channel,
            reason: CloseReason::ProcessingError {
                code: rng.next_u32() as u16,
            },
        },
        2 => MonitorEvent::UpdateCompleted {
            channel,
            update_id: u64::from(rng.next_u32()),
        },
        k => {
            let preimage = PaymentPreimage(a);
            let outcome = if k == 3 {
                HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: (rng.below(2) == 0).then_some(7),
                }
            } else {
                let data: Vec<u8> = (0..rng.below(65)).map(|i| i as u8 ^ b[0]).collect();
                HtlcOutcome::Failed {
                    reason: FailureReason::new(0x400f, &data).unwrap(),
                    hold_time: (rng.below(2) == 0).then_some(rng.next_u32()),
                }
            };
            let payment_hash = if k == 3 {
                preimage.payment_hash()
            } else {
                PaymentHash(b)
            };
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash,
                amount_msat: 1 + u64::from(rng.next_u32()),
                source: if rng.below(2) == 0 {
                    HtlcSource::OutboundPayment { payment_id: c }
                } else {
                    HtlcSource::Forward {
                        prev_channel: ChannelId(c),
                        prev_htlc_id: u64::from(rng.next_u32()),
                    }
                },
                outcome,
                resolved_on_chain: rng.below(2) == 0,
                user_channel_id: (rng.below(2) == 0).then_some(u128::from(rng.next_u32())),
            })
        }
    }
}

/// An event's bytes, as the model keeps them.
fn encoded(e: &MonitorEvent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    e.encode(&mut buf).unwrap().to_vec()
}

/// The async store as [`check`] reads it: every pending event decoded and
/// encoded again, so a record that decodes to another event counts as wrong data.
struct Store<M: AsyncMedium>(EventStore<M, N>);

impl<M: AsyncMedium> Recovered for Store<M> {
    fn ids(&self) -> Vec<EventId> {
        self.0.pending().map(|p| p.id).collect()
    }
    fn bytes(&mut self, id: EventId) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        encoded(&block_on(self.0.peek(id, &mut buf)).unwrap())
    }
    fn next(&self) -> EventId {
        self.0.next_id()
    }
}

/// I4: after `open`, the store releases every pending event exactly once, in
/// id order, with the bytes it holds; then nothing more. Returns 1 on a
/// violation.
fn releases_in_order<M: AsyncMedium>(
    s: &mut Store<M>,
    got: &std::collections::BTreeMap<u64, Vec<u8>>,
    what: &str,
) -> u64 {
    s.0.no_updates_in_flight();
    let mut released = Vec::new();
    while let Some((id, e)) = block_on(s.0.release_next()) {
        released.push((id.0, encoded(&e)));
    }
    let expected: Vec<(u64, Vec<u8>)> = got.iter().map(|(k, v)| (*k, v.clone())).collect();
    if released != expected {
        eprintln!(
            "I4: {what}: released {:?}, pending {:?}",
            released.iter().map(|r| r.0).collect::<Vec<_>>(),
            got.keys()
        );
        return 1;
    }
    0
}

/// One step of the store run: a push of a random event, or an ack (by its
/// channel and id) of a random pending one, most often the oldest.
fn store_step<M: AsyncMedium>(
    s: &mut EventStore<M, N>,
    channels: &mut std::collections::BTreeMap<u64, ChannelId>,
    model: &RefCell<Model>,
    rng: &mut Pcg32,
) {
    let pending: Vec<EventId> = s.pending().map(|p| p.id).collect();
    if pending.len() == N || (!pending.is_empty() && rng.below(5) < 2) {
        let id = if rng.below(3) == 0 {
            pending[rng.below(pending.len() as u32) as usize]
        } else {
            pending[0]
        };
        let source = MonitorEventSource {
            channel: channels[&id.0],
            id,
        };
        model.borrow_mut().in_flight = Some(InFlight::Ack(id.0));
        block_on(s.ack(source)).unwrap();
        model.borrow_mut().acked(id);
    } else {
        let e = event(rng);
        model.borrow_mut().in_flight = Some(InFlight::Push(encoded(&e)));
        let id = block_on(s.push(&e)).unwrap();
        channels.insert(id.0, e.channel());
        model.borrow_mut().pushed(id, encoded(&e));
    }
}

/// I1, I2, I3, I4, I8 at the store level: fork the flash before every program
/// and erase of a run of `ops` typed-event operations through
/// `asynch::EventStore` (with reopens), apply the operation torn in every
/// variant, reopen the fork as an async store and check what it holds, what it
/// releases, and that it takes a new event under a fresh id and acks it.
fn store_crash_points(mode: Flavor, ops: u64) -> Counts {
    let totals = Rc::new(RefCell::new(Counts::default()));
    let model = Rc::new(RefCell::new(Model::default()));
    let config = store_config(mode);
    let mut flash = SimFlash::new(mode.geometry());
    {
        let (totals, model) = (totals.clone(), model.clone());
        let mut serial = 0u64;
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let model = model.borrow();
            for torn in Torn::variants([serial * 2 + 1, serial * 2 + 2]) {
                let mut fork = before.clone();
                fork.apply_torn(op, torn)
                    .expect("the operation itself is legal");
                let what = format!("store {mode:?} op {serial} {torn:?}");
                let mut s = match block_on(EventStore::<_, N>::open(fork, config)) {
                    Ok(s) => Store(s),
                    Err(e) => panic!("I8: {what}: a torn write must open silently, got {e:?}"),
                };
                let (mut c, got) = check(&model, &mut s, &what);
                c.wrong += releases_in_order(&mut s, &got, &what);
                // The recovered store takes a new event under a fresh id (I3)
                // and acks it by its source.
                if s.0.pending_count() == N {
                    let p = s.0.pending().next().unwrap();
                    let source = MonitorEventSource {
                        channel: p.channel,
                        id: p.id,
                    };
                    block_on(s.0.ack(source)).unwrap();
                }
                let e = MonitorEvent::CommitmentTxConfirmed {
                    channel: ChannelId([0xEE; 32]),
                };
                let id = block_on(s.0.push(&e)).unwrap();
                if model.max_id.is_some_and(|m| id.0 <= m) {
                    c.reused += 1;
                }
                let source = MonitorEventSource {
                    channel: e.channel(),
                    id,
                };
                block_on(s.0.ack(source)).unwrap();
                totals.borrow_mut().add(c);
            }
            serial += 1;
        });
    }
    let mut rng = Pcg32::new(0xA5C0 + mode as u64);
    let mut channels = std::collections::BTreeMap::new();
    let mut s = block_on(EventStore::<_, N>::open(&mut flash, config)).unwrap();
    for i in 0..ops {
        if i % 97 == 96 {
            drop(s);
            s = block_on(EventStore::<_, N>::open(&mut flash, config)).unwrap();
            let mut st = Store(s);
            let (c, got) = check(&model.borrow(), &mut st, "clean reopen");
            assert!(c.clean(), "{c:?}");
            assert_eq!(releases_in_order(&mut st, &got, "clean reopen"), 0);
            s = st.0;
        }
        store_step(&mut s, &mut channels, &model, &mut rng);
    }
    drop(s);
    let c = *totals.borrow();
    c
}

#[test]
fn async_crash_points() {
    quiet_power_cuts();
    let events = env_u64("ASYNC_CRASH_EVENTS", 800);
    let ops = env_u64("ASYNC_CRASH_STORE_OPS", 1000);
    let mut totals = Counts::default();
    for mode in Flavor::ALL {
        let c = every_crash_point(mode, Path::Async, events);
        eprintln!("async {mode:?}: every operation: {c:?}");
        totals.add(c);
        let c = consecutive_cuts(mode, Path::Async, 30, |run| 2 + run % 2);
        eprintln!("async {mode:?}: two and three consecutive cuts: {c:?}");
        totals.add(c);
        let c = consecutive_cuts(mode, Path::Async, 10, |_| 10);
        eprintln!("async {mode:?}: ten consecutive cuts: {c:?}");
        totals.add(c);
        let c = two_torn_pushes_then_clean(mode, Path::Async);
        eprintln!("async {mode:?}: two torn pushes then clean ones: {c:?}");
        totals.add(c);
        let c = store_crash_points(mode, ops);
        eprintln!("async {mode:?}: store, every operation: {c:?}");
        totals.add(c);
    }
    println!(
        "async crash points checked: {}, lost: {}, resurrected: {}, reused ids: {}, wrong data: {}",
        totals.checked, totals.lost, totals.resurrected, totals.reused, totals.wrong
    );
    assert!(totals.clean(), "{totals:?}");
    assert!(
        totals.checked > 20_000,
        "too few crash points: {}",
        totals.checked
    );
}
