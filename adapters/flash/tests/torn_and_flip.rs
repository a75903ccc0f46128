//! I8 and I10 at once: a power cut tears an operation, and one bit of the rest
//! of the image flips too (a cut and a flip are two faults of the model; here
//! they meet). Before every program and erase of a W1 run with reboots, in every
//! flavor (in-place acks, ack records, authenticated), the flash is forked, the
//! operation applied torn in a random variant, and a random bit outside what the
//! operation touches flipped; then `open` must return a typed error, or exactly
//! the events of the model (the interrupted operation either way): never lose a
//! returned push, bring back a returned ack, reuse an id or change a byte
//! (I1–I4). And when it opens, it must take a new event and open again.
//!
//! On the bench geometry and on random geometries `Config` takes (sectors of
//! 256 B to 16 KiB, 3 to 16 of them, program units of 1 to 32 B, random
//! reserves), some of them sectors of 2 or 4 erase blocks ([`Grouped`]), where
//! a torn erase can leave one block of a sector as it was. Half of the flips
//! land in the 256 bytes before the torn operation, among the newest records.
//!
//! Then, per flavor, random geometries with the largest bodies `Config` takes
//! (2 KiB to 4 087 B in sectors of 32 KiB), a random workload of pushes, acks
//! in any order and reopens writing about twice the region.
//!
//! `TORN_FLIP_EVENTS` sets the events of the W1 run on the bench geometry (half
//! as many on the others; default 600), `TORN_FLIP_FLIPS` the forks per
//! operation (default 2), `TORN_FLIP_GEOMETRIES` the random geometries per
//! flavor (default 12), `TORN_FLIP_LARGEST_BODY` those with the largest bodies
//! (default 1).

mod support;

use monitor_events::journal::{Config, Journal, Seen};
use monitor_events::EventId;
use monitor_events::Geometry;
use monitor_events_flash::sim::{quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::{Pcg32, W1Op, W1};
use monitor_events_flash::Grouped;
use std::cell::RefCell;
use std::rc::Rc;
use support::*;

/// What the forks of one flavor gave.
#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    /// `open` refused the image with a typed error.
    refused: u64,
    /// `open` gave the model's events.
    opened: u64,
    /// Of those, with a record corrected.
    corrected: u64,
}

/// The byte range of the flash that `op` may change.
fn touched(op: &Op, sector_size: u32) -> (u64, u64) {
    match op {
        Op::Program { offset, data } => (*offset as u64, *offset as u64 + data.len() as u64),
        Op::Erase { sector } => {
            let start = *sector as u64 * sector_size as u64;
            (start, start + sector_size as u64)
        }
    }
}

/// One run of `ops` (W1's, or [`largest_ops`]) on `config`, `flips` forks at
/// each operation; `seed` draws the tears and the flips. Each sector is
/// `group` erase blocks of the simulated flash ([`Grouped`]; 1: a sector is a
/// block).
fn run(
    name: &str,
    config: Config<N>,
    group: u32,
    seed: u64,
    ops: impl IntoIterator<Item = W1Op>,
    flips: u64,
) -> (Counts, Outcomes) {
    let totals = Rc::new(RefCell::new(Counts::default()));
    let outcomes = Rc::new(RefCell::new(Outcomes::default()));
    let model = Rc::new(RefCell::new(Model::default()));
    let g = config.geometry();
    let geometry = Geometry {
        sector_size: g.sector_size / group,
        sector_count: g.sector_count * group,
        ..g
    };
    let mut flash = SimFlash::new(geometry);
    {
        let (totals, outcomes, model) = (totals.clone(), outcomes.clone(), model.clone());
        let name = name.to_string();
        let mut rng = Pcg32::new(seed);
        let mut serial = 0u64;
        let bits = geometry.size() as u64 * 8;
        flash.set_fork_hook(move |before: &SimFlash, op: &Op| {
            let model = model.borrow();
            let (lo, hi) = touched(op, geometry.sector_size);
            for _ in 0..flips {
                let torn = Torn::random(rng.next_u32() as u64);
                let mut fork = before.clone();
                fork.apply_torn(op, torn)
                    .expect("the operation itself is legal");
                // Half of the flips land in the 256 bytes before the operation:
                // the newest records, which a torn tail behind them makes the
                // hard case (a flip there must not pass for part of the tear).
                let near = rng.below(2) == 0 && lo >= 8;
                let bit = loop {
                    let r = rng.next_u32() as u64 | (rng.next_u32() as u64) << 32;
                    let b = if near {
                        let from = lo.saturating_sub(256) * 8;
                        from + r % (lo * 8 - from)
                    } else {
                        r % bits
                    };
                    if !(lo * 8..hi * 8).contains(&b) {
                        break b;
                    }
                };
                fork.flip_bit(bit);
                let what = format!(
                    "{name} (seed {seed}): op {serial} {torn:?}, bit {bit} (byte {:#x}) flipped",
                    bit / 8
                );
                let mut corrected = false;
                let medium = Grouped::new(fork, group).expect("a grouping the flash takes");
                let opened = Journal::open_with(medium, config, |seen| {
                    corrected |= matches!(seen, Seen::Corrected { .. })
                });
                let mut j = match opened {
                    Ok(j) => j,
                    Err(_) => {
                        outcomes.borrow_mut().refused += 1;
                        continue;
                    }
                };
                let (mut c, _) = check(&model, &mut j, &what);
                assert!(c.clean(), "{what}: {c:?}");
                {
                    let mut o = outcomes.borrow_mut();
                    o.opened += 1;
                    o.corrected += corrected as u64;
                }
                // It goes on: a new event under a fresh id, and it opens again
                // with what it held.
                if j.pending_count() == N {
                    let oldest = j.pending_ids()[0];
                    j.ack(oldest).unwrap();
                }
                let id = j.push(&[0xA5; 40]).unwrap();
                if model.max_id.is_some_and(|m| id.0 <= m) {
                    c.reused += 1;
                }
                let held = pending(&mut j);
                let fork = j.into_medium();
                let mut j = Journal::open(fork, config)
                    .unwrap_or_else(|e| panic!("{what}: opened, took an event, then: {e}"));
                assert_eq!(pending(&mut j), held, "{what}: reopened");
                totals.borrow_mut().add(c);
            }
            serial += 1;
        });
    }
    let medium = Grouped::new(&mut flash, group).expect("a grouping the flash takes");
    let mut j = Journal::open(medium, config).unwrap();
    for op in ops {
        match op {
            W1Op::Push { id, payload } => {
                model.borrow_mut().in_flight = Some(InFlight::Push(payload.clone()));
                let got = j.push(&payload).unwrap();
                assert_eq!(got, EventId(id));
                model.borrow_mut().pushed(got, payload);
            }
            W1Op::Ack { id, .. } => {
                model.borrow_mut().in_flight = Some(InFlight::Ack(id));
                j.ack(EventId(id)).unwrap();
                model.borrow_mut().acked(EventId(id));
            }
            W1Op::Reopen => {
                j = Journal::open(j.into_medium(), config).unwrap();
            }
        }
    }
    drop(j);
    let c = *totals.borrow();
    let o = *outcomes.borrow();
    (c, o)
}

/// `events` pushes of 2 KiB to [`LARGEST_BODY`] bytes (a third of them the largest),
/// acks of random pending events, a reopen now and then; at most `N` pending.
fn largest_ops(rng: &mut Pcg32, events: u64) -> Vec<W1Op> {
    let mut ops = Vec::new();
    let mut pending: Vec<u64> = Vec::new();
    let mut next = 0;
    while next < events {
        let r = rng.below(100);
        if r < 55 && pending.len() < N {
            let len = if rng.below(3) == 0 {
                LARGEST_BODY
            } else {
                2048 + rng.below(2040) as usize
            };
            let payload = (0..len).map(|_| rng.next_u32() as u8).collect();
            ops.push(W1Op::Push { id: next, payload });
            pending.push(next);
            next += 1;
        } else if r < 95 && !pending.is_empty() {
            let k = rng.below(pending.len() as u32) as usize;
            ops.push(W1Op::Ack {
                id: pending.remove(k),
                oldest: k == 0,
            });
        } else {
            ops.push(W1Op::Reopen);
        }
    }
    ops
}

#[test]
fn i1_i4_i8_i10_a_torn_operation_and_a_flipped_bit() {
    quiet_power_cuts();
    let events = env_u64("TORN_FLIP_EVENTS", 600);
    let flips = env_u64("TORN_FLIP_FLIPS", 2);
    let geometries = env_u64("TORN_FLIP_GEOMETRIES", 12);
    let largest = env_u64("TORN_FLIP_LARGEST_BODY", 1);
    let mut totals = Counts::default();
    for mode in Flavor::ALL {
        // The bench geometry: both outcomes must happen there (flips that open
        // refuses, flips it corrects), or the scenario lost its teeth.
        let name = format!("{mode:?}, bench geometry");
        let (c, o) = run(
            &name,
            mode.config(),
            1,
            0x70F1_0000 + mode as u64,
            W1::new(events, 500),
            flips,
        );
        eprintln!("{name}: {c:?}, {o:?}");
        assert!(o.refused > 0 && o.opened > 0, "{name}: {o:?}");
        assert!(o.corrected > 0, "{name}: no record corrected: {o:?}");
        totals.add(c);
        let mut rng = Pcg32::new(0x70F2_0000 + mode as u64);
        let mut all = Outcomes::default();
        let mut grouped = 0;
        for k in 0..geometries {
            let (config, group, name) = draw_config(&mut rng, mode);
            grouped += (group > 1) as u64;
            let seed = 0x70F3_0000 + k * 3 + mode as u64;
            let (c, o) = run(&name, config, group, seed, W1::new(events / 2, 500), flips);
            totals.add(c);
            all.refused += o.refused;
            all.opened += o.opened;
            all.corrected += o.corrected;
        }
        eprintln!(
            "{mode:?}, {geometries} random geometries ({grouped} of several erase blocks): {all:?}"
        );
        assert!(
            geometries < 6 || grouped > 0,
            "{mode:?}: no sector of several blocks drawn"
        );
        // The largest bodies `Config` takes: a torn record can be 4 KiB long,
        // and a corrected bit's position runs past 32 000.
        let mut all = Outcomes::default();
        for k in 0..largest {
            let (config, group, name) = draw_largest(&mut rng, mode);
            let ops = largest_ops(&mut rng, 2 * config.geometry().size() as u64 / 3000);
            let seed = 0x70F4_0000 + k * 3 + mode as u64;
            let (c, o) = run(&name, config, group, seed, ops, flips);
            totals.add(c);
            all.refused += o.refused;
            all.opened += o.opened;
            all.corrected += o.corrected;
        }
        eprintln!("{mode:?}, {largest} geometries with the largest bodies: {all:?}");
        assert!(
            largest == 0 || (all.refused > 0 && all.opened > 0),
            "{mode:?}, the largest bodies: {all:?}"
        );
    }
    println!(
        "torn and flipped: {} checks, lost: {}, resurrected: {}, reused ids: {}, wrong data: {}",
        totals.checked, totals.lost, totals.resurrected, totals.reused, totals.wrong
    );
    assert!(totals.clean(), "{totals:?}");
}
