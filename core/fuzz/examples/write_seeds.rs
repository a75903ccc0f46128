//! Writes the seed corpus: `cargo run --example write_seeds` in `core/fuzz`.
//! Deterministic; rerun it after a format change and commit the `seed-*` files.

use monitor_events::journal::Journal;
use monitor_events::{
    ChannelId, CloseReason, EventStore, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource,
    MonitorEvent, PaymentPreimage, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{SimFlash, Torn};
use monitor_events_fuzz::checks::{check_decode, check_open, check_ops, Shape, SHAPES};
use std::path::Path;

fn events() -> Vec<(&'static str, MonitorEvent)> {
    let chan = |b: u8| ChannelId([b; 32]);
    let preimage = PaymentPreimage([7; 32]);
    vec![
        (
            "htlc-claimed",
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel: chan(0x11),
                payment_hash: preimage.payment_hash(),
                amount_msat: 1000,
                source: HtlcSource::OutboundPayment {
                    payment_id: [0x22; 32],
                },
                outcome: HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: Some(5),
                },
                resolved_on_chain: false,
                user_channel_id: Some(42),
            }),
        ),
        (
            "htlc-failed",
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel: chan(0x33),
                payment_hash: monitor_events::PaymentHash([0x44; 32]),
                amount_msat: 5_000_000,
                source: HtlcSource::Forward {
                    prev_channel: chan(0x55),
                    prev_htlc_id: 7,
                },
                outcome: HtlcOutcome::Failed {
                    reason: FailureReason::new(0x400f, &[0, 0, 0, 0, 0, 0x4c, 0x4b, 0x40]).unwrap(),
                    hold_time: Some(300),
                },
                resolved_on_chain: true,
                user_channel_id: None,
            }),
        ),
        (
            "commitment-confirmed",
            MonitorEvent::CommitmentTxConfirmed {
                channel: chan(0x66),
            },
        ),
        (
            "force-closed",
            MonitorEvent::HolderForceClosed {
                channel: chan(0x77),
                reason: CloseReason::PeerFeerateTooLow {
                    peer_feerate_sat_per_kw: 253,
                    required_feerate_sat_per_kw: 1000,
                },
            },
        ),
        (
            "update-completed",
            MonitorEvent::UpdateCompleted {
                channel: chan(0x88),
                update_id: 129,
            },
        ),
    ]
}

fn encode(e: &MonitorEvent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    e.encode(&mut buf).unwrap().to_vec()
}

/// An `open_image` input: the selector and the image without its erased tail.
fn image_input(selector: u8, image: &[u8]) -> Vec<u8> {
    let end = image.iter().rposition(|&b| b != 0xFF).map_or(0, |p| p + 1);
    let mut v = vec![selector];
    v.extend_from_slice(&image[..end]);
    v
}

/// A journal image after `rounds` of push, push, ack-oldest on the shape, with
/// small monitor events where they fit and raw bodies otherwise; then `cut`.
fn workload_image<const N: usize>(selector: u8, rounds: u32, cut: Option<Torn>) -> Vec<u8> {
    let shape = Shape::select(selector);
    let cfg = shape.config::<N>();
    let small: Vec<Vec<u8>> = events()
        .iter()
        .map(|(_, e)| encode(e))
        .filter(|b| b.len() <= shape.max_body)
        .collect();
    let mut flash = SimFlash::new(shape.geometry);
    let mut k = 0usize;
    let mut body = || {
        k += 1;
        if small.is_empty() {
            vec![k as u8; (k * 5) % shape.max_body + 1]
        } else {
            small[k % small.len()].clone()
        }
    };
    {
        let mut j = Journal::open(&mut flash, cfg).unwrap();
        for r in 0..rounds {
            if j.pending_count() + 2 > N {
                let oldest = j.pending().next().unwrap().0;
                j.ack(oldest).unwrap();
            }
            j.push(&body()).unwrap();
            j.push(&body()).unwrap();
            let oldest = j.pending().next().unwrap().0;
            j.ack(oldest).unwrap();
            if r % 3 == 2 {
                drop(j);
                j = Journal::open(&mut flash, cfg).unwrap();
            }
        }
        if let Some(torn) = cut {
            if j.pending_count() == N {
                let oldest = j.pending().next().unwrap().0;
                j.ack(oldest).unwrap();
            }
            let b = body();
            drop(j);
            flash.cut_after(0, torn);
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut j = Journal::open(&mut flash, cfg).unwrap();
                j.push(&b)
            }));
            std::panic::set_hook(hook);
            assert!(result.is_err(), "the cut fired");
            flash.power_on();
        }
    }
    // The typed store opens it when every body is an event.
    if !small.is_empty() {
        let _ = EventStore::<_, N>::open(&mut flash, cfg).map(|s| s.pending_count());
    }
    image_input(selector, flash.image())
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(format!("seed-{name}")), bytes).unwrap();
    println!("{target}/seed-{name}: {} B", bytes.len());
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, e) in events() {
        let bytes = encode(&e);
        check_decode(&bytes);
        write(&dir, "decode_event", name, &bytes);
    }

    assert_eq!(SHAPES[2].n, 4);
    let images = [
        ("blank-4x256", vec![0u8]),
        ("inplace-4x256", workload_image::<3>(0, 20, None)),
        (
            "record-4x256-torn",
            workload_image::<3>(1, 13, Some(Torn::RandomSubset(3))),
        ),
        ("inplace-8x512-events", workload_image::<4>(2, 50, None)),
        (
            "record-8x512-events-torn",
            workload_image::<4>(4, 23, Some(Torn::NoBits)),
        ),
        ("record-8x512-w16", workload_image::<4>(5, 9, None)),
        ("auth-4x256", workload_image::<3>(8, 12, None)),
        (
            "auth-8x512-events-torn",
            workload_image::<3>(9, 20, Some(Torn::RandomSubset(9))),
        ),
    ];
    for (name, input) in images {
        check_open(&input);
        write(&dir, "open_image", name, &input);
    }

    // Opcodes: 0 push(len, pattern), 2 batch, 3 ack(k), 5 ack2(k1, k2), 6 reopen,
    // 7 cut(j, v).
    let mut three_cuts = vec![2u8];
    for _ in 0..20 {
        three_cuts.extend_from_slice(&[0, 64, 2, 0, 63, 3, 3, 0, 3, 0]);
    }
    for _ in 0..3 {
        three_cuts.extend_from_slice(&[7, 0, 3, 0, 64, 2]);
    }
    three_cuts.extend_from_slice(&[6, 3, 0, 0, 64, 2, 6]);
    let ops: [(&str, Vec<u8>); 7] = [
        ("three-cuts-in-a-row-8x512", three_cuts),
        (
            "auth-cuts-8x512",
            vec![
                9, 0, 60, 2, 0, 61, 3, 3, 0, 7, 0, 3, 0, 62, 2, 3, 1, 0, 20, 2, 7, 1, 1, 3, 0, 6,
                2, 30, 2, 5, 0, 1, 6,
            ],
        ),
        (
            "push-ack-reopen-4x256",
            vec![
                0, 0, 20, 2, 0, 31, 7, 3, 0, 6, 0, 5, 2, 3, 1, 6, 2, 9, 2, 3, 0, 3, 0, 6,
            ],
        ),
        (
            "cut-in-push-4x256",
            vec![
                0, 0, 30, 2, 0, 30, 3, 7, 0, 3, 0, 12, 2, 3, 0, 0, 7, 3, 7, 0, 1, 3, 0, 0, 20, 2, 6,
            ],
        ),
        (
            "compaction-cuts-8x512",
            vec![
                2, 0, 60, 2, 0, 60, 3, 3, 0, 0, 61, 2, 3, 0, 7, 2, 1, 0, 62, 2, 3, 0, 0, 63, 2, 7,
                0, 3, 0, 64, 2, 3, 0, 0, 64, 2, 6, 7, 5, 2, 0, 64, 2, 3, 0, 0, 40, 2,
            ],
        ),
        (
            "batches-record-8x512",
            vec![
                4, 2, 40, 2, 10, 60, 3, 5, 0, 1, 7, 1, 3, 2, 30, 3, 6, 3, 0, 3, 0, 3, 0, 6,
            ],
        ),
        (
            "inplace-acks-8x256-w1",
            vec![
                7, 0, 40, 2, 0, 39, 3, 0, 38, 2, 3, 1, 7, 0, 2, 3, 0, 0, 10, 3, 6, 3, 0xF1, 3,
                0xE5, 6,
            ],
        ),
    ];
    for (name, input) in ops {
        let report = check_ops(&input);
        println!("  {name}: {report:?}");
        write(&dir, "ops_with_power_cuts", name, &input);
    }
}
