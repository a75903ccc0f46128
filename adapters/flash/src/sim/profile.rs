//! Device-time profiles and the counters [`SimFlash`](super::SimFlash) keeps.

/// A device-time profile of docs/BENCH.md (approximate datasheet figures).
///
/// | profile | read_cmd_us | read_byte_us | prog_cmd_us | prog_byte_us | prog_page | erase_us |
/// |---|---|---|---|---|---|---|
/// | `nrf52840` (internal NVMC) | 0 | 1/64 | 0 | 41/4 | 4096 | 85000 |
/// | `w25q-spi` (W25Q-class SPI NOR) | 0.4 | 0.04 | 27.5 | 2.5 | 256 | 45000 |
///
/// A read of `n` bytes costs `read_cmd_us + n * read_byte_us`; a program is split
/// at `prog_page` boundaries and each piece of `n` bytes costs
/// `prog_cmd_us + n * prog_byte_us`; an erase costs `erase_us` per sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Profile {
    /// nRF52840 internal flash (NVMC): 41 us per 4 B word, 85 ms per 4 KiB page,
    /// reads memory-mapped at 64 MHz.
    Nrf52840,
    /// W25Q-class SPI NOR: 256 B program pages, 45 ms per 4 KiB sector erase, quad
    /// reads at 50 MHz.
    W25qSpi,
}

/// The cost figures of one [`Profile`], in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Costs {
    /// Fixed cost of a read.
    pub read_cmd_us: f64,
    /// Cost per byte read.
    pub read_byte_us: f64,
    /// Fixed cost of each program piece.
    pub prog_cmd_us: f64,
    /// Cost per byte programmed.
    pub prog_byte_us: f64,
    /// Program page in bytes: a program is split at multiples of it.
    pub prog_page: u32,
    /// Cost of erasing one sector.
    pub erase_us: f64,
}

impl Profile {
    /// Number of profiles.
    pub const COUNT: usize = 2;

    /// Every profile, in docs/BENCH.md's order.
    pub const fn all() -> [Profile; Self::COUNT] {
        [Profile::Nrf52840, Profile::W25qSpi]
    }

    /// docs/BENCH.md's name: `nrf52840`, `w25q-spi`.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Nrf52840 => "nrf52840",
            Profile::W25qSpi => "w25q-spi",
        }
    }

    /// The cost figures.
    pub const fn costs(self) -> Costs {
        match self {
            Profile::Nrf52840 => Costs {
                read_cmd_us: 0.0,
                read_byte_us: 1.0 / 64.0,
                prog_cmd_us: 0.0,
                prog_byte_us: 41.0 / 4.0,
                prog_page: 4096,
                erase_us: 85_000.0,
            },
            Profile::W25qSpi => Costs {
                read_cmd_us: 0.4,
                read_byte_us: 0.04,
                prog_cmd_us: 27.5,
                prog_byte_us: 2.5,
                prog_page: 256,
                erase_us: 45_000.0,
            },
        }
    }

    /// Device time of reading `len` bytes.
    pub fn read_us(self, len: usize) -> f64 {
        let c = self.costs();
        c.read_cmd_us + len as f64 * c.read_byte_us
    }

    /// Device time of programming `len` bytes at `offset`: one command per
    /// `prog_page` the range touches.
    pub fn program_us(self, offset: u32, len: usize) -> f64 {
        let c = self.costs();
        let pieces = if len == 0 {
            0
        } else {
            let page = u64::from(c.prog_page);
            let first = u64::from(offset) / page;
            let last = (u64::from(offset) + len as u64 - 1) / page;
            last - first + 1
        };
        pieces as f64 * c.prog_cmd_us + len as f64 * c.prog_byte_us
    }

    /// Device time of erasing one sector.
    pub fn erase_us(self) -> f64 {
        self.costs().erase_us
    }

    /// docs/BENCH.md's physical limit per event, in microseconds, for events of
    /// `payload` bytes on sectors of `sector_size` bytes: program only the payload
    /// (one program command) and erase only the share of a sector it fills. No
    /// header, no ack, no copy. For `nrf52840` and W1's 86.3 B: ≈ 2.68 ms.
    pub fn limit_us(self, payload: f64, sector_size: u32) -> f64 {
        let c = self.costs();
        c.prog_cmd_us + payload * c.prog_byte_us + payload / f64::from(sector_size) * c.erase_us
    }
}

/// What a [`SimFlash`](super::SimFlash) has done since it was made or since
/// [`reset_stats`](super::SimFlash::reset_stats). Only operations that returned
/// `Ok` are counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Read operations.
    pub read_ops: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Program operations.
    pub program_ops: u64,
    /// Bytes programmed.
    pub bytes_programmed: u64,
    /// Sector erases.
    pub erases: u64,
    /// Erases per sector, indexed by sector number.
    pub sector_erases: Vec<u64>,
    /// `sync` calls.
    pub syncs: u64,
    /// Device time in microseconds, per profile (indexed by `Profile as usize`;
    /// see [`device_us`](Self::device_us)).
    pub device_us: [f64; Profile::COUNT],
}

impl Stats {
    pub(crate) fn new(sectors: u32) -> Self {
        Self {
            sector_erases: vec![0; sectors as usize],
            ..Self::default()
        }
    }

    /// Device time in microseconds under `profile`.
    pub fn device_us(&self, profile: Profile) -> f64 {
        self.device_us[profile as usize]
    }

    /// Erases of the most erased sector.
    pub fn max_sector_erases(&self) -> u64 {
        self.sector_erases.iter().copied().max().unwrap_or(0)
    }

    /// Mean erases per sector.
    pub fn mean_sector_erases(&self) -> f64 {
        self.erases as f64 / self.sector_erases.len().max(1) as f64
    }

    pub(crate) fn count_read(&mut self, len: usize) {
        self.read_ops += 1;
        self.bytes_read += len as u64;
        for p in Profile::all() {
            self.device_us[p as usize] += p.read_us(len);
        }
    }

    pub(crate) fn count_program(&mut self, offset: u32, len: usize) {
        self.program_ops += 1;
        self.bytes_programmed += len as u64;
        for p in Profile::all() {
            self.device_us[p as usize] += p.program_us(offset, len);
        }
    }

    pub(crate) fn count_erase(&mut self, sector: u32) {
        self.erases += 1;
        self.sector_erases[sector as usize] += 1;
        for p in Profile::all() {
            self.device_us[p as usize] += p.erase_us();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        let names: Vec<_> = Profile::all().iter().map(|p| p.name()).collect();
        assert_eq!(names, ["nrf52840", "w25q-spi"]);
        assert_eq!(Profile::all()[1] as usize, 1);
    }

    #[test]
    fn program_is_split_at_page_boundaries() {
        let w = Profile::W25qSpi;
        assert_eq!(w.program_us(0, 0), 0.0);
        assert_eq!(w.program_us(0, 256), 27.5 + 256.0 * 2.5);
        assert_eq!(w.program_us(252, 8), 2.0 * 27.5 + 8.0 * 2.5);
        assert_eq!(w.program_us(252, 4), 27.5 + 4.0 * 2.5);
        assert_eq!(w.program_us(200, 600), 4.0 * 27.5 + 600.0 * 2.5);
        assert_eq!(Profile::Nrf52840.program_us(4092, 8), 8.0 * 10.25);
    }

    #[test]
    fn reads_and_erases() {
        assert_eq!(Profile::Nrf52840.read_us(64), 1.0);
        assert_eq!(Profile::W25qSpi.read_us(10), 0.4 + 0.4);
        assert_eq!(Profile::Nrf52840.erase_us(), 85_000.0);
        assert_eq!(Profile::W25qSpi.erase_us(), 45_000.0);
    }

    #[test]
    fn w1_limit_on_nrf52840_is_2_68_ms() {
        let ms = Profile::Nrf52840.limit_us(86.3, 4096) / 1000.0;
        assert!((ms - 2.68).abs() < 0.005, "{ms}");
    }
}
