//! The event types and their bounds.

use core::fmt;

use super::InvalidEvent;

/// Maximum number of bytes of [`FailureReason::data`].
///
/// Enough for every BOLT 4 failure that does not carry a `channel_update`
/// (for example `incorrect_or_unknown_payment_details` carries 12 bytes,
/// `amount_below_minimum` without the update 8). Longer data must be truncated by the
/// producer; it is only informational for the channel manager.
pub const MAX_FAILURE_DATA: usize = 64;

/// Defines a public newtype over 32 bytes that displays as lowercase hex and encodes
/// as 32 bytes without a length.
macro_rules! bytes32_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(any(test, feature = "serde"), derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name(pub [u8; 32]);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}

bytes32_newtype!(
    /// The id of a Lightning channel (BOLT 2 `channel_id`).
    ChannelId
);

bytes32_newtype!(
    /// The SHA-256 hash of a [`PaymentPreimage`] that identifies a payment.
    PaymentHash
);

bytes32_newtype!(
    /// The secret whose SHA-256 hash is a [`PaymentHash`]; revealing it claims an HTLC.
    PaymentPreimage
);

impl PaymentPreimage {
    /// The payment hash of this preimage: its SHA-256.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(bitcoin_hashes::sha256::Hash::hash(&self.0).to_byte_array())
    }
}

/// Where a resolved HTLC came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HtlcSource {
    /// Our own outbound payment.
    OutboundPayment {
        /// The payment's id, chosen by the sender.
        payment_id: [u8; 32],
    },
    /// An HTLC we forwarded: the inbound HTLC on the previous hop.
    Forward {
        /// The channel the inbound HTLC arrived on.
        prev_channel: ChannelId,
        /// The inbound HTLC's id on that channel.
        prev_htlc_id: u64,
    },
}

/// Why an HTLC failed: a BOLT 4 failure code and its data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FailureReason {
    /// The BOLT 4 failure code (flags `BADONION`, `PERM`, `NODE`, `UPDATE` included).
    pub code: u16,
    /// The failure data, at most [`MAX_FAILURE_DATA`] bytes.
    pub data: heapless::Vec<u8, MAX_FAILURE_DATA>,
}

impl FailureReason {
    /// A failure reason with `code` and a copy of `data`; `Err` if `data` is longer
    /// than [`MAX_FAILURE_DATA`].
    pub fn new(code: u16, data: &[u8]) -> Result<Self, InvalidEvent> {
        let data = heapless::Vec::from_slice(data)
            .map_err(|_| InvalidEvent::FailureDataTooLong { len: data.len() })?;
        Ok(FailureReason { code, data })
    }
}

/// How an HTLC was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HtlcOutcome {
    /// Claimed with the preimage.
    Claimed {
        /// The preimage; its SHA-256 must equal the payment hash.
        preimage: PaymentPreimage,
        /// The fee skimmed from a forwarded HTLC (LSP fee), if any. Not checked.
        skimmed_fee_msat: Option<u64>,
    },
    /// Failed.
    Failed {
        /// The failure code and data.
        reason: FailureReason,
        /// How long the HTLC was held, in units of 100 ms (attributable failures),
        /// if known.
        hold_time: Option<u32>,
    },
}

/// An HTLC that was claimed or failed, on or off chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HtlcResolution {
    /// The channel the HTLC was offered on.
    pub channel: ChannelId,
    /// The HTLC's payment hash.
    pub payment_hash: PaymentHash,
    /// The HTLC's amount in millisatoshi; greater than zero.
    pub amount_msat: u64,
    /// Where the HTLC came from.
    pub source: HtlcSource,
    /// Claimed or failed.
    pub outcome: HtlcOutcome,
    /// Whether the HTLC was resolved by an on-chain transaction.
    pub resolved_on_chain: bool,
    /// The user's id of the channel, if set.
    pub user_channel_id: Option<u128>,
}

/// Why the holder force-closed a channel. Bounded: no free-form text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CloseReason {
    /// The user asked for the force-close.
    HolderForceClosed,
    /// A commitment transaction confirmed on chain.
    CommitmentTxConfirmed,
    /// An HTLC was about to time out and had to be enforced on chain.
    HtlcsTimedOut,
    /// The channel manager hit a protocol or processing error, identified by a code.
    ProcessingError {
        /// An application-defined error code.
        code: u16,
    },
    /// The peer's feerate was too low for too long.
    PeerFeerateTooLow {
        /// The peer's feerate in sat per 1000 weight units.
        peer_feerate_sat_per_kw: u32,
        /// The feerate we required.
        required_feerate_sat_per_kw: u32,
    },
}

/// A monitor event: something the channel manager must act on, kept until it is
/// acked.
// No heap to box the large variant into; events live in fixed buffers anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MonitorEvent {
    /// An HTLC was claimed or failed. Gated by in-flight updates (invariant I5).
    HtlcResolved(HtlcResolution),
    /// A commitment transaction of the channel confirmed.
    CommitmentTxConfirmed {
        /// The channel.
        channel: ChannelId,
    },
    /// The holder force-closed the channel.
    HolderForceClosed {
        /// The channel.
        channel: ChannelId,
        /// Why.
        reason: CloseReason,
    },
    /// A monitor update was durably applied.
    UpdateCompleted {
        /// The channel.
        channel: ChannelId,
        /// The update's id.
        update_id: u64,
    },
}

/// The kind of a [`MonitorEvent`], without its data: for summaries and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EventKind {
    /// [`MonitorEvent::HtlcResolved`].
    HtlcResolved,
    /// [`MonitorEvent::CommitmentTxConfirmed`].
    CommitmentTxConfirmed,
    /// [`MonitorEvent::HolderForceClosed`].
    HolderForceClosed,
    /// [`MonitorEvent::UpdateCompleted`].
    UpdateCompleted,
}

impl EventKind {
    /// The kind's name, as in the type.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::HtlcResolved => "HtlcResolved",
            EventKind::CommitmentTxConfirmed => "CommitmentTxConfirmed",
            EventKind::HolderForceClosed => "HolderForceClosed",
            EventKind::UpdateCompleted => "UpdateCompleted",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MonitorEvent {
    /// The channel the event belongs to.
    pub fn channel(&self) -> ChannelId {
        match self {
            MonitorEvent::HtlcResolved(h) => h.channel,
            MonitorEvent::CommitmentTxConfirmed { channel }
            | MonitorEvent::HolderForceClosed { channel, .. }
            | MonitorEvent::UpdateCompleted { channel, .. } => *channel,
        }
    }

    /// Whether this is an HTLC event, which in-flight updates of its channel hold
    /// back (invariant I5).
    pub fn is_htlc(&self) -> bool {
        matches!(self, MonitorEvent::HtlcResolved(_))
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            MonitorEvent::HtlcResolved(_) => EventKind::HtlcResolved,
            MonitorEvent::CommitmentTxConfirmed { .. } => EventKind::CommitmentTxConfirmed,
            MonitorEvent::HolderForceClosed { .. } => EventKind::HolderForceClosed,
            MonitorEvent::UpdateCompleted { .. } => EventKind::UpdateCompleted,
        }
    }

    /// Checks the bounds in the [module docs](crate::event): a positive amount, and
    /// (with the default feature `validate`) a claim's preimage hashes (SHA-256) to
    /// its payment hash. Without `validate` the preimage is not hashed: the producer
    /// vouches for it, and the firmware links no SHA-256 for it.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if let MonitorEvent::HtlcResolved(h) = self {
            if h.amount_msat == 0 {
                return Err(InvalidEvent::ZeroAmount);
            }
            #[cfg(feature = "validate")]
            if let HtlcOutcome::Claimed { preimage, .. } = &h.outcome {
                if preimage.payment_hash() != h.payment_hash {
                    return Err(InvalidEvent::PreimageMismatch);
                }
            }
        }
        Ok(())
    }
}
