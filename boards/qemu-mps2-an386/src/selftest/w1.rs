//! Selftest phases 1, 3 and 4: docs/BENCH.md's W1 with reboots, on the plain
//! journal with in-place acks, with ack records, and on the authenticated journal;
//! and phase 6's W1 through the async journal.
//!
//! Compiled twice, like the core's engine: written with the journal's medium
//! calls awaited, made blocking by `maybe_async::must_be_sync` in
//! [`blocking`](super) and kept async in `asynch` (feature `async`). `.await` is
//! never inside a macro's arguments, where the conversion does not reach.

use super::{maybe, open_journal, Journal};
use crate::events::{Fnv1a64, Pcg32};
use crate::mirror::MirrorFlash;
use crate::selftest::power_cycle;
use monitor_events::journal::AckOutcome;
use monitor_events::EventId;

/// Events W1 keeps pending.
const W1_WINDOW: usize = 16;
/// Largest W1 payload.
const W1_MAX: usize = 120;

/// A W1 payload kept by the model.
type Payload = heapless::Vec<u8, W1_MAX>;

/// Reboots into the journal (authenticated or not): warm re-opens on the same RAM,
/// cold reloads the RAM from the host file.
#[maybe]
pub(in crate::selftest) async fn reboot(
    m: &mut MirrorFlash,
    cold: bool,
    auth: bool,
) -> Journal<'_> {
    power_cycle(m, cold);
    match open_journal(m, auth).await {
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
#[maybe]
async fn check(j: &mut Journal<'_>, model: &[(u64, Payload)], next: u64, last_acked: Option<u64>) {
    defmt::assert_eq!(j.pending_count(), model.len(), "pending count after reboot");
    defmt::assert_eq!(j.next_id(), EventId(next), "I3: next id after reboot");
    let mut buf = [0u8; W1_MAX];
    for (id, (want_id, want)) in j.pending_ids().iter().zip(model) {
        defmt::assert_eq!(id.0, *want_id, "I1/I4: pending ids in order");
        let len = match j.read(*id, &mut buf).await {
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
        let again = j.ack(EventId(acked)).await;
        defmt::assert_eq!(again, Ok(AckOutcome::AlreadyAcked), "I2: re-ack");
    }
}

/// docs/BENCH.md's W1 with `events` pushes and a reboot every `events / 10`; returns
/// the fingerprint.
#[maybe]
pub(in crate::selftest) async fn w1(m: &mut MirrorFlash, events: u64, auth: bool) -> u64 {
    let reopen_every = events / 10;
    let mut rng = Pcg32::new(1);
    let mut fp = Fnv1a64::new();
    let mut model: heapless::Vec<(u64, Payload), W1_WINDOW> = heapless::Vec::new();
    let mut last_acked = None;
    let mut reboots = 0u32;
    let mut j = reboot(m, false, auth).await;
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
            let outcome = j.ack(EventId(acked)).await;
            defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "ack of a pending event");
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
        match j.push(&payload).await {
            Ok(got) => defmt::assert_eq!(got, EventId(id), "I3: ids in push order"),
            Err(e) => defmt::panic!("push {}: {}", id, e),
        }
        let _ = model.push((id, payload));
        if reopen_every != 0 && (id + 1) % reopen_every == 0 {
            reboots += 1;
            drop(j);
            j = reboot(m, reboots % 2 == 0, auth).await;
            check(&mut j, &model, id + 1, last_acked).await;
        }
    }
    while !model.is_empty() {
        let (acked, _) = model.remove(0);
        fp.update(&acked.to_le_bytes());
        fp.update(&[1]);
        let outcome = j.ack(EventId(acked)).await;
        defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "final ack");
        last_acked = Some(acked);
    }
    drop(j);
    let mut j = reboot(m, true, auth).await;
    check(&mut j, &model, events, last_acked).await;
    defmt::info!(
        "W1{=str}: {} pushes, {} reboots, all acked, next id {}",
        super::PATH,
        events,
        reboots + 1,
        j.next_id()
    );
    fp.value()
}
