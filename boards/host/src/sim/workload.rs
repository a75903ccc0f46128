//! The channel monitor of the emulated device: channels, HTLCs resolved on and off
//! chain, monitor updates, force-closes, and the [`MonitorEvent`]s they produce.
//!
//! Sizes are realistic: claims carry a real preimage whose SHA-256 is the payment
//! hash, failures carry a BOLT 4 code and its data (without the `channel_update`),
//! forwards name the inbound HTLC, outbound payments their payment id.
//!
//! | event | share (seed 1) | encoded size |
//! |---|---|---|
//! | `HtlcResolved`, claim (forward or outbound) | ~ 52 % | 136..162 B |
//! | `HtlcResolved`, failure with its BOLT 4 data | ~ 28 % | 106..166 B |
//! | `UpdateCompleted` | ~ 20 % | 34..36 B |
//! | `HolderForceClosed`, `CommitmentTxConfirmed` | < 1 % | 33..45 B |
//!
//! A force-close burst ([`Monitor::force_close_burst`]) resolves every HTLC of one
//! channel on chain: the same claims and failures, and one in eight of the
//! largest encoded size (`MAX_ENCODED_LEN`, 214 B: a failed forward whose every
//! field takes the most bytes), the size the journal's capacity check assumes.

use monitor_events::{
    ChannelId, CloseReason, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent,
    PaymentHash, PaymentPreimage, MAX_FAILURE_DATA,
};

use crate::bolt4::FAILURE_CODES;
use crate::sim::rng::Rng;

/// One channel of the monitor.
#[derive(Clone, Debug)]
struct Channel {
    id: ChannelId,
    user_channel_id: Option<u128>,
    /// Ids of HTLCs that arrived on this channel (the inbound side of forwards).
    next_inbound_htlc: u64,
    next_update: u64,
    /// Force-closed or its commitment confirmed: HTLCs resolve on chain until the
    /// channel is replaced by a new one.
    closing: bool,
}

impl Channel {
    fn new(rng: &mut Rng) -> Self {
        Channel {
            id: ChannelId(rng.bytes32()),
            user_channel_id: rng
                .chance(1, 2)
                .then(|| u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
            next_inbound_htlc: rng.below(50),
            next_update: 1 + rng.below(1000),
            closing: false,
        }
    }
}

/// An event the monitor produced, with what the channel manager knows about it
/// besides the event itself.
#[derive(Clone, Debug)]
pub struct Produced {
    /// The event.
    pub event: MonitorEvent,
    /// Further inbound HTLCs of a forward (MPP or trampoline) beyond the one named
    /// in the event: each must be removed upstream before the ack.
    pub extra_inbound: Vec<(ChannelId, u64)>,
}

/// The channel monitor: a handful of channels and their traffic.
#[derive(Clone, Debug)]
pub struct Monitor {
    channels: Vec<Channel>,
}

impl Monitor {
    /// A monitor with `channels` channels (at least 2).
    pub fn new(rng: &mut Rng, channels: usize) -> Self {
        Monitor {
            channels: (0..channels.max(2)).map(|_| Channel::new(rng)).collect(),
        }
    }

    fn random_index(&self, rng: &mut Rng) -> usize {
        rng.below(self.channels.len() as u64) as usize
    }

    /// A new monitor update on a random open channel: `(channel, update id)`.
    pub fn next_update(&mut self, rng: &mut Rng) -> (ChannelId, u64) {
        let i = self.random_index(rng);
        let c = &mut self.channels[i];
        c.next_update += 1;
        (c.id, c.next_update)
    }

    /// A new monitor update on `channel` (open or closing): its update id, or
    /// `None` if the monitor has no such channel.
    pub fn next_update_on(&mut self, channel: ChannelId) -> Option<u64> {
        let c = self.channels.iter_mut().find(|c| c.id == channel)?;
        c.next_update += 1;
        Some(c.next_update)
    }

    /// An HTLC of a random channel was claimed or failed.
    pub fn htlc_resolution(&mut self, rng: &mut Rng) -> Produced {
        let i = self.random_index(rng);
        self.htlc_resolution_on(rng, i)
    }

    /// A random open channel force-closes and the chain resolves `count` of its
    /// HTLCs: claims and failures as [`htlc_resolution`](Self::htlc_resolution)
    /// makes them, all on chain, one in eight a failed forward of the largest
    /// encoded size. Returns the channel and the resolutions in chain order.
    pub fn force_close_burst(&mut self, rng: &mut Rng, count: u64) -> (ChannelId, Vec<Produced>) {
        let i = self.random_index(rng);
        self.channels[i].closing = true;
        let burst = (0..count)
            .map(|_| {
                if rng.chance(1, 8) {
                    self.largest_resolution(rng, i)
                } else {
                    self.htlc_resolution_on(rng, i)
                }
            })
            .collect();
        (self.channels[i].id, burst)
    }

    /// A failed forward on channel `i` whose every field takes the most bytes: the
    /// largest event there is (`MAX_ENCODED_LEN`). The integers have their top
    /// bits set, which only an amount above 2^63 msat or an HTLC id above 2^63
    /// reaches: a worst case, as the capacity check assumes, not a likely one.
    fn largest_resolution(&mut self, rng: &mut Rng, i: usize) -> Produced {
        let top = |x: u64| x | 1 << 63;
        let (prev_channel, _) = self.inbound_htlc(rng, i);
        let mut data = [0u8; MAX_FAILURE_DATA];
        for chunk in data.chunks_mut(32) {
            chunk.copy_from_slice(&rng.bytes32()[..chunk.len()]);
        }
        let code = rng.below(1 << 16) as u16 | 0x8000;
        let reason = FailureReason::new(code, &data).expect("data within MAX_FAILURE_DATA");
        let user_channel_id = u128::from(top(rng.next_u64())) << 64 | u128::from(rng.next_u64());
        Produced {
            event: MonitorEvent::HtlcResolved(HtlcResolution {
                channel: self.channels[i].id,
                payment_hash: PaymentHash(rng.bytes32()),
                amount_msat: top(rng.next_u64()),
                source: HtlcSource::Forward {
                    prev_channel,
                    prev_htlc_id: top(rng.next_u64()),
                },
                outcome: HtlcOutcome::Failed {
                    reason,
                    hold_time: Some(rng.next_u64() as u32 | 1 << 31),
                },
                resolved_on_chain: true,
                user_channel_id: Some(user_channel_id),
            }),
            extra_inbound: Vec::new(),
        }
    }

    /// An HTLC of channel `i` was claimed or failed.
    fn htlc_resolution_on(&mut self, rng: &mut Rng, i: usize) -> Produced {
        let channel = self.channels[i].id;
        let user_channel_id = self.channels[i].user_channel_id;
        let on_chain = self.channels[i].closing || rng.chance(1, 40);
        let amount_msat = amount(rng);
        let mut extra_inbound = Vec::new();
        let source = if rng.chance(7, 10) {
            let (prev_channel, prev_htlc_id) = self.inbound_htlc(rng, i);
            if rng.chance(1, 10) {
                for _ in 0..rng.range(1, 2) {
                    extra_inbound.push(self.inbound_htlc(rng, i));
                }
            }
            HtlcSource::Forward {
                prev_channel,
                prev_htlc_id,
            }
        } else {
            HtlcSource::OutboundPayment {
                payment_id: rng.bytes32(),
            }
        };
        let forward = matches!(source, HtlcSource::Forward { .. });
        let (payment_hash, outcome) = if rng.chance(65, 100) {
            let preimage = PaymentPreimage(rng.bytes32());
            let skimmed_fee_msat = (forward && rng.chance(1, 10)).then(|| rng.range(1, 5_000));
            (
                preimage.payment_hash(),
                HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat,
                },
            )
        } else {
            let hold_time = rng.chance(1, 2).then(|| rng.range(1, 600) as u32);
            (
                PaymentHash(rng.bytes32()),
                HtlcOutcome::Failed {
                    reason: failure(rng, amount_msat),
                    hold_time,
                },
            )
        };
        Produced {
            event: MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash,
                amount_msat,
                source,
                outcome,
                resolved_on_chain: on_chain,
                user_channel_id,
            }),
            extra_inbound,
        }
    }

    /// A fresh inbound HTLC on a channel other than `not`.
    fn inbound_htlc(&mut self, rng: &mut Rng, not: usize) -> (ChannelId, u64) {
        let mut j = self.random_index(rng);
        if j == not {
            j = (j + 1) % self.channels.len();
        }
        let c = &mut self.channels[j];
        c.next_inbound_htlc += 1;
        (c.id, c.next_inbound_htlc)
    }

    /// The holder force-closes a random open channel.
    pub fn force_close(&mut self, rng: &mut Rng) -> Option<MonitorEvent> {
        let i = self.random_index(rng);
        let c = &mut self.channels[i];
        if c.closing {
            return None;
        }
        c.closing = true;
        let reason = match rng.below(5) {
            0 => CloseReason::HolderForceClosed,
            1 => CloseReason::HtlcsTimedOut,
            2 => CloseReason::ProcessingError {
                code: rng.range(1, 999) as u16,
            },
            3 => CloseReason::PeerFeerateTooLow {
                peer_feerate_sat_per_kw: rng.range(253, 1000) as u32,
                required_feerate_sat_per_kw: rng.range(1001, 5000) as u32,
            },
            _ => CloseReason::CommitmentTxConfirmed,
        };
        Some(MonitorEvent::HolderForceClosed {
            channel: c.id,
            reason,
        })
    }

    /// A commitment transaction of `channel` confirmed (`None`: a random channel,
    /// the peer broadcast it). The channel is closing; [`replace`](Self::replace)
    /// opens a new one in its place once its HTLCs are resolved.
    pub fn commitment_confirmed(
        &mut self,
        rng: &mut Rng,
        channel: Option<ChannelId>,
    ) -> MonitorEvent {
        let i = match channel.and_then(|c| self.channels.iter().position(|x| x.id == c)) {
            Some(i) => i,
            None => self.random_index(rng),
        };
        self.channels[i].closing = true;
        MonitorEvent::CommitmentTxConfirmed {
            channel: self.channels[i].id,
        }
    }

    /// Replaces closed channel `channel` by a newly opened one.
    pub fn replace(&mut self, rng: &mut Rng, channel: ChannelId) {
        if let Some(c) = self.channels.iter_mut().find(|c| c.id == channel) {
            *c = Channel::new(rng);
        }
    }
}

/// An amount between 1 sat and 0.1 BTC, spread over the orders of magnitude.
fn amount(rng: &mut Rng) -> u64 {
    let magnitude = 10u64.pow(rng.range(3, 9) as u32);
    magnitude * rng.range(1, 9) + rng.below(magnitude)
}

/// A BOLT 4 failure with the data its code carries (without `channel_update`).
fn failure(rng: &mut Rng, amount_msat: u64) -> FailureReason {
    let (code, _) = *rng.pick(FAILURE_CODES);
    let height = 800_000 + rng.below(100_000) as u32;
    let mut data = Vec::new();
    match code {
        0x400f => {
            data.extend_from_slice(&amount_msat.to_be_bytes());
            data.extend_from_slice(&height.to_be_bytes());
        }
        0x1007 | 0x100e => data.extend_from_slice(&[0, 0]),
        0x100b | 0x100c => {
            data.extend_from_slice(&amount_msat.to_be_bytes());
            data.extend_from_slice(&[0, 0]);
        }
        0x100d => {
            data.extend_from_slice(&(height + 40).to_be_bytes());
            data.extend_from_slice(&[0, 0]);
        }
        0xc005 => data.extend_from_slice(&rng.bytes32()),
        0x0012 => data.extend_from_slice(&(height + 18).to_be_bytes()),
        _ => {}
    }
    data.truncate(MAX_FAILURE_DATA);
    FailureReason::new(code, &data).expect("failure data within MAX_FAILURE_DATA")
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_events::MAX_ENCODED_LEN;

    /// I9: everything the monitor produces is a valid event of realistic size.
    #[test]
    fn produced_events_are_valid_and_realistically_sized() {
        let mut rng = Rng::new(3);
        let mut m = Monitor::new(&mut rng, 6);
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let mut sizes = Vec::new();
        for _ in 0..2000 {
            let p = m.htlc_resolution(&mut rng);
            let n = p.event.encode(&mut buf).expect("valid").len();
            assert!((90..=MAX_ENCODED_LEN).contains(&n), "{n}");
            sizes.push(n);
        }
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((120.0..170.0).contains(&mean), "{mean}");
        let close = m.force_close(&mut rng).or_else(|| m.force_close(&mut rng));
        assert!(close.is_some());
        let (c, u) = m.next_update(&mut rng);
        let done = MonitorEvent::UpdateCompleted {
            channel: c,
            update_id: u,
        };
        assert!(done.encode(&mut buf).is_ok());
    }

    /// I9 for a force-close burst: every resolution is a valid event of the one
    /// closed channel, resolved on chain; claims and failures mixed; about one in
    /// eight of exactly `MAX_ENCODED_LEN` bytes.
    #[test]
    fn force_close_burst_is_one_channel_on_chain_with_the_largest_events() {
        let mut rng = Rng::new(11);
        let mut m = Monitor::new(&mut rng, 8);
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let (channel, burst) = m.force_close_burst(&mut rng, 483);
        let largest = burst
            .iter()
            .filter(|p| p.event.encoded_len() == MAX_ENCODED_LEN)
            .count();
        assert!(
            (30..100).contains(&largest),
            "{largest} of the largest size"
        );
        let claims = burst
            .iter()
            .filter(|p| {
                matches!(&p.event, MonitorEvent::HtlcResolved(h)
                    if matches!(h.outcome, HtlcOutcome::Claimed { .. }))
            })
            .count();
        assert!((200..400).contains(&claims), "{claims} claims");
        for p in &burst {
            let n = p.event.encode(&mut buf).expect("valid").len();
            assert_eq!(n, p.event.encoded_len());
            assert_eq!(p.event.channel(), channel);
            assert!(
                matches!(&p.event, MonitorEvent::HtlcResolved(h) if h.resolved_on_chain),
                "a force-close resolves on chain"
            );
        }
    }
}
