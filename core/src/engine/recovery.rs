//! Recovery: reading sector headers, scanning records, rebuilding the location
//! index and the next id at `open` (the steps in the journal's rustdoc).

use super::*;

#[maybe]
impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    pub(super) async fn read_header(&mut self, idx: u32) -> HeaderState {
        let mut b = [0u8; SECTOR_HEADER_LEN as usize];
        self.m_read(idx * self.sector_size(), &mut b).await;
        decode_sector_header(&self.cfg.geometry, &b)
    }

    /// A sector header, checked against the configuration's authentication.
    pub(super) async fn header(&mut self, idx: u32) -> Result<HeaderState, OpenError> {
        let state = self.read_header(idx).await;
        if let HeaderState::Valid(h) = state {
            if h.authenticated != self.cfg.auth.is_some() {
                return Err(OpenError::AuthMismatch { sector: idx });
            }
            if let Some(auth) = self.cfg.auth {
                let base = idx * self.sector_size();
                let mut b = [0u8; (SECTOR_HEADER_LEN + TAG_LEN) as usize];
                self.m_read(base, &mut b).await;
                let mut header = [0u8; SECTOR_HEADER_LEN as usize];
                header.copy_from_slice(&b[..SECTOR_HEADER_LEN as usize]);
                if sector_tag(&auth, h.seq, &header)[..] != b[SECTOR_HEADER_LEN as usize..] {
                    // The header and its tag are one program: a cut can land the
                    // header and tear the tag. Before any record follows, that is a
                    // torn header, as free as a torn plain one (invariant I10).
                    // Behind a record it can only be forged.
                    let hl = self.cfg.header_len();
                    if self.is_erased(base + hl, self.sector_size() - hl).await {
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
    pub(super) async fn record_tag_ok(&mut self, seq: u32, p: u32, w: Word0, fix: u16) -> bool {
        let Some(auth) = self.cfg.auth else {
            return true;
        };
        let off = self.sector_base(seq) + p + RECORD_HEADER_LEN;
        let mut stored = [0u8; TAG_LEN as usize];
        self.m_read(off, &mut stored).await;
        apply_fix(&mut stored, 0, fix);
        let mut t = record_tagger(&auth, seq, p, w);
        let mut buf = [0u8; CHECK_CHUNK];
        let body = w.body_len() as usize;
        let mut at = 0usize;
        while at < body {
            let n = (body - at).min(CHECK_CHUNK);
            self.m_read(off + TAG_LEN + at as u32, &mut buf[..n]).await;
            apply_fix(&mut buf[..n], TAG_LEN as usize + at, fix);
            t.update(&buf[..n]);
            at += n;
        }
        t.finalize() == stored
    }

    pub(super) async fn recover(&mut self, visit: &mut impl FnMut(Seen)) -> Result<(), OpenError> {
        let s = self.sector_count();
        let size = self.sector_size();
        let mut newest: Option<SectorHeader> = None;
        let mut any_magic = false;
        for idx in 0..s {
            match self.header(idx).await? {
                HeaderState::Unsupported(version) => {
                    return Err(OpenError::UnsupportedFormat { version })
                }
                HeaderState::ForeignGeometry => {
                    return Err(OpenError::ForeignGeometry { sector: idx })
                }
                HeaderState::Valid(h) => {
                    if self.sector_index(h.seq) != idx {
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
                if !self.is_erased(idx * size, size).await {
                    return Err(if any_magic {
                        corrupted(idx * size, Corruption::SectorHeader)
                    } else {
                        OpenError::NotAStore
                    });
                }
            }
            if self.probe_first_record(0).await {
                return Err(corrupted(0, Corruption::SectorHeader));
            }
            return Ok(());
        };
        // Step 2: a damaged newest header would make its sector look free. Records
        // behind a broken header are damage, unless they are only copies: an
        // abandoned retirement whose erase was cut, which is free either way.
        let after = newest.seq.wrapping_add(1);
        let after_header = self.read_header(self.sector_index(after)).await;
        if matches!(after_header, HeaderState::Garbage { .. })
            && self.probe_first_record(after).await
            && !self.only_copies(after, newest.authenticated).await
        {
            return Err(corrupted(self.sector_base(after), Corruption::SectorHeader));
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
            let h = self.expect_header(seq).await?;
            // Below the newest sector that keeps something, only the retire
            // records matter here, and step 4 checks every record again: skim.
            let skimmed = if on_top { None } else { self.skim(h).await };
            let scan = match skimmed {
                Some(max_retired) => SectorScan {
                    max_retired,
                    kept: 1,
                    ..SectorScan::default()
                },
                // The erased tail matters only to a sector step 4 does not scan
                // again: one given back, which holds no record but copies.
                None => match self.scan_records(h, false, false, &mut ignore).await? {
                    s if s.kept == 0 => self.scan(h, false, &mut ignore).await?,
                    s => s,
                },
            };
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
            let h = self.expect_header(q).await?;
            visit(Seen::Sector {
                index: self.sector_index(q),
                seq: q,
                floor: h.floor,
            });
            tail = self.scan(h, true, visit).await?;
            next = next.max(h.floor + tail.events);
        }
        if let Some(last) = self.entries.last() {
            next = next.max(self.slot_id(*last) + 1);
        }
        self.next_id = next;
        // Behind the tail, torn programs that changed no bit cannot be seen but may
        // have spent the units' programs: writing continues in a fresh sector.
        self.cur = Some(Current {
            seq: last,
            ptr: tail.end,
            sealed: true,
            records: tail.records,
            copies: 0,
        });
        self.in_place_from = newest.seq + 1;
        Ok(())
    }

    /// Whether sector `seq` (by position, its header unreadable) holds nothing but
    /// `Copy` records that check: what a cut during the erase of an abandoned
    /// retirement leaves.
    /// Step 3 below the top: walks the records of sector `h` by their headers
    /// alone and returns the newest sector its `Retire` records retire, checking
    /// only those records. `None` when anything looks other than a clean run of
    /// records (an unknown kind, a record past the sector's end, a retire record
    /// that fails its check): the caller then scans the sector in full.
    ///
    /// This is sound because step 4 scans every sector skimmed here in full: a
    /// length that a damaged header misstates can only hide a retire record
    /// behind the damage, which step 4 then reports.
    pub(super) async fn skim(&mut self, h: SectorHeader) -> Option<Option<u32>> {
        let size = self.sector_size();
        let base = self.sector_base(h.seq);
        let mut max_retired: Option<u32> = None;
        let mut p = self.cfg.header_len();
        while p + RECORD_HEADER_LEN <= size {
            let mut hdr = [0u8; RECORD_HEADER_LEN as usize];
            self.m_read(base + p, &mut hdr).await;
            if hdr == [0xFF; RECORD_HEADER_LEN as usize] {
                break;
            }
            let (w, stored) = decode_record_head(&hdr);
            let kind = Kind::from_bits(w.kind_bits())?;
            if p + self.cfg.extent(w.body_len()) > size {
                return None;
            }
            if kind == Kind::Retire {
                if self.record_crc(h.seq, p, w).await != Some(stored)
                    || !self.record_tag_ok(h.seq, p, w, 0).await
                {
                    return None;
                }
                let seq = h.seq.checked_sub(w.value()).filter(|_| w.value() > 0)?;
                max_retired = Some(max_retired.map_or(seq, |m| m.max(seq)));
            }
            p += self.cfg.extent(w.body_len());
        }
        Some(max_retired)
    }

    pub(super) async fn only_copies(&mut self, seq: u32, authenticated: bool) -> bool {
        let h = SectorHeader {
            seq,
            floor: 0,
            authenticated,
        };
        self.scan(h, false, &mut ignore)
            .await
            .is_ok_and(|scan| scan.kept == 0)
    }

    pub(super) async fn expect_header(&mut self, seq: u32) -> Result<SectorHeader, OpenError> {
        match self.header(self.sector_index(seq)).await? {
            HeaderState::Valid(h) if h.seq == seq => Ok(h),
            HeaderState::Valid(_) => Err(corrupted(self.sector_base(seq), Corruption::SectorOrder)),
            _ => Err(corrupted(self.sector_base(seq), Corruption::SectorHeader)),
        }
    }

    /// Whether sector `seq` (by position) starts with a record that checks.
    pub(super) async fn probe_first_record(&mut self, seq: u32) -> bool {
        let base = self.sector_base(seq);
        let p = self.cfg.header_len();
        let mut hdr = [0u8; 8];
        self.m_read(base + p, &mut hdr).await;
        let (w, stored) = decode_record_head(&hdr);
        self.record_crc(seq, p, w)
            .await
            .is_some_and(|c| c == stored)
    }

    /// The CRC of the record at `p` in sector `seq` read with header `w`, if the
    /// header describes a record that fits.
    pub(super) async fn record_crc(&mut self, seq: u32, p: u32, w: Word0) -> Option<u32> {
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
        self.m_read(off, tag).await;
        off += tag.len() as u32;
        let mut d = RecordCrc::new(seq, p, w, tag);
        let mut buf = [0u8; CHUNK];
        let mut left = body;
        while left > 0 {
            let n = left.min(CHUNK as u32) as usize;
            self.m_read(off, &mut buf[..n]).await;
            d.update(&buf[..n]);
            off += n as u32;
            left -= n as u32;
        }
        Some(d.finish())
    }

    /// Explains a record that fails its CRC as a single flipped bit, if it is one.
    /// `erased` is only looked at where writes land out of order, and only
    /// worked out there (flash builds leave it out).
    pub(super) async fn explain(&mut self, seq: u32, p: u32, w: Word0, stored: u32) -> Explained {
        let in_order = self.medium.writes_in_order();
        let base = self.sector_base(seq);
        if let Some(computed) = self.record_crc(seq, p, w).await {
            let syn = computed ^ stored;
            if syn.count_ones() == 1 {
                // A flip in the CRC field itself.
                return if stored & syn != 0 {
                    Explained::Corrected {
                        word0: w,
                        fix: 0,
                        crc: computed,
                        erased: !in_order && byte_of(stored, syn) == 0xFF,
                    }
                } else {
                    Explained::Rot { word0: w, fix: 0 }
                };
            }
            let stored_len = self.cfg.tag_len() + w.body_len();
            let total = (8 + 4 + stored_len) * 8;
            if let Some(j) = locate_single_bit(syn, total, 96) {
                let bit = j - 96;
                let mut b = [0u8; 1];
                self.m_read(base + p + RECORD_HEADER_LEN + bit / 8, &mut b)
                    .await;
                let fix = bit as u16 + 1;
                return if b[0] & (1 << (bit % 8)) != 0 {
                    Explained::Corrected {
                        word0: w,
                        fix,
                        crc: stored,
                        erased: !in_order && b[0] == 0xFF,
                    }
                } else {
                    Explained::Rot { word0: w, fix }
                };
            }
        }
        for bit in (0..32).filter(|b| !(16..24).contains(b)) {
            let w2 = Word0(w.0 ^ (1 << bit));
            if self.record_crc(seq, p, w2).await == Some(stored) {
                return if w.0 & (1 << bit) != 0 {
                    Explained::Corrected {
                        word0: w2,
                        fix: 0,
                        crc: stored,
                        erased: !in_order && byte_of(w.0, 1 << bit) == 0xFF,
                    }
                } else {
                    Explained::Rot { word0: w2, fix: 0 }
                };
            }
        }
        Explained::No
    }

    /// Scans the records of one live sector. With `apply`, updates the index.
    pub(super) async fn scan(
        &mut self,
        h: SectorHeader,
        apply: bool,
        visit: &mut impl FnMut(Seen),
    ) -> Result<SectorScan, OpenError> {
        self.scan_records(h, apply, true, visit).await
    }

    /// Bytes behind offset `p` of a sector that a record begun at `p` may have
    /// touched: one record of the largest length the format can state, or the
    /// rest of the sector.
    fn torn_window(&self, p: u32) -> u32 {
        (self.sector_size() - p).min(self.cfg.extent(MAX_LEN_FIELD))
    }

    /// Scans sector `h`'s records; with `tail`, also what follows the last one:
    /// an all-`0xFF` record header ends the scan only where the bytes a torn
    /// record there could have touched read erased (else the scan goes on to
    /// judge them, torn or damaged). Further on, the sector is never read: no
    /// record is ever written behind an unfinished one (a failed or torn write
    /// seals the sector), and no write goes there after a restart.
    ///
    /// On a medium whose unsynced writes may land out of order
    /// ([`Medium::writes_in_order`] false: a file), a record that fails its check
    /// ends the scan as a torn tail even with programmed bytes behind it: they
    /// were written after it, in the same unsynced group, and a crash kept them
    /// but not it. But not one that reads a single bit short: if the bit's byte
    /// reads `0xFF` it is kept corrected and the scan goes on (a crash that kept
    /// that byte alone from landing, or rot: what was written either way), and
    /// else it is refused (a byte lands whole or not at all: only rot leaves it).
    pub(super) async fn scan_records(
        &mut self,
        h: SectorHeader,
        apply: bool,
        tail: bool,
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
                out.sealed = tail && !self.is_erased(base + p, self.torn_window(p)).await;
                out.torn = out.sealed;
                break;
            }
            let mut hdr = [0u8; 8];
            self.m_read(base + p, &mut hdr).await;
            let (w, stored) = decode_record_head(&hdr);
            if hdr == [0xFF; 8] && (!tail || self.is_erased(base + p, self.torn_window(p)).await) {
                break;
            }
            let (w, fix, crc, corrected) = if self.record_crc(h.seq, p, w).await == Some(stored) {
                (w, 0, stored, false)
            } else {
                let end = self.programmed_end(base).await;
                let in_order = self.medium.writes_in_order();
                match self.explain(h.seq, p, w, stored).await {
                    Explained::Corrected {
                        word0,
                        fix,
                        crc,
                        erased,
                    } => {
                        // Behind the last record, one that reads a bit short
                        // may be a write a cut tore: kept, corrected, and the
                        // sector sealed behind it. With records behind it, it is
                        // damage, refused (I8); unless writes land out of order
                        // and the bit's byte reads erased, as a byte a crash kept
                        // from landing does (a byte lands whole or not at all):
                        // then it is that, the records behind it of its group,
                        // or rot. Corrected, it is what was written either way,
                        // and so are the records behind it: the scan goes on.
                        let behind = p + self.cfg.extent(word0.body_len()) < end;
                        if behind && (in_order || !erased) {
                            return Err(corrupted(base + p, Corruption::Record));
                        }
                        visit(Seen::Corrected { offset: base + p });
                        out.sealed = !behind;
                        (word0, fix, crc, true)
                    }
                    Explained::Rot { word0, fix } => {
                        // Behind the last record of an authenticated journal, a
                        // bit that reads 0 where the CRC wants 1 is rot only if
                        // the record as written carries its tag. If it does
                        // not, the syndrome matched by chance in the bytes of a
                        // torn or weak write (as with `Corrected` below): torn.
                        let behind = p + self.cfg.extent(word0.body_len()) < end;
                        if !behind
                            && self.cfg.auth.is_some()
                            && !self.record_tag_ok(h.seq, p, word0, fix).await
                        {
                            out.tear(visit, base + p);
                            break;
                        }
                        return Err(corrupted(base + p, Corruption::BitFlip));
                    }
                    Explained::No => {
                        let claimed = self.cfg.extent(w.len()).min(size - p);
                        if end <= p + claimed || !in_order {
                            out.tear(visit, base + p);
                            break;
                        }
                        return Err(corrupted(base + p, Corruption::Record));
                    }
                }
            };
            if self.cfg.auth.is_some() && !self.record_tag_ok(h.seq, p, w, fix).await {
                if corrected && out.sealed {
                    // Behind the last record, a record that read a bit short
                    // and fails its tag once corrected: the correction was a
                    // chance match in the bytes of a torn or weak write (the
                    // search tries every bit of the length it claims, one
                    // CRC syndrome each). Torn, as it would be without the
                    // chance: not forged.
                    out.tear(visit, base + p);
                    break;
                }
                return Err(corrupted(base + p, Corruption::Forged));
            }
            self.apply_record(h, p, w, fix, crc, corrected, apply, &mut out, visit)
                .await?;
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
    pub(super) async fn apply_record(
        &mut self,
        h: SectorHeader,
        p: u32,
        w: Word0,
        fix: u16,
        crc: u32,
        corrected: bool,
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
                    (self.read_body_u64(off, fix).await, w.len() - 8, F_COPY)
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
                        self.remove_at(i);
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
                    self.upsert(e, corrected)?;
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
                    self.read_body_u64(off, fix).await
                } else {
                    return Err(corrupted(off, Corruption::Semantics));
                };
                visit(Seen::Ack {
                    id: EventId(id),
                    offset: off,
                });
                if apply {
                    if let Ok(i) = self.find(id) {
                        self.remove_at(i);
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

    pub(super) async fn read_body_u64(&mut self, off: u32, fix: u16) -> u64 {
        let mut b = [0u8; 8];
        let tag = self.cfg.tag_len();
        self.m_read(off + RECORD_HEADER_LEN + tag, &mut b).await;
        apply_fix(&mut b, tag as usize, fix);
        u64::from_le_bytes(b)
    }

    pub(super) fn upsert(&mut self, e: Entry, corrected: bool) -> Result<(), OpenError> {
        match self.put_entry(&e, corrected) {
            Ok(()) => Ok(()),
            Err(index::PutError::Full) => Err(OpenError::TooManyPending { capacity: N }),
            // A journal never has pending ids 2^31 apart (push refuses it first).
            Err(index::PutError::Span) => Err(corrupted(e.off, Corruption::Semantics)),
        }
    }
}

/// The byte of the little-endian word `word` that holds the bit set in `bit`.
fn byte_of(word: u32, bit: u32) -> u8 {
    (word >> (bit.trailing_zeros() & !7)) as u8
}
