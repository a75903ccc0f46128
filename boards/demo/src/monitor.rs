//! A simulated channel monitor: a few channels whose HTLCs get claimed or failed,
//! a commitment that confirms, monitor updates that complete. Deterministic in a
//! counter, so every boot produces new but reproducible events.
//!
//! The choices below use `u32` remainders of the counter: a `u64` `%` would link
//! compiler-builtins' 64-bit division (about 900 B on Cortex-M) into the demo and
//! inflate the size report's figure for the library.
//!
//! Both functions are `#[inline]`: a board instantiates the generic [`run`](crate::run)
//! in its own crate, and without the hint these calls would stay cross-crate until
//! LTO, which then builds a larger `main` (about 140 B on the nRF52840) than when
//! this module was part of each board.

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentHash, PaymentPreimage,
};

/// Channel `i` of the simulated node.
#[inline]
pub fn channel(i: u64) -> ChannelId {
    // Set by aligned words, so that the zeros between are cleared in place rather
    // than by compiler-builtins' unaligned `memclr` (about 200 B).
    let mut c = [0u8; 32];
    c[..4].copy_from_slice(&[0xC0, 0, 0, 0]);
    c[28..].copy_from_slice(&[0, 0, 0, (i as u32 % 3) as u8]);
    ChannelId(c)
}

/// The preimage a claim reveals and its payment hash: a fresh preimage from
/// `secret`, hashed (feature `validate`, so the library checks the claim).
#[cfg(feature = "validate")]
#[inline]
fn preimage_and_hash(secret: [u8; 32]) -> (PaymentPreimage, PaymentHash) {
    let preimage = PaymentPreimage(secret);
    (preimage, preimage.payment_hash())
}

/// The preimage a claim reveals and its payment hash: without `validate` the
/// firmware links no SHA-256, so every claim reveals the all-zero preimage and
/// carries its hash as a constant (valid for a firmware that checks preimages too).
#[cfg(not(feature = "validate"))]
#[inline]
fn preimage_and_hash(_secret: [u8; 32]) -> (PaymentPreimage, PaymentHash) {
    // SHA-256 of 32 zero bytes.
    const HASH_OF_ZEROS: [u8; 32] = [
        0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77, 0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e,
        0x20, 0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3, 0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f,
        0x29, 0x25,
    ];
    (PaymentPreimage([0; 32]), PaymentHash(HASH_OF_ZEROS))
}

/// The `n`-th event the simulated monitor produces.
#[inline]
pub fn event(n: u64) -> MonitorEvent {
    let ch = channel(n);
    // By words (see `channel`): `n`, zeros, `0x5E` in the last byte.
    let mut secret = [0u8; 32];
    for (to, word) in secret.chunks_exact_mut(8).zip([n, 0, 0, 0x5E << 56]) {
        to.copy_from_slice(&word.to_le_bytes());
    }
    let (preimage, payment_hash) = preimage_and_hash(secret);
    match n as u32 % 5 {
        // A claim: the preimage must hash to the payment hash (checked at encode).
        0 | 1 => MonitorEvent::HtlcResolved(HtlcResolution {
            channel: ch,
            payment_hash,
            amount_msat: 1_000 * (n + 1),
            source: HtlcSource::Forward {
                prev_channel: channel(n + 1),
                prev_htlc_id: n,
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: None,
            },
            resolved_on_chain: false,
            user_channel_id: Some(u128::from(n as u32 % 3)),
        }),
        // A failure with BOLT 4 `incorrect_or_unknown_payment_details` (0x400F).
        2 => MonitorEvent::HtlcResolved(HtlcResolution {
            channel: ch,
            payment_hash,
            amount_msat: 500 * (n + 1),
            source: HtlcSource::OutboundPayment { payment_id: secret },
            outcome: HtlcOutcome::Failed {
                reason: match FailureReason::new(0x400F, &(n as u32).to_be_bytes()) {
                    Ok(r) => r,
                    Err(e) => fail!("failure data", "failure data: {}"; e),
                },
                hold_time: Some(3),
            },
            resolved_on_chain: false,
            user_channel_id: None,
        }),
        3 => MonitorEvent::UpdateCompleted {
            channel: ch,
            update_id: n,
        },
        _ if n as u32 % 10 == 4 => MonitorEvent::CommitmentTxConfirmed { channel: ch },
        _ => MonitorEvent::HolderForceClosed {
            channel: ch,
            reason: CloseReason::HtlcsTimedOut,
        },
    }
}
