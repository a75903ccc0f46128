//! F1 of docs/BENCH.md: durable 128 B appends and acks on a file system, one run, one
//! directory, every store side by side.
//!
//! `cargo bench -p monitor-events-file --bench f1 -- [--ops N | --short] [--json] [--dir PATH]`
//!
//! - `--ops N`: durable operations per row (default 2000); `--short`: 200.
//! - `--json`: one JSON object per row on stdout (the header goes to stderr).
//! - `--dir PATH` (or `F1_DIR`): where the files go; default a fresh directory under
//!   the target directory's tmp (`CARGO_TARGET_TMPDIR`). Use a directory on the
//!   file system you care about: on tmpfs `fdatasync` is free.
//!
//! Rows (each op durable on return):
//!
//! | store | op | what one op is |
//! |---|---|---|
//! | raw | `pwrite+fdatasync` | `pwrite` of 128 B into a preallocated file, `fdatasync`: the limit |
//! | monitor-events-file | `push` | `Journal::push` of 128 B |
//! | monitor-events-file | `push_batch/16` | one event of a `push_batch` of 16 (one sync per 16) |
//! | monitor-events-file | `ack` | `Journal::ack` of one id |
//! | monitor-events-file | `ack_batch/16` | one id of an `ack_batch` of 16 |
//! | ldk-fs-pattern | `write` | LDK `FilesystemStore` per object: write a temp file, fsync, rename, fsync the directory |
//! | ldk-fs-pattern | `remove` | its remove: unlink, fsync the directory |
//! | sqlite-wal-full | `insert` | one `INSERT` of 128 B per transaction, WAL, `synchronous=FULL` |
//! | sqlite-wal-full | `insert/16` | one row of a 16-row transaction |
//! | sqlite-wal-full | `delete` | one `DELETE` by primary key per transaction |
//!
//! The rows run interleaved (passes of 16 operations of every row in turn, after
//! an untimed warm-up), so that disk activity from elsewhere on a shared machine
//! spreads over all rows instead of skewing one ratio.
//!
//! Push rows time the pushes only: between rounds of 16 the events are acked with
//! one untimed `ack_batch`, so the store never fills. Ack rows time the acks only:
//! the events they ack are pushed with an untimed `push_batch`. Compaction
//! (rollover, copy, erase) happens inside the timed pushes and acks.

use monitor_events::journal::{AckOutcome, Config, Journal};
use monitor_events::{EventId, Geometry};
use monitor_events_file::{FileMedium, FileStore};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

const BODY: usize = 128;
const BATCH: usize = 16;
/// 32 sectors of 8 KiB (256 KiB): 32 pending events of up to 128 B fit the
/// journal's capacity rule.
const GEOMETRY: Geometry = Geometry {
    sector_size: 8192,
    sector_count: 32,
    write_size: 8,
    multiwrite: true,
};
const CONFIG: Config<32> = Config::new(GEOMETRY, BODY);

struct Args {
    ops: usize,
    json: bool,
    dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        ops: 2000,
        json: false,
        dir: std::env::var_os("F1_DIR").map(PathBuf::from),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ops" => args.ops = it.next().and_then(|n| n.parse().ok()).expect("--ops N"),
            "--short" => args.ops = 200,
            "--json" => args.json = true,
            "--dir" => args.dir = Some(PathBuf::from(it.next().expect("--dir PATH"))),
            "--bench" => {} // passed by `cargo bench`
            other => eprintln!("f1: ignoring argument {other:?}"),
        }
    }
    assert!(args.ops > 0, "--ops must be at least 1");
    args
}

/// Indices `first..first + n` in rounds of at most `BATCH`: `(first index, length)`.
fn rounds(first: usize, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let end = first + n;
    (first..end)
        .step_by(BATCH)
        .map(move |i| (i, BATCH.min(end - i)))
}

fn bodies(first: usize, n: usize) -> Vec<[u8; BODY]> {
    (first..first + n).map(body).collect()
}

/// One row of the table: a store and an operation, run a slice at a time.
trait Scenario {
    fn store(&self) -> &'static str;
    fn op(&self) -> &'static str;
    /// Runs operations `first..first + n` (indices choose bodies and names);
    /// returns the time of the measured part.
    fn run(&mut self, first: usize, n: usize) -> Duration;
}

fn body(i: usize) -> [u8; BODY] {
    let mut b = [0u8; BODY];
    for (k, x) in b.iter_mut().enumerate() {
        *x = (i.wrapping_mul(31).wrapping_add(k * 7) % 251) as u8;
    }
    b
}

/// Times `f` and adds the time to `total`.
fn timed<R>(total: &mut Duration, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    *total += t.elapsed();
    r
}

/// `pwrite` of 128 B into a preallocated 1 MiB file, `fdatasync`.
struct Raw(File);

impl Raw {
    const SIZE: usize = 1 << 20;
    fn new(dir: &Path) -> Self {
        let path = dir.join("raw.bin");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap();
        file.write_all_at(&vec![0xFF; Self::SIZE], 0).unwrap();
        file.sync_all().unwrap();
        Raw(file)
    }
}

impl Scenario for Raw {
    fn store(&self) -> &'static str {
        "raw"
    }
    fn op(&self) -> &'static str {
        "pwrite+fdatasync"
    }
    fn run(&mut self, first: usize, n: usize) -> Duration {
        let slots = Self::SIZE / BODY;
        let mut time = Duration::ZERO;
        for i in first..first + n {
            timed(&mut time, || {
                self.0
                    .write_all_at(&body(i), ((i % slots) * BODY) as u64)
                    .unwrap();
                self.0.sync_data().unwrap();
            });
        }
        time
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreOp {
    Push,
    PushBatch,
    Ack,
    AckBatch,
}

/// Our journal in a file; each row has its own file.
struct Ours {
    j: Journal<FileMedium, 32>,
    op: StoreOp,
}

impl Ours {
    fn new(dir: &Path, op: StoreOp) -> Self {
        let name = match op {
            StoreOp::Push => "push.store",
            StoreOp::PushBatch => "push-batch.store",
            StoreOp::Ack => "ack.store",
            StoreOp::AckBatch => "ack-batch.store",
        };
        Ours {
            j: FileStore::create(dir.join(name), CONFIG).unwrap(),
            op,
        }
    }

    /// Pushes events `first..first + n` in one `push_batch`; their ids.
    fn push_batch(&mut self, first: usize, n: usize) -> Vec<EventId> {
        let bodies = bodies(first, n);
        let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
        let mut ids = vec![EventId(0); n];
        self.j.push_batch(&refs, &mut ids).unwrap();
        ids
    }

    fn ack_batch(&mut self, ids: &[EventId]) {
        let mut out = vec![AckOutcome::Acked; ids.len()];
        self.j.ack_batch(ids, &mut out).unwrap();
    }
}

impl Scenario for Ours {
    fn store(&self) -> &'static str {
        "monitor-events-file"
    }
    fn op(&self) -> &'static str {
        match self.op {
            StoreOp::Push => "push",
            StoreOp::PushBatch => "push_batch/16",
            StoreOp::Ack => "ack",
            StoreOp::AckBatch => "ack_batch/16",
        }
    }
    fn run(&mut self, first: usize, n: usize) -> Duration {
        let mut time = Duration::ZERO;
        for (first, n) in rounds(first, n) {
            match self.op {
                StoreOp::Push => {
                    let mut ids = Vec::new();
                    for b in bodies(first, n) {
                        ids.push(timed(&mut time, || self.j.push(&b).unwrap()));
                    }
                    self.ack_batch(&ids); // untimed: makes room
                }
                StoreOp::PushBatch => {
                    let ids = timed(&mut time, || self.push_batch(first, n));
                    self.ack_batch(&ids); // untimed: makes room
                }
                StoreOp::Ack => {
                    for id in self.push_batch(first, n) {
                        timed(&mut time, || self.j.ack(id).unwrap());
                    }
                }
                StoreOp::AckBatch => {
                    let ids = self.push_batch(first, n);
                    timed(&mut time, || self.ack_batch(&ids));
                }
            }
        }
        time
    }
}

/// LDK `FilesystemStore`'s patterns, one 128 B object per event.
struct Ldk {
    objects: PathBuf,
    remove: bool,
}

impl Scenario for Ldk {
    fn store(&self) -> &'static str {
        "ldk-fs-pattern"
    }
    fn op(&self) -> &'static str {
        if self.remove {
            "remove"
        } else {
            "write"
        }
    }
    fn run(&mut self, first: usize, n: usize) -> Duration {
        let mut time = Duration::ZERO;
        for i in first..first + n {
            let name = self.objects.join(format!("event-{i}"));
            if self.remove {
                // Its (non-lazy) remove: unlink, fsync the directory.
                timed(&mut time, || {
                    std::fs::remove_file(&name).unwrap();
                    File::open(&self.objects).unwrap().sync_all().unwrap();
                });
            } else {
                // Its write: a temp file, write, fsync, rename, fsync the directory.
                let b = body(i);
                timed(&mut time, || {
                    let tmp = self.objects.join(format!("event-{i}.tmp"));
                    let mut f = File::create(&tmp).unwrap();
                    f.write_all(&b).unwrap();
                    f.sync_all().unwrap();
                    std::fs::rename(&tmp, &name).unwrap();
                    File::open(&self.objects).unwrap().sync_all().unwrap();
                });
            }
        }
        time
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SqlOp {
    Insert,
    Insert16,
    Delete,
}

/// SQLite, WAL, `synchronous=FULL`; the three rows share one database.
struct Sqlite {
    db: Rc<rusqlite::Connection>,
    op: SqlOp,
}

impl Sqlite {
    fn open(dir: &Path) -> Rc<rusqlite::Connection> {
        let db = rusqlite::Connection::open(dir.join("events.sqlite")).unwrap();
        let mode: String = db
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        db.execute_batch(
            "PRAGMA synchronous=FULL; CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .unwrap();
        let sync: i64 = db
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        Rc::new(db)
    }
}

/// Row ids of the `insert/16` row, apart from those of `insert` (which `delete` removes).
const BATCH_ROW_IDS: i64 = 1 << 40;

impl Scenario for Sqlite {
    fn store(&self) -> &'static str {
        "sqlite-wal-full"
    }
    fn op(&self) -> &'static str {
        match self.op {
            SqlOp::Insert => "insert",
            SqlOp::Insert16 => "insert/16",
            SqlOp::Delete => "delete",
        }
    }
    fn run(&mut self, first: usize, n: usize) -> Duration {
        let mut time = Duration::ZERO;
        let mut insert = self
            .db
            .prepare_cached("INSERT INTO events (id, body) VALUES (?1, ?2)")
            .unwrap();
        match self.op {
            SqlOp::Insert => {
                for i in first..first + n {
                    let b = body(i);
                    timed(&mut time, || {
                        insert.execute(rusqlite::params![i as i64, &b[..]]).unwrap()
                    });
                }
            }
            SqlOp::Insert16 => {
                for (first, n) in rounds(first, n) {
                    let bodies = bodies(first, n);
                    timed(&mut time, || {
                        self.db.execute_batch("BEGIN").unwrap();
                        for (k, b) in bodies.iter().enumerate() {
                            let id = BATCH_ROW_IDS + (first + k) as i64;
                            insert.execute(rusqlite::params![id, &b[..]]).unwrap();
                        }
                        self.db.execute_batch("COMMIT").unwrap();
                    });
                }
            }
            SqlOp::Delete => {
                let mut delete = self
                    .db
                    .prepare_cached("DELETE FROM events WHERE id = ?1")
                    .unwrap();
                for i in first..first + n {
                    timed(&mut time, || {
                        assert_eq!(delete.execute([i as i64]).unwrap(), 1)
                    });
                }
            }
        }
        time
    }
}

/// The file system type of `dir`, from /proc/self/mounts (Linux).
fn fs_type(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && dir.starts_with(f[1])).then(|| (f[1].len(), f[2].to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, t)| t)
}

fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn main() {
    let args = parse_args();
    let (base, origin) = match &args.dir {
        Some(d) => (d.clone(), "--dir / F1_DIR"),
        None => (
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            "CARGO_TARGET_TMPDIR, under the target directory",
        ),
    };
    let dir = base.join(format!("f1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ops = args.ops;
    let header = format!(
        "F1: durable 128 B operations, {ops} per row, in {} ({}; {origin})",
        dir.display(),
        fs_type(&dir)
    );
    if args.json {
        eprintln!("{header}");
    } else {
        println!("{header}\n");
    }

    let objects = dir.join("ldk");
    std::fs::create_dir(&objects).unwrap();
    let db = Sqlite::open(&dir);
    // In table order; a `remove`/`delete` row follows the row that made its objects.
    let mut rows: Vec<(Box<dyn Scenario>, Duration)> = vec![
        (Box::new(Raw::new(&dir)), Duration::ZERO),
        (Box::new(Ours::new(&dir, StoreOp::Push)), Duration::ZERO),
        (
            Box::new(Ours::new(&dir, StoreOp::PushBatch)),
            Duration::ZERO,
        ),
        (Box::new(Ours::new(&dir, StoreOp::Ack)), Duration::ZERO),
        (Box::new(Ours::new(&dir, StoreOp::AckBatch)), Duration::ZERO),
        (
            Box::new(Ldk {
                objects: objects.clone(),
                remove: false,
            }),
            Duration::ZERO,
        ),
        (
            Box::new(Ldk {
                objects,
                remove: true,
            }),
            Duration::ZERO,
        ),
        (
            Box::new(Sqlite {
                db: db.clone(),
                op: SqlOp::Insert,
            }),
            Duration::ZERO,
        ),
        (
            Box::new(Sqlite {
                db: db.clone(),
                op: SqlOp::Insert16,
            }),
            Duration::ZERO,
        ),
        (
            Box::new(Sqlite {
                db,
                op: SqlOp::Delete,
            }),
            Duration::ZERO,
        ),
    ];
    // Warm up (untimed), then interleave: every row runs a slice of its operations
    // per pass, so that a burst of disk activity from elsewhere is spread over all
    // rows instead of landing on one.
    const WARM_UP: usize = 1 << 30;
    for (row, _) in rows.iter_mut() {
        row.run(WARM_UP, BATCH);
    }
    let slice = BATCH;
    let mut first = 0;
    while first < ops {
        let n = slice.min(ops - first);
        for (row, time) in rows.iter_mut() {
            *time += row.run(first, n);
        }
        first += n;
    }
    let us_per_op = |time: &Duration| time.as_secs_f64() * 1e6 / ops as f64;
    let raw_us = us_per_op(&rows[0].1);
    if args.json {
        for (r, time) in &rows {
            let us = us_per_op(time);
            println!(
                "{{\"store\":{},\"op\":{},\"ops\":{},\"us_per_op\":{:.2},\"ops_per_sec\":{:.1},\"ratio_to_raw\":{:.3}}}",
                json_str(r.store()),
                json_str(r.op()),
                ops,
                us,
                1e6 / us,
                us / raw_us
            );
        }
    } else {
        println!("| store | op | ops | us/op | ops/s | ratio to raw |");
        println!("|---|---|--:|--:|--:|--:|");
        for (r, time) in &rows {
            let us = us_per_op(time);
            println!(
                "| {} | {} | {} | {:.1} | {:.0} | {:.2} |",
                r.store(),
                r.op(),
                ops,
                us,
                1e6 / us,
                us / raw_us
            );
        }
        println!(
            "\nOne op = one 128 B event or one ack, durable on return; x/16 rows: per event of a batch of 16 sharing one sync\n\
             (the last is shorter when ops is not a multiple of 16).\n\
             Rows are interleaved: passes of 16 ops of every row in turn, after an untimed warm-up.\n\
             Push rows time pushes only (an untimed ack_batch between rounds of 16 keeps the store from filling);\n\
             ack rows time acks only (the events come from an untimed push_batch). Ratio to raw = us/op / raw us/op.\n\
             Store: {}x{} B sectors, write size {}, in-place acks, N = 32, max body {BODY} B.",
            GEOMETRY.sector_count, GEOMETRY.sector_size, GEOMETRY.write_size
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
