//! The `monitor-events` binary, run as a user would: `simulate` (a small seeded
//! run: I1–I5 hold, cuts and recoveries happen), `inspect` and `verify` on the
//! golden images of `tests/golden/` (see `tests/golden.rs`), and the user's
//! mistakes (missing file, wrong size, not a store, a newer format): one line on
//! stderr, a non-zero exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::{json, run, stderr, stdout};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// A fresh scratch file path for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// A user mistake: a non-zero exit with `code`, one line on stderr that contains
/// `needle`, and no panic.
fn assert_clear_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// I1, I2, I3: a small seeded run has no lost, resurrected or reused id, and it
/// really cut power and recovered.
#[test]
fn i1_i2_i3_simulate_small_seeded_run_has_zero_violations() {
    let o = run(&[
        "simulate",
        "--seed",
        "7",
        "--events",
        "3000",
        "--cuts",
        "80",
        "--restarts",
        "5",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    for zero in ["lost_ids", "resurrected_ids", "reused_ids", "violations"] {
        assert_eq!(s[zero], 0, "{zero}: {s}");
    }
    assert_eq!(s["events_pushed"], 3000);
    assert!(s["cuts"].as_u64().unwrap() > 40, "{s}");
    assert_eq!(s["cuts"], s["recoveries"]);
    assert!(s["acks"].as_u64().unwrap() > 2500);
    assert!(s["deferred_acks"].as_u64().unwrap() > 0);
    assert!(
        s["htlc_events_held_back"].as_u64().unwrap() > 0,
        "I5 exercised"
    );
    assert!(s["replayed"].as_u64().unwrap() > 0, "I4 exercised");
    assert!(s["device_ms_per_event"].as_f64().unwrap() > 0.0);
    assert_eq!(s["wear"].as_array().unwrap().len(), 16);
    // The same seed gives the same run.
    let again = json(&run(&[
        "simulate",
        "--seed",
        "7",
        "--events",
        "3000",
        "--cuts",
        "80",
        "--restarts",
        "5",
        "--json",
    ]));
    assert_eq!(s["next_id"], again["next_id"]);
    assert_eq!(s["erases"], again["erases"]);
}

/// The text summary names every invariant and ends in a verdict.
#[test]
fn simulate_prints_a_summary_table() {
    let o = run(&["simulate", "--events", "1500", "--cuts", "20", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "events pushed",
        "power cuts",
        "recoveries",
        "lost ids (I1)",
        "resurrected ids (I2)",
        "reused ids (I3)",
        "device ms per event",
        "erases",
        "bytes programmed per event",
        "wear (erases per sector",
        "result: ok, 0 violations",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }
    assert!(!stderr(&o).contains("PowerCut"), "power cuts are quiet");
}

/// Record acks on flash with one program per word; the image it leaves verifies
/// and inspects to the same pending count and next id.
#[test]
fn simulate_record_acks_then_inspect_and_verify_its_image() {
    let img = scratch("record.img");
    let path = img.to_str().unwrap();
    let o = run(&[
        "simulate",
        "--ack-mode",
        "record",
        "--profile",
        "w25q-spi",
        "--events",
        "2000",
        "--cuts",
        "40",
        "--image",
        path,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json(&o);
    assert_eq!(s["violations"], 0);
    assert_eq!(s["flash"]["multiwrite"], false);
    let v = run(&["verify", path]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    assert!(stdout(&v).starts_with(&format!(
        "ok: {} pending events, next id {}",
        s["pending_at_end"], s["next_id"]
    )));
    let i = json(&run(&["inspect", path, "--json"]));
    assert_eq!(i["journal"]["next_id"], s["next_id"]);
    assert_eq!(
        i["journal"]["pending"].as_array().unwrap().len() as u64,
        s["pending_at_end"].as_u64().unwrap()
    );
    assert_eq!(i["geometry"]["sector_count"], 16);
}

/// I10 liveness under brown-outs: bursts of cuts, each within the first 1 to 6
/// program or erase operations after the restart, never brick the store (a push
/// or an ack that panics with anything but the cut) nor make `open` fail, and
/// I1–I3 still hold. The bursts really happen: more cuts in a row than the three
/// of the independent schedule.
#[test]
fn i10_simulate_brownout_bursts_brick_nothing_and_every_open_succeeds() {
    for extra in [&[][..], &["--ack-mode", "record"][..], &["--auth"][..]] {
        let mut args = vec![
            "simulate",
            "--seed",
            "5",
            "--events",
            "4000",
            "--cuts",
            "800",
            "--brownout",
            "60",
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {err}");
        let s = json(&o);
        for zero in [
            "bricked",
            "open_failures",
            "lost_ids",
            "resurrected_ids",
            "reused_ids",
            "violations",
        ] {
            assert_eq!(s[zero], 0, "{extra:?} {zero}: {s}");
        }
        assert_eq!(s["result"], "ok", "{s}");
        assert_eq!(s["halted"], Value::Null, "{s}");
        assert_eq!(s["brownout_percent"], 60);
        assert_eq!(s["events_pushed"], 4000, "the run went to its end");
        assert!(s["cuts"].as_u64().unwrap() > 400, "{extra:?}: {s}");
        assert!(s["brownout_cuts"].as_u64().unwrap() > 150, "{extra:?}: {s}");
        assert!(
            s["max_cuts_in_a_row"].as_u64().unwrap() > 3,
            "{extra:?}: bursts beyond the spare sectors: {s}"
        );
        assert_eq!(s["auth"], extra.contains(&"--auth"));
        assert!(!err.contains("PowerCut"), "power cuts are quiet: {err}");
    }
}

/// The table names the liveness counts, and `--auth` with in-place acks is a
/// usage error (an authenticated journal acks with records).
#[test]
fn simulate_table_reports_liveness_and_auth_refuses_in_place_acks() {
    let o = run(&[
        "simulate",
        "--events",
        "800",
        "--cuts",
        "60",
        "--brownout",
        "50",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "brown-outs 50 %",
        "in brown-out bursts",
        "bricked (I10)",
        "open failures (I10)",
        "result: ok, 0 violations",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }
    let o = run(&["simulate", "--auth", "--ack-mode", "in-place"]);
    assert_clear_error(&o, 1, "acks with records");
}

#[test]
fn inspect_clean_golden_image() {
    let path = golden("clean.img");
    let o = run(&["inspect", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "geometry    8 sectors x 4096 B, program unit 4 B",
        "format      version 1",
        "no torn tail; no bit corrected",
        "live*",
        "erased",
        "copies",
        "ack records",
        "pending events (11)",
        "claim ",
        "fwd from chan ",
        "UpdateCompleted",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in\n{out}");
    }
    let j = json(&run(&["inspect", path.to_str().unwrap(), "--json"]));
    assert_eq!(j["sectors"].as_array().unwrap().len(), 8);
    assert_eq!(j["journal"]["next_id"], 200);
    assert_eq!(j["journal"]["torn_tail"], Value::Null);
    let pending = j["journal"]["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 11);
    let ids: Vec<u64> = pending.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order: {ids:?}");
    assert!(pending.iter().all(|p| p["decodes"] == true));
}

#[test]
fn verify_clean_golden_image() {
    let o = run(&["verify", golden("clean.img").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok: 11 pending events, next id 200\n");
    let j = json(&run(&[
        "verify",
        golden("clean.img").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(j["ok"], true);
}

/// I8: a torn tail is repaired silently: verify passes, inspect says so.
#[test]
fn i8_torn_tail_golden_image_verifies_and_inspect_says_torn() {
    let path = golden("torn.img");
    let v = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let out = stdout(&v);
    assert!(
        out.starts_with("ok: 11 pending events, next id 201"),
        "{out}"
    );
    assert!(out.contains("torn tail"), "{out}");
    let i = run(&["inspect", path.to_str().unwrap()]);
    assert_eq!(i.status.code(), Some(0));
    assert!(
        stdout(&i).contains("a torn tail at offset"),
        "{}",
        stdout(&i)
    );
    let j = json(&run(&["inspect", path.to_str().unwrap(), "--json"]));
    assert!(j["journal"]["torn_tail"].is_u64());
}

/// I8: a bit flipped in the middle of a live record is loud: verify exits 2
/// naming the corruption; inspect still shows the sectors.
#[test]
fn i8_corrupted_golden_image_fails_verify_naming_the_corruption() {
    let path = golden("corrupt.img");
    let v = run(&["verify", path.to_str().unwrap()]);
    assert_clear_error(&v, 2, "corrupted at offset 0x");
    assert!(stderr(&v).contains("bit rot"), "{}", stderr(&v));
    assert!(stdout(&v).is_empty());
    let i = run(&["inspect", path.to_str().unwrap()]);
    assert_clear_error(&i, 2, "corrupted at offset 0x");
    assert!(stdout(&i).contains("geometry    8 sectors x 4096 B"));
    let j = json(&run(&["inspect", path.to_str().unwrap(), "--json"]));
    assert!(j["error"].as_str().unwrap().contains("corrupted"));
    assert_eq!(j["journal"], Value::Null);
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = run(&["verify", "/nonexistent/monitor-events.img"]);
    assert_clear_error(&o, 1, "no such file");
    let o = run(&["inspect", "/nonexistent/monitor-events.img"]);
    assert_clear_error(&o, 1, "no such file");
}

#[test]
fn wrong_size_is_a_clear_error() {
    let mut bytes = std::fs::read(golden("clean.img")).unwrap();
    bytes.truncate(30_000);
    let p = scratch("truncated.img");
    std::fs::write(&p, &bytes).unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_clear_error(&o, 1, "truncated");
    let o = run(&["inspect", p.to_str().unwrap(), "--sectors", "7"]);
    assert_clear_error(&o, 1, "check --sector-size and --sectors");
    let o = run(&[
        "verify",
        golden("clean.img").to_str().unwrap(),
        "--sectors",
        "7",
    ]);
    assert_clear_error(&o, 1, "is 32768 B");
}

#[test]
fn not_a_store_is_a_clear_error() {
    let p = scratch("notes.txt");
    std::fs::write(&p, "these are my notes, not a flash image\n".repeat(100)).unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_clear_error(&o, 1, "not a monitor-events store");
    let p = scratch("zeros.img");
    std::fs::write(&p, vec![0u8; 32768]).unwrap();
    let o = run(&["inspect", p.to_str().unwrap()]);
    assert_clear_error(&o, 1, "not a monitor-events store");
    let p = scratch("empty.img");
    std::fs::write(&p, b"").unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_clear_error(&o, 1, "empty");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let o = run(&["verify", dir.to_str().unwrap()]);
    assert_clear_error(&o, 1, "directory");
}

/// I8: a newer format version is refused with what to do.
#[test]
fn i8_newer_format_is_a_clear_error() {
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut bytes = std::fs::read(golden("clean.img")).unwrap();
    for sector in bytes.chunks_mut(4096) {
        if &sector[0..2] == b"ME" {
            sector[2] = 2;
            let crc = CRC32C.checksum(&sector[0..20]);
            sector[20..24].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let p = scratch("newer.img");
    std::fs::write(&p, &bytes).unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_clear_error(&o, 2, "format version 2");
    assert!(stderr(&o).contains("use a newer monitor-events"));
}

/// A blank (erased) medium is an empty store.
#[test]
fn blank_image_is_an_empty_store() {
    let p = scratch("blank.img");
    std::fs::write(&p, vec![0xFFu8; 32768]).unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("ok: 0 pending events, next id 0"));
    let o = run(&["inspect", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("blank"));
}

/// Inspecting never writes: the file is byte-identical afterwards.
#[test]
fn inspect_and_verify_never_write() {
    let before = std::fs::read(golden("torn.img")).unwrap();
    let p = scratch("torn-copy.img");
    std::fs::write(&p, &before).unwrap();
    run(&["inspect", p.to_str().unwrap()]);
    run(&["verify", p.to_str().unwrap()]);
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn bad_arguments_are_refused_by_the_parser() {
    let o = run(&["simulate", "--profile", "esp32"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nrf52840"));
    let o = run(&["simulate", "--events", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["inspect"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("panicked"));
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("simulate"));
}
