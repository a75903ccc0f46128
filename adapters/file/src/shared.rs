//! [`SharedJournal`]: one journal, many threads; [`SharedEventStore`]: the same for
//! the typed event store.

use crate::medium::FileMedium;
use monitor_events::journal::{AckOutcome, AppendError, Journal, ReadError, Status, UnknownId};
use monitor_events::AckError;
use monitor_events::{
    ChannelId, EventId, EventStore, InFlightError, MonitorEvent, MonitorEventSource,
    MAX_ENCODED_LEN,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// A thread-safe handle on a [`Journal`] in a file: `Clone + Send + Sync`; every
/// clone is the same journal.
///
/// # Cost
///
/// One mutex acquisition per call, held for the whole call: a `push` or `ack`
/// holds it across its `fdatasync`, so callers on other threads wait for it
/// (durable operations are serialized, as they are on the medium anyway). To
/// amortize the sync, gather events and use [`push_batch`](Self::push_batch) /
/// [`ack_batch`](Self::ack_batch) (one sync per batch), or run several
/// operations under one acquisition with [`with`](Self::with). Reads such as
/// [`pending`](Self::pending) copy a snapshot out, so the lock is not held while
/// the caller looks at it.
///
/// # Panics: the "stop" behavior
///
/// When persisting fails, the journal panics (invariant I7) while this handle's
/// mutex is held, which poisons it. Every later call, on any clone and any thread,
/// then panics too, with a message that says so. That is intended: after a failed
/// write or fsync nothing may be assumed durable, and no thread may carry on as
/// if it were. A panic of a caller's own closure inside [`with`](Self::with)
/// stops the handle the same way.
pub struct SharedJournal<const N: usize> {
    inner: Arc<Mutex<Journal<FileMedium, N>>>,
}

impl<const N: usize> Clone for SharedJournal<N> {
    fn clone(&self) -> Self {
        SharedJournal {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<const N: usize> core::fmt::Debug for SharedJournal<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedJournal")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> From<Journal<FileMedium, N>> for SharedJournal<N> {
    fn from(journal: Journal<FileMedium, N>) -> Self {
        Self::new(journal)
    }
}

impl<const N: usize> SharedJournal<N> {
    /// Wraps an open journal.
    pub fn new(journal: Journal<FileMedium, N>) -> Self {
        SharedJournal {
            inner: Arc::new(Mutex::new(journal)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Journal<FileMedium, N>> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(_) => panic!(
                "monitor-events-file: an earlier call panicked while it held the journal \
                 (a failed write or fsync: invariant I7); refusing to continue"
            ),
        }
    }

    /// Runs `f` on the journal under one acquisition of the lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut Journal<FileMedium, N>) -> R) -> R {
        f(&mut self.lock())
    }

    /// [`Journal::push`]: durable on return.
    pub fn push(&self, body: &[u8]) -> Result<EventId, AppendError> {
        self.lock().push(body)
    }

    /// [`Journal::push_batch`]: one sync for all of them.
    ///
    /// # Panics
    /// If `ids` is shorter than `bodies` (before taking the lock, so the handle
    /// stays usable).
    pub fn push_batch(&self, bodies: &[&[u8]], ids: &mut [EventId]) -> Result<(), AppendError> {
        assert!(
            ids.len() >= bodies.len(),
            "push_batch: ids shorter than bodies"
        );
        self.lock().push_batch(bodies, ids)
    }

    /// [`Journal::ack`]: durable on return.
    pub fn ack(&self, id: EventId) -> Result<AckOutcome, UnknownId> {
        self.lock().ack(id)
    }

    /// [`Journal::ack_batch`]: one sync for all of them.
    ///
    /// # Panics
    /// If `out` is shorter than `ids` (before taking the lock, so the handle stays
    /// usable).
    pub fn ack_batch(&self, ids: &[EventId], out: &mut [AckOutcome]) -> Result<(), UnknownId> {
        assert!(out.len() >= ids.len(), "ack_batch: out shorter than ids");
        self.lock().ack_batch(ids, out)
    }

    /// [`Journal::read`]: the body of a pending event into `buf`.
    pub fn read(&self, id: EventId, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.lock().read(id, buf)
    }

    /// The body of a pending event, in a new `Vec`.
    pub fn read_to_vec(&self, id: EventId) -> Result<Vec<u8>, ReadError> {
        self.with(|j| {
            let len = j
                .pending()
                .find(|&(i, _)| i == id)
                .map(|(_, len)| len)
                .ok_or(ReadError::NotPending)?;
            let mut body = vec![0; len];
            j.read(id, &mut body)?;
            Ok(body)
        })
    }

    /// A snapshot of the pending events, `(id, body length)`, in id order.
    pub fn pending(&self) -> Vec<(EventId, usize)> {
        self.lock().pending().collect()
    }

    /// Number of pending events.
    pub fn pending_count(&self) -> usize {
        self.lock().pending_count()
    }

    /// The id the next push gets.
    pub fn next_id(&self) -> EventId {
        self.lock().next_id()
    }

    /// [`Journal::status`].
    pub fn status(&self) -> Status {
        self.lock().status()
    }

    /// The journal back, if this is the last handle (else the handle back).
    pub fn try_into_inner(self) -> Result<Journal<FileMedium, N>, Self> {
        match Arc::try_unwrap(self.inner) {
            Ok(mutex) => Ok(mutex.into_inner().unwrap_or_else(|_| {
                panic!("monitor-events-file: the journal panicked while persisting; refusing to hand it back")
            })),
            Err(inner) => Err(SharedJournal { inner }),
        }
    }
}

/// `SharedJournal` is `Clone + Send + Sync`.
const _: fn() = || {
    fn check<T: Clone + Send + Sync>() {}
    check::<SharedJournal<1>>();
};

/// A thread-safe handle on an [`EventStore`] in a file: `Clone + Send + Sync`; every
/// clone is the same store. Costs and the "stop" behavior are those of
/// [`SharedJournal`]: one mutex acquisition per call, held across its sync; a
/// panic while persisting (invariant I7) poisons it and every later call panics.
///
/// Batches ([`push_batch`](Self::push_batch), [`ack_batch`](Self::ack_batch)) cost
/// one sync each and are all or nothing, as on [`EventStore`]. For anything else
/// (in-flight updates, peeks, the pending list) use [`with`](Self::with).
pub struct SharedEventStore<const N: usize, const K: usize = 8> {
    inner: Arc<Mutex<EventStore<FileMedium, N, K>>>,
}

impl<const N: usize, const K: usize> Clone for SharedEventStore<N, K> {
    fn clone(&self) -> Self {
        SharedEventStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<const N: usize, const K: usize> core::fmt::Debug for SharedEventStore<N, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedEventStore")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<const N: usize, const K: usize> SharedEventStore<N, K> {
    /// Wraps an open store.
    pub fn new(store: EventStore<FileMedium, N, K>) -> Self {
        SharedEventStore {
            inner: Arc::new(Mutex::new(store)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EventStore<FileMedium, N, K>> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(_) => panic!(
                "monitor-events-file: an earlier call panicked while it held the store \
                 (a failed write or fsync: invariant I7); refusing to continue"
            ),
        }
    }

    /// Runs `f` on the store under one acquisition of the lock.
    pub fn with<R>(&self, f: impl FnOnce(&mut EventStore<FileMedium, N, K>) -> R) -> R {
        f(&mut self.lock())
    }

    /// [`EventStore::push`]: durable on return.
    pub fn push(&self, event: &MonitorEvent) -> Result<EventId, monitor_events::PushError> {
        self.lock().push(event)
    }

    /// [`EventStore::push_batch`]: one sync for all of them, all or nothing; the
    /// ids in push order.
    pub fn push_batch(
        &self,
        events: &[MonitorEvent],
    ) -> Result<Vec<EventId>, monitor_events::PushError> {
        let mut scratch = vec![0u8; events.len() * MAX_ENCODED_LEN];
        let mut ids = vec![EventId(0); events.len()];
        self.lock().push_batch(events, &mut scratch, &mut ids)?;
        Ok(ids)
    }

    /// [`EventStore::ack`]: durable on return.
    pub fn ack(&self, source: MonitorEventSource) -> Result<AckOutcome, AckError> {
        self.lock().ack(source)
    }

    /// [`EventStore::ack_batch`]: one sync for all of them, all or nothing; the
    /// outcomes in the order of `sources`.
    pub fn ack_batch(&self, sources: &[MonitorEventSource]) -> Result<Vec<AckOutcome>, AckError> {
        let mut out = vec![AckOutcome::Acked; sources.len()];
        self.lock().ack_batch(sources, &mut out)?;
        Ok(out)
    }

    /// [`EventStore::release_next`].
    pub fn release_next(&self) -> Option<(EventId, MonitorEvent)> {
        self.lock().release_next()
    }

    /// [`EventStore::restore_in_flight`]: after open, HTLC events wait for it or
    /// [`no_updates_in_flight`](Self::no_updates_in_flight).
    pub fn restore_in_flight(&self, updates: &[(ChannelId, u64)]) -> Result<(), InFlightError> {
        self.lock().restore_in_flight(updates)
    }

    /// [`EventStore::no_updates_in_flight`].
    pub fn no_updates_in_flight(&self) {
        self.lock().no_updates_in_flight()
    }

    /// [`EventStore::free_slots`].
    pub fn free_slots(&self) -> usize {
        self.lock().free_slots()
    }
}

/// `SharedEventStore` is `Clone + Send + Sync`.
const _: fn() = || {
    fn check<T: Clone + Send + Sync>() {}
    check::<SharedEventStore<1>>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_events::{Config, Geometry};

    const GEOMETRY: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 8,
        multiwrite: true,
    };
    const CONFIG: Config<16> = Config::new(GEOMETRY, MAX_ENCODED_LEN);

    fn confirmed(c: u8) -> MonitorEvent {
        MonitorEvent::CommitmentTxConfirmed {
            channel: ChannelId([c; 32]),
        }
    }

    /// I1, I2: batches through the shared handle from two threads are durable whole
    /// and survive reopening the file; acked ones never come back.
    #[test]
    fn i1_i2_batches_through_the_shared_handle() {
        let path = std::env::temp_dir().join(format!(
            "monitor-events-shared-store-{}.img",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let medium = FileMedium::create(&path, GEOMETRY).unwrap();
        let store = SharedEventStore::<16>::new(EventStore::open(medium, CONFIG).unwrap());
        store.no_updates_in_flight();
        let other = store.clone();
        let ids = std::thread::spawn(move || {
            other
                .push_batch(&[confirmed(1), confirmed(2), confirmed(3)])
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(ids, [EventId(0), EventId(1), EventId(2)]);
        let too_many: Vec<_> = (0..14).map(confirmed).collect();
        assert_eq!(
            store.push_batch(&too_many),
            Err(monitor_events::PushError::Full)
        );
        assert_eq!(store.free_slots(), 13, "I6: the refused batch took nothing");
        let sources: Vec<_> = [0u64, 2, 0]
            .iter()
            .map(|&i| MonitorEventSource {
                channel: ChannelId([i as u8 + 1; 32]),
                id: EventId(i),
            })
            .collect();
        assert_eq!(
            store.ack_batch(&sources),
            Ok(vec![
                AckOutcome::Acked,
                AckOutcome::Acked,
                AckOutcome::AlreadyAcked
            ])
        );
        drop(store);
        let medium = FileMedium::open(&path, GEOMETRY).unwrap();
        let store = SharedEventStore::<16>::new(EventStore::open(medium, CONFIG).unwrap());
        assert_eq!(store.release_next(), Some((EventId(1), confirmed(2))));
        assert_eq!(store.release_next(), None, "I2: acked events stay acked");
        drop(store);
        std::fs::remove_file(&path).unwrap();
    }
}
