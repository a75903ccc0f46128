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
            Ok(i) => match self.entries.get_mut(i) {
                Some(s) => *s = slot,
                // `find` just found it there.
                None => no_entry(i),
            },
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

    /// Drops pending event `id` from the index (RAM only) if open kept its record
    /// only once one bit was corrected and nothing follows the record in its
    /// sector: the one record a chance match in the bytes of a torn or weak
    /// write can leave (`recovery::scan_records`). The typed store calls it for
    /// a record whose body is no event, which a returned push whose bit rotted
    /// never is: the record is that torn write, as it would be without the
    /// chance. Its id stays spent; its sector is sealed, so nothing is written
    /// behind it, and every later open drops it the same way until its sector
    /// is retired (it is not copied). Whether it did.
    pub(super) async fn drop_corrected_tail(&mut self, id: EventId) -> bool {
        let Ok(i) = self.find(id.0) else {
            return false;
        };
        let Some(&s) = self.entries.get(i) else {
            no_entry(i);
        };
        if !s.corrected() {
            return false;
        }
        let (seq, p) = self.locate(s.off());
        let body = u32::from(s.len()) + if s.copy() { 8 } else { 0 };
        if p + self.cfg.extent(body) < self.programmed_end(self.sector_base(seq)).await {
            return false;
        }
        warn!(
            "monitor-events: event {=u64} at {=u32}, corrected at open, is no event: torn",
            id.0,
            s.off()
        );
        self.remove_at(i);
        true
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

blocking_only! {
#[cfg(test)]
mod model_tests {
    use super::*;
    use crate::blocking::tests::{TestFlash, GEO};
    use crate::journal::NoCounter;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One step against the index: store an entry for `id` (new or replacing),
    /// remove the `pick`-th entry, or point the `pick`-th entry at a copy.
    #[derive(Clone, Debug)]
    enum Step {
        Put {
            id: u64,
            off: u32,
            len: u16,
            copy: bool,
            corrected: bool,
        },
        Remove {
            pick: usize,
        },
        Moved {
            pick: usize,
            off: u32,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0u64..64, any::<u32>(), 0u16..0x7FFF, any::<bool>(), any::<bool>())
                .prop_map(|(id, off, len, copy, corrected)| {
                    Step::Put { id, off, len, copy, corrected }
                }),
            1 => any::<usize>().prop_map(|pick| Step::Remove { pick }),
            1 => (any::<usize>(), any::<u32>())
                .prop_map(|(pick, off)| Step::Moved { pick, off }),
        ]
    }

    proptest! {
        /// I1, I6: the location index against a sorted map, over random puts
        /// (inserts anywhere, replacements, ids far apart that move the base),
        /// removals and moves: after every step it holds exactly the model's
        /// entries, in id order, each with its offset, length and flags; a put
        /// into a full index is `Full` and changes nothing.
        #[test]
        fn i1_the_index_follows_a_sorted_map(
            base in prop_oneof![Just(0u64), Just(u64::MAX / 2), 0u64..1 << 40],
            steps in proptest::collection::vec(step(), 1..120),
        ) {
            let config = Config::<8>::try_new(GEO, 60).unwrap();
            let flash = TestFlash::new(GEO);
            let mut j = Journal::<TestFlash, 8, NoCounter>::unopened(flash, config, NoCounter);
            // id -> (off, len, copy, corrected)
            let mut model: BTreeMap<u64, (u32, u16, bool, bool)> = BTreeMap::new();
            for st in steps {
                match st {
                    Step::Put { id, off, len, copy, corrected } => {
                        let id = base + id * 1000;
                        let flags = if copy { F_COPY } else { 0 };
                        let e = Entry { id, off, crc: 0, len, fix: 0, flags };
                        let full = model.len() == 8 && !model.contains_key(&id);
                        match j.put_entry(&e, corrected) {
                            Ok(()) => {
                                prop_assert!(!full, "a put into a full index succeeded");
                                model.insert(id, (off, len, copy, corrected));
                            }
                            Err(PutError::Full) => {
                                prop_assert!(full, "Full with {} entries", model.len())
                            }
                            Err(PutError::Span) => {
                                prop_assert!(false, "ids 64 000 apart refused")
                            }
                        }
                    }
                    Step::Remove { pick } if !model.is_empty() => {
                        let i = pick % model.len();
                        let id = *model.keys().nth(i).unwrap();
                        prop_assert_eq!(j.find(id), Ok(i));
                        j.remove_at(i);
                        model.remove(&id);
                    }
                    Step::Moved { pick, off } if !model.is_empty() => {
                        let i = pick % model.len();
                        let id = *model.keys().nth(i).unwrap();
                        j.moved(i, off);
                        let m = model.get_mut(&id).unwrap();
                        *m = (off, m.1, true, false);
                    }
                    _ => {}
                }
                prop_assert_eq!(j.entries.len(), model.len());
                for (i, (s, (id, want))) in j.entries.iter().zip(&model).enumerate() {
                    prop_assert_eq!(j.slot_id(*s), *id, "id at {}", i);
                    prop_assert_eq!(j.find(*id), Ok(i));
                    let got = (s.off(), s.len(), s.copy(), s.corrected());
                    prop_assert_eq!(got, *want, "entry {}", id);
                }
            }
        }
    }

    /// I7: removing or moving an index that holds no entry is a bug the journal
    /// refuses loudly, never a silent change of another entry.
    #[test]
    #[should_panic(expected = "no pending entry at index")]
    fn i7_a_missing_entry_panics() {
        let config = Config::<8>::try_new(GEO, 60).unwrap();
        let mut j =
            Journal::<TestFlash, 8, NoCounter>::unopened(TestFlash::new(GEO), config, NoCounter);
        let e = Entry {
            id: 3,
            off: 64,
            crc: 0,
            len: 10,
            fix: 0,
            flags: 0,
        };
        assert!(j.put_entry(&e, false).is_ok());
        j.remove_at(1);
    }
}
}
