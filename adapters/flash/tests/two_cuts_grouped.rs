//! I10 with I1–I4: two power cuts in a row on sectors of several erase blocks
//! (`Grouped`), exhaustively, on flash that takes one program per unit.
//!
//! A cut during the erase of a grouped sector leaves its later blocks as they
//! were, and such a block can hold units that a torn program spent without
//! changing a bit: they read erased but must never be programmed again. This
//! test looks for every way two cuts can set that up.
//!
//! A seeded workload (pushes of bodies about a block long, so records straddle
//! blocks; acks in any order; reopens) runs on stable power long enough for
//! every sector to be retired and reused many times. Before each of its
//! programs and erases the flash is forked, and the operation is applied torn
//! in each variant (not started, no bit changed, a prefix, completed). Each fork
//! is reopened, checked against the model, and the workload goes on from it;
//! before each of its next `TWO_CUTS_WINDOW` operations (the repair after the
//! restart among them) it is forked again and that operation is torn (no bit
//! changed, a prefix). Each of those is reopened, checked, and run on stable
//! power until every erase block has been erased twice more (every sector
//! reused), then reopened and checked once more.
//!
//! A failure is any panic but the armed cut (a program the flash refuses, such
//! as a unit programmed twice), an `open` or a push/ack that fails, a store that
//! makes no progress, or a model mismatch: a returned push lost (I1), a returned
//! ack back (I2), an id reused (I3), wrong bytes (I4).
//!
//! `TWO_CUTS_OPS` sets the operations of the first run per configuration
//! (default 96), `TWO_CUTS_WINDOW` the window of second cuts (default 72).

mod support;

use monitor_events::journal::{max_pending, AckMode, Auth, Config, Journal};
use monitor_events::Geometry;
use monitor_events_flash::sim::{panic_text, quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use support::{check, Counts, InFlight, Model};

/// Erase block of the simulated flash.
const BLOCK: u32 = 256;

/// A number from the environment, or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the runs found.
#[derive(Clone, Debug, Default)]
struct Tally {
    /// Operations of the first runs (each counted in one part).
    first_ops: u64,
    first_cuts: u64,
    second_cuts: u64,
    /// Runs that panicked (other than the cut), failed to open, refused an
    /// operation or made no progress.
    failures: u64,
    counts: Counts,
    /// The first failure or mismatch, to reproduce it.
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.first_ops += o.first_ops;
        self.first_cuts += o.first_cuts;
        self.second_cuts += o.second_cuts;
        self.failures += o.failures;
        self.counts.add(o.counts);
        if self.first.is_none() {
            self.first.clone_from(&o.first);
        }
    }

    fn fail(&mut self, what: String) {
        self.failures += 1;
        self.note(what);
    }

    fn note(&mut self, what: String) {
        if self.first.is_none() {
            eprintln!("{what}");
            self.first = Some(what);
        }
    }

    fn counts(&mut self, c: Counts, what: &str) {
        if !c.clean() {
            self.note(format!("{what}: {c:?}"));
        }
        self.counts.add(c);
    }
}

/// One configuration: the flash, its grouping, the journal's configuration.
#[derive(Clone, Copy)]
struct Setup<const K: usize> {
    name: &'static str,
    blocks: u32,
    group: u32,
    cfg: Config<K>,
    max_body: usize,
    seed: u64,
}

impl<const K: usize> Setup<K> {
    fn flash(&self) -> SimFlash {
        SimFlash::new(Geometry {
            sector_size: BLOCK,
            sector_count: self.blocks,
            write_size: self.cfg.geometry().write_size,
            multiwrite: false,
        })
    }

    fn open<'a>(&self, flash: &'a mut SimFlash) -> Result<Jnl<'a, K>, String> {
        let m = Grouped::new(flash, self.group).map_err(|e| format!("grouping: {e:?}"))?;
        Journal::open(m, self.cfg).map_err(|e| format!("open: {e}"))
    }
}

type Jnl<'a, const K: usize> = Journal<Grouped<&'a mut SimFlash>, K>;

/// One step of the seeded workload: a push, an ack or a reopen. The model and
/// the generator are not borrowed while the journal writes (the fork hooks read
/// them).
fn step<'a, const K: usize>(
    s: &Setup<K>,
    j: Jnl<'a, K>,
    model: &RefCell<Model>,
    rng: &RefCell<Pcg32>,
) -> Result<Jnl<'a, K>, String> {
    let mut j = j;
    let r = rng.borrow_mut().below(100);
    let pending = j.pending_count();
    if r < 6 {
        let m = j.into_medium();
        return Journal::open(m, s.cfg).map_err(|e| format!("reopen: {e}"));
    }
    if pending < K && (pending == 0 || r < 55) {
        let payload: Vec<u8> = {
            let mut rng = rng.borrow_mut();
            let len = s.max_body * 2 / 5 + rng.below((s.max_body * 3 / 5 + 1) as u32) as usize;
            (0..len).map(|_| rng.next_u32() as u8).collect()
        };
        model.borrow_mut().in_flight = Some(InFlight::Push(payload.clone()));
        let id = j
            .push(&payload)
            .map_err(|e| format!("push with {pending} pending: {e}"))?;
        model.borrow_mut().pushed(id, payload);
    } else {
        let ids = j.pending_ids();
        let k = {
            let mut rng = rng.borrow_mut();
            if rng.below(3) == 0 {
                rng.below(ids.len() as u32) as usize
            } else {
                0
            }
        };
        let id = ids[k];
        model.borrow_mut().in_flight = Some(InFlight::Ack(id.0));
        j.ack(id).map_err(|e| format!("ack of a pending id: {e}"))?;
        model.borrow_mut().acked(id);
    }
    Ok(j)
}

/// Reopens a flash after a cut and checks it against the model, which then
/// adopts the operation the cut interrupted as the store settled it.
fn recover<const K: usize>(
    s: &Setup<K>,
    flash: &mut SimFlash,
    model: &RefCell<Model>,
    t: &mut Tally,
    what: &str,
) -> Result<(), String> {
    let mut j = s.open(flash)?;
    let (c, got) = check(&model.borrow(), &mut j, what);
    t.counts(c, what);
    model.borrow_mut().adopt(&got);
    Ok(())
}

/// The end of a run: recovery, then stable power until every erase block has
/// been erased at least twice more (every sector retired and reused), then a
/// reopen and a last check.
fn settle<const K: usize>(
    s: &Setup<K>,
    mut flash: SimFlash,
    model: Model,
    t: &mut Tally,
    what: &str,
) {
    let model = RefCell::new(model);
    let rng = RefCell::new(Pcg32::new(s.seed ^ 0x005E_771E));
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        recover(s, &mut flash, &model, t, what)?;
        let start = flash.stats().sector_erases.clone();
        let mut j = s.open(&mut flash)?;
        let mut steps = 0;
        loop {
            let done = {
                let now = &j.medium().inner().stats().sector_erases;
                now.iter().zip(&start).all(|(n, b)| n - b >= 2)
            };
            if done {
                break;
            }
            steps += 1;
            if steps > 20_000 {
                return Err("no progress: 20 000 steps without reusing every sector".into());
            }
            j = step(s, j, &model, &rng)?;
        }
        drop(j);
        let mut j = s.open(&mut flash)?;
        let (c, _) = check(&model.borrow(), &mut j, what);
        t.counts(c, &format!("{what}, after stable power"));
        Ok(())
    }));
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => t.fail(format!("{what}: {e}")),
        Err(p) => t.fail(format!("{what}: panicked: {}", panic_text(&*p))),
    }
}

/// A flash in the state a cut during `op` leaves, powered again.
fn torn_fork(before: &SimFlash, op: &Op, torn: Torn) -> SimFlash {
    let mut fork = before.clone();
    fork.power_on();
    fork.apply_torn(op, torn)
        .expect("the operation itself is legal");
    fork
}

/// The run on from a first cut: recovery, then `window` operations of the
/// workload, each forked and cut again in the second-cut variants.
fn second_run<const K: usize>(
    s: Setup<K>,
    mut flash: SimFlash,
    model: Model,
    rng: Pcg32,
    window: u64,
    what: String,
) -> Tally {
    let tally = Rc::new(RefCell::new(Tally::default()));
    let model = Rc::new(RefCell::new(model));
    let rng = Rc::new(RefCell::new(rng));
    let seen = Rc::new(Cell::new(0u64));
    {
        let (tally, model, seen, what) = (tally.clone(), model.clone(), seen.clone(), what.clone());
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let j = seen.get();
            if j >= window {
                return;
            }
            seen.set(j + 1);
            let mut t = tally.borrow_mut();
            for torn in [Torn::NoBits, Torn::Prefix(s.seed ^ (j * 0x9E37 + 11))] {
                t.second_cuts += 1;
                let fork = torn_fork(before, op, torn);
                let m = model.borrow().clone();
                settle(
                    &s,
                    fork,
                    m,
                    &mut t,
                    &format!("{what}, then {torn:?} at op {j}"),
                );
            }
        });
    }
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let mut t = Tally::default();
        recover(&s, &mut flash, &model, &mut t, &what)?;
        tally.borrow_mut().add(&t);
        let mut j = s.open(&mut flash)?;
        let mut steps = 0;
        while seen.get() < window {
            steps += 1;
            if steps > 20_000 {
                return Err("no progress: 20 000 steps without a write".into());
            }
            j = step(&s, j, &model, &rng)?;
        }
        Ok(())
    }));
    let mut t = tally.borrow().clone();
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => t.fail(format!("{what}: {e}")),
        Err(p) => t.fail(format!("{what}: panicked: {}", panic_text(&*p))),
    }
    t
}

/// The first run of a configuration on stable power, at least `ops` programs and
/// erases long and until every block has been erased twice; every operation
/// whose index is `part` modulo `parts` is forked and cut in each first-cut
/// variant. `first_ops` of the result: the run's operations in part 0, else 0.
fn first_run<const K: usize>(s: Setup<K>, ops: u64, window: u64, part: u64, parts: u64) -> Tally {
    let tally = Rc::new(RefCell::new(Tally::default()));
    let model = Rc::new(RefCell::new(Model::default()));
    let rng = Rc::new(RefCell::new(Pcg32::new(s.seed)));
    let seen = Rc::new(Cell::new(0u64));
    let mut flash = s.flash();
    {
        let (tally, model, rng, seen) = (tally.clone(), model.clone(), rng.clone(), seen.clone());
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let i = seen.get();
            seen.set(i + 1);
            if i % parts != part {
                return;
            }
            let mut t = tally.borrow_mut();
            for torn in [
                Torn::NotStarted,
                Torn::NoBits,
                Torn::Prefix(s.seed ^ (i * 0x0051_7CC1 + 7)),
                Torn::Completed,
            ] {
                t.first_cuts += 1;
                let fork = torn_fork(before, op, torn);
                let what = format!("{}: {torn:?} at op {i}", s.name);
                let r = second_run(
                    s,
                    fork,
                    model.borrow().clone(),
                    rng.borrow().clone(),
                    window,
                    what,
                );
                t.add(&r);
            }
        });
    }
    let mut j = s.open(&mut flash).expect("a blank flash opens");
    // At least `ops` operations, and until every block has been erased twice.
    while seen.get() < ops
        || j.medium()
            .inner()
            .stats()
            .sector_erases
            .iter()
            .any(|&e| e < 2)
    {
        j = step(&s, j, &model, &rng).expect("stable power: every operation succeeds");
    }
    drop(j);
    let mut j = s.open(&mut flash).expect("opens on stable power");
    let (c, _) = check(&model.borrow(), &mut j, "the first run");
    assert!(c.clean(), "{}: the first run: {c:?}", s.name);
    let mut t = tally.borrow().clone();
    t.first_ops = if part == 0 { seen.get() } else { 0 };
    eprintln!(
        "{} (part {part}): {} operations, erases per block {:?}: {t:?}",
        s.name,
        seen.get(),
        flash.stats().sector_erases
    );
    t
}

/// The journal configuration: ack records on one-program-per-unit flash, with or
/// without authentication.
fn config<const K: usize>(g: Geometry, max_body: usize, auth: bool) -> Config<K> {
    let c = Config::<K>::try_new(g, max_body)
        .unwrap_or_else(|e| panic!("{g:?}, bodies up to {max_body}: {e}"))
        .with_ack_mode(AckMode::Record)
        .unwrap();
    if auth {
        c.with_auth(Auth::new([0x2C; 32], *b"two cuts grouped"))
            .unwrap()
    } else {
        c
    }
}

type Job = Box<dyn Fn(u64, u64) -> Tally + Send + Sync>;

/// A configuration as a job: `$sectors` sectors of `$group` blocks of 256 B,
/// `$unit` B program units, bodies up to `$body` B, `N` the largest `Config`
/// accepts.
macro_rules! setup {
    ($jobs:ident, $name:literal, $sectors:literal, $group:literal, $unit:literal, $body:literal, $auth:literal, $seed:literal, $ops:expr, $window:expr) => {{
        const G: Geometry = Geometry {
            sector_size: BLOCK * $group,
            sector_count: $sectors,
            write_size: $unit,
            multiwrite: false,
        };
        const K: usize = max_pending(G, $body, $auth);
        let (ops, window) = ($ops, $window);
        let job: Job = Box::new(move |part, parts| {
            let s = Setup::<K> {
                name: $name,
                blocks: $sectors * $group,
                group: $group,
                cfg: config::<K>(G, $body, $auth),
                max_body: $body,
                seed: $seed,
            };
            first_run(s, ops, window, part, parts)
        });
        $jobs.push(job);
    }};
}

/// I10, I1–I4: two cuts in a row at every pair of operations within a window, on
/// sectors of 2 and 4 blocks of 256 B, ack records with and without
/// authentication.
#[test]
fn i10_two_cuts_on_grouped_sectors() {
    quiet_power_cuts();
    let ops = env_u64("TWO_CUTS_OPS", 96);
    let window = env_u64("TWO_CUTS_WINDOW", 72);
    let mut jobs: Vec<Job> = Vec::new();
    setup!(
        jobs,
        "4 sectors of 2 blocks, 8 B units",
        4,
        2,
        8,
        120,
        false,
        0x002C_0001,
        ops,
        window
    );
    setup!(
        jobs,
        "5 sectors of 4 blocks, 4 B units",
        5,
        4,
        4,
        240,
        false,
        0x002C_0002,
        ops,
        window
    );
    setup!(
        jobs,
        "6 sectors of 2 blocks, 4 B units, authenticated",
        6,
        2,
        4,
        100,
        true,
        0x002C_0003,
        ops,
        window
    );
    setup!(
        jobs,
        "4 sectors of 4 blocks, 8 B units, authenticated",
        4,
        4,
        8,
        200,
        true,
        0x002C_0004,
        ops,
        window
    );
    // Every job is split in two halves of its first-cut operations, one per core.
    let parts = 2u64;
    let next = std::sync::atomic::AtomicU64::new(0);
    let total = std::sync::Mutex::new(Tally::default());
    let count = jobs.len() as u64 * parts;
    std::thread::scope(|sc| {
        for _ in 0..parts {
            sc.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let t = jobs[(n / parts) as usize](n % parts, parts);
                total.lock().unwrap().add(&t);
            });
        }
    });
    let t = total.into_inner().unwrap();
    println!(
        "two cuts on grouped sectors: first cuts {}, second cuts {}, failures {}, lost {}, resurrected {}, reused ids {}, wrong data {}",
        t.first_cuts, t.second_cuts, t.failures, t.counts.lost, t.counts.resurrected, t.counts.reused, t.counts.wrong
    );
    assert!(
        t.failures == 0 && t.counts.clean(),
        "first failure: {}",
        t.first.unwrap_or_default()
    );
    // Every operation of every first run, in 4 variants; every operation of each
    // window after them, in 2.
    assert!(t.first_ops >= jobs.len() as u64 * ops, "{t:?}");
    let first = t.first_ops * 4;
    assert_eq!(t.first_cuts, first, "every operation cut first");
    assert_eq!(
        t.second_cuts,
        first * window * 2,
        "every operation of each window cut again"
    );
}
