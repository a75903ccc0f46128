//! The on-medium format, version 1.
//!
//! The region is a ring of `S` sectors. Sector `seq` (a `u32` that grows by one at
//! every rollover) always lives at index `seq % S`.
//!
//! # Sector header (first [`SECTOR_HEADER_LEN`] bytes, padded to the program unit)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 2 | magic | `b"ME"` |
//! | 2 | 1 | version | format version, `1`; a higher one fails `open` with `UnsupportedFormat` |
//! | 3 | 1 | flags | bit 0: authenticated journal (every record and header carries a tag); others 0 |
//! | 4 | 4 | seq | sequence number of this sector (u32 LE) |
//! | 8 | 8 | floor | the next event id when the sector was opened (u64 LE) |
//! | 16 | 2 | sector count | of the region (u16 LE) |
//! | 18 | 1 | log2 sector size | |
//! | 19 | 1 | log2 write size | |
//! | 20 | 4 | crc | CRC-32C of bytes 0..20 |
//! | 24 | 16 | tag | authenticated journal only: HMAC-SHA-256 (truncated) of bytes 0..24, see below |
//!
//! The header and its tag are programmed together. In an authenticated journal a
//! header whose tag fails while the rest of its sector is erased is what a cut
//! during that program leaves: the sector is free. Behind a record it is forged.
//!
//! # Record (aligned to the program unit, padded with `0xFF`)
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 4 | word0 | bits 0..12 `len` (body bytes), 12..16 `kind`, 16..24 ack byte, 24..32 `aux` (`0xFF` for kinds with a body) |
//! | 4 | 4 | crc | CRC-32C of `seq` (u32 LE) ‖ offset in sector (u32 LE) ‖ word0 with the ack byte set to `0xFF` ‖ tag ‖ body |
//! | 8 | 16 | tag | authenticated journal only (absent otherwise): HMAC-SHA-256, truncated, over `"monitor-events/1"` ‖ region ‖ `1` ‖ `seq` ‖ offset ‖ word0 with the ack byte `0xFF` ‖ body |
//! | 8 or 24 | len | body | |
//!
//! A sector header's tag is the same HMAC with `0` in place of `1`, offset 0, over
//! the header's 24 bytes. The key and the 16-byte region identity come from
//! [`Auth`](super::Auth).
//!
//! | kind | body | meaning |
//! |---|---|---|
//! | 1 `Event` | payload | a pushed event; its id is the sector's floor plus the number of `Event` records before it in the sector |
//! | 2 `Copy` | id (u64 LE) ‖ payload | an event copied forward by compaction, with its id |
//! | 3 `AckShort` | none | ack of id `next − value`, where `next` is the id the next `Event` here would get and `value` = `len` ‖ `aux` (20 bits) |
//! | 4 `AckLong` | id (u64 LE) | ack of any id |
//! | 5 `Retire` | none | sector `seq − value` (value as for `AckShort`) is retired: its live events have copies in newer sectors; it may be erased |
//!
//! A retirement writes the `Copy` records of the retired sector's pending events,
//! then its `Retire` record, into the newest sector. Newest sectors that hold only
//! `Copy` records (or none) are a retirement a cut stopped before its `Retire`
//! record: `open` gives them back to the free sectors (their events are still in
//! the sector being retired) and the next write erases them.
//!
//! The ack byte of `Event` and `Copy` records is `0xFF` while the event is pending;
//! on media that allow a second program of a unit, an ack clears it to `0x00` in
//! place. It is read by majority: five or more one bits mean pending, so a single
//! flipped bit never changes the answer. A record is bound to its sector and offset by
//! its CRC: moved or reordered records fail to check.
//!
//! # Telling a torn write from damage
//!
//! A power cut can only tear the last program of a sector, and a torn program can
//! only leave some intended `1 → 0` transitions undone. When a record fails its CRC,
//! `open` locates a single flipped bit exactly (the CRC syndrome for body bits, a
//! re-parse for header bits, the popcount for the CRC field):
//!
//! | failure | nothing programmed after it | verdict |
//! |---|---|---|
//! | one bit reads `0` that should be `1` | any | corrupted: a torn write cannot clear a bit it was not asked to |
//! | one bit reads `1` that should be `0` | yes | the record, with the bit corrected: the push may have returned |
//! | one bit reads `1` that should be `0` | no | corrupted |
//! | anything else | yes (within the record's claimed extent) | torn tail: dropped, the sector is sealed |
//! | anything else | no | corrupted |
//!
//! On a medium whose unsynced writes may land out of order
//! ([`Medium::writes_in_order`](crate::Medium::writes_in_order) false: a file),
//! what is programmed after the record may have been written after it, in the
//! same unsynced group, which a crash kept in part; and a byte lands whole or not
//! at all, so a crash leaves a byte as written or as it was (`0xFF`):
//!
//! | failure, with records programmed after it | verdict |
//! |---|---|
//! | one bit reads `0` that should be `1` | corrupted |
//! | one bit reads `1` that should be `0`, its byte reads `0xFF` | the record, with the bit corrected, and the records behind it: what was written, whether a crash kept that byte from landing or the bit rotted |
//! | one bit reads `1` that should be `0`, its byte reads anything else | corrupted: only rot leaves it |
//! | anything else | torn tail: dropped with everything behind it, the sector is sealed |
//!
//! With nothing programmed after it, the verdicts are those of the table above.
//!
//! The single-bit search tries one CRC syndrome per bit of the length a record
//! claims, so the bytes of a torn or weak write can match one by chance (about
//! once in 2^32 / L for L bits). In an authenticated journal, the last record
//! of a sector whose single-bit verdict is "the record, corrected" or "one bit
//! reads `0`" must then also carry the tag of the record as written (the bit set
//! back); if it does not, the match was chance and the record is a torn tail.

use crate::medium::Geometry;

/// Magic bytes at the start of every sector header.
pub const MAGIC: [u8; 2] = *b"ME";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the sector header before padding.
pub const SECTOR_HEADER_LEN: u32 = 24;
/// Bytes of a record header (word0 and CRC).
pub const RECORD_HEADER_LEN: u32 = 8;
/// Bytes of the authentication tag of records and sector headers in an
/// authenticated journal (HMAC-SHA-256, truncated).
pub const TAG_LEN: u32 = 16;
/// Largest value of the `len` field.
pub const MAX_LEN_FIELD: u32 = 0xFFF;
/// Largest value of the 20-bit `value` of `AckShort` and `Retire`.
pub const MAX_VALUE: u32 = 0xF_FFFF;

/// CRC-32C (Castagnoli): Hamming distance 6 up to 5243 bits, 4 beyond.
pub(crate) const CRC: crc::Crc<u32, CrcImpl> = crc::Crc::<u32, CrcImpl>::new(&crc::CRC_32_ISCSI);
/// With the feature `crc-table`, a byte at a time through a 1 KiB table; without
/// it, a bit at a time and no table. The same CRC values either way.
#[cfg(feature = "crc-table")]
pub(crate) type CrcImpl = crc::Table<1>;
#[cfg(not(feature = "crc-table"))]
pub(crate) type CrcImpl = crc::NoTable;
/// The reflected polynomial of CRC-32C, used to compute syndromes.
const POLY_REFLECTED: u32 = 0x82F6_3B78;

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// A pushed event, id implicit.
    Event = 1,
    /// An event copied forward, id explicit.
    Copy = 2,
    /// An ack of a recent id, no body.
    AckShort = 3,
    /// An ack of any id.
    AckLong = 4,
    /// A sector retired by compaction.
    Retire = 5,
}

impl Kind {
    pub(crate) fn from_bits(bits: u32) -> Option<Kind> {
        Some(match bits {
            1 => Kind::Event,
            2 => Kind::Copy,
            3 => Kind::AckShort,
            4 => Kind::AckLong,
            5 => Kind::Retire,
            _ => return None,
        })
    }

    /// Whether the record carries `len` body bytes (else `len` is part of a value).
    pub(crate) fn has_body(self) -> bool {
        matches!(self, Kind::Event | Kind::Copy | Kind::AckLong)
    }
}

/// `n` rounded up to a multiple of `unit`, a power of two (a write size: `Config`
/// checks it), with a mask: no division.
pub(crate) const fn round_up(n: u32, unit: u32) -> u32 {
    debug_assert!(unit.is_power_of_two());
    // `unit - 1` first: `n + unit` would overflow for an `n` the result still fits.
    (n + (unit - 1)) & !(unit - 1)
}

/// Word0 of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word0(pub u32);

impl Word0 {
    pub(crate) fn with_body(kind: Kind, len: u32) -> Word0 {
        Word0((len & MAX_LEN_FIELD) | (kind as u32) << 12 | 0xFF << 16 | 0xFF << 24)
    }
    pub(crate) fn with_value(kind: Kind, value: u32) -> Word0 {
        Word0((value & 0xFFF) | (kind as u32) << 12 | 0xFF << 16 | (value >> 12 & 0xFF) << 24)
    }
    pub(crate) fn len(self) -> u32 {
        self.0 & MAX_LEN_FIELD
    }
    pub(crate) fn kind_bits(self) -> u32 {
        self.0 >> 12 & 0xF
    }
    pub(crate) fn ack_byte(self) -> u8 {
        (self.0 >> 16) as u8
    }
    pub(crate) fn value(self) -> u32 {
        self.len() | (self.0 >> 24) << 12
    }
    /// Word0 as covered by the CRC: the ack byte reads `0xFF`.
    pub(crate) fn masked(self) -> u32 {
        self.0 | 0xFF << 16
    }
    /// Body length the record claims (0 for kinds without a body).
    #[inline(never)]
    pub(crate) fn body_len(self) -> u32 {
        match Kind::from_bits(self.kind_bits()) {
            Some(k) if !k.has_body() => 0,
            _ => self.len(),
        }
    }
}

/// Whether the ack byte says "acked" (majority of zero bits).
pub(crate) fn ack_byte_acked(byte: u8) -> bool {
    byte.count_ones() <= 4
}

/// Parsed sector header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SectorHeader {
    /// Sequence number of the sector.
    pub seq: u32,
    /// The next event id when the sector was opened.
    pub floor: u64,
    /// Whether the journal's records are authenticated (flags bit 0).
    pub authenticated: bool,
}

/// What the first bytes of a sector say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeaderState {
    /// Every header byte reads `0xFF`.
    Erased,
    /// A valid header of this region.
    Valid(SectorHeader),
    /// Magic and CRC are right but the version is one this build cannot read.
    Unsupported(u8),
    /// Magic and CRC are right but the region's geometry differs.
    ForeignGeometry,
    /// Anything else.
    Garbage {
        /// Whether the magic bytes were there.
        magic: bool,
    },
}

pub(crate) fn encode_sector_header(
    g: &Geometry,
    h: SectorHeader,
) -> [u8; SECTOR_HEADER_LEN as usize] {
    let mut b = [0u8; SECTOR_HEADER_LEN as usize];
    b[0..2].copy_from_slice(&MAGIC);
    b[2] = FORMAT_VERSION;
    b[3] = h.authenticated as u8;
    b[4..8].copy_from_slice(&h.seq.to_le_bytes());
    b[8..16].copy_from_slice(&h.floor.to_le_bytes());
    b[16..18].copy_from_slice(&(g.sector_count as u16).to_le_bytes());
    b[18] = g.sector_size.trailing_zeros() as u8;
    b[19] = g.write_size.trailing_zeros() as u8;
    let crc = CRC.checksum(&b[0..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the first [`SECTOR_HEADER_LEN`] bytes of a sector of a region of
/// geometry `g`.
pub fn decode_sector_header(g: &Geometry, b: &[u8; SECTOR_HEADER_LEN as usize]) -> HeaderState {
    if b.iter().all(|&x| x == 0xFF) {
        return HeaderState::Erased;
    }
    let magic = b[0..2] == MAGIC;
    let crc = u32::from_le_bytes([b[20], b[21], b[22], b[23]]);
    if !magic || CRC.checksum(&b[0..20]) != crc {
        return HeaderState::Garbage { magic };
    }
    if b[2] != FORMAT_VERSION || b[3] & !1 != 0 {
        return HeaderState::Unsupported(b[2]);
    }
    if u16::from_le_bytes([b[16], b[17]]) as u32 != g.sector_count
        || b[18] as u32 != g.sector_size.trailing_zeros()
        || b[19] as u32 != g.write_size.trailing_zeros()
    {
        return HeaderState::ForeignGeometry;
    }
    HeaderState::Valid(SectorHeader {
        seq: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        floor: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        authenticated: b[3] & 1 != 0,
    })
}

/// What a tag authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Tagged {
    SectorHeader = 0,
    Record = 1,
}

/// A running HMAC-SHA-256 over `"monitor-events/1" ‖ region ‖ what ‖ seq ‖ offset ‖ ...`:
/// the inner hash as it runs, and the outer one's state after its key block,
/// which `finalize` resumes (RFC 2104). Not `HmacEngine`, which carries both
/// engines with their 64 B buffers all along: this is 72 B smaller, on every
/// stack frame that holds one.
#[cfg(feature = "auth")]
pub(crate) struct Tagger {
    inner: bitcoin_hashes::sha256::HashEngine,
    outer: [u8; 32],
}

/// Without the feature `auth` a tagger is never made (no `Auth` exists), so no HMAC
/// code is linked: every method is an empty match on the uninhabited field.
#[cfg(not(feature = "auth"))]
pub(crate) struct Tagger(core::convert::Infallible);

#[cfg(not(feature = "auth"))]
impl Tagger {
    pub(crate) fn new(auth: &super::config::Auth, _what: Tagged, _seq: u32, _offset: u32) -> Self {
        let _ = &auth.region;
        match auth.never {}
    }

    pub(crate) fn update(&mut self, _bytes: &[u8]) {
        match self.0 {}
    }

    pub(crate) fn finalize(self) -> [u8; TAG_LEN as usize] {
        match self.0 {}
    }
}

#[cfg(feature = "auth")]
impl Tagger {
    pub(crate) fn new(auth: &super::config::Auth, what: Tagged, seq: u32, offset: u32) -> Self {
        use bitcoin_hashes::HashEngine;
        // The key's pad blocks were hashed once, by `Auth::new`.
        let mut inner = resume(&auth.inner);
        inner.input(b"monitor-events/1");
        inner.input(&auth.region);
        inner.input(&[what as u8]);
        inner.input(&seq.to_le_bytes());
        inner.input(&offset.to_le_bytes());
        Tagger {
            inner,
            outer: auth.outer,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        use bitcoin_hashes::HashEngine;
        self.inner.input(bytes);
    }

    pub(crate) fn finalize(self) -> [u8; TAG_LEN as usize] {
        use bitcoin_hashes::HashEngine;
        let inner = bitcoin_hashes::sha256::Hash::from_engine(self.inner);
        let mut outer = resume(&self.outer);
        outer.input(inner.as_byte_array());
        let full = bitcoin_hashes::sha256::Hash::from_engine(outer).to_byte_array();
        let mut t = [0u8; TAG_LEN as usize];
        t.copy_from_slice(&full[..TAG_LEN as usize]);
        t
    }
}

/// A SHA-256 engine resumed from the state after one 64 B block.
#[cfg(feature = "auth")]
fn resume(state: &[u8; 32]) -> bitcoin_hashes::sha256::HashEngine {
    bitcoin_hashes::sha256::Midstate::new(*state, 64).to_engine()
}

/// The record layout, in one place for the writer and every reader.
///
/// A record is `head ‖ body` where `head` = word0 (4 B LE) ‖ crc (4 B LE) ‖ tag
/// (16 B, authenticated journals only) and `body` is the kind's body (for `Copy`
/// and `AckLong` it starts with the 8 B id), padded with `0xFF` to the program
/// unit. [`RecordCrc`] and [`record_tagger`] say what the checks cover;
/// [`encode_record_head`] lays the head out.
pub(crate) struct RecordCrc(crc::Digest<'static, u32, CrcImpl>);

impl RecordCrc {
    /// Starts the CRC of the record at `offset` in sector `seq` with header word
    /// `w` and tag `tag` (empty when plain): it covers `seq` ‖ `offset` ‖ word0
    /// with the ack byte `0xFF` ‖ tag, then the body fed with [`update`](Self::update).
    pub(crate) fn new(seq: u32, offset: u32, w: Word0, tag: &[u8]) -> Self {
        let mut d = CRC.digest();
        d.update(&crc_prefix(seq, offset));
        d.update(&w.masked().to_le_bytes());
        d.update(tag);
        RecordCrc(d)
    }

    /// Feeds body bytes.
    pub(crate) fn update(&mut self, body: &[u8]) {
        self.0.update(body);
    }

    /// The CRC.
    pub(crate) fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// Starts the tag of the record at `offset` in sector `seq` with header word `w`:
/// HMAC-SHA-256 over `"monitor-events/1"` ‖ region ‖ `1` ‖ `seq` ‖ `offset` ‖
/// word0 with the ack byte `0xFF`, then the body fed with `update`.
// Without `auth` never called: `Tagger::new` cannot return.
#[cfg_attr(not(feature = "auth"), allow(unused, unreachable_code))]
pub(crate) fn record_tagger(auth: &super::config::Auth, seq: u32, offset: u32, w: Word0) -> Tagger {
    let mut t = Tagger::new(auth, Tagged::Record, seq, offset);
    t.update(&w.masked().to_le_bytes());
    t
}

/// The tag of a sector header: the same HMAC with `0`, offset 0, over its 24 B.
// Without `auth` never called: `Tagger::new` cannot return.
#[cfg_attr(not(feature = "auth"), allow(unused, unreachable_code))]
pub(crate) fn sector_tag(
    auth: &super::config::Auth,
    seq: u32,
    header: &[u8; SECTOR_HEADER_LEN as usize],
) -> [u8; TAG_LEN as usize] {
    let mut t = Tagger::new(auth, Tagged::SectorHeader, seq, 0);
    t.update(header);
    t.finalize()
}

/// Bytes of the longest record head (word0, crc, tag).
pub(crate) const MAX_HEAD_LEN: usize = (RECORD_HEADER_LEN + TAG_LEN) as usize;

/// Lays out a record head: word0 ‖ crc ‖ tag. Returns the buffer and its length.
pub(crate) fn encode_record_head(w: Word0, crc: u32, tag: &[u8]) -> ([u8; MAX_HEAD_LEN], usize) {
    let mut head = [0xFFu8; MAX_HEAD_LEN];
    head[0..4].copy_from_slice(&w.0.to_le_bytes());
    head[4..8].copy_from_slice(&crc.to_le_bytes());
    head[8..8 + tag.len()].copy_from_slice(tag);
    (head, 8 + tag.len())
}

/// Reads word0 and the stored crc from the first 8 bytes of a record.
pub(crate) fn decode_record_head(b: &[u8; RECORD_HEADER_LEN as usize]) -> (Word0, u32) {
    (
        Word0(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// The CRC prefix that binds a record to its place.
pub(crate) fn crc_prefix(seq: u32, offset_in_sector: u32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[0..4].copy_from_slice(&seq.to_le_bytes());
    p[4..8].copy_from_slice(&offset_in_sector.to_le_bytes());
    p
}

/// One step of the reflected CRC register over a zero bit.
const fn crc_step(c: u32) -> u32 {
    if c & 1 != 0 {
        (c >> 1) ^ POLY_REFLECTED
    } else {
        c >> 1
    }
}

/// Finds the single bit whose flip explains `syndrome` (= stored CRC xor computed
/// CRC) in a CRC-32C message of `total_bits` bits, searching bit positions
/// `first..total_bits` (transmission order: byte by byte, least significant bit
/// first). Returns the bit position.
pub(crate) fn locate_single_bit(syndrome: u32, total_bits: u32, first: u32) -> Option<u32> {
    if syndrome == 0 || first >= total_bits {
        return None;
    }
    // The syndrome of a lone bit at position j is step^(n-1-j)(POLY): walk from the
    // last bit backwards.
    let mut d = POLY_REFLECTED;
    let mut j = total_bits - 1;
    loop {
        if d == syndrome {
            return Some(j);
        }
        if j == first {
            return None;
        }
        d = crc_step(d);
        j -= 1;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// I6: a record's extent is its length rounded up to the write size; the mask
    /// gives the rounded division's result for every write size `Config` accepts.
    #[test]
    fn i6_round_up_by_mask_is_the_rounded_division() {
        for unit in [1u32, 2, 4, 8, 16, 32] {
            for n in (0..=4096).chain(u32::MAX - 64..=u32::MAX - 31) {
                assert_eq!(round_up(n, unit), n.div_ceil(unit) * unit, "{n} by {unit}");
            }
        }
    }

    /// Format version 1, one record per kind: event `abc` at offset 24 of sector 7;
    /// copy of id 0x0102 `xyz` at 36; ack of `next − 2` at 56; ack of id 5 at 64;
    /// retire of sector 6 at 80; event `abc` at 40, authenticated (key `0x11` × 32,
    /// region `golden region 16`). 4 B program unit.
    const GOLDEN_RECORDS: [&[u8]; 6] = [
        // event
        &[
            0x03, 0x10, 0xff, 0xff, 0x09, 0xd6, 0xa9, 0x37, 0x61, 0x62, 0x63, 0xff,
        ],
        // copy
        &[
            0x0b, 0x20, 0xff, 0xff, 0x4d, 0x4a, 0x6f, 0x81, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x78, 0x79, 0x7a, 0xff,
        ],
        // ack short
        &[0x02, 0x30, 0xff, 0x00, 0xa6, 0x70, 0x1a, 0xfb],
        // ack long
        &[
            0x08, 0x40, 0xff, 0xff, 0xe1, 0x9b, 0x5d, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00,
        ],
        // retire
        &[0x01, 0x50, 0xff, 0x00, 0x23, 0x28, 0x22, 0xea],
        // event, authenticated
        &[
            0x03, 0x10, 0xff, 0xff, 0x62, 0x0b, 0xc8, 0x71, 0x2b, 0xcd, 0x31, 0x0f, 0x60, 0x15,
            0x07, 0x0d, 0x36, 0xb0, 0x9a, 0x9a, 0x96, 0x78, 0xd7, 0xba, 0x61, 0x62, 0x63, 0xff,
        ],
    ];

    fn geo() -> Geometry {
        Geometry {
            sector_size: 4096,
            sector_count: 16,
            write_size: 4,
            multiwrite: true,
        }
    }

    /// I8: the syndrome search finds exactly the flipped bit, checked against brute force.
    #[test]
    fn i8_syndrome_locates_every_single_bit_flip() {
        let msg: [u8; 37] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let good = CRC.checksum(&msg);
        let bits = msg.len() as u32 * 8;
        for j in 0..bits {
            let mut m = msg;
            m[(j / 8) as usize] ^= 1 << (j % 8);
            let syn = CRC.checksum(&m) ^ good;
            assert_eq!(locate_single_bit(syn, bits, 0), Some(j), "bit {j}");
            // Restricted search excludes earlier positions.
            if j > 0 {
                assert_eq!(locate_single_bit(syn, bits, j), Some(j));
            }
            if j < bits - 1 {
                assert_eq!(locate_single_bit(syn, bits, j + 1), None);
            }
        }
        assert_eq!(locate_single_bit(0, bits, 0), None);
    }

    /// Golden vector pinning the sector header of format version 1.
    #[test]
    fn golden_sector_header_v1() {
        let b = encode_sector_header(
            &geo(),
            SectorHeader {
                seq: 7,
                floor: 0x0102_0304_0506,
                authenticated: false,
            },
        );
        let expected_prefix: [u8; 20] = [
            b'M', b'E', 1, 0, 7, 0, 0, 0, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 16, 0, 12, 2,
        ];
        assert_eq!(&b[..20], &expected_prefix);
        assert_eq!(
            u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
            CRC.checksum(&expected_prefix)
        );
        assert_eq!(
            CRC.checksum(b"123456789"),
            0xE306_9283,
            "CRC-32C check value"
        );
        assert_eq!(
            decode_sector_header(&geo(), &b),
            HeaderState::Valid(SectorHeader {
                seq: 7,
                floor: 0x0102_0304_0506,
                authenticated: false,
            })
        );
    }

    /// I8: a newer version is reported as such, a different geometry as foreign.
    #[test]
    fn i8_sector_header_rejects_newer_version_and_other_geometry() {
        let mut b = encode_sector_header(
            &geo(),
            SectorHeader {
                seq: 1,
                floor: 0,
                authenticated: false,
            },
        );
        b[2] = 2;
        let crc = CRC.checksum(&b[0..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_sector_header(&geo(), &b),
            HeaderState::Unsupported(2)
        );
        let other = Geometry {
            sector_count: 8,
            ..geo()
        };
        let b = encode_sector_header(
            &geo(),
            SectorHeader {
                seq: 1,
                floor: 0,
                authenticated: false,
            },
        );
        assert_eq!(
            decode_sector_header(&other, &b),
            HeaderState::ForeignGeometry
        );
        assert_eq!(
            decode_sector_header(&geo(), &[0xFF; 24]),
            HeaderState::Erased
        );
    }

    /// Builds a whole record as the layout says (head, body, `0xFF` padding).
    pub(crate) fn build_record(
        seq: u32,
        offset: u32,
        w: Word0,
        body: &[u8],
        auth: Option<&crate::journal::Auth>,
        unit: usize,
    ) -> std::vec::Vec<u8> {
        // Without the feature `auth` no `Auth` exists and the closure is dead.
        #[cfg_attr(not(feature = "auth"), allow(unused_mut, unused_variables))]
        let tag = auth.map(|a| {
            let mut t = record_tagger(a, seq, offset, w);
            t.update(body);
            t.finalize()
        });
        let tag: &[u8] = tag.as_ref().map_or(&[], |t| &t[..]);
        let mut d = RecordCrc::new(seq, offset, w, tag);
        d.update(body);
        let (head, n) = encode_record_head(w, d.finish(), tag);
        let mut out = head[..n].to_vec();
        out.extend_from_slice(body);
        while out.len() % unit != 0 {
            out.push(0xFF);
        }
        out
    }

    /// The golden records: one per kind, plain and authenticated, pinned byte for
    /// byte (format version 1).
    /// Without the feature `auth`, the authenticated record is left out.
    pub(crate) fn golden_records() -> std::vec::Vec<(&'static str, std::vec::Vec<u8>)> {
        let mut copy = 0x0102_u64.to_le_bytes().to_vec();
        copy.extend_from_slice(b"xyz");
        std::vec![
            (
                "event",
                build_record(7, 24, Word0::with_body(Kind::Event, 3), b"abc", None, 4),
            ),
            (
                "copy",
                build_record(7, 36, Word0::with_body(Kind::Copy, 11), &copy, None, 4),
            ),
            (
                "ack short",
                build_record(7, 56, Word0::with_value(Kind::AckShort, 2), &[], None, 4),
            ),
            (
                "ack long",
                build_record(
                    7,
                    64,
                    Word0::with_body(Kind::AckLong, 8),
                    &5u64.to_le_bytes(),
                    None,
                    4,
                ),
            ),
            (
                "retire",
                build_record(7, 80, Word0::with_value(Kind::Retire, 1), &[], None, 4),
            ),
            #[cfg(feature = "auth")]
            (
                "event, authenticated",
                build_record(
                    7,
                    40,
                    Word0::with_body(Kind::Event, 3),
                    b"abc",
                    Some(&crate::journal::Auth::new([0x11; 32], *b"golden region 16")),
                    4,
                ),
            ),
        ]
    }

    /// Golden vectors pinning every record kind of format version 1.
    #[test]
    fn golden_records_v1() {
        let expected: [&[u8]; 6] = GOLDEN_RECORDS;
        let got = golden_records();
        if std::env::var("PRINT_GOLDEN").is_ok() {
            for (what, bytes) in &got {
                std::println!("{what}: {bytes:#04x?}");
            }
        }
        assert_eq!(got.len(), if cfg!(feature = "auth") { 6 } else { 5 });
        for ((what, got), want) in got.iter().zip(expected) {
            assert_eq!(&got[..], want, "{what}");
        }
        // The CRC input, spelled out once more without the layout's helpers.
        let input = [
            7, 0, 0, 0, 24, 0, 0, 0, 0x03, 0x10, 0xFF, 0xFF, b'a', b'b', b'c',
        ];
        assert_eq!(
            CRC.checksum(&input).to_le_bytes(),
            GOLDEN_RECORDS[0][4..8],
            "event crc"
        );
    }

    #[cfg(feature = "auth")]
    proptest::proptest! {
        /// I8: a tag from the pad states `Auth` keeps is HMAC-SHA-256 under the
        /// key itself (bitcoin_hashes' own `HmacEngine::new`), for any key, region,
        /// place and content, fed in any split.
        #[test]
        fn i8_tags_from_pad_states_are_hmac_under_the_key(
            key in proptest::array::uniform32(proptest::num::u8::ANY),
            region in proptest::array::uniform16(proptest::num::u8::ANY),
            seq in proptest::num::u32::ANY,
            offset in proptest::num::u32::ANY,
            header in proptest::bool::ANY,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            split in 0usize..300,
        ) {
            use bitcoin_hashes::HashEngine as _;
            let auth = super::super::config::Auth::new(key, region);
            let what = if header { Tagged::SectorHeader } else { Tagged::Record };
            let mut t = Tagger::new(&auth, what, seq, offset);
            let split = split.min(body.len());
            t.update(&body[..split]);
            t.update(&body[split..]);
            let mut e = bitcoin_hashes::hmac::HmacEngine::<bitcoin_hashes::sha256::HashEngine>::new(&key);
            e.input(b"monitor-events/1");
            e.input(&region);
            e.input(&[what as u8]);
            e.input(&seq.to_le_bytes());
            e.input(&offset.to_le_bytes());
            e.input(&body);
            let want = bitcoin_hashes::Hash::to_byte_array(e.finalize());
            proptest::prop_assert_eq!(&t.finalize()[..], &want[..TAG_LEN as usize]);
        }
    }

    #[test]
    fn word0_fields_round_trip() {
        let w = Word0::with_body(Kind::Copy, 0x123);
        assert_eq!(w.len(), 0x123);
        assert_eq!(Kind::from_bits(w.kind_bits()), Some(Kind::Copy));
        assert_eq!(w.ack_byte(), 0xFF);
        let v = Word0::with_value(Kind::AckShort, 0xABCDE);
        assert_eq!(v.value(), 0xABCDE);
        assert_eq!(v.body_len(), 0);
        assert!(
            ack_byte_acked(0x00)
                && ack_byte_acked(0x0F)
                && !ack_byte_acked(0x1F)
                && !ack_byte_acked(0xFE)
        );
    }
}
