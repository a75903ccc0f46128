//! A worn cell: one bit of the region that no longer programs (it stays 1
//! whatever is written), at every byte of the region in turn, in every mode
//! (in-place acks, ack records, authenticated records) on geometries with
//! program units of 1 to 32 B and on sectors of four erase blocks, under a
//! random workload with reopens and power cuts.
//!
//! The journal reads back every record it writes; one that does not read back
//! as written seals its sector and is written again in a fresh one, and the
//! failed copy, which nobody was told of, must never come back (the one
//! recovery the core allows itself, docs/INVARIANTS.md, I7). So a worn cell
//! under any record must change nothing the store promised: after every reopen
//! it gives back every event whose push returned and none whose ack returned,
//! identical, with fresh ids (I1–I4), and it goes on taking events (I10).
//!
//! A sector header is programmed, read back, and on a mismatch its sector is
//! erased and the header programmed once more: the ring has no way to skip a
//! sector, so a header that does not read back twice stops the device with a
//! panic naming its offset (I7). Under a header's bytes that stop is the only
//! other outcome the test accepts, and only at the offset of the worn
//! header.
//!
//! A worn cell near the start of a sector seals that sector early on every lap
//! of the ring: the sector is lost for good, and with it a sector of the
//! configuration's reserve. A reserve of 0 or 1 may then not be enough for a
//! retirement, with the cuts on top, and the device stops with "no free sector
//! left". The test accepts that stop on those configurations only (the sweeps
//! met it there, and never with a reserve of 3). After any stop the medium
//! must open again with everything promised.
//!
//! `WORN_CELL_STRIDE` tests one byte in that many (default 3; 1 tests every
//! byte).

mod support;

use monitor_events::journal::format::{SECTOR_HEADER_LEN, TAG_LEN};
use monitor_events::journal::{Config, Journal};
use monitor_events::{EventId, Geometry};
use monitor_events_flash::sim::{is_power_cut, panic_text, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::{check, env_u64, flavored, Flavor, InFlight, Model, Weak, Weaken};

/// Pending capacity.
const N: usize = 8;

/// The largest body the workload pushes.
const BODY: usize = 60;

/// One cell that no longer programs: bit `mask` of byte `at` stays 1 whatever
/// a program writes there.
struct Worn {
    at: u32,
    mask: u8,
    /// Programs whose data the worn cell changed.
    bitten: u64,
}

impl Weaken for Worn {
    fn weaken(&mut self, _: &mut SimFlash, offset: u32, data: &[u8]) -> Option<Vec<u8>> {
        if !(offset..offset + data.len() as u32).contains(&self.at) {
            return None;
        }
        let i = (self.at - offset) as usize;
        if data[i] & self.mask != 0 {
            return None;
        }
        self.bitten += 1;
        let mut worn = data.to_vec();
        worn[i] |= self.mask;
        Some(worn)
    }
}

/// How one run ended (every check passed, and after a stop the medium opened
/// again gave back exactly what the store had promised).
enum End {
    /// The workload ran to its end.
    Clean,
    /// The documented stop: a sector header that did not read back twice, at
    /// `offset`.
    HeaderStop { offset: u32 },
    /// The ring ran out of free sectors: sectors sealed early by writes that
    /// did not read back took the room a retirement needed (a reserve of 0 or
    /// 1).
    RingStop,
}

/// What a run met besides its end: programs the worn cell changed, power
/// cuts.
struct RunStats {
    bitten: u64,
    cuts: u64,
}

/// Rounds of a run: each opens (checking the model), then runs a workload
/// that a power cut may end.
const ROUNDS: u32 = 8;

/// One run with the worn cell at `at`.
fn run(config: Config<N>, group: u32, at: u32, seed: u64) -> Result<(End, RunStats), String> {
    let g = config.geometry();
    let blocks = Geometry {
        sector_size: g.sector_size / group,
        sector_count: g.sector_count * group,
        ..g
    };
    let mut w = Weak {
        flash: SimFlash::new(blocks),
        cells: Worn {
            at,
            mask: 1 << (seed % 8),
            bitten: 0,
        },
    };
    let mut model = Model::default();
    let mut rng = Pcg32::new(seed);
    let mut cuts = 0;
    let mut end = End::Clean;
    for round in 0..ROUNDS {
        if rng.below(2) == 0 {
            w.flash.cut_after(
                u64::from(rng.below(80)),
                Torn::random(u64::from(rng.next_u32())),
            );
        }
        let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            let medium = Grouped::new(&mut w, group).expect("a grouping the flash takes");
            let mut j = Journal::<_, N>::open(medium, config)
                .map_err(|e| format!("round {round}: open: {e}"))?;
            let (c, got) = check(&model, &mut j, "worn cell");
            if !c.clean() {
                return Err(format!("round {round}: {c:?}"));
            }
            model.adopt(&got);
            for _ in 0..60 {
                let ids: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
                if ids.len() < N && rng.below(5) < 3 {
                    let len = 1 + rng.below(BODY as u32) as usize;
                    let body: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
                    model.in_flight = Some(InFlight::Push(body.clone()));
                    let id = j.push(&body).map_err(|e| format!("push: {e}"))?;
                    model.pushed(id, body);
                } else if !ids.is_empty() {
                    let id = ids[rng.below(ids.len() as u32) as usize];
                    model.in_flight = Some(InFlight::Ack(id.0));
                    j.ack(id).map_err(|e| format!("ack: {e}"))?;
                    model.acked(id);
                }
            }
            Ok(())
        }));
        match r {
            Ok(r) => r?,
            Err(p) => {
                let message = panic_text(&*p);
                if is_power_cut(&message) {
                    cuts += 1;
                    w.flash.power_on();
                    continue;
                }
                let header = message
                    .strip_prefix("monitor-events: program of the sector header at offset ")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|o| o.parse::<u32>().ok());
                end = match header {
                    Some(offset) => End::HeaderStop { offset },
                    None if message.starts_with("monitor-events: no free sector left") => {
                        End::RingStop
                    }
                    None => return Err(format!("round {round}: panic: {message}")),
                };
                break;
            }
        }
    }
    // Disarm a cut that did not fire, and check once more: after a stop too,
    // nothing the store promised is lost (the stop writes nothing more).
    w.flash.power_on();
    let medium = Grouped::new(&mut w, group).expect("a grouping the flash takes");
    let mut j = Journal::<_, N>::open(medium, config).map_err(|e| format!("last open: {e}"))?;
    let (c, _) = check(&model, &mut j, "worn cell");
    if !c.clean() {
        return Err(format!("last open: {c:?}"));
    }
    drop(j);
    let stats = RunStats {
        bitten: w.cells.bitten,
        cuts,
    };
    Ok((end, stats))
}

/// I1–I4, I7, I10: a worn cell under every byte of the region, in every mode.
#[test]
fn i1_i4_i7_i10_a_worn_cell_anywhere() {
    support::quiet_panics_containing("monitor-events:");
    monitor_events_flash::sim::quiet_power_cuts();
    let stride = env_u64("WORN_CELL_STRIDE", 3) as usize;
    let mut failures = Vec::new();
    let (mut runs, mut bitten, mut cuts) = (0u64, 0u64, 0u64);
    let (mut header_stops, mut ring_stops) = (0u64, 0u64);
    // Reserves as `try_new` chooses them (1 on four sectors, 3 on eight or
    // more), and rings without a reserve sector: the three-sector ring, and
    // four sectors with the reserve set to 0.
    // The last row's sectors are four erase blocks each, which the journal
    // erases before use instead of reading them.
    for (sector_size, sector_count, write_size, multiwrite, reserve, group) in [
        (1024, 4, 4, true, None, 1),
        (512, 8, 1, false, None, 1),
        (256, 16, 32, true, None, 1),
        (2048, 4, 16, false, None, 1),
        (2048, 3, 16, false, Some(0), 1),
        (1024, 4, 4, true, Some(0), 1),
        (2048, 4, 8, true, None, 4),
    ] {
        let g = Geometry {
            sector_size,
            sector_count,
            write_size,
            multiwrite,
        };
        for mode in Flavor::ALL {
            let config = match reserve {
                None => Config::<N>::try_new(g, BODY),
                Some(r) => Config::<N>::try_new_with_reserve(g, BODY, r),
            };
            let Ok(config) = config.and_then(|c| flavored(c, mode)) else {
                continue;
            };
            let what = format!(
                "{g:?} in {group} erase blocks, reserve {}, {mode:?}",
                config.reserve()
            );
            // The header bytes a program writes (the rest is padding).
            let header = SECTOR_HEADER_LEN
                + if mode == Flavor::RecordAuth {
                    TAG_LEN
                } else {
                    0
                };
            for at in (0..g.size()).step_by(stride) {
                let seed = u64::from(at) * 31 + u64::from(sector_size) + mode as u64;
                runs += 1;
                let (end, stats) = match run(config, group, at, seed) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{what} at {at}: {e}"));
                        continue;
                    }
                };
                bitten += stats.bitten;
                cuts += stats.cuts;
                match end {
                    End::Clean => {}
                    End::HeaderStop { offset }
                        if at % sector_size < header && offset == at - at % sector_size =>
                    {
                        header_stops += 1
                    }
                    End::HeaderStop { offset } => failures.push(format!(
                        "{what} at {at}: a header stop at {offset}, not the worn one"
                    )),
                    End::RingStop if config.reserve() <= 1 => ring_stops += 1,
                    End::RingStop => failures.push(format!(
                        "{what} at {at}: out of free sectors with a reserve of {}",
                        config.reserve()
                    )),
                }
            }
        }
    }
    println!(
        "worn cells: {runs} runs (one worn bit each), programs the cell changed {bitten}, \
         power cuts {cuts}; stops at a worn sector header {header_stops}, out of free sectors \
         with a reserve of 0 or 1 {ring_stops}; failures {}",
        failures.len()
    );
    // The failures by kind (the message without its numbers), with the first
    // of each.
    let mut kinds: std::collections::BTreeMap<String, (usize, &String)> = Default::default();
    for f in &failures {
        let key: String = f.chars().filter(|c| !c.is_ascii_digit()).collect();
        kinds.entry(key).or_insert((0, f)).0 += 1;
    }
    for (n, first) in kinds.values() {
        eprintln!("{n} like: {first}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
    assert!(
        bitten > 1000 && cuts > 1000 && header_stops > 0 && ring_stops > 0,
        "too little covered"
    );
}

/// I10: the run of the sweep (every byte, sectors of four erase blocks,
/// authenticated) that found the given-back sectors erased oldest first. The
/// worn cell failed a copy of a retirement, which sealed its sector: the
/// retirement went on in a second fresh sector, whose header a cut landed.
/// The next open gave both back (copies only, and nothing), and its first
/// write erased the older one first; a cut during that erase left the newer
/// header valid above a broken one, which the open after called corruption.
/// They are erased newest first now.
#[test]
fn i10_sectors_given_back_are_erased_newest_first() {
    support::quiet_panics_containing("monitor-events:");
    monitor_events_flash::sim::quiet_power_cuts();
    let g = Geometry {
        sector_size: 2048,
        sector_count: 4,
        write_size: 8,
        multiwrite: true,
    };
    let config = flavored(Config::<N>::try_new(g, BODY).unwrap(), Flavor::RecordAuth).unwrap();
    let at = 6253;
    let seed = u64::from(at) * 31 + 2048 + Flavor::RecordAuth as u64;
    match run(config, 4, at, seed) {
        Ok((End::Clean, stats)) => {
            assert!(stats.bitten >= 2 && stats.cuts >= 4, "the replay drifted");
        }
        Ok(_) => panic!("a stop the replay did not make before"),
        Err(e) => panic!("I10: {e}"),
    }
}
