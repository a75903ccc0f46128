//! I8: flip each bit of a committed journal, one at a time: `open` returns a typed
//! error or exactly the right events, never different data; on the bench
//! geometry, and on sectors of two erase blocks (8 KiB), larger than a record.

mod support;

use monitor_events::journal::{AckMode, Config, Journal};
use monitor_events::medium::Geometry;
use monitor_events::EventId;
use monitor_events_flash::sim::SimFlash;
use monitor_events_flash::workload::{W1Op, W1};
use monitor_events_flash::Grouped;
use support::*;

/// Runs the first `events` of W1 (ring turned over, compaction and acks of both
/// kinds on the medium) and returns the flash and the model.
fn committed(mode: AckMode, events: u64) -> (SimFlash, Model) {
    let mut flash = SimFlash::new(geometry(mode));
    let mut model = Model::default();
    let mut j = Journal::open(&mut flash, config(mode)).unwrap();
    for op in W1::new(events, 0) {
        match op {
            W1Op::Push { payload, .. } => {
                let id = j.push(&payload).unwrap();
                model.pushed(id, payload);
            }
            W1Op::Ack { id, .. } if model.durable.contains_key(&id) => {
                j.ack(EventId(id)).unwrap();
                model.acked(EventId(id));
            }
            _ => {}
        }
        // Stop before W1's final acks: keep events pending.
        if model.max_id == Some(events - 1) {
            break;
        }
    }
    drop(j);
    (flash, model)
}

/// Flips the bits `bits` of `image` one at a time (on two threads), opens each
/// result with `open` and sorts the outcomes: (typed errors, exactly right,
/// different data).
fn flip_each(
    image: &[u8],
    bits: impl Iterator<Item = u64> + Clone + Send,
    open: impl Fn(Vec<u8>, u64) -> Option<(Counts, String)> + Sync,
) -> (u64, u64, u64) {
    let workers = 2usize;
    let results: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (open, bits) = (&open, bits.clone());
                s.spawn(move || {
                    let (mut errors, mut same, mut different) = (0u64, 0u64, 0u64);
                    for bit in bits.skip(w).step_by(workers) {
                        match open(image.to_vec(), bit) {
                            None => errors += 1,
                            Some((c, _)) if c.clean() => same += 1,
                            Some(_) => different += 1,
                        }
                    }
                    (errors, same, different)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    results
        .iter()
        .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2))
}

#[test]
fn i8_every_single_bit_flip_is_an_error_or_harmless() {
    let mut lines = Vec::new();
    for mode in [AckMode::InPlace, AckMode::Record] {
        let (flash, model) = committed(mode, 900);
        let image = flash.image().to_vec();
        let bits = image.len() as u64 * 8;
        let (errors, same, different) = flip_each(&image, 0..bits, |img, bit| {
            let mut f = SimFlash::from_image(geometry(mode), img).unwrap();
            f.flip_bit(bit);
            let mut j = Journal::open(f, config(mode)).ok()?;
            let what = format!("{mode:?} flip of bit {bit}");
            Some((check(&model, &mut j, &what).0, what))
        });
        lines.push(format!(
            "{mode:?}: bit flips checked: {bits}, typed errors: {errors}, exactly right: {same}, different data: {different}"
        ));
        assert_eq!(
            different, 0,
            "I8: {mode:?}: a bit flip changed the recovered data"
        );
        assert!(errors > 0, "flips in live records must be caught");
    }
    for l in lines {
        println!("{l}");
    }
}

/// Pending events the grouped run keeps at most.
const GROUPED_N: usize = 48;
/// Erase blocks per journal sector in the grouped run.
const GROUP: u32 = 2;

/// A journal whose sectors (8 KiB: 2 erase blocks of the bench flash) are far
/// larger than one record: `open` skims the retire records of the older live
/// sectors and checks only the bytes behind the last record that a torn record
/// could have touched. Runs W1 with acks held back so that about
/// `GROUPED_N` events stay pending and several retirements happen.
fn committed_grouped(mode: AckMode) -> (SimFlash, Model, Config<GROUPED_N>) {
    let g = geometry(mode);
    let config = Config::<GROUPED_N>::try_new(
        Geometry {
            sector_size: g.sector_size * GROUP,
            sector_count: g.sector_count / GROUP,
            ..g
        },
        MAX_BODY,
    )
    .unwrap()
    .with_ack_mode(mode)
    .unwrap();
    let mut flash = SimFlash::new(g);
    let mut model = Model::default();
    {
        let mut j = Journal::open(Grouped::new(&mut flash, GROUP).unwrap(), config).unwrap();
        let mut held = std::collections::VecDeque::new();
        for op in W1::new(1500, 7) {
            match op {
                W1Op::Push { payload, .. } => {
                    let id = j.push(&payload).unwrap();
                    model.pushed(id, payload);
                    held.push_back(id);
                }
                W1Op::Ack { .. } if held.len() > GROUPED_N - 8 => {
                    // Ack the oldest held event and one from the middle: the
                    // live sectors keep a mix of pending and acked records.
                    for id in [held.pop_front(), held.remove(held.len() / 2)]
                        .into_iter()
                        .flatten()
                    {
                        j.ack(id).unwrap();
                        model.acked(id);
                    }
                }
                _ => {}
            }
        }
        let s = j.status();
        assert!(
            s.oldest_seq.unwrap() + 2 <= s.current_seq.unwrap() && s.current_seq.unwrap() >= 8,
            "the run must leave three or more live sectors after several retirements: {s:?}"
        );
    }
    (flash, model, config)
}

#[test]
fn i8_bit_flips_on_sectors_larger_than_a_record() {
    let stride = std::env::var("FLIP_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13u64);
    let mut lines = Vec::new();
    for mode in [AckMode::InPlace, AckMode::Record] {
        let (flash, model, config) = committed_grouped(mode);
        let image = flash.image().to_vec();
        let bits = image.len() as u64 * 8;
        // A stride prime to 8 reaches every bit position of a byte.
        let (errors, same, different) =
            flip_each(&image, (0..bits).step_by(stride as usize), |img, bit| {
                let mut f = SimFlash::from_image(geometry(mode), img).unwrap();
                f.flip_bit(bit);
                let mut j = Journal::open(Grouped::new(f, GROUP).unwrap(), config).ok()?;
                let what = format!("{mode:?} grouped flip of bit {bit}");
                Some((check(&model, &mut j, &what).0, what))
            });
        lines.push(format!(
            "{mode:?}, 8 KiB sectors: bit flips checked: {}, typed errors: {errors}, exactly right: {same}, different data: {different}",
            errors + same + different
        ));
        assert_eq!(
            different, 0,
            "I8: {mode:?}: a bit flip changed the recovered data (8 KiB sectors)"
        );
        assert!(errors > 0, "flips in live records must be caught");
        assert!(same > 0, "flips in dead or erased bytes change nothing");
    }
    for l in lines {
        println!("{l}");
    }
}
