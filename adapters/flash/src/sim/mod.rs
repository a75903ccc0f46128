//! [`SimFlash`]: a simulated NOR flash for host tests and benchmarks, implementing
//! [`Medium`] directly, with power cuts, torn operations and device-time counters.
//!
//! # Rules it enforces
//!
//! | rule | error |
//! |---|---|
//! | a range leaves the medium, or the sector number is too large | [`SimError::OutOfBounds`] |
//! | a program's offset or length is not a multiple of `write_size` | [`SimError::NotAligned`] |
//! | a program unit is programmed more often than allowed between erases: once, or twice on `multiwrite` media | [`SimError::WriteCount`] |
//! | a program would set a bit (0 → 1) | [`SimError::SetsBits`] |
//! | the medium is dead after a power cut | [`SimError::PowerCut`] |
//!
//! A rejected operation changes nothing and is not counted. Erased bytes read
//! `0xFF`; a program ANDs its data in.
//!
//! # Power cuts
//!
//! Programs and erases are numbered from 0 as they are issued ([`op_index`]:
//! only valid ones count). [`cut_after(k, torn)`](SimFlash::cut_after) tears the
//! `k`-th program or erase from now (0: the very next) as [`Torn`] says; that
//! operation and every later one, reads and syncs included, then fails with
//! [`SimError::PowerCut`] until [`power_on`](SimFlash::power_on).
//!
//! | [`Torn`] | program | erase |
//! |---|---|---|
//! | `NotStarted` | nothing changes | nothing changes |
//! | `NoBits` | no bit changes (but the units count as programmed) | nothing changes |
//! | `Completed` | fully applied | fully applied |
//! | `RandomSubset(seed)` | a seeded random subset of the intended 1 → 0 transitions | the sector is filled with seeded random bytes |
//! | `Prefix(seed)` | a seeded number of leading units fully programmed, the rest untouched | a seeded number of leading bytes erased, the rest unchanged |
//!
//! Write counts after a cut: a torn program counts as a program of its units
//! (except `NotStarted`); after a random erase, and in an image given to
//! [`from_image`](SimFlash::from_image), a unit counts as programmed once unless
//! it reads all `0xFF`.
//!
//! # Exhaustive crash points: the fork hook
//!
//! To cut power at every operation of a workload without re-running it from the
//! start each time, install a hook with [`set_fork_hook`](SimFlash::set_fork_hook).
//! It is called before each valid program or erase is applied, with the flash
//! as it is before the operation and the operation. The hook may
//! [`clone`](Clone::clone) the flash (the clone has no hook), apply the operation
//! torn to the clone with [`apply_torn`](SimFlash::apply_torn), then open the
//! store on the clone and check it. Nothing is stored per operation, so a
//! workload of many thousands of operations on a 64 KiB image costs one clone per
//! check, not a trace.
//!
//! ```
//! use monitor_events::Medium;
//! use monitor_events_flash::sim::{SimFlash, Torn};
//! use std::{cell::RefCell, rc::Rc};
//!
//! let mut flash = SimFlash::default();
//! let forks = Rc::new(RefCell::new(Vec::new()));
//! let sink = forks.clone();
//! flash.set_fork_hook(move |before, op| {
//!     let mut fork = before.clone();
//!     fork.apply_torn(op, Torn::RandomSubset(7)).unwrap();
//!     sink.borrow_mut().push(fork); // or: open the store on `fork` and check it
//! });
//! flash.program(0, &[0, 0, 0, 0]).unwrap();
//! flash.erase(0).unwrap();
//! assert_eq!(forks.borrow().len(), 2);
//! ```
//!
//! [`op_index`]: SimFlash::op_index

mod cuts;
mod profile;
mod shared;

pub use cuts::{is_power_cut, panic_text, quiet_power_cuts};
pub use profile::{Costs, Profile, Stats};
pub use shared::SharedFlash;

use crate::workload::Pcg32;
use monitor_events::{Geometry, Medium};
use std::path::Path;

/// The error of a [`SimFlash`] operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SimError {
    /// The range leaves the medium, or the sector number is not below
    /// `sector_count`.
    OutOfBounds,
    /// A program's offset or length is not a multiple of `write_size`.
    NotAligned,
    /// A program unit would be programmed more often than the medium allows
    /// between two erases.
    WriteCount,
    /// A program would turn a 0 bit into 1.
    SetsBits,
    /// Power was cut: the medium answers nothing until `power_on`.
    PowerCut,
    /// [`SimFlash::from_image`]: the image's length is not the geometry's size.
    ImageSize,
}

impl SimError {
    /// The variant's name: what a panic message of a build without `core::fmt`
    /// shows ([`Medium::error_name`]).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::OutOfBounds => "OutOfBounds",
            Self::NotAligned => "NotAligned",
            Self::WriteCount => "WriteCount",
            Self::SetsBits => "SetsBits",
            Self::PowerCut => "PowerCut",
            Self::ImageSize => "ImageSize",
        }
    }
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::OutOfBounds => "out of bounds",
            Self::NotAligned => "not aligned to the write size",
            Self::WriteCount => "program unit already programmed as often as allowed",
            Self::SetsBits => "program would set a bit from 0 to 1",
            Self::PowerCut => "power cut",
            Self::ImageSize => "image size does not match the geometry",
        })
    }
}

impl std::error::Error for SimError {}

impl embedded_storage::nor_flash::NorFlashError for SimError {
    fn kind(&self) -> embedded_storage::nor_flash::NorFlashErrorKind {
        use embedded_storage::nor_flash::NorFlashErrorKind as Kind;
        match self {
            Self::OutOfBounds => Kind::OutOfBounds,
            Self::NotAligned => Kind::NotAligned,
            _ => Kind::Other,
        }
    }
}

/// How a power cut leaves the operation it interrupts (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Torn {
    /// Power died before the operation started.
    NotStarted,
    /// The operation fully happened, then power died.
    Completed,
    /// A program changed no bit; an erase changed nothing.
    NoBits,
    /// A program made a random subset of its 1 → 0 transitions; an erase left
    /// random bytes in the whole sector. The seed makes it reproducible.
    RandomSubset(u64),
    /// A program completed a seeded number of its leading units (0 to all) and
    /// left the rest untouched; an erase erased a seeded number of the sector's
    /// leading bytes and left the rest as it was.
    Prefix(u64),
}

impl Torn {
    /// `NotStarted`, `Completed`, `NoBits`, and `RandomSubset` and `Prefix` for
    /// each of `seeds`.
    pub fn variants(seeds: impl IntoIterator<Item = u64>) -> Vec<Torn> {
        let mut all = vec![Torn::NotStarted, Torn::Completed, Torn::NoBits];
        for seed in seeds {
            all.push(Torn::RandomSubset(seed));
            all.push(Torn::Prefix(seed));
        }
        all
    }

    /// A seeded choice among every variant: what a test that cuts power at random
    /// draws. `pick` is any random number (its low bits choose the variant, the
    /// rest seeds it).
    pub fn random(pick: u64) -> Torn {
        match pick % 5 {
            0 => Torn::NotStarted,
            1 => Torn::Completed,
            2 => Torn::NoBits,
            3 => Torn::RandomSubset(pick / 5),
            _ => Torn::Prefix(pick / 5),
        }
    }
}

/// A program or erase, as the fork hook sees it and
/// [`apply_torn`](SimFlash::apply_torn) takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `program(offset, data)`.
    Program {
        /// Byte offset.
        offset: u32,
        /// The bytes to program.
        data: Vec<u8>,
    },
    /// `erase(sector)`.
    Erase {
        /// Sector number.
        sector: u32,
    },
}

/// Called before each valid program or erase with the flash before it and the
/// operation (see the module doc).
pub type ForkHook = Box<dyn FnMut(&SimFlash, &Op)>;

/// A borrowed [`Op`].
#[derive(Clone, Copy)]
enum OpRef<'a> {
    Program { offset: u32, data: &'a [u8] },
    Erase { sector: u32 },
}

impl Op {
    fn borrow(&self) -> OpRef<'_> {
        match self {
            Op::Program { offset, data } => OpRef::Program {
                offset: *offset,
                data,
            },
            Op::Erase { sector } => OpRef::Erase { sector: *sector },
        }
    }
}

impl OpRef<'_> {
    fn to_owned(self) -> Op {
        match self {
            OpRef::Program { offset, data } => Op::Program {
                offset,
                data: data.to_vec(),
            },
            OpRef::Erase { sector } => Op::Erase { sector },
        }
    }
}

/// A simulated NOR flash (see the module doc for its rules and power cuts).
pub struct SimFlash {
    geometry: Geometry,
    image: Vec<u8>,
    /// Programs of each program unit since its sector's last erase.
    writes: Vec<u8>,
    stats: Stats,
    ops: u64,
    cut: Option<(u64, Torn)>,
    dead: bool,
    fork_hook: Option<ForkHook>,
}

impl Clone for SimFlash {
    /// Clones the image, write counts, counters and power state; not the fork hook.
    fn clone(&self) -> Self {
        Self {
            geometry: self.geometry,
            image: self.image.clone(),
            writes: self.writes.clone(),
            stats: self.stats.clone(),
            ops: self.ops,
            cut: self.cut,
            dead: self.dead,
            fork_hook: None,
        }
    }
}

impl core::fmt::Debug for SimFlash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimFlash")
            .field("geometry", &self.geometry)
            .field("op_index", &self.ops)
            .field("cut", &self.cut)
            .field("dead", &self.dead)
            .field("fork_hook", &self.fork_hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for SimFlash {
    /// An erased flash of [`BENCH_GEOMETRY`](Self::BENCH_GEOMETRY).
    fn default() -> Self {
        Self::new(Self::BENCH_GEOMETRY)
    }
}

impl SimFlash {
    /// docs/BENCH.md's flash: 16 sectors of 4096 B, 4 B program unit, multiwrite (the
    /// peer's queue needs it).
    pub const BENCH_GEOMETRY: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 16,
        write_size: 4,
        multiwrite: true,
    };

    /// An erased flash.
    ///
    /// # Panics
    ///
    /// If the geometry breaks [`Geometry`]'s rules: `sector_size` and `write_size`
    /// powers of two, `write_size` at most 32 and at most `sector_size`, at least
    /// one sector, the size fitting in `u32`.
    pub fn new(geometry: Geometry) -> Self {
        let Geometry {
            sector_size,
            sector_count,
            write_size,
            ..
        } = geometry;
        assert!(
            sector_size.is_power_of_two()
                && write_size.is_power_of_two()
                && write_size <= 32
                && write_size <= sector_size
                && sector_count > 0
                && sector_size.checked_mul(sector_count).is_some(),
            "SimFlash: invalid geometry {geometry:?}"
        );
        Self {
            geometry,
            image: vec![0xFF; geometry.size() as usize],
            writes: vec![0; (geometry.size() / write_size) as usize],
            stats: Stats::new(sector_count),
            ops: 0,
            cut: None,
            dead: false,
            fork_hook: None,
        }
    }

    /// A flash holding `image` (for instance a dump of a device); write counts as
    /// described in the module doc.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new), on an invalid geometry.
    pub fn from_image(geometry: Geometry, image: Vec<u8>) -> Result<Self, SimError> {
        let mut flash = Self::new(geometry);
        if image.len() != flash.image.len() {
            return Err(SimError::ImageSize);
        }
        flash.image = image;
        flash.recount(0..flash.image.len());
        Ok(flash)
    }

    /// Writes the raw image to `path` (the format `monitor-events inspect` reads
    /// from a device dump too).
    pub fn save(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, &self.image)
    }

    /// Reads a raw image saved by [`save`](Self::save) or dumped from a device.
    pub fn load(path: impl AsRef<Path>, geometry: Geometry) -> std::io::Result<Self> {
        let image = std::fs::read(path)?;
        Self::from_image(geometry, image)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// The whole content, sector 0 first.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Inverts bit `bit % 8` of byte `bit / 8`, as bit rot would (no rule checked,
    /// nothing counted).
    ///
    /// # Panics
    ///
    /// If `bit` is not below 8 × the size.
    pub fn flip_bit(&mut self, bit: u64) {
        let byte = usize::try_from(bit / 8)
            .ok()
            .filter(|&b| b < self.image.len())
            .unwrap_or_else(|| panic!("SimFlash::flip_bit: bit {bit} outside the image"));
        self.image[byte] ^= 1 << (bit % 8);
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Sets every counter to zero (not [`op_index`](Self::op_index)).
    pub fn reset_stats(&mut self) {
        self.stats = Stats::new(self.geometry.sector_count);
    }

    /// Valid programs and erases issued so far, the torn one included.
    pub fn op_index(&self) -> u64 {
        self.ops
    }

    /// Arms a power cut: the `k`-th program or erase from now (0: the next one) is
    /// torn as `torn` says, then the medium is dead. Replaces an armed cut.
    pub fn cut_after(&mut self, k: u64, torn: Torn) {
        self.cut = Some((self.ops + k, torn));
    }

    /// Restores power: the medium answers again, with the image as the cut left
    /// it. Disarms a cut that has not fired.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut = None;
    }

    /// Whether a power cut has fired and [`power_on`](Self::power_on) not yet been
    /// called.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Installs the hook called before each valid program or erase (see the module
    /// doc), replacing any earlier one.
    pub fn set_fork_hook(&mut self, hook: impl FnMut(&SimFlash, &Op) + 'static) {
        self.fork_hook = Some(Box::new(hook));
    }

    /// Removes the fork hook and returns it.
    pub fn take_fork_hook(&mut self) -> Option<ForkHook> {
        self.fork_hook.take()
    }

    /// Applies `op` to the image as a power cut during it would leave it (see the
    /// module doc), checking the same rules as the medium operation. No counter,
    /// no hook, no power state is touched.
    pub fn apply_torn(&mut self, op: &Op, torn: Torn) -> Result<(), SimError> {
        let op = op.borrow();
        self.check(op)?;
        self.apply(op, torn);
        Ok(())
    }

    fn max_writes(&self) -> u8 {
        if self.geometry.multiwrite {
            2
        } else {
            1
        }
    }

    fn check_range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, SimError> {
        let start = offset as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.image.len() => Ok(start..end),
            _ => Err(SimError::OutOfBounds),
        }
    }

    fn sector_range(&self, sector: u32) -> core::ops::Range<usize> {
        let size = self.geometry.sector_size as usize;
        sector as usize * size..(sector as usize + 1) * size
    }

    /// Every rule but power.
    fn check(&self, op: OpRef<'_>) -> Result<(), SimError> {
        match op {
            OpRef::Program { offset, data } => {
                let range = self.check_range(offset, data.len())?;
                let unit = self.geometry.write_size as usize;
                if range.start % unit != 0 || data.len() % unit != 0 {
                    return Err(SimError::NotAligned);
                }
                let first = range.start / unit;
                for (i, chunk) in data.chunks_exact(unit).enumerate() {
                    if self.writes[first + i] >= self.max_writes() {
                        return Err(SimError::WriteCount);
                    }
                    let old = &self.image[range.start + i * unit..][..unit];
                    if old.iter().zip(chunk).any(|(&o, &d)| d & !o != 0) {
                        return Err(SimError::SetsBits);
                    }
                }
                Ok(())
            }
            OpRef::Erase { sector } => {
                if sector < self.geometry.sector_count {
                    Ok(())
                } else {
                    Err(SimError::OutOfBounds)
                }
            }
        }
    }

    /// Applies a checked operation, torn as `torn` says.
    fn apply(&mut self, op: OpRef<'_>, torn: Torn) {
        let unit = self.geometry.write_size as usize;
        match (op, torn) {
            (_, Torn::NotStarted) | (OpRef::Erase { .. }, Torn::NoBits) => {}
            (OpRef::Program { offset, data }, _) => {
                let start = offset as usize;
                for count in &mut self.writes[start / unit..(start + data.len()) / unit] {
                    *count += 1;
                }
                let target = &mut self.image[start..start + data.len()];
                match torn {
                    Torn::Completed => {
                        for (cell, &d) in target.iter_mut().zip(data) {
                            *cell &= d;
                        }
                    }
                    Torn::RandomSubset(seed) => {
                        let mut noise = vec![0; data.len()];
                        random_bytes(seed, &mut noise);
                        for ((cell, &d), &r) in target.iter_mut().zip(data).zip(&noise) {
                            *cell &= !(*cell & !d & r);
                        }
                    }
                    Torn::Prefix(seed) => {
                        let units = data.len() / unit;
                        let done = prefix_len(seed, units) * unit;
                        for (cell, &d) in target[..done].iter_mut().zip(data) {
                            *cell &= d;
                        }
                    }
                    Torn::NoBits | Torn::NotStarted => {}
                }
            }
            (OpRef::Erase { sector }, _) => {
                let range = self.sector_range(sector);
                match torn {
                    Torn::RandomSubset(seed) => random_bytes(seed, &mut self.image[range.clone()]),
                    Torn::Prefix(seed) => {
                        let done = prefix_len(seed, range.len());
                        self.image[range.start..range.start + done].fill(0xFF);
                    }
                    _ => self.image[range.clone()].fill(0xFF),
                }
                self.recount(range);
            }
        }
    }

    /// Write counts of the units in `range` from their content: 0 if erased, else 1.
    fn recount(&mut self, range: core::ops::Range<usize>) {
        let unit = self.geometry.write_size as usize;
        for (i, chunk) in self.image[range.clone()].chunks_exact(unit).enumerate() {
            self.writes[range.start / unit + i] = u8::from(chunk.iter().any(|&b| b != 0xFF));
        }
    }

    fn alive(&self) -> Result<(), SimError> {
        if self.dead {
            Err(SimError::PowerCut)
        } else {
            Ok(())
        }
    }

    /// The path of every program and erase: rules, hook, power cut, apply.
    fn operate(&mut self, op: OpRef<'_>) -> Result<(), SimError> {
        self.alive()?;
        self.check(op)?;
        if let Some(mut hook) = self.fork_hook.take() {
            hook(self, &op.to_owned());
            self.fork_hook.get_or_insert(hook);
        }
        let index = self.ops;
        self.ops += 1;
        match self.cut {
            Some((at, torn)) if at == index => {
                self.cut = None;
                self.apply(op, torn);
                self.dead = true;
                Err(SimError::PowerCut)
            }
            _ => {
                self.apply(op, Torn::Completed);
                match op {
                    OpRef::Program { offset, data } => self.stats.count_program(offset, data.len()),
                    OpRef::Erase { sector } => self.stats.count_erase(sector),
                }
                Ok(())
            }
        }
    }
}

/// How many of `len` leading units or bytes a `Prefix(seed)` cut completes:
/// 0 to `len`, seeded.
fn prefix_len(seed: u64, len: usize) -> usize {
    (Pcg32::new(seed).next_u32() as usize) % (len + 1)
}

/// Fills `out` with the PCG32 stream of `seed`, four little-endian bytes per step.
fn random_bytes(seed: u64, out: &mut [u8]) {
    let mut rng = Pcg32::new(seed);
    for chunk in out.chunks_mut(4) {
        let word = rng.next_u32().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

impl Medium for SimFlash {
    type Error = SimError;

    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        self.alive()?;
        let range = self.check_range(offset, buf.len())?;
        buf.copy_from_slice(&self.image[range]);
        self.stats.count_read(buf.len());
        Ok(())
    }

    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        self.operate(OpRef::Program { offset, data })
    }

    fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        self.operate(OpRef::Erase { sector })
    }

    fn sync(&mut self) -> Result<(), SimError> {
        self.alive()?;
        self.stats.syncs += 1;
        Ok(())
    }
}

/// The simulator as an async medium: each operation completes when first polled,
/// with the same effects, counts and cuts as through [`Medium`].
#[cfg(feature = "async")]
impl monitor_events::AsyncMedium for SimFlash {
    type Error = SimError;

    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        Medium::read(self, offset, buf)
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        Medium::program(self, offset, data)
    }
    async fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        Medium::erase(self, sector)
    }
    async fn sync(&mut self) -> Result<(), SimError> {
        Medium::sync(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(multiwrite: bool) -> SimFlash {
        SimFlash::new(Geometry {
            sector_size: 64,
            sector_count: 4,
            write_size: 4,
            multiwrite,
        })
    }

    /// I7: a build without `core::fmt` names each error as its `Debug` output
    /// would.
    #[test]
    fn i7_error_names_match_debug() {
        use SimError::*;
        for e in [
            OutOfBounds,
            NotAligned,
            WriteCount,
            SetsBits,
            PowerCut,
            ImageSize,
        ] {
            assert_eq!(<SimFlash as Medium>::error_name(&e), format!("{e:?}"));
        }
    }

    #[test]
    fn default_is_benchs_flash() {
        let f = SimFlash::default();
        assert_eq!(f.geometry(), SimFlash::BENCH_GEOMETRY);
        assert_eq!(f.image().len(), 65536);
        assert!(f.image().iter().all(|&b| b == 0xFF));
        assert_eq!(f.stats().sector_erases, vec![0; 16]);
    }

    #[test]
    #[should_panic(expected = "invalid geometry")]
    fn odd_geometry_is_refused() {
        SimFlash::new(Geometry {
            sector_size: 100,
            sector_count: 1,
            write_size: 4,
            multiwrite: false,
        });
    }

    #[test]
    fn rejected_operations_change_nothing() {
        let mut f = small(false);
        f.program(0, &[0xF0; 4]).unwrap();
        let before = f.clone();
        assert_eq!(f.program(0, &[0; 4]), Err(SimError::WriteCount));
        assert_eq!(f.program(4, &[0; 2]), Err(SimError::NotAligned));
        assert_eq!(f.program(256, &[0; 4]), Err(SimError::OutOfBounds));
        assert_eq!(f.erase(4), Err(SimError::OutOfBounds));
        assert_eq!(f.image(), before.image());
        assert_eq!(f.stats(), before.stats());
        assert_eq!(f.op_index(), 1);
    }

    #[test]
    fn random_subset_only_clears_intended_bits() {
        let mut f = small(true);
        f.program(0, &[0b1111_0000; 4]).unwrap();
        let op = Op::Program {
            offset: 0,
            data: vec![0b0011_0000; 4],
        };
        for seed in 0..32 {
            let mut fork = f.clone();
            fork.apply_torn(&op, Torn::RandomSubset(seed)).unwrap();
            for &b in &fork.image()[..4] {
                // Bits 0..4 stay 0, bits 4,5 stay 1, bits 6,7 may go either way.
                assert_eq!(b & 0b0011_1111, 0b0011_0000, "seed {seed}");
            }
            assert!(fork.image()[4..].iter().all(|&b| b == 0xFF));
        }
    }

    #[test]
    fn prefix_programs_leading_units_and_erases_leading_bytes() {
        let mut f = small(true);
        let op = Op::Program {
            offset: 8,
            data: vec![0; 16],
        };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut fork = f.clone();
            fork.apply_torn(&op, Torn::Prefix(seed)).unwrap();
            let zeros = fork.image().iter().filter(|&&b| b == 0).count();
            assert_eq!(zeros % 4, 0, "whole units only (seed {seed})");
            assert!(fork.image()[8..8 + zeros].iter().all(|&b| b == 0));
            assert!(fork.image()[8 + zeros..].iter().all(|&b| b == 0xFF));
            assert!(fork.image()[..8].iter().all(|&b| b == 0xFF));
            seen.insert(zeros);
        }
        assert_eq!(seen.len(), 5, "every prefix from none to all: {seen:?}");
        f.program(0, &[0; 64]).unwrap();
        let erase = Op::Erase { sector: 0 };
        for seed in 0..16 {
            let mut fork = f.clone();
            fork.apply_torn(&erase, Torn::Prefix(seed)).unwrap();
            let erased = fork.image()[..64]
                .iter()
                .take_while(|&&b| b == 0xFF)
                .count();
            assert!(
                fork.image()[erased..64].iter().all(|&b| b == 0),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn clone_drops_the_hook() {
        let mut f = small(false);
        f.set_fork_hook(|_, _| {});
        assert!(format!("{f:?}").contains("fork_hook: true"));
        assert!(format!("{:?}", f.clone()).contains("fork_hook: false"));
        assert!(f.take_fork_hook().is_some());
        assert!(format!("{f:?}").contains("fork_hook: false"));
    }
}
