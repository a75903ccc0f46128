//! `inspect` and `verify`: open an image read-only with the journal's own recovery
//! and report what it holds.

use std::fmt::Write as _;
use std::path::Path;

use monitor_events::journal::format::{
    decode_sector_header, HeaderState, FORMAT_VERSION, SECTOR_HEADER_LEN,
};
use monitor_events::journal::{Corruption, Journal, OpenError, Seen, Status};
use monitor_events::{Config, EventId, Geometry, Medium, MonitorEvent};
use serde::Serialize;

use crate::error::CliError;
use crate::image::describe::{hex, summary};
use crate::image::load::{load, GeometryFlags, GeometrySource, ImageMedium, Loaded};
use crate::panic::quietly;

/// One sector as the table shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SectorRow {
    /// Index in the region.
    pub index: u32,
    /// Sequence number, if the header is valid.
    pub seq: Option<u32>,
    /// Id floor, if the header is valid.
    pub floor: Option<u64>,
    /// `live`, `retired`, `erased`, `free`, `garbage` (or `valid` when the journal
    /// did not open).
    pub state: &'static str,
    /// Whether new records go here.
    pub current: bool,
    /// Bytes up to the last programmed one.
    pub used: u32,
    /// Event records (pushed here).
    pub events: u32,
    /// Event records copied here by compaction.
    pub copies: u32,
    /// Event records acked in place.
    pub acked_in_place: u32,
    /// Ack records.
    pub acks: u32,
    /// Retire records.
    pub retires: u32,
}

/// One pending event.
#[derive(Clone, Debug, Serialize)]
pub struct PendingRow {
    /// Its id.
    pub id: u64,
    /// Its kind, or `undecodable`.
    pub kind: String,
    /// Its channel in hex.
    pub channel: String,
    /// Encoded length.
    pub len: usize,
    /// One line about it, or why it does not decode.
    pub summary: String,
    /// Whether it decodes as a monitor event.
    pub decodes: bool,
}

/// What the journal's recovery found.
#[derive(Clone, Debug, Serialize)]
pub struct Recovered {
    /// The next id.
    pub next_id: u64,
    /// Pending events, in id order.
    pub pending: Vec<PendingRow>,
    /// Offset of a torn tail that recovery drops (the last write was interrupted).
    pub torn_tail: Option<u32>,
    /// Offsets of records whose single flipped bit was corrected.
    pub corrected: Vec<u32>,
    /// Sequence number of the current sector.
    pub current_seq: Option<u32>,
    /// Sequence number of the oldest live sector.
    pub oldest_seq: Option<u32>,
    /// Free sectors.
    pub free_sectors: u32,
}

/// Everything `inspect` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// The file.
    pub path: String,
    /// Its size.
    pub size: usize,
    /// Whether every byte is erased.
    pub blank: bool,
    /// The geometry (absent for a blank image).
    pub geometry: Option<GeometryRow>,
    /// Where the geometry came from.
    pub geometry_from: String,
    /// The format version of the headers.
    pub format_version: u8,
    /// Every sector.
    pub sectors: Vec<SectorRow>,
    /// The recovered state, if the journal opened.
    pub journal: Option<Recovered>,
    /// Why it did not open.
    pub error: Option<String>,
}

/// A geometry, for output.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GeometryRow {
    /// Bytes per sector.
    pub sector_size: u32,
    /// Sectors.
    pub sector_count: u32,
    /// Program unit.
    pub write_size: u32,
}

/// What opening found, or the typed error.
struct Opened {
    status: Status,
    seen: Vec<Seen>,
    pending: Vec<(EventId, Vec<u8>)>,
}

fn open_n<const N: usize>(
    medium: &ImageMedium,
) -> Option<Result<Result<Opened, OpenError>, String>> {
    let config = Config::<N>::try_new(medium.geometry(), 1).ok()?;
    let medium = medium.clone();
    Some(quietly(move || {
        let mut seen = Vec::new();
        let mut journal = Journal::open_with(medium, config, |s| seen.push(s))?;
        let ids: Vec<(EventId, usize)> = journal.pending().collect();
        let mut pending = Vec::with_capacity(ids.len());
        for (id, len) in ids {
            let mut buf = vec![0u8; len];
            // Cannot fail: the id is pending and the buffer fits.
            let n = journal.read(id, &mut buf).unwrap_or(0);
            buf.truncate(n);
            pending.push((id, buf));
        }
        Ok(Opened {
            status: journal.status(),
            seen,
            pending,
        })
    }))
}

/// Opens the journal with the largest capacity the geometry allows (the number of
/// pending events is not recorded in the format).
fn open(medium: &ImageMedium) -> Result<Result<Opened, OpenError>, CliError> {
    let r = open_n::<8192>(medium)
        .or_else(|| open_n::<1024>(medium))
        .or_else(|| open_n::<256>(medium))
        .or_else(|| open_n::<64>(medium))
        .or_else(|| open_n::<16>(medium))
        .or_else(|| open_n::<4>(medium));
    match r {
        None => {
            let g = medium.geometry();
            let why = Config::<1>::try_new(g, 1)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "too small".into());
            Err(CliError::integrity(format!(
                "the geometry {} sectors x {} B (program unit {} B) cannot hold a journal: {why}",
                g.sector_count, g.sector_size, g.write_size
            )))
        }
        Some(Err(panic)) => Err(CliError::internal(format!(
            "the library panicked while opening the image (a bug; please report it with the image): {panic}"
        ))),
        Some(Ok(r)) => Ok(r),
    }
}

/// The typed open error in words, with what to do.
pub fn explain(e: &OpenError, g: &Geometry) -> String {
    match e {
        OpenError::Corrupted { offset, reason } => {
            let what = match reason {
                Corruption::SectorHeader => "a sector header that should be valid is damaged",
                Corruption::SectorOrder => "a sector is missing or out of place",
                Corruption::Record => "a record fails its checksum and is not a torn tail",
                Corruption::BitFlip => {
                    "a bit reads 0 that was written as 1 (bit rot, never a torn write)"
                }
                Corruption::Semantics => "a record checks but says something impossible",
                Corruption::Forged => {
                    "a record or sector header fails its authentication tag (forged, altered, moved or from another device)"
                }
                _ => "damage",
            };
            format!(
                "corrupted at offset {offset:#x} (sector {}): {what}; the store cannot be trusted: restore it from a backup or recover the events by hand",
                offset / g.sector_size
            )
        }
        OpenError::UnsupportedFormat { version } => format!(
            "format version {version} is newer than this build reads ({FORMAT_VERSION}): use a newer monitor-events"
        ),
        OpenError::NotAStore => {
            "the image holds data that is not a monitor-events journal: check the path".into()
        }
        OpenError::ForeignGeometry { sector } => format!(
            "sector {sector} was written for a region of another geometry: give the right --sector-size, --sectors and --write-size"
        ),
        OpenError::AuthMismatch { sector } => format!(
            "sector {sector} belongs to an authenticated journal (HMAC tags): reading it needs the device key, which this tool does not take"
        ),
        _ => e.to_string(),
    }
}

fn sector_of(g: &Geometry, offset: u32) -> usize {
    (offset / g.sector_size) as usize
}

/// Offset just past the last programmed (non-`0xFF`) byte of a sector.
fn used(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rposition(|&b| b != 0xFF)
        .map_or(0, |p| p as u32 + 1)
}

/// Inspects `path`.
pub fn inspect(path: &Path, flags: &GeometryFlags) -> Result<Inspection, CliError> {
    let loaded = load(path, flags)?;
    let (medium, source) = match loaded {
        Loaded::Blank { len } => {
            return Ok(Inspection {
                path: path.display().to_string(),
                size: len,
                blank: true,
                geometry: None,
                geometry_from: "unknown (blank)".into(),
                format_version: FORMAT_VERSION,
                sectors: Vec::new(),
                journal: Some(Recovered {
                    next_id: 0,
                    pending: Vec::new(),
                    torn_tail: None,
                    corrected: Vec::new(),
                    current_seq: None,
                    oldest_seq: None,
                    free_sectors: 0,
                }),
                error: None,
            })
        }
        Loaded::Image { medium, source } => (medium, source),
    };
    let g = medium.geometry();
    let size = g.sector_size as usize;
    let opened = open(&medium)?;
    let mut sectors: Vec<SectorRow> = (0..g.sector_count)
        .map(|index| {
            let base = index as usize * size;
            let bytes = &medium.bytes()[base..base + size];
            let mut head = [0u8; SECTOR_HEADER_LEN as usize];
            head.copy_from_slice(&bytes[..SECTOR_HEADER_LEN as usize]);
            let mut row = SectorRow {
                index,
                used: used(bytes),
                ..SectorRow::default()
            };
            row.state = match decode_sector_header(&g, &head) {
                HeaderState::Valid(h) => {
                    row.seq = Some(h.seq);
                    row.floor = Some(h.floor);
                    "valid"
                }
                HeaderState::Erased if row.used == 0 => "erased",
                HeaderState::Erased => "free",
                _ => "garbage",
            };
            row
        })
        .collect();
    let (journal, error) = match opened {
        Ok(o) => {
            let status = o.status;
            let live = status.oldest_seq.zip(status.current_seq);
            for row in &mut sectors {
                if let Some(seq) = row.seq {
                    row.state = match live {
                        Some((lo, hi)) if (lo..=hi).contains(&seq) => "live",
                        _ => "retired",
                    };
                    row.current = status.current_seq == Some(seq);
                }
            }
            let mut torn_tail = None;
            let mut corrected = Vec::new();
            let mut last_sector = 0;
            for s in &o.seen {
                match *s {
                    Seen::Sector { index, .. } => last_sector = index as usize,
                    Seen::Event {
                        offset,
                        acked,
                        copy,
                        ..
                    } => {
                        let r = &mut sectors[sector_of(&g, offset)];
                        if copy {
                            r.copies += 1;
                        } else {
                            r.events += 1;
                        }
                        if acked {
                            r.acked_in_place += 1;
                        }
                    }
                    Seen::Ack { offset, .. } => sectors[sector_of(&g, offset)].acks += 1,
                    Seen::Retire { .. } => sectors[last_sector].retires += 1,
                    Seen::TornTail { offset } => torn_tail = Some(offset),
                    Seen::Corrected { offset } => corrected.push(offset),
                }
            }
            let pending = o
                .pending
                .iter()
                .map(|(id, body)| pending_row(*id, body))
                .collect();
            let rec = Recovered {
                next_id: status.next_id.0,
                pending,
                torn_tail,
                corrected,
                current_seq: status.current_seq,
                oldest_seq: status.oldest_seq,
                free_sectors: status.free_sectors,
            };
            (Some(rec), None)
        }
        Err(e) => (None, Some(explain(&e, &g))),
    };
    Ok(Inspection {
        path: path.display().to_string(),
        size: medium.bytes().len(),
        blank: false,
        geometry: Some(GeometryRow {
            sector_size: g.sector_size,
            sector_count: g.sector_count,
            write_size: g.write_size,
        }),
        geometry_from: match source {
            GeometrySource::Header(at) => format!("the sector header at offset {at:#x}"),
            GeometrySource::Flags => "the command line".into(),
        },
        // Only headers of this version are read (newer ones fail earlier).
        format_version: FORMAT_VERSION,
        sectors,
        journal,
        error,
    })
}

fn pending_row(id: EventId, body: &[u8]) -> PendingRow {
    match MonitorEvent::decode(body) {
        Ok(e) => PendingRow {
            id: id.0,
            kind: e.kind().as_str().to_owned(),
            channel: hex(&e.channel().0),
            len: body.len(),
            summary: summary(&e),
            decodes: true,
        },
        Err(err) => PendingRow {
            id: id.0,
            kind: "undecodable".into(),
            channel: String::new(),
            len: body.len(),
            summary: format!("does not decode: {err}"),
            decodes: false,
        },
    }
}

impl Inspection {
    /// The text report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "image       {} ({} B)", self.path, self.size);
        let Some(g) = self.geometry else {
            let _ = writeln!(
                o,
                "state       blank: every byte is erased (0xFF); an empty store, next id 0"
            );
            return o;
        };
        let _ = writeln!(
            o,
            "geometry    {} sectors x {} B, program unit {} B (from {})",
            g.sector_count, g.sector_size, g.write_size, self.geometry_from
        );
        let _ = writeln!(o, "format      version {}", self.format_version);
        if let Some(j) = &self.journal {
            let _ = writeln!(
                o,
                "journal     {} pending, next id {}, live sectors seq {}..={}, {} free",
                j.pending.len(),
                j.next_id,
                j.oldest_seq.map_or("-".into(), |s| s.to_string()),
                j.current_seq.map_or("-".into(), |s| s.to_string()),
                j.free_sectors
            );
            let tail = match j.torn_tail {
                Some(off) => format!(
                    "a torn tail at offset {off:#x} was dropped (the last write was cut by a power loss; it was never acknowledged)"
                ),
                None => "no torn tail".into(),
            };
            let fixed = if j.corrected.is_empty() {
                "no bit corrected".to_owned()
            } else {
                let offs: Vec<String> = j.corrected.iter().map(|o| format!("{o:#x}")).collect();
                format!(
                    "a single flipped bit corrected in the record at {}",
                    offs.join(", ")
                )
            };
            let _ = writeln!(o, "recovery    {tail}; {fixed}");
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "sector   seq      floor  state     used B  records");
        for r in &self.sectors {
            let seq = r.seq.map_or("-".into(), |s| s.to_string());
            let floor = r.floor.map_or("-".into(), |f| f.to_string());
            let mut rec = Vec::new();
            if r.events > 0 {
                rec.push(format!("{} events", r.events));
            }
            if r.copies > 0 {
                rec.push(format!("{} copies", r.copies));
            }
            if r.acked_in_place > 0 {
                rec.push(format!("{} acked in place", r.acked_in_place));
            }
            if r.acks > 0 {
                rec.push(format!("{} ack records", r.acks));
            }
            if r.retires > 0 {
                rec.push(format!("{} retire", r.retires));
            }
            let state = if r.current {
                format!("{}*", r.state)
            } else {
                r.state.to_owned()
            };
            let line = format!(
                "{:>6} {:>5} {:>10}  {:<8} {:>7}  {}",
                r.index,
                seq,
                floor,
                state,
                r.used,
                rec.join(", ")
            );
            let _ = writeln!(o, "{}", line.trim_end());
        }
        let _ = writeln!(
            o,
            "(* current sector; free = no header but not blank, erased before reuse)"
        );
        if let Some(j) = &self.journal {
            let _ = writeln!(o);
            let _ = writeln!(o, "pending events ({})", j.pending.len());
            if !j.pending.is_empty() {
                let _ = writeln!(
                    o,
                    "{:>8}  {:<22} {:<11} {:>4}  summary",
                    "id", "kind", "channel", "B"
                );
            }
            for p in &j.pending {
                let _ = writeln!(
                    o,
                    "{:>8}  {:<22} {:<11} {:>4}  {}",
                    p.id,
                    p.kind,
                    short_channel(&p.channel),
                    p.len,
                    p.summary
                );
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(o);
            let _ = writeln!(o, "error: {e}");
        }
        o
    }
}

fn short_channel(hex_channel: &str) -> String {
    if hex_channel.len() > 8 {
        format!("{}..", &hex_channel[..8])
    } else {
        hex_channel.to_owned()
    }
}

/// Verifies `path`: the journal opens and every pending event decodes. Returns the
/// line to print.
pub fn verify(path: &Path, flags: &GeometryFlags) -> Result<String, CliError> {
    let shown = path.display();
    let medium = match load(path, flags)? {
        Loaded::Blank { .. } => {
            return Ok("ok: 0 pending events, next id 0 (blank: every byte is erased)".into())
        }
        Loaded::Image { medium, .. } => medium,
    };
    let g = medium.geometry();
    let o =
        open(&medium)?.map_err(|e| CliError::integrity(format!("{shown}: {}", explain(&e, &g))))?;
    for (id, body) in &o.pending {
        if let Err(e) = MonitorEvent::decode(body) {
            return Err(CliError::integrity(format!(
                "{shown}: event {} checks but does not decode as a monitor event ({}): it was written by something else",
                id.0,
                e
            )));
        }
    }
    let mut line = format!(
        "ok: {} pending events, next id {}",
        o.pending.len(),
        o.status.next_id.0
    );
    for s in &o.seen {
        match s {
            Seen::TornTail { offset } => {
                let _ = write!(
                    line,
                    " (a torn tail at offset {offset:#x} is dropped: the last write was cut by a power loss)"
                );
            }
            Seen::Corrected { offset } => {
                let _ = write!(
                    line,
                    " (a single flipped bit corrected in the record at offset {offset:#x})"
                );
            }
            _ => {}
        }
    }
    Ok(line)
}
