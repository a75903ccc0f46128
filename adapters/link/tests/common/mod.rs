//! Shared by the link's integration tests: a seeded mix of every event kind.

#![allow(dead_code)]

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentPreimage,
};
use monitor_events_flash::rng::Pcg32;

/// A random event of any kind: claims (outbound and forwarded), failures with
/// BOLT 4 data, confirmations, force-closes, update completions; channels from a
/// set of 8.
pub fn random_event(rng: &mut Pcg32) -> MonitorEvent {
    let channel = ChannelId([rng.below(8) as u8; 32]);
    let source = if rng.below(2) == 0 {
        HtlcSource::OutboundPayment {
            payment_id: rng.bytes32(),
        }
    } else {
        HtlcSource::Forward {
            prev_channel: ChannelId([rng.below(8) as u8 + 100; 32]),
            prev_htlc_id: u64::from(rng.next_u32()),
        }
    };
    match rng.below(10) {
        0..=3 => {
            let preimage = PaymentPreimage(rng.bytes32());
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash: preimage.payment_hash(),
                amount_msat: 1 + u64::from(rng.next_u32()),
                source,
                outcome: HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: (rng.below(2) == 0).then(|| u64::from(rng.below(5000))),
                },
                resolved_on_chain: rng.below(4) == 0,
                user_channel_id: (rng.below(2) == 0).then(|| u128::from(rng.next_u64())),
            })
        }
        4..=5 => {
            let data = [rng.below(256) as u8; 12];
            let len = rng.below(13) as usize;
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash: monitor_events::PaymentHash(rng.bytes32()),
                amount_msat: 1 + u64::from(rng.next_u32()),
                source,
                outcome: HtlcOutcome::Failed {
                    reason: FailureReason::new(0x400f, &data[..len]).unwrap(),
                    hold_time: (rng.below(2) == 0).then(|| rng.below(1000)),
                },
                resolved_on_chain: false,
                user_channel_id: None,
            })
        }
        6 => MonitorEvent::CommitmentTxConfirmed { channel },
        7 => MonitorEvent::HolderForceClosed {
            channel,
            reason: CloseReason::ProcessingError {
                code: rng.below(100) as u16,
            },
        },
        _ => MonitorEvent::UpdateCompleted {
            channel,
            update_id: u64::from(rng.next_u32()),
        },
    }
}
