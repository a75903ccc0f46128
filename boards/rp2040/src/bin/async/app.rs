//! The async store on the flash partition declared in memory.x, running the
//! demo's steps (`monitor_events_demo::run`: open, replay, push, acks) with every
//! medium operation awaited: `monitor_events::asynch::Journal` on
//! `AsyncNorFlashMedium` over embassy-rp's DMA flash driver.
//!
//! The same partition, geometry, configuration and log lines as the blocking
//! firmware (`src/app.rs`), so the two builds differ only in the path.

use embassy_rp::flash::{Async, Flash, ERASE_SIZE};
use embassy_rp::peripherals::FLASH;
use monitor_events::asynch::Journal;
use monitor_events::journal::{AckMode, AckOutcome, Config};
use monitor_events::{EventId, Geometry, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_demo::{monitor, EVENTS_PER_BOOT};
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
/// recovers, replays, pushes and acks.
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
    let mut journal: Journal<PicoMedium, N> = match Journal::open(medium, CONFIG).await {
        Ok(j) => j,
        Err(e) => fail!(
            "cannot open the journal at offset {=u32:#x}",
            "cannot open the journal at offset {=u32:#x}: {}",
            base;
            e
        ),
    };
    defmt::info!(
        "journal at flash offset {=u32:#x}, {} x {} B, ack records: {} pending, next id #{=u64}",
        base,
        GEOMETRY.sector_count,
        GEOMETRY.sector_size,
        journal.pending_count(),
        journal.next_id().0
    );

    // Replay: every event still pending after the restart goes to the consumer
    // again, in id order, then the consumer acks it.
    let mut body = [0u8; MAX_ENCODED_LEN];
    for _ in 0..journal.pending_count() {
        let Some((id, _)) = journal.pending().next() else {
            break;
        };
        let len = match journal.read(id, &mut body).await {
            Ok(n) => n,
            Err(e) => fail!("read #{=u64}", "read #{=u64}: {}", id.0; e),
        };
        match MonitorEvent::decode(&body[..len]) {
            Ok(event) => defmt::info!("replayed #{=u64}: {=str}", id.0, event.kind().as_str()),
            Err(e) => fail!(
                "event #{=u64} does not decode",
                "event #{=u64} does not decode: {}",
                id.0;
                e
            ),
        }
        ack(&mut journal, id).await;
    }

    // The monitor produces events; each is durable when push returns.
    let first = journal.next_id().0;
    let mut pushed = [EventId(0); EVENTS_PER_BOOT];
    for (k, slot) in pushed.iter_mut().enumerate() {
        let event = monitor::event(first + k as u64);
        let bytes = match event.encode(&mut body) {
            Ok(b) => b,
            Err(e) => fail!("encode", "encode: {}"; e),
        };
        *slot = match journal.push(bytes).await {
            Ok(id) => id,
            Err(e) => fail!("push", "push: {}"; e),
        };
        defmt::info!(
            "pushed #{=u64}: {=str} on channel {=u8}, {} B",
            slot.0,
            event.kind().as_str(),
            event.channel().0[31],
            bytes.len()
        );
    }

    // The consumer acks out of order (odd positions first, then even ones); the
    // last two stay pending and are replayed at the next boot.
    let odd = EVENTS_PER_BOOT / 2;
    for k in 0..EVENTS_PER_BOOT - 2 {
        let i = if k < odd { 2 * k + 1 } else { 2 * (k - odd) };
        ack(&mut journal, pushed[i]).await;
    }
    defmt::info!(
        "{} pending (replayed at the next boot), next id #{=u64}",
        journal.pending_count(),
        journal.next_id().0
    );
}

/// Acks `id` and logs the outcome.
async fn ack(journal: &mut Journal<PicoMedium, N>, id: EventId) {
    match journal.ack(id).await {
        Ok(AckOutcome::Acked) => defmt::info!("acked #{=u64}", id.0),
        Ok(AckOutcome::AlreadyAcked) => defmt::info!("#{=u64} was already acked", id.0),
        Err(e) => fail!("ack #{=u64}", "ack #{=u64}: {}", id.0; e),
    }
}
