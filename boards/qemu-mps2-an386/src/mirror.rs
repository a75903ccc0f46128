//! [`MirrorFlash`]: NOR flash in RAM whose every program and erase is first
//! written through to a host file, so that killing QEMU is a power cut.
//!
//! | medium call | RAM | host file (`SYS_SEEK` + `SYS_WRITE`) |
//! |---|---|---|
//! | `read` | read | — |
//! | `program(o, data)` | `ram &= data`, one write unit after the other | each unit's new value written on its own: a cut leaves a prefix of the units programmed (a torn program) |
//! | `erase(s)` | sector set to `0xFF` | in 256 B pieces: a cut leaves part of the sector erased (a torn erase) |
//! | `sync` | — | nothing: a `SYS_WRITE` has reached the host kernel when it returns, so it survives a SIGKILL of QEMU |
//!
//! The file is the flash; the RAM copy is only what the running firmware sees. At
//! boot the RAM is loaded from the file (a missing file is created erased). Unlike
//! a real NOR chip, the host writes whole units, so a torn program never leaves a
//! word half-programmed: the torn variants with random bits are covered by the
//! core's crash tests on the simulator.
//!
//! The rules of the device are enforced: offsets and lengths aligned to the write
//! unit, a program only clears bits, and on a medium declared without multiwrite a
//! unit may be programmed only while it is erased.

use crate::host::{HostError, HostFile, Mode};
use monitor_events::{Geometry, Medium};

/// Bytes of one erase unit, unless [`MirrorFlash::set_sector_size`] says otherwise.
pub const SECTOR_SIZE: u32 = 4096;
/// Program unit.
pub const WRITE_SIZE: u32 = 4;
/// Size of the region (and of the image file): 16 sectors of 4 KiB, or 8 of 8 KiB.
pub const SIZE: usize = 64 * 1024;

/// Erase pieces written to the host one at a time.
const ERASE_PIECE: usize = 256;

/// Why a medium operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum MirrorError {
    /// The range leaves the region.
    OutOfBounds,
    /// Offset or length not a multiple of the write unit.
    NotAligned,
    /// A second program of a unit on a medium without multiwrite.
    Reprogram {
        /// Offset of the unit.
        offset: u32,
    },
    /// The image was opened read-only (`verify`).
    ReadOnly,
    /// The host refused a semihosting call.
    Host(HostError),
    /// A failure injected with [`MirrorFlash::fail_at`].
    Injected,
}

impl From<HostError> for MirrorError {
    fn from(e: HostError) -> Self {
        MirrorError::Host(e)
    }
}

/// Operation counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, defmt::Format)]
pub struct Counts {
    /// Programs.
    pub programs: u32,
    /// Bytes programmed.
    pub program_bytes: u32,
    /// Erases.
    pub erases: u32,
}

/// How the image file was found at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Boot {
    /// It was missing (or `fresh` was asked for) and was created erased.
    Created,
    /// It was loaded; `completed` bytes at its end were missing (a cut during its
    /// creation) and were written erased.
    Loaded {
        /// Bytes appended.
        completed: u32,
    },
}

/// The RAM flash and its host file.
pub struct MirrorFlash {
    ram: &'static mut [u8; SIZE],
    file: HostFile,
    multiwrite: bool,
    sector_size: u32,
    read_only: bool,
    counts: Counts,
    /// Program or erase number (counting both from 1) that fails.
    fail_at: Option<u32>,
}

impl MirrorFlash {
    /// Loads `path` into `ram`, creating the file erased if it is missing.
    pub fn attach(
        ram: &'static mut [u8; SIZE],
        path: &str,
        multiwrite: bool,
    ) -> Result<(Self, Boot), MirrorError> {
        match HostFile::open(path, Mode::ReadWrite) {
            Ok(file) => {
                let mut m = MirrorFlash {
                    ram,
                    file,
                    multiwrite,
                    sector_size: SECTOR_SIZE,
                    read_only: false,
                    counts: Counts::default(),
                    fail_at: None,
                };
                let completed = m.load()?;
                Ok((m, Boot::Loaded { completed }))
            }
            Err(_) => Ok((Self::fresh(ram, path, multiwrite)?, Boot::Created)),
        }
    }

    /// Creates (or truncates) `path` and fills it and `ram` erased.
    pub fn fresh(
        ram: &'static mut [u8; SIZE],
        path: &str,
        multiwrite: bool,
    ) -> Result<Self, MirrorError> {
        let file = HostFile::open(path, Mode::Create)?;
        let mut m = MirrorFlash {
            ram,
            file,
            multiwrite,
            sector_size: SECTOR_SIZE,
            read_only: false,
            counts: Counts::default(),
            fail_at: None,
        };
        m.ram.fill(0xFF);
        m.file.seek(0)?;
        for piece in m.ram.chunks(ERASE_PIECE * 16) {
            m.file.write(piece)?;
        }
        Ok(m)
    }

    /// Loads `path` into `ram` for reading only: any program or erase fails.
    pub fn read_only(
        ram: &'static mut [u8; SIZE],
        path: &str,
        multiwrite: bool,
    ) -> Result<Self, MirrorError> {
        let file = HostFile::open(path, Mode::Read)?;
        let mut m = MirrorFlash {
            ram,
            file,
            multiwrite,
            sector_size: SECTOR_SIZE,
            read_only: true,
            counts: Counts::default(),
            fail_at: None,
        };
        let len = m.file.len()? as usize;
        if len != SIZE {
            return Err(MirrorError::Host(HostError::Read {
                missing: SIZE.saturating_sub(len) as u32,
            }));
        }
        m.file.read_exact_at(0, &mut m.ram[..])?;
        Ok(m)
    }

    /// Reloads the RAM from the file: what a reboot sees. Returns the bytes that
    /// were missing at the end of the file and were written erased.
    pub fn load(&mut self) -> Result<u32, MirrorError> {
        let len = (self.file.len()? as usize).min(SIZE);
        self.file.read_exact_at(0, &mut self.ram[..len])?;
        self.ram[len..].fill(0xFF);
        if len < SIZE && !self.read_only {
            self.file.seek(len as u32)?;
            for piece in self.ram[len..].chunks(ERASE_PIECE * 16) {
                self.file.write(piece)?;
            }
        }
        Ok((SIZE - len) as u32)
    }

    /// Forgets the RAM content (fills it with a pattern no journal writes), so that
    /// a following [`load`](Self::load) is seen to restore everything.
    pub fn scramble(&mut self) {
        self.ram.fill(0x5A);
    }

    /// Sets the erase unit: a power of two from 256 B that divides [`SIZE`]
    /// (panics otherwise). The content does not change; set it before a journal
    /// opens the flash.
    pub fn set_sector_size(&mut self, bytes: u32) {
        defmt::assert!(
            bytes.is_power_of_two() && bytes >= 256 && SIZE % bytes as usize == 0,
            "sector size {} does not divide the flash",
            bytes
        );
        self.sector_size = bytes;
    }

    /// Gives the RAM back (the file is closed).
    pub fn into_ram(self) -> &'static mut [u8; SIZE] {
        self.ram
    }

    /// Makes the `n`-th program or erase from now fail with
    /// [`MirrorError::Injected`], writing nothing: the journal must panic (I7).
    pub fn fail_at(&mut self, n: u32) {
        self.fail_at = Some(self.counts.programs + self.counts.erases + n);
    }

    /// Counts one program or erase; the injected failure if it is due.
    fn count_op(&mut self) -> Result<(), MirrorError> {
        if self.fail_at == Some(self.counts.programs + self.counts.erases + 1) {
            return Err(MirrorError::Injected);
        }
        Ok(())
    }

    /// Operation counts since attach.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether the file holds exactly the RAM content.
    pub fn file_matches(&mut self) -> Result<bool, MirrorError> {
        let mut buf = [0u8; 1024];
        for (i, chunk) in self.ram.chunks(buf.len()).enumerate() {
            self.file
                .read_exact_at((i * buf.len()) as u32, &mut buf[..chunk.len()])?;
            if buf[..chunk.len()] != *chunk {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn check(&self, offset: u32, len: usize) -> Result<usize, MirrorError> {
        let start = offset as usize;
        match start.checked_add(len) {
            Some(end) if end <= SIZE => Ok(start),
            _ => Err(MirrorError::OutOfBounds),
        }
    }
}

impl Medium for MirrorFlash {
    type Error = MirrorError;

    fn geometry(&self) -> Geometry {
        Geometry {
            sector_size: self.sector_size,
            sector_count: (SIZE / self.sector_size as usize) as u32,
            write_size: WRITE_SIZE,
            multiwrite: self.multiwrite,
        }
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), MirrorError> {
        let start = self.check(offset, buf.len())?;
        buf.copy_from_slice(&self.ram[start..start + buf.len()]);
        Ok(())
    }

    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), MirrorError> {
        let start = self.check(offset, data.len())?;
        let unit = WRITE_SIZE as usize;
        if start % unit != 0 || data.len() % unit != 0 {
            return Err(MirrorError::NotAligned);
        }
        if self.read_only {
            return Err(MirrorError::ReadOnly);
        }
        self.count_op()?;
        if !self.multiwrite {
            if let Some(i) = (0..data.len()).step_by(unit).find(|&i| {
                self.ram[start + i..start + i + unit]
                    .iter()
                    .any(|&b| b != 0xFF)
            }) {
                return Err(MirrorError::Reprogram {
                    offset: (start + i) as u32,
                });
            }
        }
        self.file.seek(offset)?;
        for (i, word) in data.chunks_exact(unit).enumerate() {
            let at = start + i * unit;
            let mut new = [0u8; WRITE_SIZE as usize];
            for (n, (&old, &d)) in new.iter_mut().zip(self.ram[at..at + unit].iter().zip(word)) {
                *n = old & d;
            }
            self.file.write(&new)?;
            self.ram[at..at + unit].copy_from_slice(&new);
        }
        self.counts.programs += 1;
        self.counts.program_bytes += data.len() as u32;
        Ok(())
    }

    fn erase(&mut self, sector: u32) -> Result<(), MirrorError> {
        if sector >= (SIZE / self.sector_size as usize) as u32 {
            return Err(MirrorError::OutOfBounds);
        }
        if self.read_only {
            return Err(MirrorError::ReadOnly);
        }
        self.count_op()?;
        let base = (sector * self.sector_size) as usize;
        self.file.seek(base as u32)?;
        let erased = [0xFFu8; ERASE_PIECE];
        for at in (base..base + self.sector_size as usize).step_by(ERASE_PIECE) {
            self.file.write(&erased)?;
            self.ram[at..at + ERASE_PIECE].fill(0xFF);
        }
        self.counts.erases += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), MirrorError> {
        Ok(())
    }
}

/// The same flash for the async store (feature `async`): each operation is the
/// blocking one above, after a program or an erase first yields once to the
/// executor, so the store's futures really are suspended in the middle of their
/// medium operations, as on an async flash driver.
#[cfg(feature = "async")]
impl monitor_events::AsyncMedium for MirrorFlash {
    type Error = MirrorError;

    fn geometry(&self) -> Geometry {
        Medium::geometry(self)
    }

    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), MirrorError> {
        Medium::read(self, offset, buf)
    }

    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), MirrorError> {
        embassy_futures::yield_now().await;
        Medium::program(self, offset, data)
    }

    async fn erase(&mut self, sector: u32) -> Result<(), MirrorError> {
        embassy_futures::yield_now().await;
        Medium::erase(self, sector)
    }

    async fn sync(&mut self) -> Result<(), MirrorError> {
        Medium::sync(self)
    }
}
