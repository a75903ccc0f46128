//! The size report's peer row (`--no-default-features --features peer`): the same
//! boot as the demo's on the same partition, through sequential-storage's queue
//! instead of monitor-events. At every boot it hands every item still queued to the
//! consumer again and pops it (the ack), pushes [`EVENTS_PER_BOOT`] payloads, pops
//! them out of order (odd positions first, then even ones, by iterating from the
//! oldest item: the queue's only way to remove an item that is not the oldest) and
//! leaves the last two queued. Everything is logged with defmt, as the demo logs.
//!
//! What the queue does not do, and this row therefore does not pay for: typed
//! events (encoding, decoding, validation), preimage hashing, unique ids that
//! survive a restart, in-flight gating. The payloads are opaque bytes of W1's
//! average size (86 B), their first 8 bytes the id this boot gives them.
//!
//! The queue and the store do not read each other's pages: erase the partition
//! when switching between this build and the store's on a board (this boot
//! panics on any error the queue returns).

use embassy_embedded_hal::adapter::BlockingAsync;
use embassy_futures::block_on;
use embassy_nrf::nvmc::{Nvmc, PAGE_SIZE};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};

/// Items pushed per boot, as the demo's `EVENTS_PER_BOOT`.
const EVENTS_PER_BOOT: usize = 6;
/// W1's average payload, rounded.
const PAYLOAD: usize = 86;
/// Pages of the partition (memory.x: `MONITOR_EVENTS`).
const PAGES: u32 = 16;

/// The queue without a cache: the least RAM, as the store keeps none either.
type Queue = QueueStorage<BlockingAsync<Nvmc<'static>>, Cache<Uncached, Uncached, Uncached>>;

extern "C" {
    static __monitor_events_start: u8;
    static __monitor_events_end: u8;
}

/// Runs the boot described in the module docs on the partition declared in
/// memory.x. Panics (defmt) on any queue error.
pub fn run(flash: Nvmc<'static>) {
    // Only the addresses of the linker symbols are taken, never their content.
    let start = &raw const __monitor_events_start as u32;
    let end = &raw const __monitor_events_end as u32;
    defmt::assert_eq!(
        end - start,
        PAGES * PAGE_SIZE as u32,
        "memory.x: MONITOR_EVENTS must be {} pages",
        PAGES
    );
    let config = QueueConfig::new(start..end);
    let mut queue = QueueStorage::new(BlockingAsync::new(flash), config, Cache::new_uncached());
    block_on(boot(&mut queue));
}

async fn boot(queue: &mut Queue) {
    let mut buf = [0u8; PAYLOAD];

    // Replay: every item still queued goes to the consumer again, then is popped.
    let mut replayed = 0u32;
    loop {
        match queue.pop(&mut buf).await {
            Ok(Some(item)) => {
                defmt::info!("replayed #{=u64}: {} B", id_of(item), item.len());
                replayed += 1;
            }
            Ok(None) => break,
            Err(e) => defmt::panic!("pop: {}", e),
        }
    }
    defmt::info!("queue at {=u32:#x}: {} replayed", queue_base(), replayed);

    // Ids of this boot: the queue keeps none across restarts.
    let mut ids = [0u64; EVENTS_PER_BOOT];
    for (k, id) in ids.iter_mut().enumerate() {
        *id = k as u64 + 1;
        let payload = payload(*id);
        if let Err(e) = queue.push(&payload, false).await {
            defmt::panic!("push: {}", e);
        }
        defmt::info!("pushed #{=u64}: {} B", *id, payload.len());
    }

    // Acks out of order, as the demo: odd positions first, then even ones; the
    // last two stay queued and are replayed at the next boot.
    let odd = EVENTS_PER_BOOT / 2;
    for k in 0..EVENTS_PER_BOOT - 2 {
        let i = if k < odd { 2 * k + 1 } else { 2 * (k - odd) };
        ack(queue, ids[i], &mut buf).await;
    }
    defmt::info!("items queued (replayed at the next boot)");
}

/// Pops the queued item whose id is `id`, iterating from the oldest.
async fn ack(queue: &mut Queue, id: u64, buf: &mut [u8]) {
    let mut items = match queue.iter().await {
        Ok(items) => items,
        Err(e) => defmt::panic!("iter: {}", e),
    };
    loop {
        match items.next(buf).await {
            Ok(Some(entry)) => {
                if id_of(&entry) == id {
                    if let Err(e) = entry.pop().await {
                        defmt::panic!("pop #{=u64}: {}", id, e);
                    }
                    defmt::info!("acked #{=u64}", id);
                    return;
                }
            }
            Ok(None) => defmt::panic!("#{=u64} is not queued", id),
            Err(e) => defmt::panic!("iterate: {}", e),
        }
    }
}

/// The payload of `id`: its 8 bytes, then bytes derived from it.
fn payload(id: u64) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[..8].copy_from_slice(&id.to_le_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = (id as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    p
}

/// The id in an item's first 8 bytes (0 for a shorter item).
fn id_of(item: &[u8]) -> u64 {
    match item.get(..8) {
        Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        None => 0,
    }
}

fn queue_base() -> u32 {
    &raw const __monitor_events_start as u32
}
