//! Random typed events for the store tests.

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentPreimage, MAX_ENCODED_LEN, MAX_FAILURE_DATA,
};
use monitor_events_flash::workload::Pcg32;

/// The channel numbered `c`.
pub fn channel(c: u32) -> ChannelId {
    ChannelId([0xC0 + c as u8; 32])
}

/// A random valid event on one of `channels` channels: claims (with
/// preimages that hash to their payment hashes), failed forwards up to the
/// largest failure data, force-closes, confirmations and update completions.
pub fn event(rng: &mut Pcg32, channels: u32) -> MonitorEvent {
    let channel = channel(rng.below(channels));
    let n = u64::from(rng.next_u32());
    match rng.below(5) {
        0 => {
            let mut preimage = PaymentPreimage([0x11; 32]);
            preimage.0[..8].copy_from_slice(&n.to_le_bytes());
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash: preimage.payment_hash(),
                amount_msat: 1 + n,
                source: HtlcSource::OutboundPayment {
                    payment_id: [7; 32],
                },
                outcome: HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: (n % 2 == 0).then_some(n),
                },
                resolved_on_chain: false,
                user_channel_id: Some(u128::from(n)),
            })
        }
        1 => {
            let len = rng.below(MAX_FAILURE_DATA as u32 + 1) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash: monitor_events::PaymentHash([0x22; 32]),
                amount_msat: u64::MAX - n,
                source: HtlcSource::Forward {
                    prev_channel: ChannelId([0x33; 32]),
                    prev_htlc_id: n,
                },
                outcome: HtlcOutcome::Failed {
                    reason: FailureReason::new(n as u16, &data).expect("within the bound"),
                    hold_time: Some(n as u32),
                },
                resolved_on_chain: true,
                user_channel_id: None,
            })
        }
        2 => MonitorEvent::HolderForceClosed {
            channel,
            reason: CloseReason::ProcessingError { code: n as u16 },
        },
        3 => MonitorEvent::CommitmentTxConfirmed { channel },
        _ => MonitorEvent::UpdateCompleted {
            channel,
            update_id: n,
        },
    }
}

/// The event's encoding.
pub fn encoded(event: &MonitorEvent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    event.encode(&mut buf).expect("a valid event").to_vec()
}
