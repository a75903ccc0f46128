//! [`EventStore`]: monitor events on the engine's [`Journal`], with ack
//! bookkeeping and in-flight gating. Compiled twice, as the rest of the engine.

use super::{ignore, Config, Journal, MonotonicCounter, NoCounter};
use super::{maybe, Medium};
use crate::event::{
    check_encoding, ChannelId, Checked, DecodeError, EventKind, MonitorEvent, MonitorEventSource,
};
use crate::id::EventId;
use crate::inflight::{ChannelGates, InFlightError};
use crate::journal::{self, OpenError, ReadError};
use crate::pending::{AckError, AckOutcome, InsertError, Leak, MarkInfo, Marks};
use crate::store::{
    encode, journal_push_error, InFlightState, PendingInfo, PushError, StoreError, ACK_CHUNK,
};
use crate::MAX_ENCODED_LEN;

/// Monitor events kept durable until acked, with room for `N` pending events and
/// in-flight monitor updates on up to `K` channels.
///
/// # Durability
///
/// | call | durable on return | RAM only (gone after a restart) |
/// |---|---|---|
/// | [`push`](Self::push) | the event (I1) | an `UpdateCompleted` also completes its channel's updates `<=` its id (I5) |
/// | [`push_batch`](Self::push_batch) | every event of the batch, one sync; refused whole (`Full`, `Invalid`, ...) before anything is written | as `push`, for each event |
/// | [`ack`](Self::ack) | the ack (I2) | |
/// | [`ack_batch`](Self::ack_batch) | every ack of the batch, one sync; refused whole (`Unknown`, `WrongChannel`) before anything is written | |
/// | [`release_next`](Self::release_next) | | each event at most once per run, in id order (I4) |
/// | [`rewind`](Self::rewind) | | every un-acked event is released once more, as after a restart (I4) |
/// | [`peek`](Self::peek), [`pending`](Self::pending), [`has_room`](Self::has_room), [`free_slots`](Self::free_slots) | | read only: nothing is released, nothing written |
/// | [`restore_in_flight`](Self::restore_in_flight) / [`no_updates_in_flight`](Self::no_updates_in_flight) | | after every open, HTLC events wait for one of them (I5) |
/// | [`begin_update`](Self::begin_update) / [`complete_update`](Self::complete_update) | | HTLC events of the channel are held back meanwhile; completion is cumulative (I5) |
///
/// A push, batch or ack that a power cut interrupts before it returns promised
/// nothing: after the restart any of its events (or acks) may or may not be there.
///
/// # In-flight updates and restarts (I5)
///
/// After [`open`](Self::open) every HTLC event is held back until the integrator
/// says what is in flight: [`restore_in_flight`](Self::restore_in_flight) with the
/// `(channel, update_id)` of every monitor update not yet durably applied (LDK's
/// ChannelManager knows them from its own state), or
/// [`no_updates_in_flight`](Self::no_updates_in_flight). Non-HTLC events
/// (`UpdateCompleted`, force-closes, confirmed commitments) are not held back: they
/// carry nothing a lost update could take back.
///
/// Sizing `K`: the most channels that can have an update in flight at once (at most
/// the number of channel monitors the device keeps); any number of updates of one
/// channel share its entry (48 B, see [`ChannelGates`]). If `K` is too small anyway,
/// [`begin_update`](Self::begin_update) answers `Err(Full)` and the store fails
/// closed ([`InFlightState::Overflowed`]): it holds back every HTLC event and drops
/// no gate. Keep the refused update in your own list; once completions made room
/// (`!self.gates().is_full()`), call `restore_in_flight` with every update still in
/// flight, which re-arms per-channel gating.
pub struct EventStore<
    M: Medium,
    const N: usize,
    const K: usize = 8,
    C: MonotonicCounter = NoCounter,
    const CH: usize = N,
> {
    journal: Journal<M, N, C>,
    /// Channels and flags of the pending events, in the journal's order.
    marks: Marks<N, CH>,
    gates: ChannelGates<K>,
    state: InFlightState,
}

#[maybe]
impl<M: Medium, const N: usize, const K: usize, const CH: usize>
    EventStore<M, N, K, NoCounter, CH>
{
    /// Opens the store, replaying every un-acked event (each will be released once
    /// more in this run, I4). A blank medium opens empty. Writes nothing.
    ///
    /// A pending record whose body is no event is refused (`BadEvent`, I9),
    /// except the one a torn or weak write can leave: the last record of its
    /// sector, kept by the journal only once one bit was corrected. That is a
    /// chance match in the torn bytes (a returned push whose bit rotted always
    /// decodes once corrected), dropped as torn; its id is not reused.
    ///
    /// HTLC events are held back until [`restore_in_flight`](Self::restore_in_flight)
    /// or [`no_updates_in_flight`](Self::no_updates_in_flight) (I5).
    ///
    /// # Panics
    /// If the medium fails a read (I7).
    pub async fn open(medium: M, config: Config<N>) -> Result<Self, StoreError> {
        Self::open_with_counter(medium, config, NoCounter).await
    }

    /// As [`open`](Self::open), recovering the store in place, inside `slot`
    /// (a `static` or a long-lived local): `open` holds the journal and the marks
    /// of the pending events in its own frame while they recover, then assembles
    /// the store in its result, which costs most of the store's size in stack on
    /// top of the recovery's. On a small stack, open with this: on a Cortex-M4,
    /// with `N` = 16 and an authenticated journal, 1.9 KB instead of 2.7 KB (the
    /// crate README has the figures). On an error `slot` is left `None`; a store
    /// that an interrupted open (an async future dropped) left in `slot` refuses
    /// every push, ack and read with a panic.
    ///
    /// ```
    /// # use monitor_events::{EventStore, Geometry, Medium, journal::Config};
    /// # fn demo<M: Medium>(flash: M, config: Config<16>) -> Result<(), monitor_events::StoreError> {
    /// let mut slot: Option<EventStore<M, 16>> = None;
    /// let store = EventStore::open_into(&mut slot, flash, config)?;
    /// store.no_updates_in_flight();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    /// If the medium fails a read (I7).
    pub async fn open_into(
        slot: &mut Option<Self>,
        medium: M,
        config: Config<N>,
    ) -> Result<&mut Self, StoreError> {
        Self::open_into_with_counter(slot, medium, config, NoCounter).await
    }
}

#[maybe]
impl<M: Medium, const N: usize, const K: usize, C: MonotonicCounter, const CH: usize>
    EventStore<M, N, K, C, CH>
{
    /// As [`open`](EventStore::open), refusing a medium rolled back behind what
    /// `counter` vouches for (see [`journal::counter`]).
    ///
    /// # Panics
    /// If the medium or the counter fails (I7).
    pub async fn open_with_counter(
        medium: M,
        config: Config<N>,
        counter: C,
    ) -> Result<Self, StoreError> {
        Journal::<M, N, C>::check_geometry(&medium, &config)?;
        // The store is assembled after recovery, in the caller's result: this
        // frame holds the journal and the marks while they recover, not a whole
        // store that is then moved out.
        let mut journal = Journal::unopened(medium, config, counter);
        let mut marks = Marks::new();
        Self::recover_parts(&mut journal, &mut marks).await?;
        // Built here, not through a shared constructor: a store returned by a
        // function and then moved into `Ok` (or into `open_into`'s slot) costs
        // its size in stack once more (measured: about 700 B more).
        Ok(EventStore {
            journal,
            marks,
            gates: ChannelGates::new(),
            state: InFlightState::Undeclared,
        })
    }

    /// As [`open_into`](EventStore::open_into), refusing a medium rolled back
    /// behind what `counter` vouches for.
    ///
    /// # Panics
    /// If the medium or the counter fails (I7).
    pub async fn open_into_with_counter(
        slot: &mut Option<Self>,
        medium: M,
        config: Config<N>,
        counter: C,
    ) -> Result<&mut Self, StoreError> {
        *slot = None;
        Journal::<M, N, C>::check_geometry(&medium, &config)?;
        let recovered = slot
            .insert(EventStore {
                journal: Journal::unopened(medium, config, counter),
                marks: Marks::new(),
                gates: ChannelGates::new(),
                state: InFlightState::Undeclared,
            })
            .recover()
            .await;
        match (recovered, slot) {
            (Ok(()), Some(store)) => Ok(store),
            (Ok(()), None) => unreachable!("just inserted"),
            (Err(e), slot) => {
                *slot = None;
                Err(e)
            }
        }
    }

    /// Recovers the journal and rebuilds the pending index from it, in place.
    async fn recover(&mut self) -> Result<(), StoreError> {
        Self::recover_parts(&mut self.journal, &mut self.marks).await
    }

    /// Recovers `journal` and fills the (empty) `marks` from it.
    async fn recover_parts(
        journal: &mut Journal<M, N, C>,
        marks: &mut Marks<N, CH>,
    ) -> Result<(), StoreError> {
        journal.recover_counted(&mut ignore).await?;
        Self::rebuild_index(journal, marks).await?;
        journal.busy = false;
        Ok(())
    }

    /// Fills the (empty) pending index from the journal's pending events, each
    /// checked as [`MonitorEvent::decode`] checks it (I9). Out of line, so that its
    /// calls never share a frame with the journal's recovery; each event is read
    /// and walked in [`read_pending`](Self::read_pending), and a claim's preimage
    /// hashed here, once that frame with the body's buffer is gone.
    #[inline(never)]
    async fn rebuild_index(
        journal: &mut Journal<M, N, C>,
        marks: &mut Marks<N, CH>,
    ) -> Result<(), StoreError> {
        let mut checked = Checked::new();
        let mut i = 0;
        while let Some(id) = journal.nth_pending(i) {
            let mut judged = Self::read_pending(journal, id, &mut checked).await;
            if let (Ok(()), Some(check)) = (&judged, &checked.preimage) {
                judged = check
                    .run()
                    .map_err(|error| StoreError::BadEvent { id, error });
            }
            if let Err(e) = judged {
                // A record kept by a one-bit correction at the end of its
                // sector whose body is no event is a torn write that matched
                // by chance (I10): dropped, and `i` is now the next event.
                if journal.drop_corrected_tail(id).await {
                    continue;
                }
                return Err(e);
            }
            // Ids come in increasing order and N bounds both indexes alike.
            let kind = checked.kind;
            match marks.push(checked.channel, kind == EventKind::HtlcResolved, Some(kind)) {
                Ok(()) => {}
                Err(InsertError::TooManyChannels) => {
                    return Err(StoreError::TooManyChannels { capacity: CH })
                }
                Err(_) => {
                    return Err(StoreError::Journal(OpenError::TooManyPending {
                        capacity: N,
                    }))
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Reads pending event `id` and checks its encoding into `out`, all but the
    /// preimage hash ([`check_encoding`]).
    #[inline(never)]
    async fn read_pending(
        journal: &mut Journal<M, N, C>,
        id: EventId,
        out: &mut Checked,
    ) -> Result<(), StoreError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        match journal.read_body(id, &mut buf).await {
            Ok(n) => {
                check_encoding(&buf[..n], out).map_err(|error| StoreError::BadEvent { id, error })
            }
            Err(journal::ReadError::BufferTooSmall { needed }) => Err(StoreError::BadEvent {
                id,
                error: DecodeError::TrailingBytes {
                    count: needed - MAX_ENCODED_LEN,
                },
            }),
            Err(_) => unreachable!("listed as pending"),
        }
    }

    /// Validates `event`, makes it durable and returns its id (I1, I3). An
    /// `UpdateCompleted { channel, update_id }` also completes every in-flight
    /// update `<= update_id` of `channel`, as
    /// [`complete_update`](Self::complete_update) does (I5).
    ///
    /// On `Err(Full)` keep the event and push it again after acks made room (see
    /// the crate docs, "Back-pressure"): never drop it.
    ///
    /// # Panics
    /// If the medium fails (I7).
    pub async fn push(&mut self, event: &MonitorEvent) -> Result<EventId, PushError> {
        self.journal.check_not_interrupted();
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = encode(event, &mut buf)?;
        if self.marks.is_full() {
            return Err(PushError::Full);
        }
        if !self.marks.has_channel_room(&event.channel()) {
            return Err(PushError::TooManyChannels { capacity: CH });
        }
        let id = match self.journal.push(bytes).await {
            Ok(id) => id,
            Err(e) => return Err(journal_push_error(e)),
        };
        self.pushed(id, event);
        Ok(id)
    }

    /// Pushes several events with one sync (group commit), writing their ids into
    /// `ids`. `scratch` takes their encodings: the sum of their
    /// [`encoded_len`](MonitorEvent::encoded_len), at most `events.len() *`
    /// [`MAX_ENCODED_LEN`] bytes. All or nothing: if any event is invalid or too
    /// large, if they do not all fit (`Full`) or if `scratch` is too short, nothing
    /// is written. An empty batch writes nothing. Stack: one slice reference per
    /// event.
    ///
    /// # Panics
    /// If the medium fails (I7), or if `ids` is shorter than `events` (before
    /// anything changes).
    pub async fn push_batch(
        &mut self,
        events: &[MonitorEvent],
        scratch: &mut [u8],
        ids: &mut [EventId],
    ) -> Result<(), PushError> {
        self.journal.check_not_interrupted();
        assert!(
            ids.len() >= events.len(),
            "push_batch: ids shorter than events"
        );
        if events.is_empty() {
            return Ok(());
        }
        let mut needed = 0;
        for e in events {
            e.validate().map_err(PushError::Invalid)?;
            needed += e.encoded_len();
        }
        if !self.has_room(events.len()) {
            return Err(PushError::Full);
        }
        if !self.channels_fit(events) {
            return Err(PushError::TooManyChannels { capacity: CH });
        }
        if scratch.len() < needed {
            return Err(PushError::ScratchTooSmall { needed });
        }
        let mut bodies: heapless::Vec<&[u8], N> = heapless::Vec::new();
        let mut rest: &mut [u8] = scratch;
        for e in events {
            let (head, tail) = core::mem::take(&mut rest).split_at_mut(e.encoded_len());
            rest = tail;
            let bytes = encode(e, head)?;
            // Cannot fail: has_room checked events.len() <= N - pending.
            let _ = bodies.push(bytes);
        }
        if let Err(e) = self.journal.push_batch(&bodies, ids).await {
            return Err(journal_push_error(e));
        }
        for (e, id) in events.iter().zip(ids.iter()) {
            self.pushed(*id, e);
        }
        Ok(())
    }

    /// Bookkeeping after `event` became durable as `id`.
    fn pushed(&mut self, id: EventId, event: &MonitorEvent) {
        let kind = event.kind();
        if self
            .marks
            .push(event.channel(), kind == EventKind::HtlcResolved, Some(kind))
            .is_err()
        {
            // Room in both was checked before the journal took the event.
            fatal!(
                "monitor-events: pending marks out of step with the journal at event {}",
                id.0
            );
        }
        if let MonitorEvent::UpdateCompleted { channel, update_id } = event {
            self.gates.complete(*channel, *update_id);
        }
    }

    /// Whether the channels of `events` that have nothing pending yet fit in the
    /// channel table.
    fn channels_fit(&self, events: &[MonitorEvent]) -> bool {
        let mut new = 0;
        for (i, e) in events.iter().enumerate() {
            let c = e.channel();
            if !self.marks.channel_pending(&c) && !events[..i].iter().any(|p| p.channel() == c) {
                new += 1;
            }
        }
        new <= self.marks.free_channels()
    }

    /// Whether `n` more events fit now: a push of `n` events (one by one or as a
    /// batch) will not answer `Full` (events of a channel with nothing pending
    /// also need room in the channel table: `TooManyChannels`).
    pub fn has_room(&self, n: usize) -> bool {
        n <= self.free_slots()
    }

    /// How many more events fit now: `N` minus the pending ones.
    pub fn free_slots(&self) -> usize {
        N - self.marks.len()
    }

    /// Declares the monitor updates in flight after [`open`](Self::open): each
    /// `(channel, update_id)` gates its channel's HTLC events until an update `>=`
    /// it completes. Merged with updates already begun in this run (no gate is
    /// dropped). Then HTLC events of ungated channels flow (I5).
    ///
    /// Also the way out of [`InFlightState::Overflowed`]: pass every update still in
    /// flight, the refused ones included.
    ///
    /// `Err(Full)` when the channels do not all fit in `K`: nothing is declared and
    /// every HTLC event stays held back (fail closed).
    pub fn restore_in_flight(&mut self, updates: &[(ChannelId, u64)]) -> Result<(), InFlightError> {
        match self.gates.declare(updates) {
            Ok(()) => {
                self.state = InFlightState::Declared;
                Ok(())
            }
            Err(e) => {
                if self.state == InFlightState::Declared {
                    self.state = InFlightState::Overflowed;
                }
                Err(e)
            }
        }
    }

    /// Declares that no monitor update is in flight besides those begun in this
    /// run: HTLC events of ungated channels flow (I5). For a device whose monitor
    /// updates are applied synchronously, or a fresh store. After an overflow
    /// ([`InFlightState::Overflowed`]) call it only once every refused update has
    /// completed; otherwise declare them with
    /// [`restore_in_flight`](Self::restore_in_flight).
    pub fn no_updates_in_flight(&mut self) {
        self.state = InFlightState::Declared;
    }

    /// Whether in-flight updates are declared (see [`InFlightState`]).
    pub fn in_flight_state(&self) -> InFlightState {
        self.state
    }

    /// Marks monitor update `update_id` of `channel` as in flight: the channel's
    /// HTLC events are held back until an update `>= update_id` completes (I5).
    /// RAM only.
    ///
    /// `Err(Duplicate)`: an update `>= update_id` of the channel is already in
    /// flight; nothing changes. `Err(Full)`: `K` other channels are gated; the
    /// store fails closed ([`InFlightState::Overflowed`]: every HTLC event held
    /// back) until the in-flight updates are declared again with
    /// [`restore_in_flight`](Self::restore_in_flight). Nothing is dropped.
    pub fn begin_update(
        &mut self,
        channel: ChannelId,
        update_id: u64,
    ) -> Result<(), InFlightError> {
        let r = self.gates.begin(channel, update_id);
        if r == Err(InFlightError::Full) {
            self.state = InFlightState::Overflowed;
        }
        r
    }

    /// Update `update_id` of `channel` is durably applied, and with it every update
    /// `<= update_id` of the channel (LDK's update ids are monotonic per channel).
    /// Returns whether that covered an update in flight. The channel's gate lifts
    /// once an update `>=` every one begun completes.
    pub fn complete_update(&mut self, channel: ChannelId, update_id: u64) -> bool {
        self.gates.complete(channel, update_id)
    }

    /// The in-flight updates per channel.
    pub fn gates(&self) -> &ChannelGates<K> {
        &self.gates
    }

    fn held(gates: &ChannelGates<K>, state: InFlightState, m: &MarkInfo) -> bool {
        m.is_htlc && (state != InFlightState::Declared || gates.is_gated(&m.channel))
    }

    /// The next event to hand to the consumer: the lowest id not yet released in
    /// this run that is not held back (I4, I5). HTLC events are held back while
    /// their channel has an update in flight, and all of them until the in-flight
    /// updates are declared ([`InFlightState`]).
    ///
    /// The event counts as released once it is read: an async call whose future
    /// is dropped before it completes releases nothing, and the next call hands
    /// out the same event.
    ///
    /// # Panics
    /// If the medium fails or the record changed on it since it was written (I7).
    pub async fn release_next(&mut self) -> Option<(EventId, MonitorEvent)> {
        self.journal.check_not_interrupted();
        let (gates, state) = (&self.gates, self.state);
        let pos = self.marks.next_by(|_, m| Self::held(gates, state, m))?;
        let Some(id) = self.journal.nth_pending(pos) else {
            fatal!(
                "monitor-events: pending marks out of step with the journal at {}",
                pos
            )
        };
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let Ok(len) = self.journal.read(id, &mut buf).await else {
            fatal!("monitor-events: pending event {} no longer reads", id.0)
        };
        // Released once read, not before: a future dropped during the read
        // (async) releases nothing, and the next call reads it again.
        self.marks.set_released(pos);
        match MonitorEvent::decode(&buf[..len]) {
            Ok(e) => Some((id, e)),
            Err(_) => fatal!("monitor-events: pending event {} no longer decodes", id.0),
        }
    }

    /// Reads pending event `id` without releasing it; its encoding is left in the
    /// front of `buf` ([`MAX_ENCODED_LEN`] bytes always suffice). Read only. An
    /// event read this way is not released: act only on what
    /// [`release_next`](Self::release_next) hands out (a peeked HTLC event may
    /// still be held back, I5).
    ///
    /// # Panics
    /// If the medium fails or the record changed on it since it was written (I7).
    pub async fn peek(&mut self, id: EventId, buf: &mut [u8]) -> Result<MonitorEvent, ReadError> {
        self.journal.check_not_interrupted();
        if !self.journal.is_pending(id) {
            return Err(ReadError::NotPending);
        }
        let n = self.journal.read(id, buf).await?;
        match MonitorEvent::decode(&buf[..n]) {
            Ok(e) => Ok(e),
            Err(_) => fatal!("monitor-events: pending event {} no longer decodes", id.0),
        }
    }

    /// The pending events in id order, with whether each was released in this run
    /// and whether it is held back now. RAM only.
    pub fn pending(&self) -> impl Iterator<Item = PendingInfo> + '_ {
        self.journal
            .pending()
            .zip(self.marks.iter())
            .map(|((id, _), m)| PendingInfo {
                id,
                channel: m.channel,
                // The store records every event with its kind.
                kind: m.kind.unwrap_or(EventKind::HtlcResolved),
                released: m.released,
                held: Self::held(&self.gates, self.state, &m),
            })
    }

    /// Releases every un-acked event once more, in id order, as after a restart but
    /// without reopening: for a consumer that restarted while the device did not
    /// (I4). Gating is unchanged (I5). RAM only.
    pub fn rewind(&mut self) {
        self.marks.rewind();
    }

    /// Acks an event: durable on return (I2). Acks come in any order;
    /// `AlreadyAcked` for a repeat, `Unknown` for an id never pushed,
    /// `WrongChannel` when the source names another channel. Errors change nothing.
    ///
    /// # Panics
    /// If the medium fails (I7).
    pub async fn ack(&mut self, source: MonitorEventSource) -> Result<AckOutcome, AckError> {
        self.journal.check_not_interrupted();
        let outcome = self.check_ack(&source)?;
        if outcome == AckOutcome::Acked {
            if let Some(pos) = self.journal.position(source.id) {
                self.marks.remove(pos);
            }
            match self.journal.ack(source.id).await {
                Ok(_) => {}
                Err(_) => fatal!(
                    "monitor-events: journal does not know pending event {}",
                    source.id.0
                ),
            }
        }
        Ok(outcome)
    }

    /// Acks several events, writing each outcome into `out`: `Acked` for the first
    /// mention of a pending event, `AlreadyAcked` for an event acked before or
    /// named twice. Refused whole, before anything is written, if any source is
    /// `Unknown` or names the `WrongChannel`. A batch with nothing to ack writes
    /// nothing. One sync per [`ACK_CHUNK`] sources; every ack is durable on
    /// return. Stack: about half a kilobyte, whatever `N`.
    ///
    /// # Panics
    /// If the medium fails (I7), or if `out` is shorter than `sources` (before
    /// anything changes).
    pub async fn ack_batch(
        &mut self,
        sources: &[MonitorEventSource],
        out: &mut [AckOutcome],
    ) -> Result<(), AckError> {
        self.journal.check_not_interrupted();
        assert!(
            out.len() >= sources.len(),
            "ack_batch: out shorter than sources"
        );
        for s in sources {
            self.check_ack(s)?;
        }
        for (part, outs) in sources.chunks(ACK_CHUNK).zip(out.chunks_mut(ACK_CHUNK)) {
            // The distinct pending ids of this part and their positions.
            let mut ids: heapless::Vec<EventId, ACK_CHUNK> = heapless::Vec::new();
            let mut at: heapless::Vec<usize, ACK_CHUNK> = heapless::Vec::new();
            for (s, o) in part.iter().zip(outs.iter_mut()) {
                *o = AckOutcome::AlreadyAcked;
                if ids.contains(&s.id) {
                    continue;
                }
                if let Some(pos) = self.journal.position(s.id) {
                    // Cannot fail: at most ACK_CHUNK sources in a part.
                    let _ = ids.push(s.id);
                    let _ = at.push(pos);
                    *o = AckOutcome::Acked;
                }
            }
            if ids.is_empty() {
                continue;
            }
            // Positions go before the journal forgets them: highest first.
            at.sort_unstable();
            for pos in at.iter().rev() {
                self.marks.remove(*pos);
            }
            let mut done = [AckOutcome::Acked; ACK_CHUNK];
            if self
                .journal
                .ack_batch(&ids, &mut done[..ids.len()])
                .await
                .is_err()
            {
                fatal!("monitor-events: journal refused an ack batch of pending events");
            }
        }
        Ok(())
    }

    /// Rewrites the pending events into fresh sectors, as
    /// [`Journal::compact`]: for a firmware update that lowers `N`, open with
    /// the old `N`, compact, then open with the new one. Changes nothing the
    /// store gives back (ids, order, released or not, gates).
    ///
    /// # Panics
    /// If the medium fails (I7).
    pub async fn compact(&mut self) {
        self.journal.compact().await;
    }

    /// Number of pending events.
    pub fn pending_count(&self) -> usize {
        self.marks.len()
    }

    /// The id the next push gets.
    pub fn next_id(&self) -> EventId {
        self.journal.next_id()
    }

    /// Events still pending after more than `max_age` later pushes.
    pub fn leak_report(&self, max_age: u64) -> impl Iterator<Item = Leak> + '_ {
        let next = self.journal.next_id().0;
        self.journal
            .pending()
            .zip(self.marks.iter())
            .filter_map(move |((id, _), m)| {
                let age = next.saturating_sub(id.0).saturating_sub(1);
                (age > max_age).then_some(Leak {
                    id,
                    channel: m.channel,
                    age,
                })
            })
    }

    /// What [`ack`](Self::ack) would answer for `source`, changing nothing.
    fn check_ack(&self, source: &MonitorEventSource) -> Result<AckOutcome, AckError> {
        if source.id >= self.journal.next_id() {
            return Err(AckError::Unknown);
        }
        match self.journal.position(source.id) {
            None => Ok(AckOutcome::AlreadyAcked),
            Some(pos) if self.marks.channel(pos) == Some(source.channel) => Ok(AckOutcome::Acked),
            Some(_) => Err(AckError::WrongChannel),
        }
    }

    /// The journal underneath.
    pub fn journal(&self) -> &Journal<M, N, C> {
        &self.journal
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.journal.into_medium()
    }
}

blocking_only! {
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        HtlcOutcome, HtlcResolution, HtlcSource, InvalidEvent, PaymentHash, PaymentPreimage,
    };
    use crate::blocking::tests::TestFlash;
    use crate::medium::Geometry;

    const GEO: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 4,
        multiwrite: true,
    };

    fn ch(b: u8) -> ChannelId {
        ChannelId([b; 32])
    }

    fn claim(channel: u8, n: u8) -> MonitorEvent {
        let preimage = PaymentPreimage([n; 32]);
        MonitorEvent::HtlcResolved(HtlcResolution {
            channel: ch(channel),
            payment_hash: preimage.payment_hash(),
            amount_msat: 1000 + n as u64,
            source: HtlcSource::Forward {
                prev_channel: ch(9),
                prev_htlc_id: n as u64,
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: Some(5),
            },
            resolved_on_chain: false,
            user_channel_id: None,
        })
    }

    /// `e` (an HTLC resolution) with an amount of zero: invalid in every build.
    fn zero_amount(mut e: MonitorEvent) -> MonitorEvent {
        if let MonitorEvent::HtlcResolved(h) = &mut e {
            h.amount_msat = 0;
        }
        e
    }

    /// `e` (a claim) with a payment hash its preimage does not hash to: invalid
    /// with the feature `validate`.
    fn wrong_hash(mut e: MonitorEvent) -> MonitorEvent {
        if let MonitorEvent::HtlcResolved(h) = &mut e {
            h.payment_hash = PaymentHash([0; 32]);
        }
        e
    }

    fn open(flash: &mut TestFlash) -> EventStore<&mut TestFlash, 16> {
        EventStore::open(flash, Config::new(GEO, MAX_ENCODED_LEN)).unwrap()
    }

    /// I4, I5: gated HTLC events wait for their update; others are not held back;
    /// everything un-acked is replayed after a restart, once, in id order.
    #[test]
    fn i4_i5_gating_and_replay() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
        s.no_updates_in_flight();
        let a = s.push(&claim(1, 1)).unwrap();
        let b = s
            .push(&MonitorEvent::CommitmentTxConfirmed { channel: ch(1) })
            .unwrap();
        let c = s.push(&claim(2, 2)).unwrap();
        s.begin_update(ch(1), 7).unwrap();
        assert_eq!(
            s.release_next().map(|r| r.0),
            Some(b),
            "I5: non-HTLC event of a gated channel"
        );
        assert_eq!(
            s.release_next().map(|r| r.0),
            Some(c),
            "I5: other channels flow"
        );
        assert_eq!(s.release_next(), None, "I5: the HTLC event waits");
        assert!(s.complete_update(ch(1), 7));
        let (id, ev) = s.release_next().unwrap();
        assert_eq!((id, ev), (a, claim(1, 1)), "I4: byte-identical");
        assert_eq!(s.release_next(), None, "I4: once per run");
        assert_eq!(
            s.ack(MonitorEventSource {
                channel: ch(2),
                id: c
            }),
            Ok(AckOutcome::Acked)
        );
        assert_eq!(
            s.ack(MonitorEventSource {
                channel: ch(1),
                id: c
            }),
            Ok(AckOutcome::AlreadyAcked)
        );
        assert_eq!(
            s.ack(MonitorEventSource {
                channel: ch(2),
                id: a
            }),
            Err(AckError::WrongChannel)
        );
        assert_eq!(
            s.ack(MonitorEventSource {
                channel: ch(2),
                id: EventId(99)
            }),
            Err(AckError::Unknown)
        );
        drop(s);
        let mut s = open(&mut flash);
        s.no_updates_in_flight();
        let replay: std::vec::Vec<_> = core::iter::from_fn(|| s.release_next()).collect();
        assert_eq!(
            replay,
            std::vec![
                (a, claim(1, 1)),
                (b, MonitorEvent::CommitmentTxConfirmed { channel: ch(1) })
            ]
        );
        assert_eq!(s.next_id(), c.next(), "I3");
    }

    /// I6, I9: an invalid event is refused with a typed error and changes nothing;
    /// a full store says Full.
    #[test]
    fn i6_i9_invalid_and_full() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
        let (zero, mismatch) = (zero_amount(claim(1, 1)), wrong_hash(claim(1, 1)));
        assert_eq!(
            s.push(&zero),
            Err(PushError::Invalid(InvalidEvent::ZeroAmount))
        );
        if cfg!(feature = "validate") {
            assert_eq!(
                s.push(&mismatch),
                Err(PushError::Invalid(InvalidEvent::PreimageMismatch))
            );
        } else {
            // Without `validate` the producer vouches for the preimage.
            let mut other = TestFlash::new(GEO);
            assert_eq!(open(&mut other).push(&mismatch), Ok(EventId(0)));
        }
        assert_eq!(s.next_id(), EventId(0));
        for i in 0..16 {
            s.push(&claim(1, i)).unwrap();
        }
        assert_eq!(s.push(&claim(1, 99)), Err(PushError::Full));
        assert_eq!(s.pending_count(), 16);
        assert_eq!(s.leak_report(10).count(), 5);
    }

    /// I6: memory is fixed at compile time and grows linearly with N: the figures
    /// printed are the RAM per pending slot quoted in the docs.
    #[test]
    fn i6_ram_per_pending_slot() {
        // With the channel table sized apart (CH = 16 channels with events pending).
        type S<const N: usize> = EventStore<&'static mut TestFlash, N, 8, NoCounter, 16>;
        let (s16, s64) = (core::mem::size_of::<S<16>>(), core::mem::size_of::<S<64>>());
        let (s256, s4096) = (
            core::mem::size_of::<S<256>>(),
            core::mem::size_of::<S<4096>>(),
        );
        let per_slot = (s64 - s16) / 48;
        assert_eq!((s64 - s16) % 48, 0);
        let fixed = s16 - 16 * per_slot;
        assert_eq!(fixed, s64 - 64 * per_slot, "fixed part");
        assert_eq!(fixed, s256 - 256 * per_slot, "fixed part");
        assert_eq!(fixed, s4096 - 4096 * per_slot, "fixed part");
        std::println!(
            "EventStore<_, N, CH = 16>: N 16: {s16} B, N 256: {s256} B, N 4096: {s4096} B; {per_slot} B per pending slot, {fixed} B fixed"
        );
        // The default CH is N: the channel table then grows with N too.
        type D<const N: usize> = EventStore<&'static mut TestFlash, N>;
        let d = (core::mem::size_of::<D<64>>() - core::mem::size_of::<D<16>>()) / 48;
        std::println!("EventStore<_, N> (CH = N): {d} B per pending slot");
        assert!(per_slot <= 16, "{per_slot}");
        assert!(d <= 50, "{d}");
    }

    /// I9: a record that checks but is not an event fails open with a typed error.
    #[test]
    fn i9_foreign_body_is_a_typed_error() {
        let mut flash = TestFlash::new(GEO);
        {
            let mut j: Journal<_, 16> =
                Journal::open(&mut flash, Config::new(GEO, MAX_ENCODED_LEN)).unwrap();
            j.push(&[0xEE; 20]).unwrap();
        }
        let r = EventStore::<_, 16>::open(&mut flash, Config::new(GEO, MAX_ENCODED_LEN));
        assert!(matches!(
            r,
            Err(StoreError::BadEvent { id: EventId(0), .. })
        ));
    }

    /// I9: `open` judges every pending body as `MonitorEvent::decode` does. Each
    /// byte of a claim's encoding flipped in turn (two masks), behind a valid
    /// event: where `decode` accepts the body, the store opens and releases that
    /// event; where it refuses, `open` (and `open_into`) fails with
    /// `BadEvent` and the same error. A wrong preimage is refused before the
    /// channel table is consulted: with room for one channel, a second channel's
    /// claim with a wrong preimage is `BadEvent`, not `TooManyChannels`
    /// (without the feature `validate`, which checks no preimage, that claim is
    /// an event and the answer `TooManyChannels`).
    #[test]
    fn i9_open_judges_each_pending_body_as_decode_does() {
        let config = Config::<16>::new(GEO, MAX_ENCODED_LEN);
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let body = claim(1, 7).encode(&mut buf).unwrap().to_vec();
        let (mut accepted, mut refused) = (0, 0);
        for at in 0..body.len() {
            for mask in [0x01u8, 0x80] {
                let mut bad = body.clone();
                bad[at] ^= mask;
                let mut flash = TestFlash::new(GEO);
                {
                    let mut j: Journal<_, 16> = Journal::open(&mut flash, config).unwrap();
                    j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
                    j.push(&bad).unwrap();
                }
                let mut copy = flash.clone();
                let mut slot: Option<EventStore<&mut TestFlash, 16>> = None;
                let in_place = EventStore::open_into(&mut slot, &mut copy, config).map(|_| ());
                match MonitorEvent::decode(&bad) {
                    Ok(event) => {
                        accepted += 1;
                        assert_eq!(in_place, Ok(()), "byte {at} ^ {mask:#x}");
                        let mut s = open(&mut flash);
                        s.no_updates_in_flight();
                        assert_eq!(s.release_next().map(|(id, _)| id), Some(EventId(0)));
                        assert_eq!(s.release_next(), Some((EventId(1), event)));
                    }
                    Err(error) => {
                        refused += 1;
                        let want = Err(StoreError::BadEvent {
                            id: EventId(1),
                            error,
                        });
                        let by_value = EventStore::<_, 16>::open(&mut flash, config).map(|_| ());
                        assert_eq!(by_value, want, "byte {at} ^ {mask:#x}");
                        assert_eq!(in_place, want, "byte {at} ^ {mask:#x}");
                        assert!(slot.is_none());
                    }
                }
            }
        }
        // Not vacuous: flips in amounts and ids decode to other valid events.
        assert!(accepted > 0 && refused > 0, "{accepted} accepted, {refused} refused");

        // The preimage is checked before the channel table.
        let mut flash = TestFlash::new(GEO);
        {
            let mut j: Journal<_, 16> = Journal::open(&mut flash, config).unwrap();
            j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
            let mut w = std::vec::Vec::new();
            // Encoded by hand: `encode` refuses a wrong preimage.
            let good = claim(2, 3);
            w.extend_from_slice(good.encode(&mut buf).unwrap());
            w[33..65].copy_from_slice(&[0xAB; 32]);
            if cfg!(feature = "validate") {
                assert_eq!(
                    MonitorEvent::decode(&w),
                    Err(DecodeError::Invalid(InvalidEvent::PreimageMismatch))
                );
            } else {
                assert!(MonitorEvent::decode(&w).is_ok(), "the producer vouches");
            }
            j.push(&w).unwrap();
        }
        let r = EventStore::<_, 16, 8, NoCounter, 1>::open(&mut flash, config).map(|_| ());
        let want = if cfg!(feature = "validate") {
            StoreError::BadEvent {
                id: EventId(1),
                error: DecodeError::Invalid(InvalidEvent::PreimageMismatch),
            }
        } else {
            // Without `validate` the claim is an event: its channel is one too many.
            StoreError::TooManyChannels { capacity: 1 }
        };
        assert_eq!(r, Err(want));
    }

    /// I10, I9: without authentication, the last record of a sector that reads
    /// one bit short of its CRC is kept corrected (a returned push whose bit
    /// rotted). The bytes of a torn or weak write can match that way by chance;
    /// if the corrected body is no event, the store drops the record as the torn
    /// write it is, instead of refusing to open. Built here at every bit of such
    /// a record that should be 0 and reads 1 (its length and kind, its CRC, its
    /// body): `open` and `open_into` must succeed, write nothing, give back
    /// exactly the events pushed before it, never reuse its id, take a push and
    /// do the same after a reopen. The same bytes with a right CRC, or with a
    /// record behind them, are still refused; a real event at the tail that reads
    /// one bit short is still given back, corrected.
    #[test]
    fn i10_store_drops_a_tail_corrected_by_chance_that_is_no_event() {
        let config = Config::<16>::new(GEO, MAX_ENCODED_LEN);
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let garbage = [0x42u8; 40];
        assert!(MonitorEvent::decode(&garbage).is_err(), "no event");
        let mut flash = TestFlash::new(GEO);
        let off = {
            let mut j: Journal<_, 16> = Journal::open(&mut flash, config).unwrap();
            j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
            j.push(claim(1, 2).encode(&mut buf).unwrap()).unwrap();
            let st = j.status();
            let off = (st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size
                + st.current_used;
            assert_eq!(j.push(&garbage), Ok(EventId(2)));
            off as usize
        };
        let image = flash.data.clone();
        // With its CRC right, the record is what a push wrote: refused.
        assert_eq!(
            EventStore::<_, 16>::open(&mut flash, config).map(|_| ()),
            Err(StoreError::BadEvent {
                id: EventId(2),
                error: MonitorEvent::decode(&garbage).unwrap_err(),
            })
        );
        let want = [(EventId(0), claim(0, 1)), (EventId(1), claim(1, 2))];
        let extent = config.extent(garbage.len() as u32) as usize;
        let mut tried = 0;
        for byte in off..off + extent {
            for bit in (0..8).filter(|b| image[byte] & (1 << b) == 0) {
                if (off + 2..off + 3).contains(&byte) {
                    continue; // the ack byte: an ack, not a flip
                }
                let what = format!("bit {bit} of byte {}", byte - off);
                let mut f = TestFlash::new(GEO);
                f.data = image.clone();
                f.data[byte] |= 1 << bit;
                let shown = f.data.clone();
                let mut copy = f.clone();
                let mut slot: Option<EventStore<&mut TestFlash, 16>> = None;
                EventStore::open_into(&mut slot, &mut copy, config)
                    .unwrap_or_else(|e| panic!("I10, {what}: open_into: {e:?}"));
                let mut s = EventStore::<_, 16>::open(&mut f, config)
                    .unwrap_or_else(|e| panic!("I10, {what}: open: {e:?}"));
                s.no_updates_in_flight();
                let got: std::vec::Vec<_> = core::iter::from_fn(|| s.release_next()).collect();
                assert_eq!(got, want, "I1, I4, {what}: exactly the events before it");
                assert_eq!(s.pending_count(), 2, "{what}");
                assert_eq!(s.journal().medium().data, shown, "{what}: open wrote nothing");
                let id = s.push(&claim(2, 3)).unwrap();
                assert!(id.0 > 2, "I3, {what}: the dropped id is not reused: {id}");
                drop(s);
                let mut s = EventStore::<_, 16>::open(&mut f, config).unwrap();
                s.no_updates_in_flight();
                let got: std::vec::Vec<_> = core::iter::from_fn(|| s.release_next()).collect();
                assert_eq!(got.len(), 3, "I1, {what}: after a reopen");
                assert_eq!(got[2], (id, claim(2, 3)), "I1, {what}: the push after it");
                tried += 1;
            }
        }
        assert!(tried > 100, "every bit: {tried}");

        // With a record behind it in its sector, a corrected record is damage:
        // refused.
        let mut f = TestFlash::new(GEO);
        {
            let mut j: Journal<_, 16> = Journal::open(&mut f, config).unwrap();
            j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
            j.push(claim(1, 2).encode(&mut buf).unwrap()).unwrap();
            j.push(&garbage).unwrap();
            j.push(claim(3, 4).encode(&mut buf).unwrap()).unwrap();
        }
        assert_eq!(f.data[off..off + extent], image[off..off + extent]);
        f.data[off + 8 + 5] |= 1;
        assert!(
            EventStore::<_, 16>::open(&mut f, config).is_err(),
            "a corrected record with one behind it is refused"
        );

        // Where writes land out of order (a file), a corrected record whose
        // bit's byte reads 0xFF is kept with the records behind it (a byte a
        // crash kept from landing): not a torn tail, so a body that is no event
        // is refused, not dropped.
        let mut f = TestFlash::new(GEO);
        f.in_order = false;
        let fe = [0xFEu8; 40];
        assert!(MonitorEvent::decode(&fe).is_err(), "no event");
        {
            let mut j: Journal<_, 16> = Journal::open(&mut f, config).unwrap();
            j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
            j.push(claim(1, 2).encode(&mut buf).unwrap()).unwrap();
            j.push(&fe).unwrap();
            j.push(claim(3, 4).encode(&mut buf).unwrap()).unwrap();
        }
        f.data[off + 8 + 5] |= 1;
        assert_eq!(f.data[off + 8 + 5], 0xFF, "the bit's byte reads erased");
        assert!(
            matches!(
                EventStore::<_, 16>::open(&mut f, config).map(|_| ()),
                Err(StoreError::BadEvent { id: EventId(2), .. })
            ),
            "a corrected record with one behind it is no torn tail"
        );

        // A real event at the tail that reads one bit short is kept, corrected.
        let mut f = TestFlash::new(GEO);
        let off = {
            let mut j: Journal<_, 16> = Journal::open(&mut f, config).unwrap();
            j.push(claim(0, 1).encode(&mut buf).unwrap()).unwrap();
            let st = j.status();
            j.push(claim(1, 2).encode(&mut buf).unwrap()).unwrap();
            ((st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size + st.current_used)
                as usize
        };
        let at = (off + 8..off + 8 + 64)
            .find(|&b| f.data[b] & 1 == 0)
            .expect("a clear bit");
        f.data[at] |= 1;
        let mut s = EventStore::<_, 16>::open(&mut f, config).unwrap();
        s.no_updates_in_flight();
        let got: std::vec::Vec<_> = core::iter::from_fn(|| s.release_next()).collect();
        assert_eq!(got, want, "I1: a rotted bit of a returned push is corrected");
    }

    /// I1, I4, I9: `open_into` recovers in place exactly what `open` recovers;
    /// a refused medium (foreign record, wrong geometry) leaves the slot empty,
    /// and a store already in the slot is replaced, not kept.
    #[test]
    fn i1_open_into_recovers_in_place_and_empties_the_slot_on_error() {
        let config = Config::<16>::new(GEO, MAX_ENCODED_LEN);
        let mut flash = TestFlash::new(GEO);
        {
            let mut s = open(&mut flash);
            for n in 0..5 {
                s.push(&claim(n % 2, n)).unwrap();
            }
            s.ack(MonitorEventSource {
                channel: ch(1),
                id: EventId(1),
            })
            .unwrap();
        }
        let by_value: std::vec::Vec<PendingInfo> = open(&mut flash).pending().collect();
        let mut copy = flash.clone();
        let mut slot: Option<EventStore<&mut TestFlash, 16>> = None;
        let store = EventStore::open_into(&mut slot, &mut copy, config).unwrap();
        let in_place: std::vec::Vec<PendingInfo> = store.pending().collect();
        assert_eq!(in_place, by_value);
        assert_eq!(in_place.len(), 4);
        assert!(in_place.iter().all(|p| p.held), "I5: held until declared");
        store.no_updates_in_flight();
        let (id, event) = store.release_next().unwrap();
        assert_eq!((id, event), (EventId(0), claim(0, 0)));
        assert!(slot.is_some());

        // A foreign record: typed error, nothing left in the slot.
        let mut foreign = TestFlash::new(GEO);
        {
            let mut j: Journal<_, 16> = Journal::open(&mut foreign, config).unwrap();
            j.push(&[0xEE; 20]).unwrap();
        }
        let mut slot: Option<EventStore<&mut TestFlash, 16>> = None;
        let r = EventStore::open_into(&mut slot, &mut foreign, config);
        assert!(matches!(
            r,
            Err(StoreError::BadEvent { id: EventId(0), .. })
        ));
        assert!(slot.is_none());

        // A store already in the slot is dropped even when the next open fails.
        let mut blank = TestFlash::new(GEO);
        let mut other = TestFlash::new(Geometry {
            sector_count: 9,
            ..GEO
        });
        let mut slot: Option<EventStore<&mut TestFlash, 16>> = None;
        EventStore::open_into(&mut slot, &mut blank, config).unwrap();
        assert!(slot.is_some());
        let mut slot2: Option<EventStore<&mut TestFlash, 16>> = slot.take();
        let r = EventStore::open_into(&mut slot2, &mut other, config);
        assert!(matches!(
            r,
            Err(StoreError::Journal(OpenError::GeometryMismatch { .. }))
        ));
        assert!(slot2.is_none());
    }

    /// One step of the workload `open`'s two forms are compared on.
    #[derive(Clone, Debug)]
    enum Step {
        /// Push a claim on channel `.0` (the store may answer `Full`).
        Push(u8, u8),
        /// Ack the pending event at this index (modulo the count), if any.
        Ack(usize),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..4, any::<u8>()).prop_map(|(c, n)| Step::Push(c, n)),
            (0usize..16).prop_map(Step::Ack),
        ]
    }

    /// The store's configuration on `geo` (authenticated with `auth`), if
    /// `Config` accepts it.
    fn config_for(geo: Geometry, auth: bool) -> Option<Config<16>> {
        let c = Config::<16>::try_new(geo, MAX_ENCODED_LEN).ok()?;
        if auth {
            #[cfg(feature = "auth")]
            {
                use crate::blocking::tests::{KEY, REGION};
                return c.with_auth(crate::journal::Auth::new(KEY, REGION)).ok();
            }
            // The caller asks for it only with the feature.
            #[cfg(not(feature = "auth"))]
            unreachable!("an authenticated configuration needs the feature `auth`");
        }
        Some(c)
    }

    /// What an open gave: the pending events and the next id, or the error.
    fn opened(
        r: Result<&mut EventStore<&mut TestFlash, 16>, StoreError>,
    ) -> Result<(std::vec::Vec<PendingInfo>, EventId), StoreError> {
        r.map(|s| (s.pending().collect(), s.next_id()))
    }

    proptest::proptest! {
        /// I1, I8, I9: `open` (recovering the parts in its frame) and
        /// `open_into` (recovering in place) are two recoveries of one image: on
        /// any image a random workload leaves, in every mode at once (in-place
        /// acks, ack records, authenticated records; 4 to 32 B program units;
        /// 2 or 4 KiB sectors, 8 of them or the fewest `Config` accepts, which
        /// wrap and compact within the workload), cut at a random operation,
        /// with a random bit flipped or byte overwritten, both give the same
        /// pending events and next id, or the same error, and neither writes.
        #[test]
        fn i1_i8_open_by_value_and_in_place_agree_on_any_image(
            steps in proptest::collection::vec(step(), 0..400),
            small in proptest::prelude::any::<bool>(),
            fewest in proptest::prelude::any::<bool>(),
            records in proptest::prelude::any::<bool>(),
            auth in proptest::prelude::any::<bool>(),
            write_log in 2u32..=5,
            cut in proptest::option::of(0u64..400),
            seed in 1u64..u64::MAX,
            damage in proptest::option::of(
                (0usize..1 << 15, 0u8..8, proptest::prelude::any::<bool>())
            ),
        ) {
            let auth = records && auth && cfg!(feature = "auth");
            let geo = Geometry {
                sector_size: if small { 2048 } else { 4096 },
                write_size: 1 << write_log,
                multiwrite: !records,
                ..GEO
            };
            let (geo, config) = if fewest {
                (3..=64).find_map(|n| {
                    let geo = Geometry { sector_count: n, ..geo };
                    config_for(geo, auth).map(|c| (geo, c))
                })
            } else {
                config_for(geo, auth).map(|c| (geo, c))
            }
            .expect("a configuration");
            crate::blocking::tests::quiet_power_cuts();
            let record_mode = config.ack_mode() == crate::journal::AckMode::Record;
            proptest::prop_assert_eq!(record_mode, records);
            let mut flash = TestFlash::new(geo);
            flash.cut_at = cut;
            flash.torn_seed = seed;
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut s = EventStore::<_, 16>::open(&mut flash, config).unwrap();
                s.no_updates_in_flight();
                for step in &steps {
                    match *step {
                        Step::Push(c, n) => {
                            let _ = s.push(&claim(c, n));
                        }
                        Step::Ack(k) => {
                            let count = s.pending_count();
                            let p = s.pending().nth(k % count.max(1));
                            if let Some(p) = p {
                                let source = MonitorEventSource { channel: p.channel, id: p.id };
                                s.ack(source).unwrap();
                            }
                        }
                    }
                }
            }));
            // Only a power cut stops the workload.
            proptest::prop_assert!(run.is_ok() || flash.dead, "the workload failed without a cut");
            flash.power_on();
            if let Some((at, bit, flip)) = damage {
                let at = at % flash.data.len();
                if flip {
                    flash.data[at] ^= 1 << bit;
                } else {
                    flash.data[at] = seed as u8;
                }
            }
            let image = flash.data.clone();
            let mut a = flash.clone();
            let by_value = opened(EventStore::open(&mut a, config).as_mut().map_err(|e| *e));
            let mut b = flash.clone();
            let mut slot = None;
            let in_place = opened(EventStore::open_into(&mut slot, &mut b, config));
            proptest::prop_assert_eq!(&by_value, &in_place);
            proptest::prop_assert_eq!(slot.is_some(), in_place.is_ok(), "I9: the slot on error");
            proptest::prop_assert!(a.data == image && b.data == image, "open writes nothing");
        }
    }

    /// A medium that counts what reaches it, to show which calls write and sync.
    struct Counting<'a> {
        inner: &'a mut TestFlash,
        writes: u32,
        syncs: u32,
    }

    impl Medium for Counting<'_> {
        type Error = <TestFlash as Medium>::Error;
        fn geometry(&self) -> Geometry {
            self.inner.geometry()
        }
        fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
            self.inner.read(offset, buf)
        }
        fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
            self.writes += 1;
            self.inner.program(offset, data)
        }
        fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
            self.writes += 1;
            self.inner.erase(sector)
        }
        fn sync(&mut self) -> Result<(), Self::Error> {
            self.syncs += 1;
            self.inner.sync()
        }
    }

    type Counted<'a> = EventStore<Counting<'a>, 16, 2>;

    fn open_counted(flash: &mut TestFlash) -> Counted<'_> {
        let m = Counting {
            inner: flash,
            writes: 0,
            syncs: 0,
        };
        EventStore::open(m, Config::new(GEO, MAX_ENCODED_LEN)).unwrap()
    }

    /// (writes, syncs) so far.
    fn io(s: &Counted<'_>) -> (u32, u32) {
        let m = s.journal().medium();
        (m.writes, m.syncs)
    }

    fn confirmed(channel: u8) -> MonitorEvent {
        MonitorEvent::CommitmentTxConfirmed {
            channel: ch(channel),
        }
    }

    fn done(channel: u8, update_id: u64) -> MonitorEvent {
        MonitorEvent::UpdateCompleted {
            channel: ch(channel),
            update_id,
        }
    }

    fn src(channel: u8, id: EventId) -> MonitorEventSource {
        MonitorEventSource {
            channel: ch(channel),
            id,
        }
    }

    fn drain<M: Medium, const N: usize, const K: usize>(
        s: &mut EventStore<M, N, K>,
    ) -> std::vec::Vec<EventId> {
        core::iter::from_fn(|| s.release_next().map(|r| r.0)).collect()
    }

    /// I5: the device restarts while an update of channel 1 is in flight. After the
    /// open nothing is declared: no HTLC event of any channel comes out (the unsafe
    /// order cannot release), other events do; the declaration gates exactly the
    /// declared channel until its update completes.
    #[test]
    fn i5_restart_while_gated_holds_htlc_events() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
        assert_eq!(s.in_flight_state(), InFlightState::Undeclared);
        s.no_updates_in_flight();
        let a = s.push(&claim(1, 1)).unwrap();
        let b = s.push(&confirmed(1)).unwrap();
        let c = s.push(&claim(2, 2)).unwrap();
        s.begin_update(ch(1), 7).unwrap();
        assert_eq!(drain(&mut s), [b, c]);
        drop(s); // power lost with update 7 of channel 1 still in flight

        let mut s = open(&mut flash);
        assert_eq!(s.in_flight_state(), InFlightState::Undeclared);
        assert_eq!(
            drain(&mut s),
            [b],
            "I5: before the declaration only non-HTLC events flow"
        );
        let held: std::vec::Vec<_> = s.pending().filter(|p| p.held).map(|p| p.id).collect();
        assert_eq!(held, [a, c], "I5: every HTLC event is held back");
        s.restore_in_flight(&[(ch(1), 7)]).unwrap();
        assert_eq!(s.in_flight_state(), InFlightState::Declared);
        assert_eq!(drain(&mut s), [c], "I5: channel 2 has nothing in flight");
        assert!(s.complete_update(ch(1), 7));
        assert_eq!(drain(&mut s), [a], "I5: released once its update completed");
        assert_eq!(drain(&mut s), [], "I4: once per run");
    }

    /// I5: completing update u completes every update <= u of the channel, by call
    /// or by pushing `UpdateCompleted`; a lower completion keeps the gate.
    #[test]
    fn i5_cumulative_completion() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
        s.no_updates_in_flight();
        let a = s.push(&claim(1, 1)).unwrap();
        s.begin_update(ch(1), 6).unwrap();
        s.begin_update(ch(1), 7).unwrap();
        assert_eq!(drain(&mut s), []);
        assert!(s.complete_update(ch(1), 7), "7 covers 6 and 7");
        assert!(!s.complete_update(ch(1), 6), "6 completed with 7");
        assert_eq!(drain(&mut s), [a], "I5: nothing of channel 1 in flight");

        let b = s.push(&claim(1, 2)).unwrap();
        s.begin_update(ch(1), 8).unwrap();
        s.begin_update(ch(1), 9).unwrap();
        let d8 = s.push(&done(1, 8)).unwrap();
        assert_eq!(drain(&mut s), [d8], "I5: update 9 still holds the claim");
        let mut ids = [EventId(0); 2];
        let mut scratch = [0u8; 2 * MAX_ENCODED_LEN];
        s.push_batch(&[confirmed(3), done(1, 9)], &mut scratch, &mut ids)
            .unwrap();
        assert!(
            s.gates().is_empty(),
            "I5: the pushed completion lifted the gate"
        );
        assert_eq!(drain(&mut s), [b, ids[0], ids[1]]);
    }

    /// I5, I6: a full in-flight table refuses, drops no gate and fails closed
    /// until the in-flight updates are declared again.
    #[test]
    fn i5_full_in_flight_fails_closed() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let on3 = s.push(&claim(3, 3)).unwrap();
        let on4 = s.push(&claim(4, 4)).unwrap();
        let other = s.push(&confirmed(4)).unwrap();
        s.begin_update(ch(1), 1).unwrap();
        s.begin_update(ch(2), 1).unwrap();
        s.begin_update(ch(1), 2).unwrap(); // same channel: same entry
        assert_eq!(s.begin_update(ch(3), 1), Err(InFlightError::Full));
        assert_eq!(s.in_flight_state(), InFlightState::Overflowed);
        assert_eq!(s.gates().len(), 2, "I6: no gate dropped");
        assert_eq!(
            drain(&mut s),
            [other],
            "I5: fail closed: no HTLC event, not even of ungated channel 4"
        );
        assert_eq!(
            s.restore_in_flight(&[(ch(3), 1)]),
            Err(InFlightError::Full),
            "still no room"
        );
        assert_eq!(s.in_flight_state(), InFlightState::Overflowed);
        assert_eq!(drain(&mut s), []);
        assert!(s.complete_update(ch(1), 2));
        s.restore_in_flight(&[(ch(3), 1), (ch(2), 1)]).unwrap();
        assert_eq!(s.in_flight_state(), InFlightState::Declared);
        assert_eq!(drain(&mut s), [on4], "I5: channel 3 stays gated");
        assert!(s.complete_update(ch(3), 1));
        assert_eq!(drain(&mut s), [on3]);
    }

    /// I4: peek and the pending list read without releasing or writing; rewind
    /// releases every un-acked event once more, in id order, gating unchanged.
    #[test]
    fn i4_peek_and_rewind() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let events = [claim(1, 1), confirmed(2), claim(2, 3), done(1, 4)];
        let ids: std::vec::Vec<_> = events.iter().map(|e| s.push(e).unwrap()).collect();
        let before = io(&s);
        let mut buf = [0u8; MAX_ENCODED_LEN];
        for (id, e) in ids.iter().zip(&events) {
            assert_eq!(s.peek(*id, &mut buf).as_ref(), Ok(e), "I4: byte-identical");
            let mut enc = [0u8; MAX_ENCODED_LEN];
            assert_eq!(&buf[..e.encoded_len()], e.encode(&mut enc).unwrap());
        }
        let mut small = [0u8; 8];
        assert!(matches!(
            s.peek(ids[0], &mut small),
            Err(ReadError::BufferTooSmall { .. })
        ));
        assert_eq!(s.peek(EventId(99), &mut buf), Err(ReadError::NotPending));
        let listed: std::vec::Vec<_> = s
            .pending()
            .map(|p| (p.id, p.channel, p.kind, p.released))
            .collect();
        let want: std::vec::Vec<_> = ids
            .iter()
            .zip(&events)
            .map(|(id, e)| (*id, e.channel(), e.kind(), false))
            .collect();
        assert_eq!(listed, want, "peek released nothing");
        assert_eq!(io(&s), before, "peek and pending write nothing");

        s.begin_update(ch(2), 1).unwrap();
        assert_eq!(drain(&mut s), [ids[0], ids[1], ids[3]]);
        s.ack(src(2, ids[1])).unwrap();
        let io_before_rewind = io(&s);
        s.rewind();
        assert_eq!(io(&s), io_before_rewind, "rewind is RAM only");
        assert!(s.pending().all(|p| !p.released));
        assert_eq!(
            drain(&mut s),
            [ids[0], ids[3]],
            "I4: un-acked once more, I5: gate kept"
        );
        assert!(s.pending().any(|p| p.id == ids[2] && p.held && !p.released));
        assert!(s.complete_update(ch(2), 1));
        assert_eq!(drain(&mut s), [ids[2]]);
        assert_eq!(drain(&mut s), [], "I4: once per rewind");
    }

    /// I1: a batch is refused whole (invalid event, no room, short scratch) with
    /// nothing written, or made durable whole with one sync.
    #[test]
    fn i1_push_batch_all_or_nothing() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let mut scratch = [0u8; 4 * MAX_ENCODED_LEN];
        let mut ids = [EventId(0); 4];
        let before = (io(&s), s.next_id());
        let mut bad = std::vec![(zero_amount(claim(1, 9)), InvalidEvent::ZeroAmount)];
        if cfg!(feature = "validate") {
            bad.push((wrong_hash(claim(1, 9)), InvalidEvent::PreimageMismatch));
        }
        for (bad, error) in bad {
            let batch = [claim(1, 1), bad, confirmed(2)];
            assert_eq!(
                s.push_batch(&batch, &mut scratch, &mut ids),
                Err(PushError::Invalid(error))
            );
        }
        let good = [claim(1, 1), claim(1, 2), confirmed(2)];
        let needed: usize = good.iter().map(MonitorEvent::encoded_len).sum();
        assert_eq!(
            s.push_batch(&good, &mut scratch[..needed - 1], &mut ids),
            Err(PushError::ScratchTooSmall { needed })
        );
        assert_eq!(
            (io(&s), s.next_id()),
            before,
            "refused batches wrote nothing"
        );
        for i in 0..14 {
            s.push(&claim(2, i)).unwrap();
        }
        let before_full = (io(&s), s.next_id());
        assert!(s.has_room(2) && !s.has_room(3));
        assert_eq!(
            s.push_batch(&good, &mut scratch, &mut ids),
            Err(PushError::Full)
        );
        assert_eq!((io(&s), s.next_id()), before_full, "I6: Full wrote nothing");
        assert_eq!(s.pending_count(), 14);
        drop(s);

        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let first = s.next_id();
        assert_eq!(first, EventId(14), "I3: the refused batches took no ids");
        let sources: std::vec::Vec<_> = (0..14).map(|i| src(2, EventId(i))).collect();
        let mut out = [AckOutcome::Acked; 14];
        s.ack_batch(&sources, &mut out).unwrap();
        let before = io(&s);
        s.push_batch(&good, &mut scratch, &mut ids).unwrap();
        assert_eq!(io(&s).1, before.1 + 1, "one sync for the batch");
        assert_eq!(&ids[..3], [first, first.next(), first.next().next()]);
        drop(s);

        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let replay: std::vec::Vec<_> = core::iter::from_fn(|| s.release_next()).collect();
        let want: std::vec::Vec<_> = ids[..3].iter().copied().zip(good).collect();
        assert_eq!(replay, want, "I1: the whole batch survives the restart");
    }

    /// I6, I9: a full channel table refuses an event of a new channel (typed,
    /// nothing written) and takes events of channels already pending; a medium
    /// whose pending events name more channels than `CH` fails `open` with a
    /// typed error.
    #[test]
    fn i6_channel_table_full_is_typed_and_writes_nothing() {
        let config = Config::<16>::new(GEO, MAX_ENCODED_LEN);
        let mut flash = TestFlash::new(GEO);
        {
            let mut s: EventStore<&mut TestFlash, 16, 2, NoCounter, 2> =
                EventStore::open(&mut flash, config).unwrap();
            s.push(&claim(1, 1)).unwrap();
            s.push(&claim(2, 2)).unwrap();
            let next = s.next_id();
            assert_eq!(
                s.push(&claim(3, 3)),
                Err(PushError::TooManyChannels { capacity: 2 })
            );
            let mut scratch = [0u8; 2 * MAX_ENCODED_LEN];
            let mut ids = [EventId(0); 2];
            assert_eq!(
                s.push_batch(&[claim(1, 4), claim(3, 5)], &mut scratch, &mut ids),
                Err(PushError::TooManyChannels { capacity: 2 })
            );
            assert_eq!(s.next_id(), next, "nothing written");
            assert_eq!(s.push(&claim(2, 6)), Ok(next));
            s.ack(src(1, EventId(0))).unwrap();
            assert_eq!(
                s.push(&claim(3, 7)).map(|_| ()),
                Ok(()),
                "a freed entry is reused"
            );
        }
        let r = EventStore::<&mut TestFlash, 16, 2, NoCounter, 1>::open(&mut flash, config);
        assert!(matches!(
            r,
            Err(StoreError::TooManyChannels { capacity: 1 })
        ));
        let s =
            EventStore::<&mut TestFlash, 16, 2, NoCounter, 2>::open(&mut flash, config).unwrap();
        let channels: std::vec::Vec<ChannelId> = s.pending().map(|p| p.channel).collect();
        assert_eq!(channels, [ch(2), ch(2), ch(3)]);
    }

    /// I2, I4: an ack batch longer than [`ACK_CHUNK`], in random order with
    /// repeats across chunk boundaries and already acked ids: each pending id is
    /// acked once, one sync per chunk with something to ack, the channels of what
    /// stays pending are still right, and a restart gives back exactly the rest.
    #[test]
    fn i2_ack_batch_across_chunks() {
        const BIG: Geometry = Geometry {
            sector_size: 65536,
            sector_count: 4,
            write_size: 4,
            multiwrite: true,
        };
        let mut flash = TestFlash::new(BIG);
        let m = Counting {
            inner: &mut flash,
            writes: 0,
            syncs: 0,
        };
        let mut s: EventStore<Counting<'_>, 128, 2, NoCounter, 8> =
            EventStore::open(m, Config::new(BIG, MAX_ENCODED_LEN)).unwrap();
        s.no_updates_in_flight();
        let ids: std::vec::Vec<EventId> = (0..100)
            .map(|i| s.push(&claim((i % 5) as u8, i as u8)).unwrap())
            .collect();
        s.ack(src(2, ids[7])).unwrap();
        // 80 sources: ids 0..70 shuffled, then ten repeats of earlier ones.
        let mut order: std::vec::Vec<usize> = (0..70).collect();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        order.extend_from_slice(&[order[3], order[40], order[69], 7, 7, 0, 1, 2, 3, 4]);
        let sources: std::vec::Vec<MonitorEventSource> =
            order.iter().map(|&i| src((i % 5) as u8, ids[i])).collect();
        let mut out = [AckOutcome::Acked; 80];
        let syncs = s.journal().medium().syncs;
        s.ack_batch(&sources, &mut out).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (k, &i) in order.iter().enumerate() {
            let first = i != 7 && seen.insert(i);
            let want = if first {
                AckOutcome::Acked
            } else {
                AckOutcome::AlreadyAcked
            };
            assert_eq!(out[k], want, "source {k} (id {i})");
        }
        assert_eq!(
            s.journal().medium().syncs,
            syncs + 3,
            "one sync per chunk of 32 with something to ack"
        );
        let left: std::vec::Vec<(EventId, ChannelId)> =
            s.pending().map(|p| (p.id, p.channel)).collect();
        let want: std::vec::Vec<(EventId, ChannelId)> =
            (70..100).map(|i| (ids[i], ch((i % 5) as u8))).collect();
        assert_eq!(left, want, "I4: the marks stay in step with the journal");
        assert_eq!(s.pending_count(), 30);
        drop(s);
        let mut s: EventStore<&mut TestFlash, 128, 2, NoCounter, 8> =
            EventStore::open(&mut flash, Config::new(BIG, MAX_ENCODED_LEN)).unwrap();
        s.no_updates_in_flight();
        let replay: std::vec::Vec<(EventId, ChannelId)> = std::iter::from_fn(|| s.release_next())
            .map(|(id, e)| (id, e.channel()))
            .collect();
        assert_eq!(replay, want, "I2: acked ids never come back");
    }

    /// I2: an ack batch is refused whole (unknown id, wrong channel) with nothing
    /// written, or made durable whole with one sync; duplicates and acked ids
    /// answer AlreadyAcked.
    #[test]
    fn i2_ack_batch_all_or_nothing() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        let ids: std::vec::Vec<_> = (0..5).map(|i| s.push(&claim(1, i)).unwrap()).collect();
        let mut out = [AckOutcome::Acked; 8];
        let before = io(&s);
        assert_eq!(
            s.ack_batch(&[src(1, ids[0]), src(1, EventId(77))], &mut out),
            Err(AckError::Unknown)
        );
        assert_eq!(
            s.ack_batch(&[src(1, ids[0]), src(2, ids[1])], &mut out),
            Err(AckError::WrongChannel)
        );
        assert_eq!(io(&s), before, "refused batches write nothing");
        assert_eq!(s.pending_count(), 5);
        s.ack(src(1, ids[4])).unwrap();
        let before = io(&s);
        let batch = [
            src(1, ids[3]),
            src(1, ids[0]),
            src(1, ids[3]),
            src(1, ids[4]),
        ];
        s.ack_batch(&batch, &mut out).unwrap();
        assert_eq!(
            out[..4],
            [
                AckOutcome::Acked,
                AckOutcome::Acked,
                AckOutcome::AlreadyAcked,
                AckOutcome::AlreadyAcked
            ]
        );
        assert_eq!(io(&s).1, before.1 + 1, "one sync for the batch");
        let before = io(&s);
        s.ack_batch(&[src(1, ids[0])], &mut out).unwrap();
        assert_eq!(io(&s), before, "nothing left to ack: nothing written");
        drop(s);
        let mut s = open_counted(&mut flash);
        s.no_updates_in_flight();
        assert_eq!(
            drain(&mut s),
            [ids[1], ids[2]],
            "I2: acked ids never come back"
        );
    }

    /// I6: the producer pattern for Full: keep the event, retry after acks; never
    /// drop. Every event the monitor made ends up pushed, in its order.
    #[test]
    fn i6_full_drops_nothing() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
        s.no_updates_in_flight();
        let made: std::vec::Vec<_> = (0..40).map(|i| claim(1 + i % 3, i)).collect();
        let mut queue: std::collections::VecDeque<_> = made.iter().cloned().collect();
        let mut pushed = std::vec::Vec::new();
        let mut refused = 0;
        while !queue.is_empty() {
            // The monitor makes events faster than the consumer acks them.
            while let Some(e) = queue.front() {
                let free = s.free_slots();
                match s.push(e) {
                    Ok(id) => {
                        pushed.push((id, queue.pop_front().unwrap()));
                        assert_eq!(s.free_slots(), free - 1);
                    }
                    Err(PushError::Full) => {
                        assert_eq!(free, 0);
                        assert!(!s.has_room(1));
                        refused += 1;
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            // The consumer handles two events and acks them.
            for _ in 0..2 {
                if let Some((id, e)) = s.release_next() {
                    s.ack(MonitorEventSource {
                        channel: e.channel(),
                        id,
                    })
                    .unwrap();
                }
            }
        }
        assert!(refused > 0, "the store was full at times");
        let order: std::vec::Vec<_> = pushed.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(order, made, "I6: nothing dropped, order kept");
    }
}

}
