//! The crash-point scenarios, run through either build of the engine ([`Path`]):
//! a power cut at every medium operation of a W1 run, two, three and ten cuts in
//! a row, and two torn pushes then clean ones. Checks I1 (no returned push lost),
//! I2 (no returned ack resurrected), I3 (no id reused), I4 (byte-identical
//! replay) and I8 (a torn tail opens silently).

use crate::support::*;
use monitor_events::EventId;
use monitor_events_flash::sim::{quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::{Pcg32, W1Op, W1};
use std::cell::RefCell;
use std::rc::Rc;

/// I1, I2, I3, I4, I8: fork the flash before every program and erase of a W1 run
/// of `events` events, apply the operation torn in every variant, recover the
/// fork and check it; the run and every recovery go through `path`.
pub fn every_crash_point(mode: Flavor, path: Path, events: u64) -> Counts {
    let totals = Rc::new(RefCell::new(Counts::default()));
    let model = Rc::new(RefCell::new(Model::default()));
    let mut flash = SimFlash::new(mode.geometry());
    {
        let (totals, model) = (totals.clone(), model.clone());
        let mut serial = 0u64;
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let model = model.borrow();
            for torn in Torn::variants([serial * 2 + 1, serial * 2 + 2]) {
                let mut fork = before.clone();
                fork.apply_torn(op, torn)
                    .expect("the operation itself is legal");
                let what = format!("{mode:?} op {serial} {torn:?}");
                let mut j = match PathJournal::open(path, fork, mode.config()) {
                    Ok(j) => j,
                    Err(e) => panic!("I8: {what}: a torn write must open silently, got {e}"),
                };
                let (c, _) = check(&model, &mut j, &what);
                // The recovered journal takes a new event under a fresh id (I3).
                if j.pending_count() == N {
                    let oldest = j.pending_ids()[0];
                    j.ack(oldest).unwrap();
                }
                let id = j.push(&[0xA5; 40]).unwrap();
                let mut c = c;
                if model.max_id.is_some_and(|m| id.0 <= m) {
                    c.reused += 1;
                }
                totals.borrow_mut().add(c);
            }
            serial += 1;
        });
    }
    let mut w1 = W1::new(events, 500);
    let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
    for op in w1.by_ref() {
        match op {
            W1Op::Push { id, payload } => {
                model.borrow_mut().in_flight = Some(InFlight::Push(payload.clone()));
                let got = j.push(&payload).unwrap();
                assert_eq!(got, EventId(id), "ids follow W1's when nothing is cut");
                model.borrow_mut().pushed(got, payload);
            }
            W1Op::Ack { id, .. } => {
                model.borrow_mut().in_flight = Some(InFlight::Ack(id));
                j.ack(EventId(id)).unwrap();
                model.borrow_mut().acked(EventId(id));
            }
            W1Op::Reopen => {
                drop(j);
                j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
                let (c, _) = check(&model.borrow(), &mut j, "clean reopen");
                assert!(c.clean());
            }
        }
    }
    drop(j);
    let c = *totals.borrow();
    c
}

/// A seeded random push/ack workload for the multi-cut runs.
pub fn step(j: &mut PathJournal<&mut SimFlash, N>, model: &mut Model, rng: &mut Pcg32) {
    if model.durable.len() == N || (!model.durable.is_empty() && rng.below(3) == 0) {
        let k = if rng.below(4) == 0 {
            rng.below(model.durable.len() as u32) as usize
        } else {
            0
        };
        let id = *model.durable.keys().nth(k).unwrap();
        model.in_flight = Some(InFlight::Ack(id));
        j.ack(EventId(id)).unwrap();
        model.acked(EventId(id));
    } else {
        let len = [48usize, 96, 120][rng.below(3) as usize];
        let payload: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        model.in_flight = Some(InFlight::Push(payload.clone()));
        let id = j.push(&payload).unwrap();
        model.pushed(id, payload);
    }
}

/// I1, I2, I3, I4, I8: cut, recover, go on, cut again soon after (often inside the
/// recovery's own repair writes or compaction), up to three times in a row.
/// `cuts(run)`: how many cuts in a row that run takes.
pub fn consecutive_cuts(mode: Flavor, path: Path, runs: u64, cuts: impl Fn(u64) -> u64) -> Counts {
    quiet_power_cuts();
    let mut totals = Counts::default();
    for run in 0..runs {
        let mut rng = Pcg32::new(run + 1);
        let mut flash = SimFlash::new(mode.geometry());
        let mut model = Model::default();
        // Warm up past a few compactions so every path is live.
        {
            let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
            for _ in 0..(300 + rng.below(900)) {
                step(&mut j, &mut model, &mut rng);
            }
        }
        let cuts = cuts(run);
        for cut in 0..cuts {
            // The first cut lands anywhere in the next ~60 operations, the later ones
            // within the first few operations after recovery.
            let k = if cut == 0 {
                rng.below(60)
            } else {
                rng.below(4)
            } as u64;
            let torn = match rng.below(4) {
                0 => Torn::NoBits,
                1 => Torn::Completed,
                _ => Torn::RandomSubset(rng.next_u32() as u64),
            };
            flash.cut_after(k, torn);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
                loop {
                    step(&mut j, &mut model, &mut rng);
                }
            }));
            assert!(r.is_err());
            flash.power_on();
            let what = format!("{mode:?} run {run} cut {cut} ({torn:?} after {k})");
            let mut j = PathJournal::open(path, &mut flash, mode.config())
                .unwrap_or_else(|e| panic!("I8: {what}: {e}"));
            let (c, got) = check(&model, &mut j, &what);
            totals.add(c);
            model.adopt(&got);
        }
        // Then clean operations: the store must go on and stay right.
        let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
        for _ in 0..200 {
            step(&mut j, &mut model, &mut rng);
        }
        drop(j);
        let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
        let (c, _) = check(&model, &mut j, "after the cuts");
        totals.add(c);
    }
    totals
}

/// I1, I3, I8: two pushes torn in a row, then clean pushes (sequential-storage
/// issue #136: a phantom header after two interrupted writes).
pub fn two_torn_pushes_then_clean(mode: Flavor, path: Path) -> Counts {
    quiet_power_cuts();
    let mut totals = Counts::default();
    for seed in 0..40u64 {
        let mut rng = Pcg32::new(1000 + seed);
        let mut flash = SimFlash::new(mode.geometry());
        let mut model = Model::default();
        {
            let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
            for _ in 0..rng.below(400) {
                step(&mut j, &mut model, &mut rng);
            }
            // Leave room so the next operation is a push.
            while model.durable.len() > 4 {
                let id = *model.durable.keys().next().unwrap();
                j.ack(EventId(id)).unwrap();
                model.acked(EventId(id));
            }
        }
        for round in 0..2 {
            let payload: Vec<u8> = (0..96).map(|i| (seed + i + round) as u8).collect();
            // Cut the push's own program (after any repair erase the reopen needs).
            // A clean push first does any repair a reopen needs, so the cut below
            // lands on the push's own program.
            let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
            j.push(&[1; 8])
                .map(|id| model.pushed(id, vec![1; 8]))
                .unwrap();
            let f = j.into_medium();
            f.cut_after(0, Torn::RandomSubset(seed * 7 + round));
            let mut j = PathJournal::open(path, f, mode.config()).unwrap();
            model.in_flight = Some(InFlight::Push(payload.clone()));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = j.push(&payload);
            }));
            assert!(r.is_err());
            drop(j);
            flash.power_on();
            let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
            let (c, got) = check(&model, &mut j, &format!("#136 seed {seed} round {round}"));
            totals.add(c);
            model.adopt(&got);
        }
        let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
        for _ in 0..100 {
            step(&mut j, &mut model, &mut rng);
        }
        drop(j);
        let mut j = PathJournal::open(path, &mut flash, mode.config()).unwrap();
        totals.add(check(&model, &mut j, "#136 after clean pushes").0);
    }
    totals
}
