//! The model the emulator checks the store against: what `push` and `ack` returned,
//! kept in plain `BTreeMap`s, and the invariants I1–I5 of docs/INVARIANTS.md checked at
//! every release and after every reopen.
//!
//! Only the operation in flight when power was cut may go either way: a push whose
//! id was never returned may or may not be there after recovery, an ack that did
//! not return may or may not have become durable. Everything else must be exact.

use std::collections::{BTreeMap, BTreeSet};

use monitor_events::{AckOutcome, ChannelId, EventId, MonitorEvent, MonitorEventSource};
use serde::Serialize;

/// The store operation that a power cut interrupted.
#[derive(Clone, Debug)]
pub enum InDoubt {
    /// A push that would have returned `id`.
    Push {
        /// The id the push would have returned.
        id: EventId,
        /// The event.
        event: Box<MonitorEvent>,
    },
    /// An ack.
    Ack(MonitorEventSource),
}

/// How an in-doubt operation turned out after recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Nothing was in doubt.
    Nothing,
    /// The push is durable: the event is pending.
    PushKept,
    /// The push did not happen.
    PushDropped,
    /// The ack is durable.
    AckKept,
    /// The ack did not happen: the event is pending.
    AckDropped,
}

/// Invariant violations, each counted once per id (or per occurrence where no id
/// applies). All must be zero.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Violations {
    /// I1: a returned, un-acked event missing after recovery.
    pub lost: u64,
    /// I2: an acked event pending or released again.
    pub resurrected: u64,
    /// I3: an id returned twice, not above every earlier one, or a next id not above
    /// every returned one.
    pub reused: u64,
    /// I1/I4: a released event that differs from what was pushed.
    pub mismatched: u64,
    /// An event the model never saw (neither returned nor in doubt).
    pub phantom: u64,
    /// I4: released twice in one run.
    pub duplicate_release: u64,
    /// I4: released out of id order, or not released while it could be.
    pub out_of_order: u64,
    /// I5: an HTLC event released while its channel had an in-flight update.
    pub gating: u64,
    /// An ack answered other than the model expects (`Acked` for a pending id,
    /// `AlreadyAcked` for an acked one).
    pub ack_outcome: u64,
    /// The first few violations, in words.
    #[serde(skip)]
    pub details: Vec<String>,
}

impl Violations {
    /// All violations.
    pub fn total(&self) -> u64 {
        self.lost
            + self.resurrected
            + self.reused
            + self.mismatched
            + self.phantom
            + self.duplicate_release
            + self.out_of_order
            + self.gating
            + self.ack_outcome
    }

    fn note(&mut self, what: String) {
        if self.details.len() < 20 {
            self.details.push(what);
        }
    }
}

/// What the store must hold, from what its calls returned.
#[derive(Debug, Default)]
pub struct Model {
    /// Returned by push, not acked.
    pending: BTreeMap<EventId, MonitorEvent>,
    /// Acks that returned `Acked`, or in-doubt acks that turned out durable.
    acked: BTreeSet<EventId>,
    /// Released since the last reopen.
    released: BTreeSet<EventId>,
    /// The highest id the store handed out (returned, or an in-doubt push kept).
    max_id: Option<EventId>,
    /// Ids already reported, so that each counts once.
    lost: BTreeSet<EventId>,
    resurrected: BTreeSet<EventId>,
    /// HTLC events that were held back by an in-flight update at least once.
    held_back: BTreeSet<EventId>,
    /// The violations found.
    pub violations: Violations,
}

impl Model {
    /// An empty model (a blank medium).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of events the model says are pending.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The pending event `id`, if the model has it.
    pub fn event(&self, id: EventId) -> Option<&MonitorEvent> {
        self.pending.get(&id)
    }

    /// Distinct HTLC events that an in-flight update held back at some release.
    pub fn held_back(&self) -> u64 {
        self.held_back.len() as u64
    }

    fn check_fresh_id(&mut self, id: EventId) {
        if self.max_id.is_some_and(|m| id <= m) || self.acked.contains(&id) {
            self.violations.reused += 1;
            self.violations.note(format!(
                "I3: push returned {id}, not above {:?}",
                self.max_id
            ));
        }
        self.max_id = Some(id);
    }

    /// `push` returned `id` for `event` (I3: above every earlier id).
    pub fn on_push(&mut self, id: EventId, event: MonitorEvent) {
        self.check_fresh_id(id);
        self.pending.insert(id, event);
    }

    /// `ack(source)` returned `outcome`.
    pub fn on_ack(&mut self, source: MonitorEventSource, outcome: AckOutcome) {
        let expected = if self.pending.contains_key(&source.id) {
            AckOutcome::Acked
        } else {
            AckOutcome::AlreadyAcked
        };
        if outcome != expected {
            self.violations.ack_outcome += 1;
            self.violations.note(format!(
                "ack of {} answered {outcome:?}, expected {expected:?}",
                source.id
            ));
        }
        if self.pending.remove(&source.id).is_some() {
            self.acked.insert(source.id);
        }
    }

    /// An ack was refused with an error: the model never expects that.
    pub fn on_ack_error(&mut self, source: MonitorEventSource, error: impl std::fmt::Debug) {
        self.violations.ack_outcome += 1;
        self.violations
            .note(format!("ack of {} refused: {error:?}", source.id));
    }

    /// The id `release_next` must return now: the lowest pending id not released in
    /// this run whose event is not an HTLC event of a gated channel (I4, I5).
    fn expected_release(&self, gated: &[ChannelId]) -> Option<EventId> {
        self.pending
            .iter()
            .find(|(id, e)| {
                let held = e.is_htlc() && gated.contains(&e.channel());
                !self.released.contains(id) && !held
            })
            .map(|(id, _)| *id)
    }

    fn note_held_back(&mut self, gated: &[ChannelId]) {
        for (id, e) in &self.pending {
            if !self.released.contains(id) && e.is_htlc() && gated.contains(&e.channel()) {
                self.held_back.insert(*id);
            }
        }
    }

    /// `release_next` returned `(id, event)` while the channels `gated` had
    /// in-flight updates.
    pub fn on_release(&mut self, id: EventId, event: &MonitorEvent, gated: &[ChannelId]) {
        self.note_held_back(gated);
        let expected = self.expected_release(gated);
        if self.acked.contains(&id) {
            if self.resurrected.insert(id) {
                self.violations.resurrected += 1;
                self.violations
                    .note(format!("I2: acked event {id} released again"));
            }
        } else if !self.pending.contains_key(&id) && !self.lost.contains(&id) {
            self.violations.phantom += 1;
            self.violations
                .note(format!("event {id} released but never pushed"));
        }
        if !self.released.insert(id) {
            self.violations.duplicate_release += 1;
            self.violations
                .note(format!("I4: {id} released twice in one run"));
        } else if self.pending.contains_key(&id) && expected != Some(id) {
            self.violations.out_of_order += 1;
            self.violations
                .note(format!("I4: released {id}, expected {expected:?}"));
        }
        if event.is_htlc() && gated.contains(&event.channel()) {
            self.violations.gating += 1;
            self.violations.note(format!(
                "I5: HTLC event {id} released while its channel has an in-flight update"
            ));
        }
        if let Some(pushed) = self.pending.get(&id) {
            if pushed != event {
                self.violations.mismatched += 1;
                self.violations
                    .note(format!("I1: {id} released differs from what was pushed"));
            }
        }
    }

    /// `release_next` returned `None`.
    pub fn on_release_none(&mut self, gated: &[ChannelId]) {
        self.note_held_back(gated);
        if let Some(id) = self.expected_release(gated) {
            self.violations.out_of_order += 1;
            self.violations
                .note(format!("I4: nothing released, but {id} was releasable"));
            // Count it once.
            self.released.insert(id);
        }
    }

    /// The store was reopened and holds `store_pending` (ids, ascending) with next
    /// id `next_id`; `in_doubt` is the operation a power cut interrupted, if any.
    /// Checks I1, I2 and I3 and resolves the in-doubt operation.
    pub fn on_reopen(
        &mut self,
        store_pending: &[EventId],
        next_id: EventId,
        in_doubt: Option<InDoubt>,
    ) -> Resolved {
        let present: BTreeSet<EventId> = store_pending.iter().copied().collect();
        let resolved = match in_doubt {
            None => Resolved::Nothing,
            Some(InDoubt::Push { id, event }) => {
                if present.contains(&id) && !self.pending.contains_key(&id) {
                    self.check_fresh_id(id);
                    self.pending.insert(id, *event);
                    Resolved::PushKept
                } else {
                    Resolved::PushDropped
                }
            }
            Some(InDoubt::Ack(source)) => {
                if self.pending.contains_key(&source.id) && !present.contains(&source.id) {
                    self.pending.remove(&source.id);
                    self.acked.insert(source.id);
                    Resolved::AckKept
                } else {
                    Resolved::AckDropped
                }
            }
        };
        let missing: Vec<EventId> = self
            .pending
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        for id in missing {
            self.pending.remove(&id);
            if self.lost.insert(id) {
                self.violations.lost += 1;
                self.violations
                    .note(format!("I1: pending event {id} lost after recovery"));
            }
        }
        for id in &present {
            if self.pending.contains_key(id) {
                continue;
            }
            if self.acked.contains(id) {
                if self.resurrected.insert(*id) {
                    self.violations.resurrected += 1;
                    self.violations
                        .note(format!("I2: acked event {id} pending after recovery"));
                }
            } else {
                self.violations.phantom += 1;
                self.violations
                    .note(format!("event {id} pending after recovery, never pushed"));
            }
        }
        if self.max_id.is_some_and(|m| next_id <= m) {
            self.violations.reused += 1;
            self.violations.note(format!(
                "I3: next id {next_id} after recovery not above {:?}",
                self.max_id
            ));
        }
        self.released.clear();
        resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(b: u8) -> MonitorEvent {
        MonitorEvent::CommitmentTxConfirmed {
            channel: ChannelId([b; 32]),
        }
    }

    #[test]
    fn the_model_flags_lost_resurrected_and_reused_ids() {
        let mut m = Model::new();
        m.on_push(EventId(0), ev(1));
        m.on_push(EventId(1), ev(2));
        let src = MonitorEventSource {
            channel: ChannelId([1; 32]),
            id: EventId(0),
        };
        m.on_ack(src, AckOutcome::Acked);
        assert_eq!(m.violations.total(), 0);
        // #0 (acked) is back, #1 is gone, next id would reuse #1.
        m.on_reopen(&[EventId(0)], EventId(1), None);
        assert_eq!(m.violations.resurrected, 1);
        assert_eq!(m.violations.lost, 1);
        assert_eq!(m.violations.reused, 1);
        m.on_push(EventId(1), ev(3));
        assert_eq!(m.violations.reused, 2);
    }

    #[test]
    fn in_doubt_operations_may_go_either_way() {
        let mut m = Model::new();
        let r = m.on_reopen(
            &[EventId(0)],
            EventId(1),
            Some(InDoubt::Push {
                id: EventId(0),
                event: Box::new(ev(1)),
            }),
        );
        assert_eq!(r, Resolved::PushKept);
        let src = MonitorEventSource {
            channel: ChannelId([1; 32]),
            id: EventId(0),
        };
        assert_eq!(
            m.on_reopen(&[EventId(0)], EventId(1), Some(InDoubt::Ack(src))),
            Resolved::AckDropped
        );
        assert_eq!(
            m.on_reopen(&[], EventId(1), Some(InDoubt::Ack(src))),
            Resolved::AckKept
        );
        assert_eq!(m.violations.total(), 0, "{:?}", m.violations.details);
    }

    #[test]
    fn release_order_and_gating_are_checked() {
        let mut m = Model::new();
        let gated = ChannelId([1; 32]);
        m.on_push(EventId(0), ev(1));
        m.on_push(EventId(1), ev(2));
        m.on_release(EventId(1), &ev(2), &[]);
        assert_eq!(m.violations.out_of_order, 1);
        m.on_release(EventId(1), &ev(2), &[gated]);
        assert_eq!(m.violations.duplicate_release, 1);
        // Non-HTLC events are never gated: #0 is still due.
        m.on_release_none(&[gated]);
        assert_eq!(m.violations.out_of_order, 2);
    }
}
