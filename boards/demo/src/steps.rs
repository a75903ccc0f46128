//! The demo's steps (open, replay, push, acks), written once with `async`
//! operations: compiled blocking (`crate::run`) and async (`crate::asynch::run`),
//! as the library compiles its engine. The including module brings `maybe`,
//! `Journal` and `Medium` for its build.

use super::{maybe, Journal, Medium};
use crate::{monitor, Base, EVENTS_PER_BOOT};
use monitor_events::journal::{AckMode, AckOutcome, Config};
use monitor_events::{EventId, MonitorEvent, MAX_ENCODED_LEN};

/// Recovers, replays, pushes and acks (see the crate documentation) on `medium`,
/// a partition that starts at `base`.
///
/// # Panics
/// With a defmt message on any error: typically `NotAStore` from `open` when the
/// partition holds something else (erase it once if that is expected).
#[maybe]
pub async fn run<M: Medium, const N: usize>(medium: M, config: Config<N>, base: Base) {
    // The words that differ between the boards' log lines, as interned strings:
    // a `{=istr}` costs an index on the wire and little code; `{=str}` would send
    // the bytes.
    let (at, journal_at) = match base {
        Base::Address(_) => (defmt::intern!(""), defmt::intern!("")),
        Base::FlashOffset(_) => (defmt::intern!("offset "), defmt::intern!("flash offset ")),
    };
    let mut journal = match Journal::open(medium, config).await {
        Ok(j) => j,
        Err(e) => fail!(
            "cannot open the journal at {=istr}{=u32:#x}",
            "cannot open the journal at {=istr}{=u32:#x}: {}",
            at,
            base.value();
            e
        ),
    };
    let geometry = journal.config().geometry();
    let acks = match journal.config().ack_mode() {
        AckMode::InPlace => defmt::intern!(""),
        AckMode::Record => defmt::intern!(", ack records"),
    };
    defmt::info!(
        "journal at {=istr}{=u32:#x}, {} x {} B{=istr}: {} pending, next id #{=u64}",
        journal_at,
        base.value(),
        geometry.sector_count,
        geometry.sector_size,
        acks,
        journal.pending_count(),
        journal.next_id().0
    );

    // Replay: every event still pending after the restart goes to the consumer
    // again, in id order, then the consumer acks it.
    let mut body = [0u8; MAX_ENCODED_LEN];
    // The oldest pending event each time (the ack below removes it): no copy of
    // the pending ids on the stack.
    for _ in 0..journal.pending_count() {
        let Some((id, _)) = journal.pending().next() else {
            break;
        };
        let len = match journal.read(id, &mut body).await {
            Ok(n) => n,
            Err(e) => fail!("read #{=u64}", "read #{=u64}: {}", id.0; e),
        };
        match MonitorEvent::decode(&body[..len]) {
            Ok(event) => defmt::info!("replayed #{=u64}: {=str}", id.0, event.kind().as_str()),
            Err(e) => fail!(
                "event #{=u64} does not decode",
                "event #{=u64} does not decode: {}",
                id.0;
                e
            ),
        }
        ack(&mut journal, id).await;
    }

    // The monitor produces events; each is durable when push returns.
    let first = journal.next_id().0;
    let mut pushed = [EventId(0); EVENTS_PER_BOOT];
    for (k, slot) in pushed.iter_mut().enumerate() {
        let event = monitor::event(first + k as u64);
        let bytes = match event.encode(&mut body) {
            Ok(b) => b,
            Err(e) => fail!("encode", "encode: {}"; e),
        };
        *slot = match journal.push(bytes).await {
            Ok(id) => id,
            Err(e) => fail!("push", "push: {}"; e),
        };
        defmt::info!(
            "pushed #{=u64}: {=str} on channel {=u8}, {} B",
            slot.0,
            event.kind().as_str(),
            event.channel().0[31],
            bytes.len()
        );
    }

    // The consumer acks out of order (odd positions first, then even ones); the
    // last two stay pending and are replayed at the next boot. By index: the
    // iterator adapters cost more code than the demo's logic.
    let odd = EVENTS_PER_BOOT / 2;
    for k in 0..EVENTS_PER_BOOT - 2 {
        let i = if k < odd { 2 * k + 1 } else { 2 * (k - odd) };
        ack(&mut journal, pushed[i]).await;
    }
    defmt::info!(
        "{} pending (replayed at the next boot), next id #{=u64}",
        journal.pending_count(),
        journal.next_id().0
    );
}

/// Acks `id` and logs the outcome.
#[maybe]
async fn ack<M: Medium, const N: usize>(journal: &mut Journal<M, N>, id: EventId) {
    match journal.ack(id).await {
        Ok(AckOutcome::Acked) => defmt::info!("acked #{=u64}", id.0),
        Ok(AckOutcome::AlreadyAcked) => defmt::info!("#{=u64} was already acked", id.0),
        Err(e) => fail!("ack #{=u64}", "ack #{=u64}: {}", id.0; e),
    }
}
