//! The journal and the typed event store as this firmware configures them, and
//! the checks every mode shares.

use crate::events::body_for;
use crate::mirror::{MirrorFlash, SECTOR_COUNT, SECTOR_SIZE, WRITE_SIZE};
use monitor_events::journal::{Config, Journal, OpenError};
use monitor_events::{EventId, EventStore, Geometry, MonitorEvent, StoreError, MAX_ENCODED_LEN};

/// Pending events the journal holds at most.
pub const N: usize = 16;
/// Largest body: any encoded monitor event.
pub const MAX_BODY: usize = MAX_ENCODED_LEN;

/// The journal on the mirrored flash.
pub type Store<'m> = Journal<&'m mut MirrorFlash, N>;

/// The typed event store on the mirrored flash (`K` = 8 in-flight updates).
pub type Events<'m> = EventStore<&'m mut MirrorFlash, N>;

/// Sizes for the size report (boards/size.py reads them from the ELF): the
/// journal (all the RAM the store holds besides the simulated flash), its medium,
/// a decoded event, the longest encoding and the capacity `N`.
#[used]
#[no_mangle]
#[allow(unsafe_code)]
static MONITOR_EVENTS_SIZES: [u32; 5] = [
    size_of::<Store<'static>>() as u32,
    size_of::<&mut MirrorFlash>() as u32,
    size_of::<MonitorEvent>() as u32,
    MAX_ENCODED_LEN as u32,
    N as u32,
];

/// The configuration for a medium with or without multiwrite (in-place acks or
/// ack records).
pub fn config(multiwrite: bool) -> Config<N> {
    let geometry = Geometry {
        sector_size: SECTOR_SIZE,
        sector_count: SECTOR_COUNT,
        write_size: WRITE_SIZE,
        multiwrite,
    };
    match Config::try_new(geometry, MAX_BODY) {
        Ok(c) => c,
        Err(e) => defmt::panic!("journal configuration: {}", e),
    }
}

/// Opens the journal on `m` with the configuration its geometry calls for.
pub fn open(m: &mut MirrorFlash) -> Result<Store<'_>, OpenError> {
    let multiwrite = monitor_events::Medium::geometry(m).multiwrite;
    Journal::open(m, config(multiwrite))
}

/// Opens the typed event store on `m` (replaying every pending event).
pub fn open_events(m: &mut MirrorFlash) -> Result<Events<'_>, StoreError> {
    let multiwrite = monitor_events::Medium::geometry(m).multiwrite;
    let mut s = EventStore::open(m, config(multiwrite))?;
    // The selftest completes its updates before every reboot: none is in flight.
    s.no_updates_in_flight();
    Ok(s)
}

/// Whether pending event `id` holds exactly the simulated monitor's event `id`
/// (byte-identical and decoding to the same value: invariant I4).
pub fn body_matches(j: &mut Store<'_>, id: EventId) -> bool {
    let mut got = [0u8; MAX_BODY];
    let mut want = [0u8; MAX_ENCODED_LEN];
    let Ok(len) = j.read(id, &mut got) else {
        return false;
    };
    let want = body_for(id.0, &mut want);
    got[..len] == *want
        && MonitorEvent::decode(&got[..len]).is_ok_and(|e| e == crate::events::event_for(id.0))
}
