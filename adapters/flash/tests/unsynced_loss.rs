//! I1–I4 and I10 on a medium with the semantics of a file, whose writes since
//! the last completed `sync` may be lost or partly present after a crash (the
//! host loses power; docs/INVARIANTS.md, "The fault model"). A killed process
//! (`adapters/file/tests/kill.rs`) loses nothing the kernel holds; this is the
//! crash it cannot make.
//!
//! [`FileLike`] keeps what the disk holds for certain (the state at the last
//! completed `sync`) and, as a page cache does, what reads see. A program
//! overwrites bytes, an erase writes `0xFF` over the sector. At the crash each
//! 512 B block written since the last `sync` comes back as it was before those
//! writes or as it was after any one of them, independently of the other
//! blocks, so a later write may survive an earlier one; one block in eight is
//! torn byte by byte between its old state and the chosen one. The crash lands
//! on a random program, erase or `sync` (that operation does not happen), in
//! bursts as in `brownout.rs`.
//!
//! The journal runs random pushes and group commits (`push_batch` of 2 to 4
//! bodies), acks and `ack_batch` of 1 to 3 ids, and reopens, on random
//! geometries `Config` accepts (sectors of 256 B to 16 KiB, so that one block
//! may hold several sectors, 3 to 12 of them, program units of 1 to 32 B), with
//! in-place acks, ack records or authenticated records. After every crash it
//! must open and give back every push that returned and none of the acks that
//! returned, byte for byte (I1, I2, I4), and never reuse an id (I3); of the
//! operation the crash interrupted, any of its events or acks may or may not be
//! there. Each run ends in stable power, where the journal must fill to `N` and
//! empty again (I10).
//!
//! After every crash, the same image with one bit flipped as well (half of them
//! in bytes a write changed) must open to a typed error or to what the journal
//! promised (I8 keeps single flips corrected or refused on such a medium too:
//! a record that fails its check with records behind it may be the end of a
//! crash, but one flipped bit must not pass for it).
//!
//! Beside the file, a monotonic counter (none, one that keeps every version, or
//! one that keeps only a rollover's; the crash does not touch it), which no
//! crash may turn into a refused open (`RolledBack`): the journal must tell it
//! only versions it has synced.
//!
//! A second test draws the largest bodies `Config` takes (bounds of 2 KiB to
//! 4 087 B, sectors of 16 to 64 KiB), whose records span up to nine blocks.
//!
//! `UNSYNCED_DRAWS` sets the geometries (default 40; `UNSYNCED_LARGEST_DRAWS`
//! those of the second test, default 12), `UNSYNCED_CRASHES` the crashes per
//! geometry (default 150).

mod support;

use monitor_events::journal::{max_pending, AckMode, Auth, Config, Journal};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_flash::sim::panic_text;
use monitor_events_flash::workload::Pcg32;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::{
    check, env_u64, quiet_panics_containing, Bursts, Counter, CounterKind, Counts, InFlight, Model,
    LARGEST_BODY,
};

/// The disk's unit: a block is written whole or not at all, but for the torn
/// ones.
const BLOCK: usize = 512;
const N: usize = 8;
const MAX_BODY: usize = 160;

/// The medium's only error: the crash.
#[derive(Debug)]
struct Crash;

/// A file on a disk that keeps, of the writes since the last `sync`, whatever
/// it likes.
#[derive(Clone)]
struct FileLike {
    geometry: Geometry,
    /// What the disk holds for certain: the state at the last completed `sync`.
    disk: Vec<u8>,
    /// What reads see: the disk and every write since (the page cache).
    cache: Vec<u8>,
    /// Per block written since the last `sync`, its state after each write.
    written: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Operations (programs, erases, syncs) before the crash; `None`: stable.
    crash_in: Option<u64>,
    /// Set by the crash, until the restart.
    crashed: bool,
}

impl FileLike {
    fn new(geometry: Geometry) -> Self {
        let size = geometry.size() as usize;
        FileLike {
            geometry,
            disk: vec![0xFF; size],
            cache: vec![0xFF; size],
            written: BTreeMap::new(),
            crash_in: None,
            crashed: false,
        }
    }

    /// Counts an operation; fails it if it is the one the crash lands on, or if
    /// the crash came already.
    fn operation(&mut self) -> Result<(), Crash> {
        if self.crashed {
            return Err(Crash);
        }
        match self.crash_in {
            Some(0) => {
                self.crash_in = None;
                self.crashed = true;
                Err(Crash)
            }
            Some(k) => {
                self.crash_in = Some(k - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn write(&mut self, at: usize, bytes: &[u8]) -> Result<(), Crash> {
        self.operation()?;
        self.cache[at..at + bytes.len()].copy_from_slice(bytes);
        for b in at / BLOCK..=(at + bytes.len() - 1) / BLOCK {
            let end = ((b + 1) * BLOCK).min(self.cache.len());
            let state = self.cache[b * BLOCK..end].to_vec();
            self.written.entry(b).or_default().push(state);
        }
        Ok(())
    }

    /// Power comes back: each block written since the last `sync` as it was
    /// before, or after any one of the writes; one in eight torn byte by byte
    /// between the two.
    fn restart(&mut self, rng: &mut Pcg32) {
        for (&b, states) in &self.written {
            let pick = rng.below(states.len() as u32 + 1) as usize;
            let Some(state) = pick.checked_sub(1).map(|i| &states[i]) else {
                continue;
            };
            let block = &mut self.disk[b * BLOCK..b * BLOCK + state.len()];
            if rng.below(8) == 0 {
                for (d, &s) in block.iter_mut().zip(state) {
                    if rng.below(2) == 0 {
                        *d = s;
                    }
                }
            } else {
                block.copy_from_slice(state);
            }
        }
        self.written.clear();
        self.cache.clone_from(&self.disk);
        self.crashed = false;
    }
}

impl Medium for FileLike {
    type Error = Crash;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn writes_in_order(&self) -> bool {
        false
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Crash> {
        if self.crashed {
            return Err(Crash);
        }
        let at = offset as usize;
        buf.copy_from_slice(&self.cache[at..at + buf.len()]);
        Ok(())
    }

    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Crash> {
        self.write(offset as usize, data)
    }

    fn erase(&mut self, sector: u32) -> Result<(), Crash> {
        let size = self.geometry.sector_size as usize;
        self.write(sector as usize * size, &vec![0xFF; size])
    }

    fn sync(&mut self) -> Result<(), Crash> {
        self.operation()?;
        self.disk.clone_from(&self.cache);
        self.written.clear();
        Ok(())
    }
}

/// A geometry and mode `Config` accepts for `N` bodies of `MAX_BODY` bytes;
/// with `largest`, of a bound from 2 KiB to 4 087 B (the largest `Config`
/// takes) in sectors of 16 to 64 KiB, so that a record spans up to nine of the
/// file's blocks. Returns the body bound too.
fn draw(rng: &mut Pcg32, largest: bool) -> (Config<N>, usize, String) {
    loop {
        let mode = rng.below(3);
        let (sector_size, max_body) = if largest {
            let bound = if rng.below(4) == 0 {
                LARGEST_BODY
            } else {
                2048 + rng.below(2040) as usize
            };
            (16384 << rng.below(3), bound)
        } else {
            (256 << rng.below(7), MAX_BODY)
        };
        let g = Geometry {
            sector_size,
            sector_count: 3 + rng.below(10),
            write_size: 1 << rng.below(6),
            multiwrite: mode == 0,
        };
        if max_pending(g, max_body, mode == 2) < N {
            continue;
        }
        let Ok(c) = Config::<N>::try_new(g, max_body) else {
            continue;
        };
        let c = match mode {
            0 => c.with_ack_mode(AckMode::InPlace),
            1 => c.with_ack_mode(AckMode::Record),
            _ => c.with_auth(Auth::new([0x7E; 32], *b"unsynced losses!")),
        }
        .expect("a mode the geometry takes");
        let name = format!(
            "{}x{} B, unit {} B, {}, bodies up to {max_body} B",
            g.sector_count,
            g.sector_size,
            g.write_size,
            ["in-place acks", "ack records", "authenticated"][mode as usize]
        );
        return (c, max_body, name);
    }
}

/// A body of 1 to `max` random bytes; a third of them at `max` when it is
/// above [`MAX_BODY`] (the largest-body draws).
fn body(rng: &mut Pcg32, max: usize) -> Vec<u8> {
    let len = if max > MAX_BODY && rng.below(3) == 0 {
        max
    } else {
        1 + rng.below(max as u32) as usize
    };
    (0..len).map(|_| rng.next_u32() as u8).collect()
}

/// Random operations until the armed crash ends them with a panic (I7).
fn operate(
    file: &mut FileLike,
    config: Config<N>,
    counter: &Counter,
    max_body: usize,
    model: &mut Model,
    rng: &mut Pcg32,
) {
    let mut j =
        Journal::open_with_counter(file, config, counter.clone()).expect("open before the crash");
    loop {
        let r = rng.below(100);
        let pending = j.pending_count();
        if r < 15 && pending + 2 <= N {
            let k = 2 + rng.below((N - pending).min(4) as u32 - 1) as usize;
            let bodies: Vec<Vec<u8>> = (0..k).map(|_| body(rng, max_body)).collect();
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let mut ids = vec![EventId(0); k];
            model.in_flight = Some(InFlight::PushBatch(bodies.clone()));
            j.push_batch(&refs, &mut ids).expect("a batch below N");
            for (id, b) in ids.into_iter().zip(bodies) {
                model.pushed(id, b);
            }
        } else if r < 50 && pending < N {
            let b = body(rng, max_body);
            model.in_flight = Some(InFlight::Push(b.clone()));
            let id = j.push(&b).expect("a push below N");
            model.pushed(id, b);
        } else if r < 92 && pending > 0 {
            let ids: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
            let mut batch: Vec<EventId> = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let id = ids[rng.below(ids.len() as u32) as usize];
                if !batch.contains(&id) {
                    batch.push(id);
                }
            }
            model.in_flight = Some(InFlight::AckBatch(batch.iter().map(|id| id.0).collect()));
            let mut out = vec![monitor_events::AckOutcome::AlreadyAcked; batch.len()];
            j.ack_batch(&batch, &mut out).expect("acks of pending ids");
            for id in batch {
                model.acked(id);
            }
        } else {
            j = Journal::open_with_counter(j.into_medium(), config, counter.clone())
                .expect("reopen");
        }
    }
}

/// One geometry's run: `crashes` crashes in bursts from a blank file, a check
/// after each, then stable power.
fn run(seed: u64, crashes: u64, largest: bool, flips: &mut Flips) -> Counts {
    let mut rng = Pcg32::new(seed);
    let (config, max_body, name) = draw(&mut rng, largest);
    // Drawn from the seed, not the stream: the geometries stay as they were.
    let counter = Counter {
        kind: [
            CounterKind::None,
            CounterKind::Every,
            CounterKind::Rollovers,
        ][(seed % 3) as usize],
        kept: Default::default(),
    };
    let what = format!("seed {seed}: {name}, counter {:?}", counter.kind);
    let mut file = FileLike::new(config.geometry());
    let mut model = Model::default();
    let mut totals = Counts::default();
    let mut bursts = Bursts::default();
    for _ in 0..crashes {
        file.crash_in = Some(bursts.next(&mut rng, 150));
        let r = catch_unwind(AssertUnwindSafe(|| {
            operate(&mut file, config, &counter, max_body, &mut model, &mut rng)
        }));
        let message = panic_text(&*r.expect_err("the workload ends in the crash"));
        assert!(
            file.crashed,
            "{what}: a panic that is not the crash: {message}"
        );
        file.restart(&mut rng);
        // Never `RolledBack`: the counter only ever heard of synced versions.
        let mut j = Journal::open_with_counter(&mut file, config, counter.clone())
            .unwrap_or_else(|e| panic!("{what}: the journal does not open after a crash: {e}"));
        let (c, got) = check(&model, &mut j, &what);
        totals.add(c);
        drop(j);
        // The same image with one bit flipped as well (the disk rotted it): a
        // typed error, or what the journal promised, the interrupted operation
        // either way (I8 keeps single flips corrected or refused, whatever the
        // crash left). Half of the flips land in bytes a write changed.
        let mut rotten = file.clone();
        let bit = flip_target(&rotten.disk, &mut rng);
        rotten.disk[bit / 8] ^= 1 << (bit % 8);
        rotten.cache.clone_from(&rotten.disk);
        match Journal::open_with_counter(&mut rotten, config, counter.clone()) {
            Err(_) => flips.refused += 1,
            Ok(mut j) => {
                let what = format!("{what}, bit {bit} (byte {:#x}) flipped", bit / 8);
                let (c, _) = check(&model, &mut j, &what);
                assert!(c.clean(), "{what}: {c:?}");
                totals.add(c);
                flips.opened += 1;
            }
        }
        model.adopt(&got);
    }
    // Stable power: fill to N, then ack everything (I10).
    let mut j = Journal::open_with_counter(&mut file, config, counter.clone())
        .expect("open in stable power");
    while j.pending_count() < N {
        let b = body(&mut rng, max_body);
        let id = j
            .push(&b)
            .unwrap_or_else(|e| panic!("{what}: I10, push: {e}"));
        model.pushed(id, b);
    }
    for id in j.pending().map(|(id, _)| id).collect::<Vec<_>>() {
        j.ack(id)
            .unwrap_or_else(|e| panic!("{what}: I10, ack: {e}"));
        model.acked(id);
    }
    let (c, _) = check(&model, &mut j, &format!("{what}, stable power"));
    totals.add(c);
    // The counter kept what it was told: the journal's version, or (keeping
    // rollovers only) at least its sector part.
    let (kept, version) = (counter.kept.get(), j.version());
    match counter.kind {
        CounterKind::None => assert_eq!(kept, 0, "{what}"),
        CounterKind::Every => assert_eq!(kept, version, "{what}: the counter keeps up"),
        CounterKind::Rollovers => assert_eq!(kept >> 32, version >> 32, "{what}"),
    }
    totals
}

/// What the images with a bit flipped after a crash gave.
#[derive(Debug, Default)]
struct Flips {
    refused: u64,
    opened: u64,
}

/// A bit of `image` to flip: half the time in a byte that is not `0xFF` (one
/// that a write changed), else anywhere.
fn flip_target(image: &[u8], rng: &mut Pcg32) -> usize {
    let bits = image.len() * 8;
    if rng.below(2) == 0 {
        for _ in 0..64 {
            let byte = rng.below(image.len() as u32) as usize;
            if image[byte] != 0xFF {
                return byte * 8 + rng.below(8) as usize;
            }
        }
    }
    rng.below(bits as u32) as usize
}

/// `draws` geometries from seed `base` (with `largest`, of the largest
/// bodies), each through `UNSYNCED_CRASHES` crashes (default 150); prints the
/// tally as `title` and fails on any violation.
fn hunt(title: &str, base: u64, draws: u64, largest: bool) {
    quiet_panics_containing("Crash");
    let crashes = env_u64("UNSYNCED_CRASHES", 150);
    let mut totals = Counts::default();
    let mut flips = Flips::default();
    for seed in 0..draws {
        totals.add(run(base + seed, crashes, largest, &mut flips));
    }
    println!(
        "{title}: {draws} geometries, {}; a bit flipped after each crash as well: refused {}, opened right {}",
        totals.summary(),
        flips.refused,
        flips.opened
    );
    assert!(totals.clean(), "{totals:?}");
    assert_eq!(totals.checked, draws * (crashes + 1) + flips.opened);
    // Both happen, or the flips lost their teeth.
    assert!(flips.refused > 0 && flips.opened > 0, "{flips:?}");
}

#[test]
fn i1_i4_i8_i10_crashes_that_keep_any_unsynced_writes() {
    let draws = env_u64("UNSYNCED_DRAWS", 40);
    hunt("unsynced losses", 0xF1_0000, draws, false);
}

/// The same crashes with the largest bodies `Config` takes (bound from 2 KiB to
/// 4 087 B, sectors of 16 to 64 KiB): a record spans up to nine of the file's
/// 512 B blocks, each of which a crash may keep or lose on its own.
/// `UNSYNCED_LARGEST_DRAWS` sets the geometries (default 12), with
/// `UNSYNCED_CRASHES` crashes each.
#[test]
fn i1_i4_i8_i10_crashes_that_keep_any_unsynced_writes_largest_bodies() {
    let draws = env_u64("UNSYNCED_LARGEST_DRAWS", 12);
    hunt("unsynced losses, largest bodies", 0xF2_0000, draws, true);
}
