//! Throughput at 115 200 baud (10 bits per byte: 11 520 B/s each way, full
//! duplex) on a simulated line, byte by byte: a device with a steady supply of
//! mixed events, a host that acks each event (singly or in batches of 8). Prints
//! events per second and the bytes each event costs; the line is the bound (the
//! flash's time is not counted). No timing assertions: the figures are printed.

mod common;

use std::collections::VecDeque;

use monitor_events::{Config, EventStore, Geometry, MonitorEventSource, MAX_ENCODED_LEN};
use monitor_events_flash::rng::Pcg32;
use monitor_events_flash::SimFlash;
use monitor_events_link::{
    AckStatus, DeviceLink, HostEvent, HostLink, Seen, MAX_ACK_BATCH, MAX_FRAME_LEN,
};

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
const BAUD: f64 = 115_200.0;
const BITS_PER_BYTE: f64 = 10.0;

struct Figures {
    events: u64,
    ticks: u64,
    d2h: u64,
    h2d: u64,
    event_bytes: u64,
    overhead: Vec<usize>,
}

/// Runs `events` events through the link, the host acking in batches of up to
/// `batch`; one tick is one byte time in each direction.
fn run(events: u64, batch: usize, credit: u32) -> Figures {
    let mut store =
        EventStore::<SimFlash, 16>::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN))
            .unwrap();
    store.no_updates_in_flight();
    let mut dev = DeviceLink::<16>::new();
    let mut host = HostLink::<16>::with_credit(credit);
    let mut rng = Pcg32::new(115_200);
    let (mut produced, mut confirmed) = (0u64, 0u64);
    let (mut d2h, mut h2d) = (VecDeque::new(), VecDeque::new());
    let mut to_ack: Vec<MonitorEventSource> = Vec::new();
    let mut seen = Seen::<64>::new();
    let mut f = Figures {
        events,
        ticks: 0,
        d2h: 0,
        h2d: 0,
        event_bytes: 0,
        overhead: Vec::new(),
    };
    let mut frame = [0u8; MAX_FRAME_LEN];
    let mut peek = [0u8; MAX_ENCODED_LEN];
    while confirmed < events {
        f.ticks += 1;
        while produced < events && store.free_slots() > 0 {
            store.push(&common::random_event(&mut rng)).unwrap();
            produced += 1;
        }
        let mut device_idle = false;
        if d2h.is_empty() {
            let before = dev.in_flight().len();
            let n = dev.poll_transmit(&mut store, &mut frame);
            if dev.in_flight().len() == before + 1 {
                let id = monitor_events::EventId(*dev.in_flight().last().unwrap());
                let len = store.peek(id, &mut peek).unwrap().encoded_len();
                f.event_bytes += len as u64;
                f.overhead.push(n - len);
            }
            d2h.extend(&frame[..n]);
            f.d2h += n as u64;
            device_idle = n == 0;
        }
        if let Some(b) = d2h.pop_front() {
            match host.receive(&[b]).1 {
                Some(HostEvent::Event { id, event }) if seen.deliver(id) => {
                    to_ack.push(MonitorEventSource {
                        channel: event.channel(),
                        id,
                    })
                }
                Some(HostEvent::AckResult { id, outcome }) => {
                    assert_eq!(outcome, AckStatus::Acked, "each event acked once");
                    seen.confirm(id);
                    confirmed += 1;
                }
                _ => {}
            }
        }
        if to_ack.len() >= batch || (!to_ack.is_empty() && device_idle) {
            let n = to_ack.len().min(batch);
            let chunk: Vec<_> = to_ack.drain(..n).collect();
            if batch == 1 {
                host.ack(chunk[0]).unwrap();
            } else {
                host.ack_batch(&chunk).unwrap();
            }
        }
        if h2d.is_empty() {
            let n = host.poll_transmit(&mut frame);
            h2d.extend(&frame[..n]);
            f.h2d += n as u64;
        }
        if let Some(b) = h2d.pop_front() {
            dev.receive(&mut store, &[b]);
        }
    }
    assert_eq!(store.pending_count(), 0);
    f
}

/// Throughput and bytes per event at 115 200 baud, acks one by one and in
/// batches of 8.
#[test]
fn throughput_at_115200_baud() {
    let events = 3_000;
    for batch in [1, MAX_ACK_BATCH] {
        let f = run(events, batch, 16);
        let seconds = f.ticks as f64 * BITS_PER_BYTE / BAUD;
        let n = f.overhead.len() as f64;
        let mean = f.overhead.iter().sum::<usize>() as f64 / n;
        let (min, max) = (
            f.overhead.iter().min().unwrap(),
            f.overhead.iter().max().unwrap(),
        );
        println!(
            "link at 115200 baud, acks in batches of {batch}: {:.0} events/s ({} events in {:.2} s of line time); \
             event {:.1} B mean, Event frame overhead {:.2} B mean ({min}..{max} B); \
             device->host {:.1} B/event (AckResult included), host->device {:.1} B/event",
            f.events as f64 / seconds,
            f.events,
            seconds,
            f.event_bytes as f64 / n,
            mean,
            f.d2h as f64 / f.events as f64,
            f.h2d as f64 / f.events as f64,
        );
        assert_eq!(
            f.overhead.len() as u64,
            f.events,
            "each event sent once on a clean line"
        );
        assert!(
            *max <= 7 + 2,
            "ids below 16 384: 7 B + a 2 B varint at most"
        );
    }
}
