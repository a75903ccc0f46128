//! I1–I4 and I10 through [`PagedWrites`] under power cuts, on a driver that
//! programs the way embassy-rp's QSPI flash driver does on the RP2040: every
//! write reaches it as whole 256 B pages padded with `0xFF`, and a page program
//! only clears bits (a `1` in the data leaves the cell as it is), so the padding
//! around a record changes nothing next to it.
//!
//! The driver counts its own operations (each page written, each sector erased)
//! and fails the one a cut lands on: a torn page program clears a random subset
//! of the bits it was to clear, in that page only (the pages before it in the
//! same journal program are written, the ones after it are not); a torn erase
//! leaves random bytes or an erased prefix. After the cut, power comes back: the
//! journal reopens and must give back every push that returned (I1), none of the
//! acks that returned (I2), byte for byte (I4), and never reuse an id (I3). Cuts
//! come in bursts (brown-outs) as in `brownout.rs`: 4 times in 10 the next one
//! lands within the first 1..=6 operations after the restart. Each run ends in
//! stable power, where the journal must fill to `N` and empty again (I10).
//!
//! The RP2040 firmware's layout: 4 KiB sectors, byte writes, ack records; here
//! 8 sectors and `N` = 16 events of up to `MAX_ENCODED_LEN` bytes, so records
//! span pages and sectors retire often. `PAGED_CUTS` sets the cuts per run
//! (default 3000), over 4 seeds.

mod support;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use monitor_events::journal::{Config, Journal};
use monitor_events::{Geometry, MAX_ENCODED_LEN};
use monitor_events_flash::sim::panic_text;
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::{NorFlashMedium, PagedWrites};
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::{check, env_u64, quiet_panics_containing, Bursts, Counts, InFlight, Model};

const SECTOR: usize = 4096;
const SECTORS: usize = 8;
const PAGE: usize = 256;
const N: usize = 16;

/// The driver's only error: the operation a power cut stopped.
#[derive(Debug)]
struct Cut;

impl NorFlashError for Cut {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// NOR flash that programs by clearing bits, with a power cut armed after a
/// number of its operations.
struct CutNor {
    data: Vec<u8>,
    /// Operations (page programs, sector erases) before the cut; `None`: stable.
    cut_in: Option<u64>,
    rng: Pcg32,
    /// Set by the cut; cleared when power comes back.
    cut: bool,
    /// Page programs and erases done.
    ops: u64,
}

impl CutNor {
    fn new(seed: u64) -> Self {
        CutNor {
            data: vec![0xFF; SECTOR * SECTORS],
            cut_in: None,
            rng: Pcg32::new(seed),
            cut: false,
            ops: 0,
        }
    }

    /// Whether this operation is the one the cut lands on.
    fn strikes(&mut self) -> bool {
        assert!(!self.cut, "an operation after the cut");
        self.ops += 1;
        match self.cut_in {
            Some(0) => {
                self.cut_in = None;
                self.cut = true;
                true
            }
            Some(k) => {
                self.cut_in = Some(k - 1);
                false
            }
            None => false,
        }
    }
}

impl ErrorType for CutNor {
    type Error = Cut;
}

impl ReadNorFlash for CutNor {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Cut> {
        let at = offset as usize;
        bytes.copy_from_slice(&self.data[at..at + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for CutNor {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Cut> {
        for sector in (from as usize..to as usize).step_by(SECTOR) {
            if self.strikes() {
                let torn = &mut self.data[sector..sector + SECTOR];
                if self.rng.below(2) == 0 {
                    for b in torn.iter_mut() {
                        *b = self.rng.next_u32() as u8;
                    }
                } else {
                    let erased = self.rng.below(SECTOR as u32 + 1) as usize;
                    torn[..erased].fill(0xFF);
                }
                return Err(Cut);
            }
            self.data[sector..sector + SECTOR].fill(0xFF);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Cut> {
        // What `PagedWrites` promises the driver.
        assert!(
            offset as usize % PAGE == 0 && bytes.len() == PAGE,
            "a write of {} B at {offset} reached the driver",
            bytes.len()
        );
        let at = offset as usize;
        if self.strikes() {
            for (cell, &b) in self.data[at..at + PAGE].iter_mut().zip(bytes) {
                // A random subset of the 1 -> 0 transitions of this page.
                let clear = *cell & !b & self.rng.next_u32() as u8;
                *cell &= !clear;
            }
            return Err(Cut);
        }
        for (cell, &b) in self.data[at..at + PAGE].iter_mut().zip(bytes) {
            *cell &= b;
        }
        Ok(())
    }
}

type Medium<'a> = NorFlashMedium<PagedWrites<&'a mut CutNor, PAGE>>;

/// The RP2040 firmware's layout on this region: byte writes, ack records.
const CONFIG: Config<N> = Config::new(
    Geometry {
        sector_size: SECTOR as u32,
        sector_count: SECTORS as u32,
        write_size: 1,
        multiwrite: false,
    },
    MAX_ENCODED_LEN,
);

fn medium(flash: &mut CutNor) -> Medium<'_> {
    NorFlashMedium::new(PagedWrites::new(flash), 0, SECTORS as u32).unwrap()
}

/// Random pushes (any length up to the largest event), acks in any order and
/// reopens until the armed cut fires, which ends the closure with a panic.
fn operate(flash: &mut CutNor, model: &mut Model, rng: &mut Pcg32) {
    let mut j = Journal::open(medium(flash), CONFIG).expect("open");
    loop {
        let r = rng.below(100);
        if r < 55 && j.pending_count() < N {
            let len = 1 + rng.below(MAX_ENCODED_LEN as u32) as usize;
            let body: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            model.in_flight = Some(InFlight::Push(body.clone()));
            let id = j.push(&body).expect("a push below N");
            model.pushed(id, body);
        } else if r < 95 && j.pending_count() > 0 {
            let ids: Vec<_> = j.pending().map(|(id, _)| id).collect();
            let id = ids[rng.below(ids.len() as u32) as usize];
            model.in_flight = Some(InFlight::Ack(id.0));
            j.ack(id).expect("an ack of a pending id");
            model.acked(id);
        } else {
            j = Journal::open(j.into_medium(), CONFIG).expect("reopen");
        }
    }
}

/// One seed's run: `cuts` cuts in bursts, each followed by a reopen checked
/// against the model, then stable power.
fn run(seed: u64, cuts: u64) -> (Counts, u64) {
    let mut flash = CutNor::new(seed);
    let mut rng = Pcg32::new(seed ^ 0x5EED);
    let mut model = Model::default();
    let mut totals = Counts::default();
    let mut bursts = Bursts::default();
    for _ in 0..cuts {
        let k = bursts.next(&mut rng, 200);
        flash.cut_in = Some(k);
        let result = catch_unwind(AssertUnwindSafe(|| {
            operate(&mut flash, &mut model, &mut rng)
        }));
        let message = panic_text(&*result.expect_err("operate ends in a panic"));
        assert!(
            flash.cut,
            "seed {seed}: a panic that is not the cut: {message}"
        );
        flash.cut = false;
        // Power is back: the journal must open and hold what it promised.
        let mut j = Journal::open(medium(&mut flash), CONFIG).expect("open after a cut");
        let (c, got) = check(&model, &mut j, &format!("seed {seed}"));
        totals.add(c);
        model.adopt(&got);
    }
    // Stable power: fill to N with fresh ids, then ack everything (I10).
    let mut j = Journal::open(medium(&mut flash), CONFIG).expect("open in stable power");
    while j.pending_count() < N {
        let id = j
            .push(&[0xA5; MAX_ENCODED_LEN])
            .expect("I10: a push after the cuts");
        model.pushed(id, vec![0xA5; MAX_ENCODED_LEN]);
    }
    let ids: Vec<_> = j.pending().map(|(id, _)| id).collect();
    for id in ids {
        j.ack(id).expect("I10: an ack after the cuts");
        model.acked(id);
    }
    let (c, _) = check(&model, &mut j, &format!("seed {seed}, stable power"));
    totals.add(c);
    drop(j);
    (totals, flash.ops)
}

#[test]
fn i1_i4_i10_power_cuts_through_paged_writes() {
    // The driver's error, which the medium reduces to `Flash(Other)`.
    quiet_panics_containing("Flash(Other)");
    let cuts = env_u64("PAGED_CUTS", 3000);
    let mut totals = Counts::default();
    let mut pages = 0;
    for seed in 1..=4 {
        let (c, p) = run(seed, cuts);
        totals.add(c);
        pages += p;
    }
    println!(
        "power cuts through PagedWrites: {} checked over {pages} driver operations, lost {}, resurrected {}, reused ids {}, wrong data {}",
        totals.checked, totals.lost, totals.resurrected, totals.reused, totals.wrong
    );
    assert!(totals.clean(), "{totals:?}");
    assert_eq!(totals.checked, 4 * (cuts + 1));
}
