//! The NOR flash medium, written once: `nor.rs` compiles it blocking (on
//! embedded-storage's `NorFlash`, as a [`Medium`]) and `nor_async.rs` async (on
//! embedded-storage-async's, as an `AsyncMedium`); maybe-async strips the
//! `async`/`.await` of the blocking build. The including module brings
//! `NorFlash`, `MultiwriteNorFlash`, `Medium` and `maybe` into scope. Its tests
//! are in the two including files.

use super::{maybe, Medium, MultiwriteNorFlash, NorFlash};
use crate::nor::{check_partition, flash_error, NorFlashMediumError, PartitionError, MAX_UNIT};
use monitor_events::Geometry;

/// A partition of a NOR flash (its `NorFlash` driver) seen as the journal's
/// medium.
///
/// The partition is `sector_count` erase units starting at `base_offset`.
/// [`new`](Self::new) reports `multiwrite: false` (one program per word between
/// erases, the rule of ECC flash); [`new_multiwrite`](Self::new_multiwrite), only
/// available for a `MultiwriteNorFlash`, reports `multiwrite: true`.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NorFlashMedium<F> {
    flash: F,
    base: u32,
    sector_count: u32,
    multiwrite: bool,
}

#[maybe]
impl<F: NorFlash> NorFlashMedium<F> {
    /// Uses `sector_count` sectors of `flash` from `base_offset` on, one program
    /// per word between erases.
    pub fn new(flash: F, base_offset: u32, sector_count: u32) -> Result<Self, PartitionError> {
        Self::with_multiwrite(flash, base_offset, sector_count, false)
    }

    fn with_multiwrite(
        flash: F,
        base: u32,
        sector_count: u32,
        multiwrite: bool,
    ) -> Result<Self, PartitionError> {
        let sizes = [F::ERASE_SIZE, F::WRITE_SIZE, F::READ_SIZE];
        check_partition(sizes, flash.capacity(), base, sector_count)?;
        Ok(Self {
            flash,
            base,
            sector_count,
            multiwrite,
        })
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Byte offset of the partition on the flash.
    pub fn base_offset(&self) -> u32 {
        self.base
    }

    /// Checks that `offset..offset + len` lies in the partition; returns the flash
    /// address of `offset`.
    fn map(&self, offset: u32, len: usize) -> Result<u32, NorFlashMediumError> {
        let size = self.sector_count as usize * F::ERASE_SIZE;
        match (offset as usize).checked_add(len) {
            Some(end) if end <= size => Ok(self.base + offset),
            _ => Err(NorFlashMediumError::OutOfBounds),
        }
    }

    /// Reads any range through a flash whose `READ_SIZE` may exceed one byte: the
    /// aligned middle in one call, a partial unit at either end through a bounce
    /// buffer. The partition starts and ends on erase boundaries, so the widened
    /// units never leave it.
    async fn read_units(&mut self, mut addr: u32, mut buf: &mut [u8]) -> Result<(), F::Error> {
        let unit = F::READ_SIZE;
        while !buf.is_empty() {
            let skew = addr as usize % unit;
            let n = if skew == 0 && buf.len() >= unit {
                let n = buf.len() - buf.len() % unit;
                self.flash.read(addr, &mut buf[..n]).await?;
                n
            } else {
                let mut word = [0u8; MAX_UNIT];
                self.flash
                    .read(addr - skew as u32, &mut word[..unit])
                    .await?;
                let n = (unit - skew).min(buf.len());
                buf[..n].copy_from_slice(&word[skew..skew + n]);
                n
            };
            addr += n as u32;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

impl<F: MultiwriteNorFlash> NorFlashMedium<F> {
    /// Like [`new`](Self::new), but reports `multiwrite: true`: the journal may
    /// program a word a second time (the flash ANDs the two values), which enables
    /// in-place acks.
    pub fn new_multiwrite(
        flash: F,
        base_offset: u32,
        sector_count: u32,
    ) -> Result<Self, PartitionError> {
        Self::with_multiwrite(flash, base_offset, sector_count, true)
    }
}

// AFIT: the async build implements the trait with `async fn`s, no boxing.
#[maybe(AFIT)]
impl<F: NorFlash> Medium for NorFlashMedium<F> {
    type Error = NorFlashMediumError;

    fn error_name(error: &NorFlashMediumError) -> &'static str {
        error.name()
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            sector_size: F::ERASE_SIZE as u32,
            sector_count: self.sector_count,
            write_size: F::WRITE_SIZE as u32,
            multiwrite: self.multiwrite,
        }
    }

    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        let addr = self.map(offset, buf.len())?;
        if F::READ_SIZE == 1 {
            self.flash.read(addr, buf).await.map_err(flash_error)
        } else {
            self.read_units(addr, buf).await.map_err(flash_error)
        }
    }

    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        let addr = self.map(offset, data.len())?;
        if offset as usize % F::WRITE_SIZE != 0 || data.len() % F::WRITE_SIZE != 0 {
            return Err(NorFlashMediumError::NotAligned);
        }
        self.flash.write(addr, data).await.map_err(flash_error)
    }

    async fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        if sector >= self.sector_count {
            return Err(NorFlashMediumError::OutOfBounds);
        }
        let from = self.base + sector * F::ERASE_SIZE as u32;
        self.flash
            .erase(from, from + F::ERASE_SIZE as u32)
            .await
            .map_err(flash_error)
    }

    async fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
