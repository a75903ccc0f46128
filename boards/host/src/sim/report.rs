//! What `simulate` counts and how it reports it: a text table or one JSON object.

use std::fmt::Write as _;

use monitor_events::{AckMode, EventId, HtlcOutcome, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_flash::sim::Stats;
use serde::Serialize;

use crate::sim::config::{Scenario, SimConfig};
use crate::sim::consumer::ConsumerStats;
use crate::sim::model::{Model, Violations};

/// Where a run stands when a power cut fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The consumer is away: the device only pushes.
    Burst = 0,
    /// The consumer is there and pending events are still to be released to it
    /// (after it came back, or after a reopen).
    Replay = 1,
    /// Everything pending was released: only acks (and pushes) go on.
    Acks = 2,
}

/// The cost of one `open`: the one with the most events pending of a run's clean
/// restarts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OpenFigures {
    /// Events pending after it.
    pub pending: usize,
    /// Device time under the run's profile.
    pub device_ms: f64,
    /// Host time of the call.
    pub host_ms: f64,
    /// Bytes it read.
    pub bytes_read: u64,
    /// Program operations it made.
    pub program_ops: u64,
    /// Erases it made (of erase blocks).
    pub erases: u64,
}

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Pushes that returned an id.
    pub pushed: u64,
    /// Of which events of `MAX_ENCODED_LEN` bytes.
    pub largest: u64,
    /// Most events pending at once (after a push or a reopen).
    pub peak_pending: usize,
    /// Device time of each push that returned, in microseconds.
    pub push_us: Vec<f64>,
    /// Device time of each ack that returned (repeats apart), in microseconds.
    pub ack_us: Vec<f64>,
    /// Power cuts by [`Phase`].
    pub phase_cuts: [u64; 3],
    /// The highest id of an ack that returned.
    pub max_acked: Option<EventId>,
    /// Acks that returned for an id below one acked before (a later event
    /// overtook it).
    pub acks_out_of_order: u64,
    /// The open with the most events pending among clean restarts.
    pub open: Option<OpenFigures>,
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
        if len == MAX_ENCODED_LEN as u64 {
            self.largest += 1;
        }
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
    /// Bytes per erase block (a sector is `sector_size / erase_block` blocks).
    pub erase_block: u32,
}

/// Power cuts by where the run stood (the force-close scenario).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PhaseCuts {
    /// While the consumer was away and the device pushed the burst.
    pub burst: u64,
    /// While pending events were still being released to the consumer.
    pub replay: u64,
    /// Once everything was released, among the acks.
    pub acks: u64,
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
    /// `steady` or `force-close`.
    pub scenario: String,
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
    /// Of which events of the largest encoded size (`MAX_ENCODED_LEN`).
    pub largest_events: u64,
    /// Most events pending at once.
    pub peak_pending: usize,
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
    /// Acks for an id below one acked before them (a later event overtook it).
    pub acks_out_of_order: u64,
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
    /// Device time of a push that returned, on average (retirements included).
    pub device_ms_per_push: f64,
    /// The median push's device time.
    pub device_ms_per_push_median: f64,
    /// Device time of an ack that returned, on average (repeats apart).
    pub device_ms_per_ack: f64,
    /// The median ack's device time.
    pub device_ms_per_ack_median: f64,
    /// The open with the most events pending among the clean restarts.
    pub open_most_pending: Option<OpenFigures>,
    /// Power cuts by phase (the force-close scenario).
    pub cuts_by_phase: Option<PhaseCuts>,
    /// Erases (of erase blocks).
    pub erases: u64,
    /// Erases per 1000 pushed events.
    pub erases_per_1000_events: f64,
    /// Bytes programmed.
    pub bytes_programmed: u64,
    /// Bytes programmed per pushed event.
    pub bytes_programmed_per_event: f64,
    /// Program operations.
    pub program_ops: u64,
    /// Erases of each journal sector (of its most erased block).
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
        let blocks = cfg.blocks().max(1) as usize;
        // Erases of each journal sector: the most of its erase blocks.
        let wear: Vec<u64> = stats
            .sector_erases
            .chunks(blocks)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        let wear_max = wear.iter().copied().max().unwrap_or(0);
        let wear_mean = wear.iter().sum::<u64>() as f64 / wear.len().max(1) as f64;
        let mean = |us: &[f64]| round(us.iter().sum::<f64>() / 1000.0 / us.len().max(1) as f64, 3);
        let median = |us: &[f64]| {
            let mut sorted = us.to_vec();
            sorted.sort_by(f64::total_cmp);
            round(
                sorted.get(sorted.len() / 2).copied().unwrap_or(0.0) / 1000.0,
                3,
            )
        };
        Summary {
            scenario: cfg.scenario.name().to_owned(),
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
                erase_block: cfg.erase_block,
            },
            capacity: cfg.pending,
            events_pushed: c.pushed,
            largest_events: c.largest,
            peak_pending: c.peak_pending,
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
            acks_out_of_order: c.acks_out_of_order,
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
            device_ms_per_push: mean(&c.push_us),
            device_ms_per_push_median: median(&c.push_us),
            device_ms_per_ack: mean(&c.ack_us),
            device_ms_per_ack_median: median(&c.ack_us),
            open_most_pending: c.open.map(|o| OpenFigures {
                device_ms: round(o.device_ms, 3),
                host_ms: round(o.host_ms, 3),
                ..o
            }),
            cuts_by_phase: (cfg.scenario == Scenario::ForceClose).then_some(PhaseCuts {
                burst: c.phase_cuts[Phase::Burst as usize],
                replay: c.phase_cuts[Phase::Replay as usize],
                acks: c.phase_cuts[Phase::Acks as usize],
            }),
            erases: stats.erases,
            erases_per_1000_events: round(stats.erases as f64 * 1000.0 / events, 2),
            bytes_programmed: stats.bytes_programmed,
            bytes_programmed_per_event: round(stats.bytes_programmed as f64 / events, 1),
            program_ops: stats.program_ops,
            wear,
            wear_max,
            wear_mean: round(wear_mean, 2),
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
            "monitor-events simulate: {}seed {}, profile {}, {} acks{}{}",
            if self.cuts_by_phase.is_some() {
                format!("scenario {}, ", self.scenario)
            } else {
                String::new()
            },
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
        let blocks = if f.erase_block < f.sector_size {
            format!(
                " ({} erase blocks of {} B each)",
                f.sector_size / f.erase_block.max(1),
                f.erase_block
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "flash: {} sectors x {} B{blocks}, {} B program unit, {}; room for {} pending events\n",
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
        if let Some(p) = &self.cuts_by_phase {
            self.render_force_close(&mut o, p);
        }
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
        let per_row = self.wear.len().div_ceil(WEAR_ROWS);
        let _ = writeln!(
            o,
            "wear (erases per sector; max {}, mean {:.1}{})",
            self.wear_max,
            self.wear_mean,
            if per_row > 1 {
                format!("; rows of {per_row} sectors, the most of each")
            } else {
                String::new()
            }
        );
        o.push_str(&wear_chart(&self.wear, 40));
        o
    }
}

impl Summary {
    /// The force-close section: the burst, its peak, what a push, an ack and an
    /// open at the peak cost, and where the cuts landed.
    fn render_force_close(&self, o: &mut String, p: &PhaseCuts) {
        let row = |o: &mut String, name: &str, value: String, note: String| {
            let _ = writeln!(o, "  {name:<28}{value:>10}   {note}");
        };
        let _ = writeln!(o, "force-close");
        row(
            o,
            "peak pending",
            self.peak_pending.to_string(),
            format!(
                "of room for {}; {} events of the largest size ({MAX_ENCODED_LEN} B)",
                self.capacity, self.largest_events
            ),
        );
        row(
            o,
            "device ms per push",
            format!("{:.3}", self.device_ms_per_push),
            format!(
                "mean, erases and copies of retirements included; median {:.3}",
                self.device_ms_per_push_median
            ),
        );
        row(
            o,
            "device ms per ack",
            format!("{:.3}", self.device_ms_per_ack),
            format!(
                "mean; median {:.3}; {} acks out of id order",
                self.device_ms_per_ack_median, self.acks_out_of_order
            ),
        );
        match &self.open_most_pending {
            Some(open) => row(
                o,
                "device ms per open",
                format!("{:.3}", open.device_ms),
                format!(
                    "with {} pending: {} B read, {} programs, {} erases; host {:.2} ms",
                    open.pending, open.bytes_read, open.program_ops, open.erases, open.host_ms
                ),
            ),
            None => row(
                o,
                "device ms per open",
                "-".into(),
                "no clean restart".into(),
            ),
        }
        row(
            o,
            "power cuts by phase",
            (p.burst + p.replay + p.acks).to_string(),
            format!(
                "{} in the burst, {} in the replay, {} among the acks",
                p.burst, p.replay, p.acks
            ),
        );
    }
}

/// Rows of [`wear_chart`] at most: more sectors share rows.
pub const WEAR_ROWS: usize = 32;

/// A text bar chart of erases per sector, bars up to `width` characters. Beyond
/// [`WEAR_ROWS`] sectors, each row covers a range of them and shows the most
/// erases of a sector in it.
pub fn wear_chart(wear: &[u64], width: usize) -> String {
    let max = wear.iter().copied().max().unwrap_or(0).max(1);
    let per_row = wear.len().div_ceil(WEAR_ROWS).max(1);
    let mut o = String::new();
    for (r, chunk) in wear.chunks(per_row).enumerate() {
        let n = chunk.iter().copied().max().unwrap_or(0);
        let len = ((n as f64 / max as f64) * width as f64).round() as usize;
        let first = r * per_row;
        let label = if per_row == 1 {
            format!("{first:>3}")
        } else {
            format!("{:>7}", format!("{first}-{}", first + chunk.len() - 1))
        };
        let _ = writeln!(o, "  {label} |{:<width$}| {n}", "#".repeat(len));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::SimConfig;
    use crate::sim::run::run;

    /// The wear chart keeps a row per sector up to 32 sectors, then shows ranges
    /// with the most erases of a sector in each.
    #[test]
    fn wear_chart_groups_many_sectors() {
        let few = wear_chart(&[1, 0, 2], 4);
        assert_eq!(few.lines().count(), 3);
        assert!(few.lines().nth(2).unwrap().ends_with("|####| 2"), "{few}");
        let mut many = vec![0u64; 128];
        many[5] = 3;
        many[127] = 1;
        let chart = wear_chart(&many, 6);
        assert_eq!(chart.lines().count(), 32, "{chart}");
        let first = chart.lines().next().unwrap();
        assert!(first.contains("0-3") && first.ends_with("| 0"), "{chart}");
        let second = chart.lines().nth(1).unwrap();
        assert!(
            second.contains("4-7") && second.ends_with("|######| 3"),
            "{chart}"
        );
        assert!(chart.lines().last().unwrap().contains("124-127"), "{chart}");
    }

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
