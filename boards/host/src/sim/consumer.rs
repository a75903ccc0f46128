//! The consumer of the emulated device: the channel manager on the host. It lives
//! on the other side of the link, so the device's power cuts and restarts do not
//! touch its memory.
//!
//! For each released event it holds the ack in an [`AckBarrier`] until what the
//! event led to is irrevocable, then sends it:
//!
//! | event | the ack waits for |
//! |---|---|
//! | claim of a forward | every inbound HTLC removed upstream (one, or up to three for MPP / trampoline), and the user's `PaymentForwarded` |
//! | failure of a forward | every inbound HTLC failed back upstream |
//! | claim or failure of an outbound payment | the user's `PaymentSent` / `PaymentFailed` |
//! | force-close, commitment confirmed | the user's `ChannelClosed` |
//! | monitor update completed | nothing |
//!
//! Each condition is met after a random delay, so acks come out of id order.

use std::collections::{BTreeSet, HashMap};

use monitor_events::{
    AckBarrier, ChannelId, Condition, EventId, HtlcOutcome, HtlcSource, MonitorEvent,
    MonitorEventSource, PaymentHash,
};

use crate::sim::config::HELD;
use crate::sim::rng::Rng;

/// Counters of the consumer.
#[derive(Clone, Debug, Default)]
pub struct ConsumerStats {
    /// Acks held with at least one condition.
    pub deferred: u64,
    /// Conditions met.
    pub conditions: u64,
    /// Events released again while their ack was still held (after a restart).
    pub already_held: u64,
}

/// The channel manager's side.
#[derive(Debug, Default)]
pub struct Consumer {
    /// Room for every event a store of the largest capacity holds (boxed: about
    /// 120 KiB).
    barrier: Box<AckBarrier<HELD, 4>>,
    /// Conditions still to be met, with the tick they will be met at.
    due: Vec<(u64, Condition)>,
    /// Acks whose conditions are all met but which are not known to be durable: if
    /// the event comes back, it is acked at once.
    ready: BTreeSet<EventId>,
    next_token: u64,
    /// Further inbound HTLCs of forwards, by (channel, payment hash).
    extra_inbound: HashMap<(ChannelId, PaymentHash), Vec<(ChannelId, u64)>>,
    /// What it did.
    pub stats: ConsumerStats,
}

impl Consumer {
    /// A consumer with nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns the further inbound HTLCs of a forward (the channel manager knows
    /// them from its own state, not from the event).
    pub fn note_extra_inbound(&mut self, event: &MonitorEvent, extra: &[(ChannelId, u64)]) {
        if let (MonitorEvent::HtlcResolved(h), false) = (event, extra.is_empty()) {
            self.extra_inbound
                .insert((h.channel, h.payment_hash), extra.to_vec());
        }
    }

    /// Handles a released event: holds its ack until its conditions are met.
    pub fn handle(&mut self, now: u64, rng: &mut Rng, id: EventId, event: &MonitorEvent) {
        let source = MonitorEventSource {
            channel: event.channel(),
            id,
        };
        if self.barrier.is_held(&source) {
            self.stats.already_held += 1;
            return;
        }
        if self.ready.contains(&id) {
            // Its conditions were met before: conditions met before a hold do not
            // count, so it is held with none.
            let _ = self.barrier.hold(source, &[]);
            return;
        }
        let mut conditions: Vec<(Condition, u64)> = Vec::new();
        let user_delay = |rng: &mut Rng| {
            if rng.chance(2, 100) {
                rng.range(30, 120)
            } else {
                rng.range(0, 8)
            }
        };
        match event {
            MonitorEvent::HtlcResolved(h) => match &h.source {
                HtlcSource::Forward {
                    prev_channel,
                    prev_htlc_id,
                } => {
                    let mut inbound = vec![(*prev_channel, *prev_htlc_id)];
                    if let Some(extra) = self.extra_inbound.get(&(h.channel, h.payment_hash)) {
                        inbound.extend_from_slice(extra);
                    }
                    for (channel, htlc_id) in inbound {
                        let delay = rng.range(0, 6);
                        conditions.push((Condition::HtlcRemoved { channel, htlc_id }, delay));
                    }
                    if matches!(h.outcome, HtlcOutcome::Claimed { .. }) {
                        let delay = user_delay(rng);
                        conditions.push((self.token(), delay));
                    }
                }
                HtlcSource::OutboundPayment { .. } => {
                    let delay = user_delay(rng);
                    conditions.push((self.token(), delay));
                }
            },
            MonitorEvent::CommitmentTxConfirmed { .. } | MonitorEvent::HolderForceClosed { .. } => {
                let delay = user_delay(rng);
                conditions.push((self.token(), delay));
            }
            MonitorEvent::UpdateCompleted { .. } => {}
        }
        let only: Vec<Condition> = conditions.iter().map(|(c, _)| *c).collect();
        if self.barrier.hold(source, &only).is_ok() {
            if !only.is_empty() {
                self.stats.deferred += 1;
            }
            self.due
                .extend(conditions.into_iter().map(|(c, delay)| (now + delay, c)));
        }
    }

    fn token(&mut self) -> Condition {
        self.next_token += 1;
        Condition::EventProcessed(self.next_token)
    }

    /// Meets the conditions due by `now` and returns the acks that became ready,
    /// to be sent in this order.
    pub fn advance(&mut self, now: u64) -> Vec<MonitorEventSource> {
        let mut i = 0;
        while i < self.due.len() {
            if self.due[i].0 <= now {
                let (_, c) = self.due.swap_remove(i);
                self.stats.conditions += self.barrier.satisfy(&c) as u64;
            } else {
                i += 1;
            }
        }
        let mut out = Vec::new();
        while let Some(source) = self.barrier.next_ready() {
            self.ready.insert(source.id);
            out.push(source);
        }
        out
    }

    /// The ack of `id` is durable: forget it.
    pub fn forget(&mut self, id: EventId, event: Option<&MonitorEvent>) {
        self.ready.remove(&id);
        if let Some(MonitorEvent::HtlcResolved(h)) = event {
            self.extra_inbound.remove(&(h.channel, h.payment_hash));
        }
    }

    /// Acks held in the barrier.
    pub fn held(&self) -> usize {
        self.barrier.len()
    }
}
