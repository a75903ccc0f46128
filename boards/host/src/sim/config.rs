//! What `simulate` runs: the flash, the store's capacity and the fault schedule.

use monitor_events::journal::{Auth, ConfigError};
use monitor_events::{AckMode, Config, Geometry};
use monitor_events_flash::sim::{Profile, SimFlash};

use crate::sim::rng::Rng;

/// Pending events the device can hold: the most that fit the capacity check for
/// 4 KiB sectors and events of up to `MAX_ENCODED_LEN` bytes (8 KiB sectors with
/// the authenticated journal's tags).
pub const PENDING: usize = 16;
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

/// What to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
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
    /// Sectors.
    pub sectors: u32,
    /// Bytes per sector.
    pub sector_size: u32,
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
            write_size: SimFlash::BENCH_GEOMETRY.write_size,
            trace: false,
        }
    }
}

impl SimConfig {
    /// The flash: `sectors` sectors of `sector_size` bytes, a `write_size` program unit;
    /// multiwrite for in-place acks, one program per word (as ECC flash) for ack
    /// records.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            multiwrite: self.ack_mode == AckMode::InPlace,
            sector_count: self.sectors,
            sector_size: self.sector_size,
            write_size: self.write_size,
        }
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
    pub fn config(&self) -> Result<Config<PENDING>, ConfigError> {
        let config = Config::<PENDING>::try_new(self.geometry(), monitor_events::MAX_ENCODED_LEN)?;
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
        let config = cfg.config().expect("the defaults fit");
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
        assert!(cfg.config().expect("fits").authenticated());
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
        assert!(cfg.config().is_err());
    }
}
