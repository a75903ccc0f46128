//! The store on the flash partition declared in memory.x. The demo that runs on it
//! (open, replay, push, acks) is `monitor_events_demo::run`, shared with the nRF52840.

use embassy_rp::flash::{Blocking, Flash, ERASE_SIZE, PAGE_SIZE};
use embassy_rp::peripherals::FLASH;
use monitor_events::journal::{AckMode, Config};
use monitor_events::{Geometry, MAX_ENCODED_LEN};
use monitor_events_demo::Base;
use monitor_events_flash::{NorFlashMedium, PagedWrites};

/// Size of the QSPI flash (a Raspberry Pi Pico's W25Q16JV: 2 MiB).
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// The flash driver.
pub type PicoFlash = Flash<'static, FLASH, Blocking, FLASH_SIZE>;

/// The flash driver as the medium uses it: every write handed to the driver as
/// whole 256 B pages, the padding the driver would do itself done without its
/// slice-index panics (whose messages link `core::fmt`'s number code).
pub type PagedFlash = PagedWrites<PicoFlash, PAGE_SIZE>;

/// Sectors of the partition (memory.x: `MONITOR_EVENTS`, 16 x 4 KiB).
const SECTORS: u32 = 16;
/// Pending events the journal holds at most.
const N: usize = 16;
/// 4 KiB sectors, byte writes. Declared without multiwrite: each unit is
/// programmed once between erases and acks are appended as records, the mode for
/// ECC flash. (embassy-rp 0.10 does implement `MultiwriteNorFlash`, so
/// `NorFlashMedium::new_multiwrite` and in-place acks would work too; this board
/// shows the other mode.)
const GEOMETRY: Geometry = Geometry {
    sector_size: ERASE_SIZE as u32,
    sector_count: SECTORS,
    write_size: 1,
    multiwrite: false,
};
/// Checked at compile time: the partition can always hold `N` events of the
/// largest size plus what compaction needs.
const CONFIG: Config<N> = Config::new(GEOMETRY, MAX_ENCODED_LEN);
const _: () = assert!(matches!(CONFIG.ack_mode(), AckMode::Record));

/// Sizes for the size report (boards/size.py reads them from the ELF): the
/// journal, its medium, a decoded event, the longest encoding and `N`; see
/// `monitor_events_demo::sizes`.
#[used]
#[no_mangle]
static MONITOR_EVENTS_SIZES: [u32; 5] =
    monitor_events_demo::sizes::<NorFlashMedium<PagedFlash>, N>();

extern "C" {
    static __monitor_events_start: u8;
    static __monitor_events_end: u8;
}

/// The partition's offset in the flash and its sectors, from the linker symbols
/// (absolute XIP addresses; the driver takes offsets from the flash start).
fn partition() -> (u32, u32) {
    // Only the addresses of the linker symbols are taken, never their content.
    let start = &raw const __monitor_events_start as u32;
    let end = &raw const __monitor_events_end as u32;
    (
        start - embassy_rp::flash::FLASH_BASE as u32,
        (end - start) / ERASE_SIZE as u32,
    )
}

/// Binds the partition and runs the demo on it: recovers, replays, pushes and acks.
pub fn run(flash: PicoFlash) {
    let (base, sectors) = partition();
    defmt::assert_eq!(
        sectors,
        SECTORS,
        "memory.x: MONITOR_EVENTS must be {} sectors",
        SECTORS
    );
    let medium = match NorFlashMedium::new(PagedFlash::new(flash), base, sectors) {
        Ok(m) => m,
        // The medium's error is printed when the library's types are (feature `store`).
        #[cfg(feature = "store")]
        Err(e) => defmt::panic!("partition at offset {=u32:#x}: {}", base, e),
        #[cfg(not(feature = "store"))]
        Err(_) => defmt::panic!("partition at offset {=u32:#x}", base),
    };
    // Panics if `open` fails, typically with NotAStore: the sectors hold something
    // else. Erase them (`probe-rs erase --chip RP2040`) if that is expected.
    monitor_events_demo::run(medium, CONFIG, Base::FlashOffset(base));
}
