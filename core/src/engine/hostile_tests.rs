//! Tests of the authenticated journal against tampering, and of rollback
//! detection with a monotonic counter.

use super::tests::{cfg, pending_of, TestFlash, GEO, MODES};
use super::*;
use crate::journal::format::{
    decode_sector_header, encode_sector_header, HeaderState, SectorHeader, SECTOR_HEADER_LEN,
};
use crate::journal::RamCounter;
use crate::medium::Geometry;
#[cfg(feature = "auth")]
use {
    super::tests::{Mode, KEY, REGION},
    crate::journal::format::{self, crc_prefix, Word0, CRC, RECORD_HEADER_LEN, TAG_LEN},
    crate::journal::Auth,
    std::collections::BTreeMap,
};
use std::vec::Vec as StdVec;

fn auth_geo() -> Geometry {
    Geometry {
        multiwrite: false,
        ..GEO
    }
}

/// An authenticated journal with events 0..10 pushed and a few acked.
#[cfg(feature = "auth")]
fn populated(config: Config<8>) -> TestFlash {
    let mut flash = TestFlash::new(config.geometry());
    let mut j = Journal::open(&mut flash, config).unwrap();
    for i in 0..10u8 {
        let id = j.push(&[i; 24]).unwrap();
        if i % 3 == 0 {
            j.ack(id).unwrap();
        }
    }
    drop(j);
    flash
}

/// Event records the journal sees (acked by a record or not): (absolute offset, id).
#[cfg(feature = "auth")]
fn event_offsets(flash: &mut TestFlash, config: Config<8>) -> StdVec<(u32, u64)> {
    let mut out = StdVec::new();
    Journal::open_with(&mut *flash, config, |s| {
        if let Seen::Event {
            id,
            offset,
            acked: false,
            ..
        } = s
        {
            out.push((offset, id.0));
        }
    })
    .unwrap();
    out
}

/// Recomputes the CRC of the record at absolute `off` as if it sat at `off` (what
/// an attacker without the key can do).
#[cfg(feature = "auth")]
fn fix_crc(flash: &mut TestFlash, off: u32, tag_len: u32) {
    let ss = flash.geo.sector_size;
    let (idx, in_sector) = (off / ss, off % ss);
    // The sector's seq from its header.
    let h = &flash.data[(idx * ss) as usize..][..24];
    let seq = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let o = off as usize;
    let w = Word0(u32::from_le_bytes(flash.data[o..o + 4].try_into().unwrap()));
    let tail = (tag_len + w.body_len()) as usize;
    let mut d = CRC.digest();
    d.update(&crc_prefix(seq, in_sector));
    d.update(&w.masked().to_le_bytes());
    d.update(&flash.data[o + 8..o + 8 + tail]);
    let crc = d.finalize();
    flash.data[o + 4..o + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A journal [`populated`] under `config`, what it holds pending, and the
/// absolute offset of its tail (where its next record goes).
#[cfg(feature = "auth")]
fn populated_tail(config: Config<8>) -> (TestFlash, BTreeMap<u64, StdVec<u8>>, u32) {
    let mut flash = populated(config);
    let mut j = Journal::open(&mut flash, config).unwrap();
    let st = j.status();
    let before = pending_of(&mut j);
    drop(j);
    let off = (st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size + st.current_used;
    (flash, before, off)
}

/// Writes at absolute `off` an event record of 24 bytes `fill` with a made-up
/// tag of 16 bytes `fill` and a right CRC (what an attacker without the key can
/// write).
#[cfg(feature = "auth")]
fn forge_event(flash: &mut TestFlash, off: u32, fill: u8) {
    let w = Word0::with_body(format::Kind::Event, 24);
    let o = off as usize;
    flash.data[o..o + 4].copy_from_slice(&w.0.to_le_bytes());
    flash.data[o + 8..o + 8 + TAG_LEN as usize + 24].fill(fill);
    fix_crc(flash, off, TAG_LEN);
}

#[cfg(feature = "auth")]
fn assert_forged(flash: &mut TestFlash, config: Config<8>, what: &str) {
    let before = flash.data.clone();
    match Journal::open(&mut *flash, config) {
        Err(OpenError::Corrupted {
            reason: Corruption::Forged,
            ..
        }) => {}
        other => panic!(
            "{what}: expected Forged, got {:?}",
            other.map(|j| j.status())
        ),
    }
    assert_eq!(flash.data, before, "{what}: open wrote nothing");
}

/// I8: an altered record whose CRC the attacker recomputed is refused.
#[test]
#[cfg(feature = "auth")]
fn i8_auth_altered_record_is_refused() {
    let config = cfg(Mode::Auth);
    let mut flash = populated(config);
    let (off, _) = event_offsets(&mut flash, config)[0];
    flash.data[(off + RECORD_HEADER_LEN + TAG_LEN) as usize] ^= 0x55;
    fix_crc(&mut flash, off, TAG_LEN);
    assert_forged(&mut flash, config, "altered");
}

/// I8: a forged record appended behind the tail, with a right CRC, is refused.
#[test]
#[cfg(feature = "auth")]
fn i8_auth_forged_record_is_refused() {
    let config = cfg(Mode::Auth);
    let mut flash = populated(config);
    let st = Journal::open(&mut flash, config).unwrap().status();
    let off = (st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size + st.current_used;
    forge_event(&mut flash, off, 0x42);
    assert_forged(&mut flash, config, "forged");
    // The same record in a plain journal would have been taken: the check is the tag.
}

/// I10: behind the last record, bytes that read one bit short of a record with
/// a right CRC but fail their tag once corrected are a torn or weak write whose
/// CRC matched by chance (the correction tries one syndrome per bit of the
/// claimed length; `weak_programs.rs` met one under a weak program): torn, as
/// without the chance, not forged. With a right CRC as they read, or with
/// records behind them, they are still forged.
#[test]
#[cfg(feature = "auth")]
fn i10_auth_tail_corrected_by_chance_is_torn_not_forged() {
    let config = cfg(Mode::Auth);
    let mut flash = populated(config);
    let mut j = Journal::open(&mut flash, config).unwrap();
    let st = j.status();
    let before = pending_of(&mut j);
    let next = j.next_id();
    drop(j);
    let off = (st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size + st.current_used;
    forge_event(&mut flash, off, 0x42);
    let o = off as usize;
    // One body bit that the CRC says is 0 reads 1 (0x42 has bit 0 clear).
    let bit_at = o + 8 + 16 + 5;
    flash.data[bit_at] |= 1;
    let image = flash.data.clone();
    let mut torn = 0;
    let mut j = Journal::open_with(&mut flash, config, |s| {
        if let Seen::TornTail { offset } = s {
            assert_eq!(offset, off, "the torn tail is the appended record");
            torn += 1;
        }
    })
    .unwrap_or_else(|e| panic!("I10: a chance correction at the tail: {e}"));
    assert_eq!(torn, 1, "the record was taken as torn");
    assert_eq!(pending_of(&mut j), before, "I1, I4: nothing else changed");
    assert!(j.next_id() > next, "I3: the torn event's id is not reused");
    // The journal goes on, past the torn record.
    let id = j.push(&[7; 24]).unwrap();
    drop(j);
    let mut j = Journal::open(&mut flash, config).unwrap();
    let mut want = before.clone();
    want.insert(id.0, [7; 24].to_vec());
    assert_eq!(pending_of(&mut j), want, "I1: the push after it is kept");
    drop(j);
    // With the bit as the CRC says, the same bytes are a forgery.
    let mut flash2 = TestFlash::new(config.geometry());
    flash2.data = image.clone();
    flash2.data[bit_at] &= !1;
    assert_forged(&mut flash2, config, "forged, right CRC");
    // With a record behind it, the corrected record is damage, refused.
    let mut flash3 = TestFlash::new(config.geometry());
    flash3.data = image;
    forge_event(&mut flash3, off + config.extent(24), 0x24);
    assert!(
        Journal::open(&mut flash3, config).is_err(),
        "a corrected record with one behind it is refused"
    );
    // Where writes land out of order (a file), a record that reads a bit short
    // whose byte reads 0xFF is kept corrected with the records behind it: if
    // its tag then fails, it is a forgery, not a torn tail that would drop the
    // records behind it.
    let mut flash4 = TestFlash::new(config.geometry());
    flash4.data = flash3.data.clone();
    flash4.in_order = false;
    forge_event(&mut flash4, off, 0xFE);
    flash4.data[bit_at] |= 1;
    assert_eq!(flash4.data[bit_at], 0xFF, "the bit's byte reads erased");
    assert_forged(&mut flash4, config, "corrected, records behind, out of order");
}

/// I10, I1: the same at every bit of the record: its length and kind, its CRC,
/// its tag, its body. Whichever bit that should be 0 reads 1 (the three ways
/// the correction finds a bit: in the CRC field, in the record's first word, in
/// the rest), the record is torn: `open` succeeds, writes nothing, and gives
/// back exactly what was pending.
#[test]
#[cfg(feature = "auth")]
fn i10_auth_tail_one_bit_short_anywhere_is_torn() {
    let config = cfg(Mode::Auth);
    let (mut flash, before, off) = populated_tail(config);
    forge_event(&mut flash, off, 0x42);
    let image = flash.data.clone();
    let o = off as usize;
    let mut tried = 0;
    for byte in o..o + RECORD_HEADER_LEN as usize + TAG_LEN as usize + 24 {
        for bit in (0..8).filter(|b| image[byte] & (1 << b) == 0) {
            let mut f = TestFlash::new(config.geometry());
            f.data = image.clone();
            f.data[byte] |= 1 << bit;
            let shown = f.data.clone();
            let mut torn = StdVec::new();
            let mut j = Journal::open_with(&mut f, config, |s| {
                if let Seen::TornTail { offset } = s {
                    torn.push(offset);
                }
            })
            .unwrap_or_else(|e| panic!("I10: bit {bit} of byte {}: {e}", byte - o));
            assert_eq!(torn, [off], "bit {bit} of byte {}: torn", byte - o);
            assert_eq!(pending_of(&mut j), before, "I1, I4: bit {bit} of byte {}", byte - o);
            drop(j);
            assert_eq!(f.data, shown, "open wrote nothing");
            tried += 1;
        }
    }
    assert!(tried > 150, "only {tried} bits tried");
}

/// I10, I8: a bit that reads 0 where the CRC wants 1 is what a power cut cannot
/// leave, and is refused as rot; but the bytes of a torn or weak write can
/// point the CRC syndrome at such a bit by chance too (the largest-bodies sweep
/// of `weak_programs.rs` met one in a torn retirement copy of 4 095 B, and the
/// device no longer opened). Behind the last record of an authenticated
/// journal the record as written (the bit set back) must then carry its tag:
/// a forged tail record with each of its 1 bits cleared in turn (its length
/// and kind, its CRC, its tag, its body; not the ack byte, which neither CRC
/// nor tag covers) must open as torn, writing nothing and giving back what was
/// pending. A real record whose bit rotted so (its tag right), or a record
/// with one behind it, must still be refused as a flipped bit.
#[test]
#[cfg(feature = "auth")]
fn i10_auth_tail_one_bit_over_by_chance_is_torn_and_real_rot_refused() {
    let config = cfg(Mode::Auth);
    let (mut flash, before, off) = populated_tail(config);
    let real = flash.data.clone();
    forge_event(&mut flash, off, 0x42);
    let image = flash.data.clone();
    let o = off as usize;
    let mut tried = 0;
    for byte in o..o + RECORD_HEADER_LEN as usize + TAG_LEN as usize + 24 {
        if byte == o + 2 {
            continue; // the ack byte
        }
        for bit in (0..8).filter(|b| image[byte] & (1 << b) != 0) {
            let what = format!("bit {bit} of byte {}", byte - o);
            let mut f = TestFlash::new(config.geometry());
            f.data = image.clone();
            f.data[byte] &= !(1 << bit);
            let shown = f.data.clone();
            let mut torn = StdVec::new();
            let mut j = Journal::open_with(&mut f, config, |s| {
                if let Seen::TornTail { offset } = s {
                    torn.push(offset);
                }
            })
            .unwrap_or_else(|e| panic!("I10: {what}: {e}"));
            assert_eq!(torn, [off], "{what}: torn");
            assert_eq!(pending_of(&mut j), before, "I1, I4: {what}");
            drop(j);
            assert_eq!(f.data, shown, "{what}: open wrote nothing");
            tried += 1;
        }
    }
    assert!(tried > 100, "only {tried} bits tried");

    let bitflip = |f: &mut TestFlash, what: &str| match Journal::open(f, config) {
        Err(OpenError::Corrupted {
            reason: Corruption::BitFlip,
            ..
        }) => {}
        other => panic!("{what}: expected BitFlip, got {:?}", other.map(|j| j.status())),
    };
    // With a record behind it, the same record is refused.
    let mut f = TestFlash::new(config.geometry());
    f.data = image.clone();
    forge_event(&mut f, off + config.extent(24), 0x24);
    f.data[o + 8 + 16 + 5] &= !0x02;
    bitflip(&mut f, "a record behind it");
    // A real tail record (its tag right) whose body bit rotted from 1 to 0.
    let mut f = TestFlash::new(config.geometry());
    f.data = real;
    let mut j = Journal::open(&mut f, config).unwrap();
    let id = j.push(&[0x42; 24]).unwrap();
    drop(j);
    let (at, last) = *event_offsets(&mut f, config).last().unwrap();
    assert_eq!(last, id.0, "the real record is the last");
    let at = at as usize + 8 + 16 + 5;
    assert_eq!(f.data[at], 0x42);
    f.data[at] &= !0x02;
    bitflip(&mut f, "real rot");
}

/// I8: a record moved to another offset (CRC recomputed there) is refused.
#[test]
#[cfg(feature = "auth")]
fn i8_auth_moved_record_is_refused() {
    let config = cfg(Mode::Auth);
    let mut flash = populated(config);
    let (from, _) = event_offsets(&mut flash, config)[1];
    let st = Journal::open(&mut flash, config).unwrap().status();
    let to = (st.current_seq.unwrap() % GEO.sector_count) * GEO.sector_size + st.current_used;
    let ext = config.extent(24) as usize;
    let rec = flash.data[from as usize..from as usize + ext].to_vec();
    flash.data[to as usize..to as usize + ext].copy_from_slice(&rec);
    fix_crc(&mut flash, to, TAG_LEN);
    assert_forged(&mut flash, config, "moved");
}

/// I8: two records swapped (CRCs recomputed for their new places) are refused.
#[test]
#[cfg(feature = "auth")]
fn i8_auth_reordered_records_are_refused() {
    let config = cfg(Mode::Auth);
    let mut flash = populated(config);
    let offs = event_offsets(&mut flash, config);
    let ext = config.extent(24) as usize;
    let (a, b) = offs
        .windows(2)
        .map(|w| (w[0].0 as usize, w[1].0 as usize))
        .find(|(a, b)| b - a == ext)
        .expect("two adjacent records of one size");
    let (ra, rb) = (
        flash.data[a..a + ext].to_vec(),
        flash.data[b..b + ext].to_vec(),
    );
    flash.data[a..a + ext].copy_from_slice(&rb);
    flash.data[b..b + ext].copy_from_slice(&ra);
    fix_crc(&mut flash, a as u32, TAG_LEN);
    fix_crc(&mut flash, b as u32, TAG_LEN);
    assert_forged(&mut flash, config, "reordered");
}

/// I8: a sector transplanted from another device (another key), or the image of
/// another region, is refused.
#[test]
#[cfg(feature = "auth")]
fn i8_auth_transplanted_sector_and_other_region_are_refused() {
    let config = cfg(Mode::Auth);
    let mut a = populated(config);
    let other_key = config.with_auth(Auth::new([0x77; 32], REGION)).unwrap();
    let b = populated(other_key);
    let ss = GEO.sector_size as usize;
    a.data[..ss].copy_from_slice(&b.data[..ss]);
    assert_forged(&mut a, config, "transplanted sector");
    let mut a = populated(config);
    let other_region = config
        .with_auth(Auth::new(KEY, *b"test-region-0002"))
        .unwrap();
    assert_forged(&mut a, other_region, "other region");
}

/// I8: a plain journal does not open as authenticated, nor the reverse (no
/// downgrade by rewriting headers as plain).
#[test]
#[cfg(feature = "auth")]
fn i8_auth_and_plain_do_not_mix() {
    let plain = Config::<8>::try_new(auth_geo(), 60).unwrap();
    let auth = cfg(Mode::Auth);
    let mut flash = populated(plain);
    assert!(matches!(
        Journal::open(&mut flash, auth),
        Err(OpenError::AuthMismatch { .. })
    ));
    let mut flash = populated(auth);
    assert!(matches!(
        Journal::open(&mut flash, plain),
        Err(OpenError::AuthMismatch { .. })
    ));
}

/// I8: sector headers that say "authenticated" do not open as plain, in a
/// build with the feature `auth` or without it (a build without it cannot read
/// an authenticated journal and must say so, not misread it), whatever their
/// tags. The flag is rewritten with a right header CRC, as an attacker could.
#[test]
fn i8_headers_marked_authenticated_do_not_open_plain() {
    let plain = Config::<8>::try_new(auth_geo(), 60).unwrap();
    let mut flash = TestFlash::new(auth_geo());
    let mut j = Journal::open(&mut flash, plain).unwrap();
    for i in 0..60u8 {
        let id = j.push(&[i; 40]).unwrap();
        if i % 4 != 0 {
            j.ack(id).unwrap();
        }
        if j.pending_count() == 6 {
            let oldest = j.pending().next().unwrap().0;
            j.ack(oldest).unwrap();
        }
    }
    drop(j);
    // The valid headers and where they are, rewritten through the format's own
    // encoder with the flag set (and so a right header CRC).
    let g = auth_geo();
    let len = SECTOR_HEADER_LEN as usize;
    let headers: StdVec<(usize, SectorHeader)> = (0..g.sector_count as usize)
        .map(|idx| idx * g.sector_size as usize)
        .filter_map(|at| {
            let b = flash.data[at..at + len].try_into().unwrap();
            match decode_sector_header(&g, b) {
                HeaderState::Valid(h) => Some((at, h)),
                _ => None,
            }
        })
        .collect();
    assert!(headers.len() > 2, "the journal wrote {} sector headers", headers.len());
    // Every header marked, or only one (the oldest, the newest, one between).
    let mut marks: StdVec<StdVec<(usize, SectorHeader)>> =
        headers.iter().map(|&h| std::vec![h]).collect();
    marks.push(headers.clone());
    for marked in marks {
        let mut image = flash.clone();
        for &(at, h) in &marked {
            let authenticated = SectorHeader {
                authenticated: true,
                ..h
            };
            image.data[at..at + len].copy_from_slice(&encode_sector_header(&g, authenticated));
        }
        let before = image.data.clone();
        let got = Journal::open(&mut image, plain).map(|j| j.status());
        assert!(
            matches!(got, Err(OpenError::AuthMismatch { .. })),
            "headers {marked:?} marked: expected AuthMismatch, got {got:?}"
        );
        assert_eq!(image.data, before, "open wrote nothing");
    }
}

/// Rollback: an older image of the region, or an erased one, is refused when a
/// monotonic counter vouches for a newer state; the current one opens.
#[test]
fn rollback_to_an_older_image_is_detected_with_a_counter() {
    for &mode in MODES {
        rollback_to_an_older_image(cfg(mode));
    }
}

fn rollback_to_an_older_image(config: Config<8>) {
    let mut flash = TestFlash::new(config.geometry());
    let mut counter = RamCounter::default();
    let mut j = Journal::open_with_counter(&mut flash, config, &mut counter).unwrap();
    let a = j.push(&[1; 20]).unwrap();
    drop(j);
    let old = flash.data.clone();
    let mut j = Journal::open_with_counter(&mut flash, config, &mut counter).unwrap();
    j.ack(a).unwrap();
    let b = j.push(&[2; 20]).unwrap();
    drop(j);
    assert!(counter.0 > 0);
    // The current image opens.
    let mut j = Journal::open_with_counter(&mut flash, config, &mut counter).unwrap();
    assert_eq!(pending_of_counted(&mut j), StdVec::from([b.0]));
    drop(j);
    // The older one (where `a` was pending) is refused, and so is an erased region.
    let current = core::mem::replace(&mut flash.data, old);
    assert!(matches!(
        Journal::open_with_counter(&mut flash, config, &mut counter),
        Err(OpenError::RolledBack { .. })
    ));
    flash.data.fill(0xFF);
    assert!(matches!(
        Journal::open_with_counter(&mut flash, config, &mut counter),
        Err(OpenError::RolledBack { .. })
    ));
    // Without a counter the older image opens: nothing on the medium can tell.
    flash.data = current;
    let saved = counter.0;
    assert!(Journal::open(&mut flash, config).is_ok());
    assert_eq!(counter.0, saved);
}

/// Rollback: a crash between a durable operation and the counter's advance leaves
/// the image ahead of the counter, which opens.
#[test]
fn image_ahead_of_the_counter_opens() {
    for &mode in MODES {
        image_ahead_of_the_counter(cfg(mode));
    }
}

fn image_ahead_of_the_counter(config: Config<8>) {
    let mut flash = TestFlash::new(config.geometry());
    let mut j = Journal::open(&mut flash, config).unwrap();
    j.push(&[1; 20]).unwrap();
    let v = j.version();
    drop(j);
    let mut behind = RamCounter(v - 1);
    let mut j = Journal::open_with_counter(&mut flash, config, &mut behind).unwrap();
    assert_eq!(
        pending_of(&mut Journal::open(&mut flash_clone(&j), config).unwrap()).len(),
        1
    );
    j.push(&[2; 20]).unwrap();
    assert!(behind.0 > v, "every durable operation advances the counter");
}

fn flash_clone<C: MonotonicCounter>(j: &Journal<&mut TestFlash, 8, C>) -> TestFlash {
    (**j.medium()).clone()
}

fn pending_of_counted<C: MonotonicCounter>(j: &mut Journal<&mut TestFlash, 8, C>) -> StdVec<u64> {
    j.pending().map(|(id, _)| id.0).collect()
}
