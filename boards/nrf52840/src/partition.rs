//! The monitor-events partition of the internal flash (memory.x: `MONITOR_EVENTS`,
//! 16 x 4 KiB) as a [`Medium`](monitor_events::Medium), and the journal's
//! configuration for it. Shared by both binaries: the demo (`app.rs`) and the
//! link over USB (`bin/link.rs`).

use embassy_nrf::nvmc::{Nvmc, PAGE_SIZE};
use monitor_events::journal::Config;
use monitor_events::{Geometry, MAX_ENCODED_LEN};
use monitor_events_flash::NorFlashMedium;

/// Pages of the partition (memory.x: `MONITOR_EVENTS`, 16 x 4 KiB).
const SECTORS: u32 = 16;
/// Pending events the journal holds at most.
pub const N: usize = 16;
/// The NVMC: 4 KiB pages, 4-byte words, a word may be written twice between erases
/// (nRF52840 `n_WRITE` = 2), which in-place acks need: one write for the record,
/// one to clear its ack byte.
const GEOMETRY: Geometry = Geometry {
    sector_size: PAGE_SIZE as u32,
    sector_count: SECTORS,
    write_size: 4,
    multiwrite: true,
};
/// Checked at compile time: the partition can always hold `N` events of the
/// largest size plus what compaction needs.
pub const CONFIG: Config<N> = Config::new(GEOMETRY, MAX_ENCODED_LEN);

/// The medium on the partition.
pub type Medium = NorFlashMedium<Nvmc<'static>>;

extern "C" {
    static __monitor_events_start: u8;
    static __monitor_events_end: u8;
}

/// The partition's flash offset and its pages, from the linker symbols.
fn partition() -> (u32, u32) {
    // Only the addresses of the linker symbols are taken, never their content.
    let start = &raw const __monitor_events_start as u32;
    let end = &raw const __monitor_events_end as u32;
    (start, (end - start) / PAGE_SIZE as u32)
}

/// Binds the partition declared in memory.x to the NVMC; returns the medium and
/// the partition's address. Panics (defmt) if memory.x does not declare the
/// 16 pages [`CONFIG`] was checked for.
pub fn medium(flash: Nvmc<'static>) -> (Medium, u32) {
    let (base, sectors) = partition();
    defmt::assert_eq!(
        sectors,
        SECTORS,
        "memory.x: MONITOR_EVENTS must be {} pages",
        SECTORS
    );
    match NorFlashMedium::new_multiwrite(flash, base, sectors) {
        Ok(m) => (m, base),
        // The medium's error is printed when the library's types are (feature `store`).
        #[cfg(feature = "store")]
        Err(e) => defmt::panic!("partition at {=u32:#x}: {}", base, e),
        #[cfg(not(feature = "store"))]
        Err(_) => defmt::panic!("partition at {=u32:#x}", base),
    }
}
