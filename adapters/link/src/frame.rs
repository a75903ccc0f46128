//! Frames: a postcard message and a CRC-32C, COBS-encoded, ended by a `0x00`.
//!
//! ```text
//! on the line:   COBS( payload ‖ CRC-32C(domain ‖ payload) as 4 bytes LE ) ‖ 0x00
//! payload:       postcard message (variant index varint, fields)  [‖ event bytes]
//! ```
//!
//! The CRC covers a direction domain before the payload (`monitor-events link d2h`
//! or `… h2d`): a frame of another protocol that happens to use postcard, COBS and
//! CRC-32C too, or our own frames echoed back by a loopback, fail the check.
//!
//! Frames are written with postcard's own flavors: the [`Cobs`] flavor under the
//! [`CrcModifier`] flavor, the same machinery as `postcard::to_slice_cobs` and
//! `to_slice_crc32` stacked, in one pass. They are read by [`FrameReader`], not by
//! `postcard::accumulator::CobsAccumulator`: the CRC must be checked over the raw
//! payload before anything is deserialized (the accumulator deserializes at once),
//! and after an oversize frame the accumulator starts a new frame in the middle of
//! the old one; the reader drops every byte up to the next delimiter instead, so
//! one oversize frame costs one frame and is counted once.

use postcard::ser_flavors::{crc::CrcModifier, Cobs, Slice};
use serde::Serialize;

use crate::Counters;

/// CRC-32C (Castagnoli, the iSCSI polynomial), as the journal uses.
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Bytes of the CRC at the end of each payload.
pub const CRC_LEN: usize = 4;

/// Which way a frame goes: each direction has its own CRC domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Device to host: `Hello`, `Event`, `AckResult`.
    DeviceToHost,
    /// Host to device: `Hello`, `Ack`, `AckBatch`, `Credit`, `Resume`.
    HostToDevice,
}

impl Direction {
    /// The bytes the CRC covers before the payload.
    pub const fn domain(self) -> &'static [u8] {
        match self {
            Direction::DeviceToHost => b"monitor-events link d2h",
            Direction::HostToDevice => b"monitor-events link h2d",
        }
    }
}

/// Length on the line of a frame whose payload (CRC excluded) is `payload` bytes:
/// the worst case of COBS plus the delimiter.
pub const fn frame_len_for(payload: usize) -> usize {
    cobs::max_encoding_length(payload + CRC_LEN) + 1
}

/// Serializes `msg` (and `tail`, raw, after it) as one frame into `out`; returns its
/// length, delimiter included, or `None` if `out` is too short (nothing useful is
/// left in `out` then).
pub(crate) fn encode<T: Serialize>(
    dir: Direction,
    msg: &T,
    tail: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let mut digest = CRC.digest();
    digest.update(dir.domain());
    let cobs = Cobs::try_new(Slice::new(out)).ok()?;
    let flavor = CrcModifier::new(cobs, digest);
    postcard::serialize_with_flavor(&(msg, Tail(tail)), flavor)
        .ok()
        .map(|f: &mut [u8]| f.len())
}

/// Writes `payload` as one frame of direction `dir` (COBS, CRC, delimiter) into
/// `out`; its length, or `None` if `out` is too short. For tests, fuzzing and
/// other implementations: the ends build their frames from messages.
pub fn encode_payload(dir: Direction, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    encode(dir, &(), payload, out)
}

/// Raw bytes serialized as a tuple of `u8`: postcard writes them as they are,
/// without a length (the frame's end delimits them).
struct Tail<'a>(&'a [u8]);

impl Serialize for Tail<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dropped {
    /// Longer than the reader's buffer before its delimiter.
    Oversize,
    /// Not valid COBS, shorter than a CRC, or the CRC does not match.
    Damaged,
}

/// Collects bytes from the line into frames of at most `N` encoded bytes (the
/// delimiter excluded), checks each one's COBS and CRC, and hands out the payload.
/// No heap; never panics on any input (invariant I9).
#[derive(Clone, Debug)]
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// The frame being collected is over `N` bytes: drop up to the delimiter.
    skipping: bool,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        FrameReader {
            buf: [0; N],
            len: 0,
            skipping: false,
        }
    }

    /// Forgets a partly collected frame (after the line was reset).
    pub fn clear(&mut self) {
        self.len = 0;
        self.skipping = false;
    }

    /// Consumes `bytes` up to and including the first delimiter that ends a
    /// non-empty frame. Returns how many bytes it consumed and, if a frame ended,
    /// its checked payload (CRC removed) or why it was dropped; the drop is
    /// counted in `counters`. Empty frames (two delimiters in a row) are idle
    /// filler and are skipped silently.
    pub fn feed<'a>(
        &'a mut self,
        dir: Direction,
        bytes: &[u8],
        counters: &mut Counters,
    ) -> (usize, Option<Result<&'a [u8], Dropped>>) {
        for (i, &b) in bytes.iter().enumerate() {
            if b != 0 {
                if self.skipping {
                    continue;
                }
                if self.len < N {
                    self.buf[self.len] = b;
                    self.len += 1;
                } else {
                    self.skipping = true;
                }
                continue;
            }
            if self.len == 0 && !self.skipping {
                continue;
            }
            let consumed = i + 1;
            counters.bytes_in += consumed as u64;
            if self.skipping {
                self.clear();
                counters.oversize += 1;
                return (consumed, Some(Err(Dropped::Oversize)));
            }
            let len = core::mem::replace(&mut self.len, 0);
            let result = check(dir, &mut self.buf[..len]);
            if result.is_err() {
                counters.damaged += 1;
            }
            return (consumed, Some(result));
        }
        counters.bytes_in += bytes.len() as u64;
        (bytes.len(), None)
    }
}

/// Decodes the COBS frame `raw` (no delimiter) in place and checks its CRC.
fn check(dir: Direction, raw: &mut [u8]) -> Result<&[u8], Dropped> {
    let n = cobs::decode_in_place(raw).map_err(|_| Dropped::Damaged)?;
    let decoded = raw.get(..n).ok_or(Dropped::Damaged)?;
    let body_len = n.checked_sub(CRC_LEN).ok_or(Dropped::Damaged)?;
    let (body, crc) = decoded.split_at(body_len);
    let mut digest = CRC.digest();
    digest.update(dir.domain());
    digest.update(body);
    if digest.finalize().to_le_bytes() != crc {
        return Err(Dropped::Damaged);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dir: Direction, msg: &(u32, u64), tail: &[u8]) -> std::vec::Vec<u8> {
        let mut out = [0u8; 600];
        let n = encode(dir, msg, tail, &mut out).unwrap();
        out[..n].to_vec()
    }

    /// I9: a frame round-trips; its CRC binds it to its direction; every single
    /// bit flip of it is dropped as damaged (CRC-32C catches them all) and counted.
    #[test]
    fn i9_round_trip_direction_and_bit_flips() {
        let f = frame(Direction::DeviceToHost, &(1, 300), &[0, 1, 2, 0, 255]);
        assert_eq!(*f.last().unwrap(), 0);
        assert!(!f[..f.len() - 1].contains(&0));
        let mut r = FrameReader::<600>::new();
        let mut c = Counters::default();
        let (n, got) = r.feed(Direction::DeviceToHost, &f, &mut c);
        assert_eq!(n, f.len());
        assert_eq!(got, Some(Ok(&[1u8, 0xac, 0x02, 0, 1, 2, 0, 255][..])));
        let (_, got) = r.feed(Direction::HostToDevice, &f, &mut c);
        assert_eq!(got, Some(Err(Dropped::Damaged)), "I9: wrong direction");
        for bit in 0..(f.len() - 1) * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            let mut r = FrameReader::<600>::new();
            let mut c = Counters::default();
            let mut rest = &g[..];
            while !rest.is_empty() {
                let (n, got) = r.feed(Direction::DeviceToHost, rest, &mut c);
                assert!(
                    !matches!(got, Some(Ok(_))),
                    "I9: flip of bit {bit} accepted"
                );
                rest = &rest[n..];
            }
        }
    }

    /// I9: an oversize frame is dropped whole (its tail does not become a frame)
    /// and counted once; the next frame reads.
    #[test]
    fn i9_oversize_dropped_whole() {
        let big = frame(Direction::HostToDevice, &(2, 7), &[9u8; 200]);
        let small = frame(Direction::HostToDevice, &(3, 1), &[]);
        let mut line = big.clone();
        line.extend_from_slice(&small);
        let mut r = FrameReader::<64>::new();
        let mut c = Counters::default();
        let (n, got) = r.feed(Direction::HostToDevice, &line, &mut c);
        assert_eq!((n, got), (big.len(), Some(Err(Dropped::Oversize))));
        let (_, got) = r.feed(Direction::HostToDevice, &line[n..], &mut c);
        assert_eq!(got, Some(Ok(&[3u8, 1][..])));
        assert_eq!((c.oversize, c.damaged), (1, 0));
        assert_eq!(c.bytes_in, line.len() as u64);
    }

    /// The worst-case frame length bound holds for the longest payloads.
    #[test]
    fn frame_len_bound() {
        for len in [0usize, 1, 200, 249, 250, 251, 252, 253, 254, 500, 507, 508] {
            let tail = std::vec![0x55u8; len];
            let f = frame(Direction::DeviceToHost, &(0, 0), &tail);
            assert!(f.len() <= frame_len_for(len + 2), "payload {}", len + 2);
        }
    }
}
