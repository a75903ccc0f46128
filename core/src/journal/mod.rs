//! The journal: opaque event bodies made durable under ids on a [`Medium`].
//!
//! The journal is the storage engine under [`EventStore`](crate::store::EventStore):
//! `push` makes a body durable and returns its [`EventId`]; `ack` makes the ack
//! durable; `open` recovers everything that was pending, whatever happened to
//! power. The format is described in [`format`](mod@format).
//!
//! # Files
//!
//! | file | its one job |
//! |---|---|
//! The decisions that do not touch the medium live here; the engine that reads
//! and writes it lives in `src/engine/`, one source compiled twice: blocking (this
//! [`Journal`], on a [`Medium`]) and, with the crate feature `async`, async
//! (`asynch::Journal`, on an
//! `AsyncMedium`). Both write the same bytes.
//!
//! | file | its one job |
//! |---|---|
//! | `journal/mod.rs` | what the journal reports ([`Status`], [`Seen`]) and this documentation |
//! | `journal/config.rs` | [`Config`] and the capacity rule it checks |
//! | `journal/format.rs` | the bytes on the medium: headers, records, CRC, tags, golden vectors |
//! | `journal/error.rs` | what `open`, `push`, `ack` and `read` refuse |
//! | `journal/counter.rs` | rollback detection with a monotonic counter |
//! | `engine/mod.rs` | the [`Journal`] type, its public operations, medium access, geometry |
//! | `engine/recovery.rs` | `open`: the steps of the table below |
//! | `engine/append.rs` | writing a record, reading it back, acks in place |
//! | `engine/retire.rs` | rollover and the retirement of the oldest sector |
//! | `engine/index.rs` | the location index: where each pending event lives, 10 B each |
//! | `engine/store.rs` | [`EventStore`](crate::store::EventStore) on the journal |
//!
//! # Operations and what each writes
//!
//! | operation | programs | then |
//! |---|---|---|
//! | push | one `Event` record | read back and compare; on a mismatch the sector is sealed and the record written once more in a fresh sector, a second mismatch panics |
//! | ack, in place | the unit holding the record's ack byte | read back; on a mismatch an ack record is appended instead. Only for records written in this run: a torn in-place ack before a restart may have spent the unit's second program without changing a bit |
//! | ack, record | one `AckShort` (or `AckLong`) record | as push |
//! | rollover | the next sector's header | |
//! | compaction | a `Copy` of every pending event of the oldest sector, then a `Retire` record | the oldest sector is erased |
//!
//! Compaction runs right after a rollover whenever fewer than `1 + reserve` free
//! sectors remain (see the liveness rules below). Every `Copy` and every ack lands in a sector newer than the
//! copies it supersedes, so erasing oldest-first never resurrects an acked event.
//!
//! # Recovery (`open`)
//!
//! | step | what | on failure |
//! |---|---|---|
//! | 1 | read every sector header; the newest valid one is current. An authenticated header whose tag fails is a torn header (free) while nothing follows it in its sector, else forged | unknown version: `UnsupportedFormat`; no header anywhere: blank if erased, else `NotAStore`; a failing tag with records behind it: `Corrupted { reason: Forged }` |
//! | 2 | probe the sector after the newest: valid records behind a broken header mean the newest header was damaged, unless they are all `Copy` records (a cut during the erase of an abandoned retirement, free either way) | `Corrupted` |
//! | 3 | go through sectors newest to oldest until a `Retire` record covers the next one; count the newest sectors that hold only `Copy` records or none. Those and the first sector below them are checked record by record; the older ones are skimmed (record headers read, only `Retire` records checked), since step 4 checks them in full | a missing or misplaced sector: `Corrupted` |
//! | 4 | give those sectors back (never the oldest): they are an abandoned retirement or a restart cut before its first record; scan the other live sectors oldest to newest, rebuilding the pending index and the next id (the newest header's floor counts, given back or not) | a record that fails its check anywhere but a torn tail: `Corrupted`; an authenticated record whose tag fails: `Corrupted { reason: Forged }`, unless it is the last of its sector and its CRC matched only once a bit was corrected, which a torn or weak write's bytes can do by chance: a torn tail (so is such a last record whose syndrome points at a bit that reads 0, if the record as written fails its tag; with the tag right it is `BitFlip`) (the typed store likewise drops such a record, without authentication, when its body is no event; on a medium whose unsynced writes may land out of order, a file, such a record is the tail of an interrupted write whatever follows it: see the record format) |
//!
//! Behind the last record of a sector, `open` reads only the bytes a torn record
//! there could have touched (one record of the largest length the format can
//! state): nothing is ever written further on in that sector. So `open` reads
//! each live record once in full, the headers of most twice, and not the erased
//! part of large sectors.
//!
//! `open` writes nothing. The first `push` or `ack` after it erases free sectors
//! that are not clean (a torn erase, a torn header), and the sectors it gave back,
//! and never appends behind a torn tail: it continues in a fresh sector. Where
//! unsynced writes may land out of order ([`Medium::writes_in_order`] false), each
//! new sector header is synced before any record behind it. On a
//! medium whose sectors are several erase blocks ([`Medium::erase_block_size`]),
//! every free sector is erased before its first use in the run (the rollover into
//! it erases it): a torn erase there can leave a block as it was, with units a
//! torn program spent that read erased.
//!
//! A torn program may leave its units looking erased yet spent (a program that
//! changed no bit still counts against the medium's programs per unit, and
//! repeated cuts can stack such programs). Hence, after a restart, writing always
//! continues in a freshly erased sector (the first write after `open` erases the
//! next sector even when it reads clean), and events recovered from before the
//! restart are acked with records, not in place. This costs the unused tail of one
//! sector and one erase per restart.
//!
//! # Liveness under brown-outs (invariant I10)
//!
//! Power can fail again during the writes that follow a restart, any number of
//! times. The journal guarantees progress with three rules:
//!
//! 1. **A restart takes at most one sector, and a retirement gives one back.** The
//!    first write after `open` rolls over into the next free sector; when fewer
//!    than `1 + reserve` free sectors are left, the oldest sector is retired right
//!    there: its pending events are copied into the fresh sector (they fit:
//!    [`Config`] checks that one sector holds `N` copies of the largest event, the
//!    retire record and one more record; or, when the region bounds `N`, every
//!    sector keeps a copy budget, so what is pending in it fits, copied, with the
//!    retire record into one sector), a `Retire` record follows, the oldest
//!    sector is erased. Retiring the oldest sectors in turn reaches one with
//!    room to spare before the reserve runs out ([`Config`]'s region rule).
//! 2. **A cut retirement costs nothing.** A cut before the `Retire` record leaves
//!    a newest sector of copies only; `open` gives it back (step 4) and the next
//!    write erases it and starts the retirement again. A cut after the `Retire`
//!    record leaves the old sector retired and free. Where `open` gives back more
//!    than one sector (a copy that did not read back sealed the first, and the
//!    retirement went on in a second), the next write erases them newest first,
//!    so that a cut among those erases never leaves a valid header above a
//!    broken one.
//! 3. **A cut header costs nothing.** A torn sector header (plain, or an
//!    authenticated header with a torn tag) reads as a free sector; a newest sector
//!    without records is given back.
//!
//! So at every `open` at least one sector is free, and every run either completes
//! a retirement or leaves the free count where it was: no sequence of cuts can
//! exhaust the free sectors. `adapters/flash/tests/brownout.rs` drives every mode
//! at `Config`'s edges through bursts of cuts to check it.
//!
//! # Panics
//!
//! Any error of the medium panics, naming the operation, the offset and the error
//! (invariant I7): a store that cannot persist must not run on.

pub mod config;
pub mod counter;
mod error;
pub mod format;

pub use self::config::{max_pending, max_pending_with_reserve, AckMode, Auth, Config, ConfigError};
pub use self::counter::{MonotonicCounter, NoCounter, RamCounter};
pub use self::error::{AppendError, Corruption, OpenError, ReadError, UnknownId};
pub use crate::blocking::Journal;
#[allow(unused_imports)] // for the documentation's links
use crate::medium::Medium;
pub use crate::pending::AckOutcome;

use crate::id::EventId;

/// A summary of the journal's state, for tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// Sequence number of the current sector (None on a blank medium).
    pub current_seq: Option<u32>,
    /// Sequence number of the oldest live sector.
    pub oldest_seq: Option<u32>,
    /// Bytes used in the current sector.
    pub current_used: u32,
    /// Whether the current sector is sealed (it ended in a torn or failed write).
    pub sealed: bool,
    /// The id the next push gets.
    pub next_id: EventId,
    /// Pending events.
    pub pending: usize,
    /// Free sectors.
    pub free_sectors: u32,
}

/// One record as `open` saw it, reported to an optional visitor (used by tools).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Seen {
    /// A sector header.
    Sector {
        /// Its index.
        index: u32,
        /// Its sequence number.
        seq: u32,
        /// Its id floor.
        floor: u64,
    },
    /// An event record (`copy`: written by compaction).
    Event {
        /// Its id.
        id: EventId,
        /// Offset of the record.
        offset: u32,
        /// Payload length.
        len: u32,
        /// Whether its ack byte says acked.
        acked: bool,
        /// Whether it is a compaction copy.
        copy: bool,
    },
    /// An ack record.
    Ack {
        /// The acked id.
        id: EventId,
        /// Offset of the record.
        offset: u32,
    },
    /// A retire record.
    Retire {
        /// The retired sector's sequence number.
        seq: u32,
    },
    /// A torn tail that recovery drops.
    TornTail {
        /// Its offset.
        offset: u32,
    },
    /// A record whose single flipped bit was corrected.
    Corrected {
        /// Its offset.
        offset: u32,
    },
}
