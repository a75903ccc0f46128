//! `selftest`: the journal on the target, with reboots. Any failed check panics
//! (defmt message, exit status 1).
//!
//! | phase | file | what | invariants |
//! |---|---|---|---|
//! | 1 | [`w1`](blocking::w1) | docs/BENCH.md's W1 (seed 1, 16 pending, random-order acks) on a fresh image with in-place acks; every `events / 10` pushes a reboot, alternately warm (re-open on the same RAM) and cold (RAM scrambled and reloaded from the host file); then ack everything and reboot. With 100 000 events the fingerprint must be W1's | I1, I2, I3, I4 |
//! | 2 | [`typed`](blocking::typed) | through the typed `EventStore` on the same image: events of all four kinds on four channels; updates in flight on two channels (two on one of them) hold back exactly those channels' HTLC events, also ones pushed while gated, until their last update completes; acks in random order (`AlreadyAcked` on repeat, `WrongChannel`, `Unknown`); cold reboot: the raw journal holds the un-acked events byte for byte, the store releases each once in id order, identical; all acked, cold reboot, none back | I1, I2, I3, I4, I5 |
//! | 3 | [`w1`](blocking::w1) | W1 (a tenth as many events) on a fresh image without multiwrite: ack records, each unit programmed once | I1, I2, I3, I4 |
//! | 4 | [`w1`](blocking::w1) | W1 (a tenth as many events) on a fresh image with the authenticated journal (`auth=on`'s layout: HMAC tags, ack records, 8 sectors of 8 KiB) | I1, I2, I3, I4 |
//! | 5 | [`highwater`] | the deepest stack of `open`, `push`, `ack` and `release_next` (the `EventStore`, with claims whose preimages are hashed; the journal's `open`, `push`, `ack`; each in three layouts: in-place acks, ack records, authenticated), painted before each call; prints `stack high-water: ...`, and `over budget` for a figure above 2048 B (a warning, not a failure) | I1, I3, I4 |
//! | 6 | `asynch` (feature `async`) | phases 1 and 2 through the async journal and store (`monitor_events::asynch`) under `embassy_futures::block_on`, on a fresh image: W1's fingerprint and its programs, bytes and erases must equal phase 1's; events pushed by one path are read, acked and added to by the other after cold reboots; the blocking store opens what the async one left; phase 5's stack rounds through the async store under `block_on` (`stack high-water (async): ...`); prints `selftest (async): ... ok` | I1, I2, I3, I4, I5 |
//!
//! [`w1`](blocking::w1) and [`typed`](blocking::typed) are written once, with the
//! journal's calls awaited, and compiled blocking ([`blocking`]) and async
//! (`asynch`), as the core compiles its engine.

mod blocking;
mod highwater;

#[cfg(feature = "async")]
mod asynch;

use crate::args::Args;
use crate::mirror::{MirrorFlash, SIZE};
use blocking::typed::typed;
use blocking::w1::w1;

/// W1's fingerprint for 100 000 events (docs/BENCH.md).
const W1_FINGERPRINT: u64 = 0xe7dc_8c94_652e_8476;

/// Runs the five phases (six with the feature `async`) on the image `args.image`;
/// true when all pass.
pub fn selftest(ram: &'static mut [u8; SIZE], args: &Args) -> bool {
    let events = args.events.max(10);
    defmt::info!(
        "selftest: phase 1, W1 with {} events, in-place acks, image {=str}",
        events,
        args.image
    );
    let mut m = match MirrorFlash::fresh(ram, args.image, true) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", args.image, e),
    };
    let fp = w1(&mut m, events, false);
    if events == 100_000 {
        defmt::assert_eq!(fp, W1_FINGERPRINT, "W1 fingerprint");
        defmt::info!("selftest: W1 fingerprint {=u64:#x} = docs/BENCH.md's", fp);
    } else {
        defmt::info!("selftest: W1 fingerprint {=u64:#x} ({} events)", fp, events);
    }
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    let (phase1_fp, c) = (fp, m.counts());
    defmt::info!(
        "selftest: phase 1 passed: {} programs ({} B), {} erases",
        c.programs,
        c.program_bytes,
        c.erases
    );

    defmt::info!("selftest: phase 2, EventStore: typed events, gating, replay");
    typed(&mut m);
    defmt::info!("selftest: phase 2 passed");

    let events = (events / 10).max(10);
    defmt::info!("selftest: phase 3, W1 with {} events, ack records", events);
    let ram = m.into_ram();
    let mut m = match MirrorFlash::fresh(ram, args.image, false) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", args.image, e),
    };
    let fp = w1(&mut m, events, false);
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    defmt::info!("selftest: phase 3 passed, fingerprint {=u64:#x}", fp);

    defmt::info!(
        "selftest: phase 4, W1 with {} events, authenticated journal",
        events
    );
    let ram = m.into_ram();
    let mut m = match MirrorFlash::fresh(ram, args.image, false) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", args.image, e),
    };
    let fp = w1(&mut m, events, true);
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    defmt::info!("selftest: phase 4 passed, fingerprint {=u64:#x}", fp);

    defmt::info!(
        "selftest: phase 5, stack high-water marks (budget {} B)",
        highwater::BUDGET
    );
    let (store, journal, ram) = highwater::highwater(m.into_ram(), args.image);
    // The figures are measurements, not checks of the library's behaviour: one
    // over the budget is reported (`over budget`, for boards/size.py and the
    // reader of the log) without failing the invariant checks above.
    for (what, deepest) in [("EventStore", store), ("journal", journal)] {
        if deepest.max() > highwater::BUDGET {
            defmt::warn!(
                "stack: {=str} over budget: {} B deepest ({=str}), budget {} B",
                what,
                deepest.max(),
                deepest.deepest(),
                highwater::BUDGET
            );
        } else {
            defmt::info!(
                "stack: {=str} within budget: {} B deepest ({=str}), budget {} B",
                what,
                deepest.max(),
                deepest.deepest(),
                highwater::BUDGET
            );
        }
    }
    defmt::info!("selftest: phase 5 passed");

    #[cfg(feature = "async")]
    {
        defmt::info!(
            "selftest: phase 6, the async journal and store: W1 with {} events, typed events",
            args.events.max(10)
        );
        asynch::selftest(ram, args.image, args.events.max(10), phase1_fp, c);
        defmt::info!("selftest: phase 6 passed");
    }
    #[cfg(not(feature = "async"))]
    let _ = (ram, phase1_fp);
    defmt::info!("selftest: PASS (I1 I2 I3 I4, I5 through the EventStore API)");
    true
}

/// Power-cycles the mirrored flash: cold reloads the RAM from the host file.
fn power_cycle(m: &mut MirrorFlash, cold: bool) {
    if cold {
        m.scramble();
        if let Err(e) = m.load() {
            defmt::panic!("reload from the host file: {}", e);
        }
    }
}
