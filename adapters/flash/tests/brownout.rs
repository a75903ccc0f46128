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

#[path = "support/brownout.rs"]
mod brownout;
mod support;

use brownout::*;
use monitor_events::journal::{max_pending, max_pending_with_reserve, Journal};
use monitor_events::{Geometry, Medium, MAX_ENCODED_LEN};
use monitor_events_flash::sim::{quiet_power_cuts, SimFlash};
use monitor_events_flash::workload::Pcg32;
use support::{check, InFlight, Model, Path};

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

    let t = run_jobs(&jobs, env_u64("BROWNOUT_CUTS", 4000), Path::Blocking);
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
    let t = run_jobs(&jobs, env_u64("BROWNOUT_REGION_CUTS", 1500), Path::Blocking);
    report("brown-out liveness, capacity bounded by the region", &t);
    assert_eq!(t.region_bounded, t.configs, "every configuration here");
    assert!(
        t.peak_pending >= 1000,
        "pending never passed a thousand: {}",
        t.peak_pending
    );
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
    let t = run_jobs(
        &jobs,
        env_u64("BROWNOUT_GROUPED_CUTS", 2000),
        Path::Blocking,
    );
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
    let t = fan_out(draws, |draw| {
        random_geometry_run(Path::Blocking, draw, cuts)
    });
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
    let t = fan_out(draws, |d| {
        random_run(Path::Blocking, 0x5B_0000, d, 300, true)
    });
    report("brown-out liveness, sectors of small erase blocks", &t);
    assert_eq!(t.configs, draws);
}

/// I10 (with I1–I4) at the largest bodies `Config` takes
/// ([`largest_body_run`]): records of 2 KiB to 4 087 B, so a torn record can
/// reach a sector's end and its copies fill sectors of 8 to 64 KiB.
/// `BROWNOUT_LARGEST_BODY_DRAWS` sets the draws (default 24), 200 cuts each.
#[test]
fn i10_brownout_largest_bodies() {
    quiet_power_cuts();
    let draws = env_u64("BROWNOUT_LARGEST_BODY_DRAWS", 24);
    let t = fan_out(draws, |d| largest_body_run(Path::Blocking, d, 200));
    report("brown-out liveness, the largest bodies", &t);
    assert_eq!(t.configs, draws);
}

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
