//! Selftest phase 2: typed events through the `EventStore` (gating, replay); and
//! phase 6's through the async `EventStore`.
//!
//! Compiled twice, as [`w1`](super::w1) is: blocking in [`blocking`](super), async
//! in `asynch` (feature `async`).

use super::w1::reboot;
use super::{maybe, open_store, EventStore};
use crate::events::{channel, Pcg32};
use crate::journal::N;
use crate::mirror::MirrorFlash;
use crate::selftest::power_cycle;
use monitor_events::journal::AckOutcome;
use monitor_events::{
    AckError, CloseReason, EventId, FailureReason, HtlcOutcome, HtlcResolution, HtlcSource,
    MonitorEvent, MonitorEventSource, PaymentHash, PaymentPreimage, MAX_ENCODED_LEN,
};

/// What phase 2 pushes: the four kinds of monitor event (HTLC claims and
/// failures, confirmations, force-closes, update completions) on four channels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Claim,
    Fail,
    Confirmed,
    ForceClosed,
    UpdateDone,
}

/// Pushed before any update is in flight.
const PLAN: [(Kind, usize); 12] = [
    (Kind::Claim, 0),
    (Kind::Confirmed, 1),
    (Kind::Fail, 0),
    (Kind::Claim, 2),
    (Kind::UpdateDone, 0),
    (Kind::Fail, 3),
    (Kind::ForceClosed, 2),
    (Kind::Claim, 1),
    (Kind::Confirmed, 0),
    (Kind::Fail, 2),
    (Kind::UpdateDone, 3),
    (Kind::Claim, 0),
];
/// Pushed while updates are in flight: a gated HTLC event and a non-HTLC event of
/// a gated channel.
const LATE: [(Kind, usize); 2] = [(Kind::Claim, 3), (Kind::ForceClosed, 0)];
/// Events of phase 2.
const TYPED: usize = PLAN.len() + LATE.len();
const _: () = assert!(TYPED <= N);
/// The in-flight updates: two on channel 0, one on channel 3.
const UPDATES: [(usize, u64); 3] = [(0, 7), (0, 8), (3, 1)];

/// Phase 2's event `n` of kind `kind` on channel `ch`.
fn typed_event(kind: Kind, ch: usize, n: u64) -> MonitorEvent {
    let mut rng = Pcg32::new(n ^ 0x0074_7970_6564);
    let channel = channel(ch);
    let htlc = |payment_hash, outcome| {
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel,
            payment_hash,
            amount_msat: 1_000 + n,
            source: HtlcSource::Forward {
                prev_channel: crate::events::channel((ch + 1) % crate::events::CHANNELS),
                prev_htlc_id: n,
            },
            outcome,
            resolved_on_chain: n % 2 == 0,
            user_channel_id: Some(u128::from(n) << 64),
        })
    };
    match kind {
        Kind::Claim => {
            let preimage = PaymentPreimage(rng.bytes32());
            htlc(
                preimage.payment_hash(),
                HtlcOutcome::Claimed {
                    preimage,
                    skimmed_fee_msat: Some(n),
                },
            )
        }
        Kind::Fail => {
            let data = rng.bytes32();
            let reason = match FailureReason::new(0x400F, &data[..(n as usize % 32)]) {
                Ok(r) => r,
                Err(e) => defmt::panic!("failure reason: {}", e),
            };
            htlc(
                PaymentHash(rng.bytes32()),
                HtlcOutcome::Failed {
                    reason,
                    hold_time: Some(n as u32),
                },
            )
        }
        Kind::Confirmed => MonitorEvent::CommitmentTxConfirmed { channel },
        Kind::ForceClosed => MonitorEvent::HolderForceClosed {
            channel,
            reason: CloseReason::PeerFeerateTooLow {
                peer_feerate_sat_per_kw: 253,
                required_feerate_sat_per_kw: 253 + n as u32,
            },
        },
        Kind::UpdateDone => MonitorEvent::UpdateCompleted {
            channel,
            update_id: n,
        },
    }
}

/// What the consumer got from the store, checked against what was pushed: the
/// same event, encoding to the same bytes (I4).
fn check_released(model: &[(EventId, MonitorEvent)], id: EventId, got: &MonitorEvent) {
    let Some((_, want)) = model.iter().find(|(i, _)| *i == id) else {
        defmt::panic!("I4: released {} was never pushed (or acked)", id);
    };
    defmt::assert!(got == want, "I4: event {} differs", id);
    let (mut a, mut b) = ([0u8; MAX_ENCODED_LEN], [0u8; MAX_ENCODED_LEN]);
    defmt::assert!(
        got.encode(&mut a).ok() == want.encode(&mut b).ok(),
        "I4: event {} encodes differently",
        id
    );
}

/// Releases until the store has nothing more; checks each event against the
/// model and that ids increase within the call. Returns the released ids.
#[maybe]
async fn release_all(
    s: &mut EventStore<'_>,
    model: &[(EventId, MonitorEvent)],
) -> heapless::Vec<EventId, N> {
    let mut out: heapless::Vec<EventId, N> = heapless::Vec::new();
    while let Some((id, event)) = s.release_next().await {
        defmt::assert!(
            out.last().is_none_or(|l| id > *l),
            "I4: release in id order"
        );
        check_released(model, id, &event);
        defmt::assert!(out.push(id).is_ok(), "I4: more releases than events");
    }
    out
}

/// Whether event `id` of the model is an HTLC event of channel `ch`.
fn is_htlc_of(model: &[(EventId, MonitorEvent)], id: EventId, ch: usize) -> bool {
    model
        .iter()
        .any(|(i, e)| *i == id && e.is_htlc() && e.channel() == channel(ch))
}

/// Acks every id of `ids` in a random order; each must be `Acked`, and a second
/// ack `AlreadyAcked` (I2 in RAM). Removes them from the model.
#[maybe]
async fn ack_all(
    s: &mut EventStore<'_>,
    model: &mut heapless::Vec<(EventId, MonitorEvent), N>,
    ids: &mut heapless::Vec<EventId, N>,
    rng: &mut Pcg32,
) {
    while !ids.is_empty() {
        let id = ids.swap_remove(rng.below(ids.len() as u32) as usize);
        let Some(at) = model.iter().position(|(i, _)| *i == id) else {
            defmt::panic!("ack of {}, which the model does not hold", id);
        };
        // `remove` keeps the model in id order.
        let (_, event) = model.remove(at);
        let source = MonitorEventSource {
            channel: event.channel(),
            id,
        };
        let outcome = s.ack(source).await;
        defmt::assert_eq!(outcome, Ok(AckOutcome::Acked), "ack of {}", id);
        let again = s.ack(source).await;
        defmt::assert_eq!(
            again,
            Ok(AckOutcome::AlreadyAcked),
            "I2: repeated ack of {}",
            id
        );
    }
}

/// Phase 2, through the typed [`EventStore`](monitor_events::EventStore): events
/// of every kind on four channels; with updates in flight on channels 0 and 3
/// their HTLC events are held back while other channels' events and the gated
/// channels' non-HTLC events are released (also events pushed while gated); each
/// update completes in turn and only then its channel's HTLC events come out;
/// half the events are acked in random order; after a cold reboot every
/// un-acked event is released exactly once, in id order, byte-identical, and acks
/// in random order empty the store for good.
#[maybe]
pub(in crate::selftest) async fn typed(m: &mut MirrorFlash) {
    power_cycle(m, false);
    let mut s = open_store_or_panic(m).await;
    let first = s.next_id().0;
    defmt::assert!(first > 0, "I3: ids continue after an all-acked journal");
    defmt::assert_eq!(s.pending_count(), 0, "phase 1 left nothing pending");
    let mut model: heapless::Vec<(EventId, MonitorEvent), N> = heapless::Vec::new();
    for (kind, ch) in PLAN {
        push(&mut s, &mut model, first, kind, ch).await;
    }
    for (ch, update) in UPDATES {
        defmt::assert!(s.begin_update(channel(ch), update).is_ok(), "begin update");
    }
    for (kind, ch) in LATE {
        push(&mut s, &mut model, first, kind, ch).await;
    }
    let held_on = |model: &[(EventId, MonitorEvent)], ch: usize| {
        model
            .iter()
            .filter(|(id, _)| is_htlc_of(model, *id, ch))
            .count()
    };
    let (held0, held3) = (held_on(&model, 0), held_on(&model, 3));

    // Updates in flight on channels 0 and 3: everything else comes out, in id order.
    let released = release_all(&mut s, &model).await;
    for &id in &released {
        defmt::assert!(
            !is_htlc_of(&model, id, 0) && !is_htlc_of(&model, id, 3),
            "I5: HTLC event {} of a gated channel released",
            id
        );
    }
    defmt::assert_eq!(
        released.len(),
        TYPED - held0 - held3,
        "I5: only the gated channels' HTLC events are held back"
    );
    // One of channel 0's two updates completes: the other still holds it.
    defmt::assert!(s.complete_update(channel(0), 7), "complete update 7");
    defmt::assert!(!s.complete_update(channel(0), 7), "update 7 completes once");
    let none = s.release_next().await.is_none();
    defmt::assert!(none, "I5: channel 0 is still gated by update 8");
    // Channel 3's update completes: its HTLC events, and only those.
    defmt::assert!(s.complete_update(channel(3), 1), "complete update 1");
    let late3 = release_all(&mut s, &model).await;
    defmt::assert_eq!(late3.len(), held3, "I5: channel 3's held events");
    for &id in &late3 {
        defmt::assert!(is_htlc_of(&model, id, 3), "I5: {} was not held", id);
    }
    // Channel 0's last update completes.
    defmt::assert!(s.complete_update(channel(0), 8), "complete update 8");
    let late0 = release_all(&mut s, &model).await;
    defmt::assert_eq!(late0.len(), held0, "I5: channel 0's held events");
    for &id in &late0 {
        defmt::assert!(is_htlc_of(&model, id, 0), "I5: {} was not held", id);
    }
    let none = s.release_next().await.is_none();
    defmt::assert!(none, "I4: each event once per run");
    defmt::info!(
        "typed{=str}: {} events on 4 channels, {} released at once, {} held on channel 3 and {} on channel 0 until their updates completed",
        super::PATH,
        TYPED,
        released.len(),
        held3,
        held0
    );

    // Acks: wrong channel and unknown ids are refused and change nothing; every
    // other released event is acked, in a random order.
    let (some_id, some_event) = (model[0].0, model[0].1.clone());
    let other = channel(if some_event.channel() == channel(1) {
        2
    } else {
        1
    });
    let refused = s
        .ack(MonitorEventSource {
            channel: other,
            id: some_id,
        })
        .await;
    defmt::assert_eq!(
        refused,
        Err(AckError::WrongChannel),
        "ack naming another channel"
    );
    let unassigned = s.next_id();
    let refused = s
        .ack(MonitorEventSource {
            channel: other,
            id: unassigned,
        })
        .await;
    defmt::assert_eq!(
        refused,
        Err(AckError::Unknown),
        "ack of an id never assigned"
    );
    // Every event has been released by now: ack every second one.
    defmt::assert_eq!(
        released.len() + late3.len() + late0.len(),
        TYPED,
        "I4: every event released once"
    );
    let mut to_ack: heapless::Vec<EventId, N> =
        model.iter().map(|(id, _)| *id).skip(1).step_by(2).collect();
    let before = match model.iter().find(|(i, _)| *i == to_ack[0]) {
        Some((id, e)) => MonitorEventSource {
            channel: e.channel(),
            id: *id,
        },
        None => defmt::unreachable!(),
    };
    let mut rng = Pcg32::new(first);
    ack_all(&mut s, &mut model, &mut to_ack, &mut rng).await;
    defmt::assert_eq!(s.pending_count(), model.len(), "pending after acks");
    let next = s.next_id();
    drop(s);

    // Cold reboot. The raw journal holds exactly the un-acked events, byte for
    // byte (I1, I4) ...
    power_cycle(m, true);
    let mut j = reboot(m, false, false).await;
    let ids = j.pending_ids();
    defmt::assert_eq!(ids.len(), model.len(), "I1: pending after reboot");
    let mut got = [0u8; MAX_ENCODED_LEN];
    let mut want = [0u8; MAX_ENCODED_LEN];
    for (id, (want_id, event)) in ids.iter().zip(model.iter()) {
        defmt::assert_eq!(*id, *want_id, "I1: pending ids after reboot");
        let len = match j.read(*id, &mut got).await {
            Ok(n) => n,
            Err(e) => defmt::panic!("read of {}: {}", id, e),
        };
        let want = match event.encode(&mut want) {
            Ok(b) => b,
            Err(e) => defmt::panic!("encode: {}", e),
        };
        defmt::assert!(got[..len] == *want, "I4: body of {} differs", id);
    }
    drop(j);

    // ... and the store releases each once, in id order, ungated after the restart.
    let mut s = open_store_or_panic(m).await;
    defmt::assert_eq!(s.next_id(), next, "I3: next id after reboot");
    defmt::assert_eq!(s.pending_count(), model.len(), "I1: pending after reboot");
    let mut replayed = release_all(&mut s, &model).await;
    defmt::assert_eq!(
        replayed.len(),
        model.len(),
        "I4: every un-acked event replayed"
    );
    let none = s.release_next().await.is_none();
    defmt::assert!(none, "I4: replayed once per run");
    let replayed_count = replayed.len();
    let again = s.ack(before).await;
    defmt::assert_eq!(
        again,
        Ok(AckOutcome::AlreadyAcked),
        "I2: an ack from before the reboot"
    );
    ack_all(&mut s, &mut model, &mut replayed, &mut rng).await;
    defmt::assert_eq!(s.pending_count(), 0, "all acked");
    drop(s);

    // Nothing comes back (I2), ids go on (I3).
    power_cycle(m, true);
    let mut s = open_store_or_panic(m).await;
    defmt::assert_eq!(s.pending_count(), 0, "I2: acked typed events stay acked");
    let none = s.release_next().await.is_none();
    defmt::assert!(none, "I2: nothing replayed");
    defmt::assert_eq!(s.next_id(), EventId(first + TYPED as u64), "I3: next id");
    defmt::info!(
        "typed{=str}: after a cold reboot {} un-acked events replayed once in id order, byte-identical; all acked, none back",
        super::PATH,
        replayed_count
    );
}

/// Pushes phase 2's next event (`kind` on channel `ch`), which must get the next
/// id (I3), and records it in the model.
#[maybe]
async fn push(
    s: &mut EventStore<'_>,
    model: &mut heapless::Vec<(EventId, MonitorEvent), N>,
    first: u64,
    kind: Kind,
    ch: usize,
) {
    let n = first + model.len() as u64;
    let event = typed_event(kind, ch, n);
    match s.push(&event).await {
        Ok(id) => defmt::assert_eq!(id, EventId(n), "I3: typed ids follow"),
        Err(e) => defmt::panic!("push of typed event {}: {}", n, e),
    }
    defmt::assert!(model.push((EventId(n), event)).is_ok(), "model full");
}

/// Opens the event store; a failure fails the selftest.
#[maybe]
async fn open_store_or_panic(m: &mut MirrorFlash) -> EventStore<'_> {
    match open_store(m).await {
        Ok(s) => s,
        Err(e) => defmt::panic!("EventStore::open: {}", e),
    }
}
