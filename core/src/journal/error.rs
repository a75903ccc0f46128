//! The journal's errors: what `open`, `push`, `ack` and `read` refuse, and why.

use crate::id::EventId;
use crate::medium::Geometry;

/// Why `open` refused a medium. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpenError {
    /// The medium's geometry is not the configured one.
    GeometryMismatch {
        /// What the configuration says.
        expected: Geometry,
        /// What the medium reports.
        found: Geometry,
    },
    /// The medium holds data but no monitor-events header.
    NotAStore,
    /// The medium was written by a newer format version.
    UnsupportedFormat {
        /// The version found.
        version: u8,
    },
    /// The headers were written for a region of another geometry.
    ForeignGeometry {
        /// The sector where it was seen.
        sector: u32,
    },
    /// Damage other than a torn tail.
    Corrupted {
        /// Offset in the region where it was found.
        offset: u32,
        /// What is wrong there.
        reason: Corruption,
    },
    /// The medium holds more pending events than this journal's capacity `N`,
    /// or its records show more pending at once than `N`: a journal written
    /// with a larger `N` whose sectors still hold events that later records
    /// acked (recovery replays the records in order, in `N` slots). It lasts
    /// until the ring has turned once, or until a journal of the old `N`
    /// [`compact`](crate::journal::Journal::compact)s the region (the crate
    /// README, "Changing the configuration"). Nothing is written.
    TooManyPending {
        /// The capacity.
        capacity: usize,
    },
    /// The journal is authenticated and the configuration is not, or the reverse.
    AuthMismatch {
        /// The sector where it was seen.
        sector: u32,
    },
    /// The medium holds an older state than the monotonic counter has seen: the
    /// region was rewritten with an earlier image of itself (or erased).
    RolledBack {
        /// The state the medium holds.
        image: u64,
        /// The state the counter vouches for.
        counter: u64,
    },
}

/// What kind of damage `open` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Corruption {
    /// A sector header that should be valid is not.
    SectorHeader,
    /// A sector is not where its sequence number says, or one is missing.
    SectorOrder,
    /// A record fails its check and is not a torn tail.
    Record,
    /// A single bit reads 0 that was written as 1 (bit rot; never a torn write).
    BitFlip,
    /// A record checks but says something impossible (an id out of range).
    Semantics,
    /// A record or sector header checks but its authentication tag does not: forged,
    /// altered, moved or from another device or region.
    Forged,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::GeometryMismatch { expected, found } => write!(
                f,
                "medium geometry {}x{} B (write {} B) differs from the configured {}x{} B (write {} B)",
                found.sector_count,
                found.sector_size,
                found.write_size,
                expected.sector_count,
                expected.sector_size,
                expected.write_size
            ),
            OpenError::NotAStore => f.write_str("the medium holds data that is not a monitor-events journal"),
            OpenError::UnsupportedFormat { version } => {
                write!(f, "format version {version} is newer than this build reads (1)")
            }
            OpenError::ForeignGeometry { sector } => {
                write!(f, "sector {sector} was written for a region of another geometry")
            }
            OpenError::Corrupted { offset, reason } => {
                write!(f, "corrupted at offset {offset:#x}: {reason}")
            }
            OpenError::TooManyPending { capacity } => {
                write!(
                    f,
                    "more events pending at once than the capacity of {capacity}"
                )
            }
            OpenError::AuthMismatch { sector } => write!(
                f,
                "sector {sector}: authenticated and plain journals do not mix (check the configuration)"
            ),
            OpenError::RolledBack { image, counter } => write!(
                f,
                "the medium holds state {image:#x}, older than {counter:#x} vouched for by the monotonic counter: rolled back"
            ),
        }
    }
}

impl core::error::Error for OpenError {}

impl core::fmt::Display for Corruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Corruption::SectorHeader => "a sector header that should be valid is not",
            Corruption::SectorOrder => "a sector is missing or out of place",
            Corruption::Record => "a record fails its checksum and is not a torn tail",
            Corruption::BitFlip => "a bit reads 0 that was written as 1 (bit rot)",
            Corruption::Semantics => "a record checks but names an impossible id or sector",
            Corruption::Forged => "a record or header fails its authentication tag",
        })
    }
}

/// Why the journal refused to append a body. Nothing changed.
///
/// The typed store's [`PushError`](crate::PushError) adds what only typed events
/// can get wrong (an invalid event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AppendError {
    /// `N` events are pending (invariant I6: nothing is dropped to make room).
    Full,
    /// The body exceeds the configured bound.
    TooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}

impl core::fmt::Display for AppendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AppendError::Full => f.write_str("the store is full: ack events first"),
            AppendError::TooLarge { len, max } => {
                write!(f, "body of {len} B exceeds the bound of {max} B")
            }
        }
    }
}

impl core::error::Error for AppendError {}

/// Why the journal refused an ack: the id was never pushed (it is not below
/// [`Journal::next_id`](super::Journal::next_id)). Nothing changed. The journal knows ids only; the typed
/// store also checks that an ack names the event's channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownId {
    /// The id (the first unknown one of a batch).
    pub id: EventId,
}

impl core::fmt::Display for UnknownId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "event {} was never pushed", self.id.0)
    }
}

impl core::error::Error for UnknownId {}

/// Why a read was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadError {
    /// The id is not pending.
    NotPending,
    /// The buffer is shorter than the body.
    BufferTooSmall {
        /// The body's length.
        needed: usize,
    },
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::NotPending => f.write_str("the id is not pending"),
            ReadError::BufferTooSmall { needed } => write!(f, "buffer too small: need {needed} B"),
        }
    }
}

impl core::error::Error for ReadError {}
