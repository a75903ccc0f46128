//! monitor-events on the nRF52840: the journal in a partition of the internal
//! flash, written through embassy-nrf's NVMC driver.
//!
//! At every boot the firmware recovers the journal, hands every event still pending
//! to the consumer again (replay) and acks it, then lets a simulated channel
//! monitor push a few new events that the consumer acks in another order than they
//! were pushed. Everything is logged over RTT with defmt. See README.md.

#![no_std]
#![no_main]

#[cfg(feature = "store-min")]
mod app;
#[cfg(feature = "store-min")]
mod partition;
#[cfg(feature = "peer")]
mod peer;

#[cfg(all(feature = "peer", feature = "store-min"))]
compile_error!("feature `peer` replaces the store: build it with --no-default-features");

use defmt_rtt as _;
use panic_probe as _;

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_nrf::init(Default::default());
    defmt::info!("monitor-events on nRF52840");

    #[cfg(feature = "store-min")]
    app::run(embassy_nrf::nvmc::Nvmc::new(p.NVMC));
    #[cfg(feature = "peer")]
    peer::run(embassy_nrf::nvmc::Nvmc::new(p.NVMC));
    #[cfg(not(any(feature = "store-min", feature = "peer")))]
    {
        let _ = p;
        defmt::info!("built without the store (features `store` and `store-min` off)");
    }

    defmt::info!("done; sleeping");
    loop {
        cortex_m::asm::wfe();
    }
}
