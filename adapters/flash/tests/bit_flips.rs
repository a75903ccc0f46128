//! I8: flip each bit of a committed journal, one at a time: `open` returns a typed
//! error or exactly the right events, never different data; on the bench
//! geometry, on sectors of two erase blocks (8 KiB), larger than a record, and
//! on random geometries `Config` takes in every flavor, each image read both as
//! a flash's and as a file's (whose writes may land out of order).

mod support;

use monitor_events::journal::{AckMode, Config, Journal, Seen};
use monitor_events::medium::{Geometry, Medium};
use monitor_events::EventId;
use monitor_events_flash::sim::SimFlash;
use monitor_events_flash::workload::{Pcg32, W1Op, W1};
use monitor_events_flash::Grouped;
use support::*;

/// Runs the first `events` of W1 (ring turned over, compaction and acks of both
/// kinds on the medium) and returns the flash and the model.
fn committed(mode: AckMode, events: u64) -> (SimFlash, Model) {
    let mut flash = SimFlash::new(geometry(mode));
    let mut model = Model::default();
    let mut j = Journal::open(&mut flash, config(mode)).unwrap();
    w1_with_events_pending(&mut j, events, &mut model);
    drop(j);
    (flash, model)
}

/// Runs W1's first `events` pushes and the acks between them on `j`, into
/// `model`, stopping before W1's final acks so that events stay pending.
fn w1_with_events_pending<M: Medium>(j: &mut Journal<M, N>, events: u64, model: &mut Model) {
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
        if model.max_id == Some(events - 1) {
            break;
        }
    }
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
            s.oldest_seq.unwrap() + 2 <= s.current_seq.unwrap() && s.current_seq.unwrap() >= 6,
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

/// I8 at the geometries `Config` takes, every flavor, both medium orders: on
/// random draws ([`draw_config`]: sectors of 256 B to 16 KiB, 3 to 16 of them,
/// program units of 1 to 32 B, random reserves, sectors of 1, 2 or 4 erase
/// blocks) in each flavor (in-place acks, ack records, authenticated), W1 runs
/// until it has written about three times the region (retirements, copies,
/// acks of both kinds on the medium), stopping with events pending. Then bits
/// of the image are flipped one at a time: every bit of an image of up to
/// `FLIP_BITS` bits (default 6 000), else one drawn from each of `FLIP_BITS`
/// equal spans. Each flipped image is opened as a flash's (writes in order) and
/// as a file's (writes may land out of order, where recovery takes a failing
/// record with records behind it as the end of an interrupted write): `open`
/// must refuse, or give exactly the model's events (I1, I2, I4) under ids not
/// reused (I3). Where it corrected a record, it must then take an event and
/// open again with the same contents.
///
/// `FLIP_GEOMETRIES` sets the draws per flavor (default 6).
#[test]
fn i1_i4_i8_bit_flips_at_random_geometries_in_both_medium_orders() {
    let draws = env_u64("FLIP_GEOMETRIES", 6);
    let cap = env_u64("FLIP_BITS", 6_000);
    let mut lines = Vec::new();
    for flavor in Flavor::ALL {
        let mut rng = Pcg32::new(0xF1_1900 + flavor as u64);
        // (refused, exactly right, different data, corrected) by medium order.
        let mut by_order = [(0u64, 0u64, 0u64, 0u64); 2];
        for draw in 0..draws {
            let (config, group, name) = draw_config(&mut rng, flavor);
            let g = config.geometry();
            let blocks = Geometry {
                sector_size: g.sector_size / group,
                sector_count: g.sector_count * group,
                ..g
            };
            let mut flash = SimFlash::new(blocks);
            let mut model = Model::default();
            {
                let medium = Grouped::new(&mut flash, group).unwrap();
                let mut j = Journal::open(medium, config).unwrap();
                // W1's payloads average about 70 B.
                let events = (3 * g.size() as u64 / 70).clamp(100, 3_000);
                w1_with_events_pending(&mut j, events, &mut model);
            }
            let image = flash.image().to_vec();
            let bits = image.len() as u64 * 8;
            let picks: Vec<u64> = if bits <= cap {
                (0..bits).collect()
            } else {
                let span = bits / cap;
                (0..cap)
                    .map(|k| k * span + rng.below(span as u32) as u64)
                    .collect()
            };
            for (o, in_order) in [true, false].into_iter().enumerate() {
                let corrected = std::sync::atomic::AtomicU64::new(0);
                let (errors, same, different) = flip_each(
                    &image,
                    picks.iter().copied(),
                    |img, bit| {
                        let what = format!(
                            "{name} (draw {draw}), in order {in_order}: flip of bit {bit} (byte {:#x})",
                            bit / 8
                        );
                        let mut f = SimFlash::from_image(blocks, img).unwrap();
                        f.flip_bit(bit);
                        let medium = Ordered {
                            inner: Grouped::new(f, group).unwrap(),
                            in_order,
                        };
                        let mut fixed = false;
                        let mut j = Journal::open_with(medium, config, |seen| {
                            fixed |= matches!(seen, Seen::Corrected { .. })
                        })
                        .ok()?;
                        let (mut c, _) = check(&model, &mut j, &what);
                        if fixed && c.clean() {
                            corrected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            // The corrected record lives on beside a new event.
                            if j.pending_count() == N {
                                let oldest = j.pending_ids()[0];
                                j.ack(oldest).unwrap();
                            }
                            let id = j.push(&[0x5A; 40]).unwrap();
                            if model.max_id.is_some_and(|m| id.0 <= m) {
                                c.reused += 1;
                            }
                            let held = pending(&mut j);
                            let mut j =
                                Journal::open(j.into_medium(), config).unwrap_or_else(|e| {
                                    panic!("{what}: corrected, took an event, then: {e}")
                                });
                            if pending(&mut j) != held {
                                eprintln!("{what}: reopened after a push with other events");
                                c.wrong += 1;
                            }
                        }
                        Some((c, what))
                    },
                );
                eprintln!(
                    "{name} (draw {draw}), in order {in_order}: {} of {bits} bits flipped: refused {errors}, right {same}, different {different}",
                    picks.len()
                );
                let t = &mut by_order[o];
                t.0 += errors;
                t.1 += same;
                t.2 += different;
                t.3 += corrected.into_inner();
                assert_eq!(
                    different, 0,
                    "I8: {name} (draw {draw}), in order {in_order}: a bit flip changed the recovered data"
                );
            }
        }
        for (o, t) in by_order.iter().enumerate() {
            lines.push(format!(
                "{flavor:?}, {draws} random geometries, in order {}: typed errors: {}, exactly right: {}, different data: {}, corrected and carried on: {}",
                o == 0,
                t.0,
                t.1,
                t.2,
                t.3
            ));
            // Teeth: flips in live records are caught, others change nothing.
            assert!(
                draws < 3 || (t.0 > 0 && t.1 > 0),
                "{}",
                lines.last().unwrap()
            );
        }
    }
    for l in lines {
        println!("{l}");
    }
}

/// Pending events the largest-record run keeps at most.
const LARGE_N: usize = 8;

/// I8 in the largest records the format carries: bodies of 2 KiB to 4 087 B
/// (the body bound `Config` takes at most), where a corrected bit's position
/// runs past 32 000 and a record fills an eighth of its 32 KiB sector. In each
/// flavor, a random run of pushes and acks in any order (acks in place or as
/// records) retires sectors several times and stops with events pending; then
/// one bit drawn from each span of `FLIP_LARGE_SPAN` bits (default 160) is
/// flipped, and the image opened as a flash's and as a file's: `open` must
/// refuse, or give exactly the model's events.
#[test]
fn i1_i4_i8_bit_flips_in_the_largest_records() {
    let span = env_u64("FLIP_LARGE_SPAN", 160);
    let mut lines = Vec::new();
    for flavor in Flavor::ALL {
        let g = Geometry {
            sector_size: 32 * 1024,
            sector_count: 4,
            write_size: 4,
            multiwrite: flavor == Flavor::InPlace,
        };
        let config =
            flavored(Config::<LARGE_N>::try_new(g, LARGEST_BODY).unwrap(), flavor).unwrap();
        let mut rng = Pcg32::new(0x1A_6E00 + flavor as u64);
        let mut flash = SimFlash::new(g);
        let mut model = Model::default();
        {
            let mut j = Journal::open(&mut flash, config).unwrap();
            for _ in 0..160 {
                if j.pending_count() < LARGE_N && rng.below(3) != 0 {
                    let len = if rng.below(3) == 0 {
                        LARGEST_BODY
                    } else {
                        2048 + rng.below(2040) as usize
                    };
                    let payload: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
                    let id = j.push(&payload).unwrap();
                    model.pushed(id, payload);
                } else if j.pending_count() > 2 {
                    let ids = j.pending_ids();
                    let id = ids[rng.below(ids.len() as u32) as usize];
                    j.ack(id).unwrap();
                    model.acked(id);
                }
            }
            let s = j.status();
            assert!(
                s.current_seq.unwrap() >= 6,
                "{flavor:?}: the run must retire sectors several times: {s:?}"
            );
            assert!(j.pending_count() > 2, "{flavor:?}: events stay pending");
        }
        let image = flash.image().to_vec();
        let bits = image.len() as u64 * 8;
        let picks: Vec<u64> = (0..bits / span)
            .map(|k| k * span + rng.below(span as u32) as u64)
            .collect();
        for in_order in [true, false] {
            let corrected = std::sync::atomic::AtomicU64::new(0);
            let (errors, same, different) = flip_each(&image, picks.iter().copied(), |img, bit| {
                let mut f = SimFlash::from_image(g, img).unwrap();
                f.flip_bit(bit);
                let medium = Ordered { inner: f, in_order };
                let mut fixed = false;
                let mut j = Journal::open_with(medium, config, |seen| {
                    fixed |= matches!(seen, Seen::Corrected { .. })
                })
                .ok()?;
                if fixed {
                    corrected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let what = format!(
                    "{flavor:?}, in order {in_order}: flip of bit {bit} (byte {:#x})",
                    bit / 8
                );
                Some((check(&model, &mut j, &what).0, what))
            });
            lines.push(format!(
                "{flavor:?}, records up to {LARGEST_BODY} B, in order {in_order}: bit flips checked: {}, typed errors: {errors}, exactly right: {same}, different data: {different}, corrected: {}",
                picks.len(),
                corrected.load(std::sync::atomic::Ordering::Relaxed)
            ));
            assert_eq!(
                different, 0,
                "I8: {flavor:?}, in order {in_order}: a bit flip changed the recovered data (largest records)"
            );
            assert!(errors > 0 && same > 0, "{}", lines.last().unwrap());
        }
    }
    for l in lines {
        println!("{l}");
    }
}
