//! `link`: a simulated channel monitor pushing events into its `EventStore` on
//! the mirrored flash, and a [`DeviceLink`] carrying them to a consumer on the
//! host over UART0 ([`uart`](crate::uart)), which QEMU bridges to a TCP socket.
//! Acks come back the same way; only the consumer acks. Runs until QEMU is
//! killed (a power cut: the flash is the host file).
//!
//! | step | what |
//! |---|---|
//! | boot | open the store, check every pending event is the simulated monitor's event of its id, byte for byte (I4), log `B` |
//! | receive | the bytes UART0 holds go to [`DeviceLink::receive`]: acks are durable in the store before their `AckResult` is queued (I2) |
//! | transmit | one frame from [`DeviceLink::poll_transmit`] (a `Hello`, an `AckResult` or an `Event` within the host's credit) is logged, then sent |
//! | produce | while `next_id < events` and the store has room, push the simulated monitor's event `next_id` (the event with id `i` is a pure function of `i`) and log `P` |
//!
//! The report log (one `SYS_WRITE` per line, so a line in the file was written
//! before the firmware went on):
//!
//! | line | written |
//! |---|---|
//! | `B <next_id> <pending>` | after `open`, at every boot |
//! | `K <id>` | after `B`, for every pending event (found durable at boot: also one whose push returned just before a cut, without its `P` line) |
//! | `P <id> <len>` | after `push` returned `id` (the event is durable) |
//! | `R <pass>` | after the host's `Resume` started release pass `pass` (the boot starts pass 0) |
//! | `E <id>` | before the `Event` frame of `id` is sent |
//! | `A <id>` | before an `AckResult` of `Acked` or `AlreadyAcked` for `id` is sent: the ack is durable |
//! | `X <id> <status>` | before an `AckResult` refusing the ack of `id` is sent (`2` unknown, `3` wrong channel) |
//!
//! `run-link.py` reads it together with what the consumer printed.

use crate::args::Args;
use crate::events::{body_for, event_for};
use crate::journal::{self, N};
use crate::mirror::{MirrorFlash, SIZE};
use crate::report::Report;
use crate::uart::Uart;
use monitor_events::{EventId, MAX_ENCODED_LEN};
use monitor_events_link::message::parse_device;
use monitor_events_link::{
    AckStatus, Counters, DeviceLink, DeviceMessage, Direction, FrameReader, MAX_DEVICE_FRAME_LEN,
};

/// Events sent ahead of their `AckResult` at most (the host's credit is capped
/// to it).
const WINDOW: usize = 16;
/// `AckResult`s queued at most.
const RESULTS: usize = 16;
/// Bytes taken from UART0 per round.
const RX_CHUNK: usize = 64;

/// Serves the link until killed; false if anything fails before that.
pub fn link(ram: &'static mut [u8; SIZE], args: &Args) -> bool {
    let (mut m, boot) = match MirrorFlash::attach(ram, args.image, true) {
        Ok(x) => x,
        Err(e) => {
            defmt::error!("link: cannot attach {=str}: {}", args.image, e);
            return false;
        }
    };
    let mut store = match journal::open_store(&mut m) {
        Ok(s) => s,
        Err(e) => {
            defmt::error!("link: open failed: {}", e);
            return false;
        }
    };
    let mut log = match Report::open(args.log) {
        Ok(l) => l,
        Err(e) => {
            defmt::error!("link: cannot open the log {=str}: {}", args.log, e);
            return false;
        }
    };
    let Some(mut uart) = Uart::take() else {
        defmt::error!("link: UART0 taken twice");
        return false;
    };
    let pending: heapless::Vec<EventId, N> = store.pending().map(|p| p.id).collect();
    defmt::info!(
        "link: {}, next id {}, {} pending, pushing up to id {}",
        boot,
        store.next_id(),
        pending.len(),
        args.events
    );
    for &id in &pending {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let mut want = [0u8; MAX_ENCODED_LEN];
        let same = store.peek(id, &mut buf).is_ok_and(|e| e == event_for(id.0))
            && buf.starts_with(body_for(id.0, &mut want));
        defmt::assert!(
            same,
            "I4: pending event {} differs from what was pushed",
            id
        );
    }
    report(
        &mut log,
        b'B',
        store.next_id().0,
        Some(pending.len() as u64),
    );
    for &id in &pending {
        report(&mut log, b'K', id.0, None);
    }

    let mut dev: DeviceLink<WINDOW, RESULTS> = DeviceLink::new();
    let mut tap = Tap::new();
    let mut frame = [0u8; MAX_DEVICE_FRAME_LEN];
    let mut rx = [0u8; RX_CHUNK];
    let mut passes = dev.passes();
    let (mut pushes, mut sent) = (0u64, 0u64);
    loop {
        let n = uart.read_available(&mut rx);
        if n > 0 {
            dev.receive(&mut store, &rx[..n]);
            if dev.passes() != passes {
                passes = dev.passes();
                report(&mut log, b'R', passes, None);
            }
        }
        let n = dev.poll_transmit(&mut store, &mut frame);
        if n > 0 {
            tap.log(&frame[..n], &mut log);
            uart.write_all(&frame[..n]);
            sent += 1;
        }
        let next = store.next_id().0;
        if next < args.events && store.has_room(1) {
            match store.push(&event_for(next)) {
                Ok(id) => {
                    defmt::assert_eq!(id.0, next, "I3: the id push returned is next_id");
                    let mut buf = [0u8; MAX_ENCODED_LEN];
                    report(
                        &mut log,
                        b'P',
                        id.0,
                        Some(body_for(id.0, &mut buf).len() as u64),
                    );
                    pushes += 1;
                    if pushes % 500 == 0 {
                        defmt::info!(
                            "link: {} pushes, {} frames sent, {} pending, next id {}, received {}",
                            pushes,
                            sent,
                            store.pending_count(),
                            store.next_id(),
                            dev.counters()
                        );
                    }
                }
                Err(e) => defmt::panic!("link: push of {} refused: {}", next, e),
            }
        }
    }
}

/// Reads the frames the device sends, to log what each one is.
struct Tap {
    reader: FrameReader<MAX_DEVICE_FRAME_LEN>,
    counters: Counters,
}

impl Tap {
    fn new() -> Self {
        Tap {
            reader: FrameReader::new(),
            counters: Counters::default(),
        }
    }

    /// Logs `E`, `A` or `X` for the frame `bytes` (one whole frame).
    fn log(&mut self, bytes: &[u8], log: &mut Report) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (k, got) = self
                .reader
                .feed(Direction::DeviceToHost, rest, &mut self.counters);
            rest = &rest[k..];
            let Some(got) = got else { continue };
            let Ok(body) = got else {
                defmt::panic!("link: the device built a damaged frame");
            };
            match parse_device(body) {
                Ok(DeviceMessage::Event { id, .. }) => report(log, b'E', id.0, None),
                Ok(DeviceMessage::AckResult { id, outcome }) if outcome.is_success() => {
                    report(log, b'A', id.0, None)
                }
                Ok(DeviceMessage::AckResult { id, outcome }) => {
                    let code = match outcome {
                        AckStatus::Unknown => 2,
                        AckStatus::WrongChannel => 3,
                        _ => 9,
                    };
                    report(log, b'X', id.0, Some(code))
                }
                Ok(DeviceMessage::Hello { .. }) => {}
                Err(_) => defmt::panic!("link: the device built a frame it cannot parse"),
            }
        }
    }
}

fn report(log: &mut Report, tag: u8, a: u64, b: Option<u64>) {
    if let Err(e) = log.line(tag, a, b) {
        defmt::panic!("link: write to the report log failed: {}", e);
    }
}
