//! The engine: the [`Journal`] type, its public operations, medium access and
//! geometry. Its design is documented in [`journal`](crate::journal).
//!
//! This source is compiled twice (see `src/blocking.rs` and `src/asynch.rs`): its
//! operations are written `async`, and `#[maybe]` makes them blocking, `.await`
//! removed, in the blocking build. `Medium` is the blocking trait there and
//! `AsyncMedium` in the async one.

use super::{maybe, Medium};
use crate::id::EventId;
pub use crate::journal::config::{AckMode, Config};
pub use crate::journal::counter::{MonotonicCounter, NoCounter};
use crate::journal::format::{
    ack_byte_acked, decode_record_head, decode_sector_header, encode_record_head,
    encode_sector_header, locate_single_bit, record_tagger, sector_tag, HeaderState, Kind,
    RecordCrc, SectorHeader, Word0, MAX_HEAD_LEN, MAX_LEN_FIELD, MAX_VALUE, RECORD_HEADER_LEN,
    SECTOR_HEADER_LEN, TAG_LEN,
};
use crate::journal::{AppendError, Corruption, OpenError, ReadError, Seen, Status, UnknownId};
pub use crate::pending::AckOutcome;
use crate::split::split_mut;
use heapless::Vec;

/// Size of the stack buffer records are streamed through.
const CHUNK: usize = 256;

/// Size of the stack buffer through which a record's body is read to check its
/// authentication tag, or while it is copied forward: those reads nest under a
/// program buffer or the store's own frame, with an HMAC state beside them.
const CHECK_CHUNK: usize = 64;

mod append;
mod index;
mod recovery;
mod retire;
pub mod store;

const F_COPY: u8 = 1;
const F_IN_PLACE_OK: u8 = 2;

/// Where a pending event lives, in full (the location index keeps less: see
/// `index.rs`).
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
    /// What copies of the events and copies written here would take: kept within
    /// the copy budget when the capacity is bounded by the region.
    copies: u32,
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

impl SectorScan {
    /// A torn tail at absolute `offset` ends the scan: the sector is sealed, and
    /// the torn write's implicit id is spent.
    fn tear(&mut self, visit: &mut impl FnMut(Seen), offset: u32) {
        visit(Seen::TornTail { offset });
        self.sealed = true;
        self.torn = true;
        self.events += 1;
    }
}

/// How one failing record is explained.
enum Explained {
    /// The intended record, with word0 and the body bit fix (bit index + 1, or 0).
    /// `erased`: the byte that holds the bit reads `0xFF`, as a byte that a crash
    /// kept from being written does on a medium whose writes land out of order (a
    /// file); a byte that reads anything else was written and then rotted.
    /// Always false where writes land in order, where it is never looked at.
    Corrected {
        word0: Word0,
        fix: u16,
        crc: u32,
        erased: bool,
    },
    /// A bit reads 0 that was written 1: the record as written would be `word0`
    /// with the bit `fix` (as in `Corrected`) set back, which an authenticated
    /// journal can check.
    Rot { word0: Word0, fix: u16 },
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
    entries: Vec<index::Slot, N>,
    /// The location index stores ids less this.
    base: u64,
    next_id: u64,
    cur: Option<Current>,
    oldest: u32,
    needs_repair: bool,
    /// Free sectors, from the next one on, that the first write after `open`
    /// erases even when they read clean: sectors given back at open and the one
    /// after them (torn programs that changed no bit may have spent their units).
    reclaim: u32,
    /// Sectors (by seq, end exclusive) that the next rollover into them erases
    /// first: on a medium of several erase blocks per sector, the free sectors of
    /// a restart that the repair did not erase (see `repair`).
    erase_first: (u32, u32),
    /// Set while compaction appends its copies, so that they do not compact again.
    retiring: bool,
    /// First sector (by seq) whose records may be acked in place: sectors opened in
    /// this run. Behind the tail of a sector from before a restart, a torn program
    /// may have spent a unit's program without changing a bit.
    in_place_from: u32,
    /// An operation that changes the state (an open, a push, an ack) started and
    /// has not completed: its future was dropped (async) or it panicked. The state
    /// in RAM may then differ from the medium's; every later operation panics.
    busy: bool,
}

#[maybe]
impl<M: Medium, const N: usize> Journal<M, N> {
    /// Opens the journal on `medium`, recovering every pending event. A blank
    /// (erased) medium opens empty. Writes nothing.
    ///
    /// # Panics
    /// If the medium fails a read (invariant I7).
    pub async fn open(medium: M, config: Config<N>) -> Result<Self, OpenError> {
        Self::open_with(medium, config, ignore).await
    }

    /// As [`open`](Self::open), reporting every header and record seen to `visit`.
    pub async fn open_with(
        medium: M,
        config: Config<N>,
        visit: impl FnMut(Seen),
    ) -> Result<Self, OpenError> {
        Journal::open_counted(medium, config, NoCounter, visit).await
    }
}

#[maybe]
impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    /// As [`open`](Journal::open), and refuses an image older than `counter`
    /// vouches for ([`OpenError::RolledBack`]); every later durable operation
    /// advances it. See [`counter`](crate::journal::counter).
    ///
    /// # Panics
    /// If the medium or the counter fails (invariant I7).
    pub async fn open_with_counter(
        medium: M,
        config: Config<N>,
        counter: C,
    ) -> Result<Self, OpenError> {
        Self::open_counted(medium, config, counter, ignore).await
    }

    async fn open_counted(
        medium: M,
        config: Config<N>,
        counter: C,
        mut visit: impl FnMut(Seen),
    ) -> Result<Self, OpenError> {
        Self::check_geometry(&medium, &config)?;
        let mut j = Self::unopened(medium, config, counter);
        j.recover_counted(&mut visit).await?;
        j.busy = false;
        Ok(j)
    }

    /// Refuses a medium whose geometry is not the configuration's.
    pub(crate) fn check_geometry(medium: &M, config: &Config<N>) -> Result<(), OpenError> {
        let found = medium.geometry();
        if found != config.geometry {
            return Err(OpenError::GeometryMismatch {
                expected: config.geometry,
                found,
            });
        }
        Ok(())
    }

    /// A journal that has read nothing yet: [`recover_counted`](Self::recover_counted)
    /// must run before anything else. Lets a store recover in place.
    pub(crate) const fn unopened(medium: M, config: Config<N>, counter: C) -> Self {
        Journal {
            medium,
            counter,
            cfg: config,
            entries: Vec::new(),
            base: 0,
            next_id: 0,
            cur: None,
            oldest: 0,
            needs_repair: true,
            reclaim: 1,
            erase_first: (0, 0),
            retiring: false,
            in_place_from: 0,
            busy: true,
        }
    }

    /// Recovers an [`unopened`](Self::unopened) journal in place (the steps of
    /// `open`) and checks the counter.
    #[inline(never)]
    pub(crate) async fn recover_counted(
        &mut self,
        visit: &mut impl FnMut(Seen),
    ) -> Result<(), OpenError> {
        self.recover(visit).await?;
        let vouched = match self.counter.read() {
            Ok(v) => v,
            Err(e) => fatal!("monitor-events: monotonic counter read failed: {:?}", e),
        };
        let image = self.version();
        if image < vouched {
            return Err(OpenError::RolledBack {
                image,
                counter: vouched,
            });
        }
        Ok(())
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
        self.entries
            .iter()
            .map(move |s| (EventId(self.slot_id(*s)), s.len() as usize))
    }

    /// The position of pending event `id` in id order (0: the oldest).
    pub(crate) fn position(&self, id: EventId) -> Option<usize> {
        self.find(id.0).ok()
    }

    /// The id of the `i`-th pending event in id order (0: the oldest), in
    /// constant time.
    pub(crate) fn nth_pending(&self, i: usize) -> Option<EventId> {
        self.entries.get(i).map(|s| EventId(self.slot_id(*s)))
    }

    /// The ids of the pending events, in id order, by value (so that the journal
    /// can be borrowed mutably while going through them).
    pub fn pending_ids(&self) -> Vec<EventId, N> {
        self.entries
            .iter()
            .map(|s| EventId(self.slot_id(*s)))
            .collect()
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
    pub async fn push(&mut self, body: &[u8]) -> Result<EventId, AppendError> {
        let mut id = [EventId(0)];
        self.push_batch(&[body], &mut id).await?;
        Ok(id[0])
    }

    /// Makes several bodies durable with one sync at the end (group commit) and
    /// writes their ids into `ids` (which must be at least as long). All or nothing
    /// is refused: `Full` if they do not all fit, `TooLarge` if any is too large.
    ///
    /// # Panics
    /// If the medium fails (invariant I7), or if `ids` is shorter than `bodies`.
    pub async fn push_batch(
        &mut self,
        bodies: &[&[u8]],
        ids: &mut [EventId],
    ) -> Result<(), AppendError> {
        self.check_not_interrupted();
        assert!(
            ids.len() >= bodies.len(),
            "push_batch: ids shorter than bodies"
        );
        let max = self.cfg.max_body();
        if let Some(b) = bodies.iter().find(|b| b.len() > max) {
            return Err(AppendError::TooLarge { len: b.len(), max });
        }
        if self.entries.len() + bodies.len() > N
            || !self.id_fits(self.next_id + bodies.len() as u64)
        {
            return Err(AppendError::Full);
        }
        self.busy = true;
        self.repair().await;
        for (body, slot) in bodies.iter().zip(ids.iter_mut()) {
            let id = self.next_id;
            let (off, crc) = self.append(Spec::Event(body)).await;
            self.next_id = id + 1;
            let e = Entry {
                id,
                off,
                crc,
                len: body.len() as u16,
                fix: 0,
                flags: 0,
            };
            // Cannot fail: capacity and the span of ids were checked above.
            let _ = self.put_entry(&e, false);
            *slot = EventId(id);
        }
        self.sync().await;
        self.vouch();
        self.busy = false;
        Ok(())
    }

    /// Makes the ack of `id` durable (invariant I2: never re-provided after it
    /// returns). Acks come in any order; acking twice answers `AlreadyAcked`.
    ///
    /// # Panics
    /// If the medium fails (invariant I7).
    pub async fn ack(&mut self, id: EventId) -> Result<AckOutcome, UnknownId> {
        let mut out = [AckOutcome::Acked];
        self.ack_batch(&[id], &mut out).await?;
        Ok(out[0])
    }

    /// Acks several ids with one sync at the end. Refused whole (`Unknown`) if any
    /// id was never pushed.
    ///
    /// # Panics
    /// If the medium fails (invariant I7), or if `out` is shorter than `ids`.
    pub async fn ack_batch(
        &mut self,
        ids: &[EventId],
        out: &mut [AckOutcome],
    ) -> Result<(), UnknownId> {
        self.check_not_interrupted();
        assert!(out.len() >= ids.len(), "ack_batch: out shorter than ids");
        if let Some(&id) = ids.iter().find(|id| id.0 >= self.next_id) {
            return Err(UnknownId { id });
        }
        self.busy = true;
        self.repair().await;
        for (id, o) in ids.iter().zip(out.iter_mut()) {
            // The pending entry's offset (`get`, not `[i]`: see `put_entry`).
            let pending = self.find(id.0).ok().and_then(|i| self.entries.get(i));
            *o = match pending.map(|s| s.off()) {
                None => AckOutcome::AlreadyAcked,
                Some(off) => {
                    if !(self.cfg.ack_mode == AckMode::InPlace
                        && self.in_place_flag(off) != 0
                        && self.ack_in_place(off).await)
                    {
                        self.append(Spec::Ack(id.0)).await;
                    }
                    // The entry may have moved during compaction: find it again.
                    if let Ok(i) = self.find(id.0) {
                        self.remove_at(i);
                    }
                    AckOutcome::Acked
                }
            };
        }
        self.sync().await;
        self.vouch();
        self.busy = false;
        Ok(())
    }

    /// Reads the body of pending event `id` into `buf` and returns its length. The
    /// record's checksum is verified.
    ///
    /// # Panics
    /// If the medium fails, or the record no longer matches what was written or
    /// recovered (it changed on the medium since: invariant I7).
    pub async fn read(&mut self, id: EventId, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.check_not_interrupted();
        self.read_body(id, buf).await
    }

    /// [`read`](Self::read) without the check of an interrupted operation: for the
    /// store's recovery, which reads while its open has not completed.
    pub(crate) async fn read_body(
        &mut self,
        id: EventId,
        buf: &mut [u8],
    ) -> Result<usize, ReadError> {
        let i = self.find(id.0).map_err(|_| ReadError::NotPending)?;
        let e = self.entry(i).await;
        let len = e.len as usize;
        if buf.len() < len {
            return Err(ReadError::BufferTooSmall { needed: len });
        }
        self.read_entry(e, split_mut(buf, len).0).await;
        Ok(len)
    }

    /// Panics if an earlier open, push, ack or compaction did not complete: a
    /// dropped future (async) or a caught panic left the state in RAM unknown.
    /// Only a new `open` of the medium, which recovers as after a power cut at
    /// that point, may go on.
    fn check_not_interrupted(&self) {
        if self.busy {
            fatal!(
                "monitor-events: an earlier open, push, ack or compaction did not complete (its future was dropped, or it panicked); open the medium again"
            );
        }
    }

    // ---------------------------------------------------------------- medium ops

    async fn m_read(&mut self, off: u32, buf: &mut [u8]) {
        if let Err(e) = self.medium.read(off, buf).await {
            #[cfg(all(feature = "panic-static", not(feature = "defmt")))]
            let e = M::error_name(&e);
            fatal!(
                "monitor-events: read of {} B at offset {} failed: {:?}",
                buf.len(),
                off,
                e
            );
        }
    }

    async fn m_program(&mut self, off: u32, data: &[u8]) {
        if let Err(e) = self.medium.program(off, data).await {
            #[cfg(all(feature = "panic-static", not(feature = "defmt")))]
            let e = M::error_name(&e);
            fatal!(
                "monitor-events: program of {} B at offset {} failed: {:?}",
                data.len(),
                off,
                e
            );
        }
    }

    async fn m_erase(&mut self, sector: u32) {
        if let Err(e) = self.medium.erase(sector).await {
            #[cfg(all(feature = "panic-static", not(feature = "defmt")))]
            let e = M::error_name(&e);
            let off = sector * self.cfg.geometry.sector_size;
            fatal!(
                "monitor-events: erase of sector {} at offset {} failed: {:?}",
                sector,
                off,
                e
            );
        }
    }

    async fn sync(&mut self) {
        if let Err(e) = self.medium.sync().await {
            #[cfg(all(feature = "panic-static", not(feature = "defmt")))]
            let e = M::error_name(&e);
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

    /// The index of the sector that holds sequence number `seq`. Every such
    /// remainder goes through here: one division (a library call on cores
    /// without a divide instruction), and no division-by-zero check (`Config`
    /// has at least 3 sectors).
    #[inline(never)]
    fn sector_index(&self, seq: u32) -> u32 {
        seq % self.sector_count().max(1)
    }

    fn sector_base(&self, seq: u32) -> u32 {
        self.sector_index(seq) * self.sector_size()
    }

    /// The sequence number and in-sector offset of a live absolute offset
    /// (sector sizes are powers of two: `Config` checks it).
    fn locate(&self, off: u32) -> (u32, u32) {
        let shift = self.sector_size().trailing_zeros();
        let idx = off >> shift;
        let cur = self.cur.map_or(0, |c| c.seq);
        let s = self.sector_count();
        let back = self.sector_index(self.sector_index(cur) + s - idx);
        (cur - back, off & (self.sector_size() - 1))
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

    /// Whether `len` bytes from `off` all read `0xFF`.
    async fn is_erased(&mut self, mut off: u32, mut len: u32) -> bool {
        let mut buf = [0u8; CHUNK];
        while len > 0 {
            let n = len.min(CHUNK as u32);
            self.m_read(off, &mut buf[..n as usize]).await;
            if buf[..n as usize].iter().any(|&b| b != 0xFF) {
                return false;
            }
            off += n;
            len -= n;
        }
        true
    }

    /// The offset (in sector) just past the last byte that is not `0xFF`. Out of
    /// line: its buffer would otherwise sit in the frame of every record scan.
    #[inline(never)]
    async fn programmed_end(&mut self, base: u32) -> u32 {
        let mut buf = [0u8; CHUNK];
        let mut end = self.sector_size();
        while end > 0 {
            let n = end.min(CHUNK as u32);
            self.m_read(base + end - n, &mut buf[..n as usize]).await;
            if let Some(p) = buf[..n as usize].iter().rposition(|&b| b != 0xFF) {
                return end - n + p as u32 + 1;
            }
            end -= n;
        }
        0
    }
}

/// Flips back the corrected bit `fix` (bit index + 1 from the start of the stored
/// tail, 0: none) if it falls in `buf`, which holds the tail from byte `at`.
fn apply_fix(buf: &mut [u8], at: usize, fix: u16) {
    if fix == 0 {
        return;
    }
    let bit = fix as usize - 1;
    // The byte of `bit`, if it lies in `buf` (which starts at byte `at`).
    if let Some(b) = (bit / 8).checked_sub(at).and_then(|i| buf.get_mut(i)) {
        *b ^= 1 << (bit % 8);
    }
}

/// The visitor of an open that reports nothing. One function for every such
/// open and internal scan, so that the recovery's scans are compiled once.
fn ignore(_: Seen) {}

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

blocking_only! {
    #[cfg(test)]
    mod hostile_tests;
    #[cfg(test)]
    pub(crate) mod tests;
}
