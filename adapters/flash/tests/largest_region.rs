//! I1–I4 at the largest region `Config` accepts: 4 095 sectors of 1 MiB, one
//! MiB short of 4 GiB, so that the last sector's records lie above
//! `0xFFE0_0000` and every sum of an offset and a length comes within a sector
//! of `u32::MAX`. The release profile keeps overflow checks, so a sum that
//! wraps panics here instead of reading or programming the wrong place.
//!
//! A sparse medium (a sector holds memory only while it holds a programmed
//! byte; no program may set a bit, and without multiwrite none may program a
//! byte twice between erases) carries the journal once round the whole ring and
//! on into sector 0 again (4 GiB written), in each flavor (in-place acks, ack
//! records, authenticated records; sectors erased whole or as sixteen 64 KiB
//! blocks), with bodies of up to the largest the format takes, acks in any
//! order, and a reserve of 4 000 sectors (so that retirements keep about 95
//! live sectors behind the head and a reopen reads about 95 MiB of records).
//! The journal is reopened and checked against a model (every event whose push
//! returned is pending, byte for byte, none that was acked comes back, the next
//! id is above every id given) early on, in each of the ring's last three
//! sectors (in the last among its last records, the highest offsets of the
//! region), in the first sectors after the wrap, and at the end; the reopens
//! alternate between the flash's medium order and a file's
//! ([`Medium::writes_in_order`]). About a minute on two cores in a release
//! build, as `ci/test flash` runs it.
//!
//! `LARGEST_REGION_SECTORS` sets how many sectors each lap writes (default
//! 4 103: the ring and 8 more).

mod support;

use monitor_events::journal::{Config, Journal};
use monitor_events::{Geometry, Medium};
use monitor_events_flash::workload::Pcg32;
use support::{check, env_u64, flavored, Flavor, Model, LARGEST_BODY};

/// NOR rules over sectors kept only while they hold a programmed byte.
struct Sparse {
    geometry: Geometry,
    sectors: Vec<Option<Box<[u8]>>>,
    /// What [`Medium::erase_block_size`] answers.
    block: u32,
    in_order: bool,
}

impl Sparse {
    fn new(geometry: Geometry, block: u32) -> Self {
        Sparse {
            geometry,
            sectors: (0..geometry.sector_count).map(|_| None).collect(),
            block,
            in_order: true,
        }
    }

    /// The sector and the offset in it; an access must stay in one sector.
    fn locate(&self, offset: u32, len: usize) -> (usize, usize) {
        let size = self.geometry.sector_size;
        let (s, at) = (offset / size, (offset % size) as usize);
        assert!(at + len <= size as usize, "an access across sectors");
        assert!(s < self.geometry.sector_count, "an access past the region");
        (s as usize, at)
    }

    fn held(&self) -> usize {
        self.sectors.iter().filter(|s| s.is_some()).count()
    }
}

impl Medium for Sparse {
    type Error = core::convert::Infallible;

    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        let (s, at) = self.locate(offset, buf.len());
        match &self.sectors[s] {
            Some(d) => buf.copy_from_slice(&d[at..at + buf.len()]),
            None => buf.fill(0xFF),
        }
        Ok(())
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        let (s, at) = self.locate(offset, data.len());
        let size = self.geometry.sector_size as usize;
        let d = self.sectors[s].get_or_insert_with(|| vec![0xFF; size].into_boxed_slice());
        let cells = &mut d[at..at + data.len()];
        // Checked over the whole slice first (the per-byte asserts would cost
        // more than the journal over 4 GiB), then located on failure.
        let sets_bit = cells.iter().zip(data).any(|(c, b)| c & b != *b);
        let twice = !self.geometry.multiwrite && cells.iter().any(|c| *c != 0xFF);
        if sets_bit || twice {
            for (i, (c, &b)) in cells.iter().zip(data).enumerate() {
                let byte = offset as usize + i;
                assert_eq!(c & b, b, "a program that sets a bit of byte {byte}");
                assert!(!twice || *c == 0xFF, "a second program of byte {byte}");
            }
        }
        cells.copy_from_slice(data);
        Ok(())
    }
    fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        self.sectors[sector as usize] = None;
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn erase_block_size(&self) -> u32 {
        self.block
    }
    fn writes_in_order(&self) -> bool {
        self.in_order
    }
}

/// The ring once round and `LARGEST_REGION_SECTORS - 4095` sectors more in
/// `flavor`, on a medium that erases `block` bytes at a time; returns the
/// reopens checked.
fn lap(flavor: Flavor, block: u32, seed: u64) -> u64 {
    let g = Geometry {
        sector_size: 1 << 20,
        sector_count: 4095,
        write_size: 4,
        multiwrite: flavor == Flavor::InPlace,
    };
    let config = flavored(
        Config::<16>::try_new_with_reserve(g, LARGEST_BODY, 4000).expect("the largest region"),
        flavor,
    )
    .expect("the flavor");
    let sectors = env_u64("LARGEST_REGION_SECTORS", 4095 + 8);
    let mut medium = Sparse::new(g, block);
    let mut model = Model::default();
    let mut rng = Pcg32::new(seed);
    // Where the journal reopens: at a sequence, once its sector holds `used`
    // bytes. A reopen starts the next sector, so a sequence takes one: early
    // on, then in the ring's last sectors (the last one among its last
    // records, the highest offsets of the region) and in the first ones after
    // the wrap, elsewhere at a random place.
    let size = g.sector_size;
    let anywhere = |rng: &mut Pcg32| rng.below(size - 8192);
    let mut stops: Vec<(u64, u32)> = vec![(1, 0)];
    for seq in [3000, 4092, 4093, 4095, 4096, 4100] {
        stops.push((seq, anywhere(&mut rng)));
    }
    stops.push((4094, size - 12 * 1024));
    stops.sort();
    stops.retain(|&(seq, _)| seq < sectors);
    let pattern: Vec<u8> = (0..LARGEST_BODY).map(|i| (i * 13 + 5) as u8).collect();
    let mut reopens = 0u64;
    let mut j = Journal::open(&mut medium, config).expect("a blank region");
    loop {
        let status = j.status();
        let seq = u64::from(status.current_seq.unwrap_or(0));
        if seq >= sectors {
            break;
        }
        if stops
            .first()
            .is_some_and(|&(s, used)| s == seq && status.current_used >= used)
        {
            stops.remove(0);
            drop(j);
            medium.in_order = reopens % 2 == 0;
            j = Journal::open(&mut medium, config).expect("a clean reopen");
            let what = format!(
                "{flavor:?}: reopen in sequence {seq} at {}",
                status.current_used
            );
            let (c, _) = check(&model, &mut j, &what);
            assert!(c.clean(), "{what}: {c:?}");
            reopens += 1;
            continue;
        }
        if j.pending_count() < 16 && rng.below(5) != 0 {
            let len = if rng.below(4) != 0 {
                LARGEST_BODY
            } else {
                1 + rng.below(LARGEST_BODY as u32) as usize
            };
            // A fixed pattern under the push's id: random bytes for 4 GiB
            // would cost more than the journal does.
            let mut payload = pattern[..len].to_vec();
            let id = j.next_id().0.to_le_bytes();
            let n = len.min(8);
            payload[..n].copy_from_slice(&id[..n]);
            let id = j.push(&payload).expect("room for a push");
            model.pushed(id, payload);
        } else if j.pending_count() > 0 {
            let ids = j.pending_ids();
            let id = ids[rng.below(ids.len() as u32) as usize];
            j.ack(id).expect("a pending id");
            model.acked(id);
        }
    }
    assert!(
        stops.is_empty(),
        "{flavor:?}: reopens not reached: {stops:?}"
    );
    let status = j.status();
    drop(j);
    medium.in_order = true;
    let mut j = Journal::open(&mut medium, config).expect("a clean reopen");
    let (c, _) = check(&model, &mut j, &format!("{flavor:?}: the end"));
    assert!(c.clean(), "{flavor:?}: the end: {c:?}");
    assert_eq!(j.status().current_seq, status.current_seq);
    drop(j);
    println!(
        "largest region, {flavor:?}: {sectors} sectors written ({status:?}), ids up to {}, \
         {} reopens checked, {} sectors held at the end",
        model.max_id.unwrap_or(0),
        reopens + 1,
        medium.held()
    );
    reopens + 1
}

/// Ack records on a medium that erases a whole sector at once: every open
/// reads the 4 000 free sectors to check that they are erased.
#[test]
fn i1_i4_the_largest_region_ack_records() {
    assert!(lap(Flavor::Record, 1 << 20, 0x4_6002) >= 2);
}

/// In-place acks on sectors of sixteen 64 KiB erase blocks (a NOR's): the
/// journal erases each free sector before its first use instead.
#[test]
fn i1_i4_the_largest_region_in_place_acks() {
    assert!(lap(Flavor::InPlace, 64 << 10, 0x4_6001) >= 2);
}

/// Authenticated records (a tag on every record and sector header), on
/// sectors of sixteen erase blocks.
#[test]
fn i1_i4_the_largest_region_authenticated() {
    assert!(lap(Flavor::RecordAuth, 64 << 10, 0x4_6003) >= 2);
}
