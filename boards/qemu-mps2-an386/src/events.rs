//! A simulated channel monitor: the event with id `id` is a pure function of the
//! id, so `verify` can rebuild the exact bytes `run` pushed without keeping them.
//! Also BENCH.md's PCG32 and FNV-1a, for the W1 self-test.

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentHash, PaymentPreimage, MAX_ENCODED_LEN, MAX_FAILURE_DATA,
};

/// PCG32 (XSH-RR 64/32) seeded like the reference `srandom` (BENCH.md).
pub struct Pcg32 {
    state: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6364136223846793005;
    const INCREMENT: u64 = 1442695040888963407;

    /// State = 0; step; state += seed; step.
    pub fn new(seed: u64) -> Self {
        let mut rng = Pcg32 { state: 0 };
        rng.step();
        rng.state = rng.state.wrapping_add(seed);
        rng.step();
        rng
    }

    fn step(&mut self) -> u64 {
        let old = self.state;
        self.state = old
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(Self::INCREMENT);
        old
    }

    /// One output.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.step();
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// Two outputs.
    pub fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// `next_u32() % n`.
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for chunk in b.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.next_u32().to_le_bytes());
        }
        b
    }
}

/// FNV-1a, 64 bit.
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// The offset basis.
    pub const fn new() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub const fn value(&self) -> u64 {
        self.0
    }
}

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
