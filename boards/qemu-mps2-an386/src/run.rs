//! `run`: a simulated channel monitor pushing events and a consumer acking them,
//! until QEMU is killed (or `ops` operations are done).
//!
//! Every returned id and every returned ack is appended to the report log
//! ([`report`](crate::report)) before the loop goes on, so the log is a lower bound
//! of what the store promised: `verify` checks the image against it.
//!
//! | step | chance | what |
//! |---|---|---|
//! | boot | — | open, check every pending body (I4), log `B`; the events still pending join the consumer's window and are acked like new ones |
//! | push | 55 % (always when nothing is pending) | one event, or 1 in 8 a group commit of two (`push_batch`), unless `N` are pending |
//! | ack | 45 % (always when `N` are pending) | the oldest pending event (2 in 3) or a random one; 1 in 8 two at once (`ack_batch`) |

use crate::args::Args;
use crate::events::{body_for, Pcg32};
use crate::journal::{self, body_matches, N};
use crate::mirror::{MirrorFlash, SIZE};
use crate::report::Report;
use monitor_events::journal::AckOutcome;
use monitor_events::{EventId, MAX_ENCODED_LEN};

/// Pushes and acks until killed; false if anything fails before that.
pub fn run(ram: &'static mut [u8; SIZE], args: &Args) -> bool {
    let (mut m, boot) = match MirrorFlash::attach(ram, args.image, args.multiwrite) {
        Ok(x) => x,
        Err(e) => {
            defmt::error!("run: cannot attach {=str}: {}", args.image, e);
            return false;
        }
    };
    if let Some(n) = args.fail_at {
        defmt::info!("run: program or erase number {} will fail", n);
        m.fail_at(n);
    }
    let mut j = match journal::open_journal(&mut m, args.auth) {
        Ok(j) => j,
        Err(e) => {
            defmt::error!("run: open failed: {}", e);
            return false;
        }
    };
    let mut log = match Report::open(args.log) {
        Ok(l) => l,
        Err(e) => {
            defmt::error!("run: cannot open the log {=str}: {}", args.log, e);
            return false;
        }
    };
    let mut window: heapless::Vec<EventId, N> = j.pending_ids();
    defmt::info!(
        "run: {}, next id {}, {} pending",
        boot,
        j.next_id(),
        window.len()
    );
    for &id in &window {
        defmt::assert!(
            body_matches(&mut j, id),
            "I4: pending event {} differs from what was pushed",
            id
        );
    }
    report(&mut log, b'B', j.next_id().0, Some(window.len() as u64));

    let mut rng =
        Pcg32::new(j.next_id().0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ window.len() as u64);
    let (mut pushes, mut acks) = (0u64, 0u64);
    let mut ops = 0u64;
    while args.ops == 0 || ops < args.ops {
        ops += 1;
        let ack = window.len() == N || (!window.is_empty() && rng.below(100) < 45);
        if ack {
            let two = window.len() >= 2 && rng.below(8) == 0;
            let mut ids = [EventId(0); 2];
            let n = if two { 2 } else { 1 };
            for slot in ids.iter_mut().take(n) {
                let i = if rng.below(3) < 2 {
                    0
                } else {
                    rng.below(window.len() as u32) as usize
                };
                *slot = window.remove(i);
                report(&mut log, b'a', slot.0, None);
            }
            let mut out = [AckOutcome::Acked; 2];
            if let Err(e) = j.ack_batch(&ids[..n], &mut out) {
                defmt::panic!("ack of {} refused: {}", ids[..n], e);
            }
            defmt::assert!(
                out[..n].iter().all(|o| *o == AckOutcome::Acked),
                "ack of a pending event"
            );
            for id in &ids[..n] {
                report(&mut log, b'A', id.0, None);
            }
            acks += n as u64;
        } else {
            let two = window.len() + 2 <= N && rng.below(8) == 0;
            let n = if two { 2 } else { 1 };
            let first = j.next_id().0;
            let (mut b0, mut b1) = ([0u8; MAX_ENCODED_LEN], [0u8; MAX_ENCODED_LEN]);
            let bodies = [body_for(first, &mut b0), body_for(first + 1, &mut b1)];
            let mut ids = [EventId(0); 2];
            if let Err(e) = j.push_batch(&bodies[..n], &mut ids) {
                defmt::panic!("push refused: {}", e);
            }
            for (k, id) in ids[..n].iter().enumerate() {
                defmt::assert_eq!(
                    id.0,
                    first + k as u64,
                    "I3: the id push returned is next_id"
                );
                report(&mut log, b'P', id.0, Some(bodies[k].len() as u64));
                let _ = window.push(*id);
            }
            pushes += n as u64;
        }
        if ops % 1000 == 0 {
            defmt::info!(
                "run: {} pushes, {} acks, {} pending, next id {}",
                pushes,
                acks,
                window.len(),
                j.next_id()
            );
        }
    }
    defmt::info!(
        "run: done: {} pushes, {} acks, {} pending, next id {}",
        pushes,
        acks,
        window.len(),
        j.next_id()
    );
    true
}

fn report(log: &mut Report, tag: u8, a: u64, b: Option<u64>) {
    if let Err(e) = log.line(tag, a, b) {
        defmt::panic!("run: write to the report log failed: {}", e);
    }
}
