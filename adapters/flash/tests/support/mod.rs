//! Shared by the crash, bit-flip and error tests: a model of what the store has
//! promised, and the check of a recovered journal against it.
#![allow(dead_code)]

use monitor_events::journal::{AckMode, Config, Journal};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_flash::sim::SimFlash;
use std::collections::{BTreeMap, BTreeSet};

/// Pending capacity used by the flash tests (W1 keeps 16 pending).
pub const N: usize = 16;
/// W1's largest payload.
pub const MAX_BODY: usize = 120;

/// docs/BENCH.md's geometry, multiwrite or not.
pub fn geometry(mode: AckMode) -> Geometry {
    Geometry {
        multiwrite: mode == AckMode::InPlace,
        ..SimFlash::BENCH_GEOMETRY
    }
}

/// The journal configuration for a mode.
pub fn config(mode: AckMode) -> Config<N> {
    Config::<N>::try_new(geometry(mode), MAX_BODY)
        .unwrap()
        .with_ack_mode(mode)
        .unwrap()
}

/// The three ways a journal runs: in-place acks (multiwrite flash), ack records
/// (one program per unit), ack records with every record and header
/// authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    InPlace,
    Record,
    RecordAuth,
}

impl Flavor {
    pub const ALL: [Flavor; 3] = [Flavor::InPlace, Flavor::Record, Flavor::RecordAuth];

    /// BENCH geometry, multiwrite for in-place acks only.
    pub fn geometry(self) -> Geometry {
        geometry(if self == Flavor::InPlace {
            AckMode::InPlace
        } else {
            AckMode::Record
        })
    }

    /// The journal configuration (`N` = 16, bodies up to [`MAX_BODY`]).
    pub fn config(self) -> Config<N> {
        match self {
            Flavor::InPlace => config(AckMode::InPlace),
            Flavor::Record => config(AckMode::Record),
            Flavor::RecordAuth => config(AckMode::Record)
                .with_auth(monitor_events::journal::Auth::new(
                    [0x42; 32],
                    *b"crash point test",
                ))
                .unwrap(),
        }
    }
}

/// The operation whose call has not returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InFlight {
    /// A push of these bytes.
    Push(Vec<u8>),
    /// An ack of this id.
    Ack(u64),
}

/// What the store has promised: every returned push, every returned ack.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub durable: BTreeMap<u64, Vec<u8>>,
    pub acked: BTreeSet<u64>,
    pub in_flight: Option<InFlight>,
    pub max_id: Option<u64>,
}

impl Model {
    pub fn pushed(&mut self, id: EventId, payload: Vec<u8>) {
        assert!(
            self.max_id.is_none_or(|m| id.0 > m),
            "I3: id {id} not above {:?}",
            self.max_id
        );
        self.max_id = Some(id.0);
        self.durable.insert(id.0, payload);
        self.in_flight = None;
    }

    pub fn acked(&mut self, id: EventId) {
        self.durable.remove(&id.0);
        self.acked.insert(id.0);
        self.in_flight = None;
    }

    /// Adopts what a recovered journal holds once it passed `check` (the in-flight
    /// operation either happened or not).
    pub fn adopt(&mut self, got: &BTreeMap<u64, Vec<u8>>) {
        match self.in_flight.take() {
            Some(InFlight::Ack(id)) if !got.contains_key(&id) => {
                self.durable.remove(&id);
                self.acked.insert(id);
            }
            Some(InFlight::Push(_)) => {
                if let Some((&id, p)) = got.iter().find(|(id, _)| !self.durable.contains_key(id)) {
                    self.durable.insert(id, p.clone());
                    self.max_id = Some(id);
                }
            }
            _ => {}
        }
    }
}

/// Violations found by one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub checked: u64,
    pub lost: u64,
    pub resurrected: u64,
    pub reused: u64,
    pub wrong: u64,
}

impl Counts {
    pub fn add(&mut self, o: Counts) {
        self.checked += o.checked;
        self.lost += o.lost;
        self.resurrected += o.resurrected;
        self.reused += o.reused;
        self.wrong += o.wrong;
    }

    pub fn clean(&self) -> bool {
        self.lost + self.resurrected + self.reused + self.wrong == 0
    }
}

/// Every pending event of a journal with its bytes.
pub fn pending<M: Medium, const K: usize>(j: &mut Journal<M, K>) -> BTreeMap<u64, Vec<u8>> {
    let ids: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
    ids.into_iter()
        .map(|id| {
            let mut buf = [0u8; 4096];
            let n = j.read(id, &mut buf).unwrap();
            (id.0, buf[..n].to_vec())
        })
        .collect()
}

/// Checks a recovered journal against the model: I1 (nothing returned is lost),
/// I2 (no returned ack comes back), I3 (no id is reused), I4 (byte-identical
/// replay; only the in-flight operation may go either way).
pub fn check<M: Medium, const K: usize>(
    model: &Model,
    j: &mut Journal<M, K>,
    what: &str,
) -> (Counts, BTreeMap<u64, Vec<u8>>) {
    let got = pending(j);
    let mut c = Counts {
        checked: 1,
        ..Counts::default()
    };
    for (id, p) in &model.durable {
        match got.get(id) {
            None if model.in_flight == Some(InFlight::Ack(*id)) => {}
            None => c.lost += 1,
            Some(b) if b != p => c.wrong += 1,
            Some(_) => {}
        }
    }
    let mut extra = 0;
    for (id, b) in &got {
        if model.durable.contains_key(id) {
            continue;
        }
        if model.acked.contains(id) {
            c.resurrected += 1;
        } else if matches!(&model.in_flight, Some(InFlight::Push(p)) if p == b)
            && model.max_id.is_none_or(|m| *id > m)
            && extra == 0
        {
            extra += 1;
        } else {
            c.wrong += 1;
        }
    }
    let next = j.next_id().0;
    if model.max_id.is_some_and(|m| next <= m) || model.acked.last().is_some_and(|&a| next <= a) {
        c.reused += 1;
    }
    if !c.clean() {
        eprintln!(
            "{what}: {c:?}\n  model {:?} in flight {:?}\n  got {:?}",
            model.durable.keys(),
            model.in_flight,
            got.keys()
        );
    }
    (c, got)
}
