//! I1–I4 and I7 of the async [`EventStore`] when its futures are dropped before
//! they complete, as a `select` with a timeout drops them, in every mode at
//! once: random geometries `Config` accepts (sectors of 256 B to 16 KiB of 1, 2
//! or 4 erase blocks, 3 to 16 of them, program units of 1 to 32 B, random
//! reserves), in-place acks, ack records or authenticated records. The medium
//! yields before each of its operations, so that a future can be dropped
//! between any two of them.
//!
//! A random workload of typed events runs on the store: pushes, group commits
//! (`push_batch` of 2 to 4 events), acks and `ack_batch`es by source in any
//! order, `release_next`, `peek`, `compact`, reopens. One operation in four is
//! dropped after 1..=8, 1..=40 or 1..=400 polls (each medium operation takes
//! two), if it has not completed by then; so are opens, by value and into a
//! slot.
//!
//! - A dropped push, batch, ack, ack batch or compaction is a power cut at that
//!   point (I7): the store must then refuse the next push, ack or read with a
//!   panic that says so, and the medium opened again must give back every event
//!   whose push returned and none whose ack returned, identical, in id order,
//!   with the dropped operation whole or absent (I1–I4).
//! - A completed compaction leaves the same events pending and the same next
//!   id.
//! - A dropped open writes nothing; a store an `open_into` left in its slot
//!   refuses to run.
//! - A dropped `release_next` or `peek` releases nothing: each completed
//!   `release_next` must hand out the model's next event (the lowest pending id
//!   not yet released in this run), byte for byte (I4), and `peek` the event's
//!   bytes.
//!
//! `ASYNC_DROP_DRAWS` sets the geometries (default 300), `ASYNC_DROP_OPS` the
//! operations per geometry (default 600).

mod support;

use embassy_futures::block_on;
use monitor_events::asynch::EventStore;
use monitor_events::{
    AckOutcome, Config, EventId, Geometry, MonitorEvent, MonitorEventSource, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{panic_text, SimFlash};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::collections::BTreeSet;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::events::{encoded, event};
use support::yielding::{poll_at_most, Yielding};
use support::{
    check, draw_config_with, env_u64, quiet_panics_containing, Counts, Flavor, InFlight, Model,
    Recovered,
};

/// Pending capacity.
const N: usize = 12;

/// Channels the events name.
const CHANNELS: u32 = 4;

type Store<'a> = EventStore<Yielding<Grouped<&'a mut SimFlash>>, N>;

/// The flash as the store sees it: sectors of `group` erase blocks, each
/// operation yielding first.
fn grouped(flash: &mut SimFlash, group: u32) -> Yielding<Grouped<&mut SimFlash>> {
    Yielding(Grouped::new(flash, group).expect("a grouping the flash takes"))
}

/// The panic of a store that an interrupted operation left unknown.
const INTERRUPTED: &str = "did not complete";

/// What the runs met besides the checks.
#[derive(Clone, Copy, Debug, Default)]
struct Met {
    /// Pushes, batches, acks, ack batches and compactions dropped before they
    /// completed.
    writes: u64,
    /// Opens dropped before they completed.
    opens: u64,
    /// Of those, `open_into`s that left a store in their slot.
    slots: u64,
    /// `release_next` and `peek` dropped before they completed.
    reads: u64,
    /// Releases checked against the model.
    releases: u64,
    /// `compact`s that completed.
    compactions: u64,
    /// `compact`s dropped before they completed.
    compactions_dropped: u64,
}

impl Met {
    fn add(&mut self, m: &Met) {
        self.writes += m.writes;
        self.opens += m.opens;
        self.slots += m.slots;
        self.reads += m.reads;
        self.releases += m.releases;
        self.compactions += m.compactions;
        self.compactions_dropped += m.compactions_dropped;
    }
}

/// What [`check`] reads of a reopened store.
struct View<'s, 'a>(&'s mut Store<'a>);

impl Recovered for View<'_, '_> {
    fn ids(&self) -> Vec<EventId> {
        self.0.pending().map(|p| p.id).collect()
    }
    fn bytes(&mut self, id: EventId) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        encoded(&block_on(self.0.peek(id, &mut buf)).expect("a pending event reads"))
    }
    fn next(&self) -> EventId {
        self.0.next_id()
    }
}

/// The polls the next operation gets: `None` (to the end) three times in
/// four, else 1..=8, 1..=40 or 1..=400.
fn budget(rng: &mut Pcg32) -> Option<usize> {
    if rng.below(4) != 0 {
        return None;
    }
    let most = [8, 40, 400][rng.below(3) as usize];
    Some(1 + rng.below(most) as usize)
}

/// `fut` to the end, or dropped after `polls` polls: its output if it
/// completed.
fn drive<F: Future>(fut: F, polls: Option<usize>) -> Option<F::Output> {
    match polls {
        None => Some(block_on(fut)),
        Some(p) => poll_at_most(fut, p),
    }
}

/// A store an interrupted operation left behind refuses to run: a push, an
/// ack or a read (picked by `pick`) panics, saying so (I7).
fn refuses(s: &mut Store<'_>, model: &Model, pick: u32, what: &str) {
    // An event the store had pending: the one a dropped ack named, if any.
    let any = match &model.in_flight {
        Some(InFlight::Ack(id)) => Some(EventId(*id)),
        Some(InFlight::AckBatch(ids)) => ids.first().map(|&id| EventId(id)),
        _ => model.durable.keys().next().map(|&id| EventId(id)),
    };
    let r = catch_unwind(AssertUnwindSafe(|| match (pick % 3, any) {
        (1, Some(id)) => {
            let source = MonitorEventSource {
                channel: source_channel(model, id),
                id,
            };
            format!("ack of {id}: {:?}", block_on(s.ack(source)))
        }
        (2, Some(id)) => {
            let mut buf = [0u8; MAX_ENCODED_LEN];
            format!("peek of {id}: {:?}", block_on(s.peek(id, &mut buf)))
        }
        _ => {
            let e = MonitorEvent::CommitmentTxConfirmed {
                channel: support::events::channel(0),
            };
            format!("push: {:?}", block_on(s.push(&e)))
        }
    }));
    match r {
        Ok(answer) => panic!(
            "{what}: I7, the store ran on after {:?} was interrupted: {answer}",
            model.in_flight
        ),
        Err(p) => {
            let message = panic_text(&*p);
            assert!(message.contains(INTERRUPTED), "{what}: {message}");
        }
    }
}

/// The channel of pending event `id`, from the bytes the model holds.
fn source_channel(model: &Model, id: EventId) -> monitor_events::ChannelId {
    MonitorEvent::decode(&model.durable[&id.0])
        .expect("the model holds events")
        .channel()
}

/// Opens the store, now and then dropping an open (by value or into a slot)
/// first: a dropped open writes nothing, and a store left in the slot refuses
/// to run. Then checks it against the model (I1–I4) and adopts the dropped
/// operation's outcome.
fn open<'a>(
    flash: &'a mut SimFlash,
    config: Config<N>,
    group: u32,
    model: &mut Model,
    rng: &mut Pcg32,
    met: &mut Met,
    what: &str,
) -> (Store<'a>, Counts) {
    while rng.below(3) == 0 {
        let polls = 1 + rng.below(80) as usize;
        let ops = flash.op_index();
        let dropped = if rng.below(2) == 0 {
            poll_at_most(Store::open(grouped(&mut *flash, group), config), polls).is_none()
        } else {
            let mut slot = None;
            let done = poll_at_most(
                Store::open_into(&mut slot, grouped(&mut *flash, group), config),
                polls,
            )
            .is_some();
            if let (false, Some(s)) = (done, slot.as_mut()) {
                refuses(
                    s,
                    model,
                    rng.next_u32(),
                    &format!("{what}: a half-open slot"),
                );
                met.slots += 1;
            }
            !done
        };
        met.opens += u64::from(dropped);
        assert_eq!(flash.op_index(), ops, "{what}: an open wrote");
    }
    let mut s = block_on(Store::open(grouped(flash, group), config))
        .unwrap_or_else(|e| panic!("{what}: the store does not open: {e}"));
    let (c, got) = check(model, &mut View(&mut s), what);
    model.adopt(&got);
    s.no_updates_in_flight();
    (s, c)
}

/// One geometry's run.
fn run(seed: u64, ops: u64) -> (Counts, Met) {
    let mut rng = Pcg32::new(seed);
    let mode = Flavor::ALL[rng.below(3) as usize];
    let (config, group, name) = draw_config_with::<N>(&mut rng, mode, MAX_ENCODED_LEN);
    let what = format!("seed {seed}: {name}");
    let g = config.geometry();
    let mut flash = SimFlash::new(Geometry {
        sector_size: g.sector_size / group,
        sector_count: g.sector_count * group,
        ..g
    });
    let mut model = Model::default();
    let mut totals = Counts::default();
    let mut met = Met::default();
    let mut done = 0;
    while done < ops {
        let (mut s, c) = open(
            &mut flash, config, group, &mut model, &mut rng, &mut met, &what,
        );
        totals.add(c);
        // Released in this run of the store.
        let mut released = BTreeSet::new();
        // Until a write is dropped (the store is then gone) or a reopen.
        loop {
            done += 1;
            if done >= ops {
                break;
            }
            let polls = budget(&mut rng);
            let r = rng.below(100);
            let pending: Vec<EventId> = s.pending().map(|p| p.id).collect();
            let room = N - pending.len();
            let completed = if r < 12 && room >= 2 {
                let k = 2 + rng.below(room.min(4) as u32 - 1) as usize;
                let events: Vec<MonitorEvent> = (0..k).map(|_| event(&mut rng, CHANNELS)).collect();
                let mut scratch = vec![0u8; k * MAX_ENCODED_LEN];
                let mut ids = vec![EventId(0); k];
                model.in_flight = Some(InFlight::PushBatch(events.iter().map(encoded).collect()));
                let r = drive(s.push_batch(&events, &mut scratch, &mut ids), polls);
                r.map(|r| {
                    r.expect("a batch that fits");
                    for (id, e) in ids.iter().zip(&events) {
                        model.pushed(*id, encoded(e));
                    }
                })
            } else if r < 45 && room > 0 {
                let e = event(&mut rng, CHANNELS);
                model.in_flight = Some(InFlight::Push(encoded(&e)));
                drive(s.push(&e), polls)
                    .map(|id| model.pushed(id.expect("a push that fits"), encoded(&e)))
            } else if r < 55 && !pending.is_empty() {
                let mut batch: Vec<EventId> = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    let id = pending[rng.below(pending.len() as u32) as usize];
                    if !batch.contains(&id) {
                        batch.push(id);
                    }
                }
                let sources: Vec<MonitorEventSource> = batch
                    .iter()
                    .map(|&id| MonitorEventSource {
                        channel: source_channel(&model, id),
                        id,
                    })
                    .collect();
                let mut out = vec![AckOutcome::AlreadyAcked; sources.len()];
                model.in_flight = Some(InFlight::AckBatch(batch.iter().map(|id| id.0).collect()));
                drive(s.ack_batch(&sources, &mut out), polls).map(|r| {
                    assert_eq!(r, Ok(()), "{what}: ack_batch");
                    assert!(
                        out.iter().all(|o| *o == AckOutcome::Acked),
                        "{what}: {out:?}"
                    );
                    for &id in &batch {
                        model.acked(id);
                    }
                })
            } else if r < 75 && !pending.is_empty() {
                let id = pending[rng.below(pending.len() as u32) as usize];
                let source = MonitorEventSource {
                    channel: source_channel(&model, id),
                    id,
                };
                model.in_flight = Some(InFlight::Ack(id.0));
                drive(s.ack(source), polls).map(|r| {
                    assert_eq!(r, Ok(AckOutcome::Acked), "{what}: ack");
                    model.acked(id);
                })
            } else if r < 90 {
                // The model's next release: the lowest pending id not released
                // in this run (nothing is gated here).
                let want = model
                    .durable
                    .iter()
                    .find(|(id, _)| !released.contains(*id))
                    .map(|(id, b)| (*id, b.clone()));
                match drive(s.release_next(), polls) {
                    None => met.reads += 1,
                    Some(got) => {
                        assert_eq!(
                            got.as_ref().map(|(id, e)| (id.0, encoded(e))),
                            want,
                            "{what}: I4, the next release"
                        );
                        if let Some((id, _)) = got {
                            released.insert(id.0);
                            met.releases += 1;
                        }
                    }
                }
                continue;
            } else if r < 97 && !pending.is_empty() {
                let id = pending[rng.below(pending.len() as u32) as usize];
                let mut buf = [0u8; MAX_ENCODED_LEN];
                match drive(s.peek(id, &mut buf), polls) {
                    None => met.reads += 1,
                    Some(e) => assert_eq!(
                        encoded(&e.expect("a pending event reads")),
                        model.durable[&id.0],
                        "{what}: peek"
                    ),
                }
                continue;
            } else if rng.below(2) == 0 {
                // A compaction changes nothing a caller sees: the same events
                // pending, the same next id. Dropped, it is a cut in a
                // retirement, whatever it had done.
                model.in_flight = None;
                let next = s.next_id();
                let done = drive(s.compact(), polls);
                if done.is_some() {
                    met.compactions += 1;
                    let ids: Vec<u64> = s.pending().map(|p| p.id.0).collect();
                    assert_eq!(
                        ids,
                        model.durable.keys().copied().collect::<Vec<_>>(),
                        "{what}: pending after a compaction"
                    );
                    assert_eq!(s.next_id(), next, "{what}: next id after a compaction");
                } else {
                    met.compactions_dropped += 1;
                }
                done
            } else {
                break;
            };
            if completed.is_none() {
                // A dropped write: the store must stop (I7), and the medium is
                // opened again as after a cut at that point.
                met.writes += 1;
                refuses(&mut s, &model, rng.next_u32(), &what);
                break;
            }
        }
        drop(s);
    }
    // The last run's state, checked once more.
    let (s, c) = open(
        &mut flash, config, group, &mut model, &mut rng, &mut met, &what,
    );
    totals.add(c);
    drop(s);
    (totals, met)
}

/// I1–I4, I7: futures of the async store dropped at random points of random
/// workloads, on random geometries in every mode.
#[test]
fn i1_i4_i7_async_store_futures_dropped_anywhere() {
    quiet_panics_containing(INTERRUPTED);
    let draws = env_u64("ASYNC_DROP_DRAWS", 300);
    let ops = env_u64("ASYNC_DROP_OPS", 600);
    let mut totals = Counts::default();
    let mut met = Met::default();
    for seed in 0..draws {
        let (c, m) = run(0xD7_0000 + seed, ops);
        totals.add(c);
        met.add(&m);
    }
    println!(
        "async store, futures dropped: {draws} geometries; writes dropped {}, opens dropped {} \
         ({} left a store in the slot), reads dropped {}; compactions {} (dropped {}); \
         releases checked {}; {}",
        met.writes,
        met.opens,
        met.slots,
        met.reads,
        met.compactions,
        met.compactions_dropped,
        met.releases,
        totals.summary()
    );
    assert!(totals.clean(), "{totals:?}");
    assert!(
        met.writes > 0
            && met.opens > 0
            && met.slots > 0
            && met.reads > 0
            && met.releases > 0
            && met.compactions > 0
            && met.compactions_dropped > 0,
        "every kind of drop must happen: {met:?}"
    );
}
