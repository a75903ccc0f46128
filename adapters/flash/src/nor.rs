//! [`NorFlashMedium`]: the journal's [`Medium`] port over an embedded-storage
//! [`NorFlash`] partition.
//!
//! The adapter only maps: a medium offset becomes `base_offset + offset` on the
//! flash, a sector number becomes the byte range of that sector, and every
//! argument is checked against the partition before the driver sees it.
//!
//! | medium call | checks | flash call |
//! |---|---|---|
//! | `read(o, buf)` | `o + len <= size` | `read(base + o, buf)`, split into `READ_SIZE`-aligned pieces when `READ_SIZE > 1` |
//! | `program(o, data)` | `o + len <= size`, `o` and `len` multiples of `WRITE_SIZE` | `write(base + o, data)` |
//! | `erase(s)` | `s < sector_count` | `erase(base + s * ERASE_SIZE, base + (s + 1) * ERASE_SIZE)` |
//! | `sync()` | — | nothing: a NOR write or erase is durable when it returns |

use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind};
use maybe_async::must_be_sync as maybe;
use monitor_events::Medium;

// The medium's source, compiled here blocking and in `nor_async` async.
#[allow(clippy::duplicate_mod)]
#[path = "nor_medium.rs"]
mod medium;
/// The blocking medium: an embedded-storage
/// [`NorFlash`](embedded_storage::nor_flash::NorFlash) as a
/// [`Medium`](monitor_events::Medium).
pub use medium::NorFlashMedium;

/// Largest `READ_SIZE` and `WRITE_SIZE` the adapter accepts (the journal's limit on
/// the program unit).
pub const MAX_UNIT: usize = 32;

/// Why a partition cannot be used, returned by [`NorFlashMedium::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PartitionError {
    /// `base_offset` is not a multiple of the flash's `ERASE_SIZE`.
    NotAligned,
    /// The partition does not fit in the flash's `capacity()` (or in `u32`).
    OutOfBounds,
    /// The partition has no sector.
    Empty,
    /// The flash's sizes do not fit the medium's rules: `ERASE_SIZE`,
    /// `WRITE_SIZE` and `READ_SIZE` must be powers of two, `WRITE_SIZE` and
    /// `READ_SIZE` at most [`MAX_UNIT`] and no larger than `ERASE_SIZE`.
    UnsupportedGeometry,
}

impl core::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NotAligned => "partition base is not aligned to the erase size",
            Self::OutOfBounds => "partition does not fit in the flash",
            Self::Empty => "partition has no sector",
            Self::UnsupportedGeometry => "flash read/write/erase sizes are not supported",
        })
    }
}

impl core::error::Error for PartitionError {}

/// The error of one medium operation on a [`NorFlashMedium`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NorFlashMediumError {
    /// Rejected by the adapter: the range leaves the partition (or the sector
    /// number is not below `sector_count`).
    OutOfBounds,
    /// Rejected by the adapter: a program whose offset or length is not a
    /// multiple of the write size.
    NotAligned,
    /// The flash driver failed; its error, reduced to the generic kind.
    Flash(NorFlashErrorKind),
}

impl NorFlashMediumError {
    /// A name for the error: what a panic message of a build without
    /// `core::fmt` shows ([`Medium::error_name`]). A driver's error by its kind.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::OutOfBounds => "OutOfBounds",
            Self::NotAligned => "NotAligned",
            Self::Flash(NorFlashErrorKind::NotAligned) => "Flash(NotAligned)",
            Self::Flash(NorFlashErrorKind::OutOfBounds) => "Flash(OutOfBounds)",
            Self::Flash(_) => "Flash(Other)",
        }
    }
}

impl core::fmt::Display for NorFlashMediumError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OutOfBounds => f.write_str("range outside the partition"),
            Self::NotAligned => f.write_str("program not aligned to the write size"),
            Self::Flash(kind) => write!(f, "flash driver: {kind}"),
        }
    }
}

impl core::error::Error for NorFlashMediumError {}

/// Checks a partition of `sector_count` erase units from `base` on a flash of
/// `capacity` bytes whose `[ERASE_SIZE, WRITE_SIZE, READ_SIZE]` are `sizes`: the
/// rules of [`NorFlashMedium::new`], shared with the async adapter.
pub(crate) fn check_partition(
    sizes: [usize; 3],
    capacity: usize,
    base: u32,
    sector_count: u32,
) -> Result<(), PartitionError> {
    let [erase, write, read] = sizes;
    let unit_ok = |n: usize| n.is_power_of_two() && n <= MAX_UNIT && n <= erase;
    if !erase.is_power_of_two()
        || u32::try_from(erase).is_err()
        || !unit_ok(write)
        || !unit_ok(read)
    {
        return Err(PartitionError::UnsupportedGeometry);
    }
    if sector_count == 0 {
        return Err(PartitionError::Empty);
    }
    if base as usize % erase != 0 {
        return Err(PartitionError::NotAligned);
    }
    let end = (sector_count as usize)
        .checked_mul(erase)
        .and_then(|size| size.checked_add(base as usize))
        .filter(|&end| end <= capacity && u32::try_from(end).is_ok());
    if end.is_none() {
        return Err(PartitionError::OutOfBounds);
    }
    Ok(())
}

pub(crate) fn flash_error<E: NorFlashError>(e: E) -> NorFlashMediumError {
    NorFlashMediumError::Flash(e.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RamFlash;
    use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};
    use monitor_events::Geometry;

    type Flash = RamFlash<256, 8>;

    /// I7: a build without `core::fmt` names each error as its `Debug` output
    /// would.
    #[test]
    fn i7_error_names_match_debug() {
        for e in [
            NorFlashMediumError::OutOfBounds,
            NorFlashMediumError::NotAligned,
            NorFlashMediumError::Flash(NorFlashErrorKind::NotAligned),
            NorFlashMediumError::Flash(NorFlashErrorKind::OutOfBounds),
            NorFlashMediumError::Flash(NorFlashErrorKind::Other),
        ] {
            assert_eq!(
                <NorFlashMedium<Flash> as Medium>::error_name(&e),
                std::format!("{e:?}")
            );
        }
    }

    #[test]
    fn new_checks_the_partition() {
        assert!(NorFlashMedium::new(Flash::new(), 0, 8).is_ok());
        assert!(NorFlashMedium::new(Flash::new(), 512, 6).is_ok());
        assert_eq!(
            NorFlashMedium::new(Flash::new(), 100, 1).unwrap_err(),
            PartitionError::NotAligned
        );
        assert_eq!(
            NorFlashMedium::new(Flash::new(), 256, 8).unwrap_err(),
            PartitionError::OutOfBounds
        );
        assert_eq!(
            NorFlashMedium::new(Flash::new(), 0, u32::MAX).unwrap_err(),
            PartitionError::OutOfBounds
        );
        assert_eq!(
            NorFlashMedium::new(Flash::new(), 0, 0).unwrap_err(),
            PartitionError::Empty
        );
        // A 64 B program unit is more than the journal supports.
        assert_eq!(
            NorFlashMedium::new(RamFlash::<256, 2, 64>::new(), 0, 2).unwrap_err(),
            PartitionError::UnsupportedGeometry
        );
    }

    #[test]
    fn geometry_follows_the_flash_and_constructor() {
        let m = NorFlashMedium::new(Flash::new(), 256, 3).unwrap();
        assert_eq!(
            m.geometry(),
            Geometry {
                sector_size: 256,
                sector_count: 3,
                write_size: 4,
                multiwrite: false
            }
        );
        let m = NorFlashMedium::new_multiwrite(Flash::new(), 256, 3).unwrap();
        assert!(m.geometry().multiwrite);
    }

    #[test]
    fn offsets_are_relative_to_the_partition() {
        let mut m = NorFlashMedium::new(Flash::new(), 512, 2).unwrap();
        m.program(4, &[1, 2, 3, 4]).unwrap();
        m.program(256, &[5, 6, 7, 8]).unwrap();
        let mut buf = [0; 3];
        m.read(5, &mut buf).unwrap();
        assert_eq!(buf, [2, 3, 4]);
        m.erase(0).unwrap();
        m.read(4, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 3]);
        m.sync().unwrap();
        let flash = m.into_inner();
        assert_eq!(&flash.as_bytes()[512 + 256..512 + 260], &[5, 6, 7, 8]);
        assert!(flash.as_bytes()[..512].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let mut m = NorFlashMedium::new(Flash::new(), 256, 2).unwrap();
        let mut buf = [0; 8];
        assert_eq!(m.read(508, &mut buf), Err(NorFlashMediumError::OutOfBounds));
        assert_eq!(
            m.read(u32::MAX, &mut buf),
            Err(NorFlashMediumError::OutOfBounds)
        );
        assert_eq!(
            m.program(512, &[0; 4]),
            Err(NorFlashMediumError::OutOfBounds)
        );
        assert_eq!(m.program(2, &[0; 4]), Err(NorFlashMediumError::NotAligned));
        assert_eq!(m.program(4, &[0; 3]), Err(NorFlashMediumError::NotAligned));
        assert_eq!(m.erase(2), Err(NorFlashMediumError::OutOfBounds));
        // Nothing reached the flash.
        assert!(m.into_inner().as_bytes().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn driver_errors_keep_their_kind() {
        struct Broken;
        impl ErrorType for Broken {
            type Error = NorFlashErrorKind;
        }
        impl ReadNorFlash for Broken {
            const READ_SIZE: usize = 1;
            fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), Self::Error> {
                Err(NorFlashErrorKind::Other)
            }
            fn capacity(&self) -> usize {
                4096
            }
        }
        impl NorFlash for Broken {
            const WRITE_SIZE: usize = 4;
            const ERASE_SIZE: usize = 1024;
            fn erase(&mut self, _: u32, _: u32) -> Result<(), Self::Error> {
                Err(NorFlashErrorKind::Other)
            }
            fn write(&mut self, _: u32, _: &[u8]) -> Result<(), Self::Error> {
                Err(NorFlashErrorKind::NotAligned)
            }
        }
        let mut m = NorFlashMedium::new(Broken, 0, 4).unwrap();
        let other = Err(NorFlashMediumError::Flash(NorFlashErrorKind::Other));
        assert_eq!(m.read(0, &mut [0; 4]), other);
        assert_eq!(m.erase(0), other);
        assert_eq!(
            m.program(0, &[0; 4]),
            Err(NorFlashMediumError::Flash(NorFlashErrorKind::NotAligned))
        );
    }

    /// A flash that reads whole 4-byte words only, like some SPI and ESP drivers.
    struct WordReads(Flash);
    impl ErrorType for WordReads {
        type Error = NorFlashErrorKind;
    }
    impl ReadNorFlash for WordReads {
        const READ_SIZE: usize = 4;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            embedded_storage::nor_flash::check_read(self, offset, bytes.len())?;
            self.0.read(offset, bytes).map_err(|e| e.kind())
        }
        fn capacity(&self) -> usize {
            self.0.capacity()
        }
    }
    impl NorFlash for WordReads {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 256;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            self.0.erase(from, to).map_err(|e| e.kind())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            self.0.write(offset, bytes).map_err(|e| e.kind())
        }
    }

    #[test]
    fn reads_of_any_range_work_on_word_read_flash() {
        let mut m = NorFlashMedium::new(WordReads(Flash::new()), 256, 2).unwrap();
        let pattern: [u8; 16] = core::array::from_fn(|i| i as u8);
        m.program(0, &pattern).unwrap();
        for start in 0..16 {
            for end in start..=16 {
                let mut buf = [0xAA; 16];
                m.read(start as u32, &mut buf[..end - start]).unwrap();
                assert_eq!(&buf[..end - start], &pattern[start..end], "{start}..{end}");
            }
        }
        // The last byte of the partition is readable; one past it is not.
        let mut one = [0; 1];
        m.read(511, &mut one).unwrap();
        assert_eq!(m.read(512, &mut one), Err(NorFlashMediumError::OutOfBounds));
    }
}
