//! The journal: opaque event bodies made durable under ids on a [`Medium`].
//!
//! The journal is the storage engine under [`EventStore`](crate::store::EventStore):
//! `push` makes a body durable and returns its [`EventId`]; `ack` makes the ack
//! durable; `open` recovers everything that was pending, whatever happened to
//! power. The format is described in [`format`].
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
//! | 3 | scan sectors newest to oldest until a `Retire` record covers the next one; count the newest sectors that hold only `Copy` records or none | a missing or misplaced sector: `Corrupted` |
//! | 4 | give those sectors back (never the oldest): they are an abandoned retirement or a restart cut before its first record; scan the other live sectors oldest to newest, rebuilding the pending index and the next id (the newest header's floor counts, given back or not) | a record that fails its check anywhere but a torn tail: `Corrupted` |
//!
//! `open` writes nothing. The first `push` or `ack` after it erases free sectors
//! that are not clean (a torn erase, a torn header), and the sectors it gave back,
//! and never appends behind a torn tail: it continues in a fresh sector.
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
//!    retire record and one more record), a `Retire` record follows, the oldest
//!    sector is erased.
//! 2. **A cut retirement costs nothing.** A cut before the `Retire` record leaves
//!    a newest sector of copies only; `open` gives it back (step 4) and the next
//!    write erases it and starts the retirement again. A cut after the `Retire`
//!    record leaves the old sector retired and free.
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
pub mod format;

pub use self::config::{max_pending, AckMode, Auth, Config, ConfigError};
pub use self::counter::{MonotonicCounter, NoCounter, RamCounter};
use self::format::{
    ack_byte_acked, decode_record_head, decode_sector_header, encode_record_head,
    encode_sector_header, locate_single_bit, record_tagger, sector_tag, HeaderState, Kind,
    RecordCrc, SectorHeader, Word0, MAX_HEAD_LEN, MAX_VALUE, RECORD_HEADER_LEN, SECTOR_HEADER_LEN,
    TAG_LEN,
};
use crate::id::EventId;
use crate::medium::{Geometry, Medium};
use heapless::Vec;

/// Size of the stack buffer records are streamed through.
const CHUNK: usize = 256;

/// Why `open` refused a medium. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpenError {
    /// The medium's geometry is not the configured one.
    GeometryMismatch {
        /// What the configuration says.
        expected: Geometry,
        /// What the medium reports.
        found: Geometry,
    },
    /// The medium holds data but no monitor-events header.
    NotAStore,
    /// The medium was written by a newer format version.
    UnsupportedFormat {
        /// The version found.
        version: u8,
    },
    /// The headers were written for a region of another geometry.
    ForeignGeometry {
        /// The sector where it was seen.
        sector: u32,
    },
    /// Damage other than a torn tail.
    Corrupted {
        /// Offset in the region where it was found.
        offset: u32,
        /// What is wrong there.
        reason: Corruption,
    },
    /// The medium holds more pending events than this journal's capacity `N`.
    TooManyPending {
        /// The capacity.
        capacity: usize,
    },
    /// The journal is authenticated and the configuration is not, or the reverse.
    AuthMismatch {
        /// The sector where it was seen.
        sector: u32,
    },
    /// The medium holds an older state than the monotonic counter has seen: the
    /// region was rewritten with an earlier image of itself (or erased).
    RolledBack {
        /// The state the medium holds.
        image: u64,
        /// The state the counter vouches for.
        counter: u64,
    },
}

/// What kind of damage `open` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Corruption {
    /// A sector header that should be valid is not.
    SectorHeader,
    /// A sector is not where its sequence number says, or one is missing.
    SectorOrder,
    /// A record fails its check and is not a torn tail.
    Record,
    /// A single bit reads 0 that was written as 1 (bit rot; never a torn write).
    BitFlip,
    /// A record checks but says something impossible (an id out of range).
    Semantics,
    /// A record or sector header checks but its authentication tag does not: forged,
    /// altered, moved or from another device or region.
    Forged,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::GeometryMismatch { expected, found } => write!(
                f,
                "medium geometry {}x{} B (write {} B) differs from the configured {}x{} B (write {} B)",
                found.sector_count,
                found.sector_size,
                found.write_size,
                expected.sector_count,
                expected.sector_size,
                expected.write_size
            ),
            OpenError::NotAStore => f.write_str("the medium holds data that is not a monitor-events journal"),
            OpenError::UnsupportedFormat { version } => {
                write!(f, "format version {version} is newer than this build reads (1)")
            }
            OpenError::ForeignGeometry { sector } => {
                write!(f, "sector {sector} was written for a region of another geometry")
            }
            OpenError::Corrupted { offset, reason } => {
                write!(f, "corrupted at offset {offset:#x}: {reason}")
            }
            OpenError::TooManyPending { capacity } => {
                write!(f, "more pending events than the capacity of {capacity}")
            }
            OpenError::AuthMismatch { sector } => write!(
                f,
                "sector {sector}: authenticated and plain journals do not mix (check the configuration)"
            ),
            OpenError::RolledBack { image, counter } => write!(
                f,
                "the medium holds state {image:#x}, older than {counter:#x} vouched for by the monotonic counter: rolled back"
            ),
        }
    }
}

impl core::error::Error for OpenError {}

impl core::fmt::Display for Corruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Corruption::SectorHeader => "a sector header that should be valid is not",
            Corruption::SectorOrder => "a sector is missing or out of place",
            Corruption::Record => "a record fails its checksum and is not a torn tail",
            Corruption::BitFlip => "a bit reads 0 that was written as 1 (bit rot)",
            Corruption::Semantics => "a record checks but names an impossible id or sector",
            Corruption::Forged => "a record or header fails its authentication tag",
        })
    }
}

/// Why the journal refused to append a body. Nothing changed.
///
/// The typed store's [`PushError`](crate::PushError) adds what only typed events
/// can get wrong (an invalid event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AppendError {
    /// `N` events are pending (invariant I6: nothing is dropped to make room).
    Full,
    /// The body exceeds the configured bound.
    TooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}

impl core::fmt::Display for AppendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AppendError::Full => f.write_str("the store is full: ack events first"),
            AppendError::TooLarge { len, max } => {
                write!(f, "body of {len} B exceeds the bound of {max} B")
            }
        }
    }
}

impl core::error::Error for AppendError {}

/// Why the journal refused an ack: the id was never pushed (it is not below
/// [`Journal::next_id`]). Nothing changed. The journal knows ids only; the typed
/// store also checks that an ack names the event's channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownId {
    /// The id (the first unknown one of a batch).
    pub id: EventId,
}

impl core::fmt::Display for UnknownId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "event {} was never pushed", self.id.0)
    }
}

impl core::error::Error for UnknownId {}

pub use crate::pending::AckOutcome;

/// Why a read was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadError {
    /// The id is not pending.
    NotPending,
    /// The buffer is shorter than the body.
    BufferTooSmall {
        /// The body's length.
        needed: usize,
    },
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::NotPending => f.write_str("the id is not pending"),
            ReadError::BufferTooSmall { needed } => write!(f, "buffer too small: need {needed} B"),
        }
    }
}

impl core::error::Error for ReadError {}

const F_COPY: u8 = 1;
const F_IN_PLACE_OK: u8 = 2;

/// Where a pending event lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    id: u64,
    /// Absolute offset of the record.
    off: u32,
    /// The record's intended CRC.
    crc: u32,
    /// Payload length.
    len: u16,
    /// Body bit corrected at open, plus one (0: none).
    fix: u16,
    flags: u8,
}

/// The sector being appended to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Current {
    seq: u32,
    /// Offset in the sector of the next record.
    ptr: u32,
    /// A torn or failed write: nothing more is appended here.
    sealed: bool,
    /// Records in the sector (the low half of the version a counter vouches for).
    records: u32,
}

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

/// The result of scanning one sector.
#[derive(Clone, Copy, Debug, Default)]
struct SectorScan {
    end: u32,
    sealed: bool,
    torn: bool,
    /// Implicit ids consumed (Event records, plus one for a torn tail).
    events: u64,
    max_retired: Option<u32>,
    /// Valid records.
    records: u32,
    /// Valid records other than `Copy`: a sector without any is an abandoned
    /// retirement (or empty) and is given back at open.
    kept: u32,
}

/// How one failing record is explained.
enum Explained {
    /// The intended record, with word0 and the body bit fix (bit index + 1, or 0).
    Corrected { word0: Word0, fix: u16, crc: u32 },
    /// A bit reads 0 that was written 1.
    Rot,
    /// Not a single bit flip.
    No,
}

/// The part of a record a write takes from.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// Bytes in RAM.
    Slice(&'a [u8]),
    /// A pending entry's payload, read from the medium.
    Entry(Entry),
}

/// What to append.
#[derive(Clone, Copy)]
enum Spec<'a> {
    Event(&'a [u8]),
    Copy(Entry),
    Ack(u64),
    Retire(u32),
}

/// A journal of opaque event bodies with room for `N` pending events.
pub struct Journal<M: Medium, const N: usize, C: MonotonicCounter = NoCounter> {
    medium: M,
    counter: C,
    cfg: Config<N>,
    entries: Vec<Entry, N>,
    next_id: u64,
    cur: Option<Current>,
    oldest: u32,
    needs_repair: bool,
    /// Free sectors, from the next one on, that the first write after `open`
    /// erases even when they read clean: sectors given back at open and the one
    /// after them (torn programs that changed no bit may have spent their units).
    reclaim: u32,
    /// Set while compaction appends its copies, so that they do not compact again.
    retiring: bool,
    /// First sector (by seq) whose records may be acked in place: sectors opened in
    /// this run. Behind the tail of a sector from before a restart, a torn program
    /// may have spent a unit's program without changing a bit.
    in_place_from: u32,
}

impl<M: Medium, const N: usize> Journal<M, N> {
    /// Opens the journal on `medium`, recovering every pending event. A blank
    /// (erased) medium opens empty. Writes nothing.
    ///
    /// # Panics
    /// If the medium fails a read (invariant I7).
    pub fn open(medium: M, config: Config<N>) -> Result<Self, OpenError> {
        Self::open_with(medium, config, |_| {})
    }

    /// As [`open`](Self::open), reporting every header and record seen to `visit`.
    pub fn open_with(
        medium: M,
        config: Config<N>,
        visit: impl FnMut(Seen),
    ) -> Result<Self, OpenError> {
        Journal::open_counted(medium, config, NoCounter, visit)
    }
}

impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    /// As [`open`](Journal::open), and refuses an image older than `counter`
    /// vouches for ([`OpenError::RolledBack`]); every later durable operation
    /// advances it. See [`counter`].
    ///
    /// # Panics
    /// If the medium or the counter fails (invariant I7).
    pub fn open_with_counter(medium: M, config: Config<N>, counter: C) -> Result<Self, OpenError> {
        Self::open_counted(medium, config, counter, |_| {})
    }

    fn open_counted(
        medium: M,
        config: Config<N>,
        counter: C,
        mut visit: impl FnMut(Seen),
    ) -> Result<Self, OpenError> {
        let found = medium.geometry();
        if found != config.geometry {
            return Err(OpenError::GeometryMismatch {
                expected: config.geometry,
                found,
            });
        }
        let mut j = Journal {
            medium,
            counter,
            cfg: config,
            entries: Vec::new(),
            next_id: 0,
            cur: None,
            oldest: 0,
            needs_repair: true,
            reclaim: 1,
            retiring: false,
            in_place_from: 0,
        };
        j.recover(&mut visit)?;
        let vouched = match j.counter.read() {
            Ok(v) => v,
            Err(e) => fatal!("monitor-events: monotonic counter read failed: {:?}", e),
        };
        let image = j.version();
        if image < vouched {
            return Err(OpenError::RolledBack {
                image,
                counter: vouched,
            });
        }
        Ok(j)
    }

    /// The version of the journal's state: `(seq + 1) << 32 | records` of the
    /// newest sector, 0 when blank. It grows with every durable operation.
    pub fn version(&self) -> u64 {
        self.cur
            .map_or(0, |c| (c.seq as u64 + 1) << 32 | c.records as u64)
    }

    /// Tells the counter the version just made durable.
    fn vouch(&mut self) {
        let v = self.version();
        if let Err(e) = self.counter.advance(v) {
            fatal!(
                "monitor-events: monotonic counter advance to {} failed: {:?}",
                v,
                e
            );
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config<N> {
        &self.cfg
    }

    /// The id the next push gets.
    pub fn next_id(&self) -> EventId {
        EventId(self.next_id)
    }

    /// Number of pending (un-acked) events.
    pub fn pending_count(&self) -> usize {
        self.entries.len()
    }

    /// Pending events, `(id, body length)`, in id order.
    pub fn pending(&self) -> impl Iterator<Item = (EventId, usize)> + '_ {
        self.entries.iter().map(|e| (EventId(e.id), e.len as usize))
    }

    /// The ids of the pending events, in id order, by value (so that the journal
    /// can be borrowed mutably while going through them).
    pub fn pending_ids(&self) -> Vec<EventId, N> {
        self.entries.iter().map(|e| EventId(e.id)).collect()
    }

    /// Whether `id` is pending.
    pub fn is_pending(&self, id: EventId) -> bool {
        self.find(id.0).is_ok()
    }

    /// A summary of the state.
    pub fn status(&self) -> Status {
        Status {
            current_seq: self.cur.map(|c| c.seq),
            oldest_seq: self.cur.map(|_| self.oldest),
            current_used: self.cur.map_or(0, |c| c.ptr),
            sealed: self.cur.is_some_and(|c| c.sealed),
            next_id: EventId(self.next_id),
            pending: self.entries.len(),
            free_sectors: self.free_count(),
        }
    }

    /// The medium, for inspection.
    pub fn medium(&self) -> &M {
        &self.medium
    }

    /// The monotonic counter.
    pub fn counter(&self) -> &C {
        &self.counter
    }

    /// The medium, mutably: for counters and test hooks of simulated media. Writing
    /// to it behind the journal's back voids every guarantee.
    pub fn medium_mut(&mut self) -> &mut M {
        &mut self.medium
    }

    /// Gives the medium back.
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// Makes `body` durable and returns its id (invariant I1: durable on return).
    ///
    /// `Err(Full)` when `N` events are pending, `Err(TooLarge)` when the body exceeds
    /// the configured bound; either leaves everything unchanged.
    ///
    /// # Panics
    /// If the medium fails (invariant I7).
    pub fn push(&mut self, body: &[u8]) -> Result<EventId, AppendError> {
        let mut id = [EventId(0)];
        self.push_batch(&[body], &mut id)?;
        Ok(id[0])
    }

    /// Makes several bodies durable with one sync at the end (group commit) and
    /// writes their ids into `ids` (which must be at least as long). All or nothing
    /// is refused: `Full` if they do not all fit, `TooLarge` if any is too large.
    ///
    /// # Panics
    /// If the medium fails (invariant I7), or if `ids` is shorter than `bodies`.
    pub fn push_batch(&mut self, bodies: &[&[u8]], ids: &mut [EventId]) -> Result<(), AppendError> {
        assert!(
            ids.len() >= bodies.len(),
            "push_batch: ids shorter than bodies"
        );
        let max = self.cfg.max_body();
        if let Some(b) = bodies.iter().find(|b| b.len() > max) {
            return Err(AppendError::TooLarge { len: b.len(), max });
        }
        if self.entries.len() + bodies.len() > N {
            return Err(AppendError::Full);
        }
        self.repair();
        for (body, slot) in bodies.iter().zip(ids.iter_mut()) {
            let id = self.next_id;
            let (off, crc) = self.append(Spec::Event(body));
            self.next_id = id + 1;
            let flags = self.in_place_flag(off);
            let e = Entry {
                id,
                off,
                crc,
                len: body.len() as u16,
                fix: 0,
                flags,
            };
            // Cannot fail: capacity was checked above.
            let _ = self.entries.push(e);
            *slot = EventId(id);
        }
        self.sync();
        self.vouch();
        Ok(())
    }

    /// Makes the ack of `id` durable (invariant I2: never re-provided after it
    /// returns). Acks come in any order; acking twice answers `AlreadyAcked`.
    ///
    /// # Panics
    /// If the medium fails (invariant I7).
    pub fn ack(&mut self, id: EventId) -> Result<AckOutcome, UnknownId> {
        let mut out = [AckOutcome::Acked];
        self.ack_batch(&[id], &mut out)?;
        Ok(out[0])
    }

    /// Acks several ids with one sync at the end. Refused whole (`Unknown`) if any
    /// id was never pushed.
    ///
    /// # Panics
    /// If the medium fails (invariant I7), or if `out` is shorter than `ids`.
    pub fn ack_batch(&mut self, ids: &[EventId], out: &mut [AckOutcome]) -> Result<(), UnknownId> {
        assert!(out.len() >= ids.len(), "ack_batch: out shorter than ids");
        if let Some(&id) = ids.iter().find(|id| id.0 >= self.next_id) {
            return Err(UnknownId { id });
        }
        self.repair();
        for (id, o) in ids.iter().zip(out.iter_mut()) {
            *o = match self.find(id.0) {
                Err(_) => AckOutcome::AlreadyAcked,
                Ok(i) => {
                    let e = self.entries[i];
                    if !(self.cfg.ack_mode == AckMode::InPlace
                        && e.flags & F_IN_PLACE_OK != 0
                        && self.ack_in_place(e))
                    {
                        self.append(Spec::Ack(e.id));
                    }
                    // The entry may have moved during compaction: find it again.
                    if let Ok(i) = self.find(id.0) {
                        self.entries.remove(i);
                    }
                    AckOutcome::Acked
                }
            };
        }
        self.sync();
        self.vouch();
        Ok(())
    }

    /// Reads the body of pending event `id` into `buf` and returns its length. The
    /// record's checksum is verified.
    ///
    /// # Panics
    /// If the medium fails, or the record no longer matches what was written or
    /// recovered (it changed on the medium since: invariant I7).
    pub fn read(&mut self, id: EventId, buf: &mut [u8]) -> Result<usize, ReadError> {
        let e = self.entries[self.find(id.0).map_err(|_| ReadError::NotPending)?];
        let len = e.len as usize;
        if buf.len() < len {
            return Err(ReadError::BufferTooSmall { needed: len });
        }
        let out = &mut buf[..len];
        self.check_entry(e, "read", |_, at, chunk| {
            out[at..at + chunk.len()].copy_from_slice(chunk)
        });
        Ok(len)
    }

    // ---------------------------------------------------------------- medium ops

    fn m_read(&mut self, off: u32, buf: &mut [u8]) {
        if let Err(e) = self.medium.read(off, buf) {
            fatal!(
                "monitor-events: read of {} B at offset {} failed: {:?}",
                buf.len(),
                off,
                e
            );
        }
    }

    fn m_program(&mut self, off: u32, data: &[u8]) {
        if let Err(e) = self.medium.program(off, data) {
            fatal!(
                "monitor-events: program of {} B at offset {} failed: {:?}",
                data.len(),
                off,
                e
            );
        }
    }

    fn m_erase(&mut self, sector: u32) {
        if let Err(e) = self.medium.erase(sector) {
            let off = sector * self.cfg.geometry.sector_size;
            fatal!(
                "monitor-events: erase of sector {} at offset {} failed: {:?}",
                sector,
                off,
                e
            );
        }
    }

    fn sync(&mut self) {
        if let Err(e) = self.medium.sync() {
            let off = self.cur.map_or(0, |c| self.sector_base(c.seq) + c.ptr);
            fatal!("monitor-events: sync after offset {} failed: {:?}", off, e);
        }
    }

    // ---------------------------------------------------------------- geometry

    fn sector_size(&self) -> u32 {
        self.cfg.geometry.sector_size
    }

    fn sector_count(&self) -> u32 {
        self.cfg.geometry.sector_count
    }

    fn sector_base(&self, seq: u32) -> u32 {
        (seq % self.sector_count()) * self.sector_size()
    }

    /// The sequence number and in-sector offset of a live absolute offset.
    fn locate(&self, off: u32) -> (u32, u32) {
        let idx = off / self.sector_size();
        let cur = self.cur.map_or(0, |c| c.seq);
        let s = self.sector_count();
        let back = (cur % s + s - idx) % s;
        (cur - back, off % self.sector_size())
    }

    fn free_count(&self) -> u32 {
        match self.cur {
            None => self.sector_count(),
            Some(c) => self.sector_count() - (c.seq - self.oldest + 1),
        }
    }

    /// `F_IN_PLACE_OK` for a record at `off` if its sector was opened in this run.
    fn in_place_flag(&self, off: u32) -> u8 {
        if self.locate(off).0 >= self.in_place_from {
            F_IN_PLACE_OK
        } else {
            0
        }
    }

    fn find(&self, id: u64) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, |e| e.id)
    }

    /// Whether `len` bytes from `off` all read `0xFF`.
    fn is_erased(&mut self, mut off: u32, mut len: u32) -> bool {
        let mut buf = [0u8; CHUNK];
        while len > 0 {
            let n = len.min(CHUNK as u32);
            self.m_read(off, &mut buf[..n as usize]);
            if buf[..n as usize].iter().any(|&b| b != 0xFF) {
                return false;
            }
            off += n;
            len -= n;
        }
        true
    }

    /// The offset (in sector) just past the last byte that is not `0xFF`.
    fn programmed_end(&mut self, base: u32) -> u32 {
        let mut buf = [0u8; CHUNK];
        let mut end = self.sector_size();
        while end > 0 {
            let n = end.min(CHUNK as u32);
            self.m_read(base + end - n, &mut buf[..n as usize]);
            if let Some(p) = buf[..n as usize].iter().rposition(|&b| b != 0xFF) {
                return end - n + p as u32 + 1;
            }
            end -= n;
        }
        0
    }

    // ---------------------------------------------------------------- recovery

    fn read_header(&mut self, idx: u32) -> HeaderState {
        let mut b = [0u8; SECTOR_HEADER_LEN as usize];
        self.m_read(idx * self.sector_size(), &mut b);
        decode_sector_header(&self.cfg.geometry, &b)
    }

    /// A sector header, checked against the configuration's authentication.
    fn header(&mut self, idx: u32) -> Result<HeaderState, OpenError> {
        let state = self.read_header(idx);
        if let HeaderState::Valid(h) = state {
            if h.authenticated != self.cfg.auth.is_some() {
                return Err(OpenError::AuthMismatch { sector: idx });
            }
            if let Some(auth) = self.cfg.auth {
                let base = idx * self.sector_size();
                let mut b = [0u8; (SECTOR_HEADER_LEN + TAG_LEN) as usize];
                self.m_read(base, &mut b);
                let mut header = [0u8; SECTOR_HEADER_LEN as usize];
                header.copy_from_slice(&b[..SECTOR_HEADER_LEN as usize]);
                if sector_tag(&auth, h.seq, &header)[..] != b[SECTOR_HEADER_LEN as usize..] {
                    // The header and its tag are one program: a cut can land the
                    // header and tear the tag. Before any record follows, that is a
                    // torn header, as free as a torn plain one (invariant I10).
                    // Behind a record it can only be forged.
                    let hl = self.cfg.header_len();
                    if self.is_erased(base + hl, self.sector_size() - hl) {
                        return Ok(HeaderState::Garbage { magic: true });
                    }
                    return Err(corrupted(base, Corruption::Forged));
                }
            }
        }
        Ok(state)
    }

    /// Whether the authentication tag of the record at `p` in sector `seq` (read
    /// with header `w`, a corrected bit `fix`) is right.
    fn record_tag_ok(&mut self, seq: u32, p: u32, w: Word0, fix: u16) -> bool {
        let Some(auth) = self.cfg.auth else {
            return true;
        };
        let off = self.sector_base(seq) + p + RECORD_HEADER_LEN;
        let mut stored = [0u8; TAG_LEN as usize];
        self.m_read(off, &mut stored);
        apply_fix(&mut stored, 0, fix);
        let mut t = record_tagger(&auth, seq, p, w);
        let mut buf = [0u8; CHUNK];
        let body = w.body_len() as usize;
        let mut at = 0usize;
        while at < body {
            let n = (body - at).min(CHUNK);
            self.m_read(off + TAG_LEN + at as u32, &mut buf[..n]);
            apply_fix(&mut buf[..n], TAG_LEN as usize + at, fix);
            t.update(&buf[..n]);
            at += n;
        }
        t.finalize() == stored
    }

    fn recover(&mut self, visit: &mut impl FnMut(Seen)) -> Result<(), OpenError> {
        let s = self.sector_count();
        let size = self.sector_size();
        let mut newest: Option<SectorHeader> = None;
        let mut any_magic = false;
        for idx in 0..s {
            match self.header(idx)? {
                HeaderState::Unsupported(version) => {
                    return Err(OpenError::UnsupportedFormat { version })
                }
                HeaderState::ForeignGeometry => {
                    return Err(OpenError::ForeignGeometry { sector: idx })
                }
                HeaderState::Valid(h) => {
                    if h.seq % s != idx {
                        return Err(corrupted(idx * size, Corruption::SectorOrder));
                    }
                    if newest.is_none_or(|n| h.seq > n.seq) {
                        newest = Some(h);
                    }
                }
                HeaderState::Garbage { magic } => any_magic |= magic,
                HeaderState::Erased => {}
            }
        }
        let Some(newest) = newest else {
            // Blank: every sector erased but sector 0, which the first write erases
            // and then programs (a torn erase or header leaves anything there) -
            // unless a record behind a broken header there checks: then it is a
            // journal whose only header was damaged.
            for idx in 1..s {
                if !self.is_erased(idx * size, size) {
                    return Err(if any_magic {
                        corrupted(idx * size, Corruption::SectorHeader)
                    } else {
                        OpenError::NotAStore
                    });
                }
            }
            if self.probe_first_record(0) {
                return Err(corrupted(0, Corruption::SectorHeader));
            }
            return Ok(());
        };
        // Step 2: a damaged newest header would make its sector look free. Records
        // behind a broken header are damage, unless they are only copies: an
        // abandoned retirement whose erase was cut, which is free either way.
        let after = newest.seq.wrapping_add(1);
        if matches!(self.read_header(after % s), HeaderState::Garbage { .. })
            && self.probe_first_record(after)
            && !self.only_copies(after, newest.authenticated)
        {
            return Err(corrupted((after % s) * size, Corruption::SectorHeader));
        }
        // Step 3: newest to oldest, until a retire record covers the next sector.
        // The newest sectors that hold nothing but copies (a retirement that a cut
        // stopped before its retire record) or nothing at all (a restart cut before
        // the first record) are counted for step 4.
        let mut retired: Option<u32> = None;
        let mut seq = newest.seq;
        let mut abandoned = 0u32;
        let mut on_top = true;
        loop {
            let h = self.expect_header(seq)?;
            let scan = self.scan(h, false, &mut |_| {})?;
            if on_top && scan.kept == 0 {
                abandoned += 1;
            } else {
                on_top = false;
            }
            if let Some(r) = scan.max_retired {
                if r >= seq {
                    return Err(corrupted(self.sector_base(seq), Corruption::Semantics));
                }
                retired = Some(retired.map_or(r, |x: u32| x.max(r)));
            }
            if seq == 0 || retired.is_some_and(|r| seq - 1 <= r) {
                break;
            }
            seq -= 1;
            if newest.seq - seq >= s {
                return Err(corrupted(self.sector_base(seq), Corruption::SectorOrder));
            }
        }
        self.oldest = seq;
        // Give the abandoned sectors back to the free ones (never the oldest):
        // their copies duplicate events still live in the oldest sector, and no ack
        // or retire record follows them. Otherwise every restart that cut a
        // retirement would use up a sector for good, and a device in a brown-out
        // loop would run out of them (invariant I10). The first write erases them.
        let given_back = abandoned.min(newest.seq - self.oldest);
        let last = newest.seq - given_back;
        self.reclaim = given_back + 1;
        // Step 4: oldest to newest, rebuilding the index. The newest header's
        // floor counts even when its sector was given back (invariant I3).
        let mut next = newest.floor;
        let mut tail = SectorScan::default();
        for q in self.oldest..=last {
            let h = self.expect_header(q)?;
            visit(Seen::Sector {
                index: q % s,
                seq: q,
                floor: h.floor,
            });
            tail = self.scan(h, true, visit)?;
            next = next.max(h.floor + tail.events);
        }
        if let Some(last) = self.entries.last() {
            next = next.max(last.id + 1);
        }
        self.next_id = next;
        // Behind the tail, torn programs that changed no bit cannot be seen but may
        // have spent the units' programs: writing continues in a fresh sector.
        self.cur = Some(Current {
            seq: last,
            ptr: tail.end,
            sealed: true,
            records: tail.records,
        });
        self.in_place_from = newest.seq + 1;
        Ok(())
    }

    /// Whether sector `seq` (by position, its header unreadable) holds nothing but
    /// `Copy` records that check: what a cut during the erase of an abandoned
    /// retirement leaves.
    fn only_copies(&mut self, seq: u32, authenticated: bool) -> bool {
        let h = SectorHeader {
            seq,
            floor: 0,
            authenticated,
        };
        self.scan(h, false, &mut |_| {})
            .is_ok_and(|scan| scan.kept == 0)
    }

    fn expect_header(&mut self, seq: u32) -> Result<SectorHeader, OpenError> {
        match self.header(seq % self.sector_count())? {
            HeaderState::Valid(h) if h.seq == seq => Ok(h),
            HeaderState::Valid(_) => Err(corrupted(self.sector_base(seq), Corruption::SectorOrder)),
            _ => Err(corrupted(self.sector_base(seq), Corruption::SectorHeader)),
        }
    }

    /// Whether sector `seq` (by position) starts with a record that checks.
    fn probe_first_record(&mut self, seq: u32) -> bool {
        let base = self.sector_base(seq);
        let p = self.cfg.header_len();
        let mut hdr = [0u8; 8];
        self.m_read(base + p, &mut hdr);
        let (w, stored) = decode_record_head(&hdr);
        self.record_crc(seq, p, w).is_some_and(|c| c == stored)
    }

    /// The CRC of the record at `p` in sector `seq` read with header `w`, if the
    /// header describes a record that fits.
    fn record_crc(&mut self, seq: u32, p: u32, w: Word0) -> Option<u32> {
        let kind = Kind::from_bits(w.kind_bits())?;
        // A record with a body always has `aux` = 0xFF: anything else was never
        // written by a journal (and reading it back would rebuild another word0).
        if kind.has_body() && w.0 >> 24 != 0xFF {
            return None;
        }
        let body = w.body_len();
        if p + self.cfg.extent(body) > self.sector_size() {
            return None;
        }
        let mut off = self.sector_base(seq) + p + RECORD_HEADER_LEN;
        let mut tag = [0u8; TAG_LEN as usize];
        let tag = &mut tag[..self.cfg.tag_len() as usize];
        self.m_read(off, tag);
        off += tag.len() as u32;
        let mut d = RecordCrc::new(seq, p, w, tag);
        let mut buf = [0u8; CHUNK];
        let mut left = body;
        while left > 0 {
            let n = left.min(CHUNK as u32) as usize;
            self.m_read(off, &mut buf[..n]);
            d.update(&buf[..n]);
            off += n as u32;
            left -= n as u32;
        }
        Some(d.finish())
    }

    /// Explains a record that fails its CRC as a single flipped bit, if it is one.
    fn explain(&mut self, seq: u32, p: u32, w: Word0, stored: u32) -> Explained {
        let base = self.sector_base(seq);
        if let Some(computed) = self.record_crc(seq, p, w) {
            let syn = computed ^ stored;
            if syn.count_ones() == 1 {
                // A flip in the CRC field itself.
                return if stored & syn != 0 {
                    Explained::Corrected {
                        word0: w,
                        fix: 0,
                        crc: computed,
                    }
                } else {
                    Explained::Rot
                };
            }
            let stored_len = self.cfg.tag_len() + w.body_len();
            let total = (8 + 4 + stored_len) * 8;
            if let Some(j) = locate_single_bit(syn, total, 96) {
                let bit = j - 96;
                let mut b = [0u8; 1];
                self.m_read(base + p + RECORD_HEADER_LEN + bit / 8, &mut b);
                return if b[0] & (1 << (bit % 8)) != 0 {
                    Explained::Corrected {
                        word0: w,
                        fix: bit as u16 + 1,
                        crc: stored,
                    }
                } else {
                    Explained::Rot
                };
            }
        }
        for bit in (0..32).filter(|b| !(16..24).contains(b)) {
            let w2 = Word0(w.0 ^ (1 << bit));
            if self.record_crc(seq, p, w2) == Some(stored) {
                return if w.0 & (1 << bit) != 0 {
                    Explained::Corrected {
                        word0: w2,
                        fix: 0,
                        crc: stored,
                    }
                } else {
                    Explained::Rot
                };
            }
        }
        Explained::No
    }

    /// Scans the records of one live sector. With `apply`, updates the index.
    fn scan(
        &mut self,
        h: SectorHeader,
        apply: bool,
        visit: &mut impl FnMut(Seen),
    ) -> Result<SectorScan, OpenError> {
        let size = self.sector_size();
        let base = self.sector_base(h.seq);
        let mut out = SectorScan {
            end: self.cfg.header_len(),
            ..SectorScan::default()
        };
        let mut p = out.end;
        loop {
            if p + RECORD_HEADER_LEN > size {
                // No room for another record; the rest must be clean.
                out.sealed = !self.is_erased(base + p, size - p);
                out.torn = out.sealed;
                break;
            }
            let mut hdr = [0u8; 8];
            self.m_read(base + p, &mut hdr);
            let (w, stored) = decode_record_head(&hdr);
            if hdr == [0xFF; 8] && self.is_erased(base + p, size - p) {
                break;
            }
            let (w, fix, crc) = if self.record_crc(h.seq, p, w) == Some(stored) {
                (w, 0, stored)
            } else {
                let end = self.programmed_end(base);
                match self.explain(h.seq, p, w, stored) {
                    Explained::Corrected { word0, fix, crc } => {
                        if p + self.cfg.extent(word0.body_len()) < end {
                            return Err(corrupted(base + p, Corruption::Record));
                        }
                        visit(Seen::Corrected { offset: base + p });
                        out.sealed = true;
                        (word0, fix, crc)
                    }
                    Explained::Rot => return Err(corrupted(base + p, Corruption::BitFlip)),
                    Explained::No => {
                        let claimed = self.cfg.extent(w.len()).min(size - p);
                        if end <= p + claimed {
                            visit(Seen::TornTail { offset: base + p });
                            out.sealed = true;
                            out.torn = true;
                            out.events += 1;
                            break;
                        }
                        return Err(corrupted(base + p, Corruption::Record));
                    }
                }
            };
            if self.cfg.auth.is_some() && !self.record_tag_ok(h.seq, p, w, fix) {
                return Err(corrupted(base + p, Corruption::Forged));
            }
            self.apply_record(h, p, w, fix, crc, apply, &mut out, visit)?;
            out.records += 1;
            if Kind::from_bits(w.kind_bits()) != Some(Kind::Copy) {
                out.kept += 1;
            }
            p += self.cfg.extent(w.body_len());
            out.end = p;
            if out.sealed {
                break;
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_record(
        &mut self,
        h: SectorHeader,
        p: u32,
        w: Word0,
        fix: u16,
        crc: u32,
        apply: bool,
        out: &mut SectorScan,
        visit: &mut impl FnMut(Seen),
    ) -> Result<(), OpenError> {
        let base = self.sector_base(h.seq);
        let off = base + p;
        let pos_next = h.floor + out.events;
        let bad = |_| corrupted(off, Corruption::Semantics);
        match Kind::from_bits(w.kind_bits()) {
            Some(k @ (Kind::Event | Kind::Copy)) => {
                let (id, len, flags) = if k == Kind::Event {
                    out.events += 1;
                    (pos_next, w.len(), 0)
                } else {
                    if w.len() < 8 {
                        return Err(corrupted(off, Corruption::Semantics));
                    }
                    (self.read_body_u64(off, fix), w.len() - 8, F_COPY)
                };
                let acked = ack_byte_acked(w.ack_byte());
                visit(Seen::Event {
                    id: EventId(id),
                    offset: off,
                    len,
                    acked,
                    copy: k == Kind::Copy,
                });
                if !apply {
                    return Ok(());
                }
                if acked {
                    if let Ok(i) = self.find(id) {
                        self.entries.remove(i);
                    }
                } else {
                    // Never in place after a restart: a torn in-place ack may have
                    // spent the unit's second program without changing a bit.
                    let e = Entry {
                        id,
                        off,
                        crc,
                        len: len as u16,
                        fix,
                        flags,
                    };
                    self.upsert(e)?;
                }
            }
            Some(k @ (Kind::AckShort | Kind::AckLong)) => {
                let id = if k == Kind::AckShort {
                    pos_next
                        .checked_sub(w.value() as u64)
                        .filter(|_| w.value() > 0)
                        .ok_or(())
                        .map_err(bad)?
                } else if w.len() == 8 {
                    self.read_body_u64(off, fix)
                } else {
                    return Err(corrupted(off, Corruption::Semantics));
                };
                visit(Seen::Ack {
                    id: EventId(id),
                    offset: off,
                });
                if apply {
                    if let Ok(i) = self.find(id) {
                        self.entries.remove(i);
                    }
                }
            }
            Some(Kind::Retire) => {
                let seq = h
                    .seq
                    .checked_sub(w.value())
                    .filter(|_| w.value() > 0)
                    .ok_or(())
                    .map_err(bad)?;
                visit(Seen::Retire { seq });
                out.max_retired = Some(out.max_retired.map_or(seq, |m| m.max(seq)));
            }
            None => return Err(corrupted(off, Corruption::Record)),
        }
        Ok(())
    }

    fn read_body_u64(&mut self, off: u32, fix: u16) -> u64 {
        let mut b = [0u8; 8];
        let tag = self.cfg.tag_len();
        self.m_read(off + RECORD_HEADER_LEN + tag, &mut b);
        apply_fix(&mut b, tag as usize, fix);
        u64::from_le_bytes(b)
    }

    fn upsert(&mut self, e: Entry) -> Result<(), OpenError> {
        match self.find(e.id) {
            Ok(i) => self.entries[i] = e,
            Err(i) => {
                self.entries
                    .insert(i, e)
                    .map_err(|_| OpenError::TooManyPending { capacity: N })?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- writing

    /// Before the first write after `open`: erase every free sector that is not clean.
    fn repair(&mut self) {
        if !self.needs_repair {
            return;
        }
        let size = self.sector_size();
        let s = self.sector_count();
        let first = self.cur.map_or(0, |c| c.seq + 1);
        for k in 0..self.free_count() {
            let idx = (first.wrapping_add(k)) % s;
            // The next sector may hold torn header programs that changed no bit, and
            // sectors given back at open hold copies: they are erased all the same.
            let phantom = k < self.reclaim;
            if phantom || !self.is_erased(idx * size, size) {
                self.m_erase(idx);
            }
        }
        self.needs_repair = false;
    }

    /// Appends one record, verified; returns its offset and CRC.
    fn append(&mut self, spec: Spec<'_>) -> (u32, u32) {
        let body_len = match spec {
            Spec::Event(b) => b.len() as u32,
            Spec::Copy(e) => e.len as u32 + 8,
            Spec::Ack(id) if self.next_id - id <= MAX_VALUE as u64 => 0,
            Spec::Ack(_) => 8,
            Spec::Retire(_) => 0,
        };
        self.make_room(self.cfg.extent(body_len));
        for attempt in 0..2 {
            if attempt == 1 {
                // The first try did not read back as written: seal and go on in a
                // fresh sector (a worn unit is not a reason to stop).
                warn!("monitor-events: write did not verify; sealing the sector");
                if let Some(c) = self.cur.as_mut() {
                    c.sealed = true;
                }
                self.make_room(self.cfg.extent(body_len));
            }
            let Some(cur) = self.cur else { break };
            let (w, prefix, body) = match spec {
                Spec::Event(b) => (
                    Word0::with_body(Kind::Event, body_len),
                    None,
                    Body::Slice(b),
                ),
                Spec::Copy(e) => (
                    Word0::with_body(Kind::Copy, body_len),
                    Some(e.id),
                    Body::Entry(e),
                ),
                Spec::Ack(id) if body_len == 0 => (
                    Word0::with_value(Kind::AckShort, (self.next_id - id) as u32),
                    None,
                    Body::Slice(&[]),
                ),
                Spec::Ack(id) => (
                    Word0::with_body(Kind::AckLong, 8),
                    Some(id),
                    Body::Slice(&[]),
                ),
                Spec::Retire(seq) => (
                    Word0::with_value(Kind::Retire, cur.seq - seq),
                    None,
                    Body::Slice(&[]),
                ),
            };
            let off = self.sector_base(cur.seq) + cur.ptr;
            let mut tag = [0u8; TAG_LEN as usize];
            if let Some(auth) = self.cfg.auth {
                let mut t = record_tagger(&auth, cur.seq, cur.ptr, w);
                if let Some(id) = prefix {
                    t.update(&id.to_le_bytes());
                }
                self.feed_body(body, |chunk| t.update(chunk));
                tag = t.finalize();
            }
            let tag = &tag[..self.cfg.tag_len() as usize];
            let crc = {
                let mut d = RecordCrc::new(cur.seq, cur.ptr, w, tag);
                if let Some(id) = prefix {
                    d.update(&id.to_le_bytes());
                }
                self.feed_body(body, |chunk| d.update(chunk));
                d.finish()
            };
            let ext = self.cfg.extent(body_len);
            self.write_record(off, w, crc, tag, prefix, body, ext);
            if let Some(c) = self.cur.as_mut() {
                c.ptr += ext;
                c.records += 1;
            }
            if self.verify_record(off, w, crc, tag, prefix, body) {
                return (off, crc);
            }
        }
        fatal!(
            "monitor-events: program at offset {} did not read back as written, twice",
            { self.cur.map_or(0, |c| self.sector_base(c.seq) + c.ptr) }
        );
    }

    /// Reads bytes `[at, at + buf.len())` of a pending entry's payload, with a bit
    /// corrected at open put right.
    fn read_payload(&mut self, e: Entry, at: usize, buf: &mut [u8]) {
        let skip = self.cfg.tag_len() as usize + if e.flags & F_COPY != 0 { 8 } else { 0 };
        self.m_read(e.off + RECORD_HEADER_LEN + (skip + at) as u32, buf);
        apply_fix(buf, skip + at, e.fix);
    }

    /// The authentication tag stored with a pending entry (empty when plain).
    fn stored_tag(&mut self, e: Entry) -> [u8; TAG_LEN as usize] {
        let mut t = [0u8; TAG_LEN as usize];
        if self.cfg.auth.is_some() {
            self.m_read(e.off + RECORD_HEADER_LEN, &mut t);
            apply_fix(&mut t, 0, e.fix);
        }
        t
    }

    /// Checks a pending entry's payload, streamed through `f`, against its CRC and
    /// (when authenticated) its tag; panics if the medium changed under it.
    fn check_entry(
        &mut self,
        e: Entry,
        what: &str,
        mut f: impl FnMut(&mut Self, usize, &mut [u8]),
    ) {
        let (seq, in_sector) = self.locate(e.off);
        let w = Word0::with_body(kind_of(&e), body_len_of(&e));
        let tag = self.stored_tag(e);
        let mut d = RecordCrc::new(seq, in_sector, w, &tag[..self.cfg.tag_len() as usize]);
        let mut t = self.cfg.auth.map(|a| record_tagger(&a, seq, in_sector, w));
        if e.flags & F_COPY != 0 {
            d.update(&e.id.to_le_bytes());
            if let Some(t) = t.as_mut() {
                t.update(&e.id.to_le_bytes());
            }
        }
        let mut buf = [0u8; CHUNK];
        let mut at = 0usize;
        while at < e.len as usize {
            let n = (e.len as usize - at).min(CHUNK);
            self.read_payload(e, at, &mut buf[..n]);
            d.update(&buf[..n]);
            if let Some(t) = t.as_mut() {
                t.update(&buf[..n]);
            }
            f(self, at, &mut buf[..n]);
            at += n;
        }
        if d.finish() != e.crc || t.is_some_and(|t| t.finalize() != tag) {
            fatal!(
                "monitor-events: {} at offset {}: the record of event {} changed on the medium",
                what,
                e.off,
                e.id
            );
        }
    }

    /// Streams a body's bytes to `f`. For a copy, the source record's checksum is
    /// verified once all of it has been streamed.
    fn feed_body(&mut self, body: Body<'_>, mut f: impl FnMut(&[u8])) {
        match body {
            Body::Slice(b) => f(b),
            Body::Entry(e) => self.check_entry(e, "compaction read", |_, _, chunk| f(chunk)),
        }
    }

    /// Programs a record in pieces of at most `CHUNK` bytes (one program for any
    /// record that fits).
    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &mut self,
        off: u32,
        w: Word0,
        crc: u32,
        tag: &[u8],
        prefix: Option<u64>,
        body: Body<'_>,
        ext: u32,
    ) {
        let mut buf = [0xFFu8; CHUNK];
        let mut fill = 0usize;
        let mut at = off;
        let (head, head_len) = encode_record_head(w, crc, tag);
        self.put(&head[..head_len], &mut buf, &mut fill, &mut at);
        if let Some(id) = prefix {
            self.put(&id.to_le_bytes(), &mut buf, &mut fill, &mut at);
        }
        match body {
            Body::Slice(b) => self.put(b, &mut buf, &mut fill, &mut at),
            Body::Entry(e) => {
                let mut tmp = [0u8; CHUNK];
                let mut done = 0usize;
                while done < e.len as usize {
                    let n = (e.len as usize - done).min(CHUNK);
                    self.read_payload(e, done, &mut tmp[..n]);
                    self.put(&tmp[..n], &mut buf, &mut fill, &mut at);
                    done += n;
                }
            }
        }
        let end = off + ext;
        if at < end {
            let n = (end - at) as usize;
            self.m_program(at, &buf[..n]);
        }
    }

    /// Adds bytes to the program buffer, programming it whenever it is full.
    fn put(&mut self, mut bytes: &[u8], buf: &mut [u8; CHUNK], fill: &mut usize, at: &mut u32) {
        while !bytes.is_empty() {
            let n = bytes.len().min(CHUNK - *fill);
            buf[*fill..*fill + n].copy_from_slice(&bytes[..n]);
            *fill += n;
            bytes = &bytes[n..];
            if *fill == CHUNK {
                self.m_program(*at, &buf[..]);
                *at += CHUNK as u32;
                *fill = 0;
                buf.fill(0xFF);
            }
        }
    }

    /// Reads a record back and compares it with what was meant.
    fn verify_record(
        &mut self,
        off: u32,
        w: Word0,
        crc: u32,
        tag: &[u8],
        prefix: Option<u64>,
        body: Body<'_>,
    ) -> bool {
        let (want, head_len) = encode_record_head(w, crc, tag);
        let mut head = [0u8; MAX_HEAD_LEN];
        self.m_read(off, &mut head[..head_len]);
        if head[..head_len] != want[..head_len] {
            return false;
        }
        match body {
            Body::Slice(b) => {
                let mut p = off + RECORD_HEADER_LEN + tag.len() as u32;
                if let Some(id) = prefix {
                    let mut x = [0u8; 8];
                    self.m_read(p, &mut x);
                    if x != id.to_le_bytes() {
                        return false;
                    }
                    p += 8;
                }
                let mut cmp = [0u8; CHUNK];
                for chunk in b.chunks(CHUNK) {
                    self.m_read(p, &mut cmp[..chunk.len()]);
                    if cmp[..chunk.len()] != *chunk {
                        return false;
                    }
                    p += chunk.len() as u32;
                }
                true
            }
            // A copy: its CRC was computed from the verified source; check the
            // written record against it.
            Body::Entry(_) => {
                let (seq, in_sector) = self.locate(off);
                self.record_crc(seq, in_sector, w) == Some(crc)
            }
        }
    }

    /// Clears the ack byte of a pending record in place; false if it did not verify.
    fn ack_in_place(&mut self, e: Entry) -> bool {
        let ws = self.cfg.geometry.write_size as usize;
        let mut unit = [0u8; 32];
        let unit = &mut unit[..ws.max(4)];
        self.m_read(e.off, unit);
        unit[2] = 0x00;
        let want = [unit[0], unit[1], 0x00, unit[3]];
        self.m_program(e.off, unit);
        let mut back = [0u8; 4];
        self.m_read(e.off, &mut back);
        back == want
    }

    /// Makes sure the current sector can take `need` more bytes, rolling over and
    /// compacting as needed.
    fn make_room(&mut self, need: u32) {
        let size = self.sector_size();
        let want_free = 1 + self.cfg.reserve();
        loop {
            let fits = self.cur.is_some_and(|c| !c.sealed && c.ptr + need <= size);
            if fits {
                if self.free_count() < want_free && self.can_retire() {
                    let rb = self.retire_bytes();
                    if self.cur.is_some_and(|c| c.ptr + rb + need <= size) {
                        self.retire_oldest();
                        continue;
                    }
                }
                return;
            }
            if self.free_count() == 0 {
                let rb = self.retire_bytes();
                if self.can_retire() && self.cur.is_some_and(|c| !c.sealed && c.ptr + rb <= size) {
                    self.retire_oldest();
                    continue;
                }
                fatal!(
                    "monitor-events: no free sector left (repeated power cuts during compaction?)"
                );
            }
            self.rollover();
            if self.free_count() < want_free && self.can_retire() {
                self.retire_oldest();
            }
        }
    }

    fn can_retire(&self) -> bool {
        !self.retiring && self.cur.is_some_and(|c| self.oldest < c.seq)
    }

    /// Bytes the retirement of the oldest sector appends.
    fn retire_bytes(&self) -> u32 {
        let lo = self.sector_base(self.oldest);
        let hi = lo + self.sector_size();
        let copies: u32 = self
            .entries
            .iter()
            .filter(|e| (lo..hi).contains(&e.off))
            .map(|e| self.cfg.extent(e.len as u32 + 8))
            .sum();
        copies + self.cfg.extent(0)
    }

    fn rollover(&mut self) {
        let seq = self.cur.map_or(0, |c| c.seq + 1);
        if self.cur.is_none() {
            self.oldest = 0;
        }
        let idx = seq % self.sector_count();
        let g = self.cfg.geometry;
        let header = encode_sector_header(
            &g,
            SectorHeader {
                seq,
                floor: self.next_id,
                authenticated: self.cfg.auth.is_some(),
            },
        );
        let hl = self.cfg.header_len() as usize;
        let mut buf = [0xFFu8; 64];
        buf[..SECTOR_HEADER_LEN as usize].copy_from_slice(&header);
        if let Some(auth) = self.cfg.auth {
            buf[SECTOR_HEADER_LEN as usize..][..TAG_LEN as usize]
                .copy_from_slice(&sector_tag(&auth, seq, &header));
        }
        let base = idx * self.sector_size();
        for attempt in 0..2 {
            if attempt == 1 {
                warn!("monitor-events: sector header did not verify; erasing");
                self.m_erase(idx);
            }
            self.m_program(base, &buf[..hl]);
            let mut back = [0u8; 64];
            self.m_read(base, &mut back[..hl]);
            if back[..hl] == buf[..hl] {
                self.cur = Some(Current {
                    seq,
                    ptr: hl as u32,
                    sealed: false,
                    records: 0,
                });
                debug!("monitor-events: opened sector {} (seq {})", idx, seq);
                return;
            }
        }
        fatal!(
            "monitor-events: program of the sector header at offset {} did not read back, twice",
            base
        );
    }

    /// Copies the oldest sector's pending events forward, records its retirement
    /// and erases it.
    fn retire_oldest(&mut self) {
        let old = self.oldest;
        self.retiring = true;
        let lo = self.sector_base(old);
        let hi = lo + self.sector_size();
        let mut i = 0;
        while i < self.entries.len() {
            let e = self.entries[i];
            if (lo..hi).contains(&e.off) {
                let (off, crc) = self.append(Spec::Copy(e));
                if let Ok(k) = self.find(e.id) {
                    let flags = F_COPY | self.in_place_flag(off);
                    self.entries[k] = Entry {
                        off,
                        crc,
                        fix: 0,
                        flags,
                        ..e
                    };
                }
            }
            i += 1;
        }
        self.append(Spec::Retire(old));
        self.retiring = false;
        self.sync();
        self.oldest = old + 1;
        self.m_erase(old % self.sector_count());
        self.sync();
    }
}

/// Flips back the corrected bit `fix` (bit index + 1 from the start of the stored
/// tail, 0: none) if it falls in `buf`, which holds the tail from byte `at`.
fn apply_fix(buf: &mut [u8], at: usize, fix: u16) {
    if fix == 0 {
        return;
    }
    let bit = fix as usize - 1;
    if (at * 8..(at + buf.len()) * 8).contains(&bit) {
        buf[bit / 8 - at] ^= 1 << (bit % 8);
    }
}

fn corrupted(offset: u32, reason: Corruption) -> OpenError {
    OpenError::Corrupted { offset, reason }
}

fn kind_of(e: &Entry) -> Kind {
    if e.flags & F_COPY != 0 {
        Kind::Copy
    } else {
        Kind::Event
    }
}

fn body_len_of(e: &Entry) -> u32 {
    e.len as u32 + if e.flags & F_COPY != 0 { 8 } else { 0 }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
pub(crate) mod tests;
