//! monitor-events on the nRF52840 with the device end of the link over USB:
//! the store on the internal flash (the partition of memory.x, as the demo
//! firmware uses it), a simulated channel monitor pushing events into it, and a
//! [`DeviceLink`] that sends them to the host over a USB CDC-ACM serial port
//! (embassy-usb) and takes the host's acks back to the store.
//!
//! Three loops share the store and the link (one executor, no preemption: a
//! `RefCell` borrow is never held across an `.await`):
//!
//! - **receive**: every USB packet from the host goes into
//!   [`DeviceLink::receive`]: acks reach the store (durable before their
//!   `AckResult` is queued), `Credit`, `Resume` and `Hello` change what goes out;
//! - **transmit**: every frame [`DeviceLink::poll_transmit`] has (`Hello`,
//!   `AckResult`s, events within the host's credit) goes out in packets, then it
//!   waits for the other loops to signal news;
//! - **monitor**: every [`PUSH_EVERY`] the simulated monitor pushes its next event
//!   (durable when `push` returns), while the store has room.
//!
//! A new USB connection (the host configured the device again: cable plugged,
//! host rebooted) starts a fresh `DeviceLink`, which says `Hello` first; the
//! host answers with `Hello`, `Resume` and `Credit`, so every event not yet acked
//! goes out again. A power cut or reset loses nothing the store made durable: the
//! next boot reopens it and the host sees the un-acked events again.
//!
//! Build with `cargo build --release --features link --bin link`; see README.md.

#![no_std]
#![no_main]

#[path = "../partition.rs"]
mod partition;

use core::cell::RefCell;

use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_futures::join::join4;
use embassy_nrf::config::HfclkSource;
use embassy_nrf::nvmc::Nvmc;
use embassy_nrf::usb::vbus_detect::HardwareVbusDetect;
use embassy_nrf::usb::{self, Driver};
use embassy_nrf::{bind_interrupts, peripherals};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer};
use embassy_usb::class::cdc_acm::{CdcAcmClass, Receiver, Sender, State};
use embassy_usb::driver::EndpointError;
use embassy_usb::{Builder, UsbDevice};
use monitor_events::{EventStore, MonitorEvent};
use monitor_events_demo::monitor;
use monitor_events_link::{DeviceLink, MAX_DEVICE_FRAME_LEN};
use panic_probe as _;

bind_interrupts!(struct Irqs {
    USBD => usb::InterruptHandler<peripherals::USBD>;
    CLOCK_POWER => usb::vbus_detect::InterruptHandler;
});

/// The USB driver: VBUS seen by the POWER peripheral (the nRF52840's USB
/// regulator), so plugging and unplugging the cable is noticed.
type UsbDriver<'d> = Driver<'d, HardwareVbusDetect>;
/// The store: the partition's medium, `N` pending events, in-flight updates on
/// up to 8 channels (the simulated monitor has 3).
type Store = EventStore<partition::Medium, { partition::N }>;
/// The device end: up to 8 events sent ahead of their `AckResult`, up to 16
/// `AckResult`s queued.
type Link = DeviceLink<8, 16>;

/// How often the simulated monitor pushes an event (while the store has room).
const PUSH_EVERY: Duration = Duration::from_secs(1);
/// Packet size of the CDC-ACM bulk endpoints (full speed: at most 64).
const PACKET: u16 = 64;
/// USB vendor and product id: pid.codes' test pair (1209:0001), for development
/// only; a product needs its own. The host's cdc-acm driver binds by interface
/// class, not by id: the port appears as /dev/ttyACM* on Linux.
const VID: u16 = 0x1209;
const PID: u16 = 0x0001;

/// What the three loops share.
struct Device {
    store: Store,
    link: Link,
}

/// Signalled when the transmit loop may have something new to send: bytes came
/// in, an event was pushed, or a connection started.
type Wake = Signal<NoopRawMutex, ()>;

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let mut config = embassy_nrf::config::Config::default();
    // The USB peripheral needs the 32 MHz crystal oscillator.
    config.hfclk_source = HfclkSource::ExternalXtal;
    let p = embassy_nrf::init(config);
    defmt::info!("monitor-events link on nRF52840 (USB CDC-ACM)");

    let store = open_store(Nvmc::new(p.NVMC));
    let device = RefCell::new(Device {
        store,
        link: Link::new(),
    });
    let wake = Wake::new();

    let driver = Driver::new(p.USBD, Irqs, HardwareVbusDetect::new(Irqs));
    let mut usb_config = embassy_usb::Config::new(VID, PID);
    usb_config.manufacturer = Some("monitor-events");
    usb_config.product = Some("monitor-events link");
    usb_config.serial_number = Some("nrf52840");
    usb_config.max_power = 100;
    let mut config_descriptor = [0u8; 256];
    let mut bos_descriptor = [0u8; 256];
    let mut control_buf = [0u8; 64];
    let mut state = State::new();
    let mut builder = Builder::new(
        driver,
        usb_config,
        &mut config_descriptor,
        &mut bos_descriptor,
        &mut [],
        &mut control_buf,
    );
    let class = CdcAcmClass::new(&mut builder, &mut state, PACKET);
    let mut usb = builder.build();
    let (mut tx, mut rx) = class.split();

    join4(
        run_usb(&mut usb),
        receive(&mut rx, &device, &wake),
        transmit(&mut tx, &device, &wake),
        produce(&device, &wake),
    )
    .await;
}

/// Opens the store on the partition (recovery after any power cut) and declares
/// that no monitor update is in flight: the simulated monitor applies its updates
/// at once, so after a restart none is pending (I5).
fn open_store(flash: Nvmc<'static>) -> Store {
    let (medium, base) = partition::medium(flash);
    let mut store = match Store::open(medium, partition::CONFIG) {
        Ok(s) => s,
        // Typically NotAStore: the pages hold something else. Erase them
        // (`probe-rs erase --chip nRF52840_xxAA`) if that is expected.
        Err(e) => defmt::panic!("cannot open the store at {=u32:#x}: {}", base, e),
    };
    store.no_updates_in_flight();
    defmt::info!(
        "store at {=u32:#x}: {} pending, next id #{=u64}",
        base,
        store.pending_count(),
        store.next_id().0
    );
    store
}

/// The USB device's own loop: enumeration, control requests, bus events.
async fn run_usb<'d>(usb: &mut UsbDevice<'d, UsbDriver<'d>>) {
    usb.run().await
}

/// Bytes from the host into the link, packet by packet. A new connection starts
/// a fresh link (`Hello` first, no credit until the host grants it).
async fn receive<'d>(
    rx: &mut Receiver<'d, UsbDriver<'d>>,
    device: &RefCell<Device>,
    wake: &Wake,
) -> ! {
    let mut packet = [0u8; PACKET as usize];
    loop {
        rx.wait_connection().await;
        {
            let d = &mut *device.borrow_mut();
            d.link = Link::new();
            defmt::info!(
                "USB connected: {} pending, next id #{=u64}",
                d.store.pending_count(),
                d.store.next_id().0
            );
        }
        wake.signal(());
        loop {
            match rx.read_packet(&mut packet).await {
                Ok(n) => {
                    let d = &mut *device.borrow_mut();
                    d.link.receive(&mut d.store, &packet[..n]);
                    wake.signal(());
                }
                Err(EndpointError::Disabled) => break,
                // A packet never exceeds the endpoint's size, which `packet` is.
                Err(EndpointError::BufferOverflow) => {}
            }
        }
        let d = device.borrow();
        defmt::info!(
            "USB disconnected: {} pending; link {}",
            d.store.pending_count(),
            d.link.counters()
        );
    }
}

/// The link's frames to the host: everything it has, then a wait for news.
async fn transmit<'d>(
    tx: &mut Sender<'d, UsbDriver<'d>>,
    device: &RefCell<Device>,
    wake: &Wake,
) -> ! {
    let mut frame = [0u8; MAX_DEVICE_FRAME_LEN];
    loop {
        tx.wait_connection().await;
        loop {
            let n = {
                let d = &mut *device.borrow_mut();
                d.link.poll_transmit(&mut d.store, &mut frame)
            };
            if n == 0 {
                wake.wait().await;
                continue;
            }
            if write_frame(tx, &frame[..n]).await.is_err() {
                // Disconnected: the frame is lost with the connection; the
                // next one starts with Hello and the host's Resume.
                break;
            }
        }
    }
}

/// Writes one frame in packets; a frame that fills its last packet is ended by a
/// zero-length packet, so the host sees it without waiting for more.
async fn write_frame<'d>(
    tx: &mut Sender<'d, UsbDriver<'d>>,
    frame: &[u8],
) -> Result<(), EndpointError> {
    let size = usize::from(tx.max_packet_size());
    for chunk in frame.chunks(size) {
        tx.write_packet(chunk).await?;
    }
    if frame.len() % size == 0 {
        tx.write_packet(&[]).await?;
    }
    Ok(())
}

/// The simulated channel monitor: every [`PUSH_EVERY`] its next event (the
/// demo's, numbered by the store's next id, so a reboot continues the sequence)
/// goes into the store, durable when `push` returns. One step before each
/// `UpdateCompleted` the monitor update it completes is begun, so the store
/// holds that channel's HTLC events back until the `UpdateCompleted` is pushed
/// (I5). With the store full it waits for acks: an event is never
/// dropped.
async fn produce(device: &RefCell<Device>, wake: &Wake) -> ! {
    loop {
        Timer::after(PUSH_EVERY).await;
        let d = &mut *device.borrow_mut();
        if d.store.free_slots() == 0 {
            continue;
        }
        let n = d.store.next_id().0;
        let event = monitor::event(n);
        if let MonitorEvent::UpdateCompleted { channel, update_id } = monitor::event(n + 1) {
            // Update ids grow with n and the monitor has 3 channels (K = 8):
            // neither Duplicate nor Full can happen.
            let _ = d.store.begin_update(channel, update_id);
        }
        match d.store.push(&event) {
            Ok(id) => defmt::info!(
                "pushed #{=u64}: {=str} on channel {=u8}",
                id.0,
                event.kind().as_str(),
                event.channel().0[31]
            ),
            Err(e) => defmt::panic!("push: {}", e),
        }
        wake.signal(());
    }
}
