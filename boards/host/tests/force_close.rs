//! `monitor-events simulate --scenario force-close`, run as a user would: one
//! channel force-closes while the consumer is away, 483 HTLC resolutions are
//! pushed at once into a store of room for 512 on 128 sectors of 4 KiB (the
//! region bounds the capacity, w25q-spi), then acked in random order, with power cuts
//! in the burst, in the replay and among the acks. The summary's figures are
//! checked: I1 (nothing lost), I2 (nothing resurrected), I3 (ids only grow), I4
//! and the ack outcomes (no violation), the whole burst pending at once, every
//! event acked, and the costs it reports.

use serde_json::Value;

mod common;
use common::{json, run, stderr, stdout};

fn u(s: &Value, key: &str) -> u64 {
    s[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a count: {s}"))
}

fn f(s: &Value, key: &str) -> f64 {
    s[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number: {s}"))
}

const SEED: &str = "3";

/// I1, I2, I3, I10 in a summary: ok, nothing lost, resurrected or reused, no
/// violation, no bricked store or failed open, nothing pending or held at the end.
fn assert_clean(s: &Value) {
    assert_eq!(s["result"], "ok", "{s}");
    for zero in [
        "lost_ids",
        "resurrected_ids",
        "reused_ids",
        "violations",
        "bricked",
        "open_failures",
        "pending_at_end",
        "acks_held_at_end",
    ] {
        assert_eq!(s[zero], 0, "{zero}: {s}");
    }
}

/// I1, I2, I3, I4 with 483 pending: the seeded force-close run loses,
/// resurrects and reuses nothing, holds the whole burst at once, acks every
/// event (out of id order), cuts power in every phase, and reports the cost of a
/// push, an ack and an open at the peak.
#[test]
fn i1_i4_force_close_483_pending_survives_cuts_in_every_phase() {
    let o = run(&[
        "simulate",
        "--scenario",
        "force-close",
        "--seed",
        SEED,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_eq!(s["scenario"], "force-close");
    assert_eq!(s["profile"], "w25q-spi");
    assert_clean(&s);
    // The store: N = 512 on 128 x 4 KiB, 1 B unit.
    assert_eq!(s["capacity"], 512);
    let flash = &s["flash"];
    assert_eq!(flash["sector_count"], 128);
    assert_eq!(flash["sector_size"], 4096);
    assert_eq!(flash["erase_block"], 4096);
    assert_eq!(flash["write_size"], 1);
    // The burst: 483 HTLC resolutions of one channel, all pending at once, some
    // of the largest size; a push cut in flight counts once, kept or pushed again.
    // The channel's monitor updates after the consumer is back add their
    // `UpdateCompleted`, and hold its HTLC events back while in flight (I5).
    let events = &s["events"];
    let updates = u(&s, "updates_completed");
    assert!(
        updates > 0 && u(&s, "htlc_events_held_back") > 0,
        "I5 exercised: {s}"
    );
    let htlcs = u(events, "htlc_claimed") + u(events, "htlc_failed");
    assert_eq!(
        htlcs + u(events, "update_completed"),
        u(&s, "events_pushed")
    );
    let burst = u(&s, "events_pushed") + u(&s["in_doubt"], "pushes_kept");
    assert_eq!(burst, 483 + updates, "{s}");
    assert_eq!(s["peak_pending"], 483, "{s}");
    assert!(
        u(events, "htlc_claimed") > 100 && u(events, "htlc_failed") > 100,
        "{events}"
    );
    assert!(u(&s, "largest_events") > 20, "{s}");
    // Every event acked, through the barrier, in random order.
    assert_eq!(u(&s, "acks"), 483 + updates, "{s}");
    assert!(u(&s, "deferred_acks") >= 400, "{s}");
    assert!(u(&s, "acks_out_of_order") > 50, "{s}");
    assert!(u(&s, "replayed") > 0, "I4 exercised: {s}");
    // Power cuts in the burst, in the replay and among the acks, each recovered.
    let cuts = u(&s, "cuts");
    assert!((40..=60).contains(&cuts), "{cuts} of 60 cuts fired");
    assert_eq!(s["cuts"], s["recoveries"]);
    let phases = &s["cuts_by_phase"];
    for phase in ["burst", "replay", "acks"] {
        assert!(u(phases, phase) > 0, "no cut in the {phase}: {phases}");
    }
    assert_eq!(
        u(phases, "burst") + u(phases, "replay") + u(phases, "acks"),
        u(&s, "cuts")
    );
    let d = &s["in_doubt"];
    assert!(u(d, "pushes_kept") + u(d, "pushes_dropped") > 0, "{d}");
    assert!(u(d, "acks_kept") + u(d, "acks_dropped") > 0, "{d}");
    // Costs: a typical push or ack is cheap next to the erases a cut costs (each
    // restart erases a fresh sector), which the means include.
    let (push, push_median) = (
        f(&s, "device_ms_per_push"),
        f(&s, "device_ms_per_push_median"),
    );
    let (ack, ack_median) = (
        f(&s, "device_ms_per_ack"),
        f(&s, "device_ms_per_ack_median"),
    );
    assert!(push_median > 0.0 && push_median < 2.0, "{push_median}");
    assert!(ack_median > 0.0 && ack_median < 1.0, "{ack_median}");
    assert!(push >= push_median && ack >= ack_median);
    // The open at the peak: a clean restart with all 483 pending reads each
    // live record in full once (and the headers of older ones once more), not
    // the erased part of the 512 KiB region, and writes nothing.
    let open = &s["open_most_pending"];
    assert_eq!(open["pending"], 483, "{open}");
    assert_eq!(open["program_ops"], 0);
    assert_eq!(open["erases"], 0);
    let read = u(open, "bytes_read");
    assert!((483 * 64..2 * 512 * 1024).contains(&read), "{open}");
    let open_ms = f(open, "device_ms");
    assert!(open_ms > 0.0 && open_ms < 100.0, "{open}");
    assert!(f(open, "host_ms") > 0.0);
    // The same seed gives the same run.
    let again = json(&run(&[
        "simulate",
        "--scenario",
        "force-close",
        "--seed",
        SEED,
        "--json",
    ]));
    for key in ["next_id", "erases", "bytes_programmed", "acks_out_of_order"] {
        assert_eq!(s[key], again[key], "{key}");
    }
}

/// The text summary of the force-close scenario shows its own section: peak
/// pending, device ms per push, per ack and per open, cuts by phase.
#[test]
fn force_close_prints_its_figures() {
    let o = run(&[
        "simulate",
        "--scenario",
        "force-close",
        "--seed",
        SEED,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "scenario force-close",
        "128 sectors x 4096 B, 1 B program unit",
        "room for 512 pending events",
        "peak pending                       483",
        "device ms per push",
        "device ms per ack",
        "device ms per open",
        "with 483 pending",
        "power cuts by phase",
        "lost ids (I1)                        0",
        "result: ok, 0 violations",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }
}

/// `--pending` and `--sectors`: a store of room for 64 takes the burst in parts
/// (pushes refused with `Full` wait for acks, nothing lost); a capacity that is
/// not built in, or one the geometry cannot hold, is a usage error (exit 1).
#[test]
fn force_close_with_a_smaller_store_and_bad_capacities() {
    let o = run(&[
        "simulate",
        "--scenario",
        "force-close",
        "--pending",
        "64",
        "--sectors",
        "8",
        "--sector-size",
        "16384",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_eq!(s["result"], "ok");
    assert_eq!(s["lost_ids"], 0);
    assert_eq!(s["capacity"], 64);
    assert_eq!(s["peak_pending"], 64);
    assert!(u(&s, "full_refusals") > 0, "{s}");
    assert_eq!(u(&s, "acks"), 483 + u(&s, "updates_completed"));
    assert_eq!(s["pending_at_end"], 0);
    assert_eq!(s["flash"]["sector_count"], 8);

    let o = run(&["simulate", "--scenario", "force-close", "--pending", "100"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("possible values: 16, 64, 512"));
    // 512 of the largest events do not fit a 4 KiB sector.
    let o = run(&["simulate", "--pending", "512", "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("do not fit in one sector"),
        "{}",
        stderr(&o)
    );
}

/// I1–I4 and I10 with thousands pending: several channels' worth of HTLC
/// resolutions (4 000) pushed while the consumer is away into a store of room
/// for 4 096 on 256 sectors of 4 KiB (a 1 MiB partition of SPI NOR, the region
/// bounding the capacity), with power cuts in the burst, the replay and the acks.
#[test]
fn i1_i4_force_close_thousands_pending_on_4_kib_sectors() {
    let o = run(&[
        "simulate",
        "--scenario",
        "force-close",
        "--seed",
        "5",
        "--pending",
        "4096",
        "--sectors",
        "256",
        "--events",
        "4000",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_clean(&s);
    assert_eq!(s["capacity"], 4096);
    assert_eq!(s["flash"]["sector_count"], 256);
    assert_eq!(s["flash"]["sector_size"], 4096);
    assert_eq!(s["peak_pending"], 4000, "{s}");
    assert!(u(&s, "cuts") >= 20 && s["cuts"] == s["recoveries"], "{s}");
    let open = &s["open_most_pending"];
    assert_eq!(open["pending"], 4000, "{open}");
    assert_eq!(open["program_ops"], 0);
    // Each live record once, not the whole 1 MiB twice.
    let read = u(open, "bytes_read");
    assert!((4000 * 64..2 * 1024 * 1024).contains(&read), "{open}");
    assert!(f(open, "device_ms") < 100.0, "{open}");
}
