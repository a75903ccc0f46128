//! Reading a flash image or a store file for `inspect` and `verify`.
//!
//! A raw flash dump and a `monitor-events-file` store file have the same format:
//! the journal's sectors back to back. The geometry comes from the first sector
//! header found (bytes 16..20 hold the sector count, log2 of the sector size and
//! log2 of the program unit), or from `--sector-size`, `--sectors` and
//! `--write-size`. The image is opened through [`ImageMedium`], which refuses
//! every write: inspecting never changes a file.

use std::path::Path;

use monitor_events::journal::format::{
    decode_sector_header, HeaderState, FORMAT_VERSION, SECTOR_HEADER_LEN,
};
use monitor_events::{Geometry, Medium};

use crate::error::CliError;

/// A read-only medium over an image in memory. `program` and `erase` fail (the
/// journal's `open` never calls them).
#[derive(Clone, Debug)]
pub struct ImageMedium {
    geometry: Geometry,
    bytes: Vec<u8>,
}

/// Why an [`ImageMedium`] operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Outside the image.
    OutOfBounds,
    /// A write to the read-only image.
    ReadOnly,
}

impl ImageMedium {
    /// An image of `geometry`; `bytes` must be `geometry.size()` long.
    pub fn new(geometry: Geometry, bytes: Vec<u8>) -> Self {
        ImageMedium { geometry, bytes }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Medium for ImageMedium {
    type Error = ImageError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ImageError> {
        let start = offset as usize;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(start..end))
            .ok_or(ImageError::OutOfBounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn program(&mut self, _offset: u32, _data: &[u8]) -> Result<(), ImageError> {
        Err(ImageError::ReadOnly)
    }
    fn erase(&mut self, _sector: u32) -> Result<(), ImageError> {
        Err(ImageError::ReadOnly)
    }
    fn sync(&mut self) -> Result<(), ImageError> {
        Ok(())
    }
}

/// Geometry given on the command line; what is missing comes from the headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct GeometryFlags {
    /// `--sector-size`.
    pub sector_size: Option<u32>,
    /// `--sectors`.
    pub sectors: Option<u32>,
    /// `--write-size`.
    pub write_size: Option<u32>,
}

impl GeometryFlags {
    fn any(&self) -> bool {
        self.sector_size.is_some() || self.sectors.is_some() || self.write_size.is_some()
    }
}

/// Where the geometry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometrySource {
    /// The sector header at this byte offset.
    Header(usize),
    /// The command line.
    Flags,
}

/// A file read for inspection.
#[derive(Debug)]
pub enum Loaded {
    /// An image with a geometry.
    Image {
        /// The image.
        medium: ImageMedium,
        /// Where its geometry came from.
        source: GeometrySource,
    },
    /// Every byte reads `0xFF`: an erased medium, an empty store.
    Blank {
        /// Its length.
        len: usize,
    },
}

/// What the search for a sector header found.
#[derive(Debug)]
enum Found {
    /// A valid header of this format.
    Header { at: usize, geometry: Geometry },
    /// A header (magic and CRC right) of a version this build cannot read.
    Newer { version: u8, flags: u8 },
    /// No intact header; `damaged` is the offset of one that has the magic.
    None { damaged: Option<usize> },
}

/// The geometry a header's fields describe, if they make sense.
fn header_geometry(h: &[u8]) -> Option<Geometry> {
    let sector_count = u32::from(u16::from_le_bytes([h[16], h[17]]));
    let sector_size = 1u32.checked_shl(u32::from(h[18]))?;
    let write_size = 1u32.checked_shl(u32::from(h[19]))?;
    if sector_count == 0
        || !(256..=1 << 20).contains(&sector_size)
        || write_size > 32
        || u64::from(sector_count) * u64::from(sector_size) > u64::from(u32::MAX)
    {
        return None;
    }
    Some(Geometry {
        sector_size,
        sector_count,
        write_size,
        // Not recorded in the format; it does not matter for reading.
        multiwrite: true,
    })
}

/// Looks for a sector header at offset 0, then at every multiple of 4096, then of
/// 256 (the smallest sector size).
fn find_header(bytes: &[u8]) -> Found {
    let len = SECTOR_HEADER_LEN as usize;
    let candidates = std::iter::once(0)
        .chain((4096..bytes.len()).step_by(4096))
        .chain((256..bytes.len()).step_by(256).filter(|o| o % 4096 != 0));
    let mut damaged = None;
    for at in candidates {
        let Some(h) = bytes.get(at..at + len) else {
            continue;
        };
        if &h[0..2] != b"ME" {
            continue;
        }
        let Some(g) = header_geometry(h) else {
            damaged.get_or_insert(at);
            continue;
        };
        let Ok(arr) = <&[u8; SECTOR_HEADER_LEN as usize]>::try_from(h) else {
            continue;
        };
        match decode_sector_header(&g, arr) {
            HeaderState::Valid(_) if at % g.sector_size as usize == 0 => {
                return Found::Header { at, geometry: g }
            }
            HeaderState::Unsupported(version) => {
                return Found::Newer {
                    version,
                    flags: h[3],
                }
            }
            _ => {
                damaged.get_or_insert(at);
            }
        }
    }
    Found::None { damaged }
}

fn describe_geometry(g: &Geometry) -> String {
    format!(
        "{} sectors x {} B = {} B",
        g.sector_count,
        g.sector_size,
        u64::from(g.sector_count) * u64::from(g.sector_size)
    )
}

fn write_size_ok(w: Option<u32>) -> bool {
    w.is_none_or(|w| w.is_power_of_two())
}

/// Reads `path` and works out its geometry.
pub fn load(path: &Path, flags: &GeometryFlags) -> Result<Loaded, CliError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::usage(format!(
            "{shown}: no such file: give the path of a flash image or a store file"
        )),
        std::io::ErrorKind::PermissionDenied => CliError::usage(format!(
            "{shown}: permission denied: check the file's permissions"
        )),
        _ if path.is_dir() => CliError::usage(format!(
            "{shown} is a directory: give the path of a flash image or a store file"
        )),
        _ => CliError::usage(format!("cannot read {shown}: {e}")),
    })?;
    if bytes.is_empty() {
        return Err(CliError::usage(format!(
            "{shown} is empty (0 B): not a monitor-events store or flash image"
        )));
    }
    let found = find_header(&bytes);
    if let Found::Newer { version, flags } = found {
        return Err(if version == FORMAT_VERSION {
            CliError::integrity(format!(
                "{shown} uses format features this build does not read (header flags {flags:#04x}): use a newer monitor-events"
            ))
        } else {
            CliError::integrity(format!(
                "{shown} was written in format version {version}, newer than this build reads ({FORMAT_VERSION}): use a newer monitor-events"
            ))
        });
    }
    if flags.any() {
        let from_header = match &found {
            Found::Header { geometry, .. } => Some(*geometry),
            _ => None,
        };
        let sector_size = flags
            .sector_size
            .or(from_header.map(|g| g.sector_size))
            .unwrap_or(4096);
        if !sector_size.is_power_of_two() || !write_size_ok(flags.write_size) {
            return Err(CliError::usage(
                "--sector-size and --write-size must be powers of two".into(),
            ));
        }
        let sector_count = flags
            .sectors
            .or(from_header.map(|g| g.sector_count))
            .unwrap_or((bytes.len() / sector_size as usize) as u32);
        let write_size = flags
            .write_size
            .or(from_header.map(|g| g.write_size))
            .unwrap_or(4);
        let geometry = Geometry {
            sector_size,
            sector_count,
            write_size,
            multiwrite: true,
        };
        if u64::from(sector_count) * u64::from(sector_size) != bytes.len() as u64 {
            return Err(CliError::usage(format!(
                "{shown} is {} B, but the geometry given is {}: check --sector-size and --sectors",
                bytes.len(),
                describe_geometry(&geometry)
            )));
        }
        return Ok(Loaded::Image {
            medium: ImageMedium::new(geometry, bytes),
            source: GeometrySource::Flags,
        });
    }
    match found {
        Found::Header { at, geometry } => {
            if u64::from(geometry.sector_count) * u64::from(geometry.sector_size)
                != bytes.len() as u64
            {
                return Err(CliError::usage(format!(
                    "{shown} is {} B, but its sector headers describe {}: the file is truncated or has extra bytes; use the whole image (or give --sector-size and --sectors)",
                    bytes.len(),
                    describe_geometry(&geometry)
                )));
            }
            Ok(Loaded::Image {
                medium: ImageMedium::new(geometry, bytes),
                source: GeometrySource::Header(at),
            })
        }
        Found::None { .. } if bytes.iter().all(|&b| b == 0xFF) => {
            Ok(Loaded::Blank { len: bytes.len() })
        }
        Found::None {
            damaged: Some(at), ..
        } => Err(CliError::integrity(format!(
            "{shown}: no intact sector header (a damaged one at offset {at:#x}): the image is corrupted; give --sector-size, --sectors and --write-size to inspect it anyway"
        ))),
        Found::None { damaged: None } => Err(CliError::usage(format!(
            "{shown} is not a monitor-events store or flash image (no sector header found): check the path"
        ))),
        Found::Newer { .. } => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_medium_refuses_writes_and_reads_in_bounds() {
        let g = Geometry {
            sector_size: 256,
            sector_count: 3,
            write_size: 4,
            multiwrite: true,
        };
        let mut m = ImageMedium::new(g, vec![0xAB; 768]);
        let mut buf = [0u8; 4];
        assert_eq!(m.read(764, &mut buf), Ok(()));
        assert_eq!(buf, [0xAB; 4]);
        assert_eq!(m.read(766, &mut buf), Err(ImageError::OutOfBounds));
        assert_eq!(m.read(u32::MAX, &mut buf), Err(ImageError::OutOfBounds));
        assert_eq!(m.program(0, &[0; 4]), Err(ImageError::ReadOnly));
        assert_eq!(m.erase(0), Err(ImageError::ReadOnly));
    }

    #[test]
    fn no_header_in_noise_or_zeros() {
        assert!(matches!(
            find_header(&vec![0u8; 8192]),
            Found::None { damaged: None }
        ));
        let mut b = vec![0u8; 8192];
        b[4096] = b'M';
        b[4097] = b'E';
        assert!(matches!(
            find_header(&b),
            Found::None {
                damaged: Some(4096)
            }
        ));
    }
}
