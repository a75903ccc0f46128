//! The benchmark workloads of docs/BENCH.md, reproducible to the byte: [`Pcg32`],
//! the W1 operation stream ([`W1`]) and a driver for any store ([`run_w1`]).
//!
//! W1 (steady monitor traffic), for id = 0, 1, … `events - 1`:
//!
//! | step | what | randomness consumed |
//! |---|---|---|
//! | 1 | if [`W1_WINDOW`] events are pending, ack one: the oldest, or the pending one at a random index | `below(10)`; if it is 8 or 9, then `below(16)` |
//! | 2 | payload: 48, 120 or 96 B; bytes 0..8 the id (LE), the rest successive `next_u32()` (LE) | `below(10)`, then one `next_u32()` per 4 B |
//! | 3 | push it; after every `reopen_every`-th push, reopen and compare the pending payloads | — |
//!
//! then ack everything oldest first, reopen and check (empty). The FNV-1a 64
//! fingerprint covers, in order, every ack (id LE, then `1` if it was the oldest
//! else `0`) and every pushed payload; the full run gives [`W1_FINGERPRINT`].
//!
//! W2 (a force-close burst, [`run_w2`]; at scale, [`run_w2_scale`]) and W3 (a
//! stuck consumer, [`run_w3`]) drive the same [`W1Store`]s. The W2 drivers call
//! back as each phase begins ([`W2Phase`]) so that a benchmark can measure the
//! push phase, the ack phase and each reopen apart.

use std::collections::{BTreeMap, VecDeque};

pub use crate::rng::{Fnv1a64, Pcg32, PCG32_INCREMENT};

/// W1's seed.
pub const W1_SEED: u64 = 1;
/// Events of a full W1 run.
pub const W1_EVENTS: u64 = 100_000;
/// Pushes between two reopen checks.
pub const W1_REOPEN_EVERY: u64 = 10_000;
/// Pending events W1 keeps: it acks one before each push once this many are pending.
pub const W1_WINDOW: usize = 16;
/// The fingerprint of a full W1 run ([`W1_EVENTS`] events).
pub const W1_FINGERPRINT: u64 = 0xe7dc_8c94_652e_8476;

/// One step of W1, in the order a store must apply them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum W1Op {
    /// Ack the event with W1 id `id`; `oldest` if it is the oldest pending one.
    Ack {
        /// W1 id (the push number, also bytes 0..8 of the payload).
        id: u64,
        /// Whether it is the oldest pending event.
        oldest: bool,
    },
    /// Push `payload`, durable on return.
    Push {
        /// W1 id (the push number, also bytes 0..8 of the payload).
        id: u64,
        /// The event's bytes.
        payload: Vec<u8>,
    },
    /// Drop all RAM state, reopen from the medium and compare the pending payloads
    /// with [`W1::expected_pending`].
    Reopen,
}

/// The W1 operation stream, with its model of what is pending and its fingerprint.
///
/// The model is updated as each operation is yielded, so at a
/// [`W1Op::Reopen`] [`expected_pending`](Self::expected_pending) is exactly what
/// the store must hold.
#[derive(Clone, Debug)]
pub struct W1 {
    rng: Pcg32,
    events: u64,
    reopen_every: u64,
    pushes: u64,
    model: VecDeque<(u64, Vec<u8>)>,
    queued: VecDeque<W1Op>,
    finished: bool,
    fingerprint: Fnv1a64,
    acks: u64,
    payload_bytes: u64,
    reopens: u64,
}

impl W1 {
    /// The stream for `events` pushes with a reopen check after every
    /// `reopen_every`-th push (0: only the final one).
    pub fn new(events: u64, reopen_every: u64) -> Self {
        Self {
            rng: Pcg32::new(W1_SEED),
            events,
            reopen_every,
            pushes: 0,
            model: VecDeque::with_capacity(W1_WINDOW + 1),
            queued: VecDeque::new(),
            finished: false,
            fingerprint: Fnv1a64::new(),
            acks: 0,
            payload_bytes: 0,
            reopens: 0,
        }
    }

    /// The payloads the store must hold now, oldest first, with their W1 ids.
    pub fn expected_pending(&self) -> impl ExactSizeIterator<Item = (u64, &[u8])> {
        self.model.iter().map(|(id, p)| (*id, p.as_slice()))
    }

    /// Totals so far; after the last operation, the run's result.
    pub fn result(&self) -> W1Result {
        W1Result {
            fingerprint: self.fingerprint.value(),
            pushes: self.pushes,
            acks: self.acks,
            payload_bytes: self.payload_bytes,
            reopens: self.reopens,
        }
    }

    fn ack_at(&mut self, index: usize) -> W1Op {
        let (id, _) = self
            .model
            .remove(index)
            .expect("W1: ack index within the window");
        let oldest = index == 0;
        self.fingerprint.update(&id.to_le_bytes());
        self.fingerprint.update(&[u8::from(oldest)]);
        self.acks += 1;
        W1Op::Ack { id, oldest }
    }

    fn reopen(&mut self) -> W1Op {
        self.reopens += 1;
        W1Op::Reopen
    }

    /// Queues the operations of the next event, or of the final phase.
    fn refill(&mut self) {
        if self.pushes < self.events {
            if self.model.len() == W1_WINDOW {
                let index = if self.rng.below(10) < 8 {
                    0
                } else {
                    self.rng.below(W1_WINDOW as u32) as usize
                };
                let op = self.ack_at(index);
                self.queued.push_back(op);
            }
            let id = self.pushes;
            let len = match self.rng.below(10) {
                0..=3 => 48,
                4..=7 => 120,
                _ => 96,
            };
            let mut payload = Vec::with_capacity(len);
            payload.extend_from_slice(&id.to_le_bytes());
            while payload.len() < len {
                payload.extend_from_slice(&self.rng.next_u32().to_le_bytes());
            }
            self.fingerprint.update(&payload);
            self.payload_bytes += len as u64;
            self.pushes += 1;
            self.model.push_back((id, payload.clone()));
            self.queued.push_back(W1Op::Push { id, payload });
            if self.reopen_every != 0 && self.pushes % self.reopen_every == 0 {
                let op = self.reopen();
                self.queued.push_back(op);
            }
        } else if !self.finished {
            self.finished = true;
            while !self.model.is_empty() {
                let op = self.ack_at(0);
                self.queued.push_back(op);
            }
            let op = self.reopen();
            self.queued.push_back(op);
        }
    }
}

impl Iterator for W1 {
    type Item = W1Op;

    fn next(&mut self) -> Option<W1Op> {
        if self.queued.is_empty() {
            self.refill();
        }
        self.queued.pop_front()
    }
}

/// What a W1 run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W1Result {
    /// FNV-1a 64 over the acks and payloads; [`W1_FINGERPRINT`] for a full run.
    pub fingerprint: u64,
    /// Events pushed.
    pub pushes: u64,
    /// Events acked (all of them, by the end).
    pub acks: u64,
    /// Sum of the pushed payloads' lengths.
    pub payload_bytes: u64,
    /// Reopen checks, the final one included.
    pub reopens: u64,
}

impl W1Result {
    /// Mean payload length in bytes.
    pub fn average_payload(&self) -> f64 {
        self.payload_bytes as f64 / self.pushes.max(1) as f64
    }
}

/// A store W1 can drive.
pub trait W1Store {
    /// Makes `payload` durable; returns the store's id for it (any value the store
    /// can later [`ack`](Self::ack) by).
    fn push(&mut self, payload: &[u8]) -> u64;
    /// Acks the event the store named `id` at push; durable on return.
    fn ack(&mut self, id: u64);
    /// Drops all RAM state and opens again from the medium.
    fn reopen(&mut self);
    /// Every un-acked payload, oldest first.
    fn pending(&mut self) -> Vec<Vec<u8>>;
    /// As [`push`](Self::push), but a store that cannot take the event says why
    /// instead of panicking (W3 reports where a store gives up).
    fn try_push(&mut self, payload: &[u8]) -> Result<u64, String> {
        Ok(self.push(payload))
    }
}

/// Drives `store` through W1 with `events` pushes and a reopen check after every
/// `reopen_every`-th push ([`W1_EVENTS`] and [`W1_REOPEN_EVERY`] for the full run).
///
/// # Panics
///
/// If, after a reopen, the store's pending payloads differ from the model's.
pub fn run_w1(store: &mut impl W1Store, events: u64, reopen_every: u64) -> W1Result {
    let mut w1 = W1::new(events, reopen_every);
    let mut store_ids = BTreeMap::new();
    while let Some(op) = w1.next() {
        match op {
            W1Op::Push { id, payload } => {
                store_ids.insert(id, store.push(&payload));
            }
            W1Op::Ack { id, .. } => {
                let store_id = store_ids.remove(&id).expect("W1 acks only pending ids");
                store.ack(store_id);
            }
            W1Op::Reopen => {
                store.reopen();
                check_pending(&w1, &store.pending());
            }
        }
    }
    w1.result()
}

fn check_pending(w1: &W1, got: &[Vec<u8>]) {
    let pushes = w1.result().pushes;
    let expected = w1.expected_pending();
    if expected.len() != got.len() {
        panic!(
            "W1: after the reopen at push {pushes} the store holds {} pending payloads, the model {}",
            got.len(),
            expected.len()
        );
    }
    for (index, ((id, want), have)) in expected.zip(got).enumerate() {
        if want != have.as_slice() {
            panic!(
                "W1: after the reopen at push {pushes}, pending payload {index} (W1 id {id}) differs: \
                 model {want:02x?}, store {have:02x?}"
            );
        }
    }
}

/// W3's seed.
pub const W3_SEED: u64 = 3;
/// Events of a full W3 run (event 0 included).
pub const W3_EVENTS: u64 = 100_000;
/// W3's payload length.
pub const W3_PAYLOAD: usize = 120;

/// What a W3 run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W3Result {
    /// Events the store took: all of them, or the number of the event whose push
    /// it refused.
    pub completed: u64,
    /// Why the store stopped, if it did.
    pub failed: bool,
    /// FNV-1a 64 over every pushed payload and every acked id (LE), in order.
    pub fingerprint: u64,
    /// Sum of the pushed payloads' lengths.
    pub payload_bytes: u64,
}

/// Drives `store` through W3 (docs/BENCH.md: a stuck consumer): event 0 is pushed
/// and never acked; then events 1.. flow with a window of [`W1_WINDOW`] pending
/// besides it (once the window is full, its oldest is acked before each push).
/// Payloads are [`W3_PAYLOAD`] bytes: bytes 0..8 the event number (LE), the rest
/// successive `next_u32()` of PCG32 seeded with [`W3_SEED`] (LE). Reopens and
/// compares the pending payloads every `reopen_every` pushes and at the end.
///
/// Stops at the first push the store refuses ([`W1Store::try_push`]).
///
/// # Panics
///
/// If, after a reopen, the store's pending payloads differ from the model's.
pub fn run_w3(store: &mut impl W1Store, events: u64, reopen_every: u64) -> W3Result {
    let mut rng = Pcg32::new(W3_SEED);
    let mut fnv = Fnv1a64::new();
    let mut payload_bytes = 0;
    let mut window: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut stuck: Option<Vec<u8>> = None;
    for n in 0..events {
        if stuck.is_some() && window.len() == W1_WINDOW {
            let (id, _) = window.pop_front().expect("a full window");
            store.ack(id);
            fnv.update(&id.to_le_bytes());
        }
        let mut payload = n.to_le_bytes().to_vec();
        while payload.len() < W3_PAYLOAD {
            payload.extend_from_slice(&rng.next_u32().to_le_bytes());
        }
        payload.truncate(W3_PAYLOAD);
        let id = match store.try_push(&payload) {
            Ok(id) => id,
            Err(_) => {
                return W3Result {
                    completed: n,
                    failed: true,
                    fingerprint: fnv.value(),
                    payload_bytes,
                }
            }
        };
        fnv.update(&payload);
        payload_bytes += payload.len() as u64;
        if stuck.is_none() {
            stuck = Some(payload);
        } else {
            window.push_back((id, payload));
        }
        if (n + 1) % reopen_every == 0 || n + 1 == events {
            store.reopen();
            let mut want: Vec<&[u8]> = stuck.iter().map(|p| p.as_slice()).collect();
            want.extend(window.iter().map(|(_, p)| p.as_slice()));
            let got = store.pending();
            assert!(
                got.iter().map(|p| p.as_slice()).eq(want.iter().copied()),
                "W3: after the reopen at push {}, the store holds {} pending payloads \
                 that differ from the model's {}",
                n + 1,
                got.len(),
                want.len()
            );
        }
    }
    W3Result {
        completed: events,
        failed: false,
        fingerprint: fnv.value(),
        payload_bytes,
    }
}

/// W2's seed (the burst and the scale rows each start a fresh generator with it).
pub const W2_SEED: u64 = 2;
/// W2's burst: events pending at once (LDK's default `max_accepted_htlcs` of 483,
/// rounded).
pub const W2_EVENTS: usize = 480;
/// W2's burst: payload length.
pub const W2_PAYLOAD: usize = 100;
/// W2 at scale: events pending at once in each round.
pub const W2_SCALE_EVENTS: usize = 4000;
/// W2 at scale: rounds.
pub const W2_SCALE_ROUNDS: u32 = 3;
/// W2 at scale: the shortest payload.
pub const W2_SCALE_MIN_PAYLOAD: usize = 40;
/// W2 at scale: the longest payload.
pub const W2_SCALE_MAX_PAYLOAD: usize = 214;
/// The fingerprint of the W2 burst ([`run_w2`]).
pub const W2_FINGERPRINT: u64 = 0x079d_5181_7ce8_4c9a;

/// What a W2 driver is about to do. [`run_w2`] and [`run_w2_scale`] call their
/// `mark` callback as each phase begins, so that a benchmark can charge the
/// medium's work between two marks to the phase that ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum W2Phase {
    /// Pushes, all pending at once.
    Push,
    /// Acks in random order.
    Ack,
    /// Drop all RAM state and reopen from the medium with `pending` events pending.
    Open {
        /// Events pending at the reopen.
        pending: usize,
    },
    /// Compare the store's pending payloads with the model's (not part of the
    /// workload's cost).
    Check,
    /// The run is over.
    Done,
}

/// What a W2 run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W2Result {
    /// FNV-1a 64 over every pushed payload and every acked id (u64 LE), in the
    /// order they happened.
    pub fingerprint: u64,
    /// Events the store took.
    pub pushes: u64,
    /// Events acked.
    pub acks: u64,
    /// Sum of the pushed payloads' lengths.
    pub payload_bytes: u64,
    /// Whether the store refused a push (the run stopped there: `pushes` is the
    /// number of the refused event).
    pub failed: bool,
}

impl W2Result {
    /// Mean payload length in bytes.
    pub fn average_payload(&self) -> f64 {
        self.payload_bytes as f64 / self.pushes.max(1) as f64
    }
}

/// A W2 payload of `len` bytes: bytes 0..8 are `id` (u64 LE), the rest successive
/// `next_u32()` of `rng` (LE), truncated to `len`.
pub fn w2_payload(rng: &mut Pcg32, id: u64, len: usize) -> Vec<u8> {
    let mut payload = id.to_le_bytes().to_vec();
    while payload.len() < len {
        payload.extend_from_slice(&rng.next_u32().to_le_bytes());
    }
    payload.truncate(len);
    payload
}

/// W2's ack order over `ids`: while the list is not empty, `i = below(len)`, ack
/// `list[i]` and remove it by swap-remove (the last element takes its place).
pub fn w2_ack_order(rng: &mut Pcg32, mut ids: Vec<u64>) -> Vec<u64> {
    let mut order = Vec::with_capacity(ids.len());
    while !ids.is_empty() {
        let i = rng.below(ids.len() as u32) as usize;
        order.push(ids.swap_remove(i));
    }
    order
}

/// The run state shared by the W2 drivers: the model of what is pending (by W2
/// id, which is push order), the store's ids, the fingerprint.
struct W2Run {
    model: BTreeMap<u64, Vec<u8>>,
    store_ids: BTreeMap<u64, u64>,
    fnv: Fnv1a64,
    result: W2Result,
}

impl W2Run {
    fn new() -> Self {
        Self {
            model: BTreeMap::new(),
            store_ids: BTreeMap::new(),
            fnv: Fnv1a64::new(),
            result: W2Result {
                fingerprint: Fnv1a64::new().value(),
                pushes: 0,
                acks: 0,
                payload_bytes: 0,
                failed: false,
            },
        }
    }

    /// Pushes `payload` as W2 id `id`; false if the store refused it.
    fn push(&mut self, store: &mut impl W1Store, id: u64, payload: Vec<u8>) -> bool {
        match store.try_push(&payload) {
            Ok(store_id) => {
                self.fnv.update(&payload);
                self.result.pushes += 1;
                self.result.payload_bytes += payload.len() as u64;
                self.store_ids.insert(id, store_id);
                self.model.insert(id, payload);
                true
            }
            Err(_) => {
                self.result.failed = true;
                false
            }
        }
    }

    fn ack(&mut self, store: &mut impl W1Store, id: u64) {
        let store_id = self
            .store_ids
            .remove(&id)
            .expect("W2 acks only pending ids");
        self.model.remove(&id);
        store.ack(store_id);
        self.fnv.update(&id.to_le_bytes());
        self.result.acks += 1;
    }

    /// Panics unless the store's pending payloads are the model's, oldest first.
    fn check(&self, store: &mut impl W1Store, when: &str) {
        let got = store.pending();
        if got.len() != self.model.len() {
            panic!(
                "W2: {when}, the store holds {} pending payloads, the model {}",
                got.len(),
                self.model.len()
            );
        }
        for ((id, want), have) in self.model.iter().zip(&got) {
            if want != have {
                panic!("W2: {when}, the pending payload of W2 id {id} differs");
            }
        }
    }

    fn finish(mut self) -> W2Result {
        self.result.fingerprint = self.fnv.value();
        self.result
    }
}

/// Drives `store` through W2's burst (docs/BENCH.md): [`W2_EVENTS`] pushes of
/// [`W2_PAYLOAD`] bytes from PCG32 seeded with [`W2_SEED`], all pending at once;
/// then every one acked in [`w2_ack_order`] drawn from the same generator. Between
/// the phases the pending payloads are compared (no reopen: a restart is not part
/// of the burst); at the end the store is reopened and must hold nothing.
///
/// `mark(store, phase)` is called as each phase begins and once at the end
/// ([`W2Phase::Done`]). Stops early, with `failed`, if the store refuses a push.
///
/// # Panics
///
/// If the store's pending payloads differ from the model's.
pub fn run_w2<S: W1Store>(store: &mut S, mut mark: impl FnMut(&mut S, W2Phase)) -> W2Result {
    let mut rng = Pcg32::new(W2_SEED);
    let mut run = W2Run::new();
    mark(store, W2Phase::Push);
    for id in 0..W2_EVENTS as u64 {
        let payload = w2_payload(&mut rng, id, W2_PAYLOAD);
        if !run.push(store, id, payload) {
            mark(store, W2Phase::Done);
            return run.finish();
        }
    }
    mark(store, W2Phase::Check);
    run.check(store, "after the pushes");
    mark(store, W2Phase::Ack);
    for id in w2_ack_order(&mut rng, (0..W2_EVENTS as u64).collect()) {
        run.ack(store, id);
    }
    mark(store, W2Phase::Open { pending: 0 });
    store.reopen();
    mark(store, W2Phase::Check);
    run.check(store, "after the acks and a reopen");
    mark(store, W2Phase::Done);
    run.finish()
}

/// Drives `store` through W2 at scale (docs/BENCH.md): `rounds` rounds of `events`
/// pushes, all pending at once, then acked in random order, with two restarts in
/// each round: one with all `events` pending (after the pushes, before the first
/// ack), one halfway through the acks. A final restart after the last round must
/// find nothing pending.
///
/// One PCG32 seeded with [`W2_SEED`] feeds the whole run, in this order: for each
/// event of a round, its length `W2_SCALE_MIN_PAYLOAD + below(175)` (40..=214 B),
/// then its payload words ([`w2_payload`]; ids count on across rounds); then the
/// round's [`w2_ack_order`] over its ids. After every restart the pending payloads
/// are compared ([`W2Phase::Check`]).
///
/// `mark(store, phase)` is called as each phase begins and once at the end.
/// Stops early, with `failed`, if the store refuses a push.
///
/// # Panics
///
/// If the store's pending payloads differ from the model's.
pub fn run_w2_scale<S: W1Store>(
    store: &mut S,
    events: usize,
    rounds: u32,
    mut mark: impl FnMut(&mut S, W2Phase),
) -> W2Result {
    let span = (W2_SCALE_MAX_PAYLOAD - W2_SCALE_MIN_PAYLOAD + 1) as u32;
    let mut rng = Pcg32::new(W2_SEED);
    let mut run = W2Run::new();
    let mut next_id = 0u64;
    for round in 0..rounds {
        mark(store, W2Phase::Push);
        let first = next_id;
        for _ in 0..events {
            let len = W2_SCALE_MIN_PAYLOAD + rng.below(span) as usize;
            let payload = w2_payload(&mut rng, next_id, len);
            if !run.push(store, next_id, payload) {
                mark(store, W2Phase::Done);
                return run.finish();
            }
            next_id += 1;
        }
        mark(store, W2Phase::Open { pending: events });
        store.reopen();
        mark(store, W2Phase::Check);
        run.check(
            store,
            &format!("round {round}, after the restart with all pending"),
        );
        let order = w2_ack_order(&mut rng, (first..next_id).collect());
        let (early, late) = order.split_at(order.len() / 2);
        mark(store, W2Phase::Ack);
        for &id in early {
            run.ack(store, id);
        }
        mark(
            store,
            W2Phase::Open {
                pending: late.len(),
            },
        );
        store.reopen();
        mark(store, W2Phase::Check);
        run.check(store, &format!("round {round}, after the restart halfway"));
        mark(store, W2Phase::Ack);
        for &id in late {
            run.ack(store, id);
        }
    }
    mark(store, W2Phase::Open { pending: 0 });
    store.reopen();
    mark(store, W2Phase::Check);
    run.check(store, "after the last round and a restart");
    mark(store, W2Phase::Done);
    run.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that refuses its push once it holds `.1` events (W1's
    /// `InRam` otherwise).
    struct Refuses(InRam, u64);

    impl W1Store for Refuses {
        fn push(&mut self, p: &[u8]) -> u64 {
            self.0.push(p)
        }
        fn ack(&mut self, id: u64) {
            self.0.ack(id)
        }
        fn reopen(&mut self) {}
        fn pending(&mut self) -> Vec<Vec<u8>> {
            self.0.pending()
        }
        fn try_push(&mut self, p: &[u8]) -> Result<u64, String> {
            if self.0 .1 == self.1 {
                return Err("full".into());
            }
            Ok(self.push(p))
        }
    }

    /// W3 against the plain model: it runs to the end, keeps event 0, and a store
    /// that refuses a push is reported at that event.
    #[test]
    fn w3_runs_on_the_model_and_reports_a_refusal() {
        let mut model = InRam::default();
        let r = run_w3(&mut model, 2_000, 500);
        assert_eq!((r.completed, r.failed), (2_000, false));
        assert_eq!(r.payload_bytes, 2_000 * W3_PAYLOAD as u64);
        assert_eq!(model.0.len(), 1 + W1_WINDOW);
        assert_eq!(model.0[0].1[..8], 0u64.to_le_bytes());
        // The same stream again gives the same fingerprint; a refusing store stops.
        assert_eq!(
            run_w3(&mut InRam::default(), 2_000, 500).fingerprint,
            r.fingerprint
        );
        let r = run_w3(&mut Refuses(InRam::default(), 700), 2_000, 500);
        assert_eq!((r.completed, r.failed), (700, true));
    }

    /// The plain model: a list in RAM; ids are W1's.
    #[derive(Default)]
    struct InRam(Vec<(u64, Vec<u8>)>, u64);

    impl W1Store for InRam {
        fn push(&mut self, payload: &[u8]) -> u64 {
            self.1 += 1;
            self.0.push((self.1, payload.to_vec()));
            self.1
        }
        fn ack(&mut self, id: u64) {
            let at = self
                .0
                .iter()
                .position(|(i, _)| *i == id)
                .expect("pending id");
            self.0.remove(at);
        }
        fn reopen(&mut self) {}
        fn pending(&mut self) -> Vec<Vec<u8>> {
            self.0.iter().map(|(_, p)| p.clone()).collect()
        }
    }

    #[test]
    fn the_model_gives_w1s_fingerprint() {
        let r = run_w1(&mut InRam::default(), W1_EVENTS, W1_REOPEN_EVERY);
        assert_eq!(
            r.fingerprint, W1_FINGERPRINT,
            "fingerprint {:#018x}",
            r.fingerprint
        );
        assert_eq!(r.pushes, W1_EVENTS);
        assert_eq!(r.acks, W1_EVENTS);
        assert_eq!(r.reopens, W1_EVENTS / W1_REOPEN_EVERY + 1);
        assert_eq!(format!("{:.1}", r.average_payload()), "86.3");
    }

    #[test]
    fn reopens_do_not_change_the_stream() {
        let a = run_w1(&mut InRam::default(), 5_000, 0);
        let b = run_w1(&mut InRam::default(), 5_000, 7);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.payload_bytes, b.payload_bytes);
        assert_eq!(b.reopens, 5_000 / 7 + 1);
    }

    #[test]
    fn stream_shape() {
        let mut pending = 0usize;
        let mut last_push = None;
        for op in W1::new(2_000, 500) {
            match op {
                W1Op::Push { id, payload } => {
                    assert_eq!(payload[..8], id.to_le_bytes());
                    assert!([48, 96, 120].contains(&payload.len()));
                    assert_eq!(last_push.map_or(0, |l| l + 1), id);
                    last_push = Some(id);
                    pending += 1;
                    assert!(pending <= W1_WINDOW);
                }
                W1Op::Ack { .. } => pending -= 1,
                W1Op::Reopen => {}
            }
        }
        assert_eq!(pending, 0);
    }

    #[test]
    #[should_panic(expected = "pending payload 3 (W1 id 3) differs")]
    fn a_store_that_loses_a_byte_is_caught() {
        struct Lossy(InRam);
        impl W1Store for Lossy {
            fn push(&mut self, payload: &[u8]) -> u64 {
                self.0.push(payload)
            }
            fn ack(&mut self, id: u64) {
                self.0.ack(id)
            }
            fn reopen(&mut self) {
                self.0 .0[3].1[20] ^= 1;
            }
            fn pending(&mut self) -> Vec<Vec<u8>> {
                self.0.pending()
            }
        }
        run_w1(&mut Lossy(InRam::default()), 10, 10);
    }

    /// The plain model that also records what a W2 driver did: every phase, and
    /// what was pending at each reopen.
    #[derive(Default)]
    struct Traced {
        store: InRam,
        phases: Vec<W2Phase>,
        pending_at_reopen: Vec<usize>,
    }

    impl W1Store for Traced {
        fn push(&mut self, payload: &[u8]) -> u64 {
            self.store.push(payload)
        }
        fn ack(&mut self, id: u64) {
            self.store.ack(id)
        }
        fn reopen(&mut self) {
            self.pending_at_reopen.push(self.store.0.len());
        }
        fn pending(&mut self) -> Vec<Vec<u8>> {
            self.store.pending()
        }
    }

    /// W2's burst on the plain model: 480 pushes of 100 B, ids in bytes 0..8, all
    /// pending at once, then every one acked; the phases come in the documented
    /// order and the fingerprint is the one docs/BENCH.md quotes.
    #[test]
    fn w2_burst_on_the_model_gives_its_fingerprint() {
        let mut t = Traced::default();
        let mut peak = 0;
        let r = run_w2(&mut t, |t, phase| {
            peak = peak.max(t.store.0.len());
            t.phases.push(phase);
        });
        assert_eq!(
            r.fingerprint, W2_FINGERPRINT,
            "fingerprint {:#018x}",
            r.fingerprint
        );
        assert_eq!((r.pushes, r.acks, r.failed), (480, 480, false));
        assert_eq!(r.payload_bytes, 480 * 100);
        assert_eq!(peak, W2_EVENTS);
        assert_eq!(
            t.phases,
            [
                W2Phase::Push,
                W2Phase::Check,
                W2Phase::Ack,
                W2Phase::Open { pending: 0 },
                W2Phase::Check,
                W2Phase::Done
            ]
        );
        assert_eq!(t.pending_at_reopen, [0]);
        assert!(t.store.0.is_empty());
        // The first payload: its id, then the generator's words.
        let mut rng = Pcg32::new(W2_SEED);
        let p = w2_payload(&mut rng, 0, W2_PAYLOAD);
        assert_eq!(p[..8], [0; 8]);
        let mut again = Pcg32::new(W2_SEED);
        assert_eq!(p[8..12], again.next_u32().to_le_bytes());
        assert_eq!(p.len(), 100);
    }

    /// The ack order is a permutation drawn by swap-remove: the first pick is
    /// `below(n)`, the second `below(n - 1)` over a list whose picked slot now
    /// holds the last id.
    #[test]
    fn w2_ack_order_is_a_swap_remove_permutation() {
        for seed in 0..50 {
            for n in [1u64, 2, 3, 17, 480] {
                let mut rng = Pcg32::new(seed);
                let mut shadow = rng.clone();
                let order = w2_ack_order(&mut rng, (100..100 + n).collect());
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (100..100 + n).collect::<Vec<_>>());
                let i0 = u64::from(shadow.below(n as u32));
                assert_eq!(order[0], 100 + i0);
                if n > 1 {
                    let i1 = u64::from(shadow.below(n as u32 - 1));
                    let want = if i1 == i0 { 100 + n - 1 } else { 100 + i1 };
                    assert_eq!(order[1], want, "seed {seed}, n {n}");
                }
                // Nothing else is drawn.
                assert_eq!(rng, {
                    let mut s = Pcg32::new(seed);
                    (1..=n).rev().for_each(|len| {
                        s.below(len as u32);
                    });
                    s
                });
            }
        }
    }

    /// W2 at scale on the plain model: every round's events are all pending at
    /// the first restart, half at the second; lengths stay within 40..=214 B and
    /// reach both ends; ids count on across rounds; the same run gives the same
    /// fingerprint.
    #[test]
    fn w2_scale_stream_shape() {
        let mut t = Traced::default();
        let mut lengths = Vec::new();
        let r = run_w2_scale(&mut t, 1_000, 3, |t, phase| {
            if phase == W2Phase::Check && t.phases.last() == Some(&W2Phase::Open { pending: 1_000 })
            {
                lengths.extend(t.store.0.iter().map(|(_, p)| p.len()));
                let ids: Vec<u64> = t
                    .store
                    .0
                    .iter()
                    .map(|(_, p)| u64::from_le_bytes(p[..8].try_into().unwrap()))
                    .collect();
                let first = ids[0];
                assert!(ids.iter().copied().eq(first..first + 1_000));
            }
            t.phases.push(phase);
        });
        assert_eq!((r.pushes, r.acks, r.failed), (3_000, 3_000, false));
        assert_eq!(t.pending_at_reopen, [1_000, 500, 1_000, 500, 1_000, 500, 0]);
        assert_eq!(lengths.len(), 3_000);
        assert_eq!(lengths.iter().min(), Some(&W2_SCALE_MIN_PAYLOAD));
        assert_eq!(lengths.iter().max(), Some(&W2_SCALE_MAX_PAYLOAD));
        assert_eq!(r.payload_bytes, lengths.iter().sum::<usize>() as u64);
        assert_eq!(
            t.phases.iter().filter(|p| **p == W2Phase::Ack).count(),
            6,
            "two ack phases per round"
        );
        assert_eq!(t.phases.last(), Some(&W2Phase::Done));
        let again = run_w2_scale(&mut InRam::default(), 1_000, 3, |_, _| {});
        assert_eq!(again, r);
        assert_ne!(r.fingerprint, W2_FINGERPRINT);
    }

    /// A store that refuses a push stops either W2 driver at that event, with
    /// `failed`, and the run still ends with `Done`.
    #[test]
    fn w2_reports_a_refused_push() {
        let mut last = None;
        let r = run_w2(&mut Refuses(InRam::default(), 300), |_, p| last = Some(p));
        assert_eq!((r.pushes, r.acks, r.failed), (300, 0, true));
        assert_eq!(last, Some(W2Phase::Done));
        let r = run_w2_scale(&mut Refuses(InRam::default(), 1_500), 1_000, 3, |_, _| {});
        assert_eq!((r.pushes, r.acks, r.failed), (1_500, 1_000, true));
    }

    /// A store that loses one pending event at a restart is caught by W2 at scale.
    #[test]
    #[should_panic(expected = "after the restart halfway")]
    fn w2_scale_catches_a_lost_event() {
        struct Forgets(InRam, u32);
        impl W1Store for Forgets {
            fn push(&mut self, p: &[u8]) -> u64 {
                self.0.push(p)
            }
            fn ack(&mut self, id: u64) {
                self.0.ack(id)
            }
            fn reopen(&mut self) {
                self.1 += 1;
                if self.1 == 2 {
                    self.0 .0.pop();
                }
            }
            fn pending(&mut self) -> Vec<Vec<u8>> {
                self.0.pending()
            }
        }
        run_w2_scale(&mut Forgets(InRam::default(), 0), 200, 1, |_, _| {});
    }
}
