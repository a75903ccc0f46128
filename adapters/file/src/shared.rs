//! [`SharedJournal`]: one journal, many threads.

use crate::medium::FileMedium;
use monitor_events::journal::{AckError, AckOutcome, Journal, PushError, ReadError, Status};
use monitor_events::EventId;
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
    pub fn push(&self, body: &[u8]) -> Result<EventId, PushError> {
        self.lock().push(body)
    }

    /// [`Journal::push_batch`]: one sync for all of them.
    ///
    /// # Panics
    /// If `ids` is shorter than `bodies` (before taking the lock, so the handle
    /// stays usable).
    pub fn push_batch(&self, bodies: &[&[u8]], ids: &mut [EventId]) -> Result<(), PushError> {
        assert!(
            ids.len() >= bodies.len(),
            "push_batch: ids shorter than bodies"
        );
        self.lock().push_batch(bodies, ids)
    }

    /// [`Journal::ack`]: durable on return.
    pub fn ack(&self, id: EventId) -> Result<AckOutcome, AckError> {
        self.lock().ack(id)
    }

    /// [`Journal::ack_batch`]: one sync for all of them.
    ///
    /// # Panics
    /// If `out` is shorter than `ids` (before taking the lock, so the handle stays
    /// usable).
    pub fn ack_batch(&self, ids: &[EventId], out: &mut [AckOutcome]) -> Result<(), AckError> {
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
