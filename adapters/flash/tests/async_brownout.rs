//! I10 liveness under brown-outs through the async engine
//! (`monitor_events::asynch::Journal` under `embassy_futures::block_on`, on the
//! simulator's `AsyncMedium`), with I1–I4 checked after every recovery: the
//! bursts of cuts of `tests/brownout.rs` (4 in 10 cuts followed by another within
//! the first 1..=6 operations, up to 20 in a row; every cut torn in a random
//! variant; stuck consumers and full stores), every workload, recovery and
//! stable-power check on the async journal.
//!
//! Configurations: every mode (in-place acks, ack records, authenticated) on 3, 5
//! and 8 sectors with 1 to 32 B program units and the edges (256 B sectors, the
//! fewest sectors); capacity bounded by the region, with the smallest reserve and
//! sectors of several erase blocks; random geometries, and sectors of small
//! erase blocks with half the cuts changing no bit.
//!
//! `ASYNC_BROWNOUT_CUTS` sets the cuts per configuration (default 2000),
//! `ASYNC_BROWNOUT_DRAWS` the random draws of each random test (default 60, 300
//! cuts each).

#[path = "support/brownout.rs"]
mod brownout;
mod support;

use brownout::*;
use monitor_events::journal::{max_pending, max_pending_with_reserve};
use monitor_events::{Geometry, MAX_ENCODED_LEN};
use monitor_events_flash::sim::quiet_power_cuts;
use support::Path;

/// Cuts per configuration.
fn cuts() -> u64 {
    env_u64("ASYNC_BROWNOUT_CUTS", 2000)
}

/// Random draws per random test.
fn draws() -> u64 {
    env_u64("ASYNC_BROWNOUT_DRAWS", 60)
}

/// I10 (with I1–I4) through the async engine: every mode on the fewest sectors
/// and more, program units of 1 to 32 B, the smallest sectors.
#[test]
fn async_i10_brownout_liveness() {
    quiet_power_cuts();
    let mut jobs: Vec<Job> = Vec::new();
    const MAX: usize = MAX_ENCODED_LEN;
    case!(jobs, 3, 4096, 4, Mode::InPlace, MAX);
    case!(jobs, 3, 4096, 8, Mode::Record, MAX);
    case!(jobs, 3, 4096, 32, Mode::RecordAuth, MAX);
    case!(jobs, 5, 4096, 1, Mode::Record, MAX);
    case!(jobs, 8, 4096, 8, Mode::InPlace, MAX);
    case!(jobs, 8, 4096, 4, Mode::RecordAuth, MAX, Some(0));
    case!(jobs, 3, 256, 32, Mode::RecordAuth, 16);
    case!(jobs, 8, 256, 32, Mode::InPlace, 24);
    let t = run_jobs(&jobs, cuts(), Path::Async);
    report("async brown-out liveness", &t);
}

/// I10 (with I1–I4) through the async engine where the region, not one sector,
/// bounds `N`: every mode, the smallest reserve, sectors of four erase blocks
/// (erased block by block through the async medium), and with hundreds pending
/// (64 sectors; 4 sectors of 64 blocks). A third of the runs keep the store full.
#[test]
fn async_i10_brownout_region_bounded() {
    quiet_power_cuts();
    let mut jobs: Vec<Job> = Vec::new();
    const MAX: usize = MAX_ENCODED_LEN;
    case!(jobs, 16, 256, 4, Mode::Record, 24);
    case!(jobs, 12, 512, 8, Mode::InPlace, 60, Some(1));
    case!(jobs, 9, 1024, 32, Mode::RecordAuth, 100, Some(1));
    case!(jobs, 4, 1024, 8, Mode::RecordAuth, 60);
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
    // Hundreds pending: 64 sectors of 4 KiB, and sectors of 64 blocks of 256 B.
    case!(jobs, 64, 4096, 4, Mode::InPlace, MAX, None, 300);
    case!(jobs, 4, 16 << 10, 32, Mode::Record, MAX, None, 500, 64);
    let t = run_jobs(&jobs, cuts(), Path::Async);
    report(
        "async brown-out liveness, capacity bounded by the region",
        &t,
    );
    assert_eq!(t.region_bounded, t.configs, "every configuration here");
    assert!(
        t.peak_pending >= 100,
        "pending never reached the hundreds: {}",
        t.peak_pending
    );
}

/// I10 (with I1–I4) through the async engine at random geometries `Config`
/// accepts (any mode, reserve and body bound; sectors of 1 to 8 erase blocks),
/// and on sectors of 2 to 16 blocks of 256 B where half the cuts change no bit.
#[test]
fn async_i10_brownout_random_geometries() {
    quiet_power_cuts();
    let draws = draws();
    let t = fan_out(draws, |draw| random_geometry_run(Path::Async, draw, 300));
    report("async brown-out liveness, random geometries", &t);
    assert_eq!(t.configs, draws);
    let t = fan_out(draws, |d| random_run(Path::Async, 0x5B_0000, d, 300, true));
    report(
        "async brown-out liveness, sectors of small erase blocks",
        &t,
    );
    assert_eq!(t.configs, draws);
}
