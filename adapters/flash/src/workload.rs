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

#[cfg(test)]
mod tests {
    use super::*;

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
