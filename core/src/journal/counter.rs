//! Rollback detection: a monotonic counter outside the medium.
//!
//! Whoever can rewrite the whole region can put back an older image of it: acked
//! events come back, newer ones vanish, and every record in it still checks (and,
//! in an authenticated journal, still authenticates). Only something the attacker
//! cannot turn back can tell: a [`MonotonicCounter`] (a secure element's counter,
//! OTP bits, or a host that remembers).
//!
//! The journal's *version* is `(seq + 1) << 32 | records`, where `seq` is the
//! newest sector's sequence number and `records` the records in it: it grows with
//! every durable push, ack and rollover. After each of them the journal calls
//! [`advance`](MonotonicCounter::advance) with the new version; `open` refuses an
//! image whose version is below the counter's ([`OpenError::RolledBack`]).
//!
//! | counter | detects a rollback to any image older than |
//! |---|---|
//! | persists every `advance` | the last durable operation |
//! | persists only when `to >> 32` changes (cheaper, e.g. OTP bits per sector) | the last sector rollover |
//! | none ([`NoCounter`]) | nothing: an older image is indistinguishable from a device that did less |
//!
//! Without the authenticated mode, whoever can write the medium can also forge
//! records outright; the counter is meant to be used with it.
//!
//! [`OpenError::RolledBack`]: super::OpenError::RolledBack

/// A counter that only ever grows, kept where the medium's attacker cannot reach.
pub trait MonotonicCounter {
    /// The error of a failed counter operation. It panics the journal, like a
    /// medium error (invariant I7).
    #[cfg(not(feature = "defmt"))]
    type Error: core::fmt::Debug;
    /// The error of a failed counter operation. It panics the journal, like a
    /// medium error (invariant I7).
    #[cfg(feature = "defmt")]
    type Error: core::fmt::Debug + defmt::Format;

    /// The highest version persisted so far (0 for a new counter).
    fn read(&mut self) -> Result<u64, Self::Error>;

    /// Records that the journal reached version `to` (never lower than before). An
    /// implementation may persist only some of these (see the module doc).
    fn advance(&mut self, to: u64) -> Result<(), Self::Error>;
}

/// No counter: rollback is not detected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoCounter;

impl MonotonicCounter for NoCounter {
    type Error = core::convert::Infallible;

    fn read(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }

    fn advance(&mut self, _to: u64) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A counter in RAM: for tests, and for a host that keeps it elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RamCounter(pub u64);

impl MonotonicCounter for RamCounter {
    type Error = core::convert::Infallible;

    fn read(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0)
    }

    fn advance(&mut self, to: u64) -> Result<(), Self::Error> {
        self.0 = self.0.max(to);
        Ok(())
    }
}

impl<T: MonotonicCounter + ?Sized> MonotonicCounter for &mut T {
    type Error = T::Error;

    fn read(&mut self) -> Result<u64, Self::Error> {
        (**self).read()
    }

    fn advance(&mut self, to: u64) -> Result<(), Self::Error> {
        (**self).advance(to)
    }
}
