//! `selftest`: the journal on the target, with reboots. Any failed check panics
//! (defmt message, exit status 1).
//!
//! | phase | what | invariants |
//! |---|---|---|
//! | 1 | BENCH.md's W1 (seed 1, 16 pending, random-order acks) on a fresh image with in-place acks; every `events / 10` pushes a reboot, alternately warm (re-open on the same RAM) and cold (RAM scrambled and reloaded from the host file); then ack everything and reboot. With 100 000 events the fingerprint must be W1's | I1, I2, I3, I4 |
//! | 2 | typed monitor events on the same image: push, cold reboot, release through `PendingIndex` + `InFlight` with one channel's update in flight, complete it, ack everything in random order, reboot | I3, I4, I5 (index level) |
//! | 3 | W1 (a tenth as many events) on a fresh image without multiwrite: ack records, each unit programmed once | I1, I2, I3, I4 |

use crate::args::Args;
use crate::events::{body_for, channel, event_for, Fnv1a64, Pcg32};
use crate::mirror::{MirrorFlash, SIZE};
use crate::store::{self, body_matches, Store, N};
use monitor_events::journal::AckOutcome;
use monitor_events::{EventId, InFlight, MonitorEvent, PendingIndex, MAX_ENCODED_LEN};

/// W1's fingerprint for 100 000 events (BENCH.md).
const W1_FINGERPRINT: u64 = 0xe7dc_8c94_652e_8476;
/// Events W1 keeps pending.
const W1_WINDOW: usize = 16;
/// Largest W1 payload.
const W1_MAX: usize = 120;

/// A W1 payload kept by the model.
type Payload = heapless::Vec<u8, W1_MAX>;

/// Runs the three phases on the image `args.image`; true when all pass.
pub fn selftest(ram: &'static mut [u8; SIZE], args: &Args) -> bool {
    let events = args.events.max(10);
    defmt::info!(
        "selftest: phase 1, W1 with {} events, in-place acks, image {=str}",
        events,
        args.image
    );
    let mut m = match MirrorFlash::fresh(ram, args.image, true) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", args.image, e),
    };
    let fp = w1(&mut m, events);
    if events == 100_000 {
        defmt::assert_eq!(fp, W1_FINGERPRINT, "W1 fingerprint");
        defmt::info!("selftest: W1 fingerprint {=u64:#x} = BENCH.md's", fp);
    } else {
        defmt::info!("selftest: W1 fingerprint {=u64:#x} ({} events)", fp, events);
    }
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    let c = m.counts();
    defmt::info!(
        "selftest: phase 1 passed: {} programs ({} B), {} erases",
        c.programs,
        c.program_bytes,
        c.erases
    );

    defmt::info!("selftest: phase 2, typed events, gating");
    typed(&mut m);
    defmt::info!("selftest: phase 2 passed");

    let events = (events / 10).max(10);
    defmt::info!("selftest: phase 3, W1 with {} events, ack records", events);
    let ram = m.into_ram();
    let mut m = match MirrorFlash::fresh(ram, args.image, false) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", args.image, e),
    };
    let fp = w1(&mut m, events);
    defmt::assert!(
        m.file_matches().unwrap_or(false),
        "host file differs from the RAM flash"
    );
    defmt::info!("selftest: phase 3 passed, fingerprint {=u64:#x}", fp);
    defmt::info!("selftest: PASS (I1 I2 I3 I4, I5 at index level)");
    true
}

/// Reboots: warm re-opens on the same RAM, cold reloads the RAM from the host file.
fn reboot(m: &mut MirrorFlash, cold: bool) -> Store<'_> {
    if cold {
        m.scramble();
        if let Err(e) = m.load() {
            defmt::panic!("reload from the host file: {}", e);
        }
    }
    match store::open(m) {
        Ok(j) => j,
        Err(e) => defmt::panic!(
            "open after a {=str} reboot: {}",
            if cold { "cold" } else { "warm" },
            e
        ),
    }
}

/// Checks the recovered journal against the model: same pending ids in order,
/// byte-identical bodies (I1, I4), acks not resurrected (I2), next id (I3).
fn check(j: &mut Store<'_>, model: &[(u64, Payload)], next: u64, last_acked: Option<u64>) {
    defmt::assert_eq!(j.pending_count(), model.len(), "pending count after reboot");
    defmt::assert_eq!(j.next_id(), EventId(next), "I3: next id after reboot");
    let mut ids = [EventId(0); N];
    for (slot, (id, _)) in ids.iter_mut().zip(j.pending()) {
        *slot = id;
    }
    let mut buf = [0u8; W1_MAX];
    for (id, (want_id, want)) in ids.iter().zip(model) {
        defmt::assert_eq!(id.0, *want_id, "I1/I4: pending ids in order");
        let len = match j.read(*id, &mut buf) {
            Ok(n) => n,
            Err(e) => defmt::panic!("I1: read of pending event {}: {}", id, e),
        };
        defmt::assert!(buf[..len] == want[..], "I4: body of event {} differs", id);
    }
    if let Some(acked) = last_acked {
        defmt::assert!(
            !j.is_pending(EventId(acked)),
            "I2: acked event {} is pending again",
            acked
        );
        defmt::assert_eq!(
            j.ack(EventId(acked)),
            Ok(AckOutcome::AlreadyAcked),
            "I2: re-ack"
        );
    }
}

/// BENCH.md's W1 with `events` pushes and a reboot every `events / 10`; returns
/// the fingerprint.
fn w1(m: &mut MirrorFlash, events: u64) -> u64 {
    let reopen_every = events / 10;
    let mut rng = Pcg32::new(1);
    let mut fp = Fnv1a64::new();
    let mut model: heapless::Vec<(u64, Payload), W1_WINDOW> = heapless::Vec::new();
    let mut last_acked = None;
    let mut reboots = 0u32;
    let mut j = reboot(m, false);
    defmt::assert_eq!(j.next_id(), EventId(0), "fresh image");
    for id in 0..events {
        if model.len() == W1_WINDOW {
            let index = if rng.below(10) < 8 {
                0
            } else {
                rng.below(W1_WINDOW as u32) as usize
            };
            let (acked, _) = model.remove(index);
            fp.update(&acked.to_le_bytes());
            fp.update(&[u8::from(index == 0)]);
            defmt::assert_eq!(
                j.ack(EventId(acked)),
                Ok(AckOutcome::Acked),
                "ack of a pending event"
            );
            last_acked = Some(acked);
        }
        let len = match rng.below(10) {
            0..=3 => 48,
            4..=7 => 120,
            _ => 96,
        };
        let mut payload = Payload::new();
        let _ = payload.extend_from_slice(&id.to_le_bytes());
        while payload.len() < len {
            let _ = payload.extend_from_slice(&rng.next_u32().to_le_bytes());
        }
        fp.update(&payload);
        match j.push(&payload) {
            Ok(got) => defmt::assert_eq!(got, EventId(id), "I3: ids in push order"),
            Err(e) => defmt::panic!("push {}: {}", id, e),
        }
        let _ = model.push((id, payload));
        if reopen_every != 0 && (id + 1) % reopen_every == 0 {
            reboots += 1;
            drop(j);
            j = reboot(m, reboots % 2 == 0);
            check(&mut j, &model, id + 1, last_acked);
        }
    }
    while !model.is_empty() {
        let (acked, _) = model.remove(0);
        fp.update(&acked.to_le_bytes());
        fp.update(&[1]);
        defmt::assert_eq!(j.ack(EventId(acked)), Ok(AckOutcome::Acked), "final ack");
        last_acked = Some(acked);
    }
    drop(j);
    let mut j = reboot(m, true);
    check(&mut j, &model, events, last_acked);
    defmt::info!(
        "W1: {} pushes, {} reboots, all acked, next id {}",
        events,
        reboots + 1,
        j.next_id()
    );
    fp.value()
}

/// Typed events: push, cold reboot, release with one channel gated, complete,
/// release the rest, ack in random order, reboot.
fn typed(m: &mut MirrorFlash) {
    const COUNT: u64 = 12;
    let mut j = reboot(m, false);
    let first = j.next_id().0;
    defmt::assert!(first > 0, "I3: ids continue after an all-acked journal");
    let mut buf = [0u8; MAX_ENCODED_LEN];
    for id in first..first + COUNT {
        match j.push(body_for(id, &mut buf)) {
            Ok(got) => defmt::assert_eq!(got, EventId(id), "I3: typed ids follow"),
            Err(e) => defmt::panic!("push {}: {}", id, e),
        }
    }
    drop(j);
    let mut j = reboot(m, true);
    defmt::assert_eq!(
        j.pending_count(),
        COUNT as usize,
        "I1: typed events survive"
    );

    // Rebuild the release index from the recovered bodies, as the EventStore will.
    let mut index = PendingIndex::<N>::with_next_id(EventId(first));
    let mut ids = [EventId(0); N];
    for (slot, (id, _)) in ids.iter_mut().zip(j.pending()) {
        *slot = id;
    }
    let mut body = [0u8; MAX_ENCODED_LEN];
    for &id in &ids[..COUNT as usize] {
        defmt::assert!(
            body_matches(&mut j, id),
            "I4: typed event {} differs after reboot",
            id
        );
        let len = j.read(id, &mut body).unwrap_or(0);
        let event = match MonitorEvent::decode(&body[..len]) {
            Ok(e) => e,
            Err(e) => defmt::panic!("decode of event {}: {}", id, e),
        };
        defmt::assert!(
            index.insert(id, event.channel(), event.is_htlc()).is_ok(),
            "index insert"
        );
    }
    index.advance_next_id(j.next_id());

    // Gate the channel with the most HTLC events.
    let gated_channel = (0..crate::events::CHANNELS)
        .map(channel)
        .max_by_key(|c| {
            ids[..COUNT as usize]
                .iter()
                .filter(|id| is_htlc_of(id.0, c))
                .count()
        })
        .unwrap_or(channel(0));
    let held = ids[..COUNT as usize]
        .iter()
        .filter(|id| is_htlc_of(id.0, &gated_channel))
        .count();
    let mut gates = InFlight::<4>::new();
    defmt::assert!(gates.begin(gated_channel, 7).is_ok(), "begin update");
    let mut released: heapless::Vec<EventId, N> = heapless::Vec::new();
    let mut last = None;
    while let Some((id, ch)) = index.next_release(&gates) {
        defmt::assert!(
            !(ch == gated_channel && event_for(id.0).is_htlc()),
            "I5: gated HTLC event {} released",
            id
        );
        defmt::assert!(last.is_none_or(|l| id > l), "I4: release in id order");
        last = Some(id);
        let _ = released.push(id);
    }
    defmt::assert_eq!(
        released.len(),
        COUNT as usize - held,
        "I5: only the gated HTLC events are held back"
    );
    defmt::assert!(gates.complete(gated_channel, 7), "complete update");
    let mut late = 0;
    while let Some((id, ch)) = index.next_release(&gates) {
        defmt::assert!(
            ch == gated_channel && event_for(id.0).is_htlc(),
            "I5: late release {} was not gated",
            id
        );
        let _ = released.push(id);
        late += 1;
    }
    defmt::assert_eq!(late, held, "I5: the held events come after completion");
    defmt::assert!(
        index.next_release(&gates).is_none(),
        "I4: each event released once per run"
    );
    defmt::info!(
        "typed: {} events, {} held back on the gated channel until its update completed",
        COUNT,
        held
    );

    // Ack in a random order, then reboot: nothing comes back (I2).
    let mut rng = Pcg32::new(first);
    while !released.is_empty() {
        let id = released.swap_remove(rng.below(released.len() as u32) as usize);
        defmt::assert_eq!(j.ack(id), Ok(AckOutcome::Acked), "ack typed");
    }
    drop(j);
    let j = reboot(m, true);
    defmt::assert_eq!(j.pending_count(), 0, "I2: acked typed events stay acked");
    defmt::assert_eq!(j.next_id(), EventId(first + COUNT), "I3: next id");
}

fn is_htlc_of(id: u64, ch: &monitor_events::ChannelId) -> bool {
    let e = event_for(id);
    e.is_htlc() && e.channel() == *ch
}
