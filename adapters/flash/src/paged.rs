//! [`PagedWrites`]: writes handed to a NOR flash driver as whole, aligned pages.

use embedded_storage::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};

/// A [`NorFlash`] whose writes reach the wrapped driver `F` as whole pages of
/// `PAGE` bytes, aligned to `PAGE`, padded with `0xFF`.
///
/// Some drivers accept writes of any length at any offset and program whole
/// pages underneath: they copy the data into a page buffer filled with `0xFF`
/// (bytes programmed to `0xFF` keep what they hold) and program that page, once
/// per page the write touches. embassy-rp's QSPI flash driver is one (256 B
/// pages). Its general path also carries slice-index panics, whose messages link
/// `core::fmt`'s integer code into a firmware that otherwise has none: 788 B
/// of the RP2040 demo firmware's flash (`boards/size.py rp2040`).
///
/// The page is on the stack during a write, where the driver may keep a page
/// buffer of its own too: on the RP2040 the journal's program call takes 240 B
/// more stack with it.
///
/// `PagedWrites` does the padding itself, with no panic path, and hands the
/// driver only `PAGE`-aligned writes of exactly `PAGE` bytes from RAM, which
/// take the driver's simplest path. The driver then programs exactly the pages
/// it would have programmed for the same write, with the same bytes; reads and
/// erases pass through. Use it only over a driver that pads like this (the
/// flash must keep a byte programmed to `0xFF` unchanged, as NOR does), with
/// `PAGE` its page size.
///
/// ```
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// use monitor_events_flash::{PagedWrites, RamFlash};
///
/// let mut flash = PagedWrites::<_, 256>::new(RamFlash::<4096, 4, 1>::new());
/// flash.write(300, b"an event").unwrap();
/// let mut back = [0u8; 8];
/// flash.read(300, &mut back).unwrap();
/// assert_eq!(&back, b"an event");
/// ```
pub struct PagedWrites<F, const PAGE: usize> {
    flash: F,
}

impl<F, const PAGE: usize> PagedWrites<F, PAGE> {
    /// Checked at compile time: a page is a power of two.
    const PAGE_OK: () = assert!(
        PAGE.is_power_of_two(),
        "PagedWrites: PAGE must be a power of two"
    );

    /// Wraps `flash`, whose pages are `PAGE` bytes.
    pub fn new(flash: F) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::PAGE_OK;
        Self { flash }
    }

    /// The wrapped driver.
    pub fn inner(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Unwraps the driver.
    pub fn into_inner(self) -> F {
        self.flash
    }
}

/// The driver's errors, unchanged.
impl<F: ErrorType, const PAGE: usize> ErrorType for PagedWrites<F, PAGE> {
    type Error = F::Error;
}

impl<F: ReadNorFlash, const PAGE: usize> ReadNorFlash for PagedWrites<F, PAGE> {
    const READ_SIZE: usize = F::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.flash.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<F: NorFlash, const PAGE: usize> NorFlash for PagedWrites<F, PAGE> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.flash.erase(from, to)
    }

    /// Writes `bytes` at `offset` one page at a time: each page the write
    /// touches is written whole, `0xFF` around the part of `bytes` it holds.
    /// A write that does not fit in the driver's `capacity()` writes nothing:
    /// the driver is handed one erased page past its capacity instead, which it
    /// refuses with its own error (were it to accept, `0xFF` changes no byte).
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let mut pages = match Pages::<PAGE>::new(offset, bytes, self.flash.capacity()) {
            Ok(pages) => pages,
            Err(past_end) => return self.flash.write(past_end, &[0xFF; PAGE]),
        };
        while let Some((start, page)) = pages.next_page() {
            self.flash.write(start, &page)?;
        }
        Ok(())
    }
}

/// The pages a write touches, each as the driver would pad it.
struct Pages<'a, const PAGE: usize> {
    /// Where the next page starts on the flash.
    start: u32,
    /// Where the rest of the data starts in that page (0 after the first).
    at: usize,
    rest: &'a [u8],
}

impl<'a, const PAGE: usize> Pages<'a, PAGE> {
    /// The pages of a write of `bytes` at `offset`, or, if it does not fit in
    /// `capacity` bytes, the first page boundary at or past `capacity` (the
    /// last page of the `u32` range if there is none).
    fn new(offset: u32, bytes: &'a [u8], capacity: usize) -> Result<Self, u32> {
        let mask = PAGE as u64 - 1;
        if offset as u64 + bytes.len() as u64 > capacity as u64 {
            let past_end = (capacity as u64 + mask) & !mask;
            return Err(u32::try_from(past_end).unwrap_or(!(mask as u32)));
        }
        let start = offset & !(mask as u32);
        Ok(Self {
            start,
            at: (offset - start) as usize,
            rest: bytes,
        })
    }

    /// The next page's offset and content, `None` once the data is written.
    fn next_page(&mut self) -> Option<(u32, [u8; PAGE])> {
        if self.rest.is_empty() {
            return None;
        }
        let mut page = [0xFF_u8; PAGE];
        // Copied by iterators: no index can fail, no panic path.
        let mut taken = 0;
        for (to, from) in page.iter_mut().skip(self.at).zip(self.rest) {
            *to = *from;
            taken += 1;
        }
        let start = self.start;
        self.rest = self.rest.get(taken..).unwrap_or_default();
        self.start = start.wrapping_add(PAGE as u32);
        self.at = 0;
        Some((start, page))
    }
}

impl<F: MultiwriteNorFlash, const PAGE: usize> MultiwriteNorFlash for PagedWrites<F, PAGE> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NorFlashMedium, RamFlash};
    use embedded_storage::nor_flash::NorFlashErrorKind;
    use monitor_events::journal::{Config, Journal};
    use monitor_events::{Medium, MAX_ENCODED_LEN};
    use proptest::prelude::*;

    /// A byte-writable flash of 4 x 1 KiB that records every write it gets
    /// and programs it as NOR does (AND into the cells).
    struct Recorder {
        cells: [u8; 4096],
        writes: Vec<(u32, usize)>,
    }

    impl Recorder {
        fn new() -> Self {
            Self {
                cells: [0xFF; 4096],
                writes: Vec::new(),
            }
        }
    }

    impl ErrorType for Recorder {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for Recorder {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            let o = offset as usize;
            bytes.copy_from_slice(&self.cells[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.cells.len()
        }
    }

    impl NorFlash for Recorder {
        const WRITE_SIZE: usize = 1;
        const ERASE_SIZE: usize = 1024;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
            self.cells[from as usize..to as usize].fill(0xFF);
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
            let o = offset as usize;
            let Some(cells) = self.cells.get_mut(o..o + bytes.len()) else {
                return Err(NorFlashErrorKind::OutOfBounds);
            };
            for (c, b) in cells.iter_mut().zip(bytes) {
                *c &= b;
            }
            self.writes.push((offset, bytes.len()));
            Ok(())
        }
    }

    /// The pages a write of `len` bytes at `offset` touches, as the driver
    /// pads them: (start, PAGE) each.
    fn pages(offset: u32, len: usize, page: u32) -> Vec<(u32, usize)> {
        if len == 0 {
            return Vec::new();
        }
        let first = offset / page;
        let last = (offset + len as u32 - 1) / page;
        (first..=last).map(|p| (p * page, page as usize)).collect()
    }

    proptest! {
        /// I1: any sequence of writes through `PagedWrites` leaves exactly the
        /// bytes that the same writes leave when given to the driver directly,
        /// and the driver only ever sees whole aligned pages: those the write
        /// touches, each once, in order.
        #[test]
        fn i1_paged_writes_leave_the_same_bytes_through_whole_pages(
            writes in proptest::collection::vec(
                (0u32..4096, proptest::collection::vec(any::<u8>(), 0..700)), 1..12),
        ) {
            let mut direct = Recorder::new();
            let mut paged = PagedWrites::<_, 256>::new(Recorder::new());
            for (offset, data) in &writes {
                let len = data.len().min(4096 - *offset as usize);
                let data = &data[..len];
                direct.write(*offset, data).unwrap();
                let before = paged.inner().writes.len();
                paged.write(*offset, data).unwrap();
                let seen = paged.inner().writes[before..].to_vec();
                prop_assert_eq!(seen, pages(*offset, len, 256));
            }
            prop_assert_eq!(&direct.cells[..], &paged.inner().cells[..]);
        }
    }

    /// A journal operation of the end-to-end comparison.
    #[derive(Clone, Debug)]
    enum Op {
        Push(usize),
        /// Ack the pending event at this position (modulo the pending count).
        Ack(usize),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..=MAX_ENCODED_LEN).prop_map(Op::Push),
            3 => any::<usize>().prop_map(Op::Ack),
            1 => Just(Op::Reopen),
        ]
    }

    type Ram = RamFlash<512, 8, 1>;

    /// Runs `ops` on a journal over `flash` (byte writes, with or without
    /// multiwrite); returns its image, its next id and its pending events.
    fn run<F: NorFlash + MultiwriteNorFlash>(
        flash: F,
        multiwrite: bool,
        ops: &[Op],
        image: impl Fn(F) -> Vec<u8>,
    ) -> (Vec<u8>, u64, Vec<u64>) {
        let medium = if multiwrite {
            NorFlashMedium::new_multiwrite(flash, 0, 8)
        } else {
            NorFlashMedium::new(flash, 0, 8)
        }
        .unwrap();
        let config = Config::<4>::try_new(medium.geometry(), MAX_ENCODED_LEN).unwrap();
        let mut j = Journal::open(medium, config).unwrap();
        for (k, op) in ops.iter().enumerate() {
            match op {
                Op::Push(len) => {
                    let body = vec![k as u8; *len];
                    // Full is an answer like any other: both sides must agree.
                    let _ = j.push(&body);
                }
                Op::Ack(i) => {
                    let ids: Vec<_> = j.pending().map(|(id, _)| id).collect();
                    if !ids.is_empty() {
                        j.ack(ids[i % ids.len()]).unwrap();
                    }
                }
                Op::Reopen => {
                    let medium = j.into_medium();
                    j = Journal::open(medium, config).unwrap();
                }
            }
        }
        let next = j.next_id().0;
        let pending = j.pending().map(|(id, _)| id.0).collect();
        (image(j.into_medium().into_inner()), next, pending)
    }

    proptest! {
        /// I1, I2: the journal over `PagedWrites` leaves the same image, the
        /// same next id and the same pending events as over the driver itself,
        /// for random pushes, acks (records or in place) and reopens on
        /// a 4 KiB region of byte-writable flash (most cases push more than the
        /// region holds, so sectors are reused).
        #[test]
        fn i1_i2_journal_over_paged_writes_leaves_the_same_image(
            ops in proptest::collection::vec(op(), 1..300),
            multiwrite in any::<bool>(),
        ) {
            let direct = run(Ram::new(), multiwrite, &ops, |f| f.as_bytes().to_vec());
            let paged = run(
                PagedWrites::<_, 256>::new(Ram::new()),
                multiwrite,
                &ops,
                |f| f.into_inner().as_bytes().to_vec(),
            );
            prop_assert_eq!(direct, paged);
        }
    }

    #[test]
    fn i1_a_write_within_one_page_programs_that_page_only() {
        let mut flash = PagedWrites::<_, 256>::new(Recorder::new());
        flash.write(0x1F0, &[0; 16]).unwrap();
        assert_eq!(flash.inner().writes, [(0x100, 256)]);
        // The rest of the page was programmed with 0xFF: unchanged.
        assert!(flash.inner().cells[0x100..0x1F0].iter().all(|&b| b == 0xFF));
        assert!(flash.inner().cells[0x1F0..0x200].iter().all(|&b| b == 0));
        flash.write(0x300, &[]).unwrap();
        assert_eq!(
            flash.inner().writes.len(),
            1,
            "an empty write programs nothing"
        );
    }

    #[test]
    fn i9_a_write_past_the_end_is_refused_whole_and_writes_nothing() {
        let mut flash = PagedWrites::<_, 256>::new(Recorder::new());
        // Ends past the 4 KiB: refused by the driver, nothing written.
        assert_eq!(
            flash.write(0xF80, &[0; 0x100]),
            Err(NorFlashErrorKind::OutOfBounds)
        );
        assert_eq!(
            flash.write(u32::MAX, &[0; 2]),
            Err(NorFlashErrorKind::OutOfBounds)
        );
        assert_eq!(
            flash.write(0x1000, &[0]),
            Err(NorFlashErrorKind::OutOfBounds)
        );
        assert!(flash.inner().writes.is_empty());
        assert!(flash.inner().cells.iter().all(|&b| b == 0xFF));
        // A write that ends exactly at the end fits.
        flash.write(0xF80, &[0; 0x80]).unwrap();
        assert_eq!(flash.inner().writes, [(0xF00, 256)]);
    }

    #[test]
    fn i1_reads_erases_and_sizes_pass_through() {
        let mut flash = PagedWrites::<_, 256>::new(RamFlash::<4096, 4, 1>::new());
        assert_eq!(flash.capacity(), 4 * 4096);
        assert_eq!(
            <PagedWrites<RamFlash<4096, 4, 1>, 256> as NorFlash>::ERASE_SIZE,
            4096
        );
        flash.write(4090, b"across a page").unwrap();
        let mut back = [0u8; 13];
        flash.read(4090, &mut back).unwrap();
        assert_eq!(&back, b"across a page");
        flash.erase(0, 8192).unwrap();
        flash.read(4090, &mut back).unwrap();
        assert_eq!(back, [0xFF; 13]);
        let ram = flash.into_inner();
        assert_eq!(ram.capacity(), 4 * 4096);
    }
}
