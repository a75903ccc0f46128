//! Making room: rolling over into the next sector and retiring the oldest one
//! (copying its pending events forward, the `Retire` record, the erase).

use super::*;
use crate::split::{split, split_mut};

#[maybe]
impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    /// Makes sure the current sector can take `need` more bytes, of which `cost`
    /// count against its copy budget, rolling over and compacting as needed.
    pub(super) async fn make_room(&mut self, need: u32, cost: u32) {
        let want_free = 1 + self.cfg.reserve();
        loop {
            if self.fits(need, cost) {
                if self.free_count() < want_free && self.can_retire() {
                    let rb = self.retire_bytes();
                    if self.fits(rb + need, rb - self.cfg.extent(0) + cost) {
                        self.retire_oldest().await;
                        continue;
                    }
                }
                return;
            }
            if self.free_count() == 0 {
                self.must_retire_into_current();
                self.retire_oldest().await;
                continue;
            }
            self.rollover().await;
            if self.free_count() < want_free && self.can_retire() {
                self.retire_oldest().await;
            }
        }
    }

    /// Rewrites the pending events into fresh sectors: rolls over into a new
    /// sector, then retires every older one (each pending event copied forward
    /// once, then the sector erased), so that the region holds nothing but the
    /// pending events: the records of acked events, and the ack records, are
    /// erased with their sectors.
    ///
    /// What it is for: a firmware update that lowers `N`. `open` replays the
    /// records in order in `N` slots, so a region whose records show more
    /// events pending at once than the new `N` (a time when the old firmware
    /// had more pending, and acked them later) is refused with
    /// [`OpenError::TooManyPending`](crate::journal::OpenError::TooManyPending)
    /// until the ring has turned. Opened with the old `N`, `compact` ends that
    /// at once: the new `N` then opens it if it holds the pending events.
    ///
    /// Every step is a retirement, as `push` makes when it needs room: a power
    /// cut leaves the journal as any cut does (invariants I1–I4, I10), with
    /// the compaction done in part. Costs one erase per sector in use and a
    /// copy of each pending event. A blank journal writes nothing.
    ///
    /// A compaction that did not complete (its future dropped, or its panic
    /// caught) leaves the journal refusing every later push, ack and read with
    /// a panic until the medium is opened again, as an interrupted push does.
    ///
    /// # Panics
    /// If the medium fails (invariant I7).
    pub async fn compact(&mut self) {
        self.check_not_interrupted();
        // `repair` erases free sectors only: `cur` stays as it is.
        let Some(cur) = self.cur else {
            return;
        };
        self.busy = true;
        self.repair().await;
        // Into a fresh sector, unless the current one holds nothing yet. With
        // no sector free, the oldest is retired into the current one first,
        // as `make_room` does.
        if cur.ptr > self.cfg.header_len() || cur.sealed {
            if self.free_count() == 0 {
                self.must_retire_into_current();
                self.retire_oldest().await;
            }
            self.rollover().await;
        }
        // Every older sector retired: the pending events are copied into the
        // fresh sector and those after it (rollovers as the copies need).
        let fresh = self.cur.map_or(cur.seq, |c| c.seq);
        while self.oldest < fresh {
            self.retire_oldest().await;
        }
        self.sync().await;
        self.vouch();
        self.busy = false;
    }

    /// With no sector free, the oldest must retire into the current one:
    /// stops (I7) if its copies do not fit there. (Not async itself, so that
    /// the async build has no future more for it.)
    fn must_retire_into_current(&self) {
        let rb = self.retire_bytes();
        if !(self.can_retire() && self.fits(rb, rb - self.cfg.extent(0))) {
            fatal!(
                "monitor-events: no free sector left (power cuts in compaction, or writes that did not verify?)"
            );
        }
    }

    /// Makes room while retiring: rolls over whenever the current sector cannot
    /// take `need` more bytes (`cost` of them against its copy budget). This is
    /// [`make_room`](Self::make_room) when no retirement may start.
    pub(super) async fn roll_room(&mut self, need: u32, cost: u32) {
        while !self.fits(need, cost) {
            if self.free_count() == 0 {
                fatal!(
                    "monitor-events: no free sector left (power cuts in compaction, or writes that did not verify?)"
                );
            }
            self.rollover().await;
        }
    }

    /// Whether the current sector takes `need` more bytes, `cost` of them against
    /// its copy budget (see [`Config`]'s rule).
    fn fits(&self, need: u32, cost: u32) -> bool {
        self.cur.is_some_and(|c| {
            !c.sealed
                && c.ptr + need <= self.sector_size()
                && (!self.cfg.budgeted || c.copies + cost <= self.cfg.copy_budget())
        })
    }

    pub(super) fn can_retire(&self) -> bool {
        !self.retiring && self.cur.is_some_and(|c| self.oldest < c.seq)
    }

    /// Bytes the retirement of the oldest sector appends.
    pub(super) fn retire_bytes(&self) -> u32 {
        let lo = self.sector_base(self.oldest);
        let hi = lo + self.sector_size();
        let copies: u32 = self
            .entries
            .iter()
            .filter(|s| (lo..hi).contains(&s.off()))
            .map(|s| self.cfg.extent(s.len() as u32 + 8))
            .sum();
        copies + self.cfg.extent(0)
    }

    pub(super) async fn rollover(&mut self) {
        let seq = self.cur.map_or(0, |c| c.seq + 1);
        if self.cur.is_none() {
            self.oldest = 0;
        }
        let idx = self.sector_index(seq);
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
        let (from, to) = self.erase_first;
        if (from..to).contains(&seq) {
            // A free sector of several erase blocks from before the restart.
            self.m_erase(idx).await;
        }
        for attempt in 0..2 {
            if attempt == 1 {
                warn!("monitor-events: sector header did not verify; erasing");
                self.m_erase(idx).await;
            }
            // `split`, not `[..hl]`: see `put`.
            let want = split(&buf, hl).0;
            self.m_program(base, want).await;
            let mut back = [0u8; 64];
            let back = split_mut(&mut back, hl).0;
            self.m_read(base, back).await;
            if back == want {
                if !self.medium.writes_in_order() {
                    // Where unsynced writes land out of order, the header is
                    // durable (with everything before it) before any record
                    // behind it is written: an interrupted group of writes then
                    // never spans a sector's header.
                    self.sync().await;
                }
                self.cur = Some(Current {
                    seq,
                    ptr: hl as u32,
                    sealed: false,
                    records: 0,
                    copies: 0,
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
    pub(super) async fn retire_oldest(&mut self) {
        let old = self.oldest;
        self.retiring = true;
        let lo = self.sector_base(old);
        let hi = lo + self.sector_size();
        let mut i = 0;
        while i < self.entries.len() {
            if (lo..hi).contains(&self.entries[i].off()) {
                let e = self.entry(i).await;
                let (off, _) = self.append_retiring(Spec::Copy(e)).await;
                if let Ok(k) = self.find(e.id) {
                    self.moved(k, off);
                }
            }
            i += 1;
        }
        self.append_retiring(Spec::Retire(old)).await;
        self.retiring = false;
        self.sync().await;
        self.oldest = old + 1;
        self.m_erase(self.sector_index(old)).await;
        self.sync().await;
    }
}
