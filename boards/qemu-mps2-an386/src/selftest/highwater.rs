//! Selftest phase 5: the deepest stack `open`, `push`, `ack` and `release_next`
//! use, through the typed `EventStore` and through the journal, measured by
//! painting the free stack before each call ([`crate::stack`]).
//!
//! The journal pushes bodies of [`MAX_ENCODED_LEN`] bytes; the store pushes
//! events of that length, and every third a claim, whose preimage is hashed when
//! it is checked. Each round reopens the flash with events pending, replays them
//! (`release_next` decodes each), acks some in a random order and pushes until
//! full, so that the journal's sectors fill, compact and wrap. The store and the
//! journal each run on a medium with in-place acks, on one without multiwrite
//! (ack records) and on the authenticated layout. Each operation's figure is
//! its maximum over all calls.

use crate::events::{channel, Pcg32, CHANNELS};
use crate::journal::{self, N};
use crate::mirror::{MirrorFlash, SIZE};
use crate::stack::{measure, HighWater, WINDOW};
use monitor_events::journal::AckOutcome;
use monitor_events::{
    EventId, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, Medium, MonitorEvent,
    MonitorEventSource, PaymentHash, PaymentPreimage, MAX_ENCODED_LEN, MAX_FAILURE_DATA,
};

/// The stack budget of each operation, in bytes.
pub(super) const BUDGET: usize = 2048;
/// Reopen rounds per layout: enough pushes to wrap the 64 KiB flash.
pub(super) const ROUNDS: u64 = 24;

/// Deepest stack per operation, in bytes.
#[derive(Clone, Copy, Default)]
pub(super) struct Deepest {
    /// `open` on a populated flash (and on an empty one).
    pub open: usize,
    /// `EventStore::open_into`: the same open, recovering the store in place
    /// (the store only; 0 for the journal).
    pub open_into: usize,
    /// `push` of a [`MAX_ENCODED_LEN`]-byte event (and of a claim).
    pub push: usize,
    /// `ack` in place or by record.
    pub ack: usize,
    /// `release_next`, decoding the event (the store only).
    pub release_next: usize,
}

impl Deepest {
    /// The largest figure.
    pub fn max(&self) -> usize {
        self.open
            .max(self.open_into)
            .max(self.push)
            .max(self.ack)
            .max(self.release_next)
    }

    /// The operation with the largest figure.
    pub fn deepest(&self) -> &'static str {
        let all = [
            (self.open, "open"),
            (self.open_into, "open_into"),
            (self.push, "push"),
            (self.ack, "ack"),
            (self.release_next, "release_next"),
        ];
        let mut best = all[0];
        for op in all {
            if op.0 > best.0 {
                best = op;
            }
        }
        best.1
    }

    /// Folds `other` in, operation by operation.
    pub(super) fn merge(&mut self, other: &Deepest) {
        self.open = self.open.max(other.open);
        self.open_into = self.open_into.max(other.open_into);
        self.push = self.push.max(other.push);
        self.ack = self.ack.max(other.ack);
        self.release_next = self.release_next.max(other.release_next);
    }
}

/// Keeps the larger of `slot` and what `hw` found; a measurement that reached
/// the bottom of the paint would understate the use and fails the selftest.
pub(super) fn keep(slot: &mut usize, hw: HighWater, what: &str) {
    defmt::assert!(
        !hw.saturated(),
        "stack of {=str} reached the bottom of the {} B painted below the stack pointer",
        what,
        hw.window
    );
    *slot = (*slot).max(hw.bytes);
}

/// The `n`-th event of this phase: as large as an event encodes (a failed
/// forward with every integer at its maximum and the longest failure data),
/// on one of the simulated channels.
fn largest(n: u64) -> MonitorEvent {
    let mut hash = [0xff; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    let reason = match FailureReason::new(u16::MAX, &[0xff; MAX_FAILURE_DATA]) {
        Ok(r) => r,
        Err(e) => defmt::panic!("failure reason: {}", e),
    };
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: channel(n as usize % CHANNELS),
        payment_hash: PaymentHash(hash),
        amount_msat: u64::MAX,
        source: HtlcSource::Forward {
            prev_channel: channel((n as usize + 1) % CHANNELS),
            prev_htlc_id: u64::MAX,
        },
        outcome: HtlcOutcome::Failed {
            reason,
            hold_time: Some(u32::MAX),
        },
        resolved_on_chain: true,
        user_channel_id: Some(u128::MAX),
    })
}

/// The `n`-th event the store pushes: every third a claim, whose preimage
/// `open` and `release_next` hash (SHA-256) to check it; the others
/// [`largest`].
pub(super) fn store_event(n: u64) -> MonitorEvent {
    if n % 3 != 2 {
        return largest(n);
    }
    let mut preimage = PaymentPreimage([0x3c; 32]);
    preimage.0[..8].copy_from_slice(&n.to_le_bytes());
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: channel(n as usize % CHANNELS),
        payment_hash: preimage.payment_hash(),
        amount_msat: u64::MAX,
        source: HtlcSource::OutboundPayment {
            payment_id: [0xa5; 32],
        },
        outcome: HtlcOutcome::Claimed {
            preimage,
            skimmed_fee_msat: Some(u64::MAX),
        },
        resolved_on_chain: false,
        user_channel_id: Some(u128::MAX),
    })
}

/// The store on `m` (the plain layout, in-place acks or ack records as `m` is
/// declared; or the authenticated layout): rounds of open with events pending,
/// replay, random-order acks of half, pushes until full.
fn store(m: &mut MirrorFlash, auth: bool, rng: &mut Pcg32) -> Deepest {
    let mut d = Deepest::default();
    journal::lay_out(m, auth);
    let config = journal::config(m.geometry(), auth);
    // The model: pending ids with their channel, in id order.
    let mut pending: heapless::Vec<MonitorEventSource, N> = heapless::Vec::new();
    let mut next = 0u64;
    for _ in 0..ROUNDS {
        {
            let mut medium = Some(&mut *m);
            let (opened, hw) = measure(&mut || match medium.take() {
                Some(medium) => monitor_events::EventStore::open(medium, config),
                None => defmt::unreachable!(),
            });
            keep(&mut d.open, hw, "EventStore::open");
            let s: journal::EventStore<'_> = match opened {
                Ok(s) => s,
                Err(e) => defmt::panic!("EventStore::open: {}", e),
            };
            defmt::assert_eq!(s.pending_count(), pending.len(), "I1: pending after open");
        }
        // The same open in place, into a slot that outlives the call: the store
        // the round goes on with.
        let mut slot: Option<journal::EventStore<'_>> = None;
        let mut medium = Some(&mut *m);
        let (opened, hw) = measure(&mut || match medium.take() {
            Some(medium) => {
                monitor_events::EventStore::open_into(&mut slot, medium, config).map(|_| ())
            }
            None => defmt::unreachable!(),
        });
        keep(&mut d.open_into, hw, "EventStore::open_into");
        if let Err(e) = opened {
            defmt::panic!("EventStore::open_into: {}", e);
        }
        let Some(s) = slot.as_mut() else {
            defmt::unreachable!()
        };
        s.no_updates_in_flight();
        defmt::assert_eq!(s.pending_count(), pending.len(), "I1: pending after open");
        for want in &pending {
            let (got, hw) = measure(&mut || s.release_next());
            keep(&mut d.release_next, hw, "EventStore::release_next");
            match got {
                Some((id, event)) => {
                    defmt::assert_eq!(id, want.id, "I4: replay in id order");
                    defmt::assert!(event == store_event(id.0), "I4: event {} differs", id);
                }
                None => defmt::panic!("I1: pending event {} not replayed", want.id),
            }
        }
        defmt::assert!(s.release_next().is_none(), "I4: each event once per run");
        for _ in 0..pending.len() / 2 {
            let source = pending.remove(rng.below(pending.len() as u32) as usize);
            let (outcome, hw) = measure(&mut || s.ack(source));
            keep(&mut d.ack, hw, "EventStore::ack");
            defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "ack of {}", source.id);
        }
        while !pending.is_full() {
            let event = store_event(next);
            defmt::assert!(
                next % 3 == 2 || event.encoded_len() == MAX_ENCODED_LEN,
                "the largest event"
            );
            let (pushed, hw) = measure(&mut || s.push(&event));
            keep(&mut d.push, hw, "EventStore::push");
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

/// The journal on `m`, plain or authenticated: the same rounds with raw bodies of
/// [`MAX_ENCODED_LEN`] bytes (no release, which the journal does not have).
fn journal(m: &mut MirrorFlash, auth: bool, rng: &mut Pcg32) -> Deepest {
    let mut d = Deepest::default();
    journal::lay_out(m, auth);
    let config = journal::config(m.geometry(), auth);
    let mut pending: heapless::Vec<EventId, N> = heapless::Vec::new();
    let mut next = 0u64;
    let mut body = [0u8; MAX_ENCODED_LEN];
    for _ in 0..ROUNDS {
        let mut medium = Some(&mut *m);
        let (opened, hw) = measure(&mut || match medium.take() {
            Some(medium) => monitor_events::journal::Journal::open(medium, config),
            None => defmt::unreachable!(),
        });
        keep(&mut d.open, hw, "Journal::open");
        let mut j: journal::Journal<'_> = match opened {
            Ok(j) => j,
            Err(e) => defmt::panic!("Journal::open: {}", e),
        };
        defmt::assert!(j.pending_ids()[..] == pending[..], "I1: pending after open");
        for _ in 0..pending.len() / 2 {
            let id = pending.remove(rng.below(pending.len() as u32) as usize);
            let (outcome, hw) = measure(&mut || j.ack(id));
            keep(&mut d.ack, hw, "Journal::ack");
            defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "ack of {}", id);
        }
        while !pending.is_full() {
            body.fill(next as u8);
            let (pushed, hw) = measure(&mut || j.push(&body));
            keep(&mut d.push, hw, "Journal::push");
            defmt::assert_eq!(pushed.ok(), Some(EventId(next)), "I3: push of {}", next);
            defmt::assert!(pending.push(EventId(next)).is_ok(), "model full");
            next += 1;
        }
    }
    d
}

/// The measurement itself: a call that writes a 1 KiB local array must measure
/// at least 1 KiB and little more (its frame and the indirect call).
fn calibrate() {
    const ARRAY: usize = 1024;
    let (_, hw) = measure(&mut || {
        let array = core::hint::black_box([0x5Au8; ARRAY]);
        core::hint::black_box(&array);
    });
    defmt::assert!(
        (ARRAY..=ARRAY + 128).contains(&hw.bytes),
        "stack measurement: a {} B local array measured {} B",
        ARRAY,
        hw.bytes
    );
}

/// The simulated flash's own share: its program (of a largest record's worth of
/// units) and erase, the deepest calls the operations make into the medium.
fn medium(m: &mut MirrorFlash) -> (usize, usize) {
    let data = [0u8; MAX_ENCODED_LEN / 4 * 4];
    let (programmed, program) = measure(&mut || m.program(0, &data));
    defmt::assert!(programmed.is_ok(), "program of the mirrored flash");
    let (erased, erase) = measure(&mut || m.erase(0));
    defmt::assert!(erased.is_ok(), "erase of the mirrored flash");
    (program.bytes, erase.bytes)
}

/// A fresh image on `ram`, with in-place acks or without multiwrite.
pub(super) fn fresh(ram: &'static mut [u8; SIZE], image: &str, multiwrite: bool) -> MirrorFlash {
    match MirrorFlash::fresh(ram, image, multiwrite) {
        Ok(m) => m,
        Err(e) => defmt::panic!("cannot create {=str}: {}", image, e),
    }
}

/// Phase 5: measures and prints the high-water marks, `stack high-water: open
/// .. B, push .. B, ack .. B, release_next .. B` for the store, then the
/// journal's. Returns the store's and the journal's figures and the RAM.
pub(super) fn highwater(
    ram: &'static mut [u8; SIZE],
    image: &str,
) -> (Deepest, Deepest, &'static mut [u8; SIZE]) {
    calibrate();
    let mut rng = Pcg32::new(0x5743);
    let mut m = fresh(ram, image, true);
    let (program, erase) = medium(&mut m);
    let mut m = fresh(m.into_ram(), image, true);
    let in_place = store(&mut m, false, &mut rng);
    let mut m = fresh(m.into_ram(), image, false);
    let records = store(&mut m, false, &mut rng);
    let mut m = fresh(m.into_ram(), image, false);
    let auth = store(&mut m, true, &mut rng);
    let mut st = in_place;
    st.merge(&records);
    st.merge(&auth);
    defmt::info!(
        "stack high-water: open {} B, push {} B, ack {} B, release_next {} B (EventStore; open in place with open_into {} B; in-place acks: open {} B, ack {} B; ack records: open {} B, ack {} B; authenticated: open {} B, open_into {} B, push {} B, ack {} B, release_next {} B; painted window {} B)",
        st.open,
        st.push,
        st.ack,
        st.release_next,
        st.open_into,
        in_place.open,
        in_place.ack,
        records.open,
        records.ack,
        auth.open,
        auth.open_into,
        auth.push,
        auth.ack,
        auth.release_next,
        WINDOW
    );
    defmt::info!(
        "stack high-water: EventStore::open by value recovers the journal and its marks in its own frame, then assembles the store ({} B here) in its result; open_into recovers it in place",
        core::mem::size_of::<journal::EventStore<'static>>()
    );

    let mut m = fresh(m.into_ram(), image, true);
    let plain = journal(&mut m, false, &mut rng);
    let mut m = fresh(m.into_ram(), image, false);
    let plain_records = journal(&mut m, false, &mut rng);
    let mut m = fresh(m.into_ram(), image, false);
    let auth = journal(&mut m, true, &mut rng);
    let mut j = plain;
    j.merge(&plain_records);
    j.merge(&auth);
    defmt::info!(
        "stack high-water (journal): open {} B, push {} B, ack {} B (in place: open {} B, push {} B, ack {} B; ack records: open {} B, push {} B, ack {} B; authenticated: open {} B, push {} B, ack {} B)",
        j.open,
        j.push,
        j.ack,
        plain.open,
        plain.push,
        plain.ack,
        plain_records.open,
        plain_records.push,
        plain_records.ack,
        auth.open,
        auth.push,
        auth.ack
    );
    defmt::info!(
        "stack high-water (medium, included above): program {} B, erase {} B",
        program,
        erase
    );
    (st, j, m.into_ram())
}
