//! Phase 6: the checks of phases 1 and 2 through the async journal and store
//! (`monitor_events::asynch`, feature `async`) on the same mirrored flash, whose
//! programs and erases yield to the executor once (see [`MirrorFlash`]'s
//! `AsyncMedium`); [`w1`] and [`typed`] are the same source as the blocking
//! phases', kept async (`maybe_async::must_be_async`) and driven to the end by
//! `embassy_futures::block_on`.

use super::highwater::{self, Deepest};
use super::power_cycle;
use crate::events::Pcg32;
use crate::journal::{self, N};
use crate::mirror::{Counts, MirrorFlash, SIZE};
use crate::stack::{measure, WINDOW};
use embassy_futures::block_on;
pub(super) use maybe_async::must_be_async as maybe;
use monitor_events::journal::{AckOutcome, OpenError};
use monitor_events::{AsyncMedium, EventId, MonitorEventSource, StoreError};

/// How the log lines of [`w1`] and [`typed`] name this path.
const PATH: &str = " (async)";

/// The async journal on the mirrored flash.
pub(super) type Journal<'m> = monitor_events::asynch::Journal<&'m mut MirrorFlash, N>;

/// The async typed event store on the mirrored flash.
pub(super) type EventStore<'m> = monitor_events::asynch::EventStore<&'m mut MirrorFlash, N>;

/// Opens the async journal on `m`, authenticated or not, with the configuration
/// the blocking one gets ([`journal::open_journal`]).
pub(super) async fn open_journal(
    m: &mut MirrorFlash,
    auth: bool,
) -> Result<Journal<'_>, OpenError> {
    journal::lay_out(m, auth);
    let geometry = AsyncMedium::geometry(&*m);
    monitor_events::asynch::Journal::open(m, journal::config(geometry, auth)).await
}

/// Opens the async event store on `m` (plain journal), as
/// [`journal::open_store`] opens the blocking one.
pub(super) async fn open_store(m: &mut MirrorFlash) -> Result<EventStore<'_>, StoreError> {
    journal::lay_out(m, false);
    let geometry = AsyncMedium::geometry(&*m);
    let mut s =
        monitor_events::asynch::EventStore::open(m, journal::config(geometry, false)).await?;
    // The selftest completes its updates before every reboot: none is in flight.
    s.no_updates_in_flight();
    Ok(s)
}

#[path = "w1.rs"]
#[allow(clippy::duplicate_mod)]
pub(super) mod w1;

#[path = "typed.rs"]
#[allow(clippy::duplicate_mod)]
pub(super) mod typed;

/// Phase 6 on a fresh image in `ram`: W1 with `events` pushes through the async
/// journal, which must give the blocking phase 1's fingerprint `blocking_fp` and
/// make exactly its programs, bytes and erases `blocking` (the same decisions);
/// events written by one path and read, acked and added to by the other (the
/// same format); phase 2's typed checks through the async `EventStore`; and the
/// blocking store opening what the async one left. Prints
/// `selftest (async): ... ok`; any failed check panics. Gives the RAM back.
pub(super) fn selftest(
    ram: &'static mut [u8; SIZE],
    image: &str,
    events: u64,
    blocking_fp: u64,
    blocking: Counts,
) -> &'static mut [u8; SIZE] {
    let mut m = match MirrorFlash::fresh(ram, image, true) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", image, e),
    };
    let fp = block_on(w1::w1(&mut m, events, false));
    defmt::assert_eq!(
        fp,
        blocking_fp,
        "W1 fingerprint: async differs from blocking"
    );
    let c = m.counts();
    defmt::assert!(
        c == blocking,
        "W1 device work: async {} differs from blocking {}",
        c,
        blocking
    );
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    let crossed = across(&mut m);
    block_on(typed::typed(&mut m));

    // The blocking store opens what the async one left: nothing pending, the
    // same next id (I2, I3).
    power_cycle(&mut m, true);
    let next = match block_on(open_store(&mut m)) {
        Ok(s) => s.next_id(),
        Err(e) => defmt::panic!("asynch::EventStore::open: {}", e),
    };
    power_cycle(&mut m, true);
    match journal::open_store(&mut m) {
        Ok(s) => {
            defmt::assert_eq!(s.pending_count(), 0, "I2: blocking open of the async image");
            defmt::assert_eq!(s.next_id(), next, "I3: blocking open of the async image");
        }
        Err(e) => defmt::panic!("EventStore::open of the async image: {}", e),
    }
    let ram = stack(m.into_ram(), image);
    defmt::info!(
        "selftest (async): W1 {} events, fingerprint {=u64:#x}, {} programs ({} B), {} erases, identical to blocking; {} events crossed between the paths; EventStore typed events, gating, acks, replay: ok",
        events,
        fp,
        c.programs,
        c.program_bytes,
        c.erases,
        crossed
    );
    ram
}

/// The deepest stack of the async store's `open`, `push`, `ack` and
/// `release_next`, each driven to the end by `block_on`: phase 5's rounds on a
/// fresh image with in-place acks, with ack records, and on the authenticated
/// layout. The future lives in `block_on`'s frame, so a figure is the whole
/// operation: its future's state and its deepest poll. Prints `stack high-water
/// (async): ...`; gives the RAM back.
fn stack(ram: &'static mut [u8; SIZE], image: &str) -> &'static mut [u8; SIZE] {
    let mut rng = Pcg32::new(0x5743);
    let mut m = highwater::fresh(ram, image, true);
    let in_place = store_stack(&mut m, false, &mut rng);
    let mut m = highwater::fresh(m.into_ram(), image, false);
    let records = store_stack(&mut m, false, &mut rng);
    let mut m = highwater::fresh(m.into_ram(), image, false);
    let auth = store_stack(&mut m, true, &mut rng);
    let mut d = in_place;
    d.merge(&records);
    d.merge(&auth);
    defmt::info!(
        "stack high-water (async): open {} B, push {} B, ack {} B, release_next {} B (asynch::EventStore under block_on; in-place acks: open {} B, ack {} B; ack records: open {} B, ack {} B; authenticated: open {} B, push {} B, ack {} B, release_next {} B; painted window {} B)",
        d.open,
        d.push,
        d.ack,
        d.release_next,
        in_place.open,
        in_place.ack,
        records.open,
        records.ack,
        auth.open,
        auth.push,
        auth.ack,
        auth.release_next,
        WINDOW
    );
    m.into_ram()
}

/// Phase 5's rounds for the store (open with events pending, replay, acks of
/// half in random order, pushes until full, every third event a claim) through
/// the async store, each operation measured under `block_on`.
fn store_stack(m: &mut MirrorFlash, auth: bool, rng: &mut Pcg32) -> Deepest {
    let mut d = Deepest::default();
    journal::lay_out(m, auth);
    let config = journal::config(AsyncMedium::geometry(&*m), auth);
    let mut pending: heapless::Vec<MonitorEventSource, N> = heapless::Vec::new();
    let mut next = 0u64;
    for _ in 0..highwater::ROUNDS {
        let mut medium = Some(&mut *m);
        let (opened, hw) = measure(&mut || match medium.take() {
            Some(medium) => block_on(monitor_events::asynch::EventStore::open(medium, config)),
            None => defmt::unreachable!(),
        });
        highwater::keep(&mut d.open, hw, "asynch::EventStore::open");
        let mut s: EventStore<'_> = match opened {
            Ok(s) => s,
            Err(e) => defmt::panic!("asynch::EventStore::open: {}", e),
        };
        s.no_updates_in_flight();
        defmt::assert_eq!(s.pending_count(), pending.len(), "I1: pending after open");
        for want in &pending {
            let (got, hw) = measure(&mut || block_on(s.release_next()));
            highwater::keep(&mut d.release_next, hw, "asynch::EventStore::release_next");
            match got {
                Some((id, event)) => {
                    defmt::assert_eq!(id, want.id, "I4: replay in id order");
                    defmt::assert!(
                        event == highwater::store_event(id.0),
                        "I4: event {} differs",
                        id
                    );
                }
                None => defmt::panic!("I1: pending event {} not replayed", want.id),
            }
        }
        for _ in 0..pending.len() / 2 {
            let source = pending.remove(rng.below(pending.len() as u32) as usize);
            let (outcome, hw) = measure(&mut || block_on(s.ack(source)));
            highwater::keep(&mut d.ack, hw, "asynch::EventStore::ack");
            defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "ack of {}", source.id);
        }
        while !pending.is_full() {
            let event = highwater::store_event(next);
            let (pushed, hw) = measure(&mut || block_on(s.push(&event)));
            highwater::keep(&mut d.push, hw, "asynch::EventStore::push");
            defmt::assert_eq!(pushed.ok(), Some(EventId(next)), "I3: push of {}", next);
            let source = MonitorEventSource {
                channel: event.channel(),
                id: EventId(next),
            };
            defmt::assert!(pending.push(source).is_ok(), "model full");
            next += 1;
        }
    }
    d
}

/// Events pushed by the blocking journal are read byte for byte, acked and
/// followed by a push through the async one after a cold reboot, and the other
/// way round (I1, I2, I3, I4 across the paths); everything is acked at the end.
/// Returns how many events crossed.
fn across(m: &mut MirrorFlash) -> usize {
    const BODIES: [&[u8]; 3] = [
        b"pushed by the blocking journal, 0",
        b"pushed by the blocking journal, one",
        b"pushed by the blocking journal, number two",
    ];
    const LATE: &[u8] = b"pushed by the async journal";
    power_cycle(m, true);
    let first = {
        let mut j = blocking_journal(m);
        defmt::assert_eq!(j.pending_count(), 0, "W1 left nothing pending");
        let first = j.next_id().0;
        for (k, body) in BODIES.iter().enumerate() {
            match j.push(body) {
                Ok(id) => defmt::assert_eq!(id, EventId(first + k as u64), "I3: blocking push"),
                Err(e) => defmt::panic!("blocking push: {}", e),
            }
        }
        first
    };
    power_cycle(m, true);
    block_on(async {
        let mut j = match open_journal(m, false).await {
            Ok(j) => j,
            Err(e) => defmt::panic!("asynch::Journal::open of the blocking image: {}", e),
        };
        defmt::assert_eq!(j.pending_count(), BODIES.len(), "I1: pending across paths");
        let mut buf = [0u8; 64];
        for (k, body) in BODIES.iter().enumerate() {
            let len = match j.read(EventId(first + k as u64), &mut buf).await {
                Ok(n) => n,
                Err(e) => defmt::panic!("async read of a blocking push: {}", e),
            };
            defmt::assert!(buf[..len] == **body, "I4: body across paths");
        }
        defmt::assert_eq!(
            j.ack(EventId(first)).await,
            Ok(AckOutcome::Acked),
            "async ack"
        );
        match j.push(LATE).await {
            Ok(id) => defmt::assert_eq!(id, EventId(first + 3), "I3: async push after blocking"),
            Err(e) => defmt::panic!("async push: {}", e),
        }
    });
    power_cycle(m, true);
    let mut j = blocking_journal(m);
    let ids = j.pending_ids();
    defmt::assert!(
        ids[..] == [EventId(first + 1), EventId(first + 2), EventId(first + 3)],
        "I1, I2: pending across paths"
    );
    let mut buf = [0u8; 64];
    let len = match j.read(EventId(first + 3), &mut buf) {
        Ok(n) => n,
        Err(e) => defmt::panic!("blocking read of an async push: {}", e),
    };
    defmt::assert!(buf[..len] == *LATE, "I4: async body read blocking");
    defmt::assert_eq!(
        j.ack(EventId(first)),
        Ok(AckOutcome::AlreadyAcked),
        "I2: async ack seen blocking"
    );
    for id in ids {
        defmt::assert_eq!(j.ack(id), Ok(AckOutcome::Acked), "blocking ack");
    }
    BODIES.len() + 1
}

/// The blocking journal on `m` (plain layout).
fn blocking_journal(m: &mut MirrorFlash) -> journal::Journal<'_> {
    match journal::open_journal(m, false) {
        Ok(j) => j,
        Err(e) => defmt::panic!("blocking open: {}", e),
    }
}
