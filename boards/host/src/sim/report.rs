//! What `simulate` counts and how it reports it: a text table or one JSON object.

use std::fmt::Write as _;

use monitor_events::{AckMode, HtlcOutcome, MonitorEvent};
use monitor_events_flash::sim::Stats;
use serde::Serialize;

use crate::sim::config::{SimConfig, PENDING};
use crate::sim::consumer::ConsumerStats;
use crate::sim::model::{Model, Violations};

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Pushes that returned an id.
    pub pushed: u64,
    /// Encoded bytes of those events.
    pub event_bytes: u64,
    /// Claims pushed.
    pub claims: u64,
    /// Failures pushed.
    pub failures: u64,
    /// `CommitmentTxConfirmed` pushed.
    pub commitments: u64,
    /// `HolderForceClosed` pushed.
    pub force_closes: u64,
    /// `UpdateCompleted` pushed.
    pub updates: u64,
    /// Events released.
    pub releases: u64,
    /// Of which in the replay right after a reopen.
    pub replayed: u64,
    /// Acks that returned (plus in-doubt acks that turned out durable).
    pub acks: u64,
    /// Acks sent a second time.
    pub repeat_acks: u64,
    /// `begin_update` calls.
    pub updates_begun: u64,
    /// `complete_update` calls.
    pub updates_completed: u64,
    /// Pushes refused with `Full`.
    pub full: u64,
    /// Power cuts that fired.
    pub cuts: u64,
    /// Cuts armed right after a recovery.
    pub consecutive_cuts: u64,
    /// Brown-out cuts that fired (each the next of a burst).
    pub brownout_cuts: u64,
    /// Most cuts in a row before a push or ack completed.
    pub max_cuts_in_a_row: u32,
    /// Reopens after a cut.
    pub recoveries: u64,
    /// Clean restarts.
    pub restarts: u64,
    /// Pushes cut in flight that turned out durable.
    pub in_doubt_pushes_kept: u64,
    /// Pushes cut in flight that did not happen.
    pub in_doubt_pushes_dropped: u64,
    /// Acks cut in flight that turned out durable.
    pub in_doubt_acks_kept: u64,
    /// Acks cut in flight that did not happen.
    pub in_doubt_acks_dropped: u64,
    /// Pushes or acks that panicked with something other than a power cut: the
    /// store is bricked (I10). The run stops at the first.
    pub bricked: u64,
    /// Opens that returned an error after a cut or a restart (I10). The run stops
    /// at the first.
    pub open_failures: u64,
    /// Why the run stopped early, in words.
    pub halt: Option<String>,
}

impl Counts {
    /// Counts a pushed event of `len` encoded bytes.
    pub fn count_event(&mut self, event: &MonitorEvent, len: u64) {
        self.pushed += 1;
        self.event_bytes += len;
        match event {
            MonitorEvent::HtlcResolved(h) => match h.outcome {
                HtlcOutcome::Claimed { .. } => self.claims += 1,
                HtlcOutcome::Failed { .. } => self.failures += 1,
            },
            MonitorEvent::CommitmentTxConfirmed { .. } => self.commitments += 1,
            MonitorEvent::HolderForceClosed { .. } => self.force_closes += 1,
            MonitorEvent::UpdateCompleted { .. } => self.updates += 1,
        }
    }
}

/// The state at the end of a run.
#[derive(Clone, Copy, Debug)]
pub struct EndState {
    /// Events pending in the store.
    pub pending: usize,
    /// The store's next id.
    pub next_id: u64,
    /// Acks the consumer still holds.
    pub acks_held: usize,
    /// Host time of the run.
    pub elapsed_s: f64,
}

/// The flash of the run.
#[derive(Clone, Debug, Serialize)]
pub struct FlashInfo {
    /// Bytes per sector.
    pub sector_size: u32,
    /// Sectors.
    pub sector_count: u32,
    /// Program unit in bytes.
    pub write_size: u32,
    /// Whether a unit may be programmed twice.
    pub multiwrite: bool,
}

/// Events pushed, by kind.
#[derive(Clone, Debug, Serialize)]
pub struct EventMix {
    /// HTLC claims.
    pub htlc_claimed: u64,
    /// HTLC failures.
    pub htlc_failed: u64,
    /// Commitment transactions confirmed.
    pub commitment_tx_confirmed: u64,
    /// Holder force-closes.
    pub holder_force_closed: u64,
    /// Monitor updates completed.
    pub update_completed: u64,
    /// Mean encoded size of an event in bytes.
    pub mean_event_bytes: f64,
}

/// Operations that a power cut interrupted, and how recovery decided them.
#[derive(Clone, Debug, Serialize)]
pub struct InDoubtCounts {
    /// Pushes that turned out durable.
    pub pushes_kept: u64,
    /// Pushes that did not happen.
    pub pushes_dropped: u64,
    /// Acks that turned out durable.
    pub acks_kept: u64,
    /// Acks that did not happen (the event came back and was acked again).
    pub acks_dropped: u64,
}

/// Everything `simulate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Device-time profile.
    pub profile: String,
    /// Seed.
    pub seed: u64,
    /// `in-place` or `record`.
    pub ack_mode: String,
    /// Whether records carry HMAC tags (an authenticated journal).
    pub auth: bool,
    /// Percent chance that a cut is followed by another within a few operations of
    /// the restart (0: no brown-outs).
    pub brownout_percent: u32,
    /// The flash.
    pub flash: FlashInfo,
    /// Pending events the store holds at most.
    pub capacity: usize,
    /// Pushes that returned an id.
    pub events_pushed: u64,
    /// By kind.
    pub events: EventMix,
    /// Events released to the consumer.
    pub releases: u64,
    /// Of which in the replay after a reopen.
    pub replayed: u64,
    /// Acks made durable.
    pub acks: u64,
    /// Acks the barrier held for at least one condition.
    pub deferred_acks: u64,
    /// Barrier conditions met.
    pub conditions_met: u64,
    /// Acks repeated (answered `AlreadyAcked`).
    pub repeat_acks: u64,
    /// Monitor updates begun.
    pub updates_begun: u64,
    /// Monitor updates completed.
    pub updates_completed: u64,
    /// Distinct HTLC events held back by an in-flight update.
    pub htlc_events_held_back: u64,
    /// Pushes refused because N events were pending.
    pub full_refusals: u64,
    /// Power cuts.
    pub cuts: u64,
    /// Of which armed right after a recovery.
    pub consecutive_cuts: u64,
    /// Of which brown-out cuts (the next of a burst) that fired.
    pub brownout_cuts: u64,
    /// Most cuts in a row before a push or ack completed.
    pub max_cuts_in_a_row: u32,
    /// Reopens after a cut.
    pub recoveries: u64,
    /// Clean restarts (plus the final one).
    pub restarts: u64,
    /// Operations in flight at a cut.
    pub in_doubt: InDoubtCounts,
    /// I1 violations.
    pub lost_ids: u64,
    /// I2 violations.
    pub resurrected_ids: u64,
    /// I3 violations.
    pub reused_ids: u64,
    /// I10: pushes or acks that panicked with something other than a power cut
    /// (the run stops at the first).
    pub bricked: u64,
    /// I10: opens that returned an error (the run stops at the first).
    pub open_failures: u64,
    /// Why the run stopped before its last event, if it did.
    pub halted: Option<String>,
    /// All violations.
    pub violations: u64,
    /// All violations, by kind.
    pub violation_counts: Violations,
    /// Events pending at the end.
    pub pending_at_end: usize,
    /// The next id at the end.
    pub next_id: u64,
    /// Acks the consumer still holds at the end.
    pub acks_held_at_end: usize,
    /// Device time under the profile, total.
    pub device_ms_total: f64,
    /// Device time per pushed event.
    pub device_ms_per_event: f64,
    /// Sector erases.
    pub erases: u64,
    /// Erases per 1000 pushed events.
    pub erases_per_1000_events: f64,
    /// Bytes programmed.
    pub bytes_programmed: u64,
    /// Bytes programmed per pushed event.
    pub bytes_programmed_per_event: f64,
    /// Program operations.
    pub program_ops: u64,
    /// Erases of each sector.
    pub wear: Vec<u64>,
    /// Erases of the most erased sector.
    pub wear_max: u64,
    /// Mean erases per sector.
    pub wear_mean: f64,
    /// Host time of the run in seconds.
    pub elapsed_s: f64,
    /// `ok`, or `FAILED` if a violation, a bricked store or an open failure was
    /// found.
    pub result: String,
}

/// `x` rounded to `digits` decimals (for stable JSON).
fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

impl Summary {
    /// Gathers the summary.
    pub fn new(
        cfg: &SimConfig,
        stats: &Stats,
        c: &Counts,
        model: &Model,
        consumer: &ConsumerStats,
        end: EndState,
    ) -> Self {
        let g = cfg.geometry();
        let events = c.pushed.max(1) as f64;
        let device_us = stats.device_us(cfg.profile);
        let v = &model.violations;
        Summary {
            profile: cfg.profile.name().to_owned(),
            seed: cfg.seed,
            ack_mode: match cfg.ack_mode {
                AckMode::InPlace => "in-place",
                AckMode::Record => "record",
            }
            .to_owned(),
            auth: cfg.auth,
            brownout_percent: cfg.brownout,
            flash: FlashInfo {
                sector_size: g.sector_size,
                sector_count: g.sector_count,
                write_size: g.write_size,
                multiwrite: g.multiwrite,
            },
            capacity: PENDING,
            events_pushed: c.pushed,
            events: EventMix {
                htlc_claimed: c.claims,
                htlc_failed: c.failures,
                commitment_tx_confirmed: c.commitments,
                holder_force_closed: c.force_closes,
                update_completed: c.updates,
                mean_event_bytes: round(c.event_bytes as f64 / events, 1),
            },
            releases: c.releases,
            replayed: c.replayed,
            acks: c.acks,
            deferred_acks: consumer.deferred,
            conditions_met: consumer.conditions,
            repeat_acks: c.repeat_acks,
            updates_begun: c.updates_begun,
            updates_completed: c.updates_completed,
            htlc_events_held_back: model.held_back(),
            full_refusals: c.full,
            cuts: c.cuts,
            consecutive_cuts: c.consecutive_cuts,
            brownout_cuts: c.brownout_cuts,
            max_cuts_in_a_row: c.max_cuts_in_a_row,
            recoveries: c.recoveries,
            restarts: c.restarts + 1,
            in_doubt: InDoubtCounts {
                pushes_kept: c.in_doubt_pushes_kept,
                pushes_dropped: c.in_doubt_pushes_dropped,
                acks_kept: c.in_doubt_acks_kept,
                acks_dropped: c.in_doubt_acks_dropped,
            },
            lost_ids: v.lost,
            resurrected_ids: v.resurrected,
            reused_ids: v.reused,
            bricked: c.bricked,
            open_failures: c.open_failures,
            halted: c.halt.clone(),
            violations: v.total(),
            violation_counts: v.clone(),
            pending_at_end: end.pending,
            next_id: end.next_id,
            acks_held_at_end: end.acks_held,
            device_ms_total: round(device_us / 1000.0, 1),
            device_ms_per_event: round(device_us / 1000.0 / events, 3),
            erases: stats.erases,
            erases_per_1000_events: round(stats.erases as f64 * 1000.0 / events, 2),
            bytes_programmed: stats.bytes_programmed,
            bytes_programmed_per_event: round(stats.bytes_programmed as f64 / events, 1),
            program_ops: stats.program_ops,
            wear: stats.sector_erases.clone(),
            wear_max: stats.max_sector_erases(),
            wear_mean: round(stats.mean_sector_erases(), 2),
            elapsed_s: round(end.elapsed_s, 2),
            result: if v.total() + c.bricked + c.open_failures == 0 {
                "ok"
            } else {
                "FAILED"
            }
            .to_owned(),
        }
    }

    /// Whether the run passed: no violation, no bricked store, no open failure.
    pub fn ok(&self) -> bool {
        self.violations == 0 && self.bricked == 0 && self.open_failures == 0
    }

    /// The verdict line that ends the table.
    pub fn verdict(&self) -> String {
        let what = format!(
            "{} events, {} power cuts, {:.1} s",
            self.events_pushed, self.cuts, self.elapsed_s
        );
        if self.ok() {
            format!("result: ok, 0 violations ({what})")
        } else {
            format!(
                "result: FAILED, {} violations, {} bricked, {} open failures ({what})",
                self.violations, self.bricked, self.open_failures
            )
        }
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let f = &self.flash;
        let e = &self.events;
        let d = &self.in_doubt;
        let v = &self.violation_counts;
        let row = |o: &mut String, name: &str, value: String, note: String| {
            let _ = if note.is_empty() {
                writeln!(o, "  {name:<28}{value:>10}")
            } else {
                writeln!(o, "  {name:<28}{value:>10}   {note}")
            };
        };
        let _ = writeln!(
            o,
            "monitor-events simulate: seed {}, profile {}, {} acks{}{}",
            self.seed,
            self.profile,
            self.ack_mode,
            if self.auth { ", authenticated" } else { "" },
            if self.brownout_percent > 0 {
                format!(", brown-outs {} %", self.brownout_percent)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            o,
            "flash: {} sectors x {} B, {} B program unit, {}; room for {} pending events\n",
            f.sector_count,
            f.sector_size,
            f.write_size,
            if f.multiwrite {
                "multiwrite"
            } else {
                "one program per unit (ECC flash)"
            },
            self.capacity
        );
        let _ = writeln!(o, "workload");
        row(
            &mut o,
            "events pushed",
            self.events_pushed.to_string(),
            format!(
                "claims {}, failures {}, updates completed {}, force-closes {}, commitments confirmed {}; mean {} B",
                e.htlc_claimed,
                e.htlc_failed,
                e.update_completed,
                e.holder_force_closed,
                e.commitment_tx_confirmed,
                e.mean_event_bytes
            ),
        );
        row(
            &mut o,
            "events released",
            self.releases.to_string(),
            format!("{} of them replayed after a reopen", self.replayed),
        );
        row(
            &mut o,
            "acks",
            self.acks.to_string(),
            format!(
                "{} deferred by the ack barrier ({} conditions met), {} repeated",
                self.deferred_acks, self.conditions_met, self.repeat_acks
            ),
        );
        row(
            &mut o,
            "monitor updates",
            self.updates_begun.to_string(),
            format!(
                "{} completed; {} HTLC events held back while in flight",
                self.updates_completed, self.htlc_events_held_back
            ),
        );
        row(
            &mut o,
            "pushes refused (full)",
            self.full_refusals.to_string(),
            "retried after acks".into(),
        );
        row(
            &mut o,
            "pending at the end",
            self.pending_at_end.to_string(),
            format!(
                "next id {}, {} acks held",
                self.next_id, self.acks_held_at_end
            ),
        );
        let _ = writeln!(o, "faults");
        let burst = if self.brownout_percent > 0 {
            format!(
                "{} of them in brown-out bursts (within {} operations of the restart)",
                self.brownout_cuts,
                crate::sim::config::BROWNOUT_WINDOW
            )
        } else {
            format!("{} right after a recovery", self.consecutive_cuts)
        };
        row(
            &mut o,
            "power cuts",
            self.cuts.to_string(),
            format!(
                "{burst}; up to {} in a row before a write completed",
                self.max_cuts_in_a_row
            ),
        );
        row(
            &mut o,
            "recoveries",
            self.recoveries.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "clean restarts",
            self.restarts.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "pushes cut in flight",
            (d.pushes_kept + d.pushes_dropped).to_string(),
            format!("{} durable, {} not", d.pushes_kept, d.pushes_dropped),
        );
        row(
            &mut o,
            "acks cut in flight",
            (d.acks_kept + d.acks_dropped).to_string(),
            format!("{} durable, {} not", d.acks_kept, d.acks_dropped),
        );
        let _ = writeln!(o, "invariants");
        row(
            &mut o,
            "lost ids (I1)",
            self.lost_ids.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "resurrected ids (I2)",
            self.resurrected_ids.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "reused ids (I3)",
            self.reused_ids.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "replay violations (I4)",
            (v.duplicate_release + v.out_of_order + v.mismatched).to_string(),
            String::new(),
        );
        row(
            &mut o,
            "gating violations (I5)",
            v.gating.to_string(),
            String::new(),
        );
        row(
            &mut o,
            "other violations",
            (v.phantom + v.ack_outcome).to_string(),
            String::new(),
        );
        let halted = self.halted.clone().unwrap_or_default();
        row(
            &mut o,
            "bricked (I10)",
            self.bricked.to_string(),
            if self.bricked > 0 {
                halted.clone()
            } else {
                String::new()
            },
        );
        row(
            &mut o,
            "open failures (I10)",
            self.open_failures.to_string(),
            if self.open_failures > 0 {
                halted
            } else {
                String::new()
            },
        );
        let _ = writeln!(o, "flash cost ({})", self.profile);
        row(
            &mut o,
            "device ms per event",
            format!("{:.3}", self.device_ms_per_event),
            format!(
                "{:.1} s of device time in all",
                self.device_ms_total / 1000.0
            ),
        );
        row(
            &mut o,
            "erases",
            self.erases.to_string(),
            format!("{:.2} per 1000 events", self.erases_per_1000_events),
        );
        row(
            &mut o,
            "bytes programmed per event",
            format!("{:.1}", self.bytes_programmed_per_event),
            format!("{} program operations", self.program_ops),
        );
        let _ = writeln!(
            o,
            "wear (erases per sector; max {}, mean {:.1})",
            self.wear_max, self.wear_mean
        );
        o.push_str(&wear_chart(&self.wear, 40));
        o
    }
}

/// A text bar chart of erases per sector, bars up to `width` characters.
pub fn wear_chart(wear: &[u64], width: usize) -> String {
    let max = wear.iter().copied().max().unwrap_or(0).max(1);
    let mut o = String::new();
    for (i, &n) in wear.iter().enumerate() {
        let len = ((n as f64 / max as f64) * width as f64).round() as usize;
        let _ = writeln!(o, "  {i:>3} |{:<width$}| {n}", "#".repeat(len));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::SimConfig;
    use crate::sim::run::run;

    /// I10 is part of the verdict: a bricked store or an open failure fails the
    /// run even without an invariant violation.
    #[test]
    fn i10_bricked_or_open_failure_fails_the_verdict() {
        let cfg = SimConfig {
            events: 200,
            cuts: 10,
            restarts: 2,
            ..SimConfig::default()
        };
        let clean = run(&cfg, |_| {}).expect("a small run").summary;
        assert!(clean.ok());
        assert_eq!(clean.result, "ok");
        assert!(clean
            .verdict()
            .starts_with("result: ok, 0 violations (200 events"));
        assert!(clean.render().contains("bricked (I10)"));
        let mut bricked = clean.clone();
        bricked.bricked = 1;
        assert!(!bricked.ok());
        assert!(bricked
            .verdict()
            .starts_with("result: FAILED, 0 violations, 1 bricked"));
        let mut open_failed = clean;
        open_failed.open_failures = 1;
        assert!(!open_failed.ok());
        assert!(open_failed.verdict().contains("1 open failures"));
    }

    #[test]
    fn wear_chart_scales_to_the_most_erased_sector() {
        let chart = wear_chart(&[10, 5, 0], 10);
        let lines: Vec<&str> = chart.lines().collect();
        assert_eq!(lines[0], "    0 |##########| 10");
        assert_eq!(lines[1], "    1 |#####     | 5");
        assert_eq!(lines[2], "    2 |          | 0");
    }
}
