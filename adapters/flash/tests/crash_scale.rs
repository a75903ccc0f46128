//! Crash points at scale: a power cut at medium operations of a run that keeps
//! 1 024 events pending, on sectors of 64 erase blocks (`Grouped`), with a cut at
//! every operation of a retirement whose copies fill several blocks of the fresh
//! sector and whose erase is 64 block erases.
//!
//! The journal: 4 sectors of 256 KiB (64 blocks of 4 KiB each), 4 B program unit,
//! `N` = 1 024, events of 40 to 214 random bytes, in each flavor (in-place acks,
//! ack records, ack records authenticated). The run first pushes until 1 024 are
//! pending, then acks one pending event chosen at random and pushes one more, over
//! and over, so that every retirement happens while 1 024 events are held, until
//! `CRASH_SCALE_RETIREMENTS` retirements (default 3) have completed; a clean
//! reopen comes now and then.
//!
//! A fork hook sees every program and erase before it is applied. It tells the
//! operations of a retirement from the others by what they write: a retirement
//! runs from its first `Copy` record (or its `Retire` record when nothing is
//! left to copy) to the erase of the last block of the retired sector, and must
//! erase every block of that sector once, first to last. The cut points, drawn
//! from a fixed seed:
//!
//! | operations | in-place and record acks | authenticated |
//! |---|---|---|
//! | the first `CRASH_SCALE_DENSE` retirements (default 1) | every one | - |
//! | later retirements | one in `CRASH_SCALE_RETIREMENT_STRIDE` (default 4) | one in twice that |
//! | outside retirements | one in `CRASH_SCALE_STRIDE` (default 200) | one in twice that |
//!
//! (the authenticated journal computes an HMAC per record at every open). At
//! each cut point the flash is forked and the operation applied torn in every
//! variant (not started, completed, no bit, two random subsets, two prefixes);
//! the fork is opened and checked against a model: I1 (no returned push lost),
//! I2 (no returned ack resurrected), I4 (byte-identical replay), I8 (the torn
//! write opens silently) and I3 (a push after recovery gets a fresh id).
//! The same run on 96 sectors of 4 KiB, where the region bounds `N` (a copy
//! budget per sector), cuts every operation of `CRASH_SCALE_REGION_RETIREMENTS`
//! retirements (default 40) and one in `CRASH_SCALE_REGION_STRIDE` (default 50)
//! of the rest, in every flavor.
//!
//! `CRASH_SCALE_STRIDE=1 CRASH_SCALE_RETIREMENT_STRIDE=1` checks every operation
//! of the plain flavors (and every other one of the authenticated flavor).
//!
//! The cut points are shared out over the cores: each thread replays the same
//! seeded run and checks every k-th cut point.

mod support;

use monitor_events::journal::{max_pending, AckMode, Auth, Config, Journal};
use monitor_events::{EventId, Geometry};
use monitor_events_flash::sim::{panic_text, quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Mutex;
use support::{check, Counts, InFlight, Model};

/// Pending capacity: a force-close burst of two channels' HTLCs and more.
const N: usize = 1024;
/// Erase blocks of the flash.
const BLOCK: u32 = 4096;
/// Erase blocks per journal sector, and journal sectors, of each layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    group: u32,
    sectors: u32,
}

/// 4 sectors of 256 KiB (64 blocks each): one sector holds `N` copies.
const GROUPED: Layout = Layout {
    group: 64,
    sectors: 4,
};
/// 96 sectors of 4 KiB: the region bounds `N` (each sector keeps a copy budget).
const REGION: Layout = Layout {
    group: 1,
    sectors: 96,
};

impl Layout {
    /// Retirements the run completes.
    fn retirements(self) -> u64 {
        if self == REGION {
            env_u64("CRASH_SCALE_REGION_RETIREMENTS", 40)
        } else {
            env_u64("CRASH_SCALE_RETIREMENTS", 3)
        }
    }

    /// The region as the journal sees it.
    const fn journal(self) -> Geometry {
        Geometry {
            sector_size: BLOCK * self.group,
            sector_count: self.sectors,
            write_size: 4,
            multiwrite: false,
        }
    }
}
/// Smallest and largest event bodies of the run.
const MIN_BODY: usize = 40;
const MAX_BODY: usize = 214;

// `Config` takes N = 1 024 of the largest events in every flavor and layout.
const _: () = assert!(max_pending(GROUPED.journal(), MAX_BODY, true) >= N);
const _: () = assert!(max_pending(REGION.journal(), MAX_BODY, true) >= N);

/// Record kinds as the format numbers them (word0 bits 12..16).
const KIND_COPY: u32 = 2;
const KIND_RETIRE: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    InPlace,
    Record,
    RecordAuth,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::InPlace, Mode::Record, Mode::RecordAuth];

    fn config(self, layout: Layout) -> Config<N> {
        let g = Geometry {
            multiwrite: self == Mode::InPlace,
            ..layout.journal()
        };
        let c = Config::<N>::try_new(g, MAX_BODY).unwrap();
        assert_eq!(c.region_bounded(), layout == REGION);
        match self {
            Mode::InPlace => c.with_ack_mode(AckMode::InPlace).unwrap(),
            Mode::Record => c.with_ack_mode(AckMode::Record).unwrap(),
            Mode::RecordAuth => c
                .with_auth(Auth::new([0x3C; 32], *b"crash at scale  "))
                .unwrap(),
        }
    }

    /// Which operations are cut points (see [`Density`] and the table at the top).
    fn density(self, layout: Layout) -> Density {
        if layout == REGION {
            // Retirements of one 4 KiB sector are short: every operation of each.
            return Density {
                dense: u64::MAX,
                retirement_stride: 1,
                stride: env_u64("CRASH_SCALE_REGION_STRIDE", 50).max(1) as u32,
            };
        }
        let stride = env_u64("CRASH_SCALE_STRIDE", 200).max(1) as u32;
        let retirement_stride = env_u64("CRASH_SCALE_RETIREMENT_STRIDE", 4).max(1) as u32;
        let dense = env_u64("CRASH_SCALE_DENSE", 1);
        if self == Mode::RecordAuth {
            Density {
                dense: 0,
                retirement_stride: 2 * retirement_stride,
                stride: 2 * stride,
            }
        } else {
            Density {
                dense,
                retirement_stride,
                stride,
            }
        }
    }

    /// The flash under the journal: its sectors are `layout.group` blocks each.
    fn flash(self, layout: Layout) -> SimFlash {
        SimFlash::new(Geometry {
            sector_size: BLOCK,
            sector_count: layout.sectors * layout.group,
            ..self.config(layout).geometry()
        })
    }
}

/// Which operations of a run are cut points, drawn from a fixed seed.
#[derive(Clone, Copy, Debug)]
struct Density {
    /// The first `dense` retirements: every operation.
    dense: u64,
    /// Later retirements: one operation in `retirement_stride`.
    retirement_stride: u32,
    /// Outside retirements: one operation in `stride`.
    stride: u32,
}

/// A number from the environment, or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The record kind a program starts, if it writes a fresh record header (an ack
/// in place rewrites a header with its ack byte cleared: not a fresh record).
fn record_kind(op: &Op) -> Option<u32> {
    match op {
        Op::Program { data, .. } if data.len() >= 8 && data[2] == 0xFF => {
            let w = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            Some((w >> 12) & 0xF)
        }
        _ => None,
    }
}

/// What one job found.
#[derive(Clone, Debug, Default)]
struct Tally {
    counts: Counts,
    /// Cut points checked (each in every torn variant).
    points: u64,
    /// Of those, inside a retirement.
    in_retirement: u64,
    /// Operations of the retirements checked at every operation, and the cut
    /// points this job checked in them.
    dense_ops: u64,
    dense_points: u64,
    /// Clean reopens of the run.
    reopens: u64,
    /// Recovered journals that failed to open, or panicked (I8, I10).
    open_failures: u64,
    /// Retirements that did not erase exactly the blocks of their sector.
    bad_erases: u64,
    /// Cut points where something was wrong (checking stops at `MAX_FAILED`).
    failed_points: u64,
    /// Retirements of the run, their operations and the copies they wrote.
    retirements: u64,
    retirement_ops: u64,
    copies: u64,
    /// The most blocks one retirement's copies spanned.
    copy_blocks: u64,
    /// Fewest events held (pending, with the one being pushed) when a retirement began.
    held_at_retirement: usize,
    /// Most events pending in the run.
    peak_pending: usize,
    /// Medium operations of the run.
    ops: u64,
    /// Time spent checking cut points.
    check_time: std::time::Duration,
    first: Option<String>,
    failures: u64,
}

/// Failing cut points after which a job stops checking (the run fails anyway).
const MAX_FAILED: u64 = 20;

impl Tally {
    /// Everything wrong found so far.
    fn violations(&self) -> u64 {
        let c = self.counts;
        c.lost + c.resurrected + c.reused + c.wrong + self.open_failures + self.bad_erases
    }

    /// Notes a failure: the first few are printed, the first is kept.
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.failures <= 3 {
            eprintln!("{what}");
        }
        if self.first.is_none() {
            self.first = Some(what);
        }
    }
}

/// Where the hook is in the run's stream of operations.
struct Tracker {
    serial: u64,
    /// Index of the next selected cut point (shared out over the shards).
    selected: u64,
    in_retirement: bool,
    /// Whether every operation of the current retirement is a cut point.
    dense: bool,
    retire_record_seen: bool,
    /// Blocks the current retirement erased, in order, and its operations.
    erases: Vec<u32>,
    ops: u64,
    copy_blocks: std::collections::BTreeSet<u32>,
    pick: Pcg32,
}

/// Runs the workload of `mode` and checks the cut points whose number is
/// `shard` modulo `shards`.
fn run(mode: Mode, layout: Layout, shard: u64, shards: u64) -> Tally {
    let d = mode.density(layout);
    let target = layout.retirements();
    let cfg = mode.config(layout);
    let group = layout.group;
    let model = Rc::new(RefCell::new(Model::default()));
    let tally = Rc::new(RefCell::new(Tally {
        held_at_retirement: usize::MAX,
        ..Tally::default()
    }));
    let mut flash = mode.flash(layout);
    {
        let (model, tally) = (model.clone(), tally.clone());
        let mut t = Tracker {
            serial: 0,
            selected: 0,
            in_retirement: false,
            dense: false,
            retire_record_seen: false,
            erases: Vec::new(),
            ops: 0,
            copy_blocks: Default::default(),
            pick: Pcg32::new(0x5CA1E + mode as u64),
        };
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let model = model.borrow();
            let mut tally = tally.borrow_mut();
            let kind = record_kind(op);
            if !t.in_retirement && matches!(kind, Some(KIND_COPY | KIND_RETIRE)) {
                t.in_retirement = true;
                t.dense = tally.retirements < d.dense;
                t.retire_record_seen = false;
                t.erases.clear();
                t.ops = 0;
                t.copy_blocks.clear();
                let pushing = matches!(model.in_flight, Some(InFlight::Push(_)));
                let held = model.durable.len() + usize::from(pushing);
                tally.held_at_retirement = tally.held_at_retirement.min(held);
            }
            let inside = t.in_retirement;
            if inside {
                t.ops += 1;
                match (kind, op) {
                    (Some(KIND_COPY), Op::Program { offset, .. }) => {
                        tally.copies += 1;
                        t.copy_blocks.insert(offset / BLOCK);
                    }
                    (Some(KIND_RETIRE), _) => t.retire_record_seen = true,
                    (_, Op::Erase { sector }) if t.retire_record_seen => t.erases.push(*sector),
                    _ => {}
                }
            }
            let chosen = match (inside, t.dense) {
                (true, true) => true,
                (true, false) => t.pick.below(d.retirement_stride) == 0,
                (false, _) => t.pick.below(d.stride) == 0,
            };
            let mine = chosen && t.selected % shards == shard;
            if chosen {
                t.selected += 1;
            }
            if mine && tally.failed_points < MAX_FAILED {
                let before_point = tally.violations();
                tally.points += 1;
                tally.in_retirement += u64::from(inside);
                tally.dense_points += u64::from(inside && t.dense);
                let serial = t.serial;
                let timer = std::time::Instant::now();
                for torn in Torn::variants([serial * 2 + 1, serial * 2 + 2]) {
                    let what = format!(
                        "{mode:?} op {serial} ({}) {torn:?}",
                        if inside { "retirement" } else { "elsewhere" }
                    );
                    let mut fork = before.clone();
                    fork.apply_torn(op, torn)
                        .expect("the operation itself is legal");
                    match catch_unwind(AssertUnwindSafe(|| {
                        recover(fork, layout, cfg, &model, &what)
                    })) {
                        Ok(Ok(c)) => {
                            if !c.clean() {
                                tally.fail(format!("{what}: {c:?}"));
                            }
                            tally.counts.add(c);
                        }
                        Ok(Err(e)) => {
                            tally.open_failures += 1;
                            tally.fail(format!("{what}: {e}"));
                        }
                        Err(p) => {
                            tally.open_failures += 1;
                            tally.fail(format!("{what}: panicked: {}", panic_text(&*p)));
                        }
                    }
                }
                tally.failed_points += u64::from(tally.violations() != before_point);
                tally.check_time += timer.elapsed();
            }
            // The retirement ends with the erase of the retired sector's last block.
            if let Op::Erase { sector } = op {
                if inside && t.retire_record_seen && (sector + 1) % group == 0 {
                    // Every block of the retired sector, once, first to last.
                    let want: Vec<u32> = (sector + 1 - group..=*sector).collect();
                    if t.erases != want {
                        tally.bad_erases += 1;
                        let missing: Vec<u32> =
                            want.iter().filter(|b| !t.erases.contains(b)).copied().collect();
                        let what = format!(
                            "{mode:?}: the retirement ending at op {} erased {} blocks, not every block of {}..={} once in order (missing {missing:?})",
                            t.serial, t.erases.len(), want[0], sector
                        );
                        tally.fail(what);
                    }
                    t.in_retirement = false;
                    tally.retirements += 1;
                    tally.retirement_ops += t.ops;
                    if t.dense {
                        tally.dense_ops += t.ops;
                    }
                    tally.copy_blocks = tally.copy_blocks.max(t.copy_blocks.len() as u64);
                }
            }
            t.serial += 1;
            tally.ops = t.serial;
        });
    }

    let mut rng = Pcg32::new(0xC0FFEE + mode as u64);
    let mut j = Journal::open(grouped(&mut flash, layout), cfg).unwrap();
    let mut filled = false;
    while tally.borrow().retirements < target {
        let pending = j.pending_count();
        {
            let mut t = tally.borrow_mut();
            t.peak_pending = t.peak_pending.max(pending);
        }
        filled |= pending == N;
        if filled && pending == N {
            // Acks in random order.
            let id = *model
                .borrow()
                .durable
                .keys()
                .nth(rng.below(N as u32) as usize)
                .unwrap();
            model.borrow_mut().in_flight = Some(InFlight::Ack(id));
            j.ack(EventId(id)).unwrap();
            model.borrow_mut().acked(EventId(id));
        } else {
            let len = MIN_BODY + rng.below((MAX_BODY - MIN_BODY + 1) as u32) as usize;
            let payload: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            model.borrow_mut().in_flight = Some(InFlight::Push(payload.clone()));
            let id = j.push(&payload).unwrap();
            model.borrow_mut().pushed(id, payload);
        }
        // Now and then a clean restart (its first write repairs).
        if filled && rng.below(2500) == 0 {
            drop(j);
            j = Journal::open(grouped(&mut flash, layout), cfg).unwrap();
            tally.borrow_mut().reopens += 1;
            let (c, _) = check(&model.borrow(), &mut j, "clean reopen");
            assert!(c.clean(), "{mode:?}: clean reopen: {c:?}");
        }
    }
    drop(j);
    drop(flash);
    let t = tally.borrow().clone();
    t
}

/// The flash as the journal sees it.
fn grouped<M: monitor_events::Medium>(flash: M, layout: Layout) -> Grouped<M> {
    Grouped::new(flash, layout.group).expect("the flash was sized for the grouping")
}

/// Opens a torn fork and checks it: I8 (it opens), I1, I2, I4 (`check`), and I3
/// (a push after recovery gets an id above every id ever given).
fn recover(
    fork: SimFlash,
    layout: Layout,
    cfg: Config<N>,
    model: &Model,
    what: &str,
) -> Result<Counts, String> {
    let mut j = Journal::open(grouped(fork, layout), cfg)
        .map_err(|e| format!("I8: a torn write must open silently, got {e}"))?;
    let (mut c, got) = check(model, &mut j, what);
    if j.pending_count() == N {
        let oldest = j.pending().next().unwrap().0;
        j.ack(oldest)
            .map_err(|e| format!("ack after recovery: {e}"))?;
    }
    let id = j
        .push(&[0xA5; MIN_BODY])
        .map_err(|e| format!("I10: push after recovery: {e}"))?;
    let highest = model.max_id.max(got.keys().next_back().copied());
    if highest.is_some_and(|m| id.0 <= m) {
        c.reused += 1;
    }
    Ok(c)
}

/// I1, I2, I3, I4, I8 with 1 024 pending on grouped sectors: every operation of
/// a whole retirement, and a seeded sample of the others, cut in every torn
/// variant; each retirement erases every block of its sector. Prints one line
/// per flavor and the totals.
#[test]
fn i1_i4_i8_crash_points_at_scale() {
    crash_points(GROUPED, "crash points at scale");
}

/// The same with 1 024 pending on 96 sectors of 4 KiB, where the region bounds
/// `N`: each retirement copies one sector's pending events, within its copy
/// budget, into the current sector.
#[test]
fn i1_i4_i8_crash_points_at_scale_region_bounded() {
    crash_points(
        REGION,
        "crash points at scale, capacity bounded by the region",
    );
}

fn crash_points(layout: Layout, name: &str) {
    quiet_power_cuts();
    let start = std::time::Instant::now();
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let jobs: Vec<(Mode, u64)> = [Mode::RecordAuth, Mode::InPlace, Mode::Record]
        .iter()
        .flat_map(|&m| (0..shards).map(move |s| (m, s)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(Mode, Tally)>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..shards {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(mode, shard)) = jobs.get(i) else {
                    break;
                };
                let t = run(mode, layout, shard, shards);
                results.lock().unwrap().push((mode, t));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut all = Tally {
        held_at_retirement: usize::MAX,
        ..Tally::default()
    };
    for mode in Mode::ALL {
        let mut m = Tally::default();
        for (_, t) in results.iter().filter(|(x, _)| *x == mode) {
            // Every shard replays the same run: its figures once, its checks summed.
            m.retirements = t.retirements;
            m.retirement_ops = t.retirement_ops;
            m.copies = t.copies;
            m.copy_blocks = t.copy_blocks;
            m.held_at_retirement = t.held_at_retirement;
            m.peak_pending = t.peak_pending;
            m.ops = t.ops;
            m.reopens = t.reopens;
            m.dense_ops = t.dense_ops;
            m.dense_points += t.dense_points;
            m.failed_points += t.failed_points;
            m.bad_erases = t.bad_erases;
            m.points += t.points;
            m.check_time += t.check_time;
            m.in_retirement += t.in_retirement;
            m.open_failures += t.open_failures;
            m.counts.add(t.counts);
            if m.first.is_none() {
                m.first = t.first.clone();
            }
        }
        eprintln!(
            "{mode:?}: {} operations, {} clean reopens, {} retirements ({} operations, {} copies, copies over up to {} blocks, \
             {} held or more when one began), cut points {} ({} inside retirements, {} of them every operation of a whole retirement), checks {} ({:.1} ms each), open failures {}, {:?}",
            m.ops, m.reopens, m.retirements, m.retirement_ops, m.copies, m.copy_blocks, m.held_at_retirement,
            m.points, m.in_retirement, m.dense_ops, m.counts.checked,
            m.check_time.as_secs_f64() * 1e3 / m.counts.checked.max(1) as f64, m.open_failures, m.counts
        );
        // Every operation of the first retirement(s), over all shards.
        if m.failed_points < MAX_FAILED {
            assert_eq!(m.dense_points, m.dense_ops, "{mode:?}: dense retirements");
        }
        all.dense_ops += m.dense_ops;
        all.points += m.points;
        all.in_retirement += m.in_retirement;
        all.open_failures += m.open_failures;
        all.bad_erases += m.bad_erases;
        all.counts.add(m.counts);
        all.retirements += m.retirements;
        all.copy_blocks = all.copy_blocks.max(m.copy_blocks);
        all.held_at_retirement = all.held_at_retirement.min(m.held_at_retirement);
        all.peak_pending = all.peak_pending.max(m.peak_pending);
        if all.first.is_none() {
            all.first = m.first;
        }
    }
    let c = all.counts;
    println!(
        "{name}: {layout:?}, N {N}, peak pending {}, cut points {} ({} inside retirements), \
         lost {}, resurrected {}, reused ids {}, wrong data {}, open failures {}, bad retirement erases {} ({:.1} s)",
        all.peak_pending,
        all.points,
        all.in_retirement,
        c.lost,
        c.resurrected,
        c.reused,
        c.wrong,
        all.open_failures,
        all.bad_erases,
        start.elapsed().as_secs_f64()
    );
    assert!(
        c.clean() && all.open_failures + all.bad_erases == 0,
        "first failure: {}",
        all.first.unwrap_or_default()
    );
    assert!(all.peak_pending >= N, "peak pending {}", all.peak_pending);
    assert!(
        all.held_at_retirement >= N,
        "a retirement began with {} held",
        all.held_at_retirement
    );
    let target = layout.retirements();
    assert!(
        all.dense_ops > 0,
        "no retirement checked at every operation"
    );
    assert!(all.in_retirement > 0 && all.retirements >= target * Mode::ALL.len() as u64);
    if layout.group > 1 {
        assert!(
            all.copy_blocks > 1,
            "copies of a retirement within one block"
        );
    }
    assert_eq!(c.checked, all.points * Torn::variants([0, 0]).len() as u64);
}
