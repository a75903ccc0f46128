//! [`AsyncNorFlashMedium`]: the async store's [`AsyncMedium`] port over an
//! embedded-storage-async [`NorFlash`] partition (crate feature `async`).
//!
//! The same mapping and the same checks as [`NorFlashMedium`](crate::NorFlashMedium)
//! (its module documentation has the table), with every flash call awaited: an
//! erase of an external SPI NOR (45 ms on W25Q-class parts) lets the executor
//! run other tasks.

use crate::nor::{check_partition, flash_error, NorFlashMediumError, PartitionError, MAX_UNIT};
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use monitor_events::{AsyncMedium, Geometry};

/// A partition of an async [`NorFlash`] device seen as an [`AsyncMedium`].
///
/// The partition is `sector_count` erase units starting at `base_offset`.
/// [`new`](Self::new) reports `multiwrite: false`;
/// [`new_multiwrite`](Self::new_multiwrite), only for [`MultiwriteNorFlash`],
/// reports `multiwrite: true` (in-place acks).
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AsyncNorFlashMedium<F> {
    flash: F,
    base: u32,
    sector_count: u32,
    multiwrite: bool,
}

impl<F: NorFlash> AsyncNorFlashMedium<F> {
    /// Uses `sector_count` sectors of `flash` from `base_offset` on, one program
    /// per word between erases. Refused as [`NorFlashMedium::new`](crate::NorFlashMedium::new) refuses.
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

    /// Reads any range through a flash whose `READ_SIZE` may exceed one byte (see
    /// `NorFlashMedium`'s).
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

impl<F: MultiwriteNorFlash> AsyncNorFlashMedium<F> {
    /// Like [`new`](Self::new), but reports `multiwrite: true`: the journal may
    /// program a word a second time, which enables in-place acks.
    pub fn new_multiwrite(
        flash: F,
        base_offset: u32,
        sector_count: u32,
    ) -> Result<Self, PartitionError> {
        Self::with_multiwrite(flash, base_offset, sector_count, true)
    }
}

impl<F: NorFlash> AsyncMedium for AsyncNorFlashMedium<F> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NorFlashMedium, RamFlash};
    use embassy_futures::block_on;
    use monitor_events::Medium;

    type Wide = RamFlash<256, 8, 8>;

    /// An async flash over a RAM one that reads whole `R`-byte units only, like
    /// some SPI drivers.
    struct Units<const R: usize>(Wide);
    impl<const R: usize> embedded_storage_async::nor_flash::ErrorType for Units<R> {
        type Error = embedded_storage::nor_flash::NorFlashErrorKind;
    }
    impl<const R: usize> embedded_storage_async::nor_flash::ReadNorFlash for Units<R> {
        const READ_SIZE: usize = R;
        async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            if offset as usize % R != 0 || bytes.len() % R != 0 {
                return Err(embedded_storage::nor_flash::NorFlashErrorKind::NotAligned);
            }
            embedded_storage::nor_flash::ReadNorFlash::read(&mut self.0, offset, bytes)
        }
        fn capacity(&self) -> usize {
            embedded_storage::nor_flash::ReadNorFlash::capacity(&self.0)
        }
    }
    impl<const R: usize> NorFlash for Units<R> {
        const WRITE_SIZE: usize = 8;
        const ERASE_SIZE: usize = 256;
        async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            embedded_storage::nor_flash::NorFlash::erase(&mut self.0, from, to)
        }
        async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            embedded_storage::nor_flash::NorFlash::write(&mut self.0, offset, bytes)
        }
    }
    impl<const R: usize> MultiwriteNorFlash for Units<R> {}

    /// Every constructor refuses exactly what the blocking adapter's refuses.
    #[test]
    fn new_checks_the_partition_as_the_blocking_adapter() {
        for (base, count) in [
            (0, 8),
            (512, 6),
            (100, 1),
            (256, 8),
            (0, u32::MAX),
            (0, 0),
            (2048, 1),
        ] {
            let a = AsyncNorFlashMedium::new(Units::<1>(Wide::new()), base, count).map(|_| ());
            let b = NorFlashMedium::new(Wide::new(), base, count).map(|_| ());
            assert_eq!(a, b, "base {base}, {count} sectors");
            let a = AsyncNorFlashMedium::new_multiwrite(Units::<1>(Wide::new()), base, count)
                .map(|_| ());
            let b = NorFlashMedium::new_multiwrite(Wide::new(), base, count).map(|_| ());
            assert_eq!(a, b, "multiwrite, base {base}, {count} sectors");
        }
    }

    /// I7: the same calls, good and bad, give the same results and leave the same
    /// bytes as through the blocking adapter, including unaligned reads through a
    /// read unit wider than a byte.
    #[test]
    fn i7_same_operations_same_results_as_the_blocking_adapter() {
        let mut a = AsyncNorFlashMedium::new_multiwrite(Units::<8>(Wide::new()), 256, 6).unwrap();
        let mut b = NorFlashMedium::new_multiwrite(Wide::new(), 256, 6).unwrap();
        assert_eq!(AsyncMedium::geometry(&a), Medium::geometry(&b));
        let data: Vec<u8> = (0..64).collect();
        for (offset, len) in [
            (0, 16),
            (8, 8),
            (3, 8),
            (256, 64),
            (1528, 8),
            (1536, 8),
            (1530, 16),
        ] {
            let d = &data[..len];
            assert_eq!(
                block_on(AsyncMedium::program(&mut a, offset, d)),
                Medium::program(&mut b, offset, d),
                "program {len} B at {offset}"
            );
        }
        for (offset, len) in [(0, 16), (1, 5), (7, 9), (250, 20), (1535, 1), (1530, 10)] {
            let (mut x, mut y) = (vec![0; len], vec![0; len]);
            let ra = block_on(AsyncMedium::read(&mut a, offset, &mut x));
            let rb = Medium::read(&mut b, offset, &mut y);
            assert_eq!(ra, rb, "read {len} B at {offset}");
            assert_eq!(x, y, "read {len} B at {offset}");
        }
        for sector in [0, 5, 6] {
            assert_eq!(
                block_on(AsyncMedium::erase(&mut a, sector)),
                Medium::erase(&mut b, sector)
            );
        }
        assert_eq!(a.into_inner().0.as_bytes(), b.into_inner().as_bytes());
    }
}
