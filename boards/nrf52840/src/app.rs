//! The store on the NVMC partition declared in memory.x (`partition.rs`). The
//! demo that runs on it (open, replay, push, acks) is `monitor_events_demo::run`,
//! shared with the RP2040.

use embassy_nrf::nvmc::Nvmc;
use monitor_events_demo::Base;

use crate::partition::{self, CONFIG, N};

/// Sizes for the size report (boards/size.py reads them from the ELF): the
/// journal, its medium, a decoded event, the longest encoding and `N`; see
/// `monitor_events_demo::sizes`.
#[used]
#[no_mangle]
static MONITOR_EVENTS_SIZES: [u32; 5] = monitor_events_demo::sizes::<partition::Medium, N>();

/// Binds the partition and runs the demo on it: recovers, replays, pushes and acks.
pub fn run(flash: Nvmc<'static>) {
    let (medium, base) = partition::medium(flash);
    // Panics if `open` fails, typically with NotAStore: the pages hold something
    // else. Erase them (`probe-rs erase --chip nRF52840_xxAA`) if that is expected.
    monitor_events_demo::run(medium, CONFIG, Base::Address(base));
}
