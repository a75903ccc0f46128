//! Model-based tests of the ack bookkeeping: random sequences of push, release,
//! ack, begin/complete update and restart run against [`PendingIndex`] and
//! [`InFlight`] and against a plain `BTreeMap` model, checking I2-I6 after every
//! operation.
//!
//! A restart rebuilds the index the way the durable store does at open: a new
//! [`PendingIndex`] from the model's un-acked events with `with_next_id`, `insert`
//! and `advance_next_id` to the saved counter; nothing is in flight and nothing is
//! released after it.
//!
//! Cases: `PROPTEST_CASES` (256 if unset; CI sets 10000). Sequences are at most
//! 200 operations long so one case stays fast.

use std::collections::{BTreeMap, BTreeSet};

use monitor_events::pending::Full;
use monitor_events::{
    AckError, AckOutcome, ChannelId, EventId, InFlight, InFlightError, MonitorEventSource,
    PendingIndex,
};
use proptest::prelude::*;

/// Capacity of the pending index: small, so `Full` happens often.
const N: usize = 8;
/// Capacity of the in-flight set.
const K: usize = 3;
/// Number of distinct channels.
const CHANNELS: u8 = 3;
/// Longest operation sequence.
const MAX_OPS: usize = 200;

fn channel(c: u8) -> ChannelId {
    ChannelId([c; 32])
}

/// Whom an ack names, resolved against the model's state when it runs.
#[derive(Clone, Copy, Debug)]
enum AckTarget {
    /// A pending event with its own channel: acked.
    Pending,
    /// A pending event with another channel: refused.
    WrongChannel,
    /// An event acked before (a duplicate ack): answered, nothing changes.
    AlreadyAcked,
    /// An id never assigned: refused.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Push { channel: u8, is_htlc: bool },
    Release,
    Ack { target: AckTarget, pick: usize },
    BeginUpdate { channel: u8, update_id: u8 },
    CompleteUpdate { channel: u8, update_id: u8 },
    Restart,
}

/// Relative weights of the operations; each test stresses one invariant.
#[derive(Clone, Copy)]
struct Weights {
    push: u32,
    release: u32,
    ack: u32,
    begin: u32,
    complete: u32,
    restart: u32,
}

impl Weights {
    /// The operation that `roll` (below the total weight) selects.
    fn pick(&self, roll: u32, channel: u8, flag: bool, update_id: u8, pick: usize) -> Op {
        let mut roll = roll;
        let mut take = |weight: u32| {
            let hit = roll < weight;
            roll = roll.saturating_sub(weight);
            hit
        };
        if take(self.push) {
            Op::Push {
                channel,
                is_htlc: flag,
            }
        } else if take(self.release) {
            Op::Release
        } else if take(self.ack) {
            let target = match pick % 7 {
                0 => AckTarget::WrongChannel,
                1 => AckTarget::AlreadyAcked,
                2 => AckTarget::Unknown,
                _ => AckTarget::Pending,
            };
            Op::Ack { target, pick }
        } else if take(self.begin) {
            Op::BeginUpdate { channel, update_id }
        } else if take(self.complete) {
            Op::CompleteUpdate { channel, update_id }
        } else {
            Op::Restart
        }
    }

    fn total(&self) -> u32 {
        self.push + self.release + self.ack + self.begin + self.complete + self.restart
    }
}

/// Operation sequences. Each operation is generated from a tuple of plain integers
/// (cheap to generate and shrink, which keeps one case fast in debug builds).
fn ops(w: Weights) -> impl Strategy<Value = Vec<Op>> {
    let raw = (
        0..w.total(),
        0..CHANNELS,
        any::<bool>(),
        0..4u8,
        any::<usize>(),
    );
    proptest::collection::vec(raw, 1..=MAX_OPS).prop_map(move |raw| {
        raw.into_iter()
            .map(|(roll, channel, flag, update_id, pick)| {
                w.pick(roll, channel, flag, update_id, pick)
            })
            .collect()
    })
}

/// The model: plain collections, no capacity tricks.
#[derive(Default)]
struct Model {
    /// Un-acked events: id -> (channel, is_htlc).
    pending: BTreeMap<u64, (ChannelId, bool)>,
    /// Acked ids.
    acked: BTreeSet<u64>,
    /// The saved id counter, kept across restarts.
    next_id: u64,
    /// In-flight updates (RAM: cleared by a restart).
    in_flight: BTreeSet<(ChannelId, u64)>,
    /// Ids released in this run.
    released: BTreeSet<u64>,
}

impl Model {
    fn gated(&self, channel: &ChannelId) -> bool {
        self.in_flight.iter().any(|(c, _)| c == channel)
    }

    /// The event the next release must give: the lowest-id pending event not
    /// released in this run, unless it is an HTLC event of a gated channel.
    fn expected_release(&self) -> Option<(EventId, ChannelId)> {
        self.pending
            .iter()
            .find(|(id, (c, htlc))| {
                let gated = *htlc && self.gated(c);
                !self.released.contains(id) && !gated
            })
            .map(|(id, (c, _))| (EventId(*id), *c))
    }
}

/// The system under test: what the store keeps in RAM.
struct Sut {
    index: PendingIndex<N>,
    gates: InFlight<K>,
}

struct Harness {
    model: Model,
    sut: Sut,
}

impl Harness {
    fn new() -> Self {
        Harness {
            model: Model::default(),
            sut: Sut {
                index: PendingIndex::new(),
                gates: InFlight::new(),
            },
        }
    }

    fn run(&mut self, ops: &[Op]) {
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Push {
                    channel: c,
                    is_htlc,
                } => self.push(channel(c), is_htlc),
                Op::Release => self.release(),
                Op::Ack { target, pick } => self.ack(target, pick),
                Op::BeginUpdate {
                    channel: c,
                    update_id,
                } => self.begin(channel(c), u64::from(update_id)),
                Op::CompleteUpdate {
                    channel: c,
                    update_id,
                } => self.complete(channel(c), u64::from(update_id)),
                Op::Restart => self.restart(),
            }
            self.check_same(step, op);
        }
        self.check_end_of_run();
    }

    fn push(&mut self, c: ChannelId, is_htlc: bool) {
        let before = self.sut.index.clone();
        let result = self.sut.index.push(c, is_htlc);
        if self.model.pending.len() == N {
            // I6: Full before any change, nothing dropped to make room.
            assert_eq!(result, Err(Full), "I6: push into a full index");
            assert_eq!(
                self.sut.index, before,
                "I6: a refused push changed the index"
            );
            return;
        }
        let id = result.expect("I6: push refused below capacity").0;
        // I3: the next id of the saved counter: above every id ever assigned, in
        // any run, and never one that was assigned before.
        assert_eq!(id, self.model.next_id, "I3: push assigned an unexpected id");
        assert!(
            !self.model.acked.contains(&id) && !self.model.pending.contains_key(&id),
            "I3: id {id} reused"
        );
        self.model.pending.insert(id, (c, is_htlc));
        self.model.next_id = id + 1;
    }

    fn release(&mut self) {
        let expected = self.model.expected_release();
        let got = self.sut.index.next_release(&self.sut.gates);
        // I4 (lowest id first among releasable) and I5 (gated HTLC events skipped,
        // other events not held back) together decide the answer.
        assert_eq!(got, expected, "I4/I5: wrong release");
        if let Some((id, c)) = got {
            let id = id.0;
            assert!(self.model.released.insert(id), "I4: {id} released twice");
            assert!(!self.model.acked.contains(&id), "I2: acked {id} released");
            let is_htlc = self.model.pending[&id].1;
            assert!(
                !(is_htlc && self.model.gated(&c)),
                "I5: HTLC event {id} of a gated channel released"
            );
        }
    }

    fn ack(&mut self, target: AckTarget, pick: usize) {
        let m = &self.model;
        let nth_pending = (!m.pending.is_empty()).then(|| {
            let (id, (c, _)) = m.pending.iter().nth(pick % m.pending.len()).unwrap();
            (*id, *c)
        });
        let nth_acked =
            (!m.acked.is_empty()).then(|| *m.acked.iter().nth(pick % m.acked.len()).unwrap());
        let unknown = (
            MonitorEventSource {
                channel: channel((pick % CHANNELS as usize) as u8),
                id: EventId(m.next_id + (pick % 3) as u64),
            },
            Err(AckError::Unknown),
        );
        let (source, expected) = match (target, nth_pending, nth_acked) {
            (AckTarget::Pending, Some((id, c)), _) => (
                MonitorEventSource {
                    channel: c,
                    id: EventId(id),
                },
                Ok(AckOutcome::Acked),
            ),
            (AckTarget::WrongChannel, Some((id, c)), _) => (
                MonitorEventSource {
                    channel: channel((c.0[0] + 1) % CHANNELS),
                    id: EventId(id),
                },
                Err(AckError::WrongChannel),
            ),
            (AckTarget::AlreadyAcked, _, Some(id)) => (
                MonitorEventSource {
                    channel: channel((pick % CHANNELS as usize) as u8),
                    id: EventId(id),
                },
                Ok(AckOutcome::AlreadyAcked),
            ),
            _ => unknown,
        };

        let before = self.sut.index.clone();
        assert_eq!(self.sut.index.check_ack(&source), expected, "I2: check_ack");
        assert_eq!(self.sut.index, before, "I2: check_ack changed the index");
        assert_eq!(self.sut.index.ack(&source), expected, "I2: ack");
        if expected == Ok(AckOutcome::Acked) {
            self.model.pending.remove(&source.id.0);
            self.model.acked.insert(source.id.0);
        } else {
            assert_eq!(
                self.sut.index, before,
                "I2: a refused ack changed the index"
            );
        }
    }

    fn begin(&mut self, c: ChannelId, update_id: u64) {
        let expected = if self.model.in_flight.contains(&(c, update_id)) {
            Err(InFlightError::Duplicate)
        } else if self.model.in_flight.len() == K {
            Err(InFlightError::Full)
        } else {
            Ok(())
        };
        assert_eq!(self.sut.gates.begin(c, update_id), expected, "I5/I6: begin");
        if expected.is_ok() {
            self.model.in_flight.insert((c, update_id));
        }
    }

    fn complete(&mut self, c: ChannelId, update_id: u64) {
        let expected = self.model.in_flight.remove(&(c, update_id));
        assert_eq!(
            self.sut.gates.complete(c, update_id),
            expected,
            "I5: complete"
        );
    }

    fn restart(&mut self) {
        self.check_end_of_run();
        let saved = self.sut.index.next_id();
        assert_eq!(saved.0, self.model.next_id, "I3: counter");
        // Replay, as the store does at open: the floor is the oldest pending id (or
        // the counter), then every un-acked event in id order, then the counter.
        let floor = self.model.pending.keys().next().copied().unwrap_or(saved.0);
        let mut index = PendingIndex::with_next_id(EventId(floor));
        for (id, (c, is_htlc)) in &self.model.pending {
            index
                .insert(EventId(*id), *c, *is_htlc)
                .expect("I6: replay of at most N events fits");
        }
        index.advance_next_id(saved);
        assert_eq!(index.next_id(), saved, "I3: the counter survives a restart");
        self.sut = Sut {
            index,
            gates: InFlight::new(),
        };
        self.model.in_flight.clear();
        self.model.released.clear();
    }

    /// The index holds exactly the model's un-acked events, with the right flags.
    fn check_same(&self, step: usize, op: &Op) {
        let got: Vec<_> = self
            .sut
            .index
            .iter()
            .map(|e| (e.id.0, e.channel, e.is_htlc, e.released))
            .collect();
        let want: Vec<_> = self
            .model
            .pending
            .iter()
            .map(|(id, (c, h))| (*id, *c, *h, self.model.released.contains(id)))
            .collect();
        assert_eq!(
            got, want,
            "I6: index differs from model after step {step} {op:?}"
        );
        assert_eq!(
            self.sut.index.next_id().0,
            self.model.next_id,
            "I3: next id"
        );
        assert_eq!(self.sut.index.len(), self.model.pending.len());
        assert_eq!(
            self.sut.gates.len(),
            self.model.in_flight.len(),
            "I5: gates"
        );
        for (id, (c, _)) in &self.model.pending {
            let source = MonitorEventSource {
                channel: *c,
                id: EventId(*id),
            };
            assert_eq!(self.sut.index.check_ack(&source), Ok(AckOutcome::Acked));
        }
    }

    /// I4: once every update completes, the rest of the run releases every un-acked
    /// event not yet released, in id order, so each is released exactly once.
    fn check_end_of_run(&self) {
        let mut index = self.sut.index.clone();
        let no_gates = InFlight::<K>::new();
        let mut drained = Vec::new();
        while let Some((id, _)) = index.next_release(&no_gates) {
            assert!(
                !self.model.released.contains(&id.0),
                "I4: {id} released twice in a run"
            );
            drained.push(id.0);
        }
        assert!(drained.windows(2).all(|w| w[0] < w[1]), "I4: id order");
        let mut all: BTreeSet<u64> = drained.into_iter().collect();
        all.extend(
            self.model
                .released
                .iter()
                .filter(|id| self.model.pending.contains_key(id)),
        );
        let pending: BTreeSet<u64> = self.model.pending.keys().copied().collect();
        assert_eq!(
            all, pending,
            "I4: every un-acked event released once per run"
        );
    }
}

proptest! {
    // Cases: 256, or PROPTEST_CASES (proptest's default configuration reads it).

    #[test]
    fn i2_acks_in_any_order_duplicates_unknown_and_wrong_channel(ops in ops(Weights {
        push: 3, release: 2, ack: 5, begin: 1, complete: 1, restart: 2,
    })) {
        Harness::new().run(&ops);
    }

    #[test]
    fn i3_ids_strictly_increase_and_are_never_reused_across_restarts(ops in ops(Weights {
        push: 4, release: 1, ack: 3, begin: 1, complete: 1, restart: 2,
    })) {
        Harness::new().run(&ops);
    }

    #[test]
    fn i4_release_once_per_run_in_id_order(ops in ops(Weights {
        push: 3, release: 4, ack: 2, begin: 1, complete: 1, restart: 1,
    })) {
        Harness::new().run(&ops);
    }

    #[test]
    fn i5_gated_htlc_events_held_back_other_events_not(ops in ops(Weights {
        push: 3, release: 3, ack: 1, begin: 3, complete: 3, restart: 1,
    })) {
        Harness::new().run(&ops);
    }

    #[test]
    fn i6_full_before_any_change_nothing_dropped(ops in ops(Weights {
        push: 6, release: 1, ack: 1, begin: 2, complete: 1, restart: 1,
    })) {
        Harness::new().run(&ops);
    }
}
