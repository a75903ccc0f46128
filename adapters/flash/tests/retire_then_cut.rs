//! The adversary of a capacity bounded by the region: a power cut right after
//! every retirement, while the store is full.
//!
//! Where `N` copies of the largest event do not fit in one sector, the journal
//! keeps a copy budget per sector (see `Config`): what is pending in a sector
//! fits, copied, into the one fresh sector a restart rolls over into. Without it,
//! a sector full of pending events (whose records carry no id) needs more than
//! one sector once copied (each copy carries its 8 B id): the retirement after
//! each restart then takes two sectors and gives one back, and a cut right after
//! each retirement drains the free sectors one by one until none is left.
//!
//! Each life of the run: reopen, then keep the store full (ack the newest
//! pending event, push one of the largest size) until a retirement completes,
//! and cut there. A dry run on a copy of the flash finds the operation to cut:
//! the erase of the retired sector (the cut leaves it completed, so the next
//! open sees a finished retirement), or in one life of three the program just
//! before it, the `Retire` record (the next open erases the sector). After each
//! cut the journal reopens and is checked against a model: I1 (nothing returned
//! is lost), I2 (no returned ack comes back), I3 (no id is reused), I4 (the same
//! bytes), and I10: it opens and takes writes again (a journal that cannot find
//! a free sector panics: that is a bricked device).
//!
//! The configurations are at the edge `Config` accepts (`N = max_pending`), with
//! the region bounding `N`: in-place acks, ack records, ack records
//! authenticated, the smallest reserve (1), the fewest sectors (4) with a 32 B
//! unit. `RETIRE_THEN_CUT_LIVES` sets the lives per configuration (default 120).

mod support;

use monitor_events::journal::{max_pending_with_reserve, AckMode, Auth, Config, Journal};
use monitor_events::Geometry;
use monitor_events_flash::sim::{panic_text, quiet_power_cuts, Op, SimFlash, Torn};
use monitor_events_flash::workload::Pcg32;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use support::{check, Counts, InFlight, Model};

/// Ack mode and authentication of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    InPlace,
    Record,
    RecordAuth,
}

fn config<const K: usize>(g: Geometry, mode: Mode, body: usize, reserve: u32) -> Config<K> {
    let c = Config::<K>::try_new_with_reserve(g, body, reserve).unwrap();
    assert!(c.region_bounded(), "the region must bound N here");
    match mode {
        Mode::InPlace => c.with_ack_mode(AckMode::InPlace).unwrap(),
        Mode::Record => c.with_ack_mode(AckMode::Record).unwrap(),
        Mode::RecordAuth => c
            .with_auth(Auth::new([0x17; 32], *b"retire then cut "))
            .unwrap(),
    }
}

/// One step that keeps the store full: ack the newest pending event (so older
/// sectors stay full of pending ones), push one of `body` random bytes.
fn step<M: monitor_events::Medium, const K: usize>(
    j: &mut Journal<M, K>,
    model: &mut Model,
    rng: &mut Pcg32,
    body: usize,
) {
    if j.pending_count() == K {
        let id = *j.pending_ids().last().unwrap();
        model.in_flight = Some(InFlight::Ack(id.0));
        j.ack(id).expect("ack of a pending id");
        model.acked(id);
    }
    let payload: Vec<u8> = (0..body).map(|_| rng.next_u32() as u8).collect();
    model.in_flight = Some(InFlight::Push(payload.clone()));
    let id = j.push(&payload).expect("push below capacity");
    model.pushed(id, payload);
}

/// What one configuration's run found.
#[derive(Default)]
struct Tally {
    lives: u64,
    cuts: u64,
    retirements_cut_erased: u64,
    retirements_cut_recorded: u64,
    bricked: u64,
    counts: Counts,
    first: Option<String>,
}

/// Steps a life may take before its first retirement completes.
const MAX_STEPS: usize = 4000;

fn run<const K: usize>(g: Geometry, mode: Mode, body: usize, reserve: u32, lives: u64) -> Tally {
    let cfg = config::<K>(g, mode, body, reserve);
    let name = format!(
        "{}x{} B, unit {} B, {mode:?}, N {K}, reserve {reserve}",
        g.sector_count, g.sector_size, g.write_size
    );
    let mut t = Tally::default();
    let mut flash = SimFlash::new(cfg.geometry());
    let mut model = Model::default();
    let mut rng = Pcg32::new(0x5EC7 + K as u64);
    // Fill the store with stable power.
    {
        let mut j = Journal::open(&mut flash, cfg).unwrap();
        while j.pending_count() < K {
            step(&mut j, &mut model, &mut rng, body);
        }
    }
    for life in 0..lives {
        // The dry run: the same steps on a copy, logging every operation.
        let log: Rc<RefCell<Vec<Op>>> = Rc::default();
        let mut probe = flash.clone();
        {
            let log = log.clone();
            probe.set_fork_hook(move |_, op| log.borrow_mut().push(op.clone()));
        }
        let (mut m2, mut r2) = (model.clone(), rng.clone());
        let dry = catch_unwind(AssertUnwindSafe(|| {
            let mut j = Journal::open(&mut probe, cfg).expect("open");
            for _ in 0..MAX_STEPS {
                step(&mut j, &mut m2, &mut r2, body);
                let ops = log.borrow();
                // A retirement's erase: an erase after the life's first program.
                let first_program = ops.iter().position(|o| matches!(o, Op::Program { .. }));
                if let Some(p) = first_program {
                    if let Some(e) = ops[p..].iter().position(|o| matches!(o, Op::Erase { .. })) {
                        return Some(p + e);
                    }
                }
            }
            None
        }));
        let erase_at = match dry {
            Ok(Some(e)) => e,
            Ok(None) => {
                t.bricked += 1;
                t.first.get_or_insert(format!(
                    "{name}: life {life}: no retirement in {MAX_STEPS} steps"
                ));
                break;
            }
            Err(p) => {
                t.bricked += 1;
                t.first.get_or_insert(format!(
                    "{name}: life {life}: panicked: {}",
                    panic_text(&*p)
                ));
                break;
            }
        };
        // Cut the real flash there: after the erase, or after the Retire record.
        let (k, erased) = if life % 3 == 2 {
            (erase_at - 1, false)
        } else {
            (erase_at, true)
        };
        flash.cut_after(k as u64, Torn::Completed);
        let cut = catch_unwind(AssertUnwindSafe(|| {
            let mut j = Journal::open(&mut flash, cfg).expect("open");
            for _ in 0..MAX_STEPS {
                step(&mut j, &mut model, &mut rng, body);
            }
        }));
        assert!(flash.is_dead(), "{name}: life {life}: the cut did not fire");
        assert!(cut.is_err(), "{name}: life {life}: no panic at the cut");
        flash.power_on();
        t.cuts += 1;
        if erased {
            t.retirements_cut_erased += 1;
        } else {
            t.retirements_cut_recorded += 1;
        }
        let mut j = match Journal::open(&mut flash, cfg) {
            Ok(j) => j,
            Err(e) => {
                t.bricked += 1;
                t.first
                    .get_or_insert(format!("{name}: life {life}: open failed: {e}"));
                break;
            }
        };
        let (c, got) = check(&model, &mut j, &format!("{name}: life {life}"));
        t.counts.add(c);
        if !c.clean() {
            t.first.get_or_insert(format!("{name}: life {life}: {c:?}"));
            break;
        }
        model.adopt(&got);
        t.lives += 1;
    }
    t
}

/// I10 (with I1–I4): a cut right after every retirement of a full store, where
/// the region bounds `N`. Prints the line the closing notes quote.
#[test]
fn i10_cut_after_every_retirement_of_a_full_store() {
    quiet_power_cuts();
    let lives = std::env::var("RETIRE_THEN_CUT_LIVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    const G1: Geometry = Geometry {
        sector_size: 1024,
        sector_count: 16,
        write_size: 4,
        multiwrite: true,
    };
    const G2: Geometry = Geometry {
        sector_size: 512,
        sector_count: 24,
        write_size: 1,
        multiwrite: false,
    };
    const G3: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 8,
        multiwrite: false,
    };
    // The fewest sectors the region rule allows, a 32 B unit.
    const G4: Geometry = Geometry {
        sector_size: 2048,
        sector_count: 4,
        write_size: 32,
        multiwrite: false,
    };
    macro_rules! case {
        ($g:expr, $mode:expr, $body:expr, $reserve:expr) => {{
            const K: usize =
                max_pending_with_reserve($g, $body, matches!($mode, Mode::RecordAuth), $reserve);
            run::<K>($g, $mode, $body, $reserve, lives)
        }};
    }
    let runs = [
        case!(G1, Mode::InPlace, 100, 3),
        case!(G1, Mode::Record, 100, 1),
        case!(G2, Mode::RecordAuth, 40, 3),
        case!(G2, Mode::Record, 60, 1),
        case!(G3, Mode::Record, 214, 1),
        case!(G3, Mode::RecordAuth, 214, 2),
        case!(G4, Mode::RecordAuth, 100, 1),
    ];
    let mut all = Tally::default();
    for r in runs {
        all.lives += r.lives;
        all.cuts += r.cuts;
        all.retirements_cut_erased += r.retirements_cut_erased;
        all.retirements_cut_recorded += r.retirements_cut_recorded;
        all.bricked += r.bricked;
        all.counts.add(r.counts);
        if all.first.is_none() {
            all.first = r.first;
        }
    }
    let c = all.counts;
    println!(
        "cut after every retirement of a full store: lives {}, cuts {} ({} after the erase, {} after the Retire record), bricked {}, lost {}, resurrected {}, reused ids {}, wrong data {}",
        all.lives, all.cuts, all.retirements_cut_erased, all.retirements_cut_recorded,
        all.bricked, c.lost, c.resurrected, c.reused, c.wrong
    );
    assert!(
        all.bricked == 0 && c.clean(),
        "first failure: {}",
        all.first.unwrap_or_default()
    );
    assert_eq!(all.lives, 7 * lives);
}
