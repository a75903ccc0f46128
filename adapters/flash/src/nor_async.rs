//! [`AsyncNorFlashMedium`]: the async store's [`AsyncMedium`] port over an
//! embedded-storage-async [`NorFlash`] partition (crate feature `async`).
//!
//! The same mapping and the same checks as [`NorFlashMedium`](crate::NorFlashMedium)
//! (its module documentation has the table), with every flash call awaited: an
//! erase of an external SPI NOR (45 ms on W25Q-class parts) lets the executor
//! run other tasks.

use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use maybe_async::must_be_async as maybe;
use monitor_events::AsyncMedium as Medium;

// The medium's source, compiled here async and in `nor` blocking.
#[allow(clippy::duplicate_mod)]
#[path = "nor_medium.rs"]
mod medium;

/// The async medium: an embedded-storage-async
/// [`NorFlash`](embedded_storage_async::nor_flash::NorFlash) as an
/// [`AsyncMedium`](monitor_events::AsyncMedium), from the blocking
/// [`NorFlashMedium`](crate::NorFlashMedium)'s source and rules, with every flash
/// call awaited.
pub use medium::NorFlashMedium as AsyncNorFlashMedium;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NorFlashMedium, RamFlash};
    use embassy_futures::block_on;
    use monitor_events::{AsyncMedium, Medium};

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
