//! I8: flip each bit of a committed journal, one at a time: `open` returns a typed
//! error or exactly the right events, never different data.

mod support;

use monitor_events::journal::{AckMode, Journal};
use monitor_events::EventId;
use monitor_events_flash::sim::SimFlash;
use monitor_events_flash::workload::{W1Op, W1};
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

#[test]
fn i8_every_single_bit_flip_is_an_error_or_harmless() {
    let mut lines = Vec::new();
    for mode in [AckMode::InPlace, AckMode::Record] {
        let (flash, model) = committed(mode, 900);
        let image = flash.image().to_vec();
        let bits = image.len() as u64 * 8;
        let workers = 2;
        let results: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (image, model) = (&image, &model);
                    s.spawn(move || {
                        let (mut errors, mut same, mut different) = (0u64, 0u64, 0u64);
                        for bit in (w..bits).step_by(workers as usize) {
                            let mut f =
                                SimFlash::from_image(geometry(mode), image.clone()).unwrap();
                            f.flip_bit(bit);
                            match Journal::open(f, config(mode)) {
                                Err(_) => errors += 1,
                                Ok(mut j) => {
                                    let (c, _) = check(
                                        model,
                                        &mut j,
                                        &format!("{mode:?} flip of bit {bit}"),
                                    );
                                    if c.clean() {
                                        same += 1;
                                    } else {
                                        different += 1;
                                    }
                                }
                            }
                        }
                        (errors, same, different)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (errors, same, different) = results
            .iter()
            .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2));
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
