//! Power cut at every medium operation of a W1 run with reboots, in every torn
//! variant and every flavor (in-place acks, ack records, authenticated: sector
//! headers and their tags, records, ack and retire records, erases); then two and three consecutive cuts, and the
//! "two interrupted pushes, then clean ones" pattern of sequential-storage #136.
//! Checks I1 (no returned push lost), I2 (no returned ack resurrected), I3 (no id
//! reused), I4 (byte-identical replay) and I8 (a torn tail opens silently).

#[path = "support/crash.rs"]
mod crash;
mod support;

use crash::*;
use monitor_events_flash::sim::quiet_power_cuts;
use support::*;

/// Events of the W1-shaped run (at least 2,000) and how often it reboots.
fn events() -> u64 {
    std::env::var("CRASH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn crash_points() {
    quiet_power_cuts();
    let mut totals = Counts::default();
    for mode in Flavor::ALL {
        let c = every_crash_point(mode, Path::Blocking, events());
        eprintln!("{mode:?}: every operation: {c:?}");
        totals.add(c);
        let c = consecutive_cuts(mode, Path::Blocking, 60, |run| 2 + run % 2);
        eprintln!("{mode:?}: two and three consecutive cuts: {c:?}");
        totals.add(c);
        // A brown-out loop: ten cuts in a row, each within the first operations
        // after a restart, then stable power: the store must go on.
        let c = consecutive_cuts(mode, Path::Blocking, 20, |_| 10);
        eprintln!("{mode:?}: ten consecutive cuts: {c:?}");
        totals.add(c);
        let c = two_torn_pushes_then_clean(mode, Path::Blocking);
        eprintln!("{mode:?}: two torn pushes then clean ones: {c:?}");
        totals.add(c);
    }
    println!(
        "crash points checked: {}, lost: {}, resurrected: {}, reused ids: {}, wrong data: {}",
        totals.checked, totals.lost, totals.resurrected, totals.reused, totals.wrong
    );
    assert!(totals.clean(), "{totals:?}");
    assert!(
        totals.checked > 20_000,
        "too few crash points: {}",
        totals.checked
    );
}
