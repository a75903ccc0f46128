//! Writing records: the repair before the first write, appending a record with
//! its CRC and tag, reading it back, and acks in place.

use super::*;
use crate::journal::format::Tagger;
use crate::split::{split, split_mut};

/// The buffer a record is programmed through, word-aligned: filling it again
/// with `0xFF` then takes the word-aligned `memset` that the firmware links
/// anyway, not a second, byte-aligned one.
#[repr(align(4))]
pub(super) struct ProgramBuf([u8; CHUNK]);

#[maybe]
impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    /// Before the first write after `open`: erase every free sector that is not
    /// clean, or, on sectors of several erase blocks, leave all but the next one
    /// and those given back to the rollover into them (`erase_first`).
    pub(super) async fn repair(&mut self) {
        if !self.needs_repair {
            return;
        }
        let size = self.sector_size();
        let first = self.cur.map_or(0, |c| c.seq + 1);
        // A sector of several erase blocks whose erase a cut interrupted may keep
        // blocks with spent units that read erased: once the journal has written
        // (a sector has a header), every free sector is erased before its first
        // use, by the rollover into it (a restart before then costs nothing).
        let free = self.free_count();
        let defer = self.cur.is_some() && self.medium.erase_block_size() < size;
        if defer {
            self.erase_first = (first.wrapping_add(self.reclaim), first.wrapping_add(free));
        }
        // From the farthest free sector back to the next one: the sectors given
        // back at open newest first, so that a cut during these erases never
        // leaves a valid header above one it erased only in part (the next open
        // would find the newest header and, below it, a broken one).
        for k in (0..free).rev() {
            let idx = self.sector_index(first.wrapping_add(k));
            // The next sector may hold torn header programs that changed no bit, and
            // sectors given back at open hold copies: they are erased all the same.
            let phantom = k < self.reclaim;
            if phantom || (!defer && !self.is_erased(idx * size, size).await) {
                self.m_erase(idx).await;
            }
        }
        self.needs_repair = false;
    }

    /// Appends one record, verified; returns its offset and CRC.
    ///
    /// Making room (which may retire the oldest sector, appending copies) happens
    /// here, before the record's buffers exist: [`write_here`](Self::write_here)
    /// keeps them in its own frame, so a retirement inside an append never stacks
    /// two of them.
    pub(super) async fn append(&mut self, spec: Spec<'_>) -> (u32, u32) {
        let body_len = self.body_len(spec);
        for attempt in 0..2 {
            let ext = self.begin_attempt(body_len, attempt);
            self.make_room(ext, self.copy_cost(spec, ext)).await;
            if let Some(written) = self.write_here(spec, body_len, ext).await {
                return written;
            }
        }
        self.unverified()
    }

    /// [`append`](Self::append) for the records of a retirement (its copies and
    /// its `Retire` record): room is made by rolling over only
    /// ([`roll_room`](Self::roll_room)), never by retiring again. That is what
    /// `make_room` does while `retiring` is set; a separate function keeps the
    /// call graph free of cycles, which an async build cannot have.
    pub(super) async fn append_retiring(&mut self, spec: Spec<'_>) -> (u32, u32) {
        let body_len = self.body_len(spec);
        for attempt in 0..2 {
            let ext = self.begin_attempt(body_len, attempt);
            self.roll_room(ext, self.copy_cost(spec, ext)).await;
            if let Some(written) = self.write_here(spec, body_len, ext).await {
                return written;
            }
        }
        self.unverified()
    }

    /// The length of the body a record of `spec` carries.
    fn body_len(&self, spec: Spec<'_>) -> u32 {
        match spec {
            Spec::Event(b) => b.len() as u32,
            Spec::Copy(e) => e.len as u32 + 8,
            Spec::Ack(id) if self.next_id - id <= MAX_VALUE as u64 => 0,
            Spec::Ack(_) => 8,
            Spec::Retire(_) => 0,
        }
    }

    /// Starts attempt `attempt` (0 or 1) of an append; returns the record's
    /// extent. The second attempt seals the current sector first.
    fn begin_attempt(&mut self, body_len: u32, attempt: u32) -> u32 {
        if attempt == 1 {
            // The first try did not read back as written: seal and go on in a
            // fresh sector (a worn unit is not a reason to stop).
            warn!("monitor-events: write did not verify; sealing the sector");
            if let Some(c) = self.cur.as_mut() {
                c.sealed = true;
            }
        }
        self.cfg.extent(body_len)
    }

    /// A record did not read back as written, twice.
    fn unverified(&self) -> ! {
        fatal!(
            "monitor-events: program at offset {} did not read back as written, twice",
            { self.cur.map_or(0, |c| self.sector_base(c.seq) + c.ptr) }
        );
    }

    /// What a record of `spec` (of extent `ext`) counts against its sector's copy
    /// budget: the extent of the `Copy` record that would carry it forward.
    fn copy_cost(&self, spec: Spec<'_>, ext: u32) -> u32 {
        match spec {
            Spec::Event(b) => self.cfg.extent(b.len() as u32 + 8),
            Spec::Copy(_) => ext,
            Spec::Ack(_) | Spec::Retire(_) => 0,
        }
    }

    /// Writes one record at the end of the current sector (which has room) and
    /// reads it back: its offset and CRC, or `None` if it did not verify. `ext`:
    /// the record's extent, `self.cfg.extent(body_len)`.
    #[inline(never)]
    async fn write_here(&mut self, spec: Spec<'_>, body_len: u32, ext: u32) -> Option<(u32, u32)> {
        let cur = self.cur?;
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
            self.feed_body(body, |chunk| t.update(chunk)).await;
            tag = t.finalize();
        }
        let tag = &tag[..self.cfg.tag_len() as usize];
        let crc = {
            let mut d = RecordCrc::new(cur.seq, cur.ptr, w, tag);
            if let Some(id) = prefix {
                d.update(&id.to_le_bytes());
            }
            self.feed_body(body, |chunk| d.update(chunk)).await;
            d.finish()
        };
        self.write_record(off, w, crc, tag, prefix, body, ext).await;
        let cost = self.copy_cost(spec, ext);
        if let Some(c) = self.cur.as_mut() {
            c.ptr += ext;
            c.records += 1;
            c.copies += cost;
        }
        if self.verify_record(off, w, crc, tag, prefix, body).await {
            Some((off, crc))
        } else {
            None
        }
    }

    /// Reads bytes `[at, at + buf.len())` of a pending entry's payload, with a bit
    /// corrected at open put right.
    pub(super) async fn read_payload(&mut self, e: Entry, at: usize, buf: &mut [u8]) {
        let skip = self.cfg.tag_len() as usize + if e.flags & F_COPY != 0 { 8 } else { 0 };
        self.m_read(e.off + RECORD_HEADER_LEN + (skip + at) as u32, buf)
            .await;
        apply_fix(buf, skip + at, e.fix);
    }

    /// The authentication tag stored with a pending entry (empty when plain).
    pub(super) async fn stored_tag(&mut self, e: Entry) -> [u8; TAG_LEN as usize] {
        let mut t = [0u8; TAG_LEN as usize];
        if self.cfg.auth.is_some() {
            self.m_read(e.off + RECORD_HEADER_LEN, &mut t).await;
            apply_fix(&mut t, 0, e.fix);
        }
        t
    }

    /// Reads a pending entry's payload into `out` (exactly its length) in one
    /// piece and checks it as [`check_entry`](Self::check_entry) does, with no
    /// chunk buffer and no tag state in its frame: the store's `open` reads every
    /// pending event through here, on top of the stack that holds the store.
    #[inline(never)]
    pub(super) async fn read_entry(&mut self, e: Entry, out: &mut [u8]) {
        let place = self.entry_place(&e);
        let tag = self.stored_tag(e).await;
        let mut d = self.entry_crc(&e, place, &tag);
        if !out.is_empty() {
            self.read_payload(e, 0, out).await;
            d.update(out);
        }
        if d.finish() != e.crc || !self.payload_tag_ok(&e, place, &tag, out) {
            entry_changed("read", &e);
        }
    }

    /// Whether `tag` authenticates entry `e` (at `place`) with `payload`: true
    /// when plain. Out of line, so that the HMAC state never shares a frame with
    /// a read.
    #[inline(never)]
    fn payload_tag_ok(
        &self,
        e: &Entry,
        place: (u32, u32, Word0),
        tag: &[u8; TAG_LEN as usize],
        payload: &[u8],
    ) -> bool {
        let Some(mut t) = self.entry_tagger(e, place) else {
            return true;
        };
        t.update(payload);
        t.finalize() == *tag
    }

    /// Where entry `e`'s record is, `(seq, offset in sector)`, and its header
    /// word: what its CRC and tag start from.
    fn entry_place(&self, e: &Entry) -> (u32, u32, Word0) {
        let (seq, in_sector) = self.locate(e.off);
        (seq, in_sector, Word0::with_body(kind_of(e), body_len_of(e)))
    }

    /// Entry `e`'s CRC up to its payload: the record's place and header, its
    /// stored `tag`, and a copy's id.
    #[inline(always)]
    fn entry_crc(
        &self,
        e: &Entry,
        (seq, in_sector, w): (u32, u32, Word0),
        tag: &[u8; TAG_LEN as usize],
    ) -> RecordCrc {
        let mut d = RecordCrc::new(seq, in_sector, w, &tag[..self.cfg.tag_len() as usize]);
        if e.flags & F_COPY != 0 {
            d.update(&e.id.to_le_bytes());
        }
        d
    }

    /// Entry `e`'s authentication tag up to its payload (`None` when plain).
    #[inline(always)]
    fn entry_tagger(&self, e: &Entry, (seq, in_sector, w): (u32, u32, Word0)) -> Option<Tagger> {
        let mut t = record_tagger(&self.cfg.auth?, seq, in_sector, w);
        if e.flags & F_COPY != 0 {
            t.update(&e.id.to_le_bytes());
        }
        Some(t)
    }

    /// Checks a pending entry's payload, streamed through `f` in chunks of
    /// `CHECK_CHUNK` bytes, against its CRC and (when authenticated) its tag;
    /// panics if the medium changed under it.
    #[inline(always)]
    pub(super) async fn check_entry(
        &mut self,
        e: Entry,
        what: &str,
        mut f: impl FnMut(&mut Self, usize, &mut [u8]),
    ) {
        self.check_entry_with(e, what, &mut f).await;
    }

    /// [`check_entry`](Self::check_entry) behind one `dyn` call per chunk: one copy
    /// of the loop for every caller's `f`.
    #[inline(never)]
    async fn check_entry_with(
        &mut self,
        e: Entry,
        what: &str,
        f: &mut dyn FnMut(&mut Self, usize, &mut [u8]),
    ) {
        let place = self.entry_place(&e);
        let tag = self.stored_tag(e).await;
        let mut d = self.entry_crc(&e, place, &tag);
        // Not `entry_tagger`: its `Option<Tagger>` result costs this frame a copy
        // of the HMAC state, under a compaction's program buffer (measured: an
        // authenticated ack 64 B deeper).
        let (seq, in_sector, w) = place;
        let mut t = self.cfg.auth.map(|a| record_tagger(&a, seq, in_sector, w));
        if let Some(t) = t.as_mut().filter(|_| e.flags & F_COPY != 0) {
            t.update(&e.id.to_le_bytes());
        }
        let mut buf = [0u8; CHECK_CHUNK];
        let mut at = 0usize;
        while at < e.len as usize {
            let n = (e.len as usize - at).min(CHECK_CHUNK);
            self.read_payload(e, at, &mut buf[..n]).await;
            d.update(&buf[..n]);
            if let Some(t) = t.as_mut() {
                t.update(&buf[..n]);
            }
            f(self, at, &mut buf[..n]);
            at += n;
        }
        if d.finish() != e.crc || t.is_some_and(|t| t.finalize() != tag) {
            entry_changed(what, &e);
        }
    }

    /// Streams a body's bytes to `f`. For a copy, the source record's checksum is
    /// verified once all of it has been streamed.
    #[inline(never)]
    pub(super) async fn feed_body(&mut self, body: Body<'_>, mut f: impl FnMut(&[u8])) {
        match body {
            Body::Slice(b) => f(b),
            Body::Entry(e) => {
                self.check_entry(e, "compaction read", |_, _, chunk| f(chunk))
                    .await
            }
        }
    }

    /// Programs a record in pieces of at most `CHUNK` bytes (one program for any
    /// record that fits).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) async fn write_record(
        &mut self,
        off: u32,
        w: Word0,
        crc: u32,
        tag: &[u8],
        prefix: Option<u64>,
        body: Body<'_>,
        ext: u32,
    ) {
        let mut buf = ProgramBuf([0xFF; CHUNK]);
        let mut fill = 0usize;
        let mut at = off;
        let (head, head_len) = encode_record_head(w, crc, tag);
        self.put(&head[..head_len], &mut buf, &mut fill, &mut at)
            .await;
        if let Some(id) = prefix {
            self.put(&id.to_le_bytes(), &mut buf, &mut fill, &mut at)
                .await;
        }
        match body {
            Body::Slice(b) => self.put(b, &mut buf, &mut fill, &mut at).await,
            Body::Entry(e) => {
                // Straight into the program buffer: no second buffer on the stack.
                let mut done = 0usize;
                while done < e.len as usize {
                    let n = (e.len as usize - done).min(CHUNK - fill);
                    // `split_mut`, not `[fill..fill + n]`: see `put`.
                    let (_, free) = split_mut(&mut buf.0, fill);
                    self.read_payload(e, done, split_mut(free, n).0).await;
                    self.put_filled(n, &mut buf, &mut fill, &mut at).await;
                    done += n;
                }
            }
        }
        let end = off + ext;
        if at < end {
            let n = (end - at) as usize;
            self.m_program(at, split(&buf.0, n).0).await;
        }
    }

    /// Counts `n` bytes already placed in the program buffer at `fill`,
    /// programming it if it is full.
    async fn put_filled(&mut self, n: usize, buf: &mut ProgramBuf, fill: &mut usize, at: &mut u32) {
        *fill += n;
        if *fill == CHUNK {
            self.m_program(*at, &buf.0[..]).await;
            *at += CHUNK as u32;
            *fill = 0;
            buf.0.fill(0xFF);
        }
    }

    /// Adds bytes to the program buffer, programming it whenever it is full.
    pub(super) async fn put(
        &mut self,
        mut bytes: &[u8],
        buf: &mut ProgramBuf,
        fill: &mut usize,
        at: &mut u32,
    ) {
        while !bytes.is_empty() {
            // `split`, not range indexing: its failure (impossible here) is one
            // shared panic (see `crate::split`), where a failed range index
            // formats numbers and links `core::fmt`'s integer code (about 1 KiB
            // on Cortex-M) into builds that have none otherwise.
            let (_, free) = split_mut(&mut buf.0, *fill);
            let n = bytes.len().min(free.len());
            let (now, rest) = split(bytes, n);
            split_mut(free, n).0.copy_from_slice(now);
            bytes = rest;
            self.put_filled(n, buf, fill, at).await;
        }
    }

    /// Reads a record back and compares it with what was meant.
    #[inline(never)]
    pub(super) async fn verify_record(
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
        self.m_read(off, &mut head[..head_len]).await;
        if head[..head_len] != want[..head_len] {
            return false;
        }
        match body {
            Body::Slice(b) => {
                let mut p = off + RECORD_HEADER_LEN + tag.len() as u32;
                if let Some(id) = prefix {
                    let mut x = [0u8; 8];
                    self.m_read(p, &mut x).await;
                    if x != id.to_le_bytes() {
                        return false;
                    }
                    p += 8;
                }
                let mut cmp = [0u8; CHUNK];
                for chunk in b.chunks(CHUNK) {
                    self.m_read(p, &mut cmp[..chunk.len()]).await;
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
                self.record_crc(seq, in_sector, w).await == Some(crc)
            }
        }
    }

    /// Clears the ack byte of a pending record in place; false if it did not verify.
    pub(super) async fn ack_in_place(&mut self, off: u32) -> bool {
        let ws = self.cfg.geometry.write_size as usize;
        let mut unit = [0u8; 32];
        // The write size is at most 32 (`Config` checks it): no panic path.
        let unit = &mut unit[..ws.clamp(4, 32)];
        self.m_read(off, unit).await;
        unit[2] = 0x00;
        let want = [unit[0], unit[1], 0x00, unit[3]];
        self.m_program(off, unit).await;
        let mut back = [0u8; 4];
        self.m_read(off, &mut back).await;
        back == want
    }
}

/// Panics for entry `e`, whose record no longer checks on `what` (I7): the
/// medium changed under it since it was written or recovered.
#[cold]
#[inline(never)]
fn entry_changed(what: &str, e: &Entry) -> ! {
    fatal!(
        "monitor-events: {} at offset {}: the record of event {} changed on the medium",
        what,
        e.off,
        e.id
    )
}
