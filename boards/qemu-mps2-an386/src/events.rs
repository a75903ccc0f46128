//! A simulated channel monitor: the event with id `id` is a pure function of the
//! id, so `verify` can rebuild the exact bytes `run` pushed without keeping them.
//! Also docs/BENCH.md's PCG32 and FNV-1a, for the W1 self-test.

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentHash, PaymentPreimage, MAX_ENCODED_LEN, MAX_FAILURE_DATA,
};

pub use monitor_events_flash::rng::{Fnv1a64, Pcg32};

/// The channels of the simulated monitor.
pub const CHANNELS: usize = 4;

/// Channel number `i` (`0..CHANNELS`).
pub fn channel(i: usize) -> ChannelId {
    let mut c = [0u8; 32];
    c[0] = 0xC0;
    c[31] = i as u8;
    ChannelId(c)
}

/// The event the simulated monitor produces as its `id`-th event.
pub fn event_for(id: u64) -> MonitorEvent {
    let mut rng = Pcg32::new(id ^ 0x6d6f_6e69_746f_7273);
    let ch = channel(rng.below(CHANNELS as u32) as usize);
    match rng.below(10) {
        // Most monitor events resolve HTLCs.
        0..=5 => {
            let source = if rng.below(2) == 0 {
                HtlcSource::OutboundPayment {
                    payment_id: rng.bytes32(),
                }
            } else {
                HtlcSource::Forward {
                    prev_channel: channel(rng.below(CHANNELS as u32) as usize),
                    prev_htlc_id: u64::from(rng.next_u32()),
                }
            };
            let (payment_hash, outcome) = if rng.below(3) != 0 {
                let preimage = PaymentPreimage(rng.bytes32());
                let fee = if rng.below(4) == 0 {
                    Some(u64::from(rng.below(5000)))
                } else {
                    None
                };
                (
                    preimage.payment_hash(),
                    HtlcOutcome::Claimed {
                        preimage,
                        skimmed_fee_msat: fee,
                    },
                )
            } else {
                let mut data = [0u8; MAX_FAILURE_DATA];
                let len = rng.below(MAX_FAILURE_DATA as u32 + 1) as usize;
                for b in data.iter_mut().take(len) {
                    *b = rng.next_u32() as u8;
                }
                let code = [0x400F, 0x2002, 0x1007, 0x4012][rng.below(4) as usize];
                let reason = match FailureReason::new(code, &data[..len]) {
                    Ok(r) => r,
                    Err(_) => defmt::unreachable!(),
                };
                let hold_time = if rng.below(2) == 0 {
                    Some(rng.below(600))
                } else {
                    None
                };
                (
                    PaymentHash(rng.bytes32()),
                    HtlcOutcome::Failed { reason, hold_time },
                )
            };
            MonitorEvent::HtlcResolved(HtlcResolution {
                channel: ch,
                payment_hash,
                amount_msat: 1 + rng.next_u64() % 10_000_000_000,
                source,
                outcome,
                resolved_on_chain: rng.below(8) == 0,
                user_channel_id: if rng.below(2) == 0 {
                    Some(u128::from(rng.next_u64()))
                } else {
                    None
                },
            })
        }
        6 => MonitorEvent::CommitmentTxConfirmed { channel: ch },
        7 => MonitorEvent::HolderForceClosed {
            channel: ch,
            reason: match rng.below(3) {
                0 => CloseReason::HtlcsTimedOut,
                1 => CloseReason::ProcessingError {
                    code: rng.below(100) as u16,
                },
                _ => CloseReason::PeerFeerateTooLow {
                    peer_feerate_sat_per_kw: 253,
                    required_feerate_sat_per_kw: 253 + rng.below(5000),
                },
            },
        },
        _ => MonitorEvent::UpdateCompleted {
            channel: ch,
            update_id: rng.next_u64() >> 20,
        },
    }
}

/// The encoded body of event `id`, in `buf`.
pub fn body_for(id: u64, buf: &mut [u8; MAX_ENCODED_LEN]) -> &[u8] {
    match event_for(id).encode(buf) {
        Ok(b) => b,
        Err(e) => defmt::panic!("simulated event {} does not encode: {}", id, e),
    }
}
