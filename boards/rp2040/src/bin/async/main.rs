//! monitor-events on the RP2040 through the async store: the journal in the same
//! partition of the QSPI flash as the blocking firmware, written through
//! embassy-rp's async (DMA) flash driver, under an embassy executor.
//!
//! At every boot it does what the blocking firmware does (`monitor_events_demo::run`:
//! recover, replay and ack what is pending, push new events, ack them out of
//! order), every medium operation awaited. The on-flash format is the same: either
//! firmware opens what the other wrote. See README.md, "The async binary".

#![no_std]
#![no_main]

#[cfg(feature = "store-min")]
mod app;

use defmt_rtt as _;
use embassy_executor::Spawner;
use panic_probe as _;

#[cfg(feature = "store-min")]
embassy_rp::bind_interrupts!(struct Irqs {
    DMA_IRQ_0 => embassy_rp::dma::InterruptHandler<embassy_rp::peripherals::DMA_CH0>;
});

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    defmt::info!("monitor-events on RP2040 (async)");

    #[cfg(feature = "store-min")]
    app::run(embassy_rp::flash::Flash::new(p.FLASH, p.DMA_CH0, Irqs)).await;
    #[cfg(not(feature = "store-min"))]
    {
        let _ = p;
        defmt::info!("built without the store (features `store` and `store-min` off)");
    }

    // The executor sleeps (WFE) once its only task has returned.
    defmt::info!("done; sleeping");
}
