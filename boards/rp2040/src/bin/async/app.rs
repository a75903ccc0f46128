//! The async store on the flash partition declared in memory.x, running the
//! demo's steps (`monitor_events_demo::asynch::run`, the same source as the
//! blocking `run`: open, replay, push, acks) with every medium operation
//! awaited: `monitor_events::asynch::Journal` on `AsyncNorFlashMedium` over
//! embassy-rp's DMA flash driver.
//!
//! The same partition, geometry, configuration and log lines as the blocking
//! firmware (`src/app.rs`), so the two builds differ only in the path.

use embassy_rp::flash::{Async, Flash, ERASE_SIZE};
use embassy_rp::peripherals::FLASH;
use monitor_events::asynch::Journal;
use monitor_events::journal::{AckMode, Config};
use monitor_events::{Geometry, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_demo::Base;
use monitor_events_flash::AsyncNorFlashMedium;

/// Size of the QSPI flash (a Raspberry Pi Pico's W25Q16JV: 2 MiB).
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// The flash driver: reads by DMA; embassy-rp runs an erase or a program with
/// execute-in-place suspended, so on this internal flash those two do not yield
/// (an external SPI NOR behind an async driver would).
pub type PicoFlash = Flash<'static, FLASH, Async, FLASH_SIZE>;
/// The medium the journal runs on.
type PicoMedium = AsyncNorFlashMedium<PicoFlash>;

/// Sectors of the partition (memory.x: `MONITOR_EVENTS`, 16 x 4 KiB).
const SECTORS: u32 = 16;
/// Pending events the journal holds at most.
const N: usize = 16;
/// 4 KiB sectors, byte writes, without multiwrite (ack records): the blocking
/// firmware's geometry.
const GEOMETRY: Geometry = Geometry {
    sector_size: ERASE_SIZE as u32,
    sector_count: SECTORS,
    write_size: 1,
    multiwrite: false,
};
/// Checked at compile time, as in the blocking firmware.
const CONFIG: Config<N> = Config::new(GEOMETRY, MAX_ENCODED_LEN);
const _: () = assert!(matches!(CONFIG.ack_mode(), AckMode::Record));

/// Sizes for the size report (boards/size.py reads them from the ELF): the async
/// journal, its medium, a decoded event, the longest encoding and `N`.
#[used]
#[no_mangle]
static MONITOR_EVENTS_SIZES: [u32; 5] = [
    size_of::<Journal<PicoMedium, N>>() as u32,
    size_of::<PicoMedium>() as u32,
    size_of::<MonitorEvent>() as u32,
    MAX_ENCODED_LEN as u32,
    N as u32,
];

/// `defmt::panic!` with `$fmt` and `$args`, then `: ` and the library error `$e`
/// when the library formats its types (feature `store`); without it (`store-min`)
/// the message names the failed operation only, as the demo's.
macro_rules! fail {
    ($fmt:literal, $fmt_e:literal $(, $arg:expr)*; $e:expr) => {{
        #[cfg(feature = "store")]
        defmt::panic!($fmt_e $(, $arg)*, $e);
        #[cfg(not(feature = "store"))]
        {
            let _ = &$e;
            defmt::panic!($fmt $(, $arg)*);
        }
    }};
}

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

/// Binds the partition and runs the demo's steps on it through the async journal:
/// recovers, replays, pushes and acks (`monitor_events_demo::asynch::run`).
///
/// # Panics
/// With a defmt message on any error, as the blocking demo: typically
/// `NotAStore` from `open` when the partition holds something else.
pub async fn run(flash: PicoFlash) {
    let (base, sectors) = partition();
    defmt::assert_eq!(
        sectors,
        SECTORS,
        "memory.x: MONITOR_EVENTS must be {} sectors",
        SECTORS
    );
    let medium = match AsyncNorFlashMedium::new(flash, base, sectors) {
        Ok(m) => m,
        Err(e) => fail!(
            "partition at offset {=u32:#x}",
            "partition at offset {=u32:#x}: {}",
            base;
            e
        ),
    };
    monitor_events_demo::asynch::run(medium, CONFIG, Base::FlashOffset(base)).await;
}
