//! The force-close scenario: one channel force-closes while the consumer is away.
//!
//! | phase | who | what |
//! |---|---|---|
//! | burst | monitor | the chain resolves the channel's HTLCs (`SimConfig::events`, 483 by default): the device pushes them all, the consumer is away, nothing is released |
//! | peak | device | one clean restart with everything pending: the open the summary reports |
//! | replay | consumer | it comes back and takes the backlog at its pace ([`PACE`] events a tick, from the lowest pending id again after a reopen), holding each ack in its `AckBarrier` until its conditions are met; acks start meanwhile |
//! | acks | consumer | the backlog is all delivered; acks go out as conditions are met, in random order, until nothing is pending |
//!
//! Once the consumer is back and has acked something, the channel manager now
//! and then sends the closed channel a monitor update (a preimage it learned
//! upstream, say): while it is in flight the channel's HTLC events are held back
//! (I5), a reopen declares it again, and its completion is pushed as
//! `UpdateCompleted`. One at a time, after the first ack: the peak stays the
//! burst.
//!
//! Power cuts and clean restarts are spread over the store's writes (pushes and
//! acks, cut or not): a third of the cuts in the burst, a third in the replay and
//! the rest among the acks. Each cut is armed at one of the next 48 medium
//! operations as in the steady scenario, or fewer when cuts are closer than that
//! (a grouped erase is 32 operations). Every reopen checks I1–I3 and declares the
//! in-flight updates; while the consumer is away nothing is released, during the
//! replay a reopen starts it again at the consumer's pace, and once the backlog
//! was delivered a reopen replays everything pending at once, as in the steady
//! scenario (I4 is checked at every release). A push cut in flight that did not
//! become durable is pushed again (the chain still shows the resolution); one
//! that did is not. A store smaller than the burst refuses pushes with `Full`:
//! the rest wait in the monitor's queue until the consumer's acks make room.

use std::collections::VecDeque;

use monitor_events::ChannelId;

use super::{Device, Halt, Pushed, Queued, SimFailure, Update};

/// Events the consumer takes per tick while it catches up (at least, at most):
/// reading the backlog is quick next to the conditions its acks wait for (up to
/// 8 ticks, now and then 120).
const PACE: (u64, u64) = (16, 64);

/// Ticks without a push or an ack before the run counts as stuck.
const STUCK_TICKS: u64 = 100_000;

impl<const N: usize> Device<N> {
    /// Runs the scenario to its end: every event of the burst pushed and acked.
    pub(super) fn force_close(&mut self, progress: &mut impl FnMut(u64)) -> Result<(), Halt> {
        self.present = false;
        let (channel, burst) = self
            .monitor
            .force_close_burst(&mut self.rng, self.cfg.events);
        for p in &burst {
            self.consumer.note_extra_inbound(&p.event, &p.extra_inbound);
        }
        self.outbox = burst
            .into_iter()
            .map(|p| Queued {
                event: p.event,
                not_before: 0,
            })
            .collect::<VecDeque<_>>();
        // Writes: a push and an ack per event; a third of the cuts in the burst,
        // a third in the replay, the rest among the acks.
        let events = self.cfg.events;
        let burst_cuts = self.cfg.cuts / 3;
        let replay_cuts = self.cfg.cuts * 2 / 3;
        let cut_spacing = (events / (burst_cuts + 1)).max(1);
        self.next_cut_at = cut_spacing / 2;
        // The burst, until the store holds it all or is full.
        while !self.outbox.is_empty() {
            if !self.push_next()? {
                break;
            }
            self.maybe_cut(cut_spacing, burst_cuts);
        }
        progress(self.counts.pushed);
        // The device reboots at the peak, the consumer still away.
        let mut restarts = self.cfg.restarts;
        if restarts > 0 {
            self.restart()?;
            self.counts.restarts += 1;
            restarts -= 1;
        }
        // The consumer comes back: the backlog is released at its pace.
        self.present = true;
        self.catching_up = true;
        let cut_spacing = (events / (self.cfg.cuts - burst_cuts + 1)).max(1);
        self.next_cut_at = self.writes + cut_spacing / 2;
        let restart_spacing = (events / (restarts + 1)).max(1);
        self.next_restart_at = self.writes + restart_spacing;
        let mut last = (self.counts.pushed, self.counts.acks, self.now);
        while self.model.pending_count() > 0
            || !self.outbox.is_empty()
            || !self.in_flight.is_empty()
        {
            self.now += 1;
            self.update_closed_channel(channel);
            self.push_queued()?;
            for _ in 0..self.rng.range(PACE.0, PACE.1) {
                if !self.release_one()? {
                    break;
                }
            }
            // Cuts are armed between acks: a tick may send hundreds of them.
            for source in self.consumer.advance(self.now) {
                let budget = if self.catching_up {
                    replay_cuts
                } else {
                    self.cfg.cuts
                };
                self.maybe_cut(cut_spacing, budget);
                if !self.ack(source)? {
                    break;
                }
            }
            if restarts > 0 && self.writes >= self.next_restart_at {
                self.next_restart_at += restart_spacing;
                self.restart()?;
                self.counts.restarts += 1;
                restarts -= 1;
            }
            if (self.counts.pushed, self.counts.acks) != (last.0, last.1) {
                last = (self.counts.pushed, self.counts.acks, self.now);
            } else if self.now - last.2 > STUCK_TICKS {
                return Err(Halt::Failure(SimFailure::Stuck {
                    pushed: self.counts.pushed,
                }));
            }
        }
        progress(self.counts.pushed);
        Ok(())
    }

    /// Completes the closed channel's monitor update when it is due (queueing its
    /// `UpdateCompleted`), and now and then begins the next one once the consumer
    /// acked something and no other is in flight.
    fn update_closed_channel(&mut self, channel: ChannelId) {
        self.complete_due_updates();
        if self.in_flight.is_empty()
            && self.counts.acks > 0
            && self.model.pending_count() > 0
            && self.rng.chance(1, 8)
        {
            let Some(update_id) = self.monitor.next_update_on(channel) else {
                return;
            };
            if self.store.begin_update(channel, update_id).is_ok() {
                self.in_flight.push(Update {
                    channel,
                    update_id,
                    due: self.now + self.rng.range(1, 12),
                });
                self.counts.updates_begun += 1;
            }
        }
    }

    /// Pushes the next queued event; false if the store is full. A push cut in
    /// flight stays queued unless recovery kept it.
    fn push_next(&mut self) -> Result<bool, Halt> {
        let Some(q) = self.outbox.front() else {
            return Ok(true);
        };
        let event = q.event.clone();
        let kept = self.counts.in_doubt_pushes_kept;
        match self.push(event)? {
            Pushed::Yes => {
                self.outbox.pop_front();
            }
            Pushed::InDoubt => {
                if self.counts.in_doubt_pushes_kept > kept {
                    self.outbox.pop_front();
                }
            }
            Pushed::Full => {
                self.counts.full += 1;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Pushes up to two events the monitor still queues (a store smaller than the
    /// burst refused them).
    fn push_queued(&mut self) -> Result<(), Halt> {
        for _ in 0..2 {
            if self.outbox.is_empty() || !self.push_next()? {
                break;
            }
        }
        Ok(())
    }

    /// Arms a power cut at one of the next 48 medium operations (at most
    /// `spacing`) once `spacing` writes (on average) went by since the last,
    /// unless `budget` cuts were armed already.
    fn maybe_cut(&mut self, spacing: u64, budget: u64) {
        if self.may_cut() && self.cuts_armed < budget && self.writes >= self.next_cut_at {
            let k = self.rng.below(spacing.clamp(1, 48));
            self.arm_cut(k);
            self.burst_armed = false;
            self.next_cut_at =
                self.writes + self.rng.range(spacing / 2, spacing + spacing / 2).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::config::SimConfig;
    use crate::sim::run::run;

    /// I1–I4 and I10 in the force-close scenario over seeds: nothing lost,
    /// resurrected or reused, the whole burst pending at once, every event acked,
    /// and cuts in each phase (burst, replay, acks).
    #[test]
    fn force_close_burst_survives_cuts_in_every_phase_over_seeds() {
        let seeds = if cfg!(debug_assertions) { 1 } else { 4 };
        let mut phases = [0u64; 3];
        for seed in 0..seeds {
            let cfg = SimConfig {
                seed,
                ..SimConfig::force_close()
            };
            let s = run(&cfg, |_| {}).expect("runs to its end").summary;
            assert!(s.ok(), "seed {seed}: {}", s.verdict());
            assert_eq!(
                s.events_pushed + s.in_doubt.pushes_kept,
                483 + s.updates_completed
            );
            assert_eq!(s.peak_pending, 483, "seed {seed}");
            assert!(s.updates_completed > 0, "seed {seed}");
            assert!(s.htlc_events_held_back > 0, "I5 exercised, seed {seed}");
            assert_eq!(s.pending_at_end, 0);
            assert_eq!(s.cuts, s.recoveries);
            assert!(s.acks >= 483, "seed {seed}: {} acks", s.acks);
            let p = s.cuts_by_phase.expect("force-close counts phases");
            assert_eq!(p.burst + p.replay + p.acks, s.cuts);
            phases[0] += p.burst;
            phases[1] += p.replay;
            phases[2] += p.acks;
            let open = s.open_most_pending.expect("a clean restart at the peak");
            assert_eq!(open.pending, 483);
        }
        assert!(phases.iter().all(|&n| n > 0), "cuts by phase {phases:?}");
    }

    /// Back-pressure in the force-close scenario: a store of room for 64 takes
    /// the burst in parts, the rest waits in the monitor's queue for acks, and
    /// nothing is lost.
    #[test]
    fn force_close_into_a_smaller_store_waits_for_acks() {
        let cfg = SimConfig {
            pending: 64,
            sector_size: 16 << 10,
            sectors: 8,
            cuts: 20,
            ..SimConfig::force_close()
        };
        let s = run(&cfg, |_| {}).expect("runs").summary;
        assert!(s.ok(), "{}", s.verdict());
        assert_eq!(
            s.events_pushed + s.in_doubt.pushes_kept,
            483 + s.updates_completed
        );
        assert_eq!(s.peak_pending, 64);
        assert!(s.full_refusals > 0);
        assert_eq!(s.pending_at_end, 0);
    }
}
