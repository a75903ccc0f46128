//! Kill tests: a child process pushes and acks on a store file and reports on
//! stdout (a pipe) what is durable after each call returns; the parent SIGKILLs it
//! at random moments, reopens the store itself and checks the report against it.
//!
//! Protocol, one line per fact, written by the child:
//!
//! | line | when | meaning |
//! |---|---|---|
//! | `p ID LEN SEED` | before a push (one per body of a batch) | about to push body `payload(SEED, LEN)`, which should get `ID` |
//! | `P ID LEN SEED` | after the push returned | event `ID` is durable (I1) |
//! | `a ID` | before an ack (one per id of a batch) | about to ack `ID` |
//! | `A ID` | after the ack returned | the ack of `ID` is durable (I2) |
//!
//! Intent lines (`p`, `a`) let the parent tell the one operation in flight at the
//! kill from everything else: only it may go either way.
//!
//! Checks after every kill: every reported push that is not reported acked is
//! pending with the exact bytes (I1, I4: else "lost"); no reported ack is pending
//! again (I2: else "resurrected"); every reported id is above all earlier ones and
//! `next_id` is above every id seen (I3: else "reused"); a pending id nobody
//! announced is an error. Then the next child runs on the same file.
//!
//! `KILLS` (default 300) sets the number of kills, split over three stores:
//! in-place acks, ack records, and authenticated records. `KILL_SEED` sets the
//! seed.

mod common;

use common::{child, payload, scratch_dir, Rng, CHILD_ENV};
use monitor_events::journal::{Auth, Config};
use monitor_events::{EventId, Geometry};
use monitor_events_file::FileStore;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const N: usize = 16;
const MAX_BODY: usize = 200;
/// 8 sectors of 4 KiB: small, so that children roll over and compact often.
const GEOMETRY: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 8,
    multiwrite: true,
};

/// The stores' modes, as the child's role names them.
const MODES: [&str; 3] = ["in-place", "ack-records", "authenticated"];

/// The configuration of a mode of [`MODES`].
fn config(mode: &str) -> Config<N> {
    let c = Config::try_new(
        Geometry {
            multiwrite: mode == "in-place",
            ..GEOMETRY
        },
        MAX_BODY,
    )
    .expect("kill-test configuration");
    match mode {
        "authenticated" => c
            .with_auth(Auth::new([0x4B; 32], *b"kill-test region"))
            .expect("authenticated kill-test configuration"),
        _ => c,
    }
}

/// The child: `CHILD_ENV = "MODE SEED PATH"`. Pushes and acks forever.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = role.splitn(3, ' ');
    let mode = parts.next().unwrap().to_string();
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let path = parts.next().unwrap();
    let mut rng = Rng::new(seed);
    let mut j = FileStore::open(path, config(&mode)).expect("child: open the store");
    let mut out = std::io::stdout().lock();
    let mut line = |s: String| {
        writeln!(out, "{s}").unwrap();
        out.flush().unwrap();
    };
    loop {
        let pending: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
        let r = rng.below(100);
        if pending.len() == N || (!pending.is_empty() && r < 45) {
            // Ack: one id, or a batch of distinct ids, in random order.
            let k = if r < 10 {
                1 + rng.below(pending.len().min(4) as u64) as usize
            } else {
                1
            };
            let mut ids = Vec::new();
            while ids.len() < k {
                let id = pending[rng.below(pending.len() as u64) as usize];
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            for id in &ids {
                line(format!("a {}", id.0));
            }
            if let [id] = ids[..] {
                j.ack(id).unwrap();
            } else {
                let mut outcomes = vec![monitor_events::journal::AckOutcome::Acked; ids.len()];
                j.ack_batch(&ids, &mut outcomes).unwrap();
            }
            for id in &ids {
                line(format!("A {}", id.0));
            }
        } else {
            // Push: one body, or a batch.
            let room = (N - pending.len()) as u64;
            let k = if r > 90 {
                1 + rng.below(room.min(4)) as usize
            } else {
                1
            };
            let specs: Vec<(usize, u64)> = (0..k)
                .map(|_| (rng.below(MAX_BODY as u64 + 1) as usize, rng.next_u64()))
                .collect();
            let next = j.next_id().0;
            for (i, (len, s)) in specs.iter().enumerate() {
                line(format!("p {} {len} {s}", next + i as u64));
            }
            let bodies: Vec<Vec<u8>> = specs.iter().map(|&(len, s)| payload(s, len)).collect();
            let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
            let mut ids = vec![EventId(0); k];
            j.push_batch(&refs, &mut ids).unwrap();
            for (id, (len, s)) in ids.iter().zip(&specs) {
                line(format!("P {} {len} {s}", id.0));
            }
        }
    }
}

/// What the parent knows about one store.
#[derive(Default)]
struct Model {
    /// Reported pushed, not reported acked: id -> (len, seed).
    pending: BTreeMap<u64, (usize, u64)>,
    /// Reported acked.
    acked: BTreeSet<u64>,
    /// The highest id reported or seen so far.
    max_id: Option<u64>,
    /// Intents of the operation in flight: pushes and acks.
    push_intents: BTreeMap<u64, (usize, u64)>,
    ack_intents: BTreeSet<u64>,
    /// Ids already counted as failures (each is counted once).
    failed: BTreeSet<u64>,
}

#[derive(Default, Debug)]
struct Counts {
    kills: u64,
    lost: u64,
    resurrected: u64,
    reused: u64,
    unannounced: u64,
    wrong_bytes: u64,
    child_died: u64,
    in_flight: u64,
    lines: u64,
}

impl Model {
    fn apply(&mut self, line: &str, counts: &mut Counts) {
        let f: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| -> u64 { f[i].parse().unwrap() };
        match f[0] {
            "p" => {
                // A new operation starts: the previous one returned.
                self.ack_intents.clear();
                self.push_intents.insert(num(1), (num(2) as usize, num(3)));
            }
            "a" => {
                self.push_intents.clear();
                self.ack_intents.insert(num(1));
            }
            "P" => {
                counts.lines += 1;
                let id = num(1);
                if self.max_id.is_some_and(|m| id <= m) {
                    counts.reused += 1;
                    eprintln!("reused id: {id} reported after {:?}", self.max_id);
                }
                self.max_id = Some(self.max_id.map_or(id, |m| m.max(id)));
                self.push_intents.remove(&id);
                self.pending.insert(id, (num(2) as usize, num(3)));
            }
            "A" => {
                counts.lines += 1;
                let id = num(1);
                self.ack_intents.remove(&id);
                self.pending.remove(&id);
                self.acked.insert(id);
            }
            _ => {} // the test harness's own output
        }
    }

    /// Reopens the store and checks it against the reports; resolves the operation
    /// in flight by what is found.
    fn check(&mut self, path: &Path, mode: &str, counts: &mut Counts, context: &str) {
        let mut j = FileStore::open(path, config(mode))
            .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        let found: BTreeMap<u64, usize> = j.pending().map(|(id, len)| (id.0, len)).collect();
        let mut buf = vec![0u8; MAX_BODY];
        let mut verify =
            |j: &mut monitor_events::journal::Journal<_, N>, id: u64, len: usize, seed: u64| {
                let n = j.read(EventId(id), &mut buf).unwrap();
                n == len && buf[..n] == payload(seed, len)[..]
            };
        if !self.push_intents.is_empty() || !self.ack_intents.is_empty() {
            counts.in_flight += 1;
        }
        for (&id, &(len, seed)) in &self.pending.clone() {
            if !found.contains_key(&id) {
                if self.ack_intents.contains(&id) {
                    // The ack in flight landed.
                    self.pending.remove(&id);
                    self.acked.insert(id);
                } else if self.failed.insert(id) {
                    counts.lost += 1;
                    eprintln!("{context}: I1: event {id} was reported durable and is gone");
                }
            } else if !verify(&mut j, id, len, seed) && self.failed.insert(id) {
                counts.wrong_bytes += 1;
                eprintln!("{context}: I4: event {id} reads back different bytes");
            }
        }
        let unexpected: Vec<u64> = found
            .keys()
            .copied()
            .filter(|id| !self.pending.contains_key(id))
            .collect();
        for id in unexpected {
            if self.acked.contains(&id) {
                if self.failed.insert(id) {
                    counts.resurrected += 1;
                    eprintln!("{context}: I2: event {id} was reported acked and is pending again");
                }
            } else if let Some(&(len, seed)) = self.push_intents.get(&id) {
                // The push in flight landed: from now on it must stay.
                if !verify(&mut j, id, len, seed) {
                    counts.wrong_bytes += 1;
                    eprintln!("{context}: I4: in-flight event {id} reads back different bytes");
                }
                self.pending.insert(id, (len, seed));
                self.max_id = Some(self.max_id.map_or(id, |m| m.max(id)));
            } else if self.failed.insert(id) {
                counts.unannounced += 1;
                eprintln!("{context}: event {id} is pending but was never pushed");
            }
        }
        if let Some(max) = self.max_id {
            if j.next_id().0 <= max {
                counts.reused += 1;
                eprintln!(
                    "{context}: I3: next_id {} is not above id {max}",
                    j.next_id().0
                );
            }
        }
        // Whatever the in-flight push did, its ids must not come back as others':
        // the next child starts from next_id, checked above against reported ids.
        self.push_intents.clear();
        self.ack_intents.clear();
    }
}

/// One child run: spawn, read reports, kill at a random moment, drain the pipe.
fn run_child(
    path: &Path,
    mode: &str,
    seed: u64,
    rng: &mut Rng,
    model: &mut Model,
    counts: &mut Counts,
) {
    let role = format!("{mode} {seed} {}", path.display());
    let mut proc = child("child_process_entry_point", &role)
        .spawn()
        .expect("spawn child");
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Kill after a number of completed calls, or after a delay (which may fall
    // before the first call, inside open, or in the middle of any call).
    let start = Instant::now();
    let (after_lines, deadline) = if rng.below(2) == 0 {
        (Some(rng.below(40)), start + Duration::from_secs(10))
    } else {
        (None, start + Duration::from_micros(rng.below(40_000)))
    };
    let mut completed = 0u64;
    loop {
        if after_lines.is_some_and(|n| completed >= n) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(line) => {
                if line.starts_with('P') || line.starts_with('A') {
                    completed += 1;
                }
                model.apply(&line, counts);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = proc.kill(); // SIGKILL
    let status = proc.wait().unwrap();
    if status.code().is_some() {
        counts.child_died += 1;
        eprintln!("child (seed {seed}) exited by itself: {status}");
    }
    // Everything the child wrote before it died was true when written.
    reader.join().unwrap();
    for line in rx.try_iter() {
        model.apply(&line, counts);
    }
    counts.kills += 1;
}

#[test]
fn process_kills_lose_nothing_resurrect_nothing_reuse_no_id() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let kills: u64 =
        std::env::var("KILLS").map_or(300, |v| v.parse().expect("KILLS must be a number"));
    let seed: u64 = std::env::var("KILL_SEED").map_or(0x6b69_6c6c, |v| {
        v.parse().expect("KILL_SEED must be a number")
    });
    let dir = scratch_dir("kill");
    let mut rng = Rng::new(seed);
    let mut counts = Counts::default();
    let stores = MODES.map(|mode| (mode, dir.join(format!("{mode}.store"))));
    let mut models = [Model::default(), Model::default(), Model::default()];
    for (mode, path) in &stores {
        FileStore::create(path, config(mode)).unwrap();
    }
    let started = Instant::now();
    for k in 0..kills {
        let s = (k % 3) as usize;
        let (mode, path) = &stores[s];
        let child_seed = seed.wrapping_mul(1_000_003).wrapping_add(k);
        run_child(
            path,
            mode,
            child_seed,
            &mut rng,
            &mut models[s],
            &mut counts,
        );
        let context = format!("kill {k} (KILL_SEED={seed}, child seed {child_seed}, {mode})");
        models[s].check(path, mode, &mut counts, &context);
    }
    // Finally: ack everything left, reopen, nothing pending, ids still above all.
    for ((mode, path), model) in stores.iter().zip(&mut models) {
        let mut j = FileStore::open(path, config(mode)).unwrap();
        let ids: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            model
                .pending
                .keys()
                .map(|&id| EventId(id))
                .collect::<Vec<_>>()
        );
        for id in ids {
            j.ack(id).unwrap();
        }
        drop(j);
        let j = FileStore::open(path, config(mode)).unwrap();
        assert_eq!(j.pending_count(), 0);
        assert!(model.max_id.is_none_or(|m| j.next_id().0 > m));
    }
    println!(
        "process kills: {}, lost: {}, resurrected: {}, reused ids: {}",
        counts.kills,
        counts.lost + counts.wrong_bytes,
        counts.resurrected,
        counts.reused
    );
    let detail = format!(
        "{counts:?} after {:.1?} (KILL_SEED={seed})",
        started.elapsed()
    );
    assert_eq!(counts.kills, kills, "{detail}");
    assert_eq!(counts.lost + counts.wrong_bytes, 0, "{detail}");
    assert_eq!(counts.resurrected, 0, "{detail}");
    assert_eq!(counts.reused, 0, "{detail}");
    assert_eq!(counts.unannounced, 0, "{detail}");
    assert_eq!(counts.child_died, 0, "{detail}");
    assert!(
        counts.lines > kills,
        "the children reported too little: {detail}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
