//! I10 liveness under brown-outs, with I1–I4 checked after every recovery.
//!
//! A brown-out is a burst of power cuts: after a cut, power comes back, and 4 times
//! in 10 it fails again within the first 1..=6 programs or erases after the
//! restart, up to 20 times in a row; otherwise the next cut lands anywhere in the
//! next 120 operations of a random workload (pushes of random sizes up to the
//! largest event, acks in any order, reopens; in every other run the consumer never
//! acks its oldest event until power is stable). Every cut tears its operation in a
//! random variant (not started, completed, no bit, a random subset of bits, a
//! prefix of units; for erases random bytes or a prefix).
//!
//! The matrix: {3 sectors (the fewest `Config` accepts), 5, 8} × {in-place acks,
//! record acks, record acks + authentication} × {4, 8, 32 B program units}, each at
//! the largest `N` `Config` accepts for events of `MAX_ENCODED_LEN` bytes, plus the
//! edges: 256 B sectors, 1 B program units, 8 KiB sectors, the most sectors
//! (65 535) and the largest (1 MiB, where `N` reaches the thousands), and the
//! reserve from none to most of the region.
//!
//! After each run of cuts, stable power: the store must open, give back every event
//! it promised (I1, I4) and none it acked (I2), take `N` new events under fresh ids
//! (I3, I10) and ack them. A store that cannot open is an open failure; a write that
//! panics for any reason but the cut is a bricked store.
//!
//! `BROWNOUT_CUTS` sets the cuts per configuration (default 4000). A second test
//! draws random geometries `Config` accepts and runs the same bursts on each.

mod support;

use monitor_events::journal::{
    max_pending, max_pending_with_reserve, AckMode, Auth, Config, Journal,
};
use monitor_events::{Geometry, Medium, MAX_ENCODED_LEN};
use monitor_events_flash::sim::{is_power_cut, panic_text, quiet_power_cuts, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::{check, Counts, InFlight, Model};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    InPlace,
    Record,
    RecordAuth,
}

/// What the runs found.
#[derive(Clone, Debug, Default)]
struct Tally {
    configs: u64,
    /// Of those, configurations where the region, not one sector, bounds `N`.
    region_bounded: u64,
    cuts: u64,
    bricked: u64,
    open_failures: u64,
    counts: Counts,
    /// The most events pending after a cut.
    peak_pending: u64,
    /// The first failure seen, to reproduce it.
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.configs += o.configs;
        self.region_bounded += o.region_bounded;
        self.cuts += o.cuts;
        self.bricked += o.bricked;
        self.open_failures += o.open_failures;
        self.counts.add(o.counts);
        self.peak_pending = self.peak_pending.max(o.peak_pending);
        if self.first.is_none() {
            self.first = o.first;
        }
    }

    fn fail(&mut self, what: String) {
        eprintln!("{what}");
        if self.first.is_none() {
            self.first = Some(what);
        }
    }
}

/// A number from the environment, or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `work(0..count)` on every core and adds up what each returns.
fn fan_out(count: u64, work: impl Fn(u64) -> Tally + Sync) -> Tally {
    let next = std::sync::atomic::AtomicU64::new(0);
    let total = std::sync::Mutex::new(Tally::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = work(i);
                total.lock().unwrap().add(t);
            });
        }
    });
    total.into_inner().unwrap()
}

/// Prints the liveness line for `what` and fails on any violation, naming the
/// first one.
fn report(what: &str, t: &Tally) {
    println!(
        "{what}: configs {} ({} bounded by the region), cuts {}, bricked {}, open failures {}, lost {}, resurrected {}, reused ids {}, peak pending {}",
        t.configs, t.region_bounded, t.cuts, t.bricked, t.open_failures, t.counts.lost, t.counts.resurrected, t.counts.reused, t.peak_pending
    );
    assert!(
        t.bricked + t.open_failures == 0 && t.counts.clean(),
        "first failure: {}",
        t.first.clone().unwrap_or_default()
    );
}

fn config<const K: usize>(
    g: Geometry,
    mode: Mode,
    max_body: usize,
    reserve: Option<u32>,
) -> Config<K> {
    let g = Geometry {
        multiwrite: mode == Mode::InPlace,
        ..g
    };
    let c = match reserve {
        Some(r) => Config::<K>::try_new_with_reserve(g, max_body, r),
        None => Config::<K>::try_new(g, max_body),
    }
    .unwrap_or_else(|e| panic!("{g:?}, reserve {reserve:?}: {e}"));
    match mode {
        Mode::InPlace => c.with_ack_mode(AckMode::InPlace).unwrap(),
        Mode::Record => c.with_ack_mode(AckMode::Record).unwrap(),
        Mode::RecordAuth => c
            .with_auth(Auth::new([0x5A; 32], *b"brown-out test  "))
            .unwrap(),
    }
}

/// The flash as the journal sees it: sectors of `group` erase blocks.
fn grouped(flash: &mut SimFlash, group: u32) -> Grouped<&mut SimFlash> {
    Grouped::new(flash, group).expect("a grouping the flash was sized for")
}

/// Random operations until the armed cut fires (the closure then panics).
fn operate<const K: usize>(
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<K>,
    model: &mut Model,
    rng: &mut Pcg32,
    max_body: usize,
    (stuck, full): (bool, bool),
) -> Result<(), String> {
    let mut j = Journal::open(grouped(flash, group), cfg).map_err(|e| format!("open: {e}"))?;
    for _ in 0..100_000 {
        let r = rng.below(100);
        // With room for hundreds, lean on pushes so that pending climbs toward K
        // and retirements copy hundreds of events.
        // A full store: pushes until `K` pending, then acks and pushes keep it
        // there, so that sectors hold nothing but pending copies and retirements
        // go round the region (where the region, not one sector, bounds `K`).
        let pushes = if full {
            90
        } else if K >= 128 {
            80
        } else {
            50
        };
        if r < pushes && j.pending_count() < K {
            let len = if rng.below(3) == 0 {
                max_body
            } else {
                1 + rng.below(max_body as u32) as usize
            };
            let payload: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            model.in_flight = Some(InFlight::Push(payload.clone()));
            match j.push(&payload) {
                Ok(id) => model.pushed(id, payload),
                Err(e) => {
                    return Err(format!(
                        "push refused with {} pending: {e}",
                        j.pending_count()
                    ))
                }
            }
        } else if r < pushes + 45 * (100 - pushes) / 50 && j.pending_count() > usize::from(stuck) {
            // A stuck consumer never acks the oldest event: every retirement must
            // copy it forward.
            let ids = j.pending_ids();
            let skip = usize::from(stuck);
            let id = ids[skip + rng.below((ids.len() - skip) as u32) as usize];
            model.in_flight = Some(InFlight::Ack(id.0));
            j.ack(id)
                .map_err(|e| format!("ack of a pending id refused: {e}"))?;
            model.acked(id);
        } else {
            drop(j);
            j = Journal::open(grouped(flash, group), cfg).map_err(|e| format!("reopen: {e}"))?;
        }
    }
    Err("no cut fired in 100000 operations".into())
}

/// One run: `cuts` cuts in bursts from a blank flash, then stable power; with
/// `no_bits`, half the cuts tear their operation without changing a bit.
#[allow(clippy::too_many_arguments)]
fn run<const K: usize>(
    g: Geometry,
    group: u32,
    mode: Mode,
    max_body: usize,
    reserve: Option<u32>,
    cuts: u64,
    seed: u64,
    no_bits: bool,
) -> Tally {
    let cfg = config::<K>(g, mode, max_body, reserve);
    let name = format!(
        "{}x{} B ({group} blocks each), unit {} B, {mode:?}, N {K}, reserve {}, seed {seed}",
        g.sector_count,
        g.sector_size,
        g.write_size,
        cfg.reserve()
    );
    let mut t = Tally {
        configs: 1,
        region_bounded: u64::from(cfg.region_bounded()),
        ..Tally::default()
    };
    // The sectors the journal sees are `group` erase blocks of the flash each.
    let blocks = Geometry {
        sector_size: g.sector_size / group,
        sector_count: g.sector_count * group,
        ..cfg.geometry()
    };
    let mut flash = SimFlash::new(blocks);
    let mut model = Model::default();
    let mut rng = Pcg32::new(seed);
    let stuck = seed % 2 == 0 && K > 1;
    let full = seed % 3 == 1 && K > 1;
    let mut burst = 0;
    for cut in 0..cuts {
        let k = if burst > 0 {
            burst -= 1;
            rng.below(6)
        } else {
            if rng.below(10) < 4 {
                burst = 1 + rng.below(20);
            }
            // With room for hundreds, some runs between cuts are long enough for
            // pending to climb and for retirements of hundreds of events.
            rng.below(if K >= 128 { 120 + 8 * K as u32 } else { 120 })
        } as u64;
        // With `no_bits`, half the cuts leave a program that changed no bit (its
        // units spent all the same) or an erase that changed nothing.
        let torn = if no_bits && rng.below(2) == 0 {
            Torn::NoBits
        } else {
            Torn::random(u64::from(rng.next_u32()) << 8 | u64::from(rng.next_u32() & 0xFF))
        };
        flash.cut_after(k, torn);
        let what = format!("{name}: cut {cut} ({torn:?} at op {k} after the restart)");
        let r = catch_unwind(AssertUnwindSafe(|| {
            operate::<K>(
                &mut flash,
                group,
                cfg,
                &mut model,
                &mut rng,
                max_body,
                (stuck, full),
            )
        }));
        t.cuts += 1;
        match r {
            Ok(Err(e)) if e.starts_with("open") || e.starts_with("reopen") => {
                t.open_failures += 1;
                t.fail(format!("{what}: {e}"));
                return t;
            }
            Ok(Err(e)) => {
                t.bricked += 1;
                t.fail(format!("{what}: {e}"));
                return t;
            }
            Ok(Ok(())) => unreachable!(),
            Err(p) => {
                let msg = panic_text(&*p);
                if !is_power_cut(&msg) {
                    t.bricked += 1;
                    t.fail(format!("{what}: panicked: {msg}"));
                    return t;
                }
            }
        }
        flash.power_on();
        let mut j = match Journal::open(grouped(&mut flash, group), cfg) {
            Ok(j) => j,
            Err(e) => {
                t.open_failures += 1;
                t.fail(format!("{what}: open after the cut: {e}"));
                return t;
            }
        };
        t.peak_pending = t.peak_pending.max(j.pending_count() as u64);
        let (c, got) = check(&model, &mut j, &what);
        if !c.clean() {
            t.fail(format!("{what}: {c:?}"));
        }
        t.counts.add(c);
        model.adopt(&got);
    }
    // Stable power: everything promised is there; N new events go in and come back.
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Counts, String> {
        let mut j =
            Journal::open(grouped(&mut flash, group), cfg).map_err(|e| format!("open: {e}"))?;
        let mut c = check(&model, &mut j, &name).0;
        for id in j.pending_ids() {
            j.ack(id).map_err(|e| format!("ack: {e}"))?;
            model.acked(id);
        }
        let mut fresh = Vec::new();
        for i in 0..K {
            let payload: Vec<u8> = (0..max_body).map(|b| (i * 31 + b) as u8).collect();
            let id = j
                .push(&payload)
                .map_err(|e| format!("push {i} of {K} on an empty store: {e}"))?;
            if model.max_id.is_some_and(|m| id.0 <= m) {
                c.reused += 1;
            }
            model.pushed(id, payload);
            fresh.push(id);
        }
        drop(j);
        let mut j =
            Journal::open(grouped(&mut flash, group), cfg).map_err(|e| format!("open: {e}"))?;
        c.add(check(&model, &mut j, &name).0);
        for id in fresh {
            j.ack(id).map_err(|e| format!("ack: {e}"))?;
            model.acked(id);
        }
        drop(j);
        let mut j =
            Journal::open(grouped(&mut flash, group), cfg).map_err(|e| format!("open: {e}"))?;
        c.add(check(&model, &mut j, &name).0);
        if j.pending_count() != 0 {
            c.resurrected += j.pending_count() as u64;
        }
        Ok(c)
    }));
    match r {
        Ok(Ok(c)) => {
            if !c.clean() {
                t.fail(format!("{name}: stable power: {c:?}"));
            }
            t.counts.add(c);
        }
        Ok(Err(e)) if e.starts_with("open") => {
            t.open_failures += 1;
            t.fail(format!("{name}: stable power: {e}"));
        }
        Ok(Err(e)) => {
            t.bricked += 1;
            t.fail(format!("{name}: stable power: {e}"));
        }
        Err(p) => {
            t.bricked += 1;
            t.fail(format!(
                "{name}: stable power: panicked: {}",
                panic_text(&*p)
            ));
        }
    }
    t
}

/// Runs one configuration in runs of 1000 cuts (each from a blank flash, each
/// ending in stable power), `N` the largest `Config` accepts.
macro_rules! case {
    ($jobs:ident, $sectors:expr, $size:expr, $unit:expr, $mode:expr, $body:expr) => {
        case!($jobs, $sectors, $size, $unit, $mode, $body, None, u64::MAX)
    };
    ($jobs:ident, $sectors:expr, $size:expr, $unit:expr, $mode:expr, $body:expr, $reserve:expr) => {
        case!(
            $jobs,
            $sectors,
            $size,
            $unit,
            $mode,
            $body,
            $reserve,
            u64::MAX
        )
    };
    ($jobs:ident, $sectors:expr, $size:expr, $unit:expr, $mode:expr, $body:expr, $reserve:expr, $cap:expr) => {
        case!($jobs, $sectors, $size, $unit, $mode, $body, $reserve, $cap, 1)
    };
    ($jobs:ident, $sectors:expr, $size:expr, $unit:expr, $mode:expr, $body:expr, $reserve:expr, $cap:expr, $group:expr) => {{
        const G: Geometry = Geometry {
            sector_size: $size,
            sector_count: $sectors,
            write_size: $unit,
            multiwrite: false,
        };
        const EDGE: usize = match $reserve {
            Some(r) => max_pending_with_reserve(G, $body, matches!($mode, Mode::RecordAuth), r),
            None => max_pending(G, $body, matches!($mode, Mode::RecordAuth)),
        };
        // The largest regions accept hundreds of thousands: 2 048 is scale enough,
        // and 64 where every open reads thousands of sector headers.
        const CAP: usize = if $sectors > 1024 { 64 } else { 2048 };
        const K: usize = if EDGE > CAP { CAP } else { EDGE };
        let job: Box<dyn Fn(u64, u64) -> Tally + Send + Sync> =
            Box::new(|cuts, seed| run::<K>(G, $group, $mode, $body, $reserve, cuts, seed, false));
        $jobs.push((job, $cap));
    }};
}

/// I10 (with I1–I4): the brown-out matrix. Prints the liveness line.
#[test]
fn i10_brownout_liveness() {
    quiet_power_cuts();
    let mut jobs: Vec<Job> = Vec::new();
    const MAX: usize = MAX_ENCODED_LEN;
    for_matrix!(jobs);
    // Edges of what Config accepts.
    case!(jobs, 3, 256, 32, Mode::RecordAuth, 16);
    case!(jobs, 8, 256, 32, Mode::InPlace, 24);
    case!(jobs, 5, 4096, 1, Mode::Record, MAX);
    case!(jobs, 6, 8192, 32, Mode::Record, MAX);
    case!(jobs, 6, 8192, 32, Mode::RecordAuth, MAX);
    case!(jobs, 4, 4096, 4, Mode::InPlace, MAX);
    // The largest regions Config accepts: the most sectors (65 535 of 256 B), and
    // the largest sectors (1 MiB), where N reaches the thousands.
    case!(jobs, 65535, 256, 4, Mode::Record, 16, None, 300);
    case!(jobs, 3, 1 << 20, 32, Mode::RecordAuth, MAX, None, 1000);
    // The reserve at its edges: none on a large region, as much as fits.
    case!(jobs, 8, 4096, 4, Mode::InPlace, MAX, Some(0));
    case!(jobs, 8, 4096, 8, Mode::RecordAuth, MAX, Some(0));
    case!(jobs, 8, 4096, 4, Mode::Record, MAX, Some(5));

    let t = run_jobs(&jobs, env_u64("BROWNOUT_CUTS", 4000));
    report("brown-out liveness", &t);
}

/// I10 (with I1–I4) where the region, not one sector, bounds `N` (the copy
/// budget per sector): `N` at the edge `Config` accepts, on small sectors so
/// that retirements go round many of them, in every mode, with the smallest
/// reserve the rule allows (1) and the default, program units of 1 to 32 B,
/// sectors of several erase blocks; and at scale (64 and 256 sectors of 4 KiB,
/// over a thousand pending). A third of the runs keep the store full.
/// `BROWNOUT_REGION_CUTS` sets the cuts per configuration (default 1500, 300
/// for the two largest).
#[test]
fn i10_brownout_region_bounded() {
    quiet_power_cuts();
    let mut jobs: Vec<Job> = Vec::new();
    const MAX: usize = MAX_ENCODED_LEN;
    case!(jobs, 16, 256, 4, Mode::Record, 24);
    case!(jobs, 12, 512, 8, Mode::InPlace, 60, Some(1));
    case!(jobs, 9, 1024, 32, Mode::RecordAuth, 100, Some(1));
    case!(jobs, 24, 512, 1, Mode::RecordAuth, 40);
    case!(jobs, 6, 4096, 4, Mode::InPlace, MAX, Some(1));
    case!(jobs, 5, 4096, 32, Mode::Record, MAX, Some(1));
    case!(jobs, 10, 2048, 16, Mode::Record, 300, Some(2), u64::MAX, 4);
    case!(
        jobs,
        8,
        1024,
        8,
        Mode::RecordAuth,
        MAX,
        Some(1),
        u64::MAX,
        4
    );
    // The fewest sectors the region rule allows (4: reserve 1), authenticated,
    // with 8 B and 32 B units.
    case!(jobs, 4, 1024, 8, Mode::RecordAuth, 60);
    case!(jobs, 4, 2048, 32, Mode::RecordAuth, 100);
    case!(jobs, 64, 4096, 4, Mode::InPlace, MAX, None, 300);
    case!(jobs, 256, 4096, 1, Mode::Record, MAX, None, 300);
    let t = run_jobs(&jobs, env_u64("BROWNOUT_REGION_CUTS", 1500));
    report("brown-out liveness, capacity bounded by the region", &t);
    assert_eq!(t.region_bounded, t.configs, "every configuration here");
    assert!(
        t.peak_pending >= 1000,
        "pending never passed a thousand: {}",
        t.peak_pending
    );
}

/// A configuration's run and the most cuts it takes (the largest regions take
/// fewer: every open reads all their headers).
type Job = (Box<dyn Fn(u64, u64) -> Tally + Send + Sync>, u64);

/// Runs every job for `per` cuts (at most its cap) in runs of 1000, each from a
/// blank flash and ending in stable power.
fn run_jobs(jobs: &[Job], per: u64) -> Tally {
    let t = fan_out(jobs.len() as u64, |i| {
        let (job, cap) = &jobs[i as usize];
        let per = per.min(*cap);
        let mut t = Tally::default();
        for r in 0..per.div_ceil(1000) {
            let cuts = (per - r * 1000).min(1000);
            let mut one = job(cuts, 1 + i * 1000 + r);
            one.configs = u64::from(r == 0);
            one.region_bounded *= u64::from(r == 0);
            t.add(one);
        }
        t
    });
    assert_eq!(t.configs, jobs.len() as u64);
    let expected: u64 = jobs.iter().map(|(_, cap)| per.min(*cap)).sum();
    assert!(t.cuts >= expected, "{} cuts of {expected}", t.cuts);
    t
}

/// I10 (with I1–I4) with hundreds pending: sectors of several erase blocks
/// (`Grouped`) sized for a force-close burst, so that retirements copy hundreds
/// of events and cuts land between the blocks of a sector's erase. 4 x 128 KiB of
/// 4 KiB blocks on a 1 B unit, 3 x 64 KiB of 4 KiB blocks authenticated (N 260:
/// one sector holds them), 4 x 16 KiB of 256 B blocks with a 32 B unit, 4 x 256
/// KiB of 4 KiB blocks, each with N at the edge `Config` accepts (with 4 sectors
/// the region bounds it: 1 137 on 4 x 128 KiB; capped at 2 048). Pushes lead 4
/// to 1 and some runs between cuts are long, so pending climbs to the hundreds
/// (checked) and past a thousand.
/// `BROWNOUT_GROUPED_CUTS` sets the cuts per configuration (default 2000, 500 for
/// the largest).
#[test]
fn i10_brownout_grouped_sectors() {
    quiet_power_cuts();
    let mut jobs: Vec<Job> = Vec::new();
    const MAX: usize = MAX_ENCODED_LEN;
    case!(
        jobs,
        4,
        128 << 10,
        1,
        Mode::InPlace,
        MAX,
        None,
        u64::MAX,
        32
    );
    case!(
        jobs,
        3,
        64 << 10,
        4,
        Mode::RecordAuth,
        MAX,
        None,
        u64::MAX,
        16
    );
    case!(jobs, 4, 16 << 10, 32, Mode::Record, MAX, None, u64::MAX, 64);
    // More than a thousand pending: 4 x 256 KiB of 4 KiB blocks (N 2048).
    case!(jobs, 4, 256 << 10, 1, Mode::Record, MAX, None, 500, 64);
    let t = run_jobs(&jobs, env_u64("BROWNOUT_GROUPED_CUTS", 2000));
    report("brown-out liveness, grouped sectors", &t);
    assert!(
        t.peak_pending >= 256,
        "pending never reached the hundreds: {}",
        t.peak_pending
    );
}

/// I10 (with I1–I4) at random geometries: each draw is a configuration `Config`
/// accepts (sector size 256 B to 16 KiB, 3 to 16 sectors, program unit 1 to 32 B,
/// any mode, any reserve, a random body bound, N up to what fits, each sector 1 to
/// 8 erase blocks of the flash through `Grouped`), driven through
/// the same bursts of cuts. `BROWNOUT_GEOMETRIES` sets the draws (default 120),
/// `BROWNOUT_GEOMETRY_CUTS` the cuts per draw (default 300).
#[test]
fn i10_brownout_random_geometries() {
    quiet_power_cuts();
    let draws = env_u64("BROWNOUT_GEOMETRIES", 120);
    let cuts = env_u64("BROWNOUT_GEOMETRY_CUTS", 300);
    let t = fan_out(draws, |draw| random_geometry_run(draw, cuts));
    report("brown-out liveness, random geometries", &t);
    assert_eq!(t.configs, draws);
    assert!(
        draws < 20 || (t.region_bounded > 0 && t.region_bounded < draws),
        "the draws reach both capacity rules: {} of {draws} bounded by the region",
        t.region_bounded
    );
}

/// I10 (with I1–I4) where a torn erase of a sector made of several erase blocks
/// leaves some blocks as they were: sectors of 2 to 16 blocks of 256 B, one
/// program per unit, records as large as the sector takes or about a block (so
/// they straddle blocks, and a torn record can sit alone in a block the erase
/// did not reach). Half the cuts leave a program that changed no bit or an erase
/// that changed nothing. `BROWNOUT_SMALL_BLOCK_DRAWS` sets the draws (default
/// 300), 300 cuts each.
#[test]
fn i10_brownout_grouped_small_blocks() {
    quiet_power_cuts();
    let draws = env_u64("BROWNOUT_SMALL_BLOCK_DRAWS", 300);
    let t = fan_out(draws, |d| random_run(0x5B_0000, d, 300, true));
    report("brown-out liveness, sectors of small erase blocks", &t);
    assert_eq!(t.configs, draws);
}

/// One random draw: a geometry, mode, reserve and body bound `Config` accepts, and
/// the largest of 1, 2, 4, 8, 16, 32 pending events it holds.
fn random_geometry_run(draw: u64, cuts: u64) -> Tally {
    random_run(0xB10_0000, draw, cuts, false)
}

/// [`random_geometry_run`]'s draw `draw` of the sequence `base`; with
/// `small_blocks`, every sector is 2 to 16 erase blocks of 256 B, one program per
/// unit, bodies near the largest the sector takes or about a block.
fn random_run(base: u64, draw: u64, cuts: u64, small_blocks: bool) -> Tally {
    let mut rng = Pcg32::new(base + draw);
    loop {
        let g = Geometry {
            sector_size: if small_blocks {
                512 << rng.below(4)
            } else {
                256 << rng.below(7)
            },
            sector_count: 3 + rng.below(14),
            write_size: 1 << rng.below(6),
            multiwrite: false,
        };
        // Sometimes the sectors are several erase blocks of the flash.
        let group = if small_blocks {
            g.sector_size / 256
        } else {
            (1u32 << rng.below(4)).min(g.sector_size / 256)
        };
        let mode = if small_blocks {
            [Mode::Record, Mode::RecordAuth][rng.below(2) as usize]
        } else {
            [Mode::InPlace, Mode::Record, Mode::RecordAuth][rng.below(3) as usize]
        };
        let reserve = rng.below(g.sector_count - 2);
        let body = if small_blocks && rng.below(2) == 0 {
            (g.sector_size / 2 - rng.below(g.sector_size / 4)) as usize
        } else if small_blocks {
            32 + rng.below(224) as usize
        } else {
            1 + rng.below(MAX_ENCODED_LEN as u32 * 2) as usize
        };
        let fits = max_pending_with_reserve(g, body, mode == Mode::RecordAuth, reserve);
        let seed = draw * 7919 + 1;
        let r = Some(reserve);
        macro_rules! with_n {
            ($($n:literal)*) => {
                match fits {
                    $(f if ($n..2 * $n).contains(&f) || ($n == 32 && f >= 32) => {
                        return run::<$n>(g, group, mode, body, r, cuts, seed, small_blocks)
                    })*
                    _ => continue, // nothing fits: draw again
                }
            };
        }
        with_n!(1 2 4 8 16 32);
    }
}

/// The {3, 5, 8 sectors} × {in-place, record, record + auth} × {4, 8, 32 B} matrix.
macro_rules! for_matrix {
    ($jobs:ident) => {
        for_matrix!(@s $jobs, 3);
        for_matrix!(@s $jobs, 5);
        for_matrix!(@s $jobs, 8);
    };
    (@s $jobs:ident, $s:literal) => {
        for_matrix!(@m $jobs, $s, Mode::InPlace);
        for_matrix!(@m $jobs, $s, Mode::Record);
        for_matrix!(@m $jobs, $s, Mode::RecordAuth);
    };
    (@m $jobs:ident, $s:literal, $mode:expr) => {
        case!($jobs, $s, 4096, 4, $mode, MAX_ENCODED_LEN);
        case!($jobs, $s, 4096, 8, $mode, MAX_ENCODED_LEN);
        case!($jobs, $s, 4096, 32, $mode, MAX_ENCODED_LEN);
    };
}
use for_matrix;

/// The regression the authenticated journal had: a sector header whose program
/// was torn (the 24 B header landed, its 16 B tag partly or not at all) read as
/// forged, and every later `open` failed. Every prefix of every header program of
/// a run (with restarts between) must open, hold what was promised, and take
/// more events.
#[test]
fn i10_torn_authenticated_sector_header_opens() {
    use monitor_events_flash::sim::Op;
    use std::{cell::RefCell, rc::Rc};
    const G: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 4,
        multiwrite: false,
    };
    let cfg = config::<16>(G, Mode::RecordAuth, 120, None);
    let model = Rc::new(RefCell::new(Model::default()));
    /// The flash before a header program, the header's bytes, its offset, and
    /// what the store had promised then.
    type Fork = (SimFlash, Vec<u8>, u32, Model);
    let forks: Rc<RefCell<Vec<Fork>>> = Rc::default();
    let mut flash = SimFlash::new(cfg.geometry());
    {
        let (model, forks) = (model.clone(), forks.clone());
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            if let Op::Program { offset, data } = op {
                if offset % 4096 == 0 {
                    let m = model.borrow().clone();
                    forks
                        .borrow_mut()
                        .push((before.clone(), data.clone(), *offset, m));
                }
            }
        });
    }
    let mut rng = Pcg32::new(10);
    for round in 0..12 {
        let mut j = Journal::open(&mut flash, cfg).unwrap();
        for _ in 0..(10 + rng.below(40)) {
            if j.pending_count() == 16 || (j.pending_count() > 0 && rng.below(3) == 0) {
                let ids = j.pending_ids();
                let id = ids[rng.below(ids.len() as u32) as usize];
                model.borrow_mut().in_flight = Some(InFlight::Ack(id.0));
                j.ack(id).unwrap();
                model.borrow_mut().acked(id);
            } else {
                let payload = vec![round as u8; 1 + rng.below(120) as usize];
                model.borrow_mut().in_flight = Some(InFlight::Push(payload.clone()));
                let id = j.push(&payload).unwrap();
                model.borrow_mut().pushed(id, payload);
            }
        }
    }
    let forks = forks.borrow();
    assert!(forks.len() >= 8, "header programs seen: {}", forks.len());
    let mut checked = 0;
    for (before, data, offset, model) in forks.iter() {
        assert_eq!(data.len(), 40, "an authenticated header is 40 B");
        for units in 0..=10 {
            let mut fork = before.clone();
            if units > 0 {
                fork.program(*offset, &data[..units * 4]).unwrap();
            }
            let what = format!("header at {offset} torn after {units} of 10 units");
            let mut j = Journal::open(&mut fork, cfg).unwrap_or_else(|e| panic!("{what}: {e}"));
            let (c, _) = check(model, &mut j, &what);
            assert!(c.clean(), "{what}: {c:?}");
            if j.pending_count() == 16 {
                let oldest = j.pending().next().unwrap().0;
                j.ack(oldest).unwrap();
            }
            j.push(&[0xEE; 120])
                .unwrap_or_else(|e| panic!("{what}: push: {e}"));
            drop(j);
            Journal::open(&mut fork, cfg).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            checked += 1;
        }
    }
    println!("torn authenticated sector headers checked: {checked}");
}
