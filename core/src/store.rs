//! The typed event store: monitor events on a [`Journal`], with ack bookkeeping and
//! in-flight gating.

use crate::event::{
    ChannelId, DecodeError, EncodeError, InvalidEvent, MonitorEvent, MonitorEventSource,
};
use crate::id::EventId;
use crate::inflight::{InFlight, InFlightError};
use crate::journal::{self, Config, Journal, MonotonicCounter, NoCounter, OpenError};
use crate::medium::Medium;
use crate::pending::{AckError, AckOutcome, Leak, PendingIndex};
use crate::MAX_ENCODED_LEN;

/// Why [`EventStore::open`] failed. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StoreError {
    /// The journal could not be recovered.
    Journal(OpenError),
    /// A pending record checks but does not hold a valid monitor event (it was
    /// written by something else).
    BadEvent {
        /// The record's id.
        id: EventId,
        /// Why it does not decode.
        error: DecodeError,
    },
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Journal(e)
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Journal(e) => write!(f, "{e}"),
            StoreError::BadEvent { id, error } => write!(f, "event {id} does not decode: {error}"),
        }
    }
}

impl core::error::Error for StoreError {}

/// Why a push was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PushError {
    /// `N` events are pending (invariant I6).
    Full,
    /// The event is not valid (a preimage that does not hash to the payment hash,
    /// a field out of bounds).
    Invalid(InvalidEvent),
    /// The encoded event exceeds the journal's configured body bound.
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The bound.
        max: usize,
    },
}

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PushError::Full => f.write_str("the store is full: ack events first"),
            PushError::Invalid(e) => write!(f, "invalid event: {e}"),
            PushError::TooLarge { len, max } => {
                write!(f, "encoded event of {len} B exceeds the bound of {max} B")
            }
        }
    }
}

impl core::error::Error for PushError {}

/// Monitor events kept durable until acked, with room for `N` pending events and
/// `K` in-flight monitor updates.
///
/// | call | durable on return | RAM only |
/// |---|---|---|
/// | [`push`](Self::push) | the event (I1) | |
/// | [`ack`](Self::ack) | the ack (I2) | |
/// | [`release_next`](Self::release_next) | | each event at most once per run, in id order (I4) |
/// | [`begin_update`](Self::begin_update) / [`complete_update`](Self::complete_update) | | HTLC events of the channel are held back meanwhile (I5) |
pub struct EventStore<
    M: Medium,
    const N: usize,
    const K: usize = 8,
    C: MonotonicCounter = NoCounter,
> {
    journal: Journal<M, N, C>,
    index: PendingIndex<N>,
    gates: InFlight<K>,
}

impl<M: Medium, const N: usize, const K: usize> EventStore<M, N, K> {
    /// Opens the store, replaying every un-acked event (each will be released once
    /// more in this run, I4). A blank medium opens empty. Writes nothing.
    ///
    /// # Panics
    /// If the medium fails a read (I7).
    pub fn open(medium: M, config: Config<N>) -> Result<Self, StoreError> {
        EventStore::from_journal(Journal::open(medium, config)?)
    }
}

impl<M: Medium, const N: usize, const K: usize, C: MonotonicCounter> EventStore<M, N, K, C> {
    /// As [`open`](EventStore::open), refusing a medium rolled back behind what
    /// `counter` vouches for (see [`journal::counter`]).
    ///
    /// # Panics
    /// If the medium or the counter fails (I7).
    pub fn open_with_counter(medium: M, config: Config<N>, counter: C) -> Result<Self, StoreError> {
        EventStore::from_journal(Journal::open_with_counter(medium, config, counter)?)
    }

    fn from_journal(mut journal: Journal<M, N, C>) -> Result<Self, StoreError> {
        let mut index = PendingIndex::new();
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let mut i = 0;
        loop {
            let next = journal.pending().nth(i);
            let Some((id, _)) = next else { break };
            let event = match journal.read(id, &mut buf) {
                Ok(n) => MonitorEvent::decode(&buf[..n])
                    .map_err(|error| StoreError::BadEvent { id, error })?,
                Err(journal::ReadError::BufferTooSmall { needed }) => {
                    let count = needed - MAX_ENCODED_LEN;
                    return Err(StoreError::BadEvent {
                        id,
                        error: DecodeError::TrailingBytes { count },
                    });
                }
                Err(journal::ReadError::NotPending) => unreachable!("listed as pending"),
            };
            // Ids come in increasing order and N bounds both indexes alike.
            if index.insert(id, event.channel(), event.is_htlc()).is_err() {
                return Err(StoreError::Journal(OpenError::TooManyPending {
                    capacity: N,
                }));
            }
            i += 1;
        }
        index.advance_next_id(journal.next_id());
        Ok(EventStore {
            journal,
            index,
            gates: InFlight::new(),
        })
    }

    /// Validates `event`, makes it durable and returns its id (I1, I3).
    ///
    /// # Panics
    /// If the medium fails (I7).
    pub fn push(&mut self, event: &MonitorEvent) -> Result<EventId, PushError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = match event.encode(&mut buf) {
            Ok(b) => b,
            Err(EncodeError::Invalid(e)) => return Err(PushError::Invalid(e)),
            Err(_) => {
                return Err(PushError::TooLarge {
                    len: event.encoded_len(),
                    max: MAX_ENCODED_LEN,
                })
            }
        };
        if self.index.is_full() {
            return Err(PushError::Full);
        }
        let id = match self.journal.push(bytes) {
            Ok(id) => id,
            Err(journal::PushError::Full) => return Err(PushError::Full),
            Err(journal::PushError::TooLarge { len, max }) => {
                return Err(PushError::TooLarge { len, max })
            }
        };
        if self
            .index
            .insert(id, event.channel(), event.is_htlc())
            .is_err()
        {
            // The journal and the index agree on capacity and ids by construction.
            fatal!(
                "monitor-events: pending index out of step with the journal at event {}",
                id.0
            );
        }
        Ok(id)
    }

    /// Marks a monitor update of `channel` as in flight: its HTLC events are held
    /// back until [`complete_update`](Self::complete_update) (I5). RAM only.
    pub fn begin_update(
        &mut self,
        channel: ChannelId,
        update_id: u64,
    ) -> Result<(), InFlightError> {
        self.gates.begin(channel, update_id)
    }

    /// The update is durably applied; returns whether it was in flight.
    pub fn complete_update(&mut self, channel: ChannelId, update_id: u64) -> bool {
        self.gates.complete(channel, update_id)
    }

    /// The next event to hand to the consumer: the lowest id not yet released in
    /// this run whose channel is not gated (I4, I5).
    ///
    /// # Panics
    /// If the medium fails or the record changed on it since it was written (I7).
    pub fn release_next(&mut self) -> Option<(EventId, MonitorEvent)> {
        let (id, _) = self.index.next_release(&self.gates)?;
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let event = match self.journal.read(id, &mut buf) {
            Ok(n) => MonitorEvent::decode(&buf[..n]).ok(),
            Err(_) => None,
        };
        match event {
            Some(e) => Some((id, e)),
            None => fatal!("monitor-events: pending event {} no longer decodes", id.0),
        }
    }

    /// Acks an event: durable on return (I2). Acks come in any order;
    /// `AlreadyAcked` for a repeat, `Unknown` for an id never pushed,
    /// `WrongChannel` when the source names another channel. Errors change nothing.
    ///
    /// # Panics
    /// If the medium fails (I7).
    pub fn ack(&mut self, source: MonitorEventSource) -> Result<AckOutcome, AckError> {
        let outcome = self.index.check_ack(&source)?;
        if outcome == AckOutcome::Acked {
            match self.journal.ack(source.id) {
                Ok(_) => {}
                Err(_) => fatal!(
                    "monitor-events: journal does not know pending event {}",
                    source.id.0
                ),
            }
            self.index.remove(source.id);
        }
        Ok(outcome)
    }

    /// Number of pending events.
    pub fn pending_count(&self) -> usize {
        self.index.len()
    }

    /// The id the next push gets.
    pub fn next_id(&self) -> EventId {
        self.index.next_id()
    }

    /// Events still pending after more than `max_age` later pushes.
    pub fn leak_report(&self, max_age: u64) -> impl Iterator<Item = Leak> + '_ {
        self.index.leak_report(max_age)
    }

    /// The pending index (ids, channels, released flags).
    pub fn index(&self) -> &PendingIndex<N> {
        &self.index
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{HtlcOutcome, HtlcResolution, HtlcSource, PaymentHash, PaymentPreimage};
    use crate::journal::tests::TestFlash;
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

    fn open(flash: &mut TestFlash) -> EventStore<&mut TestFlash, 16> {
        EventStore::open(flash, Config::new(GEO, MAX_ENCODED_LEN)).unwrap()
    }

    /// I4, I5: gated HTLC events wait for their update; others are not held back;
    /// everything un-acked is replayed after a restart, once, in id order.
    #[test]
    fn i4_i5_gating_and_replay() {
        let mut flash = TestFlash::new(GEO);
        let mut s = open(&mut flash);
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
        let mut bad = claim(1, 1);
        if let MonitorEvent::HtlcResolved(h) = &mut bad {
            h.payment_hash = PaymentHash([0; 32]);
        }
        assert!(matches!(s.push(&bad), Err(PushError::Invalid(_))));
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
        type S<const N: usize> = EventStore<&'static mut TestFlash, N>;
        let (s16, s64) = (core::mem::size_of::<S<16>>(), core::mem::size_of::<S<64>>());
        let per_slot = (s64 - s16) / 48;
        assert_eq!((s64 - s16) % 48, 0);
        assert_eq!(s16 - 16 * per_slot, s64 - 64 * per_slot, "fixed part");
        std::println!(
            "EventStore<_, 16>: {s16} B, EventStore<_, 64>: {s64} B, {per_slot} B per pending slot"
        );
        assert!(per_slot <= 80, "{per_slot}");
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
}
