//! The brown-out liveness machinery (I10, with I1–I4 after every recovery), run
//! through either build of the engine ([`Path`]): bursts of power cuts over a
//! configuration, then stable power. See `tests/brownout.rs` for the scenario and
//! its matrix.
// Each test file takes the parts it needs.
#![allow(dead_code, unused_imports, unused_macros)]

pub use crate::support::env_u64;
use crate::support::{
    ack_random, check, random_body, sectors, Bursts, Counts, InFlight, Model, Path, PathJournal,
    LARGEST_BODY,
};
use monitor_events::journal::{max_pending_with_reserve, AckMode, Auth, Config};
use monitor_events::{Geometry, Medium, MAX_ENCODED_LEN};
use monitor_events_flash::sim::{is_power_cut, panic_text, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    InPlace,
    Record,
    RecordAuth,
}

/// What the runs found.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub configs: u64,
    /// Of those, configurations where the region, not one sector, bounds `N`.
    pub region_bounded: u64,
    pub cuts: u64,
    pub bricked: u64,
    pub open_failures: u64,
    pub counts: Counts,
    /// The most events pending after a cut.
    pub peak_pending: u64,
    /// The first failure seen, to reproduce it.
    pub first: Option<String>,
}

impl Tally {
    pub fn add(&mut self, o: Tally) {
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

    pub fn fail(&mut self, what: String) {
        eprintln!("{what}");
        if self.first.is_none() {
            self.first = Some(what);
        }
    }
}

/// Runs `work(0..count)` on every core and adds up what each returns.
pub fn fan_out(count: u64, work: impl Fn(u64) -> Tally + Sync) -> Tally {
    crate::support::fan_out_with(count, work, Tally::add)
}

/// Prints the liveness line for `what` and fails on any violation, naming the
/// first one.
pub fn report(what: &str, t: &Tally) {
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

pub fn config<const K: usize>(
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

/// Random operations until the armed cut fires (the closure then panics).
#[allow(clippy::too_many_arguments)]
fn operate<const K: usize>(
    path: Path,
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<K>,
    model: &mut Model,
    rng: &mut Pcg32,
    max_body: usize,
    (stuck, full): (bool, bool),
) -> Result<(), String> {
    let mut j =
        PathJournal::open(path, sectors(flash, group), cfg).map_err(|e| format!("open: {e}"))?;
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
            let payload = random_body(rng, max_body);
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
            ack_random(&mut j, model, rng, usize::from(stuck))?;
        } else {
            drop(j);
            j = PathJournal::open(path, sectors(flash, group), cfg)
                .map_err(|e| format!("reopen: {e}"))?;
        }
    }
    Err("no cut fired in 100000 operations".into())
}

/// One run through `path`: `cuts` cuts in bursts from a blank flash, then stable
/// power; with `no_bits`, half the cuts tear their operation without changing a
/// bit.
#[allow(clippy::too_many_arguments)]
pub fn run<const K: usize>(
    path: Path,
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
    let mut bursts = Bursts::default();
    for cut in 0..cuts {
        // With room for hundreds, some runs between cuts are long enough for
        // pending to climb and for retirements of hundreds of events.
        let k = bursts.next(&mut rng, if K >= 128 { 120 + 8 * K as u32 } else { 120 });
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
                path,
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
        let mut j = match PathJournal::open(path, sectors(&mut flash, group), cfg) {
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
        let mut j = PathJournal::open(path, sectors(&mut flash, group), cfg)
            .map_err(|e| format!("open: {e}"))?;
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
        let mut j = PathJournal::open(path, sectors(&mut flash, group), cfg)
            .map_err(|e| format!("open: {e}"))?;
        c.add(check(&model, &mut j, &name).0);
        for id in fresh {
            j.ack(id).map_err(|e| format!("ack: {e}"))?;
            model.acked(id);
        }
        drop(j);
        let mut j = PathJournal::open(path, sectors(&mut flash, group), cfg)
            .map_err(|e| format!("open: {e}"))?;
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
        let job: Box<dyn Fn(u64, u64, Path) -> Tally + Send + Sync> =
            Box::new(|cuts, seed, path| {
                run::<K>(path, G, $group, $mode, $body, $reserve, cuts, seed, false)
            });
        $jobs.push((job, $cap));
    }};
}

/// A configuration's run and the most cuts it takes (the largest regions take
/// fewer: every open reads all their headers).
pub type Job = (Box<dyn Fn(u64, u64, Path) -> Tally + Send + Sync>, u64);

/// Runs every job through `path` for `per` cuts (at most its cap) in runs of
/// 1000, each from a blank flash and ending in stable power.
pub fn run_jobs(jobs: &[Job], per: u64, path: Path) -> Tally {
    let t = fan_out(jobs.len() as u64, |i| {
        let (job, cap) = &jobs[i as usize];
        let per = per.min(*cap);
        let mut t = Tally::default();
        for r in 0..per.div_ceil(1000) {
            let cuts = (per - r * 1000).min(1000);
            let mut one = job(cuts, 1 + i * 1000 + r, path);
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

/// One random draw: a geometry, mode, reserve and body bound `Config` accepts, and
/// the largest of 1, 2, 4, 8, 16, 32 pending events it holds.
pub fn random_geometry_run(path: Path, draw: u64, cuts: u64) -> Tally {
    random_run(path, 0xB10_0000, draw, cuts, false)
}

/// [`random_geometry_run`]'s draw `draw` of the sequence `base`; with
/// `small_blocks`, every sector is 2 to 16 erase blocks of 256 B, one program per
/// unit, bodies near the largest the sector takes or about a block.
pub fn random_run(path: Path, base: u64, draw: u64, cuts: u64, small_blocks: bool) -> Tally {
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
        let seed = draw * 7919 + 1;
        let picked = Draw {
            g,
            group,
            mode,
            body,
            reserve,
        };
        if let Some(t) = run_largest_n(path, picked, cuts, seed, small_blocks) {
            return t;
        }
    }
}

/// What a random draw picked.
#[derive(Clone, Copy)]
struct Draw {
    g: Geometry,
    group: u32,
    mode: Mode,
    body: usize,
    reserve: u32,
}

/// [`run`] on `d` with the largest power of two `N` up to 32 that fits, or
/// `None` when nothing fits (the caller draws again).
fn run_largest_n(path: Path, d: Draw, cuts: u64, seed: u64, no_bits: bool) -> Option<Tally> {
    let fits = max_pending_with_reserve(d.g, d.body, d.mode == Mode::RecordAuth, d.reserve);
    let (g, group, mode, body, r) = (d.g, d.group, d.mode, d.body, Some(d.reserve));
    macro_rules! with_n {
        ($($n:literal)*) => {
            match fits {
                $(f if ($n..2 * $n).contains(&f) || ($n == 32 && f >= 32) => {
                    Some(run::<$n>(path, g, group, mode, body, r, cuts, seed, no_bits))
                })*
                _ => None,
            }
        };
    }
    with_n!(1 2 4 8 16 32)
}

/// Draw `draw` of the largest bodies `Config` takes: sectors of 8 to 64 KiB (1,
/// 2 or 4 erase blocks each), 3 to 8 of them, program units of 1 to 32 B, any
/// ack mode and reserve, and a body bound from 2 KiB to the format's largest
/// (4 087 B), which a third of the pushes reach; `N` as large as fits (at most
/// 32).
pub fn largest_body_run(path: Path, draw: u64, cuts: u64) -> Tally {
    let mut rng = Pcg32::new(0xB16_B0D1 + draw);
    loop {
        let g = Geometry {
            sector_size: 8192 << rng.below(4),
            sector_count: 3 + rng.below(6),
            write_size: 1 << rng.below(6),
            multiwrite: false,
        };
        let group = 1u32 << rng.below(3);
        let mode = [Mode::InPlace, Mode::Record, Mode::RecordAuth][rng.below(3) as usize];
        let reserve = rng.below(g.sector_count - 2);
        let body = if rng.below(4) == 0 {
            LARGEST_BODY
        } else {
            2048 + rng.below(LARGEST_BODY as u32 - 2047) as usize
        };
        let seed = draw * 7919 + 3;
        let picked = Draw {
            g,
            group,
            mode,
            body,
            reserve,
        };
        if let Some(t) = run_largest_n(path, picked, cuts, seed, false) {
            return t;
        }
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
pub(crate) use {case, for_matrix};
