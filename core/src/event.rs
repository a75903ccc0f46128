//! Monitor events: what a channel monitor tells the channel manager, and their
//! encoding.
//!
//! The types follow the Lightning Dev Kit's persistent monitor events: an HTLC was
//! resolved (claimed with a preimage or failed with a reason), a commitment
//! transaction confirmed, the holder force-closed, a monitor update completed.
//!
//! # Encoding
//!
//! An event is encoded with [postcard] (varints for integers, one varint for an
//! enum's variant index, a `0`/`1` byte for `bool` and for an `Option`'s tag, fixed
//! 32-byte arrays without a length, a varint length before the failure data). The
//! encoding is pinned by golden byte arrays in the tests: changing it is a format
//! change of the journal.
//!
//! | event | layout (fields in order) |
//! |---|---|
//! | `0` [`HtlcResolved`](MonitorEvent::HtlcResolved) | channel 32, payment hash 32, amount varint, [`HtlcSource`], [`HtlcOutcome`], on chain bool, user channel id `Option<u128>` |
//! | `1` [`CommitmentTxConfirmed`](MonitorEvent::CommitmentTxConfirmed) | channel 32 |
//! | `2` [`HolderForceClosed`](MonitorEvent::HolderForceClosed) | channel 32, [`CloseReason`] |
//! | `3` [`UpdateCompleted`](MonitorEvent::UpdateCompleted) | channel 32, update id varint |
//!
//! [`MonitorEvent::decode`] accepts exactly the byte strings that
//! [`MonitorEvent::encode`] produces for a valid event: a truncated, overlong,
//! non-canonical (for example an overlong varint) or invalid encoding is a typed
//! [`DecodeError`], never a panic (invariant I9). So every event has exactly one
//! encoding, at most [`MAX_ENCODED_LEN`] bytes long.
//!
//! # Bounds
//!
//! | what | bound |
//! |---|---|
//! | failure data ([`FailureReason::data`]) | at most [`MAX_FAILURE_DATA`] bytes |
//! | [`HtlcResolution::amount_msat`] | greater than zero |
//! | preimage of a claim | SHA-256 of it equals the payment hash |
//! | an encoded event | at most [`MAX_ENCODED_LEN`] bytes |

use core::fmt;

use postcard::ser_flavors::{Flavor, Size};
use serde::{Deserialize, Serialize};

use crate::EventId;

/// Maximum number of bytes of [`FailureReason::data`].
///
/// Enough for every BOLT 4 failure that does not carry a `channel_update`
/// (for example `incorrect_or_unknown_payment_details` carries 12 bytes,
/// `amount_below_minimum` without the update 8). Longer data must be truncated by the
/// producer; it is only informational for the channel manager.
pub const MAX_FAILURE_DATA: usize = 64;

/// Worst-case length in bytes of an encoded [`MonitorEvent`].
///
/// Computed from the postcard layout of every variant with every integer at its
/// maximum varint length and the failure data at [`MAX_FAILURE_DATA`]; the largest is
/// a failed [`HtlcResolved`](MonitorEvent::HtlcResolved) of a forward. A test encodes
/// that largest event and checks it takes exactly this many bytes.
pub const MAX_ENCODED_LEN: usize = layout::MAX_EVENT;

/// Byte lengths of the postcard layout, used to derive [`MAX_ENCODED_LEN`].
mod layout {
    use super::MAX_FAILURE_DATA;

    /// Length of the varint encoding of `value`.
    const fn varint_len(value: u128) -> usize {
        let mut len = 1;
        let mut rest = value >> 7;
        while rest != 0 {
            len += 1;
            rest >>= 7;
        }
        len
    }

    const fn max(a: usize, b: usize) -> usize {
        if a > b {
            a
        } else {
            b
        }
    }

    /// A variant index below 128 or a bool or an `Option` tag.
    const TAG: usize = 1;
    const BYTES32: usize = 32;
    const U16: usize = varint_len(u16::MAX as u128);
    const U32: usize = varint_len(u32::MAX as u128);
    const U64: usize = varint_len(u64::MAX as u128);
    const U128: usize = varint_len(u128::MAX);

    const SOURCE: usize = TAG + max(BYTES32, BYTES32 + U64);
    const CLAIMED: usize = BYTES32 + TAG + U64;
    const FAILED: usize = U16 + varint_len(MAX_FAILURE_DATA as u128) + MAX_FAILURE_DATA + TAG + U32;
    const OUTCOME: usize = TAG + max(CLAIMED, FAILED);
    const HTLC: usize = BYTES32 + BYTES32 + U64 + SOURCE + OUTCOME + TAG + TAG + U128;
    const CLOSE_REASON: usize = TAG + max(U16, U32 + U32);

    pub(super) const MAX_EVENT: usize = TAG
        + max(
            max(HTLC, BYTES32),
            max(BYTES32 + CLOSE_REASON, BYTES32 + U64),
        );
}

/// Writes 32 bytes as lowercase hex.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8; 32]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// The id of a Lightning channel (BOLT 2 `channel_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelId(pub [u8; 32]);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// The SHA-256 hash of a [`PaymentPreimage`] that identifies a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PaymentHash(pub [u8; 32]);

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// The secret whose SHA-256 hash is a [`PaymentHash`]; revealing it claims an HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PaymentPreimage(pub [u8; 32]);

impl PaymentPreimage {
    /// The payment hash of this preimage: its SHA-256.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(bitcoin_hashes::sha256::Hash::hash(&self.0).to_byte_array())
    }
}

/// What an ack names: the event's id and the channel it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MonitorEventSource {
    /// The channel of the event.
    pub channel: ChannelId,
    /// The id the event got when it was pushed.
    pub id: EventId,
}

/// Where a resolved HTLC came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    /// Checks the bounds in the [module docs](self): a positive amount, and a claim's
    /// preimage hashes (SHA-256) to its payment hash.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if let MonitorEvent::HtlcResolved(h) = self {
            if h.amount_msat == 0 {
                return Err(InvalidEvent::ZeroAmount);
            }
            if let HtlcOutcome::Claimed { preimage, .. } = &h.outcome {
                if preimage.payment_hash() != h.payment_hash {
                    return Err(InvalidEvent::PreimageMismatch);
                }
            }
        }
        Ok(())
    }

    /// Length in bytes of the event's encoding (at most [`MAX_ENCODED_LEN`]).
    pub fn encoded_len(&self) -> usize {
        // The `Size` flavor cannot fail.
        postcard::serialize_with_flavor(self, Size::default()).unwrap_or(MAX_ENCODED_LEN)
    }

    /// Validates the event and encodes it into the front of `buf`, returning the
    /// encoded bytes. A buffer of [`MAX_ENCODED_LEN`] bytes always suffices.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], EncodeError> {
        self.validate()?;
        let needed = self.encoded_len();
        let available = buf.len();
        if needed > available {
            return Err(EncodeError::BufferTooSmall { needed, available });
        }
        match postcard::to_slice(self, buf) {
            Ok(bytes) => Ok(bytes),
            // Unreachable: the length was checked and serializing these types has no
            // other failure.
            Err(_) => Err(EncodeError::BufferTooSmall { needed, available }),
        }
    }

    /// Decodes an event that [`encode`](Self::encode) produced. Every byte string
    /// gives an event or a typed error, never a panic (invariant I9): trailing bytes,
    /// non-canonical encodings and invalid events are rejected.
    pub fn decode(bytes: &[u8]) -> Result<MonitorEvent, DecodeError> {
        let (event, rest) =
            postcard::take_from_bytes::<MonitorEvent>(bytes).map_err(|e| match e {
                postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
                _ => DecodeError::Malformed,
            })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { count: rest.len() });
        }
        event.validate()?;
        // Re-encode and compare, so that each event has exactly one encoding
        // (rejects overlong varints, which postcard accepts).
        postcard::serialize_with_flavor(
            &event,
            SameBytes {
                expected: bytes,
                pos: 0,
            },
        )
        .map_err(|_| DecodeError::NonCanonical)?;
        Ok(event)
    }
}

/// A postcard flavor that compares the serialized bytes with `expected` instead of
/// storing them.
struct SameBytes<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl Flavor for SameBytes<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.expected.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.pos == self.expected.len() {
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}

/// An event that breaks a bound of the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InvalidEvent {
    /// An HTLC of zero millisatoshi.
    ZeroAmount,
    /// A claim whose preimage does not hash (SHA-256) to the payment hash.
    PreimageMismatch,
    /// Failure data longer than [`MAX_FAILURE_DATA`].
    FailureDataTooLong {
        /// The length that was given.
        len: usize,
    },
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidEvent::ZeroAmount => f.write_str("HTLC amount is zero"),
            InvalidEvent::PreimageMismatch => {
                f.write_str("preimage does not hash to the payment hash")
            }
            InvalidEvent::FailureDataTooLong { len } => write!(
                f,
                "failure data of {len} bytes exceeds {MAX_FAILURE_DATA} bytes"
            ),
        }
    }
}

impl core::error::Error for InvalidEvent {}

/// Why [`MonitorEvent::encode`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The event is invalid; nothing was written.
    Invalid(InvalidEvent),
    /// The buffer is too small for the encoding.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl From<InvalidEvent> for EncodeError {
    fn from(e: InvalidEvent) -> Self {
        EncodeError::Invalid(e)
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Invalid(e) => write!(f, "invalid event: {e}"),
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "encoding needs {needed} bytes, buffer has {available}")
            }
        }
    }
}

impl core::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EncodeError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`MonitorEvent::decode`] rejected a byte string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the event does.
    Truncated,
    /// The bytes are not an event's encoding (unknown variant, bad tag, a varint out
    /// of range, failure data over [`MAX_FAILURE_DATA`], ...).
    Malformed,
    /// Bytes follow the event.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The bytes decode to an event whose encoding differs (for example an overlong
    /// varint).
    NonCanonical,
    /// The bytes decode to an invalid event.
    Invalid(InvalidEvent),
}

impl From<InvalidEvent> for DecodeError {
    fn from(e: InvalidEvent) -> Self {
        DecodeError::Invalid(e)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("encoded event is truncated"),
            DecodeError::Malformed => f.write_str("malformed encoded event"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} trailing bytes after the encoded event")
            }
            DecodeError::NonCanonical => f.write_str("non-canonical event encoding"),
            DecodeError::Invalid(e) => write!(f, "decoded event is invalid: {e}"),
        }
    }
}

impl core::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            DecodeError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Golden encodings (I4: replay gives back byte-identical events, also across
    // releases; I8: a changed format must be a deliberate, versioned change). Each
    // array was derived by hand from the postcard layout, not from the encoder.

    #[rustfmt::skip]
    const GOLDEN_HTLC_CLAIMED_OUTBOUND: [u8; 137] = [
        0x00, // HtlcResolved
        // channel
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        // payment_hash = SHA-256 of 32 zero bytes
        0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77,
        0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e, 0x20,
        0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3,
        0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f, 0x29, 0x25,
        0xe8, 0x07, // amount_msat 1000
        0x00, // source: OutboundPayment
        // payment_id
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x00, // outcome: Claimed
        // preimage
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, // skimmed_fee_msat: None
        0x00, // resolved_on_chain: false
        0x01, 0x2a, // user_channel_id: Some(42)
    ];

    #[rustfmt::skip]
    const GOLDEN_HTLC_FAILED_FORWARD: [u8; 125] = [
        0x00, // HtlcResolved
        // channel
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
        // payment_hash
        0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
        0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
        0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
        0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
        0xc0, 0x96, 0xb1, 0x02, // amount_msat 5_000_000
        0x01, // source: Forward
        // prev_channel
        0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
        0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
        0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
        0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
        0x07, // prev_htlc_id 7
        0x01, // outcome: Failed
        0x8f, 0x80, 0x01, // code 0x400f (PERM|15)
        0x0c, // data length 12
        // data: htlc_msat, height
        0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x4b, 0x40,
        0x00, 0x0c, 0x35, 0x00,
        0x01, 0xac, 0x02, // hold_time: Some(300)
        0x01, // resolved_on_chain: true
        0x00, // user_channel_id: None
    ];

    #[rustfmt::skip]
    const GOLDEN_COMMITMENT_TX_CONFIRMED: [u8; 33] = [
        0x01, // CommitmentTxConfirmed
        // channel
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    ];

    #[rustfmt::skip]
    const GOLDEN_HOLDER_FORCE_CLOSED: [u8; 36] = [
        0x02, // HolderForceClosed
        // channel
        0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
        0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
        0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
        0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
        0x03, // reason: ProcessingError
        0xac, 0x02, // code 300
    ];

    #[rustfmt::skip]
    const GOLDEN_UPDATE_COMPLETED: [u8; 35] = [
        0x03, // UpdateCompleted
        // channel
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x81, 0x01, // update_id 129
    ];

    fn chan(b: u8) -> ChannelId {
        ChannelId([b; 32])
    }

    fn claimed_outbound() -> MonitorEvent {
        let preimage = PaymentPreimage([0; 32]);
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel: chan(0x11),
            payment_hash: preimage.payment_hash(),
            amount_msat: 1000,
            source: HtlcSource::OutboundPayment {
                payment_id: [0x22; 32],
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: None,
            },
            resolved_on_chain: false,
            user_channel_id: Some(42),
        })
    }

    fn failed_forward() -> MonitorEvent {
        let mut data = [0u8; 12];
        data[..8].copy_from_slice(&5_000_000u64.to_be_bytes());
        data[8..].copy_from_slice(&800_000u32.to_be_bytes());
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel: chan(0x33),
            payment_hash: PaymentHash([0x44; 32]),
            amount_msat: 5_000_000,
            source: HtlcSource::Forward {
                prev_channel: chan(0x55),
                prev_htlc_id: 7,
            },
            outcome: HtlcOutcome::Failed {
                reason: FailureReason::new(0x400f, &data).unwrap(),
                hold_time: Some(300),
            },
            resolved_on_chain: true,
            user_channel_id: None,
        })
    }

    fn goldens() -> [(MonitorEvent, &'static [u8]); 5] {
        [
            (claimed_outbound(), &GOLDEN_HTLC_CLAIMED_OUTBOUND),
            (failed_forward(), &GOLDEN_HTLC_FAILED_FORWARD),
            (
                MonitorEvent::CommitmentTxConfirmed {
                    channel: chan(0x66),
                },
                &GOLDEN_COMMITMENT_TX_CONFIRMED,
            ),
            (
                MonitorEvent::HolderForceClosed {
                    channel: chan(0x77),
                    reason: CloseReason::ProcessingError { code: 300 },
                },
                &GOLDEN_HOLDER_FORCE_CLOSED,
            ),
            (
                MonitorEvent::UpdateCompleted {
                    channel: chan(0x88),
                    update_id: 129,
                },
                &GOLDEN_UPDATE_COMPLETED,
            ),
        ]
    }

    fn encode_to_vec(event: &MonitorEvent) -> Result<Vec<u8>, EncodeError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        event.encode(&mut buf).map(|b| b.to_vec())
    }

    /// The largest event: a failed forward with every integer at its maximum.
    fn largest_event() -> MonitorEvent {
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel: chan(0xff),
            payment_hash: PaymentHash([0xff; 32]),
            amount_msat: u64::MAX,
            source: HtlcSource::Forward {
                prev_channel: chan(0xff),
                prev_htlc_id: u64::MAX,
            },
            outcome: HtlcOutcome::Failed {
                reason: FailureReason::new(u16::MAX, &[0xff; MAX_FAILURE_DATA]).unwrap(),
                hold_time: Some(u32::MAX),
            },
            resolved_on_chain: true,
            user_channel_id: Some(u128::MAX),
        })
    }

    #[test]
    fn i4_golden_encodings_of_every_kind() {
        for (event, golden) in goldens() {
            assert_eq!(encode_to_vec(&event).unwrap(), golden, "{:?}", event.kind());
            assert_eq!(MonitorEvent::decode(golden), Ok(event.clone()));
            assert_eq!(event.encoded_len(), golden.len());
        }
    }

    #[test]
    fn i9_max_encoded_len_is_the_largest_event() {
        assert_eq!(MAX_ENCODED_LEN, 214);
        let largest = largest_event();
        assert_eq!(encode_to_vec(&largest).unwrap().len(), MAX_ENCODED_LEN);

        // The largest of every other shape fits.
        let preimage = PaymentPreimage([0xff; 32]);
        let claimed = MonitorEvent::HtlcResolved(HtlcResolution {
            channel: chan(0xff),
            payment_hash: preimage.payment_hash(),
            amount_msat: u64::MAX,
            source: HtlcSource::Forward {
                prev_channel: chan(0xff),
                prev_htlc_id: u64::MAX,
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: Some(u64::MAX),
            },
            resolved_on_chain: true,
            user_channel_id: Some(u128::MAX),
        });
        let others = [
            claimed,
            MonitorEvent::CommitmentTxConfirmed { channel: chan(1) },
            MonitorEvent::HolderForceClosed {
                channel: chan(1),
                reason: CloseReason::PeerFeerateTooLow {
                    peer_feerate_sat_per_kw: u32::MAX,
                    required_feerate_sat_per_kw: u32::MAX,
                },
            },
            MonitorEvent::HolderForceClosed {
                channel: chan(1),
                reason: CloseReason::ProcessingError { code: u16::MAX },
            },
            MonitorEvent::UpdateCompleted {
                channel: chan(1),
                update_id: u64::MAX,
            },
        ];
        for event in others {
            assert!(encode_to_vec(&event).unwrap().len() <= MAX_ENCODED_LEN);
        }
    }

    #[test]
    fn i9_wrong_preimage_is_rejected_by_encode_and_decode() {
        let MonitorEvent::HtlcResolved(mut h) = claimed_outbound() else {
            unreachable!()
        };
        h.payment_hash.0[0] ^= 1;
        let bad = MonitorEvent::HtlcResolved(h);
        assert_eq!(bad.validate(), Err(InvalidEvent::PreimageMismatch));
        assert_eq!(
            encode_to_vec(&bad),
            Err(EncodeError::Invalid(InvalidEvent::PreimageMismatch))
        );
        let mut bytes = GOLDEN_HTLC_CLAIMED_OUTBOUND;
        bytes[33] ^= 1; // first byte of the payment hash
        assert_eq!(
            MonitorEvent::decode(&bytes),
            Err(DecodeError::Invalid(InvalidEvent::PreimageMismatch))
        );
    }

    #[test]
    fn i9_zero_amount_is_rejected_by_encode_and_decode() {
        let MonitorEvent::HtlcResolved(mut h) = failed_forward() else {
            unreachable!()
        };
        h.amount_msat = 0;
        let bad = MonitorEvent::HtlcResolved(h);
        assert_eq!(
            encode_to_vec(&bad),
            Err(EncodeError::Invalid(InvalidEvent::ZeroAmount))
        );
        // amount_msat 5_000_000 (4 bytes at 65..69) becomes 0 (1 byte).
        let mut bytes = GOLDEN_HTLC_FAILED_FORWARD[..65].to_vec();
        bytes.push(0);
        bytes.extend_from_slice(&GOLDEN_HTLC_FAILED_FORWARD[69..]);
        assert_eq!(
            MonitorEvent::decode(&bytes),
            Err(DecodeError::Invalid(InvalidEvent::ZeroAmount))
        );
    }

    #[test]
    fn i6_failure_data_over_the_bound_is_a_typed_error() {
        assert_eq!(
            FailureReason::new(1, &[0; MAX_FAILURE_DATA + 1]),
            Err(InvalidEvent::FailureDataTooLong {
                len: MAX_FAILURE_DATA + 1
            })
        );
        assert!(FailureReason::new(1, &[0; MAX_FAILURE_DATA]).is_ok());
        // I9: an encoding with MAX_FAILURE_DATA + 1 bytes of data is malformed.
        let mut bytes = GOLDEN_HTLC_FAILED_FORWARD[..107].to_vec();
        bytes.push(MAX_FAILURE_DATA as u8 + 1);
        bytes.extend_from_slice(&[0; MAX_FAILURE_DATA + 1]);
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
    }

    #[test]
    fn i9_buffer_too_small_is_typed() {
        let event = failed_forward();
        let needed = GOLDEN_HTLC_FAILED_FORWARD.len();
        let mut buf = [0u8; 256];
        assert_eq!(
            event.encode(&mut buf[..needed - 1]),
            Err(EncodeError::BufferTooSmall {
                needed,
                available: needed - 1
            })
        );
        assert_eq!(
            event.encode(&mut buf[..needed]).unwrap(),
            GOLDEN_HTLC_FAILED_FORWARD
        );
    }

    #[test]
    fn i9_truncated_trailing_and_malformed_bytes_are_typed_errors() {
        for (_, golden) in goldens() {
            for len in 0..golden.len() {
                assert_eq!(
                    MonitorEvent::decode(&golden[..len]),
                    Err(DecodeError::Truncated)
                );
            }
            let mut longer = golden.to_vec();
            longer.extend_from_slice(&[0, 0]);
            assert_eq!(
                MonitorEvent::decode(&longer),
                Err(DecodeError::TrailingBytes { count: 2 })
            );
        }
        // Unknown event variant.
        let mut bytes = GOLDEN_COMMITMENT_TX_CONFIRMED;
        bytes[0] = 4;
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
        // A bool that is neither 0 nor 1 (resolved_on_chain).
        let mut bytes = GOLDEN_HTLC_FAILED_FORWARD;
        bytes[123] = 2;
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
        // A varint over u16 for the failure code.
        let mut bytes = GOLDEN_HTLC_FAILED_FORWARD;
        bytes[106] = 0x04; // last byte of the code: 0x8f 0x80 0x04 > u16::MAX
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
    }

    #[test]
    fn i9_non_canonical_encodings_are_rejected() {
        // update_id 129 as a three-byte varint instead of two.
        let mut bytes = GOLDEN_UPDATE_COMPLETED[..33].to_vec();
        bytes.extend_from_slice(&[0x81, 0x81, 0x00]);
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::NonCanonical));
        // Variant index 1 as [0x81, 0x00].
        let mut bytes = vec![0x81, 0x00];
        bytes.extend_from_slice(&GOLDEN_COMMITMENT_TX_CONFIRMED[1..]);
        assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn i5_accessors_name_channel_kind_and_gating() {
        // I5: only HTLC events are gated, so `is_htlc` decides.
        let kinds = [
            EventKind::HtlcResolved,
            EventKind::HtlcResolved,
            EventKind::CommitmentTxConfirmed,
            EventKind::HolderForceClosed,
            EventKind::UpdateCompleted,
        ];
        let channels = [0x11, 0x33, 0x66, 0x77, 0x88];
        for (((event, _), kind), c) in goldens().into_iter().zip(kinds).zip(channels) {
            assert_eq!(event.kind(), kind);
            assert_eq!(event.channel(), chan(c));
            assert_eq!(event.is_htlc(), kind == EventKind::HtlcResolved);
        }
        assert_eq!(EventKind::UpdateCompleted.to_string(), "UpdateCompleted");
        assert_eq!(chan(0xab).to_string(), "ab".repeat(32));
    }

    #[test]
    fn i9_errors_display_and_chain_sources() {
        use core::error::Error as _;
        let e = DecodeError::Invalid(InvalidEvent::ZeroAmount);
        assert_eq!(
            e.to_string(),
            "decoded event is invalid: HTLC amount is zero"
        );
        assert!(e.source().is_some());
        let e = EncodeError::BufferTooSmall {
            needed: 3,
            available: 2,
        };
        assert_eq!(e.to_string(), "encoding needs 3 bytes, buffer has 2");
        assert!(e.source().is_none());
    }

    /// Integers spread over every varint length.
    fn spread_u64() -> impl Strategy<Value = u64> {
        (any::<u64>(), 0..64u32).prop_map(|(x, s)| x >> s)
    }

    fn arb_channel() -> impl Strategy<Value = ChannelId> {
        prop_oneof![
            any::<u8>().prop_map(chan),
            any::<[u8; 32]>().prop_map(ChannelId)
        ]
    }

    fn arb_source() -> impl Strategy<Value = HtlcSource> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(|payment_id| HtlcSource::OutboundPayment { payment_id }),
            (arb_channel(), spread_u64()).prop_map(|(prev_channel, prev_htlc_id)| {
                HtlcSource::Forward {
                    prev_channel,
                    prev_htlc_id,
                }
            }),
        ]
    }

    /// An outcome and a payment hash that fits it.
    fn arb_outcome() -> impl Strategy<Value = (HtlcOutcome, PaymentHash)> {
        prop_oneof![
            (any::<[u8; 32]>(), proptest::option::of(spread_u64())).prop_map(|(p, fee)| {
                let preimage = PaymentPreimage(p);
                let outcome = HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: fee,
                };
                (outcome, preimage.payment_hash())
            }),
            (
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..=MAX_FAILURE_DATA),
                proptest::option::of(any::<u32>()),
                any::<[u8; 32]>(),
            )
                .prop_map(|(code, data, hold_time, hash)| {
                    let reason = FailureReason::new(code, &data).unwrap();
                    (HtlcOutcome::Failed { reason, hold_time }, PaymentHash(hash))
                }),
        ]
    }

    fn arb_event() -> impl Strategy<Value = MonitorEvent> {
        let htlc = (
            arb_channel(),
            spread_u64().prop_map(|a| a.max(1)),
            arb_source(),
            arb_outcome(),
            any::<bool>(),
            proptest::option::of(any::<u128>()),
        )
            .prop_map(
                |(channel, amount_msat, source, (outcome, hash), on_chain, user)| {
                    MonitorEvent::HtlcResolved(HtlcResolution {
                        channel,
                        payment_hash: hash,
                        amount_msat,
                        source,
                        outcome,
                        resolved_on_chain: on_chain,
                        user_channel_id: user,
                    })
                },
            );
        let reason = prop_oneof![
            Just(CloseReason::HolderForceClosed),
            Just(CloseReason::CommitmentTxConfirmed),
            Just(CloseReason::HtlcsTimedOut),
            any::<u16>().prop_map(|code| CloseReason::ProcessingError { code }),
            (any::<u32>(), any::<u32>()).prop_map(|(p, r)| CloseReason::PeerFeerateTooLow {
                peer_feerate_sat_per_kw: p,
                required_feerate_sat_per_kw: r,
            }),
        ];
        prop_oneof![
            htlc,
            arb_channel().prop_map(|channel| MonitorEvent::CommitmentTxConfirmed { channel }),
            (arb_channel(), reason)
                .prop_map(|(channel, reason)| MonitorEvent::HolderForceClosed { channel, reason }),
            (arb_channel(), spread_u64()).prop_map(|(channel, update_id)| {
                MonitorEvent::UpdateCompleted { channel, update_id }
            }),
        ]
    }

    /// I9: whatever decode accepts is a valid event whose encoding is exactly the
    /// input.
    fn check_decode(bytes: &[u8]) {
        if let Ok(event) = MonitorEvent::decode(bytes) {
            assert_eq!(event.validate(), Ok(()));
            assert_eq!(encode_to_vec(&event).unwrap(), bytes);
        }
    }

    proptest! {
        #[test]
        fn i9_decode_never_panics_on_random_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..2 * MAX_ENCODED_LEN)
        ) {
            check_decode(&bytes);
        }

        #[test]
        fn i9_decode_never_panics_on_mutated_encodings(
            event in arb_event(),
            pos in any::<prop::sample::Index>(),
            mask in 1..=255u8,
            cut in any::<prop::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let bytes = encode_to_vec(&event).unwrap();
            let mut flipped = bytes.clone();
            flipped[pos.index(bytes.len())] ^= mask;
            check_decode(&flipped);
            check_decode(&bytes[..cut.index(bytes.len())]);
            let mut longer = bytes.clone();
            longer.extend_from_slice(&extra);
            check_decode(&longer);
        }

        #[test]
        fn i4_encode_decode_round_trip(event in arb_event()) {
            let bytes = encode_to_vec(&event).unwrap();
            prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
            prop_assert_eq!(bytes.len(), event.encoded_len());
            prop_assert_eq!(MonitorEvent::decode(&bytes), Ok(event));
        }
    }
}
