//! What can go wrong with an event: a broken bound, an encoding that does not fit,
//! bytes that are not an event's encoding.

use core::fmt;

use super::MAX_FAILURE_DATA;

/// An event that breaks a bound of the [module docs](crate::event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InvalidEvent {
    /// An HTLC of zero millisatoshi.
    ZeroAmount,
    /// A claim whose preimage does not hash (SHA-256) to the payment hash (checked
    /// with the feature `validate` only).
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

/// Why [`MonitorEvent::encode`](super::MonitorEvent::encode) failed.
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

/// Why [`MonitorEvent::decode`](super::MonitorEvent::decode) rejected a byte string.
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
