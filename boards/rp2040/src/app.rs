//! The store on the flash partition declared in memory.x.

use crate::monitor;
use embassy_rp::flash::{Blocking, Flash, ERASE_SIZE};
use embassy_rp::peripherals::FLASH;
use monitor_events::journal::{AckMode, AckOutcome, Config, Journal};
use monitor_events::{EventId, Geometry, MonitorEvent, MAX_ENCODED_LEN};
use monitor_events_flash::NorFlashMedium;

/// Size of the QSPI flash (a Raspberry Pi Pico's W25Q16JV: 2 MiB).
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;
/// The flash driver.
pub type PicoFlash = Flash<'static, FLASH, Blocking, FLASH_SIZE>;

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
/// New events per boot: a demo, not a flash-wearing loop.
const EVENTS_PER_BOOT: u64 = 6;

/// Sizes for the size report (boards/size.py reads them from the ELF): the
/// journal (all the RAM the store holds), its medium, a decoded event, the longest
/// encoding and the capacity `N`, in bytes and events.
#[used]
#[no_mangle]
static MONITOR_EVENTS_SIZES: [u32; 5] = [
    size_of::<Journal<NorFlashMedium<PicoFlash>, N>>() as u32,
    size_of::<NorFlashMedium<PicoFlash>>() as u32,
    size_of::<MonitorEvent>() as u32,
    MAX_ENCODED_LEN as u32,
    N as u32,
];

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

/// Recovers, replays, pushes and acks.
pub fn run(flash: PicoFlash) {
    let (base, sectors) = partition();
    defmt::assert_eq!(
        sectors,
        SECTORS,
        "memory.x: MONITOR_EVENTS must be {} sectors",
        SECTORS
    );
    let medium = match NorFlashMedium::new(flash, base, sectors) {
        Ok(m) => m,
        Err(e) => defmt::panic!("partition at offset {=u32:#x}: {}", base, e),
    };
    let mut journal = match Journal::open(medium, CONFIG) {
        Ok(j) => j,
        // Typically NotAStore: the sectors hold something else. Erase them
        // (`probe-rs erase --chip RP2040`) if that is expected.
        Err(e) => defmt::panic!("cannot open the journal at offset {=u32:#x}: {}", base, e),
    };
    defmt::info!(
        "journal at flash offset {=u32:#x}, {} x {} B, ack records: {} pending, next id {}",
        base,
        sectors,
        ERASE_SIZE,
        journal.pending_count(),
        journal.next_id()
    );

    // Replay: every event still pending after the restart goes to the consumer
    // again, in id order, then the consumer acks it.
    let mut body = [0u8; MAX_ENCODED_LEN];
    for &id in journal.pending_ids().iter() {
        let len = match journal.read(id, &mut body) {
            Ok(n) => n,
            Err(e) => defmt::panic!("read {}: {}", id, e),
        };
        match MonitorEvent::decode(&body[..len]) {
            Ok(event) => defmt::info!("replayed {}: {}", id, event.kind()),
            Err(e) => defmt::panic!("event {} does not decode: {}", id, e),
        }
        ack(&mut journal, id);
    }

    // The monitor produces events; each is durable when push returns.
    let first = journal.next_id().0;
    let mut pushed = [EventId(0); EVENTS_PER_BOOT as usize];
    for (k, slot) in pushed.iter_mut().enumerate() {
        let event = monitor::event(first + k as u64);
        let bytes = match event.encode(&mut body) {
            Ok(b) => b,
            Err(e) => defmt::panic!("encode: {}", e),
        };
        *slot = match journal.push(bytes) {
            Ok(id) => id,
            Err(e) => defmt::panic!("push: {}", e),
        };
        defmt::info!(
            "pushed {}: {} on channel {=u8}, {} B",
            *slot,
            event.kind(),
            event.channel().0[31],
            bytes.len()
        );
    }

    // The consumer acks out of order (odd positions first); the last two stay
    // pending and are replayed at the next boot.
    for &id in pushed
        .iter()
        .skip(1)
        .step_by(2)
        .chain(pushed.iter().step_by(2))
        .take(pushed.len() - 2)
    {
        ack(&mut journal, id);
    }
    defmt::info!(
        "{} pending (replayed at the next boot), next id {}",
        journal.pending_count(),
        journal.next_id()
    );
}

fn ack<const K: usize>(journal: &mut Journal<NorFlashMedium<PicoFlash>, K>, id: EventId) {
    match journal.ack(id) {
        Ok(AckOutcome::Acked) => defmt::info!("acked {}", id),
        Ok(AckOutcome::AlreadyAcked) => defmt::info!("{} was already acked", id),
        Err(e) => defmt::panic!("ack {}: {}", id, e),
    }
}
