//! Tests of the journal against a plain model, on a RAM medium with NOR rules.

use super::*;
use crate::journal::Auth;
use crate::medium::Geometry;
use std::collections::BTreeMap;
use std::vec::Vec as StdVec;

/// A RAM medium that enforces NOR rules and can cut power at an operation.
#[derive(Clone)]
pub(crate) struct TestFlash {
    pub geo: Geometry,
    pub data: StdVec<u8>,
    writes: StdVec<u8>,
    pub ops: u64,
    pub cut_at: Option<u64>,
    pub torn_seed: u64,
    pub dead: bool,
    /// What `writes_in_order` answers (a file: false).
    pub in_order: bool,
}

#[derive(Debug)]
pub(crate) enum TestError {
    PowerCut,
    Rule(#[allow(dead_code)] &'static str),
}

impl TestFlash {
    pub fn new(geo: Geometry) -> Self {
        let n = geo.size() as usize;
        TestFlash {
            geo,
            data: std::vec![0xFF; n],
            writes: std::vec![0; n / geo.write_size as usize],
            ops: 0,
            cut_at: None,
            torn_seed: 1,
            dead: false,
            in_order: true,
        }
    }

    fn rand(&mut self) -> u64 {
        self.torn_seed ^= self.torn_seed << 13;
        self.torn_seed ^= self.torn_seed >> 7;
        self.torn_seed ^= self.torn_seed << 17;
        self.torn_seed
    }

    /// Restarts after a cut: the image stays, the write counts are unknown so
    /// they are reset conservatively to "written" for non-erased units.
    pub fn power_on(&mut self) {
        self.dead = false;
        self.cut_at = None;
    }

    fn tick(&mut self) -> Result<bool, TestError> {
        if self.dead {
            return Err(TestError::PowerCut);
        }
        let now = self.ops;
        self.ops += 1;
        Ok(self.cut_at == Some(now))
    }
}

impl Medium for TestFlash {
    type Error = TestError;
    fn error_name(error: &TestError) -> &'static str {
        match error {
            TestError::PowerCut => "PowerCut",
            TestError::Rule(rule) => rule,
        }
    }
    fn geometry(&self) -> Geometry {
        self.geo
    }
    fn writes_in_order(&self) -> bool {
        self.in_order
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), TestError> {
        if self.dead {
            return Err(TestError::PowerCut);
        }
        let o = offset as usize;
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), TestError> {
        let ws = self.geo.write_size as usize;
        let o = offset as usize;
        if o % ws != 0 || data.len() % ws != 0 || o + data.len() > self.data.len() {
            return Err(TestError::Rule("alignment or bounds"));
        }
        let cut = self.tick()?;
        let max = if self.geo.multiwrite { 2 } else { 1 };
        for u in o / ws..(o + data.len()) / ws {
            if self.writes[u] >= max {
                return Err(TestError::Rule("too many writes to a unit"));
            }
        }
        for (i, &b) in data.iter().enumerate() {
            if b & !self.data[o + i] != 0 {
                return Err(TestError::Rule("program sets a bit"));
            }
        }
        for u in o / ws..(o + data.len()) / ws {
            self.writes[u] += 1;
        }
        for (i, &b) in data.iter().enumerate() {
            let mut v = b;
            if cut {
                // Keep a random subset of the intended 1 -> 0 transitions.
                let keep = self.rand() as u8;
                v = self.data[o + i] & (b | !keep);
            }
            self.data[o + i] &= v;
        }
        if cut {
            self.dead = true;
            return Err(TestError::PowerCut);
        }
        Ok(())
    }
    fn erase(&mut self, sector: u32) -> Result<(), TestError> {
        let cut = self.tick()?;
        let ss = self.geo.sector_size as usize;
        let o = sector as usize * ss;
        let ws = self.geo.write_size as usize;
        if cut {
            for i in 0..ss {
                self.data[o + i] = self.rand() as u8;
            }
            self.dead = true;
            return Err(TestError::PowerCut);
        }
        self.data[o..o + ss].fill(0xFF);
        self.writes[o / ws..(o + ss) / ws].fill(0);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), TestError> {
        if self.dead {
            return Err(TestError::PowerCut);
        }
        Ok(())
    }
}

/// Recomputes write counts from the image after a power cut (units that are not
/// erased count as written once; a cut unit may have been written more).
fn reset_counts(f: &mut TestFlash) {
    let ws = f.geo.write_size as usize;
    for u in 0..f.writes.len() {
        let erased = f.data[u * ws..(u + 1) * ws].iter().all(|&b| b == 0xFF);
        f.writes[u] = if erased { 0 } else { 1 };
    }
}

/// Silences the panic messages of simulated power cuts (and only those).
pub(crate) fn quiet_power_cuts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<std::string::String>()
                .map(|s| s.as_str())
                .unwrap_or("");
            if !msg.contains("PowerCut") {
                default(info);
            }
        }));
    });
}

pub(crate) const GEO: Geometry = Geometry {
    sector_size: 1024,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};

/// The journal modes under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In-place acks on multiwrite flash.
    InPlace,
    /// Ack records on flash with one program per unit.
    Record,
    /// Authenticated records (acks as records) on flash with one program per unit.
    Auth,
}

/// Every mode this build has: [`Mode::Auth`] needs the feature `auth`.
pub(crate) const MODES: &[Mode] = &[
    Mode::InPlace,
    Mode::Record,
    #[cfg(feature = "auth")]
    Mode::Auth,
];

#[cfg(feature = "auth")]
pub(crate) const KEY: [u8; 32] = [0x5A; 32];
#[cfg(feature = "auth")]
pub(crate) const REGION: [u8; 16] = *b"test-region-0001";

/// `c` in `mode` (the geometry's `multiwrite` is the caller's).
pub(crate) fn in_mode<const N: usize>(c: Config<N>, mode: Mode) -> Config<N> {
    match mode {
        Mode::InPlace => c.with_ack_mode(AckMode::InPlace).unwrap(),
        Mode::Record => c.with_ack_mode(AckMode::Record).unwrap(),
        #[cfg(feature = "auth")]
        Mode::Auth => c.with_auth(Auth::new(KEY, REGION)).unwrap(),
        // `MODES` leaves it out of this build.
        #[cfg(not(feature = "auth"))]
        Mode::Auth => unreachable!("Mode::Auth needs the feature `auth`"),
    }
}

pub(crate) fn cfg(mode: Mode) -> Config<8> {
    let geo = Geometry {
        multiwrite: mode == Mode::InPlace,
        ..GEO
    };
    in_mode(Config::<8>::try_new(geo, 60).unwrap(), mode)
}

fn payload(id_hint: u64, len: usize) -> StdVec<u8> {
    (0..len)
        .map(|i| (id_hint as usize * 31 + i * 7) as u8)
        .collect()
}

pub(crate) fn pending_of(j: &mut Journal<&mut TestFlash, 8>) -> BTreeMap<u64, StdVec<u8>> {
    let ids: StdVec<_> = j.pending().map(|(id, _)| id).collect();
    ids.into_iter()
        .map(|id| {
            let mut b = [0u8; 64];
            let n = j.read(id, &mut b).unwrap();
            (id.0, b[..n].to_vec())
        })
        .collect()
}

/// A deterministic workload that fills the ring several times over.
fn workload(mode: Mode, steps: u64, flash: &mut TestFlash, model: &mut BTreeMap<u64, StdVec<u8>>) {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut j = Journal::open(&mut *flash, cfg(mode)).unwrap();
    let mut last_id = None;
    for step in 0..steps {
        if model.len() == 8 || (!model.is_empty() && next(3) == 0) {
            let k = if next(4) == 0 {
                next(model.len() as u64) as usize
            } else {
                0
            };
            let id = *model.keys().nth(k).unwrap();
            assert_eq!(j.ack(EventId(id)), Ok(AckOutcome::Acked));
            model.remove(&id);
        } else {
            let len = [0usize, 4, 13, 48, 60][next(5) as usize];
            let body = payload(step, len);
            let id = j.push(&body).unwrap();
            assert!(
                last_id.is_none_or(|l: EventId| id > l),
                "I3: ids strictly increase"
            );
            last_id = Some(id);
            model.insert(id.0, body);
        }
        if step % 97 == 0 {
            drop(j);
            j = Journal::open(&mut *flash, cfg(mode)).unwrap();
            assert_eq!(
                pending_of(&mut j),
                *model,
                "I4: replay after reopen at step {step}"
            );
            assert!(
                last_id.is_none_or(|l| j.next_id() > l),
                "I3 across restarts"
            );
        }
    }
}

/// I1, I2, I3, I4: a long workload with reopens, in both ack modes, matches the model.
#[test]
fn i1_i4_model_with_reopens_both_modes() {
    for &mode in MODES {
        let mut flash = TestFlash::new(Geometry {
            multiwrite: mode == Mode::InPlace,
            ..GEO
        });
        let mut model = BTreeMap::new();
        workload(mode, 4000, &mut flash, &mut model);
        let mut j = Journal::open(&mut flash, cfg(mode)).unwrap();
        assert_eq!(pending_of(&mut j), model);
    }
}

/// I3: after every event was acked and the ring turned over, ids continue.
#[test]
fn i3_ids_continue_after_everything_acked_and_erased() {
    let mut flash = TestFlash::new(GEO);
    let mut last = EventId(0);
    for round in 0..3 {
        let mut j = Journal::open(&mut flash, cfg(Mode::InPlace)).unwrap();
        for _ in 0..200 {
            let id = j.push(&[7u8; 60]).unwrap();
            assert!(round == 0 && id == EventId(0) || id > last, "I3");
            last = id;
            j.ack(id).unwrap();
        }
        assert_eq!(j.pending_count(), 0);
    }
    let j = Journal::open(&mut flash, cfg(Mode::InPlace)).unwrap();
    assert_eq!(j.next_id(), last.next());
}

/// I6: a full journal says Full and changes nothing; bad sizes are refused.
#[test]
fn i6_full_and_too_large_change_nothing() {
    let mut flash = TestFlash::new(GEO);
    let mut j = Journal::open(&mut flash, cfg(Mode::InPlace)).unwrap();
    for i in 0..8 {
        j.push(&[i; 10]).unwrap();
    }
    let before = j.status();
    assert_eq!(j.push(&[1; 10]), Err(AppendError::Full));
    assert_eq!(
        j.push(&[1; 61]),
        Err(AppendError::TooLarge { len: 61, max: 60 })
    );
    assert_eq!(j.status(), before);
    assert_eq!(j.ack(EventId(99)), Err(UnknownId { id: EventId(99) }));
    assert_eq!(j.ack(EventId(0)), Ok(AckOutcome::Acked));
    assert_eq!(j.ack(EventId(0)), Ok(AckOutcome::AlreadyAcked));
    let mut small = [0u8; 4];
    assert_eq!(
        j.read(EventId(1), &mut small),
        Err(ReadError::BufferTooSmall { needed: 10 })
    );
    assert_eq!(j.read(EventId(0), &mut small), Err(ReadError::NotPending));
}

/// I1, I2, I3, I8: power cut at every medium operation of a workload (random torn
/// subsets, torn erases), reopen, and compare with what had returned.
#[test]
fn i1_i2_i8_power_cut_at_every_operation() {
    quiet_power_cuts();
    for &mode in MODES {
        let geo = Geometry {
            multiwrite: mode == Mode::InPlace,
            ..GEO
        };
        // Count the operations of the workload.
        let mut probe = TestFlash::new(geo);
        workload(mode, 400, &mut probe, &mut BTreeMap::new());
        let total = probe.ops;
        for k in 0..total {
            let mut flash = TestFlash::new(geo);
            flash.cut_at = Some(k);
            flash.torn_seed = k * 7919 + 1;
            let mut model = BTreeMap::new();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                workload(mode, 400, &mut flash, &mut model);
            }));
            assert!(r.is_err(), "cut {k} did not happen");
            flash.power_on();
            reset_counts(&mut flash);
            let mut j =
                Journal::open(&mut flash, cfg(mode)).unwrap_or_else(|e| panic!("I8: cut {k}: {e}"));
            let got = pending_of(&mut j);
            // The op in flight may or may not have happened: at most one id differs.
            let mut diff = 0;
            for (id, body) in &model {
                match got.get(id) {
                    Some(b) => assert_eq!(b, body, "I4: cut {k}: wrong data for {id}"),
                    None => diff += 1,
                }
            }
            for id in got.keys() {
                if !model.contains_key(id) {
                    diff += 1;
                }
            }
            assert!(
                diff <= 1,
                "I1/I2: cut {k} ({mode:?}): model {:?} got {:?}",
                model.keys(),
                got.keys()
            );
            // And the journal goes on working.
            if j.pending_count() == 8 {
                let oldest = j.pending().next().unwrap().0;
                j.ack(oldest).unwrap();
            }
            let id = j.push(&[1, 2, 3]).unwrap();
            assert!(
                model.keys().all(|&m| m < id.0),
                "I3: cut {k}: id {id} reused"
            );
        }
    }
}

/// `compact` (a firmware update that lowers `N`) with a cut at every operation
/// it makes, in every mode: after the workload, acked down to two events, the
/// medium is compacted under `N` = 8. Every cut must open with exactly the two
/// events (compaction changes no pending event); a compaction run to the end
/// after it must leave a region that `N` = 2 opens with them, while the same
/// region before the compaction, whose records show up to 8 pending at once,
/// is refused by `N` = 2 where it replays ack records. A blank journal's
/// compaction writes nothing.
#[test]
fn i1_i4_i10_compact_with_a_cut_at_every_operation() {
    quiet_power_cuts();
    for &mode in MODES {
        let geo = Geometry {
            multiwrite: mode == Mode::InPlace,
            ..GEO
        };
        let small =
            |c: Config<8>| in_mode(Config::<2>::try_new(c.geometry(), c.max_body()).unwrap(), mode);
        let mut blank = TestFlash::new(geo);
        Journal::open(&mut blank, cfg(mode)).unwrap().compact();
        assert_eq!(blank.ops, 0, "{mode:?}: a blank journal's compaction wrote");

        let mut base = TestFlash::new(geo);
        let mut model = BTreeMap::new();
        workload(mode, 300, &mut base, &mut model);
        let mut j = Journal::open(&mut base, cfg(mode)).unwrap();
        while j.pending_count() > 2 {
            let id = j.pending().nth(j.pending_count() / 2).unwrap().0;
            j.ack(id).unwrap();
            model.remove(&id.0);
        }
        drop(j);
        let before = Journal::open(&mut base.clone(), small(cfg(mode))).map(|_| ());
        if mode != Mode::InPlace {
            assert_eq!(
                before,
                Err(OpenError::TooManyPending { capacity: 2 }),
                "{mode:?}: the records show more than 2 pending at once"
            );
        }
        // The operations of a whole compaction.
        let mut probe = base.clone();
        let start = probe.ops;
        Journal::open(&mut probe, cfg(mode)).unwrap().compact();
        let total = probe.ops - start;
        assert!(total > 0, "{mode:?}: the compaction wrote nothing");
        for k in 0..=total {
            let mut flash = base.clone();
            flash.cut_at = Some(flash.ops + k);
            flash.torn_seed = k * 6151 + 3;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Journal::open(&mut flash, cfg(mode)).unwrap().compact();
            }));
            assert_eq!(r.is_err(), k < total, "{mode:?}: cut {k} of {total}");
            flash.power_on();
            reset_counts(&mut flash);
            let mut j = Journal::open(&mut flash, cfg(mode))
                .unwrap_or_else(|e| panic!("{mode:?}: cut {k}: {e}"));
            assert_eq!(pending_of(&mut j), model, "{mode:?}: cut {k}");
            j.compact();
            assert_eq!(pending_of(&mut j), model, "{mode:?}: cut {k}, compacted");
            drop(j);
            let mut j = Journal::open(&mut flash, small(cfg(mode)))
                .unwrap_or_else(|e| panic!("{mode:?}: cut {k}: N = 2 after compacting: {e}"));
            let got: BTreeMap<u64, usize> = j.pending().map(|(id, len)| (id.0, len)).collect();
            assert_eq!(
                got,
                model.iter().map(|(id, b)| (*id, b.len())).collect(),
                "{mode:?}: cut {k}: N = 2"
            );
            // And it goes on: a push under the smaller N.
            if j.pending_count() < 2 {
                let id = j.push(&[7; 9]).unwrap();
                assert!(model.keys().all(|&m| m < id.0), "I3: cut {k}");
            }
        }
    }
}

/// I8: every single bit flip of a committed journal gives an error or exactly
/// the right events, on a medium whose writes land in order (flash) and on one
/// whose unsynced writes may land out of order (a file), where a record that
/// fails its check with records behind it may be the end of a crash.
///
/// A release build flips every bit of the image (what `ci/test core` runs). A debug
/// build, where one open costs far more, flips one bit drawn from each block of 64:
/// the draw is seeded (`BIT_FLIP_SEED`, else the clock) and the seed is printed, so
/// successive runs cover different bits and a failure can be replayed.
#[test]
fn i8_every_bit_flip_detected_or_harmless() {
    const BLOCK: usize = 64;
    let sampled = cfg!(debug_assertions);
    let seed: u64 = std::env::var("BIT_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    if sampled {
        std::eprintln!(
            "I8 bit flips: debug build, one bit per {BLOCK}, BIT_FLIP_SEED={seed} (release: every bit)"
        );
    }
    for (mode, in_order) in MODES.iter().flat_map(|&m| [(m, true), (m, false)])
    {
        let geo = Geometry {
            multiwrite: mode == Mode::InPlace,
            ..GEO
        };
        let mut flash = TestFlash::new(geo);
        flash.in_order = in_order;
        let mut model = BTreeMap::new();
        workload(mode, 150, &mut flash, &mut model);
        let clean = flash.clone();
        let bits = geo.size() as usize * 8;
        let flips: StdVec<usize> = if sampled {
            (0..bits / BLOCK)
                .map(|block| {
                    // A multiplicative hash of (seed, block): the top 6 bits pick
                    // the bit within the block.
                    let h = (seed ^ block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    block * BLOCK + (h >> 58) as usize
                })
                .collect()
        } else {
            (0..bits).collect()
        };
        let (mut errors, mut same, mut corrected) = (0, 0, 0);
        for bit in flips {
            let mut f = clean.clone();
            f.data[bit / 8] ^= 1 << (bit % 8);
            let mut fixed = false;
            let opened = Journal::open_with(&mut f, cfg(mode), |seen| {
                fixed |= matches!(seen, Seen::Corrected { .. });
            });
            match opened {
                Err(_) => errors += 1,
                Ok(mut j) => {
                    assert_eq!(
                        pending_of(&mut j),
                        model,
                        "I8: {mode:?}, in order {in_order}: flip of bit {bit} changed the data (BIT_FLIP_SEED={seed})"
                    );
                    same += 1;
                    if fixed {
                        // The corrected record lives on: it is copied forward by
                        // the retirements of a longer workload, then read again.
                        corrected += 1;
                        drop(j);
                        let mut m = model.clone();
                        workload(mode, 150, &mut f, &mut m);
                        let mut j = Journal::open(&mut f, cfg(mode)).unwrap();
                        assert_eq!(
                            pending_of(&mut j),
                            m,
                            "I8: {mode:?}, in order {in_order}: after the flip of bit {bit}, a corrected record went wrong"
                        );
                    }
                }
            }
        }
        assert!(
            errors > 0 && same > 0,
            "{mode:?}, in order {in_order}: {errors} flips refused, {same} harmless (BIT_FLIP_SEED={seed})"
        );
        // Release builds flip every bit: some land in a correctable record.
        assert!(
            sampled || corrected > 0,
            "{mode:?}, in order {in_order}: no flip was corrected"
        );
        std::println!(
            "I8 {mode:?}, in order {in_order}: {errors} flips refused, {same} harmless, {corrected} corrected and carried through retirements"
        );
    }
}

/// The first record of a group commit reads one bit short of what was meant,
/// the one behind it intact. In order that is damage: no record is ever written
/// behind an unfinished one. Where unsynced writes may land out of order (a
/// file), a byte lands whole or not at all: if the bit's byte reads erased, it
/// may be a byte a crash kept from landing while the record behind it landed,
/// or rot; corrected, the record is what was written either way, and the one
/// behind it is kept (the batch may go either way, and if it returned, both
/// are owed). If the byte reads anything else, it was written and then rotted:
/// refused, as in order (a crash cannot leave it, and dropping the record behind
/// it would lose an event the batch promised).
#[test]
fn i8_i10_a_corrected_record_with_a_record_behind_it_by_medium_order() {
    for in_order in [true, false] {
        for erased in [true, false] {
            let mut flash = TestFlash::new(cfg(Mode::Record).geometry());
            flash.in_order = in_order;
            let mut j = Journal::<_, 8>::open(&mut flash, cfg(Mode::Record)).unwrap();
            let a = j.push(&payload(1, 40)).unwrap();
            let (b, c) = (payload(2, 40), payload(3, 40));
            let mut ids = [EventId(0); 2];
            j.push_batch(&[&b, &c], &mut ids).unwrap();
            drop(j);
            let at = flash
                .data
                .windows(b.len())
                .position(|w| w == &b[..])
                .expect("the first body of the batch");
            // A byte one 0 bit short of 0xFF, or one with more 0 bits.
            let k = b
                .iter()
                .position(|&x| (x.count_zeros() == 1) == erased && x != 0xFF)
                .expect("a byte of each kind in the payload");
            flash.data[at + k] |= 1 << b[k].trailing_ones();
            assert_eq!(flash.data[at + k] == 0xFF, erased);
            let mut corrected = false;
            let r = Journal::<_, 8>::open_with(&mut flash, cfg(Mode::Record), |seen| {
                corrected |= matches!(seen, Seen::Corrected { .. })
            });
            let what = std::format!("in order {in_order}, byte reads erased {erased}");
            if in_order || !erased {
                assert!(
                    matches!(
                        r,
                        Err(OpenError::Corrupted {
                            reason: Corruption::Record,
                            ..
                        })
                    ),
                    "{what}: {:?}",
                    r.map(|_| ())
                );
            } else {
                let mut j = r.unwrap_or_else(|e| std::panic!("{what}: {e}"));
                let got = pending_of(&mut j);
                let want = BTreeMap::from([
                    (a.0, payload(1, 40)),
                    (ids[0].0, b.clone()),
                    (ids[1].0, c.clone()),
                ]);
                assert_eq!(got, want, "{what}: the corrected record and the one behind it kept");
                assert!(corrected, "{what}: reported as corrected");
                assert!(j.status().sealed, "{what}: no record is written behind them");
            }
        }
    }
}

/// I7: a medium error panics with the operation and offset.
#[test]
fn i7_medium_error_panics_with_operation_and_offset() {
    let mut flash = TestFlash::new(GEO);
    flash.cut_at = Some(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut j = Journal::open(&mut flash, cfg(Mode::InPlace)).unwrap();
        let _ = j.push(&[1]);
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<std::string::String>().unwrap();
    // With `panic-static`, numbers print in hex and the medium's error by the
    // name `Medium::error_name` gives it (no `Debug` code is linked).
    let (sector, offset, error) = if cfg!(feature = "panic-static") {
        ("erase of sector 0x0", "offset 0x0", "failed: PowerCut")
    } else {
        ("erase of sector 0", "offset 0", "PowerCut")
    };
    assert!(
        msg.starts_with(&std::format!("monitor-events: {sector} at {offset} "))
            && msg.contains(error),
        "{msg}"
    );
}

/// I7, and the authenticated journal's promise: a pending record that changes on
/// the medium after `open` makes `read` panic naming it (`read` checks what it
/// hands out against the record's CRC, and its tag when authenticated). The
/// adversary changes one byte of each pending payload, records and the copies a
/// retirement made alike; authenticated, it also rewrites the CRC to match, as
/// anyone with access to the flash but not the key can, so that only the tag
/// catches it. Without a payload it changes the tag, or the CRC when plain.
/// Unchanged, the same reads give the bodies back.
#[test]
fn i7_read_of_a_record_changed_after_open_panics() {
    let bodies: [&[u8]; 3] = [&[], &[0x42; 60], b"an event"];
    for &mode in MODES {
        let mut flash = TestFlash::new(cfg(mode).geometry());
        let mut model = BTreeMap::new();
        {
            let mut j = Journal::open(&mut flash, cfg(mode)).unwrap();
            // The oldest event stays pending while the others come and go, so that
            // retirements copy it (and whatever else is pending) forward.
            for round in 0..300usize {
                let body = bodies[round % 3];
                let id = j.push(body).unwrap();
                model.insert(id.0, body.to_vec());
                if j.pending_count() == 8 {
                    let victim = j.pending_ids()[1 + round % 7];
                    j.ack(victim).unwrap();
                    model.remove(&victim.0);
                }
            }
        }
        let mut j = Journal::open(&mut flash, cfg(mode)).unwrap();
        let copies = (0..j.pending_count())
            .filter(|&i| j.entry(i).flags & F_COPY != 0)
            .count();
        assert!(copies > 0, "{mode:?}: no copy pending");
        assert!(model.values().any(|b| b.is_empty()), "an empty body pending");
        assert_eq!(pending_of(&mut j), model, "{mode:?}: unchanged, read gives the bodies");
        let tag_len = j.cfg.tag_len();
        for i in 0..j.pending_count() {
            for forge in [false, true] {
                if forge && mode != Mode::Auth {
                    continue;
                }
                let mut image = flash.clone();
                let mut j = Journal::open(&mut image, cfg(mode)).unwrap();
                let e = j.entry(i);
                let copy = e.flags & F_COPY != 0;
                let head = (e.off + RECORD_HEADER_LEN) as usize;
                let body = head + tag_len as usize + if copy { 8 } else { 0 };
                // A payload byte; without one, the tag's first byte, or the CRC's.
                let at = if e.len > 0 {
                    body + i % e.len as usize
                } else if tag_len > 0 {
                    head
                } else {
                    e.off as usize + 4
                };
                let data = &mut j.medium_mut().data;
                data[at] ^= 0x10;
                if forge {
                    let mut tag = [0u8; TAG_LEN as usize];
                    tag.copy_from_slice(&data[head..head + TAG_LEN as usize]);
                    let (seq, p) = j.locate(e.off);
                    let w = Word0::with_body(kind_of(&e), body_len_of(&e));
                    let mut d = RecordCrc::new(seq, p, w, &tag);
                    if copy {
                        d.update(&e.id.to_le_bytes());
                    }
                    let data = &mut j.medium_mut().data;
                    d.update(&data[body..body + e.len as usize]);
                    let crc = d.finish();
                    let at = e.off as usize + 4;
                    data[at..at + 4].copy_from_slice(&crc.to_le_bytes());
                }
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut b = [0u8; 64];
                    j.read(EventId(e.id), &mut b)
                }));
                let msg = r.expect_err("read of a changed record returned");
                let msg = msg.downcast_ref::<std::string::String>().unwrap();
                assert!(msg.contains("changed on the medium"), "{mode:?} {forge}: {msg}");
            }
        }
    }
}

/// I8: a foreign image is not a store; a newer version is refused; nothing is written.
#[test]
fn i8_foreign_and_newer_images_are_refused() {
    let mut flash = TestFlash::new(GEO);
    flash.data[1500] = 0x12;
    assert_eq!(
        Journal::open(&mut flash, cfg(Mode::InPlace)).err(),
        Some(OpenError::NotAStore)
    );
    let mut flash = TestFlash::new(GEO);
    {
        let mut j = Journal::open(&mut flash, cfg(Mode::InPlace)).unwrap();
        j.push(&[1; 5]).unwrap();
    }
    let mut h = [0u8; 24];
    h.copy_from_slice(&flash.data[..24]);
    h[2] = 9;
    let crc = crate::journal::format::CRC.checksum(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    flash.data[..24].copy_from_slice(&h);
    let before = flash.data.clone();
    assert_eq!(
        Journal::open(&mut flash, cfg(Mode::InPlace)).err(),
        Some(OpenError::UnsupportedFormat { version: 9 })
    );
    assert_eq!(flash.data, before);
}

/// The journal writes every record kind exactly as the format's layout says (the
/// golden records of `format` pin that layout byte for byte): events, copies and
/// retire records of a compaction, short ack records; plain and authenticated.
#[test]
fn records_on_the_medium_follow_the_layout() {
    use crate::journal::format::tests::build_record;
    use crate::journal::format::{Kind, Word0};
    let auths: &[Option<Auth>] = &[
        None,
        #[cfg(feature = "auth")]
        Some(Auth::new([3; 32], *b"layout test 16 B")),
    ];
    for &auth in auths {
        let g = Geometry {
            sector_size: 512,
            sector_count: 4,
            write_size: 8,
            multiwrite: false,
        };
        #[cfg_attr(not(feature = "auth"), allow(unused_mut))]
        let mut c = Config::<2>::try_new(g, 24).unwrap();
        #[cfg(feature = "auth")]
        if let Some(a) = auth {
            c = c.with_auth(a).unwrap();
        }
        let mut flash = TestFlash::new(g);
        let mut j = Journal::open(&mut flash, c).unwrap();
        let mut bodies = std::collections::BTreeMap::new();
        for i in 0..40u8 {
            let body = std::vec![i; 1 + (i as usize % 24)];
            let id = j.push(&body).unwrap();
            bodies.insert(id.0, body);
            // Event 0 stays pending, so every retirement copies it forward.
            if j.pending_count() == 2 {
                let newest = j.pending().last().unwrap().0;
                j.ack(newest).unwrap();
            }
        }
        drop(j);
        let mut seen = std::vec::Vec::new();
        Journal::open_with(&mut flash, c, |s| seen.push(s)).unwrap();
        let (mut seq, mut floor, mut events, mut kinds) = (0, 0, 0u64, [0u32; 4]);
        let unit = g.write_size as usize;
        let ss = g.sector_size;
        for s in seen {
            let (off, w, body) = match s {
                Seen::Sector {
                    seq: q, floor: f, ..
                } => {
                    (seq, floor, events) = (q, f, 0);
                    continue;
                }
                Seen::Event {
                    id,
                    offset,
                    copy: false,
                    ..
                } => {
                    events += 1;
                    assert_eq!(id.0, floor + events - 1);
                    let b = bodies[&id.0].clone();
                    kinds[0] += 1;
                    (offset, Word0::with_body(Kind::Event, b.len() as u32), b)
                }
                Seen::Event {
                    id,
                    offset,
                    copy: true,
                    ..
                } => {
                    let mut b = id.0.to_le_bytes().to_vec();
                    b.extend_from_slice(&bodies[&id.0]);
                    kinds[1] += 1;
                    (offset, Word0::with_body(Kind::Copy, b.len() as u32), b)
                }
                Seen::Ack { id, offset } => {
                    kinds[2] += 1;
                    let v = (floor + events - id.0) as u32;
                    (offset, Word0::with_value(Kind::AckShort, v), std::vec![])
                }
                Seen::Retire { seq: r } => {
                    kinds[3] += 1;
                    // The retire record's offset is not reported: find it by content.
                    let w = Word0::with_value(Kind::Retire, seq - r);
                    let want = build_record(seq, 0, w, &[], auth.as_ref(), unit);
                    let base = (seq % 4 * ss) as usize;
                    let sector = &flash.data[base..base + ss as usize];
                    let found = (0..ss as usize - want.len()).step_by(unit).any(|p| {
                        sector[p..p + want.len()]
                            == build_record(seq, p as u32, w, &[], auth.as_ref(), unit)[..]
                    });
                    assert!(found, "retire record of sector {r} in sector {seq}");
                    continue;
                }
                _ => continue,
            };
            let want = build_record(seq, off % ss, w, &body, auth.as_ref(), unit);
            let o = off as usize;
            assert_eq!(&flash.data[o..o + want.len()], &want[..], "record at {off}");
        }
        assert!(kinds.iter().all(|&k| k > 0), "every kind seen: {kinds:?}");
    }
}

/// I1, I2, I4 at `open`: a journal reopened with another reserve (a firmware
/// update may change it) rolls over without retiring while it has sectors to
/// spare, so the `Retire` record that bounds the live sectors sits below the
/// newest ones. Random operations against a model, a random reserve at every
/// reopen, in every mode.
#[test]
fn i4_reopen_with_another_reserve_finds_the_retire_record_below_the_top() {
    for &mode in MODES {
        let mut flash = TestFlash::new(Geometry {
            multiwrite: mode == Mode::InPlace,
            ..GEO
        });
        let mut model: BTreeMap<u64, StdVec<u8>> = BTreeMap::new();
        let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ mode as u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let (mut reserves, mut retire_below_top) = (std::collections::BTreeSet::new(), 0);
        for round in 0..300u64 {
            let Ok(config) = cfg(mode).with_reserve(next(5) as u32) else {
                continue;
            };
            reserves.insert(config.reserve());
            let mut j = Journal::open(&mut flash, config).unwrap();
            assert_eq!(pending_of(&mut j), model, "I4: {mode:?} round {round}");
            for step in 0..next(40) {
                if model.len() == 8 || (!model.is_empty() && next(3) == 0) {
                    let k = next(model.len() as u64) as usize;
                    let id = *model.keys().nth(k).unwrap();
                    assert_eq!(j.ack(EventId(id)), Ok(AckOutcome::Acked));
                    model.remove(&id);
                } else {
                    let body = payload(round * 64 + step, next(61) as usize);
                    let id = j.push(&body).unwrap();
                    model.insert(id.0, body);
                }
            }
            // Count the states this test is for: the newest sector holds no
            // Retire record, yet sectors were retired before.
            let (cur, oldest) = (j.status().current_seq, j.status().oldest_seq);
            if let (Some(cur), Some(oldest)) = (cur, oldest) {
                let mut top_retires = false;
                let mut seen_sector = None;
                drop(j);
                let _ = Journal::open_with(&mut flash, config, |s| match s {
                    Seen::Sector { seq, .. } => seen_sector = Some(seq),
                    Seen::Retire { .. } => top_retires |= seen_sector == Some(cur),
                    _ => {}
                })
                .unwrap();
                if oldest > 0 && cur > oldest && !top_retires {
                    retire_below_top += 1;
                }
            }
        }
        assert!(reserves.len() >= 2, "{mode:?}: reserves drawn {reserves:?}");
        assert!(
            retire_below_top >= 10,
            "{mode:?}: the retire record was below the newest sector only {retire_below_top} times"
        );
    }
}

/// A medium of any geometry that holds nothing: for the geometry arithmetic,
/// which never reads.
struct Shape(Geometry);

impl Medium for Shape {
    type Error = TestError;
    fn geometry(&self) -> Geometry {
        self.0
    }
    fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), TestError> {
        Err(TestError::Rule("the geometry arithmetic read"))
    }
    fn program(&mut self, _: u32, _: &[u8]) -> Result<(), TestError> {
        Err(TestError::Rule("the geometry arithmetic programmed"))
    }
    fn erase(&mut self, _: u32) -> Result<(), TestError> {
        Err(TestError::Rule("the geometry arithmetic erased"))
    }
    fn sync(&mut self) -> Result<(), TestError> {
        Ok(())
    }
}

proptest::proptest! {
    /// I3, I8: where a record is, on every geometry `Config` accepts (sector
    /// sizes from 256 B to 1 MiB, 3 to 65 535 sectors, up to 4 GiB) and any
    /// newest sector number, wrapped or not: `locate` gives back the sector
    /// number and offset that `sector_base` placed, for every live sector
    /// (the newest and the `sector_count - 1` before it), and `sector_index`
    /// is the remainder by the sector count.
    #[test]
    fn i3_locate_inverts_sector_base_on_every_geometry(
        size_log in 8u32..=20,
        count in 3u32..=0xFFFF,
        newest in proptest::prop_oneof![
            proptest::prelude::any::<u32>(),
            0u32..8,
            (u32::MAX - 8)..=u32::MAX,
        ],
        back in proptest::prelude::any::<u32>(),
        at in proptest::prelude::any::<u32>(),
        write_log in 0u32..=5,
    ) {
        let size = 1u32 << size_log;
        // The whole medium addressable in 32 bits, as `Config` requires.
        let count = count.min((u32::MAX as u64 / size as u64) as u32);
        proptest::prop_assume!(count >= 3);
        let geo = Geometry {
            sector_size: size,
            sector_count: count,
            write_size: 1 << write_log,
            multiwrite: false,
        };
        let Ok(config) = Config::<1>::try_new(geo, 16) else {
            return Err(proptest::test_runner::TestCaseError::reject("not a Config"));
        };
        let mut j = Journal::unopened(Shape(geo), config, NoCounter);
        j.cur = Some(Current { seq: newest, ptr: 0, sealed: false, records: 0, copies: 0 });
        // A live sector: the newest or one of the `count - 1` before it (none
        // before sector number 0).
        let back = back % count.min(newest.saturating_add(1).max(1));
        let seq = newest - back;
        let p = at % size;
        proptest::prop_assert_eq!(j.sector_index(seq), seq % count);
        let off = j.sector_base(seq) + p;
        proptest::prop_assert!((off as u64) < size as u64 * count as u64);
        proptest::prop_assert_eq!(j.locate(off), (seq, p));
    }
}

