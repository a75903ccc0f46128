//! I1–I5 and I10 of the typed [`EventStore`](monitor_events::EventStore) under
//! brown-outs, every mode at once: random geometries `Config` accepts (sectors
//! of 256 B to 16 KiB, 3 to 16 of them, program units of 1 to 32 B), in-place
//! acks, ack records or authenticated records, random reserves; and a
//! monotonic counter beside the medium (none, one that keeps every version, or
//! one that keeps only a rollover's), which the cuts must never turn into a
//! refused open.
//!
//! Between cuts the store runs a random workload of typed events: claims (whose
//! preimages `open` hashes to check them), failed forwards up to the largest
//! encoding, force-closes, confirmations and update completions, on three
//! channels; acks of any pending event in any order, by its source; group
//! commits (`push_batch` of 2 to 4 events, `ack_batch` of 1 to 3 events, now
//! and then naming one twice or one acked before); compactions
//! (`EventStore::compact`), after which the pending events, their kinds,
//! channels, released and held flags, the next id and the gates must be as
//! before; reopens. Cuts land on a random program or erase of the simulated flash, torn in a
//! random variant; 4 times in 10 the next one comes within the first 1..=6
//! operations after the restart (a brown-out), up to 20 in a row.
//!
//! After every cut the store must open (never `RolledBack`: the counter only
//! vouches for what was durable), and before the in-flight updates are
//! declared hold back every HTLC event (I5); then it must give back every event
//! whose push returned and none whose ack returned, identical, once each, in id
//! order (I1, I2, I4), and its next id must be above every id it gave (I3). Only
//! the operation the cut interrupted may go either way: of a batch, any of its
//! events (each under the id the batch gave it) or acks. Each run ends in stable
//! power, where the store must fill to `N` and empty again (I10).
//!
//! The same every-mode run goes again with weak programs (`support::Plan`): in
//! one operation in 4, 16 or 64, a program within its first 2, 8 or 96 leaves
//! one, some or all of the bits it should clear at 1, while the cuts land. The
//! one stop accepted is a ring out of free sectors with a reserve of 0 or 1
//! (docs/INVARIANTS.md, I7); the store must then open with everything promised.
//!
//! `STORE_BROWNOUT_DRAWS` sets the geometries of each every-mode run (default
//! 60), `STORE_BROWNOUT_CUTS` the cuts per geometry (default 200).
//!
//! The second test runs the same at scale and at the store's limits: `N` of 100
//! and 250 on sectors of 4 to 64 KiB, events on eight channels with a channel
//! table of five (`CH`), and a workload that pushes whether or not there is
//! room. Each refusal (`Full` when `N` are pending, `TooManyChannels` when the
//! pending events already name five channels and the event names another) is
//! predicted from the model, and must leave the medium untouched; acks now and
//! then drain a channel with one `ack_batch`, so that others get in. Monitor
//! updates begin and complete at random (an earlier update of a channel now and
//! then, which must leave its gate), and each `release_next` must give the
//! model's next event: the lowest pending id not yet released in this run whose
//! channel no gate holds, or for other than HTLC events any channel (I4, I5).
//! After a cut the updates still in flight are declared with
//! `restore_in_flight`, and exactly the HTLC events of their channels stay
//! held. The runs of each `N` must meet both refusals, releases and gated
//! events.
//!
//! A third run gives the store three gates (`K`) for the eight channels, so
//! that monitor updates overflow them: a `begin_update` on a fourth channel
//! must answer `Full`, drop no gate and close the store (every HTLC event
//! held back, `InFlightState::Overflowed`); the integrator keeps the refused
//! update in its own list, and now and then declares its whole list again,
//! which must be refused and change nothing while the channels do not fit in
//! `K` (after a cut the store then stays undeclared), and must reopen the flow
//! once they do. After every step the store's gated channels and state must
//! be the model's, and no release may be an HTLC event of a channel with an
//! update in flight, refused or not. Its runs must meet a refused update, a
//! refused declaration and a recovery. `STORE_SCALE_DRAWS` sets the geometries
//! of each run (default 6), `STORE_SCALE_CUTS` the cuts per geometry (default
//! 300).
//!
//! Each geometry's run goes through one engine (`support::PathStore`): the
//! blocking store, or, when the tests are built with `async` (`ci/test` builds
//! them so), for the odd seeds, `monitor_events::asynch::EventStore`, each call
//! driven by `embassy_futures::block_on`. The engine follows from the seed
//! alone, so a failing seed (its message names the engine) reproduces, and
//! both engines meet the same draws, workload, model and checks. Each summary
//! line gives the runs per engine; built with `async`, a test of two or more
//! geometries per run must send some through each.

mod support;

use monitor_events::journal::{max_pending_with_reserve, AckMode, Auth};
use monitor_events::{
    AckOutcome, ChannelId, Config, EventId, EventKind, Geometry, InFlightError, InFlightState,
    MonitorEvent, MonitorEventSource, PushError, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{is_power_cut, panic_text, quiet_power_cuts, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use support::events::{channel, encoded, event};
use support::{check, env_u64, Bursts, Counter, CounterKind, Counts, InFlight, Model, Recovered};
use support::{path_for, Path, PathStore, Plan, Rate, Weak};

/// Pending capacity of the every-mode test.
const EVERY_MODE_N: usize = 8;

/// The typed store on the weak flash, through either engine: the blocking
/// `EventStore`, or `monitor_events::asynch::EventStore` with every call driven
/// by `block_on` (`support::PathStore`).
type Store<'a, const N: usize, const CH: usize, const K: usize> =
    PathStore<&'a mut Weak<Plan>, N, K, Counter, CH>;

/// What a run draws and how its workload pushes.
#[derive(Clone, Copy, Debug)]
struct Workload {
    /// Events name `channel(0)` to `channel(channels - 1)`.
    channels: u32,
    /// Push whether or not there is room, and check the refusals.
    overfill: bool,
    /// Begin and complete monitor updates, release events and check each
    /// release against the model (I4, I5), declare the updates after a cut.
    gating: bool,
    /// Sector sizes drawn: `min_sector << 0..shifts`.
    min_sector: u32,
    shifts: u32,
    /// Weak programs (`support::Plan`) in one operation in 4, 16 or 64, within
    /// its first 2, 8 or 96 programs, while the cuts land.
    weak: bool,
}

/// The every-mode test: three channels, pushes only when they fit, sectors of
/// 256 B to 16 KiB.
const EVERY_MODE: Workload = Workload {
    channels: 3,
    overfill: false,
    gating: false,
    min_sector: 256,
    shifts: 7,
    weak: false,
};

/// The every-mode test with weak programs.
const EVERY_MODE_WEAK: Workload = Workload {
    weak: true,
    ..EVERY_MODE
};

/// The scale test: eight channels for a table of five, pushes regardless,
/// monitor updates, sectors of 4 to 64 KiB.
const AT_SCALE: Workload = Workload {
    channels: 8,
    overfill: true,
    gating: true,
    min_sector: 4096,
    shifts: 5,
    weak: false,
};

/// The channel table (`CH`) of the scale test's store.
const SCALE_CH: usize = 5;

/// What a run met besides the checks.
#[derive(Clone, Copy, Debug, Default)]
struct Met {
    /// Pushes (single or batch) refused with `Full`, as predicted.
    full: u64,
    /// Pushes refused with `TooManyChannels`, as predicted.
    channels: u64,
    /// The most events pending after a cut.
    peak: usize,
    /// Releases checked against the model between cuts.
    releases: u64,
    /// HTLC events a gate held back once the updates were declared after a cut.
    gated: u64,
    /// `begin_update` refused with `Full` (`K` other channels gated), as
    /// predicted: the store failed closed.
    overflows: u64,
    /// `restore_in_flight` refused with `Full`, as predicted (after a cut, or
    /// while failed closed), changing nothing.
    restores_refused: u64,
    /// Ways out of a failed-closed store: `restore_in_flight` of every update
    /// in flight, the refused ones included, once they fit in `K`.
    recoveries: u64,
    /// Programs made weak (`Workload::weak`).
    weak: u64,
    /// Runs that ended with the ring out of free sectors (`Workload::weak`).
    ring_stops: u64,
    /// Compactions that completed (`EventStore::compact`).
    compactions: u64,
    /// Runs through the blocking store.
    blocking: u64,
    /// Runs through the async store (built with `async`).
    asynch: u64,
}

impl Met {
    /// Adds another run's counts (the peak is the higher one).
    fn add(&mut self, m: &Met) {
        self.full += m.full;
        self.channels += m.channels;
        self.peak = self.peak.max(m.peak);
        self.releases += m.releases;
        self.gated += m.gated;
        self.overflows += m.overflows;
        self.restores_refused += m.restores_refused;
        self.recoveries += m.recoveries;
        self.weak += m.weak;
        self.ring_stops += m.ring_stops;
        self.compactions += m.compactions;
        self.blocking += m.blocking;
        self.asynch += m.asynch;
    }

    /// `B blocking, A async`: the runs through each engine.
    fn engines(&self) -> String {
        format!("{} blocking, {} async", self.blocking, self.asynch)
    }

    /// Built with `async`, both engines must have had runs of the `draws` (if
    /// there were two or more): the split must not fall back to the blocking
    /// store alone.
    fn both_engines(&self, draws: u64, what: &str) {
        assert_eq!(self.blocking + self.asynch, draws, "{what}: runs");
        if !cfg!(feature = "async") {
            assert_eq!(self.asynch, 0, "{what}: no async store without `async`");
        } else if draws >= 2 {
            assert!(
                self.blocking > 0 && self.asynch > 0,
                "{what}: runs through each engine: {}",
                self.engines()
            );
        }
    }
}

/// What the integrator knows across cuts: the monitor updates in flight (the
/// highest begun per channel, refused by the store or not) and the next update
/// id, above every `UpdateCompleted` the workload pushes, so that only
/// `complete_update` completes them. And the model of the store's side in this
/// run: the channels its table gates, its [`InFlightState`], what it released.
struct Gating {
    gates: BTreeMap<ChannelId, u64>,
    next: u64,
    table: BTreeSet<ChannelId>,
    state: InFlightState,
    released: BTreeSet<u64>,
}

impl Default for Gating {
    fn default() -> Self {
        Gating {
            gates: BTreeMap::new(),
            next: 0,
            table: BTreeSet::new(),
            state: InFlightState::Undeclared,
            released: BTreeSet::new(),
        }
    }
}

impl Gating {
    /// Declares the updates in flight after an open (a new run: nothing
    /// gated, nothing released, every HTLC event held back).
    fn declare<const N: usize, const CH: usize, const K: usize>(
        &mut self,
        s: &mut Store<'_, N, CH, K>,
        met: &mut Met,
    ) {
        self.released.clear();
        self.table.clear();
        self.state = InFlightState::Undeclared;
        assert_eq!(s.in_flight_state(), self.state, "a store opens undeclared");
        assert!(s.gates().is_empty(), "a store opens with no gate");
        self.restore(s, met);
    }

    /// `restore_in_flight` with every update in flight (or
    /// `no_updates_in_flight` when there is none): all or nothing, as the
    /// model predicts. Refused, it changes nothing and the store stays closed
    /// (or closes, if it was declared).
    fn restore<const N: usize, const CH: usize, const K: usize>(
        &mut self,
        s: &mut Store<'_, N, CH, K>,
        met: &mut Met,
    ) {
        let was = self.state;
        if self.gates.is_empty() {
            s.no_updates_in_flight();
            self.state = InFlightState::Declared;
        } else {
            let list: Vec<(ChannelId, u64)> = self.gates.iter().map(|(c, u)| (*c, *u)).collect();
            let new = self
                .gates
                .keys()
                .filter(|c| !self.table.contains(c))
                .count();
            let before = s.gates().clone();
            let r = s.restore_in_flight(&list);
            if self.table.len() + new <= K {
                assert_eq!(r, Ok(()), "I5: the updates in flight fit in K = {K}");
                self.table.extend(self.gates.keys().copied());
                self.state = InFlightState::Declared;
            } else {
                assert_eq!(
                    r,
                    Err(InFlightError::Full),
                    "I6: more channels than K = {K}"
                );
                assert_eq!(
                    s.gates(),
                    &before,
                    "I6: a refused declaration changes nothing"
                );
                if self.state == InFlightState::Declared {
                    self.state = InFlightState::Overflowed;
                }
                met.restores_refused += 1;
            }
        }
        if was == InFlightState::Overflowed && self.state == InFlightState::Declared {
            met.recoveries += 1;
        }
        self.agrees(s);
    }

    /// The store's gates and state are the model's.
    fn agrees<const N: usize, const CH: usize, const K: usize>(&self, s: &Store<'_, N, CH, K>) {
        assert_eq!(s.in_flight_state(), self.state, "the in-flight state");
        let table: BTreeSet<ChannelId> = s.gates().iter().map(|r| r.channel).collect();
        assert_eq!(table, self.table, "the gated channels");
    }

    /// Whether the model holds back an event of `kind` on `channel`.
    fn holds(&self, kind: EventKind, channel: &ChannelId) -> bool {
        kind == EventKind::HtlcResolved
            && (self.state != InFlightState::Declared || self.table.contains(channel))
    }
}

/// What [`check`] reads of a reopened store: its pending ids, each event as
/// `peek` reads it (encoded again), its next id.
struct View<'s, 'a, const N: usize, const CH: usize, const K: usize>(&'s mut Store<'a, N, CH, K>);

impl<const N: usize, const CH: usize, const K: usize> Recovered for View<'_, '_, N, CH, K> {
    fn ids(&self) -> Vec<EventId> {
        self.0.pending().map(|p| p.id).collect()
    }
    fn bytes(&mut self, id: EventId) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        encoded(&self.0.peek(id, &mut buf).expect("a pending event reads"))
    }
    fn next(&self) -> EventId {
        self.0.next_id()
    }
}

/// I5 after an open, then I4: every HTLC event is held until the in-flight
/// updates are declared; then each pending event is released once, in id
/// order, as it reads, but for the HTLC events of channels with an update in
/// flight, which stay held.
fn replay<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    gating: &mut Gating,
    met: &mut Met,
    what: &str,
) {
    let htlc: Vec<(EventId, ChannelId)> = s
        .pending()
        .filter(|p| p.kind == EventKind::HtlcResolved)
        .map(|p| (p.id, p.channel))
        .collect();
    assert!(
        s.pending()
            .all(|p| p.held == (p.kind == EventKind::HtlcResolved)),
        "{what}: I5, HTLC events held until declared"
    );
    let mut before = Vec::new();
    while let Some((id, e)) = s.release_next() {
        assert_ne!(
            e.kind(),
            EventKind::HtlcResolved,
            "{what}: I5, {id} released undeclared"
        );
        before.push(id);
    }
    gating.declare(s, met);
    for p in s.pending() {
        assert_eq!(
            p.held,
            gating.holds(p.kind, &p.channel),
            "{what}: I5, {} held as the model holds it",
            p.id
        );
    }
    let (gated, free): (Vec<_>, Vec<_>) = htlc
        .into_iter()
        .partition(|(_, c)| gating.holds(EventKind::HtlcResolved, c));
    let mut after = Vec::new();
    while let Some((id, _)) = s.release_next() {
        after.push(id);
    }
    let free: Vec<EventId> = free.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        after, free,
        "{what}: I4, I5, the held events of ungated channels once each, in id order"
    );
    met.gated += gated.len() as u64;
    let mut all: Vec<EventId> = before.into_iter().chain(after).collect();
    all.extend(gated.into_iter().map(|(id, _)| id));
    all.sort();
    let ids: Vec<EventId> = s.pending().map(|p| p.id).collect();
    assert_eq!(
        all, ids,
        "{what}: I4, every pending event released once or gated"
    );
}

/// The source of pending event `id`, its channel taken from the bytes the model
/// holds for it (not from the store).
fn source(model: &Model, id: EventId) -> MonitorEventSource {
    let event = MonitorEvent::decode(&model.durable[&id.0]).expect("the model holds events");
    MonitorEventSource {
        channel: event.channel(),
        id,
    }
}

/// The refusal the store owes a push of `events` with the model's events
/// pending: `Full` first, then `TooManyChannels`.
fn refusal<const N: usize, const CH: usize>(
    model: &Model,
    events: &[MonitorEvent],
) -> Option<PushError> {
    if model.durable.len() + events.len() > N {
        return Some(PushError::Full);
    }
    let mut named: Vec<ChannelId> = model
        .durable
        .values()
        .map(|b| {
            MonitorEvent::decode(b)
                .expect("the model holds events")
                .channel()
        })
        .collect();
    named.extend(events.iter().map(|e| e.channel()));
    named.sort();
    named.dedup();
    (named.len() > CH).then_some(PushError::TooManyChannels { capacity: CH })
}

/// A predicted refusal: `call` must answer `want` and leave the medium
/// untouched (I6).
fn refused<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    want: PushError,
    met: &mut Met,
    call: impl FnOnce(&mut Store<'_, N, CH, K>) -> Result<(), PushError>,
) {
    let ops = s.medium().flash.op_index();
    assert_eq!(call(s), Err(want));
    assert_eq!(s.medium().flash.op_index(), ops, "a refused push writes");
    match want {
        PushError::Full => met.full += 1,
        _ => met.channels += 1,
    }
}

/// `push_batch` of `events`: refused as [`refusal`] predicts, or durable.
fn push_batch<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    events: &[MonitorEvent],
    model: &mut Model,
    met: &mut Met,
) {
    let k = events.len();
    let mut scratch = vec![0u8; k * MAX_ENCODED_LEN];
    let mut ids = vec![EventId(0); k];
    if let Some(want) = refusal::<N, CH>(model, events) {
        return refused(s, want, met, |s| {
            s.push_batch(events, &mut scratch, &mut ids)
        });
    }
    model.in_flight = Some(InFlight::PushBatch(events.iter().map(encoded).collect()));
    s.push_batch(events, &mut scratch, &mut ids)
        .expect("a batch that fits");
    for (id, e) in ids.iter().zip(events) {
        model.pushed(*id, encoded(e));
    }
}

/// `push` of `e`: refused as [`refusal`] predicts, or durable.
fn push<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    e: &MonitorEvent,
    model: &mut Model,
    met: &mut Met,
) {
    if let Some(want) = refusal::<N, CH>(model, core::slice::from_ref(e)) {
        return refused(s, want, met, |s| s.push(e).map(drop));
    }
    model.in_flight = Some(InFlight::Push(encoded(e)));
    let id = s.push(e).expect("a push that fits");
    model.pushed(id, encoded(e));
}

/// `ack_batch` of `batch` (pending ids), with `extra` sources that must answer
/// `AlreadyAcked`.
fn ack_batch<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    batch: &[EventId],
    extra: &[MonitorEventSource],
    model: &mut Model,
) {
    let mut sources: Vec<MonitorEventSource> = batch.iter().map(|&id| source(model, id)).collect();
    let mut expect = vec![AckOutcome::Acked; sources.len()];
    sources.extend_from_slice(extra);
    expect.resize(sources.len(), AckOutcome::AlreadyAcked);
    model.in_flight = Some(InFlight::AckBatch(batch.iter().map(|id| id.0).collect()));
    let mut out = vec![AckOutcome::AlreadyAcked; sources.len()];
    assert_eq!(s.ack_batch(&sources, &mut out), Ok(()));
    assert_eq!(out, expect, "ack_batch outcomes");
    for &id in batch {
        model.acked(id);
    }
}

/// The random workload until the armed cut fires (the store then panics, I7).
#[allow(clippy::too_many_arguments)]
fn operate<const N: usize, const CH: usize, const K: usize>(
    path: Path,
    flash: &mut Weak<Plan>,
    rate: Option<Rate>,
    config: Config<N>,
    counter: &Counter,
    w: Workload,
    model: &mut Model,
    rng: &mut Pcg32,
    met: &mut Met,
    gating: &mut Gating,
) {
    let plan = flash.cells.plan.clone();
    let arm = |rng: &mut Pcg32| {
        if let Some(rate) = rate {
            rate.arm(&plan, rng);
        }
    };
    arm(rng);
    let mut s = Store::<N, CH, K>::open_with_counter(path, flash, config, counter.clone())
        .expect("open before the cut");
    gating.declare(&mut s, met);
    // Percentiles of a batch, a push, an ack batch, an ack (the rest reopens):
    // overfilling, pushes outrun acks so that the store fills.
    let (b, p, ab, a) = if w.overfill {
        (20, 80, 84, 95)
    } else {
        (10, 50, 60, 92)
    };
    for _ in 0..100_000 {
        arm(rng);
        let r = rng.below(100);
        let room = N - s.pending_count();
        if r < b && (w.overfill || room >= 2) {
            // A group commit of 2 to 4 events.
            let most = if w.overfill { 4 } else { room.min(4) };
            let k = 2 + rng.below(most as u32 - 1) as usize;
            let events: Vec<MonitorEvent> = (0..k).map(|_| event(rng, w.channels)).collect();
            push_batch(&mut s, &events, model, met);
        } else if r < p && (w.overfill || room > 0) {
            let e = event(rng, w.channels);
            push(&mut s, &e, model, met);
        } else if r < ab && s.pending_count() > 0 {
            let ids: Vec<EventId> = s.pending().map(|p| p.id).collect();
            let mut batch: Vec<EventId> = Vec::new();
            if w.overfill && rng.below(4) == 0 {
                // Drain a channel: every pending event of one (at most 32).
                let c = source(model, ids[rng.below(ids.len() as u32) as usize]).channel;
                batch.extend(
                    s.pending()
                        .filter(|p| p.channel == c)
                        .map(|p| p.id)
                        .take(32),
                );
                ack_batch(&mut s, &batch, &[], model);
                continue;
            }
            // An ack batch of 1 to 3 pending events, now and then one of them
            // twice or one acked before (both `AlreadyAcked`).
            for _ in 0..1 + rng.below(3) {
                let id = ids[rng.below(ids.len() as u32) as usize];
                if !batch.contains(&id) {
                    batch.push(id);
                }
            }
            let mut extra = Vec::new();
            if rng.below(4) == 0 {
                extra.push(source(model, batch[0]));
            }
            if let (0, Some(&old)) = (rng.below(4), model.acked.last()) {
                extra.push(MonitorEventSource {
                    channel: channel(0),
                    id: EventId(old),
                });
            }
            ack_batch(&mut s, &batch, &extra, model);
        } else if r < a && s.pending_count() > 0 {
            let ids: Vec<EventId> = s.pending().map(|p| p.id).collect();
            let id = ids[rng.below(ids.len() as u32) as usize];
            let source = source(model, id);
            model.in_flight = Some(InFlight::Ack(id.0));
            assert_eq!(s.ack(source), Ok(AckOutcome::Acked));
            model.acked(id);
        } else if w.gating && rng.below(8) != 0 {
            gate_step(&mut s, model, rng, w, gating, met);
        } else if rng.below(3) == 0 {
            // A compaction: nothing a caller sees changes (the pending events
            // and what is released of them, the next id, the gates); a cut in
            // it is a cut in a retirement.
            model.in_flight = None;
            let before: Vec<_> = s
                .pending()
                .map(|p| (p.id, p.channel, p.kind, p.released, p.held))
                .collect();
            let next = s.next_id();
            s.compact();
            met.compactions += 1;
            let after: Vec<_> = s
                .pending()
                .map(|p| (p.id, p.channel, p.kind, p.released, p.held))
                .collect();
            assert_eq!(after, before, "pending after a compaction");
            assert_eq!(s.next_id(), next, "next id after a compaction");
            gating.agrees(&s);
        } else {
            let flash = s.into_medium();
            s = Store::open_with_counter(path, flash, config, counter.clone()).expect("reopen");
            gating.declare(&mut s, met);
        }
    }
    panic!("no cut fired");
}

/// With gating: begin an update (refused when `K` other channels are gated,
/// which closes the store), complete one (or an earlier one of its channel,
/// which leaves the gate), declare every update in flight again while the store
/// is closed (refused while they do not fit), or release the next event, which
/// must be the model's: the lowest pending id not released in this run and not
/// held back, byte for byte (I4, I5), and never an HTLC event of a channel with
/// an update in flight, refused or not (I5).
fn gate_step<const N: usize, const CH: usize, const K: usize>(
    s: &mut Store<'_, N, CH, K>,
    model: &Model,
    rng: &mut Pcg32,
    w: Workload,
    gating: &mut Gating,
    met: &mut Met,
) {
    match rng.below(8) {
        0..=1 => {
            let c = channel(rng.below(w.channels));
            let u = (1 << 40) + gating.next;
            gating.next += 1;
            let before = s.gates().clone();
            let r = s.begin_update(c, u);
            if gating.table.contains(&c) || gating.table.len() < K {
                assert_eq!(r, Ok(()), "I5: a gate for {c:?}");
                gating.table.insert(c);
            } else {
                assert_eq!(r, Err(InFlightError::Full), "I6: K = {K} channels gated");
                assert_eq!(s.gates(), &before, "I6: a refused update drops no gate");
                gating.state = InFlightState::Overflowed;
                met.overflows += 1;
            }
            // The integrator keeps a refused update in its own list.
            gating.gates.insert(c, u);
        }
        2..=3 if !gating.gates.is_empty() => {
            let pick = rng.below(gating.gates.len() as u32) as usize;
            let (&c, &u) = gating.gates.iter().nth(pick).expect("a gate");
            if rng.below(3) == 0 {
                s.complete_update(c, u - 1);
                assert_eq!(
                    s.gates().is_gated(&c),
                    gating.table.contains(&c),
                    "I5: an earlier update lifted the gate"
                );
            } else {
                assert_eq!(
                    s.complete_update(c, u),
                    gating.table.contains(&c),
                    "I5: the update was in flight in the table"
                );
                gating.gates.remove(&c);
                gating.table.remove(&c);
            }
        }
        4 if gating.state != InFlightState::Declared => gating.restore(s, met),
        _ => {
            let want = model
                .durable
                .iter()
                .filter(|(id, _)| !gating.released.contains(id))
                .map(|(id, b)| {
                    (
                        *id,
                        MonitorEvent::decode(b).expect("the model holds events"),
                    )
                })
                .find(|(_, e)| !gating.holds(e.kind(), &e.channel()));
            let got = s.release_next();
            assert_eq!(
                got.as_ref().map(|(id, e)| (id.0, encoded(e))),
                want.map(|(id, e)| (id, encoded(&e))),
                "I4, I5: the next release"
            );
            if let Some((id, e)) = got {
                assert!(
                    !(e.is_htlc() && gating.gates.contains_key(&e.channel())),
                    "I5: {id} released while its channel has an update in flight"
                );
                gating.released.insert(id.0);
                met.releases += 1;
            }
        }
    }
    gating.agrees(s);
}

/// A geometry, mode and reserve `Config` accepts for `N` events of the largest
/// size, and a counter.
fn draw<const N: usize>(rng: &mut Pcg32, w: Workload) -> (Config<N>, Counter, String) {
    loop {
        let mode = rng.below(3);
        let g = Geometry {
            sector_size: w.min_sector << rng.below(w.shifts),
            sector_count: 3 + rng.below(14),
            write_size: 1 << rng.below(6),
            multiwrite: mode == 0,
        };
        let reserve = rng.below(g.sector_count - 2);
        if max_pending_with_reserve(g, MAX_ENCODED_LEN, mode == 2, reserve) < N {
            continue;
        }
        let Ok(c) = Config::<N>::try_new_with_reserve(g, MAX_ENCODED_LEN, reserve) else {
            continue;
        };
        let c = match mode {
            0 => c.with_ack_mode(AckMode::InPlace),
            1 => c.with_ack_mode(AckMode::Record),
            _ => c.with_auth(Auth::new([0x5A; 32], *b"store brown-outs")),
        }
        .expect("a mode the geometry takes");
        let counter = Counter {
            kind: [
                CounterKind::None,
                CounterKind::Every,
                CounterKind::Rollovers,
            ][rng.below(3) as usize],
            kept: Rc::default(),
        };
        let name = format!(
            "{}x{} B, unit {} B, {}, reserve {reserve}, counter {:?}, N {N}",
            g.sector_count,
            g.sector_size,
            g.write_size,
            ["in-place acks", "ack records", "authenticated"][mode as usize],
            counter.kind
        );
        return (c, counter, name);
    }
}

/// One geometry's run: `cuts` cuts in bursts from a blank flash, a check after
/// each, then stable power. With weak programs, a ring out of free sectors
/// (the device stops, I7) ends the run after its check, on a configuration
/// with a reserve of 0 or 1 (docs/INVARIANTS.md, I7); with any other it fails.
fn run<const N: usize, const CH: usize, const K: usize>(
    seed: u64,
    cuts: u64,
    w: Workload,
) -> (Counts, Met) {
    let mut rng = Pcg32::new(seed);
    // The engine follows from the seed alone (not from `rng`): a failing seed
    // reproduces, and each engine meets the draws the other would.
    let path = path_for(seed);
    let (config, counter, name) = draw::<N>(&mut rng, w);
    let rate = if w.weak {
        Some(Rate {
            every: [4, 16, 64][rng.below(3) as usize],
            depth: [2, 8, 96][rng.below(3) as usize],
        })
    } else {
        None
    };
    let what = match rate {
        Some(r) => format!(
            "seed {seed}: {path:?} store, {name}, one operation in {} weak within its first {} programs",
            r.every, r.depth
        ),
        None => format!("seed {seed}: {path:?} store, {name}"),
    };
    let mut flash = Plan::weak(SimFlash::new(config.geometry()), seed ^ 0x5eed);
    let plan = flash.cells.plan.clone();
    let mut model = Model::default();
    let mut totals = Counts::default();
    let mut met = Met::default();
    match path {
        Path::Blocking => met.blocking = 1,
        #[cfg(feature = "async")]
        Path::Async => met.asynch = 1,
    }
    let mut gating = Gating::default();
    let mut bursts = Bursts::default();
    for _ in 0..cuts {
        // Overfilling, runs between cuts long enough for pending to reach N.
        let k = bursts.next(&mut rng, if w.overfill { 120 + 2 * N as u32 } else { 120 });
        flash
            .flash
            .cut_after(k, Torn::random(u64::from(rng.next_u32())));
        let r = catch_unwind(AssertUnwindSafe(|| {
            operate::<N, CH, K>(
                path,
                &mut flash,
                rate,
                config,
                &counter,
                w,
                &mut model,
                &mut rng,
                &mut met,
                &mut gating,
            )
        }));
        let message = panic_text(&*r.expect_err("the workload ends in the cut"));
        plan.set(None);
        let ring_stop =
            rate.is_some() && message.starts_with("monitor-events: no free sector left");
        if ring_stop {
            assert!(
                config.reserve() <= 1,
                "{what}: out of free sectors with a reserve of {}",
                config.reserve()
            );
            met.ring_stops += 1;
        } else {
            assert!(
                is_power_cut(&message) && flash.flash.is_dead(),
                "{what}: a panic that is not the cut: {message}"
            );
        }
        flash.flash.power_on();
        let mut s = Store::<N, CH, K>::open_with_counter(path, &mut flash, config, counter.clone())
            .unwrap_or_else(|e| panic!("{what}: the store does not open after a cut: {e}"));
        let (c, got) = check(&model, &mut View(&mut s), &what);
        totals.add(c);
        met.peak = met.peak.max(s.pending_count());
        replay(&mut s, &mut gating, &mut met, &what);
        model.adopt(&got);
        if ring_stop {
            met.weak = flash.cells.weak;
            return (totals, met);
        }
    }
    met.weak = flash.cells.weak;
    // Stable power: empty, fill to N on channels the table takes, empty (I10).
    let mut s = Store::<N, CH, K>::open_with_counter(path, &mut flash, config, counter.clone())
        .expect("open in stable power");
    s.no_updates_in_flight();
    for fill in [true, false] {
        for id in s.pending().map(|p| p.id).collect::<Vec<_>>() {
            assert_eq!(
                s.ack(source(&model, id)),
                Ok(AckOutcome::Acked),
                "{what}: I10, ack"
            );
            model.acked(id);
        }
        while fill && s.pending_count() < N {
            let e = event(&mut rng, w.channels.min(CH as u32));
            let id = s
                .push(&e)
                .unwrap_or_else(|e| panic!("{what}: I10, push: {e}"));
            model.pushed(id, encoded(&e));
        }
    }
    let (c, _) = check(&model, &mut View(&mut s), &format!("{what}, stable power"));
    totals.add(c);
    // The counter kept what it was told: the store's version, or (keeping
    // rollovers only) at least its sector part.
    let (kept, version) = (counter.kept.get(), s.version());
    match counter.kind {
        CounterKind::None => assert_eq!(kept, 0, "{what}"),
        CounterKind::Every => assert_eq!(kept, version, "{what}: the counter keeps up"),
        CounterKind::Rollovers => assert_eq!(kept >> 32, version >> 32, "{what}"),
    }
    (totals, met)
}

#[test]
fn i1_i5_i10_store_brownouts_in_every_mode() {
    quiet_power_cuts();
    let draws = env_u64("STORE_BROWNOUT_DRAWS", 60);
    let cuts = env_u64("STORE_BROWNOUT_CUTS", 200);
    let mut totals = Counts::default();
    let mut met = Met::default();
    for seed in 0..draws {
        let (c, m) = run::<EVERY_MODE_N, EVERY_MODE_N, 8>(0x57_0000 + seed, cuts, EVERY_MODE);
        totals.add(c);
        met.add(&m);
    }
    println!(
        "store brown-outs: {draws} geometries ({}), compactions {}, {}",
        met.engines(),
        met.compactions,
        totals.summary()
    );
    assert!(totals.clean(), "{totals:?}");
    assert_eq!(totals.checked, draws * (cuts + 1));
    assert!(met.compactions > 0, "no compaction completed");
    met.both_engines(draws, "store brown-outs");
}

/// I1–I5, I7, I10 of the typed store, every mode, with weak programs: now and
/// then a program leaves bits it should clear at 1 (`support::Plan`), in one
/// operation in 4, 16 or 64 (a push, a group commit, an ack, an ack batch, a
/// reopen), while the cuts land in bursts. The journal reads back what it
/// writes and writes a failed record again in a fresh sector; a failed group
/// commit must leave none of its events or all. A ring out of free sectors is
/// accepted with a reserve of 0 or 1 (then the medium must open with
/// everything promised, and the run ends); with more, it fails the run. Built
/// with `async`, every other geometry runs through the async store.
#[test]
fn i1_i5_i7_i10_store_weak_programs_in_every_mode() {
    quiet_power_cuts();
    support::quiet_panics_containing("monitor-events:");
    let draws = env_u64("STORE_BROWNOUT_DRAWS", 60);
    let cuts = env_u64("STORE_BROWNOUT_CUTS", 200);
    let mut totals = Counts::default();
    let mut met = Met::default();
    for seed in 0..draws {
        let (c, m) = run::<EVERY_MODE_N, EVERY_MODE_N, 8>(0x5E_0000 + seed, cuts, EVERY_MODE_WEAK);
        totals.add(c);
        met.add(&m);
    }
    println!(
        "store weak programs: {draws} geometries ({}), weak programs {}, out of free sectors {}, \
         compactions {}, {}",
        met.engines(),
        met.weak,
        met.ring_stops,
        met.compactions,
        totals.summary()
    );
    assert!(totals.clean(), "{totals:?}");
    assert!(met.weak > 200, "too few weak programs: {}", met.weak);
    assert!(
        totals.checked > draws * cuts / 2,
        "too few checks: {}",
        totals.checked
    );
    met.both_engines(draws, "store weak programs");
}

/// I1–I6 and I10 at scale and at the store's limits: `Full` and
/// `TooManyChannels` predicted, each writing nothing; monitor updates gating
/// releases, declared again after every cut; under brown-outs. Built with
/// `async`, every other geometry of each `N` and `K` runs through the async
/// store.
#[test]
fn i1_i6_i10_store_brownouts_at_scale_full_and_gated() {
    quiet_power_cuts();
    let draws = env_u64("STORE_SCALE_DRAWS", 6);
    let cuts = env_u64("STORE_SCALE_CUTS", 300);
    let mut totals = Counts::default();
    type Run = fn(u64, u64, Workload) -> (Counts, Met);
    // `K` 8 gates every channel the workload names; `K` 3 overflows.
    let sizes: [(&str, u64, Run, bool); 3] = [
        ("N 100, K 8", 0x5C_0000, run::<100, SCALE_CH, 8>, false),
        ("N 250, K 8", 0x5C_1000, run::<250, SCALE_CH, 8>, false),
        ("N 100, K 3", 0x5C_2000, run::<100, SCALE_CH, 3>, true),
    ];
    for (label, seed, run, overflows) in sizes {
        let mut met = Met::default();
        // The draws whose store met `Full` (and so was full under cuts).
        let mut filled = 0;
        for draw in 0..draws {
            let (c, m) = run(seed + draw, cuts, AT_SCALE);
            totals.add(c);
            filled += u64::from(m.full > 0);
            met.add(&m);
        }
        println!(
            "store at scale, {label}, {SCALE_CH} channels in the table of 8 named: {draws} \
             geometries ({}; {filled} filled), refused Full {}, TooManyChannels {}, peak pending \
             after a cut {}; releases checked {}, HTLC events held back after a cut {}; \
             updates refused {}, declarations refused {}, recoveries {}; compactions {}",
            met.engines(),
            met.full,
            met.channels,
            met.peak,
            met.releases,
            met.gated,
            met.overflows,
            met.restores_refused,
            met.recoveries,
            met.compactions
        );
        assert!(
            met.full > 0
                && met.channels > 0
                && met.releases > 0
                && met.gated > 0
                && met.compactions > 0,
            "{label}: every refusal, release and gate must happen: {met:?}"
        );
        met.both_engines(draws, label);
        let closed = [met.overflows, met.restores_refused, met.recoveries];
        if overflows {
            assert!(
                closed.iter().all(|&n| n > 0),
                "{label}: the store must fail closed, refuse a declaration and recover: {met:?}"
            );
        } else {
            assert_eq!(closed, [0; 3], "{label}: K gates every channel: {met:?}");
        }
    }
    println!("store at scale: {}", totals.summary());
    assert!(totals.clean(), "{totals:?}");
    assert_eq!(totals.checked, 3 * draws * (cuts + 1));
}
