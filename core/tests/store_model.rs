//! Model-based tests of the typed [`EventStore`] on a simulated flash: random
//! sequences of push, push_batch, ack, ack_batch, begin/complete update, restore
//! and "no updates in flight" declarations, release, peek, rewind and reopen run
//! against the store and against a plain model (`BTreeMap`s), checking after every
//! operation:
//!
//! - I4: each pending event is released at most once per run (between two opens
//!   or rewinds), the lowest releasable id first, byte-identical to what was
//!   pushed; peek and the pending list release nothing;
//! - I5: no HTLC event is released while its channel has an update in flight, nor
//!   before the in-flight updates are declared after an open, nor after the
//!   in-flight table overflowed (fail closed); other events are not held back;
//!   completion is cumulative (an `UpdateCompleted` push completes too);
//! - I1, I2, I3, I6 on the way: pushed events survive reopens, acked ones never
//!   come back, ids never repeat, refused batches change nothing.
//!
//! Cases: `PROPTEST_CASES` (256 if unset). Sequences are at most 160 operations.

use std::collections::{BTreeMap, BTreeSet};

use monitor_events::journal::ReadError;
use monitor_events::{
    AckError, AckOutcome, ChannelId, Config, EventId, EventStore, Geometry, HtlcOutcome,
    HtlcResolution, HtlcSource, InFlightError, InFlightState, MonitorEvent, MonitorEventSource,
    PaymentHash, PaymentPreimage, PushError, MAX_ENCODED_LEN,
};
use monitor_events_flash::SimFlash;
use proptest::prelude::*;

/// Pending capacity: small, so `Full` happens often.
const N: usize = 8;
/// Gated channels at once: small, so the table overflows.
const K: usize = 2;
/// Distinct channels.
const CHANNELS: u8 = 3;
const MAX_OPS: usize = 160;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
const CONFIG: Config<N> = Config::new(GEO, MAX_ENCODED_LEN);
/// Sectors of 1 KiB: 8 events of the largest size do not fit in one, the region
/// bounds `N` (every sector keeps a copy budget) and retirements come often.
const GEO_REGION: Geometry = Geometry {
    sector_size: 1024,
    ..GEO
};
const CONFIG_REGION: Config<N> = Config::new(GEO_REGION, MAX_ENCODED_LEN);

type Store = EventStore<SimFlash, N, K>;

fn channel(c: u8) -> ChannelId {
    ChannelId([c; 32])
}

/// What an event to push looks like: `kind` 0..=2 picks claim, confirmed
/// commitment, update completed; `bad` makes a claim wrong: its amount zero
/// (odd `n`, invalid in every build) or its payment hash not its preimage's
/// (even `n`, invalid with the feature `validate`, which checks preimages).
#[derive(Clone, Copy, Debug)]
struct Spec {
    channel: u8,
    kind: u8,
    n: u8,
    bad: bool,
}

impl Spec {
    /// Whether the store must refuse the event as invalid.
    fn invalid(self) -> bool {
        self.bad && self.kind % 3 == 0 && (self.n % 2 == 1 || cfg!(feature = "validate"))
    }

    fn event(self) -> MonitorEvent {
        let channel = channel(self.channel);
        match self.kind % 3 {
            0 => {
                let preimage = PaymentPreimage([self.n; 32]);
                let (zero, wrong) = (self.bad && self.n % 2 == 1, self.bad && self.n % 2 == 0);
                let payment_hash = if wrong {
                    PaymentHash([0; 32])
                } else {
                    preimage.payment_hash()
                };
                MonitorEvent::HtlcResolved(HtlcResolution {
                    channel,
                    payment_hash,
                    amount_msat: if zero { 0 } else { 1_000 + u64::from(self.n) },
                    source: HtlcSource::Forward {
                        prev_channel: ChannelId([0xee; 32]),
                        prev_htlc_id: u64::from(self.n),
                    },
                    outcome: HtlcOutcome::Claimed {
                        preimage,
                        skimmed_fee_msat: None,
                    },
                    resolved_on_chain: false,
                    user_channel_id: None,
                })
            }
            1 => MonitorEvent::CommitmentTxConfirmed { channel },
            _ => MonitorEvent::UpdateCompleted {
                channel,
                update_id: u64::from(self.n % 6),
            },
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Push(Spec),
    PushBatch(Vec<Spec>),
    /// `pick` chooses a pending event; `how` 0..=6 as in `ack_source`.
    Ack {
        how: u8,
        pick: usize,
    },
    AckBatch(Vec<(u8, usize)>),
    Begin {
        channel: u8,
        update: u8,
    },
    Complete {
        channel: u8,
        update: u8,
    },
    Restore(Vec<(u8, u8)>),
    NoUpdates,
    Release,
    Peek(usize),
    Rewind,
    Reopen,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0..CHANNELS, 0..3u8, any::<u8>(), prop::bool::weighted(0.05)).prop_map(
        |(channel, kind, n, bad)| Spec {
            channel,
            kind,
            n,
            bad,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let update = (0..CHANNELS, 0..6u8);
    prop_oneof![
        5 => spec().prop_map(Op::Push),
        2 => prop::collection::vec(spec(), 0..4).prop_map(Op::PushBatch),
        3 => (0..7u8, any::<usize>()).prop_map(|(how, pick)| Op::Ack { how, pick }),
        2 => prop::collection::vec((0..7u8, any::<usize>()), 0..4).prop_map(Op::AckBatch),
        3 => update.clone().prop_map(|(channel, update)| Op::Begin { channel, update }),
        3 => update.clone().prop_map(|(channel, update)| Op::Complete { channel, update }),
        1 => prop::collection::vec(update, 0..3).prop_map(Op::Restore),
        1 => Just(Op::NoUpdates),
        6 => Just(Op::Release),
        1 => any::<usize>().prop_map(Op::Peek),
        1 => Just(Op::Rewind),
        1 => Just(Op::Reopen),
    ]
}

/// The model: plain collections.
struct Model {
    pending: BTreeMap<u64, MonitorEvent>,
    acked: BTreeSet<u64>,
    next_id: u64,
    /// Per gated channel, the update ids begun and not yet completed (RAM).
    in_flight: BTreeMap<ChannelId, BTreeSet<u64>>,
    state: InFlightState,
    /// Released since the last open or rewind.
    released: BTreeSet<u64>,
}

impl Model {
    fn gated(&self, c: &ChannelId) -> bool {
        self.in_flight.contains_key(c)
    }

    fn held(&self, e: &MonitorEvent) -> bool {
        e.is_htlc() && (self.state != InFlightState::Declared || self.gated(&e.channel()))
    }

    fn expected_release(&self) -> Option<u64> {
        self.pending
            .iter()
            .find(|(id, e)| !self.released.contains(id) && !self.held(e))
            .map(|(id, _)| *id)
    }

    /// Cumulative completion; whether an update at or below `u` was in flight.
    fn complete(&mut self, c: ChannelId, u: u64) -> bool {
        let Some(set) = self.in_flight.get_mut(&c) else {
            return false;
        };
        let before = set.len();
        set.retain(|x| *x > u);
        let any = set.len() < before;
        if set.is_empty() {
            self.in_flight.remove(&c);
        }
        any
    }
}

struct Harness {
    model: Model,
    store: Option<Store>,
    config: Config<N>,
    /// Counters the tests assert on, summed over every case.
    unsafe_releases: u64,
}

impl Harness {
    fn new() -> Self {
        Self::with(CONFIG)
    }

    fn with(config: Config<N>) -> Self {
        let store =
            EventStore::open(SimFlash::new(config.geometry()), config).expect("blank flash opens");
        Harness {
            model: Model {
                pending: BTreeMap::new(),
                acked: BTreeSet::new(),
                next_id: 0,
                in_flight: BTreeMap::new(),
                state: InFlightState::Undeclared,
                released: BTreeSet::new(),
            },
            store: Some(store),
            config,
            unsafe_releases: 0,
        }
    }

    fn s(&mut self) -> &mut Store {
        self.store.as_mut().expect("open")
    }

    fn run(&mut self, ops: &[Op]) {
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Push(spec) => self.push(*spec),
                Op::PushBatch(specs) => self.push_batch(specs),
                Op::Ack { how, pick } => self.ack(*how, *pick),
                Op::AckBatch(picks) => self.ack_batch(picks),
                Op::Begin { channel: c, update } => self.begin(channel(*c), u64::from(*update)),
                Op::Complete { channel: c, update } => {
                    self.complete(channel(*c), u64::from(*update))
                }
                Op::Restore(list) => self.restore(list),
                Op::NoUpdates => {
                    self.s().no_updates_in_flight();
                    self.model.state = InFlightState::Declared;
                }
                Op::Release => self.release(),
                Op::Peek(pick) => self.peek(*pick),
                Op::Rewind => {
                    self.s().rewind();
                    self.model.released.clear();
                }
                Op::Reopen => self.reopen(),
            }
            self.check(step, op);
        }
        assert_eq!(self.unsafe_releases, 0, "I5");
    }

    fn push(&mut self, spec: Spec) {
        let event = spec.event();
        let full = self.model.pending.len() == N;
        let invalid = spec.invalid();
        let result = self.s().push(&event);
        match result {
            Err(PushError::Invalid(_)) => assert!(invalid),
            Err(PushError::Full) => assert!(full && !invalid, "I6: Full below capacity"),
            Err(e) => panic!("push refused: {e}"),
            Ok(id) => {
                assert!(!full && !invalid, "I6: pushed into a full store");
                self.pushed(id, event);
            }
        }
    }

    fn pushed(&mut self, id: EventId, event: MonitorEvent) {
        assert_eq!(id.0, self.model.next_id, "I3: ids follow");
        self.model.next_id += 1;
        if let MonitorEvent::UpdateCompleted { channel, update_id } = event {
            self.model.complete(channel, update_id);
        }
        self.model.pending.insert(id.0, event);
    }

    fn push_batch(&mut self, specs: &[Spec]) {
        let events: Vec<MonitorEvent> = specs.iter().map(|s| s.event()).collect();
        let any_bad = specs.iter().any(|s| s.invalid());
        let fits = self.model.pending.len() + events.len() <= N;
        let mut scratch = vec![0u8; events.len() * MAX_ENCODED_LEN];
        let mut ids = vec![EventId(0); events.len()];
        let next = self.s().next_id();
        match self.s().push_batch(&events, &mut scratch, &mut ids) {
            Err(PushError::Invalid(_)) => assert!(any_bad),
            Err(PushError::Full) => assert!(!any_bad && !fits),
            Err(e) => panic!("push_batch refused: {e}"),
            Ok(()) => {
                assert!(!any_bad && fits, "I6: a batch that cannot fit was taken");
                for (id, e) in ids.into_iter().zip(events) {
                    self.pushed(id, e);
                }
                return;
            }
        }
        assert_eq!(self.s().next_id(), next, "I1: a refused batch took ids");
    }

    /// The source of an ack: 0..=3 a pending event, 4 the wrong channel, 5 an id
    /// acked before, 6 an id never pushed. With the outcome the model expects.
    fn ack_source(
        &self,
        how: u8,
        pick: usize,
    ) -> (MonitorEventSource, Result<AckOutcome, AckError>) {
        let m = &self.model;
        let nth_pending = (!m.pending.is_empty()).then(|| {
            let (id, e) = m.pending.iter().nth(pick % m.pending.len()).unwrap();
            (EventId(*id), e.channel())
        });
        let nth_acked = (!m.acked.is_empty())
            .then(|| EventId(*m.acked.iter().nth(pick % m.acked.len()).unwrap()));
        match (how, nth_pending, nth_acked) {
            (0..=3, Some((id, channel)), _) => {
                (MonitorEventSource { channel, id }, Ok(AckOutcome::Acked))
            }
            (4, Some((id, c)), _) => (
                MonitorEventSource {
                    channel: channel((c.0[0] + 1) % CHANNELS),
                    id,
                },
                Err(AckError::WrongChannel),
            ),
            (5, _, Some(id)) => (
                MonitorEventSource {
                    channel: channel(0),
                    id,
                },
                Ok(AckOutcome::AlreadyAcked),
            ),
            _ => (
                MonitorEventSource {
                    channel: channel(0),
                    id: EventId(m.next_id + (pick % 3) as u64),
                },
                Err(AckError::Unknown),
            ),
        }
    }

    fn acked(&mut self, id: EventId) {
        self.model.pending.remove(&id.0);
        self.model.acked.insert(id.0);
    }

    fn ack(&mut self, how: u8, pick: usize) {
        let (source, expected) = self.ack_source(how, pick);
        assert_eq!(self.s().ack(source), expected, "I2: ack of {source:?}");
        if expected == Ok(AckOutcome::Acked) {
            self.acked(source.id);
        }
    }

    fn ack_batch(&mut self, picks: &[(u8, usize)]) {
        let planned: Vec<_> = picks.iter().map(|(h, p)| self.ack_source(*h, *p)).collect();
        let sources: Vec<MonitorEventSource> = planned.iter().map(|(s, _)| *s).collect();
        let refusal = planned.iter().find_map(|(_, e)| e.err());
        let mut out = vec![AckOutcome::Acked; sources.len()];
        let got = self.s().ack_batch(&sources, &mut out);
        match refusal {
            Some(_) => {
                assert!(got.is_err(), "I2: a batch with a bad source was taken");
            }
            None => {
                assert_eq!(got, Ok(()));
                let mut first = BTreeSet::new();
                for (s, o) in sources.iter().zip(&out) {
                    let expect = if self.model.pending.contains_key(&s.id.0) && first.insert(s.id) {
                        AckOutcome::Acked
                    } else {
                        AckOutcome::AlreadyAcked
                    };
                    assert_eq!(*o, expect, "I2: outcome of {s:?} in a batch");
                }
                for id in first {
                    self.acked(id);
                }
            }
        }
    }

    fn begin(&mut self, c: ChannelId, u: u64) {
        let m = &self.model;
        let expected = match m.in_flight.get(&c) {
            Some(set) if u <= *set.iter().next_back().unwrap() => Err(InFlightError::Duplicate),
            Some(_) => Ok(()),
            None if m.in_flight.len() == K => Err(InFlightError::Full),
            None => Ok(()),
        };
        assert_eq!(self.s().begin_update(c, u), expected, "I5/I6: begin");
        match expected {
            Ok(()) => {
                self.model.in_flight.entry(c).or_default().insert(u);
            }
            Err(InFlightError::Full) => self.model.state = InFlightState::Overflowed,
            Err(_) => {}
        }
    }

    fn complete(&mut self, c: ChannelId, u: u64) {
        let gated = self.model.gated(&c);
        let any = self.model.complete(c, u);
        let got = self.s().complete_update(c, u);
        assert!(
            !any || got,
            "I5: a completion of an in-flight update said false"
        );
        assert!(
            !got || gated,
            "I5: a completion on an ungated channel said true"
        );
    }

    fn restore(&mut self, list: &[(u8, u8)]) {
        let updates: Vec<(ChannelId, u64)> = list
            .iter()
            .map(|(c, u)| (channel(*c), u64::from(*u)))
            .collect();
        let new: BTreeSet<ChannelId> = updates
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !self.model.gated(c))
            .collect();
        let fits = self.model.in_flight.len() + new.len() <= K;
        let got = self.s().restore_in_flight(&updates);
        if fits {
            assert_eq!(got, Ok(()));
            for (c, u) in updates {
                self.model.in_flight.entry(c).or_default().insert(u);
            }
            self.model.state = InFlightState::Declared;
        } else {
            assert_eq!(got, Err(InFlightError::Full));
            if self.model.state == InFlightState::Declared {
                self.model.state = InFlightState::Overflowed;
            }
        }
    }

    fn release(&mut self) {
        let expected = self.model.expected_release();
        let got = self.s().release_next();
        assert_eq!(got.as_ref().map(|(id, _)| id.0), expected, "I4/I5: release");
        if let Some((id, event)) = got {
            assert_eq!(
                Some(&event),
                self.model.pending.get(&id.0),
                "I4: byte-identical"
            );
            if self.model.held(&event) {
                self.unsafe_releases += 1;
            }
            assert!(
                self.model.released.insert(id.0),
                "I4: {id} released twice in a run"
            );
        }
    }

    fn peek(&mut self, pick: usize) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let m = &self.model;
        let target = match (m.pending.is_empty(), m.acked.is_empty()) {
            (false, _) if pick % 4 != 0 => *m.pending.keys().nth(pick % m.pending.len()).unwrap(),
            (_, false) => *m.acked.iter().nth(pick % m.acked.len()).unwrap(),
            _ => m.next_id,
        };
        let want = m.pending.get(&target).cloned();
        let got = self.s().peek(EventId(target), &mut buf);
        match want {
            Some(e) => assert_eq!(got, Ok(e), "I4: peek"),
            None => assert_eq!(got, Err(ReadError::NotPending), "I2: peek of {target}"),
        }
    }

    fn reopen(&mut self) {
        let flash = self.store.take().expect("open").into_medium();
        let store = EventStore::open(flash, self.config).expect("I10: reopens");
        self.store = Some(store);
        // RAM is gone: nothing declared, nothing released.
        self.model.in_flight.clear();
        self.model.state = InFlightState::Undeclared;
        self.model.released.clear();
    }

    fn check(&mut self, step: usize, op: &Op) {
        let s = self.store.as_ref().expect("open");
        let got: Vec<_> = s
            .pending()
            .map(|p| (p.id.0, p.channel, p.kind, p.released, p.held))
            .collect();
        let m = &self.model;
        let want: Vec<_> = m
            .pending
            .iter()
            .map(|(id, e)| {
                (
                    *id,
                    e.channel(),
                    e.kind(),
                    m.released.contains(id),
                    m.held(e),
                )
            })
            .collect();
        assert_eq!(got, want, "I1/I4/I5: pending list after step {step} {op:?}");
        assert_eq!(s.next_id().0, m.next_id, "I3");
        assert_eq!(s.in_flight_state(), m.state, "I5: state after {op:?}");
        assert_eq!(s.free_slots(), N - m.pending.len(), "I6");
        let gated: BTreeSet<ChannelId> = s.gates().iter().map(|r| r.channel).collect();
        let want_gated: BTreeSet<ChannelId> = m.in_flight.keys().copied().collect();
        assert_eq!(gated, want_gated, "I5: gated channels after {op:?}");
    }
}

proptest! {
    // Cases: 256, or PROPTEST_CASES (proptest's default configuration reads it).

    /// I4 and I5 over random sequences with reopens and rewinds: nothing of a gated
    /// or undeclared channel released, each event once per run unless rewound.
    #[test]
    fn i4_i5_store_against_model(ops in prop::collection::vec(op(), 1..=MAX_OPS)) {
        Harness::new().run(&ops);
    }

    /// The same where the region, not one sector, bounds `N`.
    #[test]
    fn i4_i5_store_against_model_region_bounded(ops in prop::collection::vec(op(), 1..=MAX_OPS)) {
        assert!(CONFIG_REGION.region_bounded());
        Harness::with(CONFIG_REGION).run(&ops);
    }
}

/// I5: the sequence the model test is most about, spelled out: a restart while an
/// update is in flight, then the unsafe order (release before the declaration).
#[test]
fn i5_release_before_declaration_releases_no_htlc_event() {
    let claim = Spec {
        channel: 1,
        kind: 0,
        n: 1,
        bad: false,
    };
    let confirmed = Spec { kind: 1, ..claim };
    let ops = [
        Op::NoUpdates,
        Op::Push(claim),
        Op::Begin {
            channel: 1,
            update: 3,
        },
        Op::Push(confirmed),
        Op::Reopen,
        Op::Release,
        Op::Release,
        Op::Restore(vec![(1, 3)]),
        Op::Release,
        Op::Push(Spec {
            kind: 2,
            n: 3,
            ..claim
        }),
        Op::Release,
        Op::Release,
    ];
    let mut h = Harness::new();
    h.run(&ops);
    assert!(
        h.model.released.contains(&0),
        "released after the completion"
    );
}
