//! The location index: where each pending event lives, 10 bytes per event. What
//! it leaves out (the record's CRC, a bit corrected at open, whether its sector
//! takes acks in place) is read back from the medium or worked out when needed.

use super::*;

/// Where a pending event lives: its id less the index's base (the top bit: a bit
/// of its record was corrected at open), the record's absolute offset, and the
/// payload's length (the top bit: a `Copy` record).
#[derive(Clone, Copy)]
#[repr(C, packed(2))]
pub(super) struct Slot {
    delta: u32,
    off: u32,
    len: u16,
}

const CORRECTED: u32 = 1 << 31;
const COPY: u16 = 1 << 15;
/// Ids are stored at most this far above the index's base.
const MAX_DELTA: u64 = (CORRECTED - 1) as u64;

impl Slot {
    /// A copy made field by field. A loop that moves whole slots along the
    /// index is turned into a `memmove` call (compiler-builtins' takes about
    /// 1.5 KiB on Cortex-M); one that moves their fields is not.
    fn fields(&self) -> Slot {
        Slot {
            delta: self.delta,
            off: self.off,
            len: self.len,
        }
    }

    /// The record's absolute offset.
    pub(super) fn off(self) -> u32 {
        self.off
    }

    /// The payload's length.
    pub(super) fn len(self) -> u16 {
        self.len & !COPY
    }

    fn copy(self) -> bool {
        self.len & COPY != 0
    }

    fn corrected(self) -> bool {
        self.delta & CORRECTED != 0
    }

    fn delta(self) -> u32 {
        self.delta & !CORRECTED
    }
}

/// Panics: index `i` holds no entry (a bug: every caller got `i` from `find`).
/// One out-of-line copy of the message for all callers.
#[cold]
#[inline(never)]
fn no_entry(i: usize) -> ! {
    fatal!("monitor-events: no pending entry at index {}", i)
}

/// Why an entry could not be stored.
pub(super) enum PutError {
    /// `N` events are pending.
    Full,
    /// The pending ids would span more than 2^31.
    Span,
}

#[maybe]
impl<M: Medium, const N: usize, C: MonotonicCounter> Journal<M, N, C> {
    /// The id of a slot.
    pub(super) fn slot_id(&self, s: Slot) -> u64 {
        self.base + s.delta() as u64
    }

    /// The position of `id` in the index, or where it would go.
    pub(super) fn find(&self, id: u64) -> Result<usize, usize> {
        let Some(d) = id.checked_sub(self.base) else {
            return Err(0);
        };
        if d > MAX_DELTA {
            return Err(self.entries.len());
        }
        let d = d as u32;
        self.entries.binary_search_by_key(&d, |s| s.delta())
    }

    /// Whether `id`, above every pending id, can be stored beside them.
    pub(super) fn id_fits(&self, id: u64) -> bool {
        self.entries
            .first()
            .is_none_or(|s| id - self.slot_id(*s) <= MAX_DELTA)
    }

    /// Stores `e`, replacing the entry of its id or inserted in id order;
    /// `corrected`: a bit of its record was corrected at open. Changes nothing on
    /// `Err`.
    pub(super) fn put_entry(&mut self, e: &Entry, corrected: bool) -> Result<(), PutError> {
        let pos = self.find(e.id);
        if pos.is_err() && self.entries.is_full() {
            return Err(PutError::Full);
        }
        // Keep the base at or below the oldest id and every delta in range.
        let lowest = self
            .entries
            .first()
            .map_or(e.id, |s| self.slot_id(*s).min(e.id));
        let highest = self
            .entries
            .last()
            .map_or(e.id, |s| self.slot_id(*s).max(e.id));
        if highest - lowest > MAX_DELTA {
            return Err(PutError::Span);
        }
        if self.entries.is_empty() {
            self.base = e.id;
        } else if lowest < self.base || highest - self.base > MAX_DELTA {
            let old = self.base;
            for s in self.entries.iter_mut() {
                let id = old + s.delta() as u64;
                s.delta = (s.delta & CORRECTED) | (id - lowest) as u32;
            }
            self.base = lowest;
        }
        let slot = Slot {
            delta: (e.id - self.base) as u32 | if corrected { CORRECTED } else { 0 },
            off: e.off,
            len: e.len | if e.flags & F_COPY != 0 { COPY } else { 0 },
        };
        // Rebasing kept the order: `pos` still holds. The index is walked with
        // iterators and `get`, never `[i]`: a failed bounds check formats its
        // numbers, which would link `core::fmt`'s integer code (about 1 KiB on
        // Cortex-M) into builds that have none otherwise.
        match pos {
            Ok(i) => {
                if let Some(s) = self.entries.get_mut(i) {
                    *s = slot;
                }
            }
            Err(i) => {
                // Cannot fail: room was checked above.
                let _ = self.entries.push(slot);
                // The later entries up by one (none for a push, the common case):
                // `slot` goes to `i`, each one to the next place, and the last
                // (the slot just pushed) falls off.
                let mut carry = slot;
                for s in self.entries.iter_mut().skip(i) {
                    let next = s.fields();
                    *s = carry;
                    carry = next;
                }
            }
        }
        Ok(())
    }

    /// Removes the entry at `i`: the later entries down by one, field by field
    /// (see [`Slot::fields`]; `Vec::remove` would link `memmove`).
    pub(super) fn remove_at(&mut self, i: usize) {
        let mut later = self.entries.iter_mut().skip(i);
        let Some(mut prev) = later.next() else {
            no_entry(i);
        };
        for s in later {
            *prev = s.fields();
            prev = s;
        }
        self.entries.pop();
    }

    /// Points the entry at `i` to its copy at `off` (written and verified).
    pub(super) fn moved(&mut self, i: usize, off: u32) {
        let Some(s) = self.entries.get_mut(i) else {
            no_entry(i);
        };
        s.delta &= !CORRECTED;
        s.off = off;
        s.len |= COPY;
    }

    /// The whole entry at `i`: the record's CRC read back from the medium, and for
    /// a record corrected at open, the correction worked out again.
    ///
    /// # Panics
    /// If a corrected record no longer reads as one flipped bit (it changed on the
    /// medium since `open`: invariant I7).
    pub(super) async fn entry(&mut self, i: usize) -> Entry {
        let Some(&s) = self.entries.get(i) else {
            no_entry(i);
        };
        let (id, off) = (self.slot_id(s), s.off());
        let mut head = [0u8; RECORD_HEADER_LEN as usize];
        self.m_read(off, &mut head).await;
        let (w, stored) = decode_record_head(&head);
        let (mut crc, mut fix) = (stored, 0);
        if s.corrected() {
            let (seq, p) = self.locate(off);
            match self.explain(seq, p, w, stored).await {
                Explained::Corrected { crc: c, fix: f, .. } => (crc, fix) = (c, f),
                _ => fatal!(
                    "monitor-events: the record of event {} at offset {} changed on the medium",
                    id,
                    off
                ),
            }
        }
        let copy = if s.copy() { F_COPY } else { 0 };
        Entry {
            id,
            off,
            crc,
            len: s.len(),
            fix,
            flags: copy | self.in_place_flag(off),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// I6: the location index takes 10 bytes per pending event.
    #[test]
    fn i6_a_slot_is_ten_bytes() {
        assert_eq!(core::mem::size_of::<Slot>(), 10);
        let s = Slot {
            delta: 5 | CORRECTED,
            off: 4096,
            len: 214 | COPY,
        };
        assert_eq!((s.delta(), s.off(), s.len()), (5, 4096, 214));
        assert!(s.copy() && s.corrected());
    }
}
