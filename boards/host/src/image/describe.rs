//! One-line, human descriptions of monitor events, for `inspect` and logs.

use monitor_events::{CloseReason, HtlcOutcome, HtlcSource, MonitorEvent};

use crate::bolt4::failure_name;

/// The first four bytes in hex, then `..`: enough to tell channels apart.
pub fn short_hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 4 {
        s.push_str("..");
    }
    s
}

/// All bytes in hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn close_reason(reason: &CloseReason) -> String {
    match reason {
        CloseReason::HolderForceClosed => "by the user".into(),
        CloseReason::CommitmentTxConfirmed => "commitment tx confirmed".into(),
        CloseReason::HtlcsTimedOut => "HTLCs timing out".into(),
        CloseReason::ProcessingError { code } => format!("processing error {code}"),
        CloseReason::PeerFeerateTooLow {
            peer_feerate_sat_per_kw,
            required_feerate_sat_per_kw,
        } => format!(
            "peer feerate {peer_feerate_sat_per_kw} sat/kw below {required_feerate_sat_per_kw}"
        ),
    }
}

/// A one-line summary, for example `claim 12000 msat fwd from chan 1a2b3c4d..:7`.
pub fn summary(event: &MonitorEvent) -> String {
    match event {
        MonitorEvent::HtlcResolved(h) => {
            let verb = match h.outcome {
                HtlcOutcome::Claimed { .. } => "claim",
                HtlcOutcome::Failed { .. } => "fail",
            };
            let mut s = format!("{verb} {} msat ", h.amount_msat);
            match &h.source {
                HtlcSource::Forward {
                    prev_channel,
                    prev_htlc_id,
                } => s.push_str(&format!(
                    "fwd from chan {}:{prev_htlc_id}",
                    short_hex(&prev_channel.0)
                )),
                HtlcSource::OutboundPayment { payment_id } => {
                    s.push_str(&format!("outbound payment {}", short_hex(payment_id)))
                }
            }
            match &h.outcome {
                HtlcOutcome::Claimed {
                    skimmed_fee_msat, ..
                } => {
                    if let Some(fee) = skimmed_fee_msat {
                        s.push_str(&format!(", skimmed {fee} msat"));
                    }
                }
                HtlcOutcome::Failed { reason, hold_time } => {
                    s.push_str(&format!(", code {:#06x}", reason.code));
                    if let Some(name) = failure_name(reason.code) {
                        s.push_str(&format!(" {name}"));
                    }
                    if !reason.data.is_empty() {
                        s.push_str(&format!(" ({} B data)", reason.data.len()));
                    }
                    if let Some(t) = hold_time {
                        s.push_str(&format!(", held {} ms", u64::from(*t) * 100));
                    }
                }
            }
            if h.resolved_on_chain {
                s.push_str(", on chain");
            }
            s
        }
        MonitorEvent::CommitmentTxConfirmed { .. } => "commitment tx confirmed".into(),
        MonitorEvent::HolderForceClosed { reason, .. } => {
            format!("force-closed: {}", close_reason(reason))
        }
        MonitorEvent::UpdateCompleted { update_id, .. } => {
            format!("monitor update {update_id} completed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_events::{ChannelId, HtlcResolution, PaymentPreimage};

    #[test]
    fn claim_of_a_forward_reads_naturally() {
        let preimage = PaymentPreimage([1; 32]);
        let event = MonitorEvent::HtlcResolved(HtlcResolution {
            channel: ChannelId([2; 32]),
            payment_hash: preimage.payment_hash(),
            amount_msat: 12_000,
            source: HtlcSource::Forward {
                prev_channel: ChannelId([0x1a; 32]),
                prev_htlc_id: 7,
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: None,
            },
            resolved_on_chain: false,
            user_channel_id: None,
        });
        assert_eq!(
            summary(&event),
            "claim 12000 msat fwd from chan 1a1a1a1a..:7"
        );
        assert_eq!(short_hex(&[0xab, 0xcd]), "abcd");
        assert_eq!(
            failure_name(0x400f),
            Some("incorrect_or_unknown_payment_details")
        );
    }
}
