//! Replays the fuzz corpus seeds and every input the fuzz targets found a bug with,
//! through the very checks the targets run (`core/fuzz/src/checks.rs`), on stable,
//! in the normal test suite. The fuzzing itself: `ci/fuzz.sh` (cargo-fuzz, nightly).
//!
//! | target | check | invariants |
//! |---|---|---|
//! | `decode_event` | `check_decode` | I9 |
//! | `open_image` | `check_open` | I9, I8 (open writes nothing), I1–I4 after open |
//! | `ops_with_power_cuts` | `check_ops` | I1, I2, I3, I4, I6, I7, I8 under power cuts |
//!
//! A new finding goes here as a test named after what it reproduces, with the
//! minimized input (`cargo fuzz tmin`) inline.
//!
//! The targets build the crate with its default features (authenticated
//! shapes, preimage validation), and so does this replay: without them it is
//! left out.
#![cfg(all(feature = "auth", feature = "validate"))]

#[path = "../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod checks;

use monitor_events::journal::{Journal, Seen};
use monitor_events::{EventStore, MonitorEvent};
use monitor_events_flash::sim::SimFlash;
use std::path::PathBuf;

/// The `seed-*` files of a target's corpus, by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("seed-")
                .then(|| (name, std::fs::read(&path).expect("seed file")))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seed-* files in {}", dir.display());
    out
}

/// I9: every decoder seed is a valid encoding and passes the decode check.
#[test]
fn i9_decode_event_seeds() {
    for (name, bytes) in seeds("decode_event") {
        assert!(
            MonitorEvent::decode(&bytes).is_ok(),
            "{name} no longer decodes"
        );
        checks::check_decode(&bytes);
    }
}

/// I9, I8: every image seed passes the open check (open or a typed error, no
/// write, the store agrees, then a push, an ack and a reopen).
#[test]
fn i9_open_image_seeds() {
    for (name, bytes) in seeds("open_image") {
        eprintln!("{name}");
        checks::check_open(&bytes);
    }
}

/// I1–I4, I6–I8: every operation seed passes the model check; the seeds written
/// to cut power still do.
#[test]
fn i1_i2_i3_i4_ops_with_power_cuts_seeds() {
    for (name, bytes) in seeds("ops_with_power_cuts") {
        let report = checks::check_ops(&bytes);
        eprintln!("{name}: {report:?}");
        assert!(report.pushes > 0, "{name} pushes nothing any more");
        if name.contains("cut") {
            assert!(report.cuts > 0, "{name} no longer cuts power");
        }
        if name.contains("compact-op") {
            assert!(report.compactions > 0, "{name} no longer compacts");
        }
    }
}

/// I10, I9: the finding of `open_image` that the store's drop of a chance
/// correction changed (the seed `seed-store-drops-corrected-tail`): an image,
/// read as a file's, whose last record reads one bit short of its CRC and,
/// corrected, is no event. The journal keeps it corrected; the store drops it
/// as the torn write it is, and opens empty instead of refusing with
/// `BadEvent`. The check's oracle allows exactly that: a dropped body that is
/// no event, of a record the journal corrected.
#[test]
fn i10_store_drops_a_corrected_tail_that_is_no_event() {
    let data = seeds("open_image")
        .into_iter()
        .find(|(name, _)| name == "seed-store-drops-corrected-tail")
        .expect("the seed")
        .1;
    checks::check_open(&data);
    let (shape, image) = checks::image_of(&data).unwrap();
    assert!(data[0] >= 128, "read as a file's");
    assert_eq!(shape.n, 3, "the seed's shape");
    let config = shape.config::<3>();
    let mut corrected = Vec::new();
    let mut flash = SimFlash::from_image(shape.geometry, image.clone()).unwrap();
    let j = Journal::open_with(checks::ordered(&mut flash, false), config, |s| {
        if let Seen::Corrected { offset } = s {
            corrected.push(offset);
        }
    })
    .unwrap();
    assert_eq!(
        j.pending_count(),
        1,
        "the journal keeps the corrected record"
    );
    assert_eq!(corrected.len(), 1);
    drop(j);
    let mut flash = SimFlash::from_image(shape.geometry, image).unwrap();
    let s = EventStore::<_, 3>::open(checks::ordered(&mut flash, false), config).unwrap();
    assert_eq!(s.pending_count(), 0, "the store drops it");
}

/// I9: inputs the decoder check must survive that no seed covers: empty, a lone
/// variant byte, an unknown variant, a maximal varint.
#[test]
fn i9_decode_event_edge_inputs() {
    for input in [
        &[][..],
        &[0x00],
        &[0x04],
        &[0xFF; 11],
        &[0x03, 0x88],
        &[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
    ] {
        checks::check_decode(input);
    }
}

/// I9: every shape opens blank (no image bytes) and all-zero images with a typed
/// error.
#[test]
fn i9_open_blank_and_zero_images_of_every_shape() {
    // From 128 up, the same shapes on a medium that reorders unsynced writes.
    for selector in (0..checks::SHAPES.len() as u8).chain(128..128 + checks::SHAPES.len() as u8) {
        checks::check_open(&[selector]);
        let mut zeros = vec![selector];
        zeros.resize(1 + checks::Shape::select(selector).size(), 0);
        checks::check_open(&zeros);
    }
}

/// I6, I10: the harness reaches both capacity rules: the first ten shapes hold
/// `N` copies in one sector, the last four only in the region (a copy budget per
/// sector); and every shape runs a burst of cuts clean.
#[test]
fn i10_shapes_cover_both_capacity_rules() {
    let bounded: Vec<bool> = checks::SHAPES
        .iter()
        .map(|s| match s.n {
            3 => s.config::<3>().region_bounded(),
            4 => s.config::<4>().region_bounded(),
            6 => s.config::<6>().region_bounded(),
            8 => s.config::<8>().region_bounded(),
            n => panic!("no dispatch for {n}"),
        })
        .collect();
    assert_eq!(bounded.iter().filter(|b| **b).count(), 4, "{bounded:?}");
    assert!(bounded[10..].iter().all(|b| *b), "{bounded:?}");
    // Operations from every shape: pushes, acks, cuts, reopens.
    for selector in 0..checks::SHAPES.len() as u8 {
        let mut input = vec![selector];
        for k in 0..240u32 {
            input.push((k.wrapping_mul(0x9E37_79B9) >> 24) as u8);
        }
        checks::check_ops(&input);
    }
}

/// Found by `ops_with_power_cuts` (minimized, 29 bytes): on the 4-sector shape
/// (reserve 1), a cut in a rollover header and then a cut in the retire record of
/// the compaction that follows, with only repair erases between them, leave no
/// free sector: every later push panics "no free sector left", even with nothing
/// pending. That is two cuts in a row where the configuration promises to survive
/// one (the documented limit of `Config::try_new`), so the harness now skips a
/// second cut until the journal is back to `1 + reserve` free sectors. Whether
/// this input still reaches that state depends on the journal's exact writes; it
/// must run clean either way.
#[test]
fn reserve_1_two_cuts_in_a_row_no_free_sector() {
    let input = [
        0x00, 0x00, 0x0c, 0x21, 0x5f, 0x00, 0x02, 0xcc, 0xcc, 0xcc, 0x00, 0x06, 0x0c, 0x21, 0x5f,
        0x01, 0x0f, 0x00, 0x02, 0xcd, 0xcc, 0x01, 0x0f, 0x01, 0xcc, 0xc1, 0xcc, 0xcc, 0xc1,
    ];
    let report = checks::check_ops(&input);
    assert!(report.cuts >= 2, "{report:?}");
}

/// Found by `open_image` (shape 5: 8 × 512 B, write size 16, record acks), I9:
/// an `Event` record whose CRC checks but whose `aux` byte (word0 bits 24..32)
/// is not `0xFF` opens `Ok`, yet `Journal::read` (and `EventStore::open`, and a
/// compaction copy) rebuilds word0 with `aux = 0xFF`, gets another CRC and panics
/// "read at offset 32: the record of event 0 changed on the medium". The writer
/// never produces such a record; `open` now refuses it (a record with a body
/// must have `aux = 0xFF`). Record at offset 32: word0 `0xFBFF1026` (len 38, kind
/// `Event`, ack byte `0xFF`, aux `0xFB`), CRC `0x88A84774`, body
/// `77 × 7, 08, FF × 30`.
#[test]
fn i9_event_record_with_aux_byte_not_ff_is_refused() {
    let input = [
        0x05, 0x4d, 0x45, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x08, 0x00, 0x09, 0x04, 0x59, 0x18, 0xe1, 0x22, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x26, 0x10, 0xff, 0xfb, 0x74, 0x47, 0xa8, 0x88, 0x77, 0x77, 0x77, 0x77,
        0x77, 0x77, 0x77, 0x08,
    ];
    checks::check_open(&input);
}

/// Found by `open_image`, minimized with `cargo fuzz tmin` (49 bytes), I9: as
/// above, but the stored aux byte reads `0xFF`; `open` explains the CRC failure as
/// a torn write that left bit 26 (aux bit 2) at 1, corrects word0 to `0xFBFF1026`
/// ("one bit reads 1 that should be 0, nothing programmed after it": `Corrected`)
/// and accepted the record; `read` then panicked the same way. A torn write of a
/// real `Event` record cannot need that correction: its aux byte is always
/// `0xFF`, and `open` no longer considers a correction that breaks this.
#[test]
fn i9_event_record_corrected_in_aux_byte_is_refused() {
    let input = [
        0x05, 0x4d, 0x45, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x08, 0x00, 0x09, 0x04, 0x59, 0x18, 0xe1, 0x22, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x26, 0x10, 0xff, 0xff, 0x74, 0x47, 0xa8, 0x88, 0x77, 0x77, 0x77, 0x77,
        0x77, 0x77, 0x77, 0x08,
    ];
    checks::check_open(&input);
}
