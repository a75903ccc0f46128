//! What `simulate` runs: the scenario, the flash, the store's capacity and the
//! fault schedule.

use monitor_events::journal::{Auth, ConfigError};
use monitor_events::{AckMode, Config, Geometry};
use monitor_events_flash::sim::{Profile, SimFlash};

use crate::sim::rng::Rng;

/// Pending events the device can hold: the most that fit the capacity check for
/// 4 KiB sectors and events of up to `MAX_ENCODED_LEN` bytes (8 KiB sectors with
/// the authenticated journal's tags).
pub const PENDING: usize = 16;
/// The store capacities `simulate` is built for (`--pending`): `N` is a const
/// generic of the store, so each is a separate instance of the emulator.
pub const PENDING_CHOICES: [usize; 4] = [16, 64, 512, 4096];
/// Acks the consumer can hold at once: the largest of [`PENDING_CHOICES`], so a
/// consumer that takes every pending event never finds its barrier full.
pub const HELD: usize = 4096;
/// HTLC resolutions of the force-close burst: LDK's default limit of HTLCs per
/// direction of a channel.
pub const FORCE_CLOSE_HTLCS: u64 = 483;
/// The force-close scenario's store: room for 512 pending events.
pub const FORCE_CLOSE_PENDING: usize = 512;
/// The force-close scenario's journal sectors: one 4 KiB erase block each.
pub const FORCE_CLOSE_SECTOR_SIZE: u32 = 4096;
/// The force-close scenario's journal sectors: 128 of them (512 KiB of NOR); the
/// region, not one sector, bounds the capacity.
pub const FORCE_CLOSE_SECTORS: u32 = 128;
/// The erase block of W25Q-class SPI NOR and of the nRF52840's flash.
pub const ERASE_BLOCK: u32 = 4096;
/// Monitor updates the workload keeps in flight at once, and the store's `K`: the
/// channels that can have one in flight (no more than [`CHANNELS`], so the gate
/// table never fills).
pub const IN_FLIGHT: usize = 8;
/// Channels of the monitor.
pub const CHANNELS: usize = 8;
/// A brown-out's next cut lands within this many program or erase operations
/// after the restart (1 to this many).
pub const BROWNOUT_WINDOW: u64 = 6;
/// Most cuts in a row a brown-out makes before a push or an ack completes.
pub const BROWNOUT_MAX_BURST: u32 = 20;
/// Most cuts in a row without brown-outs: the journal's three spare sectors.
pub const DEFAULT_MAX_CUTS_IN_A_ROW: u32 = 3;
/// Sector size of the authenticated journal: its 16 B tags make 16 events of the
/// largest size too many for 4 KiB.
pub const AUTH_SECTOR_SIZE: u32 = 8192;
/// The region identity of an authenticated simulation (16 bytes).
pub const AUTH_REGION: [u8; 16] = *b"simulated-region";

/// What the monitor and the consumer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Steady traffic: HTLC claims and failures on eight channels, monitor
    /// updates, now and then a force-close, the consumer always there.
    Steady,
    /// One channel force-closes while the consumer is away: the device pushes
    /// [`FORCE_CLOSE_HTLCS`] HTLC resolutions of it at once, then the consumer
    /// comes back, takes them all and acks them in random order.
    ForceClose,
}

impl Scenario {
    /// The name `--scenario` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::ForceClose => "force-close",
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// The store's capacity `N`: one of [`PENDING_CHOICES`].
    pub pending: usize,
    /// Device-time profile to report.
    pub profile: Profile,
    /// Seed of everything random.
    pub seed: u64,
    /// Events to push (returned pushes).
    pub events: u64,
    /// Power cuts to inject, brown-out bursts included.
    pub cuts: u64,
    /// Clean restarts to do.
    pub restarts: u64,
    /// In-place acks (multiwrite NOR) or ack records (one program per word).
    pub ack_mode: AckMode,
    /// Most power cuts in a row before the store completes a push or an ack.
    pub max_cuts_in_a_row: u32,
    /// Percent chance that a power cut is followed by another within the first
    /// [`BROWNOUT_WINDOW`] program or erase operations after the restart (0: the
    /// original schedule, where one cut in five is followed by another within three
    /// operations of the reopen).
    pub brownout: u32,
    /// Authenticate every record and sector header (HMAC tags, ack records) with a
    /// device key derived from the seed.
    pub auth: bool,
    /// Journal sectors.
    pub sectors: u32,
    /// Bytes per journal sector.
    pub sector_size: u32,
    /// Bytes per erase block of the flash: a journal sector is
    /// `sector_size / erase_block` consecutive blocks (`Grouped`); equal to
    /// `sector_size` when the flash erases whole sectors.
    pub erase_block: u32,
    /// Program unit in bytes.
    pub write_size: u32,
    /// Print every power cut and recovery to stderr.
    pub trace: bool,
}

impl Default for SimConfig {
    /// The CLI's defaults: 20 000 events, 200 cuts, 50 restarts, in-place acks, 16
    /// sectors of 4 KiB with a 4 B program unit, no brown-outs.
    fn default() -> Self {
        SimConfig {
            scenario: Scenario::Steady,
            pending: PENDING,
            profile: Profile::Nrf52840,
            seed: 1,
            events: 20_000,
            cuts: 200,
            restarts: 50,
            ack_mode: AckMode::InPlace,
            max_cuts_in_a_row: DEFAULT_MAX_CUTS_IN_A_ROW,
            brownout: 0,
            auth: false,
            sectors: SimFlash::BENCH_GEOMETRY.sector_count,
            sector_size: SimFlash::BENCH_GEOMETRY.sector_size,
            erase_block: SimFlash::BENCH_GEOMETRY.sector_size,
            write_size: SimFlash::BENCH_GEOMETRY.write_size,
            trace: false,
        }
    }
}

impl SimConfig {
    /// The force-close scenario's defaults: 483 HTLC resolutions into a store of
    /// room for 512 on 128 sectors of 4 KiB (512 KiB) of W25Q-class SPI NOR (1 B
    /// program unit); 60 power cuts, 3 clean restarts.
    pub fn force_close() -> Self {
        SimConfig {
            scenario: Scenario::ForceClose,
            pending: FORCE_CLOSE_PENDING,
            profile: Profile::W25qSpi,
            events: FORCE_CLOSE_HTLCS,
            cuts: 60,
            restarts: 3,
            sectors: FORCE_CLOSE_SECTORS,
            sector_size: FORCE_CLOSE_SECTOR_SIZE,
            erase_block: ERASE_BLOCK,
            write_size: 1,
            ..SimConfig::default()
        }
    }

    /// The journal's view of the flash: `sectors` sectors of `sector_size` bytes, a
    /// `write_size` program unit; multiwrite for in-place acks, one program per
    /// word (as ECC flash) for ack records.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            multiwrite: self.ack_mode == AckMode::InPlace,
            sector_count: self.sectors,
            sector_size: self.sector_size,
            write_size: self.write_size,
        }
    }

    /// Erase blocks per journal sector.
    pub fn blocks(&self) -> u32 {
        self.sector_size / self.erase_block.max(1)
    }

    /// The simulated flash itself: [`geometry`](Self::geometry) in erase blocks.
    /// `None` if the erase block does not divide the sector into a power of two of
    /// blocks, or is smaller than the program unit.
    pub fn flash_geometry(&self) -> Option<Geometry> {
        let g = self.geometry();
        let ok = self.erase_block.is_power_of_two()
            && self.erase_block <= self.sector_size
            && self.erase_block >= self.write_size
            && self.sector_size % self.erase_block == 0
            && self.blocks().is_power_of_two();
        let sector_count = self.sectors.checked_mul(self.blocks())?;
        ok.then_some(Geometry {
            sector_size: self.erase_block,
            sector_count,
            ..g
        })
    }

    /// The device key of an authenticated run: derived from the seed, so a run
    /// is reproducible and never shares a key with another seed's.
    pub fn auth_key(&self) -> Option<Auth> {
        self.auth.then(|| {
            let mut rng = Rng::new(self.seed ^ 0x6b65_795f_6b65_795f);
            Auth::new(rng.bytes32(), AUTH_REGION)
        })
    }

    /// The journal's configuration for [`geometry`](Self::geometry), events of up
    /// to `MAX_ENCODED_LEN` bytes, the ack mode and the key.
    pub fn config<const N: usize>(&self) -> Result<Config<N>, ConfigError> {
        let config = Config::<N>::try_new(self.geometry(), monitor_events::MAX_ENCODED_LEN)?;
        match self.auth_key() {
            // An authenticated journal acks with records: `ack_mode` says so already.
            Some(auth) => config.with_auth(auth),
            None => config.with_ack_mode(self.ack_mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_flash_is_the_bench_geometry() {
        let cfg = SimConfig::default();
        assert_eq!(cfg.geometry(), SimFlash::BENCH_GEOMETRY);
        let config = cfg.config::<PENDING>().expect("the defaults fit");
        assert_eq!(cfg.flash_geometry(), Some(cfg.geometry()));
        assert!(!config.authenticated());
    }

    #[test]
    fn auth_uses_record_acks_and_a_key_per_seed() {
        let cfg = SimConfig {
            auth: true,
            ack_mode: AckMode::Record,
            sector_size: AUTH_SECTOR_SIZE,
            ..SimConfig::default()
        };
        assert!(!cfg.geometry().multiwrite);
        assert!(cfg.config::<PENDING>().expect("fits").authenticated());
        let other = SimConfig {
            seed: 2,
            ..cfg.clone()
        };
        assert_ne!(cfg.auth_key(), other.auth_key());
        assert_eq!(cfg.auth_key(), cfg.clone().auth_key());
    }

    #[test]
    fn a_geometry_the_journal_refuses_is_an_error_not_a_panic() {
        let cfg = SimConfig {
            sectors: 1,
            ..SimConfig::default()
        };
        assert!(cfg.config::<PENDING>().is_err());
    }

    /// The force-close store: 512 events of the largest size on 128 sectors of
    /// 4 KiB, the region bounding the capacity; not on 16 of them; grouped
    /// sectors (`--sector-size`) still work.
    #[test]
    fn force_close_fits_512_in_the_region() {
        let cfg = SimConfig::force_close();
        assert_eq!(cfg.blocks(), 1);
        let flash = cfg.flash_geometry().expect("a valid geometry");
        assert_eq!((flash.sector_size, flash.sector_count), (4096, 128));
        assert!(cfg
            .config::<FORCE_CLOSE_PENDING>()
            .expect("512 fit")
            .region_bounded());
        let few = SimConfig {
            sectors: 16,
            ..cfg.clone()
        };
        assert!(few.config::<FORCE_CLOSE_PENDING>().is_err());
        let grouped = SimConfig {
            sectors: 4,
            sector_size: 128 << 10,
            ..cfg.clone()
        };
        assert_eq!(grouped.blocks(), 32);
        assert!(grouped.config::<FORCE_CLOSE_PENDING>().is_ok());
        let odd = SimConfig {
            erase_block: 3 * 1024,
            ..grouped
        };
        assert_eq!(odd.flash_geometry(), None);
    }
}
