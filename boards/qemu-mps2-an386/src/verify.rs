//! `verify`: recovers the image read-only and checks it against the report log.
//!
//! | finding | condition | invariant |
//! |---|---|---|
//! | `LOST <id>` | `P id` reported, no `a id`, and `id` is not pending | I1 |
//! | `RESURRECTED <id>` | `id` is pending and the last line about it is `A`, or (after a carried-over log) no line names it although it is at most the carried maximum | I2 |
//! | `REUSED <id>` | a `P id` not above every earlier `P`, or `next_id` not above a reported id | I3 |
//! | `CORRUPT <id>` | a pending event whose body is not the simulated monitor's event `id`, or a `P` length that differs from it | I4 |
//!
//! An id with `a` but no `A` (cut during the ack) may be pending or not. A pending
//! id never reported (cut between `push` returning and the `P` line) is fine: it is
//! above every id of the log before that run.
//!
//! The verdict goes to the host file `out` (one finding per line, then counts and
//! `RESULT_PASS` or `RESULT_FAIL`) and to defmt; exit status 0 on pass.
//!
//! With `carry=<path>`, a passing verify also writes a log that replaces the one
//! it read: a `P` line for every id still expected pending and a `C` line with the
//! highest ids seen. The next cycle appends to it, so each verify reads one
//! cycle's lines instead of the whole history.

use crate::args::Args;
use crate::events::body_for;
use crate::host::{HostFile, Mode};
use crate::journal::{self, body_matches, Journal, N};
use crate::mirror::{MirrorFlash, SIZE};
use crate::report::{parse, Fact, Line, LineReader, Report};
use monitor_events::{EventId, MAX_ENCODED_LEN};

/// Reported-pushed ids without a later `a` that `verify` can track; more means the
/// store promised more than the `N` it can hold, a failure in itself.
const TRACK: usize = 8 * N;

/// The last thing the log said about a pending id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Said {
    Nothing,
    Pushed,
    AckAsked,
    Acked,
}

/// Counts of the findings.
#[derive(Default, defmt::Format)]
struct Counts {
    lines: u64,
    boots: u64,
    pushes: u64,
    acks: u64,
    torn: u64,
    lost: u64,
    resurrected: u64,
    reused: u64,
    corrupt: u64,
    overflow: bool,
}

/// The verdict file.
struct Out {
    file: HostFile,
}

impl Out {
    fn write(&mut self, word: &str, n: u64) {
        let mut l = Line::new();
        l.text(word);
        l.push(b' ');
        l.number(n);
        l.push(b'\n');
        if let Err(e) = self.file.write(l.as_bytes()) {
            defmt::panic!("verify: writing the verdict failed: {}", e);
        }
    }
}

/// Checks the image against the log; true when nothing is wrong.
pub fn verify(ram: &'static mut [u8; SIZE], args: &Args) -> bool {
    let mut m = match MirrorFlash::read_only(ram, args.image, args.multiwrite) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("verify: cannot load {=str}: {}", args.image, e);
            return false;
        }
    };
    let mut out = match HostFile::open(args.out, Mode::Create) {
        Ok(file) => Out { file },
        Err(e) => {
            defmt::error!("verify: cannot create {=str}: {}", args.out, e);
            return false;
        }
    };
    // Read-only: `open` writes nothing, and every write would fail.
    let mut j = match journal::open_journal(&mut m, args.auth) {
        Ok(j) => j,
        Err(e) => {
            defmt::error!("verify: open failed: {}", e);
            out.write("OPEN_FAILED", 1);
            out.write("RESULT_FAIL", 1);
            return false;
        }
    };
    let mut log = match LineReader::open(args.log) {
        Ok(r) => r,
        Err(e) => {
            defmt::error!("verify: cannot read the log {=str}: {}", args.log, e);
            return false;
        }
    };

    // The pending ids, each with the last thing the log said about it.
    let mut pending: heapless::Vec<(EventId, Said), N> =
        j.pending().map(|(id, _)| (id, Said::Nothing)).collect();
    let mut c = Counts::default();
    // Ids reported pushed and not (yet) asked to be acked: each must be pending.
    let mut waiting: heapless::Vec<u64, TRACK> = heapless::Vec::new();
    let mut last_push: Option<u64> = None;
    let mut max_reported: Option<u64> = None;
    let mut carried_max: Option<u64> = None;
    let mut want = [0u8; MAX_ENCODED_LEN];
    loop {
        let fact = match log.next_line() {
            Ok(Some(line)) => parse(line),
            Ok(None) => break,
            Err(e) => defmt::panic!("verify: reading the log failed: {}", e),
        };
        c.lines += 1;
        let (id, said) = match fact {
            Fact::Blank => continue,
            Fact::Torn => {
                c.torn += 1;
                continue;
            }
            Fact::Carry {
                last_push: l,
                max_id,
            } => {
                last_push = last_push.max(Some(l));
                max_reported = max_reported.max(Some(max_id));
                carried_max = carried_max.max(Some(max_id));
                continue;
            }
            Fact::Boot { next_id } => {
                c.boots += 1;
                if max_reported.is_some_and(|m| next_id <= m) {
                    c.reused += 1;
                    out.write("REUSED", next_id);
                }
                continue;
            }
            Fact::Pushed { id, len } => {
                c.pushes += 1;
                if last_push.is_some_and(|l| id <= l) {
                    c.reused += 1;
                    out.write("REUSED", id);
                }
                last_push = Some(id);
                if body_for(id, &mut want).len() as u64 != len {
                    c.corrupt += 1;
                    out.write("CORRUPT", id);
                }
                if waiting.push(id).is_err() {
                    c.overflow = true;
                }
                (id, Said::Pushed)
            }
            // From here on the id may be pending or not, until its `A`.
            Fact::AckAsked { id } => {
                waiting.retain(|&w| w != id);
                (id, Said::AckAsked)
            }
            Fact::Acked { id } => {
                c.acks += 1;
                (id, Said::Acked)
            }
        };
        max_reported = max_reported.max(Some(id));
        if let Some(p) = pending.iter_mut().find(|p| p.0 .0 == id) {
            p.1 = said;
        }
    }
    for &id in &waiting {
        if !j.is_pending(EventId(id)) {
            c.lost += 1;
            out.write("LOST", id);
        }
    }
    for &(id, said) in &pending {
        // Acked, or not mentioned although the carried-over log names every id at
        // or below its maximum that may still be pending.
        let back = match said {
            Said::Acked => true,
            Said::Nothing => carried_max.is_some_and(|m| id.0 <= m),
            Said::Pushed | Said::AckAsked => false,
        };
        if back {
            c.resurrected += 1;
            out.write("RESURRECTED", id.0);
        }
        if !body_matches(&mut j, id) {
            c.corrupt += 1;
            out.write("CORRUPT", id.0);
        }
    }
    let count = pending.len();
    let next_id = j.next_id().0;
    if max_reported.is_some_and(|m| next_id <= m) {
        c.reused += 1;
        out.write("REUSED", next_id);
    }
    out.write("lines", c.lines);
    out.write("boots", c.boots);
    out.write("pushes", c.pushes);
    out.write("acks", c.acks);
    out.write("torn_lines", c.torn);
    out.write("pending", count as u64);
    out.write("next_id", next_id);
    out.write("lost", c.lost);
    out.write("resurrected", c.resurrected);
    out.write("reused", c.reused);
    out.write("corrupt", c.corrupt);
    out.write("overflow", u64::from(c.overflow));
    // A torn line per boot at most: only the last line of a killed run.
    let pass = c.lost == 0
        && c.resurrected == 0
        && c.reused == 0
        && c.corrupt == 0
        && !c.overflow
        && c.torn <= c.boots;
    out.write(if pass { "RESULT_PASS" } else { "RESULT_FAIL" }, 1);
    if pass {
        if let Some(path) = args.carry {
            carry(path, &mut j, &waiting, &pending, last_push, max_reported);
        }
    }
    defmt::info!(
        "verify: {}, {} pending, next id {}: {=str}",
        c,
        count,
        next_id,
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// Writes the carried-over log: a `P` line for every id still expected pending, an
/// `a` line for every other pending id (it may stay pending), then the `C` line.
fn carry(
    path: &str,
    j: &mut Journal<'_>,
    waiting: &[u64],
    pending: &[(EventId, Said)],
    last_push: Option<u64>,
    max_id: Option<u64>,
) {
    let mut r = match Report::create(path) {
        Ok(r) => r,
        Err(e) => defmt::panic!("verify: cannot create {=str}: {}", path, e),
    };
    let mut buf = [0u8; MAX_ENCODED_LEN];
    for &id in waiting {
        let len = j.read(EventId(id), &mut buf).unwrap_or(0);
        if let Err(e) = r.line(b'P', id, Some(len as u64)) {
            defmt::panic!("verify: writing {=str} failed: {}", path, e);
        }
    }
    for &(id, _) in pending.iter().filter(|p| !waiting.contains(&p.0 .0)) {
        if let Err(e) = r.line(b'a', id.0, None) {
            defmt::panic!("verify: writing {=str} failed: {}", path, e);
        }
    }
    if let (Some(l), Some(m)) = (last_push, max_id) {
        if let Err(e) = r.line(b'C', l, Some(m)) {
            defmt::panic!("verify: writing {=str} failed: {}", path, e);
        }
    }
}
