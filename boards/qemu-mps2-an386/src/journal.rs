//! The journal and the typed event store as this firmware configures them, and
//! the checks every mode shares.
//!
//! | name | type | used by |
//! |---|---|---|
//! | [`Journal`] | `monitor_events::journal::Journal` on the mirrored flash: raw bodies and ids | `run`, `verify`, selftest phases 1 and 3 |
//! | [`EventStore`] | `monitor_events::EventStore` on it: typed events, gating, replay | selftest phase 2 |
//!
//! With `auth=on` the journal is authenticated (an HMAC tag on every record and
//! sector header under this device's key, acks as records) on 8 sectors of 8 KiB:
//! the tags make 16 events of the largest size too many for a 4 KiB sector.

use crate::events::body_for;
use crate::mirror::{MirrorFlash, SECTOR_SIZE, SIZE, WRITE_SIZE};
use monitor_events::journal::{Auth, Config, OpenError};
use monitor_events::{EventId, Geometry, Medium, MonitorEvent, StoreError, MAX_ENCODED_LEN};

/// Pending events the journal holds at most.
pub const N: usize = 16;
/// Largest body: any encoded monitor event.
pub const MAX_BODY: usize = MAX_ENCODED_LEN;
/// Sector size of the authenticated journal.
pub const AUTH_SECTOR_SIZE: u32 = 8192;
/// The authenticated journal's device key. A real device keeps its key out of the
/// flash (in OTP or a secure element); here it is part of the firmware, which the
/// power-cut loop never changes.
fn device_auth() -> Auth {
    Auth::new(*b"mps2-an386 journal key, test use", *b"mps2-an386/event")
}

/// The journal on the mirrored flash.
pub type Journal<'m> = monitor_events::journal::Journal<&'m mut MirrorFlash, N>;

/// The typed event store on the mirrored flash (`K` = 8 channels with updates in
/// flight).
pub type EventStore<'m> = monitor_events::EventStore<&'m mut MirrorFlash, N>;

/// Sizes for the size report (boards/size.py reads them from the ELF): the
/// journal (all the RAM the store holds besides the simulated flash), its medium,
/// a decoded event, the longest encoding and the capacity `N`.
#[used]
#[no_mangle]
#[allow(unsafe_code)]
static MONITOR_EVENTS_SIZES: [u32; 5] = [
    size_of::<Journal<'static>>() as u32,
    size_of::<&mut MirrorFlash>() as u32,
    size_of::<MonitorEvent>() as u32,
    MAX_ENCODED_LEN as u32,
    N as u32,
];

/// The configuration for `geometry`, authenticated or not.
pub fn config(geometry: Geometry, auth: bool) -> Config<N> {
    let plain = Config::try_new(geometry, MAX_BODY);
    let config = if auth {
        plain.and_then(|c| c.with_auth(device_auth()))
    } else {
        plain
    };
    match config {
        Ok(c) => c,
        Err(e) => defmt::panic!("journal configuration: {}", e),
    }
}

/// Lays the mirrored flash out for the plain or the authenticated journal (see
/// the module doc), before anything opens it.
pub fn lay_out(m: &mut MirrorFlash, auth: bool) {
    m.set_sector_size(if auth { AUTH_SECTOR_SIZE } else { SECTOR_SIZE });
}

/// Opens the journal on `m`, authenticated or not, with the configuration its
/// geometry calls for.
pub fn open_journal(m: &mut MirrorFlash, auth: bool) -> Result<Journal<'_>, OpenError> {
    lay_out(m, auth);
    let geometry = m.geometry();
    monitor_events::journal::Journal::open(m, config(geometry, auth))
}

/// Opens the typed event store on `m` (plain journal), replaying every pending
/// event.
pub fn open_store(m: &mut MirrorFlash) -> Result<EventStore<'_>, StoreError> {
    lay_out(m, false);
    let geometry = m.geometry();
    let mut s = monitor_events::EventStore::open(m, config(geometry, false))?;
    // The selftest completes its updates before every reboot: none is in flight.
    s.no_updates_in_flight();
    Ok(s)
}

/// Whether pending event `id` holds exactly the simulated monitor's event `id`
/// (byte-identical and decoding to the same value: invariant I4).
pub fn body_matches(j: &mut Journal<'_>, id: EventId) -> bool {
    let mut got = [0u8; MAX_BODY];
    let mut want = [0u8; MAX_ENCODED_LEN];
    let Ok(len) = j.read(id, &mut got) else {
        return false;
    };
    let want = body_for(id.0, &mut want);
    got[..len] == *want
        && MonitorEvent::decode(&got[..len]).is_ok_and(|e| e == crate::events::event_for(id.0))
}

/// The flash size is a whole number of sectors in both layouts, and a whole
/// number of program units in each.
const _: () = {
    assert!(SIZE % SECTOR_SIZE as usize == 0 && SIZE % AUTH_SECTOR_SIZE as usize == 0);
    assert!(SECTOR_SIZE % WRITE_SIZE == 0);
};
