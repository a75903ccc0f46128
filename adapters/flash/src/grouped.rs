//! Larger journal sectors over small erase blocks: [`Grouped`].
//!
//! The journal's capacity is bounded by its region (see
//! `monitor_events::journal::Config`), but a region of few sectors must hold `N`
//! copies of the largest event in one sector, and some layouts want sectors of
//! 64 KiB to 1 MiB while SPI NOR and most internal flash erase 4 KiB at a time.
//! `Grouped` presents `blocks`
//! consecutive erase blocks of a [`Medium`] as one sector: reads and programs
//! pass through unchanged (the offsets are the same), and erasing a sector
//! erases its blocks one after the other, first to last.
//!
//! Every guarantee of the journal holds unchanged: a cut during a grouped erase
//! leaves leading blocks erased and the others as they were, which the journal
//! reads like any torn erase (the records left behind are bound to an older
//! sequence number and never validate in the sector's next use). A block left as
//! it was may also hold units that a torn program spent without changing a bit:
//! they read erased but must not be programmed again. `Grouped` says so through
//! [`Medium::erase_block_size`], and the journal then erases every free sector
//! before its first use after a restart, when it rolls over into it. The
//! brown-out and crash-point tests run the journal on it, among them sectors of
//! 2 to 16 blocks of 256 B with half the cuts tearing without changing a bit.
//!
//! ```
//! use monitor_events::journal::Config;
//! use monitor_events::{EventStore, Medium, MAX_ENCODED_LEN};
//! use monitor_events_flash::{Grouped, NorFlashMedium, RamFlash};
//!
//! // 128 KiB of 4 KiB blocks as four sectors of 32 KiB: room for 128 pending
//! // events of the largest size, where 4 KiB sectors hold 16.
//! let blocks = NorFlashMedium::new_multiwrite(RamFlash::<4096, 32>::new(), 0, 32).unwrap();
//! let medium = Grouped::new(blocks, 8).unwrap();
//! let config = Config::<128>::try_new(medium.geometry(), MAX_ENCODED_LEN).unwrap();
//! let store = EventStore::<_, 128>::open(medium, config).unwrap();
//! assert_eq!(store.pending_count(), 0);
//! ```

use monitor_events::{Geometry, Medium};

/// Why a grouping does not fit its medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GroupError {
    /// `blocks` is not a power of two (sector sizes are powers of two), or is 0.
    Blocks,
    /// The medium has fewer than `blocks` erase blocks, or a grouped sector would
    /// be larger than 4 GiB.
    TooFewBlocks,
}

impl core::fmt::Display for GroupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GroupError::Blocks => "blocks per sector must be a power of two",
            GroupError::TooFewBlocks => "the medium has fewer erase blocks than one sector needs",
        })
    }
}

impl core::error::Error for GroupError {}

/// A [`Medium`] whose sectors are `blocks` consecutive erase blocks of `inner`.
/// Erase blocks beyond the last whole group are left unused.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Grouped<M> {
    inner: M,
    blocks: u32,
}

impl<M: Medium> Grouped<M> {
    /// Groups `blocks` erase blocks of `inner` into each sector.
    pub fn new(inner: M, blocks: u32) -> Result<Self, GroupError> {
        if !blocks.is_power_of_two() {
            return Err(GroupError::Blocks);
        }
        let g = inner.geometry();
        if g.sector_count < blocks || g.sector_size.checked_mul(blocks).is_none() {
            return Err(GroupError::TooFewBlocks);
        }
        Ok(Grouped { inner, blocks })
    }

    /// Erase blocks per sector.
    pub fn blocks(&self) -> u32 {
        self.blocks
    }

    /// The medium underneath.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The medium underneath, mutably (for tests and tools: writing through it
    /// bypasses nothing the journal relies on, but the journal must not be open).
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Gives the medium back.
    pub fn into_inner(self) -> M {
        self.inner
    }
}

impl<M: Medium> Medium for Grouped<M> {
    type Error = M::Error;

    fn geometry(&self) -> Geometry {
        let g = self.inner.geometry();
        Geometry {
            sector_size: g.sector_size * self.blocks,
            sector_count: g.sector_count / self.blocks,
            ..g
        }
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.read(offset, buf)
    }

    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.inner.program(offset, data)
    }

    fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        let first = sector * self.blocks;
        for block in first..first + self.blocks {
            self.inner.erase(block)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        self.inner.sync()
    }

    /// One block of the medium underneath: a cut during `erase` can leave some
    /// of a sector's blocks as they were.
    fn erase_block_size(&self) -> u32 {
        self.inner.erase_block_size()
    }
    fn writes_in_order(&self) -> bool {
        self.inner.writes_in_order()
    }

    fn error_name(error: &M::Error) -> &'static str {
        M::error_name(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NorFlashMedium, NorFlashMediumError, RamFlash};

    type Blocks = NorFlashMedium<RamFlash<256, 16>>;

    fn medium() -> Blocks {
        NorFlashMedium::new_multiwrite(RamFlash::new(), 0, 16).unwrap()
    }

    #[test]
    fn i1_geometry_groups_blocks_and_never_touches_the_remainder() {
        let g = Grouped::new(medium(), 4).unwrap().geometry();
        assert_eq!((g.sector_size, g.sector_count), (1024, 4));
        let g = Grouped::new(medium(), 16).unwrap().geometry();
        assert_eq!((g.sector_size, g.sector_count), (4096, 1));
        assert_eq!(Grouped::new(medium(), 3).unwrap_err(), GroupError::Blocks);
        assert_eq!(Grouped::new(medium(), 0).unwrap_err(), GroupError::Blocks);
        assert_eq!(
            Grouped::new(medium(), 32).unwrap_err(),
            GroupError::TooFewBlocks
        );
        let mut odd = NorFlashMedium::new_multiwrite(RamFlash::<256, 16>::new(), 0, 10).unwrap();
        odd.program(9 * 256, &[0; 4]).unwrap();
        let mut grouped = Grouped::new(odd, 4).unwrap();
        assert_eq!(grouped.geometry().sector_count, 2);
        // The left-over blocks are never touched by erasing the sectors.
        grouped.erase(0).unwrap();
        grouped.erase(1).unwrap();
        let mut b = [0xFF; 4];
        grouped.read(9 * 256, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn i10_erase_block_size_is_the_block_underneath() {
        let mut m = Grouped::new(medium(), 4).unwrap();
        assert_eq!(m.geometry().sector_size, 1024);
        assert_eq!(m.erase_block_size(), 256);
        // Through a reference too: the journal often holds `&mut Grouped`.
        assert_eq!(Medium::erase_block_size(&&mut m), 256);
        // A plain medium's erase unit is its sector.
        assert_eq!(medium().erase_block_size(), 256);
        let nested = Grouped::new(Grouped::new(medium(), 2).unwrap(), 2).unwrap();
        assert_eq!(
            (nested.geometry().sector_size, nested.erase_block_size()),
            (1024, 256)
        );
    }

    #[test]
    fn i1_erase_clears_exactly_the_sectors_blocks() {
        let mut m = Grouped::new(medium(), 4).unwrap();
        for block in 0..16u32 {
            m.program(block * 256, &[block as u8; 4]).unwrap();
        }
        m.erase(1).unwrap();
        for block in 0..16u32 {
            let mut b = [0u8; 4];
            m.read(block * 256, &mut b).unwrap();
            let erased = (4..8).contains(&block);
            assert_eq!(b == [0xFF; 4], erased, "block {block}");
        }
        // Bounds are the inner medium's.
        assert_eq!(m.erase(4), Err(NorFlashMediumError::OutOfBounds));
    }
}
