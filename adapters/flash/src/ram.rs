//! [`RamFlash`]: NOR flash in RAM, for boards without a flash driver yet and for
//! tests.

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, MultiwriteNorFlash, NorFlash,
    NorFlashErrorKind, ReadNorFlash,
};

/// `SECTORS` erase units of `SECTOR` bytes in RAM with NOR semantics, programmed
/// in units of `WRITE` bytes (4 unless given).
///
/// - erased bytes read `0xFF`;
/// - a write ANDs the data into the array (it can only clear bits), so writing a
///   word twice yields the AND of both values: [`MultiwriteNorFlash`];
/// - reads take any offset and length; writes need offset and length multiples of
///   `WRITE`; erases need sector boundaries; anything outside the array is
///   `OutOfBounds` (embedded-storage's `check_*` helpers decide).
///
/// No wear, no power cuts, no counters: for those use the `sim` feature's
/// `SimFlash`.
#[derive(Clone, PartialEq, Eq)]
pub struct RamFlash<const SECTOR: usize, const SECTORS: usize, const WRITE: usize = 4> {
    sectors: [[u8; SECTOR]; SECTORS],
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize>
    RamFlash<SECTOR, SECTORS, WRITE>
{
    /// Size in bytes.
    pub const CAPACITY: usize = SECTOR * SECTORS;

    const VALID: () = assert!(
        SECTOR.is_power_of_two() && WRITE.is_power_of_two() && SECTOR % WRITE == 0,
        "RamFlash: SECTOR and WRITE must be powers of two, WRITE dividing SECTOR"
    );

    /// A fully erased flash.
    pub const fn new() -> Self {
        let () = Self::VALID;
        Self {
            sectors: [[0xFF; SECTOR]; SECTORS],
        }
    }

    /// A flash holding `bytes` (a dump from [`as_bytes`](Self::as_bytes) or from a
    /// device); `None` unless `bytes.len()` is [`CAPACITY`](Self::CAPACITY).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::CAPACITY {
            return None;
        }
        let mut flash = Self::new();
        flash.as_bytes_mut().copy_from_slice(bytes);
        Some(flash)
    }

    /// The whole content, sector 0 first.
    pub fn as_bytes(&self) -> &[u8] {
        self.sectors.as_flattened()
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.sectors.as_flattened_mut()
    }
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> Default
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> core::fmt::Debug
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RamFlash")
            .field("sector_size", &SECTOR)
            .field("sectors", &SECTORS)
            .field("write_size", &WRITE)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> defmt::Format
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "RamFlash {{ sector_size: {}, sectors: {}, write_size: {} }}",
            SECTOR,
            SECTORS,
            WRITE
        )
    }
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> ErrorType
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    type Error = NorFlashErrorKind;
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> ReadNorFlash
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        let start = offset as usize;
        bytes.copy_from_slice(&self.as_bytes()[start..start + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        Self::CAPACITY
    }
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> NorFlash
    for RamFlash<SECTOR, SECTORS, WRITE>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        self.as_bytes_mut()[from as usize..to as usize].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        let start = offset as usize;
        let target = &mut self.as_bytes_mut()[start..start + bytes.len()];
        for (cell, &byte) in target.iter_mut().zip(bytes) {
            *cell &= byte;
        }
        Ok(())
    }
}

impl<const SECTOR: usize, const SECTORS: usize, const WRITE: usize> MultiwriteNorFlash
    for RamFlash<SECTOR, SECTORS, WRITE>
{
}

#[cfg(test)]
mod tests {
    use super::*;

    type Flash = RamFlash<64, 4>;

    #[test]
    fn starts_erased() {
        let mut f = Flash::new();
        assert_eq!(f.capacity(), 256);
        let mut buf = [0; 256];
        f.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 256]);
    }

    #[test]
    fn write_ands_bits_and_erase_restores() {
        let mut f = Flash::new();
        f.write(64, &[0b1100_1100; 4]).unwrap();
        f.write(64, &[0b1010_1010; 4]).unwrap();
        assert_eq!(&f.as_bytes()[64..68], &[0b1000_1000; 4]);
        // A 1 bit cannot come back by programming.
        f.write(64, &[0xFF; 4]).unwrap();
        assert_eq!(&f.as_bytes()[64..68], &[0b1000_1000; 4]);
        f.erase(64, 128).unwrap();
        assert!(f.as_bytes().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn erase_touches_only_its_sectors() {
        let mut f = Flash::from_bytes(&[0; 256]).unwrap();
        f.erase(64, 192).unwrap();
        assert!(f.as_bytes()[..64].iter().all(|&b| b == 0));
        assert!(f.as_bytes()[64..192].iter().all(|&b| b == 0xFF));
        assert!(f.as_bytes()[192..].iter().all(|&b| b == 0));
    }

    #[test]
    fn alignment_and_bounds_are_errors() {
        let mut f = Flash::new();
        assert_eq!(f.write(2, &[0; 4]), Err(NorFlashErrorKind::NotAligned));
        assert_eq!(f.write(0, &[0; 3]), Err(NorFlashErrorKind::NotAligned));
        assert_eq!(f.write(256, &[0; 4]), Err(NorFlashErrorKind::OutOfBounds));
        assert_eq!(f.erase(0, 32), Err(NorFlashErrorKind::NotAligned));
        assert_eq!(f.erase(64, 0), Err(NorFlashErrorKind::OutOfBounds));
        assert_eq!(f.erase(0, 320), Err(NorFlashErrorKind::OutOfBounds));
        assert_eq!(
            f.read(255, &mut [0; 2]),
            Err(NorFlashErrorKind::OutOfBounds)
        );
        // Reads need no alignment.
        f.read(3, &mut [0; 5]).unwrap();
        assert_eq!(f, Flash::new());
    }

    #[test]
    fn bytes_round_trip() {
        let mut f = Flash::new();
        f.write(8, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let copy = Flash::from_bytes(f.as_bytes()).unwrap();
        assert_eq!(copy, f);
        assert!(Flash::from_bytes(&[0xFF; 255]).is_none());
    }

    #[test]
    fn write_size_is_a_parameter() {
        let mut f = RamFlash::<64, 2, 16>::new();
        assert_eq!(f.write(4, &[0; 16]), Err(NorFlashErrorKind::NotAligned));
        f.write(16, &[0; 16]).unwrap();
        assert_eq!(<RamFlash<64, 2, 16> as NorFlash>::WRITE_SIZE, 16);
    }
}
