//! A firmware update that changes the journal's `Config` on the same region
//! (invariants I1–I4, I6, I8–I10): what a device sees when a new firmware opens
//! the events an older one left, and the older one (rolled back) opens them
//! again.
//!
//! Per draw, a random geometry `Config` takes (sectors of 256 B to 16 KiB in 1,
//! 2 or 4 erase blocks, 3 to 16 of them, program units of 1 to 32 B, a medium
//! that allows a second program of a unit or not, plain or authenticated), and
//! a run of phases, each under its own `Config` on that geometry: `N` of 8, 16
//! or 32, a body bound from a few bytes to the largest the sectors take, a
//! random reserve, and in-place acks or ack records where the medium allows
//! both. Each phase opens what the one before left, checks it against the
//! model, then runs pushes (bodies up to its own bound), acks in any order and
//! reopens through bursts of power cuts (every cut torn in a random variant),
//! with a check after each. So a phase meets records longer than its own
//! bound, more pending events than its own `N`, acks written in the other ack
//! mode, and a reserve it did not leave.
//!
//! What must hold: every open gives back exactly what was promised (I1–I4);
//! with more pending events than its `N` the open fails with `TooManyPending`
//! and the image is unchanged; with fewer, it may fail so only if the run once
//! had more than that `N` pending at once (the records still show it), and
//! then the firmware migrates: it compacts the region under the largest `N`
//! that opened (`Journal::compact`, through bursts of cuts, each followed by a
//! check), after which the refused `N` must open. `Full` never comes with
//! nothing pending (a store never stops taking events once acked down, I10);
//! no panic but a power cut. After
//! the last phase, under stable power, it acks everything, takes `N` bodies of
//! its bound and gives them back after a reopen. Half the phases end with the
//! consumer acking down to a few events before the update.
//!
//! Also: an image opened with authentication switched (either way), another
//! key or region identity, or on a region of another sector count, size or
//! program unit fails with a typed error and writes nothing; so does a typed
//! store opened with a channel table (`CH`) or an `N` below what is pending.
//!
//! `CONFIG_CHANGE_DRAWS` sets the draws (default 100), `CONFIG_CHANGE_PHASES`
//! the phases per draw (default 6), `CONFIG_CHANGE_CUTS` the cuts per phase
//! (default 40).

mod support;

use monitor_events::journal::NoCounter;
use monitor_events::journal::{AckMode, AppendError, Auth, Config, Corruption, Journal, OpenError};
use monitor_events::{
    ChannelId, EventStore, Geometry, MonitorEvent, MonitorEventSource, StoreError, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{is_power_cut, panic_text, quiet_power_cuts, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::*;

/// A region and what stays the same across updates: its geometry, the erase
/// blocks per sector and whether it is authenticated.
#[derive(Clone, Copy, Debug)]
struct Region {
    geometry: Geometry,
    group: u32,
    auth: bool,
}

/// What one phase's firmware configures.
#[derive(Clone, Copy, Debug)]
struct Phase {
    n: usize,
    max_body: usize,
    reserve: u32,
    ack_mode: AckMode,
}

const AUTH_KEY: [u8; 32] = [0x7E; 32];
const REGION_ID: [u8; 16] = *b"firmware update ";

fn config<const K: usize>(r: &Region, p: &Phase) -> Option<Config<K>> {
    let c = Config::<K>::try_new_with_reserve(r.geometry, p.max_body, p.reserve).ok()?;
    let c = c.with_ack_mode(p.ack_mode).ok()?;
    if r.auth {
        c.with_auth(Auth::new(AUTH_KEY, REGION_ID)).ok()
    } else {
        Some(c)
    }
}

/// `$f::<N>($args)` for the `N` (8, 16 or 32) that `$n` names; the arguments
/// are expanded in each arm, so `config(..)` among them takes that `N`.
macro_rules! by_n {
    ($n:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $n {
            8 => $f::<8>($($arg),*),
            16 => $f::<16>($($arg),*),
            _ => $f::<32>($($arg),*),
        }
    };
}

/// Whether `Config` takes `p` on `r` (for `N` = `p.n`).
fn takes(r: &Region, p: &Phase) -> bool {
    fn some<const K: usize>(c: Option<Config<K>>) -> bool {
        c.is_some()
    }
    by_n!(p.n, some(config(r, p)))
}

fn draw_region(rng: &mut Pcg32) -> Region {
    loop {
        let g = Geometry {
            sector_size: 256 << rng.below(7),
            sector_count: 3 + rng.below(14),
            write_size: 1 << rng.below(6),
            multiwrite: rng.below(2) == 0,
        };
        let group = 1 << rng.below(3);
        if g.sector_size / group < 256 {
            continue;
        }
        let r = Region {
            geometry: g,
            group,
            auth: !g.multiwrite && rng.below(2) == 0,
        };
        // A region some phase can run on.
        if (0..20).any(|_| takes(&r, &draw_phase(rng, &r))) {
            return r;
        }
    }
}

/// A phase's configuration (not necessarily one `Config` takes).
fn draw_phase(rng: &mut Pcg32, r: &Region) -> Phase {
    let largest = (r.geometry.sector_size as usize).min(LARGEST_BODY);
    let max_body = match rng.below(3) {
        0 => 1 + rng.below(32) as usize,
        1 => 1 + rng.below(largest.min(512) as u32) as usize,
        _ => 1 + rng.below(largest as u32) as usize,
    };
    let ack_mode = if r.geometry.multiwrite && !r.auth && rng.below(2) == 0 {
        AckMode::InPlace
    } else {
        AckMode::Record
    };
    Phase {
        n: [8, 16, 32][rng.below(3) as usize],
        max_body,
        reserve: rng.below(r.geometry.sector_count - 2),
        ack_mode,
    }
}

/// A phase `Config` takes on `r`.
fn next_phase(rng: &mut Pcg32, r: &Region) -> Phase {
    loop {
        let p = draw_phase(rng, r);
        if takes(r, &p) {
            return p;
        }
    }
}

/// Opens the journal on `flash` under `cfg`; `Err` names `what` and the error.
fn open<'a, const K: usize>(
    flash: &'a mut SimFlash,
    group: u32,
    cfg: Config<K>,
    what: &str,
) -> Result<PathJournal<Sectors<'a, SimFlash>, K>, String> {
    open_on(Path::Blocking, flash, group, cfg, what)
}

/// As [`open`], through the engine `path`.
fn open_on<'a, const K: usize>(
    path: Path,
    flash: &'a mut SimFlash,
    group: u32,
    cfg: Config<K>,
    what: &str,
) -> Result<PathJournal<Sectors<'a, SimFlash>, K>, String> {
    PathJournal::open(path, sectors(flash, group), cfg).map_err(|e| format!("{what}: {e}"))
}

/// What the phases found.
#[derive(Default)]
struct Found {
    phases: u64,
    /// Phases whose open was refused with `TooManyPending`: more pending than
    /// their `N`.
    too_many: u64,
    /// Refused with `TooManyPending` with at most `N` pending, the records
    /// showing more at once.
    history: u64,
    cuts: u64,
    /// Compactions completed after a `History` refusal, and the cuts during
    /// them.
    compactions: u64,
    compact_cuts: u64,
    /// Pushes answered `Full`, each followed by an ack.
    full: u64,
    /// Of the phases, those that opened records longer than their own bound.
    longer: u64,
    counts: Counts,
    first: Option<String>,
}

impl Found {
    fn fail(&mut self, what: String) {
        eprintln!("{what}");
        self.first.get_or_insert(what);
    }
}

/// Random operations under `cfg` until the armed cut fires (the closure then
/// panics); `Err` on anything the journal must not do. Half of the runs go
/// through the async engine (when built with it).
fn operate<const K: usize>(
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<K>,
    model: &mut Model,
    rng: &mut Pcg32,
    (full, peak): (&mut u64, &mut usize),
) -> Result<(), String> {
    let path = path_for(u64::from(rng.next_u32()));
    let mut j = open_on(path, flash, group, cfg, "open")?;
    for _ in 0..100_000 {
        let r = rng.below(100);
        if r < 55 {
            let payload = random_body(rng, cfg.max_body());
            model.in_flight = Some(InFlight::Push(payload.clone()));
            match j.push(&payload) {
                Ok(id) => {
                    model.pushed(id, payload);
                    *peak = (*peak).max(j.pending_count());
                }
                Err(AppendError::Full) => {
                    model.in_flight = None;
                    *full += 1;
                    // Full says: ack to make room. With nothing to ack it is
                    // a store that no longer takes events.
                    if j.pending_count() == 0 {
                        return Err("push refused with Full and nothing pending".into());
                    }
                }
                Err(e) => return Err(format!("push of {} B refused: {e}", payload.len())),
            }
        } else if r < 95 && j.pending_count() > 0 {
            ack_random(&mut j, model, rng, 0)?;
        } else {
            drop(j);
            j = open_on(path, flash, group, cfg, "reopen")?;
        }
    }
    Err("no cut fired in 100000 operations".into())
}

/// What a draw carries from phase to phase.
struct State {
    model: Model,
    rng: Pcg32,
    found: Found,
    /// The most events the run ever had pending.
    peak: usize,
}

/// How a phase's first open went.
#[derive(Debug, PartialEq, Eq)]
enum Opened {
    Yes,
    /// Refused with `TooManyPending`: more than `K` pending.
    TooMany,
    /// Refused with `TooManyPending` with at most `K` pending, the records
    /// showing more pending at once (`peak`, the most the run ever had, above
    /// `K`): what the open documents.
    History,
}

/// One phase under `cfg`: open what the last left, then `cuts` cuts in bursts,
/// each followed by an open and a check. `peak` is the most events the run
/// ever had pending: `TooManyPending` must answer more than `K` pending, and
/// may answer at most `K` only if `peak` is above `K`.
fn phase<const K: usize>(
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<K>,
    st: &mut State,
    cuts: u64,
    name: &str,
) -> Result<Opened, String> {
    let State {
        model,
        rng,
        found,
        peak,
    } = st;
    let before = flash.image().to_vec();
    let opened = PathJournal::<_, K>::open(Path::Blocking, sectors(flash, group), cfg);
    if let Err(OpenError::TooManyPending { capacity }) = &opened {
        if *capacity != K {
            return Err(format!("TooManyPending names capacity {capacity}, not {K}"));
        }
        if flash.image() != before.as_slice() {
            return Err("a refused open wrote to the medium".into());
        }
        if model.durable.len() > K {
            return Ok(Opened::TooMany);
        }
        if *peak > K {
            return Ok(Opened::History);
        }
        return Err(format!(
            "TooManyPending with {} pending for N {K}, never more than {peak} pending at once",
            model.durable.len()
        ));
    }
    if model.durable.len() > K {
        return match opened {
            Err(e) => Err(format!(
                "open with {} pending for N {K}: {e}, not TooManyPending",
                model.durable.len()
            )),
            Ok(_) => Err(format!(
                "open with {} pending for N {K} succeeded",
                model.durable.len()
            )),
        };
    }
    let mut j = opened.map_err(|e| format!("open with {} pending: {e}", model.durable.len()))?;
    if model.durable.values().any(|b| b.len() > cfg.max_body()) {
        found.longer += 1;
    }
    let (c, _) = check(model, &mut j, name);
    found.counts.add(c);
    if !c.clean() {
        return Err(format!("open: {c:?}"));
    }
    drop(j);
    let mut bursts = Bursts::default();
    for cut in 0..cuts {
        let k = bursts.next(rng, 120);
        let torn = Torn::random(u64::from(rng.next_u32()) << 8 | u64::from(rng.next_u32() & 0xFF));
        flash.cut_after(k, torn);
        let what = format!("cut {cut} ({torn:?} at op {k} after the restart)");
        let mut full = 0;
        let r = catch_unwind(AssertUnwindSafe(|| {
            operate::<K>(flash, group, cfg, model, rng, (&mut full, &mut *peak))
        }));
        found.full += full;
        found.cuts += 1;
        match r {
            Ok(Err(e)) => return Err(format!("{what}: {e}")),
            Ok(Ok(())) => unreachable!("operate returns only by a cut or an error"),
            Err(p) => {
                let msg = panic_text(&*p);
                if !is_power_cut(&msg) {
                    return Err(format!("{what}: panicked: {msg}"));
                }
            }
        }
        flash.power_on();
        let mut j = PathJournal::<_, K>::open(Path::Blocking, sectors(flash, group), cfg)
            .map_err(|e| format!("{what}: open after the cut: {e}"))?;
        let (c, got) = check(model, &mut j, &format!("{name}: {what}"));
        found.counts.add(c);
        if !c.clean() {
            return Err(format!("{what}: {c:?}"));
        }
        model.adopt(&got);
        *peak = (*peak).max(got.len());
    }
    // Half the time the consumer catches up before the update: acks in any
    // order down to a few pending, so that a smaller `N` opens next.
    if rng.below(2) == 0 {
        let mut j = open(flash, group, cfg, "open before the update")?;
        let keep = rng.below(6) as usize;
        while j.pending_count() > keep {
            let ids = j.pending_ids();
            let id = ids[rng.below(ids.len() as u32) as usize];
            j.ack(id)
                .map_err(|e| format!("ack before the update: {e}"))?;
            model.acked(id);
        }
    }
    Ok(Opened::Yes)
}

/// The migration a firmware that lowers `N` makes when `open` answers
/// `TooManyPending` with fewer pending: open with the `N` the records fit
/// (`cfg`), [`compact`](monitor_events::journal::Journal::compact), and go on.
/// Cuts land in bursts during the compactions (two in three tries), each
/// followed by an open and a check, until one completes; then the records show
/// no more pending at once than are pending. Every other try compacts through
/// the async engine (when built with it).
fn compact<const W: usize>(
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<W>,
    st: &mut State,
    name: &str,
) -> Result<(), String> {
    let mut bursts = Bursts::default();
    for attempt in 0..1000 {
        let armed = st.rng.below(3) != 0;
        if armed {
            let k = bursts.next(&mut st.rng, 16);
            let torn = Torn::random(u64::from(st.rng.next_u32()) << 8 | 1);
            flash.cut_after(k, torn);
        }
        let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            let mut j = open_on(path_for(attempt), flash, group, cfg, "open to compact")?;
            j.compact();
            Ok(())
        }));
        // Disarms a cut that did not fire.
        flash.power_on();
        let done = match r {
            Ok(Ok(())) => true,
            Ok(Err(e)) => return Err(format!("compaction {attempt}: {e}")),
            Err(p) => {
                let msg = panic_text(&*p);
                if !is_power_cut(&msg) {
                    return Err(format!("compaction {attempt}: panicked: {msg}"));
                }
                st.found.compact_cuts += 1;
                false
            }
        };
        let mut j = open(flash, group, cfg, "open after a compaction")?;
        let (c, got) = check(&st.model, &mut j, &format!("{name}: compaction {attempt}"));
        st.found.counts.add(c);
        if !c.clean() {
            return Err(format!("compaction {attempt}: {c:?}"));
        }
        st.model.adopt(&got);
        if done {
            st.found.compactions += 1;
            st.peak = got.len();
            return Ok(());
        }
    }
    Err("no compaction completed in 1000 tries".into())
}

/// Stable power at the end: everything promised is there; acked down, `K`
/// bodies of the bound go in and come back after a reopen.
fn settle<const K: usize>(
    flash: &mut SimFlash,
    group: u32,
    cfg: Config<K>,
    model: &mut Model,
    name: &str,
) -> Result<Counts, String> {
    let mut j = open(flash, group, cfg, "open")?;
    let mut c = check(model, &mut j, name).0;
    for id in j.pending_ids() {
        j.ack(id).map_err(|e| format!("ack: {e}"))?;
        model.acked(id);
    }
    for i in 0..K {
        let payload: Vec<u8> = (0..cfg.max_body()).map(|b| (i * 7 + b) as u8).collect();
        let id = j
            .push(&payload)
            .map_err(|e| format!("push {i} of {K} once acked down: {e}"))?;
        model.pushed(id, payload);
    }
    drop(j);
    let mut j = open(flash, group, cfg, "open")?;
    c.add(check(model, &mut j, name).0);
    Ok(c)
}

/// One draw: a region and its phases.
fn run(seed: u64, phases: u64, cuts: u64) -> Found {
    let mut rng = Pcg32::new(seed);
    let region = draw_region(&mut rng);
    let g = region.geometry;
    let blocks = Geometry {
        sector_size: g.sector_size / region.group,
        sector_count: g.sector_count * region.group,
        ..g
    };
    let mut flash = SimFlash::new(blocks);
    let mut st = State {
        model: Model::default(),
        rng,
        found: Found::default(),
        peak: 0,
    };
    let mut last = None;
    // The phase with the largest `N` that opened (the latest of equals).
    let mut widest: Option<Phase> = None;
    let region_name = format!(
        "seed {seed:#x}: {}x{} B in {} blocks, unit {} B, multiwrite {}, auth {}",
        g.sector_count, g.sector_size, region.group, g.write_size, g.multiwrite, region.auth
    );
    let group = region.group;
    let mut history = String::new();
    for k in 0..phases {
        let p = next_phase(&mut st.rng, &region);
        history.push_str(&format!(
            "\n  phase {k}: N {}, bodies up to {} B, reserve {}, {:?}",
            p.n, p.max_body, p.reserve, p.ack_mode
        ));
        let name = format!("{region_name}{history}");
        let f = &mut flash;
        let r = by_n!(
            p.n,
            phase(f, group, config(&region, &p).unwrap(), &mut st, cuts, &name)
        );
        st.found.phases += 1;
        let r = match r {
            Ok(Opened::History) => {
                // Migrate: compact under the widest `N` that opened, then the
                // phase must open.
                st.found.history += 1;
                let w = widest.expect("a refusal for history follows a phase that opened");
                let name = format!("{name}\n  compacted with N {}", w.n);
                let c = by_n!(
                    w.n,
                    compact(f, group, config(&region, &w).unwrap(), &mut st, &name)
                );
                c.and_then(|()| {
                    by_n!(
                        p.n,
                        phase(f, group, config(&region, &p).unwrap(), &mut st, cuts, &name)
                    )
                })
                .and_then(|o| match o {
                    Opened::Yes => Ok(o),
                    o => Err(format!("after the compaction: {o:?}")),
                })
            }
            r => r,
        };
        match r {
            Ok(Opened::Yes) => {
                last = Some(p);
                if widest.is_none_or(|w| p.n >= w.n) {
                    widest = Some(p);
                }
            }
            Ok(Opened::TooMany) => st.found.too_many += 1,
            Ok(Opened::History) => unreachable!("migrated above"),
            Err(e) => {
                st.found.fail(format!("{name}\n  {e}"));
                return st.found;
            }
        }
    }
    // The last phase that opened settles (a refused one changed nothing).
    if let Some(p) = last {
        let name = format!("{region_name}{history}\n  settle");
        let (f, m) = (&mut flash, &mut st.model);
        let r = by_n!(
            p.n,
            settle(f, group, config(&region, &p).unwrap(), m, &name)
        );
        match r {
            Ok(c) if c.clean() => st.found.counts.add(c),
            Ok(c) => st.found.fail(format!("{name}: {c:?}")),
            Err(e) => st.found.fail(format!("{name}: {e}")),
        }
    }
    st.found
}

#[test]
fn i1_i4_i6_i10_a_firmware_update_changes_the_config() {
    quiet_power_cuts();
    let draws = env_u64("CONFIG_CHANGE_DRAWS", 100);
    let phases = env_u64("CONFIG_CHANGE_PHASES", 6);
    let cuts = env_u64("CONFIG_CHANGE_CUTS", 40);
    let t = fan_out_with(
        draws,
        |i| run(0xC0_0000 + i, phases, cuts),
        |t: &mut Found, f| {
            t.phases += f.phases;
            t.too_many += f.too_many;
            t.history += f.history;
            t.cuts += f.cuts;
            t.compactions += f.compactions;
            t.compact_cuts += f.compact_cuts;
            t.full += f.full;
            t.longer += f.longer;
            t.counts.add(f.counts);
            if let Some(w) = f.first {
                t.first.get_or_insert(w);
            }
        },
    );
    println!(
        "config changes: {draws} regions, {} phases ({} refused with TooManyPending for more pending than N, {} for records showing more at once, each then compacted under a larger N and opened; {} opening records longer than their bound), {} cuts, {} compactions completed through {} cuts, {} Full, {}",
        t.phases,
        t.too_many,
        t.history,
        t.longer,
        t.cuts,
        t.compactions,
        t.compact_cuts,
        t.full,
        t.counts.summary()
    );
    assert!(
        t.first.is_none(),
        "first failure: {}",
        t.first.unwrap_or_default()
    );
    // The scenarios the test is for did occur.
    assert!(t.too_many > 0 && t.longer > 0 && t.cuts > 0);
    assert!(t.history > 0 && t.compactions == t.history && t.compact_cuts > 0);
}

/// Pushes `count` bodies of up to `max_body` bytes and acks all but every
/// fifth, returning the flash.
fn written<const K: usize>(g: Geometry, cfg: Config<K>, count: usize) -> SimFlash {
    let mut flash = SimFlash::new(g);
    let mut rng = Pcg32::new(0xC0C0);
    let mut j = open(&mut flash, 1, cfg, "open").unwrap();
    for i in 0..count {
        let id = j.push(&random_body(&mut rng, cfg.max_body())).unwrap();
        if i % 5 != 0 {
            j.ack(id).unwrap();
        }
    }
    drop(j);
    flash
}

/// `image` (of a region of `from`) read as a region of geometry `to`: the same
/// bytes, sized to `to` (erased past the end of `image`).
fn reread(image: &[u8], to: Geometry) -> SimFlash {
    let mut bytes = vec![0xFF; to.size() as usize];
    let n = bytes.len().min(image.len());
    bytes[..n].copy_from_slice(&image[..n]);
    SimFlash::from_image(to, bytes).unwrap()
}

#[test]
fn i8_i9_an_update_that_changes_the_region_or_its_authentication_is_refused() {
    let g = Geometry {
        sector_size: 2048,
        sector_count: 8,
        write_size: 8,
        multiwrite: false,
    };
    let key = Auth::new(AUTH_KEY, REGION_ID);
    let plain = Config::<16>::try_new(g, 100).unwrap();
    let auth = plain.with_auth(key).unwrap();
    // Switched on or off: the headers say which; with another key or region
    // identity: the first header's tag fails, as a forged one's does.
    let forged = |r: &Result<(), OpenError>| {
        matches!(
            r,
            Err(OpenError::Corrupted {
                offset: 0,
                reason: Corruption::Forged
            })
        )
    };
    let mismatch = |r: &Result<(), OpenError>| matches!(r, Err(OpenError::AuthMismatch { .. }));
    type Expect = fn(&Result<(), OpenError>) -> bool;
    for (what, cfg, other, expect) in [
        (
            "plain, opened authenticated",
            plain,
            auth,
            mismatch as Expect,
        ),
        ("authenticated, opened plain", auth, plain, mismatch),
        (
            "authenticated, opened with another key",
            auth,
            plain.with_auth(Auth::new([0x11; 32], REGION_ID)).unwrap(),
            forged,
        ),
        (
            "authenticated, opened as another region",
            auth,
            plain
                .with_auth(Auth::new(AUTH_KEY, *b"another region  "))
                .unwrap(),
            forged,
        ),
    ] {
        // Enough events for several sectors.
        let mut flash = written(g, cfg, 60);
        let before = flash.image().to_vec();
        let r = Journal::<_, 16>::open(&mut flash, other).map(|_| ());
        assert!(expect(&r), "{what}: {r:?}");
        assert_eq!(flash.image(), before.as_slice(), "{what}: wrote");
        // And the right configuration still opens it.
        assert!(open(&mut flash, 1, cfg, "open").is_ok(), "{what}");
    }
    let flash = written(g, plain, 60);
    for (what, to) in [
        (
            "more sectors",
            Geometry {
                sector_count: 12,
                ..g
            },
        ),
        (
            "fewer sectors",
            Geometry {
                sector_count: 5,
                ..g
            },
        ),
        (
            "larger sectors",
            Geometry {
                sector_size: 4096,
                ..g
            },
        ),
        (
            "smaller sectors",
            Geometry {
                sector_size: 1024,
                sector_count: 16,
                ..g
            },
        ),
        (
            "a larger program unit",
            Geometry {
                write_size: 16,
                ..g
            },
        ),
        ("a smaller program unit", Geometry { write_size: 4, ..g }),
    ] {
        let mut f = reread(flash.image(), to);
        let before = f.image().to_vec();
        let cfg = Config::<16>::try_new(to, 100).unwrap();
        let r = Journal::<_, 16>::open(&mut f, cfg).map(|_| ());
        assert!(
            matches!(r, Err(OpenError::ForeignGeometry { .. })),
            "{what}: {r:?}"
        );
        assert_eq!(f.image(), before.as_slice(), "{what}: wrote");
    }
}

/// The typed store across an update that lowers `CH` or `N`: refused with the
/// typed error, writing nothing, while the pending events name more channels
/// or number more; opened by a configuration that holds them. And lowering `N`
/// with fewer pending whose records show more at once: refused, then opened
/// once a store of the old `N` compacted.
#[test]
fn i6_an_update_of_the_store_below_its_pending_channels_or_events_is_refused() {
    let g = Geometry {
        sector_size: 4096,
        sector_count: 6,
        write_size: 4,
        multiwrite: false,
    };
    let mut flash = SimFlash::new(g);
    let event = |channel: u8, update_id: u64| MonitorEvent::UpdateCompleted {
        channel: ChannelId([channel; 32]),
        update_id,
    };
    // A store of N = 8 refuses the image with TooManyPending, writing nothing.
    let refused_by_8 = |flash: &mut SimFlash| {
        let before = flash.image().to_vec();
        let r = EventStore::<_, 8>::open(&mut *flash, Config::try_new(g, MAX_ENCODED_LEN).unwrap())
            .map(|_| ());
        assert!(
            matches!(
                r,
                Err(StoreError::Journal(OpenError::TooManyPending {
                    capacity: 8
                }))
            ),
            "{r:?}"
        );
        assert_eq!(flash.image(), before.as_slice(), "a refused open wrote");
    };
    // Twelve events on six channels, under CH = N = 16.
    let mut s = EventStore::<_, 16>::open(&mut flash, Config::try_new(g, MAX_ENCODED_LEN).unwrap())
        .unwrap();
    for i in 0..12u8 {
        s.push(&event(i % 6, u64::from(i))).unwrap();
    }
    drop(s);
    let before = flash.image().to_vec();
    let r = EventStore::<_, 16, 8, NoCounter, 4>::open(
        &mut flash,
        Config::try_new(g, MAX_ENCODED_LEN).unwrap(),
    )
    .map(|_| ());
    assert!(
        matches!(r, Err(StoreError::TooManyChannels { capacity: 4 })),
        "{r:?}"
    );
    assert_eq!(flash.image(), before.as_slice(), "a refused open wrote");
    refused_by_8(&mut flash);
    // Six channels fit a table of 6; twelve events a store of 12.
    let mut s = EventStore::<_, 12, 8, NoCounter, 6>::open(
        &mut flash,
        Config::try_new(g, MAX_ENCODED_LEN).unwrap(),
    )
    .unwrap();
    s.no_updates_in_flight();
    let mut released = 0;
    while let Some((id, e)) = s.release_next() {
        assert_eq!(e, event(released as u8 % 6, released));
        s.ack(MonitorEventSource {
            channel: e.channel(),
            id,
        })
        .unwrap();
        released += 1;
    }
    assert_eq!(released, 12);
    drop(s);
    // Sixteen more, twelve of them acked: four pending, but the records show
    // sixteen at once, so N = 8 is refused until a store of 16 compacts.
    let mut s = EventStore::<_, 16>::open(&mut flash, Config::try_new(g, MAX_ENCODED_LEN).unwrap())
        .unwrap();
    s.no_updates_in_flight();
    for i in 0..16u8 {
        s.push(&event(i % 6, 100 + u64::from(i))).unwrap();
    }
    let mut kept = Vec::new();
    while let Some((id, e)) = s.release_next() {
        if kept.len() < 4 && id.0 % 4 == 0 {
            kept.push((id, e));
        } else {
            s.ack(MonitorEventSource {
                channel: e.channel(),
                id,
            })
            .unwrap();
        }
    }
    assert_eq!(kept.len(), 4);
    drop(s);
    refused_by_8(&mut flash);
    let mut s = EventStore::<_, 16>::open(&mut flash, Config::try_new(g, MAX_ENCODED_LEN).unwrap())
        .unwrap();
    s.compact();
    drop(s);
    let mut s =
        EventStore::<_, 8>::open(&mut flash, Config::try_new(g, MAX_ENCODED_LEN).unwrap()).unwrap();
    s.no_updates_in_flight();
    let mut again = Vec::new();
    while let Some(x) = s.release_next() {
        again.push(x);
    }
    assert_eq!(
        again, kept,
        "the compacted store gives back what was pending"
    );
}
