//! The emulated monitor device: an [`EventStore`] on a [`SimFlash`], driven by a
//! seeded workload, with random power cuts and restarts, checked against a
//! [`Model`] after every step.
//!
//! One tick of the emulation:
//!
//! | step | who | what |
//! |---|---|---|
//! | 1 | monitor | maybe begins a monitor update on a random channel (`begin_update`: its HTLC events are gated) |
//! | 2 | monitor | completes the updates that are due (`complete_update`) and queues their `UpdateCompleted` |
//! | 3 | monitor | produces events: HTLC claims and failures, rarely a force-close or a confirmed commitment |
//! | 4 | device | pushes up to two queued events; a full store refuses (`Full`) and the event waits |
//! | 5 | consumer | takes one to three released events and holds their acks in its [`AckBarrier`](monitor_events::AckBarrier) |
//! | 6 | consumer | meets the conditions that are due and sends the acks that became ready (out of id order) |
//! | 7 | emulator | arms a power cut at a random upcoming medium operation, or restarts the device |
//!
//! After a power cut (the store panics on the dead medium, invariant I7) power is
//! restored, the store reopened and checked: I1 (every returned, un-acked event is
//! there), I2 (no acked event is), I3 (the next id is above every returned one),
//! then in-flight updates are registered again and everything pending is replayed
//! (I4: once each, in id order among the ungated; I5: gated HTLC events wait).

use std::collections::VecDeque;
use std::time::Instant;

use monitor_events::journal::ConfigError;
use monitor_events::{
    AckMode, ChannelId, Config, EventId, EventStore, Geometry, MonitorEvent, MonitorEventSource,
    PushError, StoreError,
};
use monitor_events_flash::sim::{Profile, SimFlash, Torn};

use crate::consumer::Consumer;
use crate::flash::{install_panic_hook, quietly, SharedFlash};
use crate::model::{InDoubt, Model, Resolved};
use crate::report::{Counts, EndState, Summary};
use crate::rng::Rng;
use crate::workload::Monitor;

/// Pending events the device can hold: the most that fit the capacity check for
/// 4 KiB sectors and events of up to `MAX_ENCODED_LEN` bytes.
pub const PENDING: usize = 16;
/// Monitor updates that can be in flight at once.
pub const IN_FLIGHT: usize = 8;
/// Channels of the monitor.
pub const CHANNELS: usize = 8;

type Store = EventStore<SharedFlash, PENDING, IN_FLIGHT>;

/// What to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Device-time profile to report.
    pub profile: Profile,
    /// Seed of everything random.
    pub seed: u64,
    /// Events to push (returned pushes).
    pub events: u64,
    /// Power cuts to inject.
    pub cuts: u64,
    /// Clean restarts to do.
    pub restarts: u64,
    /// In-place acks (multiwrite NOR) or ack records (one program per word).
    pub ack_mode: AckMode,
    /// Most power cuts in a row before the store completes a push or an ack. The
    /// journal keeps three spare sectors so that it survives three (DESIGN.md);
    /// more may leave it without a free sector.
    pub max_cuts_in_a_row: u32,
    /// Print every power cut and recovery to stderr.
    pub trace: bool,
}

impl SimConfig {
    /// The flash: 16 sectors of 4 KiB, 4 B program unit; multiwrite for in-place
    /// acks, one program per word (as ECC flash) for ack records.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            multiwrite: self.ack_mode == AckMode::InPlace,
            ..SimFlash::BENCH_GEOMETRY
        }
    }
}

/// Why a run stopped before its end.
#[derive(Debug)]
pub enum SimFailure {
    /// The configuration does not fit the flash.
    Config(ConfigError),
    /// The store did not open after a power cut or restart.
    Reopen {
        /// The error.
        error: StoreError,
        /// Events pushed so far.
        pushed: u64,
        /// The flash image at that point.
        image: Vec<u8>,
    },
    /// A panic that was not a power cut: a bug.
    Panic {
        /// Its message.
        message: String,
        /// Events pushed so far.
        pushed: u64,
        /// The flash image at that point.
        image: Vec<u8>,
    },
    /// The store refused an event the workload made (a bug of the workload).
    Refused(PushError),
    /// No event could be pushed for a long time: the workload is stuck.
    Stuck {
        /// Events pushed so far.
        pushed: u64,
    },
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimFailure::Config(e) => write!(f, "the configuration does not fit the flash: {e}"),
            SimFailure::Reopen { error, pushed, .. } => write!(
                f,
                "the store did not reopen after {pushed} events: {error}"
            ),
            SimFailure::Panic {
                message, pushed, ..
            } => write!(f, "unexpected panic after {pushed} events: {message}"),
            SimFailure::Refused(e) => write!(f, "the store refused a workload event: {e}"),
            SimFailure::Stuck { pushed } => write!(
                f,
                "no event could be pushed for 100000 ticks after {pushed} events: the workload is stuck"
            ),
        }
    }
}

impl SimFailure {
    /// The flash image when the run stopped, if there is one.
    pub fn image(&self) -> Option<&[u8]> {
        match self {
            SimFailure::Reopen { image, .. } | SimFailure::Panic { image, .. } => Some(image),
            _ => None,
        }
    }
}

/// An in-flight monitor update and the tick it completes at.
#[derive(Clone, Copy, Debug)]
struct Update {
    channel: ChannelId,
    update_id: u64,
    due: u64,
}

/// A queued event the monitor produced but the store does not hold yet.
#[derive(Clone, Debug)]
struct Queued {
    event: MonitorEvent,
    /// The tick before which it is not produced (a delayed confirmation).
    not_before: u64,
}

/// Outcome of one guarded store call.
enum Call<T> {
    Done(T),
    /// Power was cut during the call.
    Cut,
}

struct Device {
    cfg: SimConfig,
    config: Config<PENDING>,
    rng: Rng,
    flash: SharedFlash,
    store: Store,
    monitor: Monitor,
    consumer: Consumer,
    model: Model,
    in_flight: Vec<Update>,
    outbox: VecDeque<Queued>,
    later: Vec<Queued>,
    now: u64,
    counts: Counts,
    cut_armed: bool,
    cuts_armed: u64,
    /// Power cuts since the last push or ack that returned.
    cuts_in_a_row: u32,
    next_cut_at: u64,
    next_restart_at: u64,
    replaying: bool,
    last_push_tick: u64,
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    /// What happened.
    pub summary: Summary,
    /// The flash image at the end.
    pub image: Vec<u8>,
}

/// Runs the emulation; `progress` is called with the number of events pushed.
pub fn run(cfg: &SimConfig, mut progress: impl FnMut(u64)) -> Result<Outcome, SimFailure> {
    install_panic_hook();
    let started = Instant::now();
    let geometry = cfg.geometry();
    let config = Config::<PENDING>::try_new(geometry, monitor_events::MAX_ENCODED_LEN)
        .and_then(|c| c.with_ack_mode(cfg.ack_mode))
        .map_err(SimFailure::Config)?;
    let flash = SharedFlash::new(SimFlash::new(geometry));
    let store = open(&flash, config, 0)?;
    let mut rng = Rng::new(cfg.seed);
    let monitor = Monitor::new(&mut rng, CHANNELS);
    let mut d = Device {
        cfg: cfg.clone(),
        config,
        rng,
        flash,
        store,
        monitor,
        consumer: Consumer::new(),
        model: Model::new(),
        in_flight: Vec::new(),
        outbox: VecDeque::new(),
        later: Vec::new(),
        now: 0,
        counts: Counts::default(),
        cut_armed: false,
        cuts_armed: 0,
        cuts_in_a_row: 0,
        next_cut_at: 0,
        next_restart_at: 0,
        replaying: false,
        last_push_tick: 0,
    };
    d.next_cut_at = d.cut_spacing() / 2;
    d.next_restart_at = d.restart_spacing();
    let mut reported = 0;
    while d.counts.pushed < cfg.events {
        d.tick()?;
        if d.counts.pushed >= reported + 256 {
            reported = d.counts.pushed;
            progress(reported);
        }
        if d.now - d.last_push_tick > 100_000 {
            return Err(SimFailure::Stuck {
                pushed: d.counts.pushed,
            });
        }
    }
    progress(d.counts.pushed);
    // A last clean restart checks the final state; then every update completes
    // and the events it held back are released and compared too.
    d.restart()?;
    for u in std::mem::take(&mut d.in_flight) {
        d.store.complete_update(u.channel, u.update_id);
    }
    while d.release_one()? {}
    let summary = d.summary(started.elapsed().as_secs_f64());
    let image = d.flash.get().image().to_vec();
    Ok(Outcome { summary, image })
}

fn open(flash: &SharedFlash, config: Config<PENDING>, pushed: u64) -> Result<Store, SimFailure> {
    let image = || flash.get().image().to_vec();
    match quietly(|| Store::open(flash.clone(), config)) {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(error)) => Err(SimFailure::Reopen {
            error,
            pushed,
            image: image(),
        }),
        Err(message) => Err(SimFailure::Panic {
            message,
            pushed,
            image: image(),
        }),
    }
}

impl Device {
    fn cut_spacing(&self) -> u64 {
        (self.cfg.events / (self.cfg.cuts + 1)).max(1)
    }

    fn restart_spacing(&self) -> u64 {
        if self.cfg.restarts == 0 {
            u64::MAX
        } else {
            (self.cfg.events / (self.cfg.restarts + 1)).max(1)
        }
    }

    /// Runs `f` on the store; a panic on a dead medium is a power cut, any other
    /// panic a failure.
    fn guard<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> Result<Call<T>, SimFailure> {
        let store = &mut self.store;
        match quietly(move || f(store)) {
            Ok(v) => Ok(Call::Done(v)),
            Err(_) if self.flash.get().is_dead() => Ok(Call::Cut),
            Err(message) => Err(SimFailure::Panic {
                message,
                pushed: self.counts.pushed,
                image: self.flash.get().image().to_vec(),
            }),
        }
    }

    fn gated(&self) -> Vec<ChannelId> {
        self.in_flight.iter().map(|u| u.channel).collect()
    }

    fn tick(&mut self) -> Result<(), SimFailure> {
        self.now += 1;
        // 1. A monitor update begins.
        if self.in_flight.len() < IN_FLIGHT && self.rng.chance(1, 3) {
            let (channel, update_id) = self.monitor.next_update(&mut self.rng);
            if self.store.begin_update(channel, update_id).is_ok() {
                let due = self.now + self.rng.range(1, 12);
                self.in_flight.push(Update {
                    channel,
                    update_id,
                    due,
                });
                self.counts.updates_begun += 1;
            }
        }
        // 2. Updates that are due complete.
        let now = self.now;
        let (done, still): (Vec<Update>, Vec<Update>) =
            self.in_flight.iter().partition(|u| u.due <= now);
        self.in_flight = still;
        for u in done {
            if !self.store.complete_update(u.channel, u.update_id) {
                self.model.violations.gating += 1;
            }
            self.counts.updates_completed += 1;
            self.outbox.push_back(Queued {
                event: MonitorEvent::UpdateCompleted {
                    channel: u.channel,
                    update_id: u.update_id,
                },
                not_before: 0,
            });
        }
        // 3. The monitor produces events.
        self.produce();
        // 4. The device pushes.
        for _ in 0..2 {
            if self.counts.pushed >= self.cfg.events {
                break;
            }
            let Some(q) = self.outbox.front() else { break };
            let event = q.event.clone();
            match self.push(event)? {
                Pushed::Yes | Pushed::InDoubt => {
                    self.outbox.pop_front();
                }
                Pushed::Full => {
                    self.counts.full += 1;
                    break;
                }
            }
        }
        // 5. The consumer takes released events.
        for _ in 0..self.rng.range(1, 3) {
            if !self.release_one()? {
                break;
            }
        }
        // 6. The consumer acks what became ready.
        for source in self.consumer.advance(self.now) {
            if !self.ack(source)? {
                break;
            }
        }
        // 7. Power cuts and restarts.
        if self.may_cut() && self.counts.pushed >= self.next_cut_at {
            let k = self.rng.below(48);
            self.arm_cut(k);
            let spacing = self.cut_spacing();
            self.next_cut_at += self.rng.range(spacing / 2, spacing + spacing / 2).max(1);
        }
        if self.counts.pushed >= self.next_restart_at && self.counts.restarts < self.cfg.restarts {
            self.next_restart_at += self.restart_spacing();
            self.restart()?;
            self.counts.restarts += 1;
        }
        Ok(())
    }

    fn produce(&mut self) {
        let now = self.now;
        let (due, later): (Vec<Queued>, Vec<Queued>) =
            self.later.drain(..).partition(|q| q.not_before <= now);
        self.later = later;
        for q in due {
            if let MonitorEvent::CommitmentTxConfirmed { channel } = q.event {
                // The channel is closed for good: a new one opens in its place.
                self.monitor.replace(&mut self.rng, channel);
            }
            self.outbox.push_back(q);
        }
        if self.outbox.len() >= 3 {
            return;
        }
        let roll = self.rng.below(1000);
        if roll < 4 {
            if let Some(event) = self.monitor.force_close(&mut self.rng) {
                let channel = event.channel();
                self.outbox.push_back(Queued {
                    event,
                    not_before: 0,
                });
                let confirmed = self
                    .monitor
                    .commitment_confirmed(&mut self.rng, Some(channel));
                let delay = self.rng.range(3, 30);
                self.later.push(Queued {
                    event: confirmed,
                    not_before: now + delay,
                });
            }
        } else if roll < 6 {
            let event = self.monitor.commitment_confirmed(&mut self.rng, None);
            self.monitor.replace(&mut self.rng, event.channel());
            self.outbox.push_back(Queued {
                event,
                not_before: 0,
            });
        } else {
            for _ in 0..self.rng.range(1, 2) {
                let p = self.monitor.htlc_resolution(&mut self.rng);
                self.consumer.note_extra_inbound(&p.event, &p.extra_inbound);
                self.outbox.push_back(Queued {
                    event: p.event,
                    not_before: 0,
                });
            }
        }
    }

    fn push(&mut self, event: MonitorEvent) -> Result<Pushed, SimFailure> {
        let id = self.store.journal().next_id();
        let len = event.encoded_len() as u64;
        match self.guard(|s| s.push(&event))? {
            Call::Done(Ok(id)) => {
                self.counts.count_event(&event, len);
                self.cuts_in_a_row = 0;
                self.model.on_push(id, event);
                self.last_push_tick = self.now;
                Ok(Pushed::Yes)
            }
            Call::Done(Err(PushError::Full)) => Ok(Pushed::Full),
            Call::Done(Err(e)) => Err(SimFailure::Refused(e)),
            Call::Cut => {
                self.recover(Some(InDoubt::Push {
                    id,
                    event: Box::new(event),
                }))?;
                Ok(Pushed::InDoubt)
            }
        }
    }

    /// Sends one ack; false if power was cut meanwhile.
    fn ack(&mut self, source: MonitorEventSource) -> Result<bool, SimFailure> {
        let event = self.model.event(source.id).cloned();
        match self.guard(|s| s.ack(source))? {
            Call::Done(Ok(outcome)) => {
                self.model.on_ack(source, outcome);
                self.consumer.forget(source.id, event.as_ref());
                self.cuts_in_a_row = 0;
                self.counts.acks += 1;
                // Now and then the consumer repeats an ack (after its own restart, say):
                // acks are idempotent.
                if self.rng.chance(1, 50) {
                    if let Call::Done(r) = self.guard(|s| s.ack(source))? {
                        match r {
                            Ok(outcome) => self.model.on_ack(source, outcome),
                            Err(e) => self.model.on_ack_error(source, e),
                        }
                        self.counts.repeat_acks += 1;
                    }
                }
                Ok(true)
            }
            Call::Done(Err(e)) => {
                self.model.on_ack_error(source, e);
                Ok(true)
            }
            Call::Cut => {
                self.recover(Some(InDoubt::Ack(source)))?;
                Ok(false)
            }
        }
    }

    /// Releases one event to the consumer; false if there was none.
    fn release_one(&mut self) -> Result<bool, SimFailure> {
        let gated = self.gated();
        match self.guard(|s| s.release_next())? {
            Call::Done(Some((id, event))) => {
                self.model.on_release(id, &event, &gated);
                self.counts.releases += 1;
                if self.replaying {
                    self.counts.replayed += 1;
                }
                self.consumer.handle(self.now, &mut self.rng, id, &event);
                Ok(true)
            }
            Call::Done(None) => {
                self.model.on_release_none(&gated);
                Ok(false)
            }
            // A release only reads; a cut cannot fire in it, but be safe.
            Call::Cut => {
                self.recover(None)?;
                Ok(false)
            }
        }
    }

    /// Whether another cut may be armed: the budget is not spent and fewer than
    /// `max_cuts_in_a_row` cuts came since the store last completed a write.
    fn may_cut(&self) -> bool {
        !self.cut_armed
            && self.cuts_armed < self.cfg.cuts
            && self.cuts_in_a_row < self.cfg.max_cuts_in_a_row
    }

    fn arm_cut(&mut self, k: u64) {
        let torn = match self.rng.below(20) {
            0..=2 => Torn::NotStarted,
            3..=5 => Torn::Completed,
            6..=8 => Torn::NoBits,
            _ => Torn::RandomSubset(self.rng.next_u64()),
        };
        self.flash.get_mut().cut_after(k, torn);
        if self.cfg.trace {
            eprintln!(
                "trace: {} events pushed, medium op {}: power cut armed at op +{k}, {torn:?}",
                self.counts.pushed,
                self.flash.get().op_index()
            );
        }
        self.cut_armed = true;
        self.cuts_armed += 1;
    }

    /// Power was cut during `in_doubt`: restore it, reopen and check.
    fn recover(&mut self, in_doubt: Option<InDoubt>) -> Result<(), SimFailure> {
        self.counts.cuts += 1;
        self.cuts_in_a_row += 1;
        self.counts.max_cuts_in_a_row = self.counts.max_cuts_in_a_row.max(self.cuts_in_a_row);
        self.cut_armed = false;
        self.flash.get_mut().power_on();
        if self.cfg.trace {
            let during = match &in_doubt {
                Some(InDoubt::Push { id, .. }) => format!("the push of {id}"),
                Some(InDoubt::Ack(s)) => format!("the ack of {}", s.id),
                None => "a read".into(),
            };
            eprintln!(
                "trace: power cut at medium op {} during {during}",
                self.flash.get().op_index()
            );
        }
        let resolved = self.reopen(in_doubt)?;
        if self.cfg.trace {
            eprintln!(
                "trace: recovered ({resolved:?}): {:?}",
                self.store.journal().status()
            );
        }
        match resolved {
            Resolved::PushKept => self.counts.in_doubt_pushes_kept += 1,
            Resolved::PushDropped => self.counts.in_doubt_pushes_dropped += 1,
            Resolved::AckKept => self.counts.in_doubt_acks_kept += 1,
            Resolved::AckDropped => self.counts.in_doubt_acks_dropped += 1,
            Resolved::Nothing => {}
        }
        self.counts.recoveries += 1;
        // Sometimes power fails again right away: during the repair erase, the
        // next sector's header or the first record after the restart.
        if self.may_cut() && self.rng.chance(1, 5) {
            let k = self.rng.below(3);
            self.arm_cut(k);
            self.counts.consecutive_cuts += 1;
        }
        Ok(())
    }

    /// A clean restart: the device reboots with power intact.
    fn restart(&mut self) -> Result<(), SimFailure> {
        self.reopen(None).map(|_| ())
    }

    /// Reopens the store, checks I1–I3, registers in-flight updates again and
    /// replays everything releasable (I4, I5).
    fn reopen(&mut self, in_doubt: Option<InDoubt>) -> Result<Resolved, SimFailure> {
        let doubted_ack = match &in_doubt {
            Some(InDoubt::Ack(source)) => Some((source.id, self.model.event(source.id).cloned())),
            _ => None,
        };
        // The old store is gone with the device's RAM.
        self.store = open(&self.flash, self.config, self.counts.pushed)?;
        let ids: Vec<EventId> = self.store.journal().pending().map(|(id, _)| id).collect();
        let next = self.store.next_id();
        let resolved = self.model.on_reopen(&ids, next, in_doubt);
        if let (Resolved::AckKept, Some((id, event))) = (resolved, doubted_ack) {
            self.consumer.forget(id, event.as_ref());
            self.counts.acks += 1;
        }
        // The channel manager applies its in-flight updates again before anything
        // is released.
        for u in self.in_flight.clone() {
            if self.store.begin_update(u.channel, u.update_id).is_err() {
                self.model.violations.gating += 1;
            }
        }
        self.replaying = true;
        let replay = loop {
            match self.release_one() {
                Ok(true) => continue,
                other => break other,
            }
        };
        self.replaying = false;
        replay?;
        Ok(resolved)
    }

    fn summary(&self, elapsed_s: f64) -> Summary {
        let flash = self.flash.get();
        let end = EndState {
            pending: self.store.pending_count(),
            next_id: self.store.next_id().0,
            acks_held: self.consumer.held(),
            elapsed_s,
        };
        Summary::new(
            &self.cfg,
            flash.stats(),
            &self.counts,
            &self.model,
            &self.consumer.stats,
            end,
        )
    }
}

/// What a push did.
enum Pushed {
    Yes,
    Full,
    /// Power was cut during the push; recovery decided.
    InDoubt,
}
