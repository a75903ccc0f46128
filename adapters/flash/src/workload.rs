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

#[cfg(test)]
mod tests {
    use super::*;

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
}
