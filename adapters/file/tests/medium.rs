//! The file adapter's own rules: create, the lock, wrong sizes, foreign content,
//! injected failures (I7), and the shared handle.

mod common;

use common::{child, panic_message, payload, scratch_dir, Rng, CHILD_ENV};
use monitor_events::journal::{AckOutcome, Config, Journal, OpenError};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_file::{FaultPlan, FileError, FileMedium, FileStore, SharedJournal};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Stdio;

const GEOMETRY: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 8,
    multiwrite: true,
};
const CONFIG: Config<16> = Config::new(GEOMETRY, 200);

/// The entry point of the child processes below; does nothing in a normal run.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, path) = role.split_once(':').unwrap();
    let mut out = std::io::stdout().lock();
    match what {
        // Try to open a file the parent holds.
        "try-open" => {
            let verdict = match FileMedium::open(path, GEOMETRY) {
                Err(FileError::Locked { .. }) => "LOCKED".to_owned(),
                Ok(_) => "OPENED".to_owned(),
                Err(e) => format!("ERROR {e}"),
            };
            writeln!(out, "{verdict}").unwrap();
        }
        // Hold the file until stdin closes (or a SIGKILL).
        "hold" => {
            let _medium = FileMedium::open(path, GEOMETRY).unwrap();
            writeln!(out, "HOLDING").unwrap();
            out.flush().unwrap();
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        _ => panic!("unknown child role {role}"),
    }
}

fn read_all(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn create_fills_with_erased_bytes_mode_0600_and_leaves_no_temporary() {
    let dir = scratch_dir("create");
    let path = dir.join("store");
    let medium = FileMedium::create(&path, GEOMETRY).unwrap();
    assert_eq!(medium.path(), path);
    let bytes = read_all(&path);
    assert_eq!(bytes.len(), GEOMETRY.size() as usize);
    assert!(bytes.iter().all(|&b| b == 0xFF));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("store")]);
    // A blank file opens as an empty journal and writes nothing.
    let j = Journal::open(medium, CONFIG).unwrap();
    assert_eq!(j.pending_count(), 0);
    assert_eq!(j.next_id(), EventId(0));
    drop(j);
    assert!(read_all(&path).iter().all(|&b| b == 0xFF));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn create_refuses_an_existing_path() {
    let dir = scratch_dir("exists");
    let path = dir.join("store");
    std::fs::write(&path, b"precious").unwrap();
    assert!(matches!(
        FileMedium::create(&path, GEOMETRY),
        Err(FileError::Exists { .. })
    ));
    assert!(matches!(
        FileStore::create(&path, CONFIG),
        Err(FileError::Exists { .. })
    ));
    assert_eq!(read_all(&path), b"precious");
    // Also a store, open or closed.
    let other = dir.join("other");
    let held = FileMedium::create(&other, GEOMETRY).unwrap();
    assert!(matches!(
        FileMedium::create(&other, GEOMETRY),
        Err(FileError::Exists { .. })
    ));
    drop(held);
    assert!(matches!(
        FileStore::create(&other, CONFIG),
        Err(FileError::Exists { .. })
    ));
    // A dangling symlink counts as something there.
    let link = dir.join("link");
    std::os::unix::fs::symlink(dir.join("nowhere"), &link).unwrap();
    assert!(matches!(
        FileMedium::create(&link, GEOMETRY),
        Err(FileError::Exists { .. })
    ));
    assert!(!dir.join("nowhere").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn second_opener_in_this_process_is_locked() {
    let dir = scratch_dir("lock-same");
    let path = dir.join("store");
    let first = FileStore::create(&path, CONFIG).unwrap();
    assert!(matches!(
        FileMedium::open(&path, GEOMETRY),
        Err(FileError::Locked { .. })
    ));
    assert!(matches!(
        FileStore::open(&path, CONFIG),
        Err(FileError::Locked { .. })
    ));
    assert!(matches!(
        FileStore::open_or_create(&path, CONFIG),
        Err(FileError::Locked { .. })
    ));
    drop(first);
    let second = FileStore::open(&path, CONFIG).unwrap();
    assert!(matches!(
        FileStore::open(&path, CONFIG),
        Err(FileError::Locked { .. })
    ));
    drop(second);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn second_opener_in_another_process_is_locked() {
    let dir = scratch_dir("lock-child");
    let path = dir.join("store");
    let role = |what: &str| format!("{what}:{}", path.display());

    // We hold it: a child cannot open it.
    let held = FileMedium::create(&path, GEOMETRY).unwrap();
    let out = child("child_process_entry_point", &role("try-open"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("LOCKED"),
        "{out:?}"
    );
    drop(held);
    let out = child("child_process_entry_point", &role("try-open"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OPENED"),
        "{out:?}"
    );

    // A child holds it: we cannot open it; once it is SIGKILLed, we can.
    let mut holder = child("child_process_entry_point", &role("hold"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.find(|l| l.as_ref().unwrap() == "HOLDING").is_some());
    assert!(matches!(
        FileMedium::open(&path, GEOMETRY),
        Err(FileError::Locked { .. })
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    FileMedium::open(&path, GEOMETRY).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wrong_size_is_typed_and_modifies_nothing() {
    let dir = scratch_dir("size");
    for len in [
        0usize,
        1000,
        GEOMETRY.size() as usize - 1,
        GEOMETRY.size() as usize + 4096,
    ] {
        let path = dir.join(format!("file-{len}"));
        let content = payload(len as u64, len);
        std::fs::write(&path, &content).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        match FileStore::open(&path, CONFIG) {
            Err(FileError::WrongSize { expected, found }) => {
                assert_eq!((expected, found), (u64::from(GEOMETRY.size()), len as u64));
            }
            other => panic!("{len} B: expected WrongSize, got {:?}", other.map(|_| ())),
        }
        assert_eq!(read_all(&path), content);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        // The refused handle released its lock.
        assert!(matches!(
            FileMedium::open(&path, GEOMETRY),
            Err(FileError::WrongSize { .. })
        ));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn foreign_content_is_not_a_store_and_is_not_modified() {
    let dir = scratch_dir("foreign");
    let size = GEOMETRY.size() as usize;
    let mut text = b"#!/bin/sh\necho this is not a journal\n".repeat(size / 37 + 1);
    text.truncate(size);
    // One byte outside every sector header. (Bytes inside the header area of a
    // file with no valid header anywhere are taken for a torn first header: the
    // core opens that as blank.)
    let mut one_byte = vec![0xFF; size];
    one_byte[size / 2 + 1000] = 0x00;
    let contents = [
        ("zeros", vec![0u8; size]),
        ("random", payload(7, size)),
        ("text", text),
        ("one byte", one_byte),
    ];
    for (name, content) in contents {
        let path = dir.join(name);
        std::fs::write(&path, &content).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        match FileStore::open(&path, CONFIG) {
            Err(FileError::Journal(OpenError::NotAStore)) => {}
            other => panic!(
                "{name}: expected Journal(NotAStore), got {:?}",
                other.map(|_| ())
            ),
        }
        match FileStore::open_or_create(&path, CONFIG) {
            Err(FileError::Journal(OpenError::NotAStore)) => {}
            other => panic!(
                "{name}: expected Journal(NotAStore), got {:?}",
                other.map(|_| ())
            ),
        }
        assert_eq!(read_all(&path), content, "{name} was modified");
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_store_of_another_geometry_is_refused() {
    let dir = scratch_dir("geometry");
    let path = dir.join("store");
    // Same size, other sector size.
    let other = Geometry {
        sector_size: 8192,
        sector_count: 4,
        ..GEOMETRY
    };
    let mut j = FileStore::create(&path, Config::<16>::new(other, 200)).unwrap();
    j.push(b"x").unwrap();
    drop(j);
    let content = read_all(&path);
    assert!(matches!(
        FileStore::open(&path, CONFIG),
        Err(FileError::Journal(_))
    ));
    assert_eq!(read_all(&path), content);
    let bad = Geometry {
        write_size: 3,
        ..GEOMETRY
    };
    assert!(matches!(
        FileMedium::create(dir.join("bad"), bad),
        Err(FileError::BadGeometry(_))
    ));
    let huge = Geometry {
        sector_size: 1 << 20,
        sector_count: 1 << 12,
        ..GEOMETRY
    };
    assert!(matches!(
        FileMedium::open(&path, huge),
        Err(FileError::BadGeometry(_))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_file_is_not_found_and_open_or_create_creates_it() {
    let dir = scratch_dir("missing");
    let path = dir.join("store");
    match FileStore::open(&path, CONFIG) {
        Err(FileError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("expected Io(NotFound), got {:?}", other.map(|_| ())),
    }
    let mut j = FileStore::open_or_create(&path, CONFIG).unwrap();
    let id = j.push(b"first").unwrap();
    drop(j);
    let mut j = FileStore::open_or_create(&path, CONFIG).unwrap();
    let mut buf = [0u8; 200];
    assert_eq!(j.read(id, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"first");
    std::fs::remove_dir_all(dir).unwrap();
}

/// I1, I2, I3, I4 across reopen, with compaction (many pushes through 8 sectors),
/// in both ack modes.
#[test]
fn i1_i4_events_survive_reopen_byte_identical() {
    let dir = scratch_dir("reopen");
    for multiwrite in [true, false] {
        let geometry = Geometry {
            multiwrite,
            ..GEOMETRY
        };
        let config = Config::<16>::new(geometry, 200);
        let path = dir.join(format!("store-{multiwrite}"));
        let mut rng = Rng::new(42);
        let mut model = std::collections::BTreeMap::new();
        let mut j = FileStore::create(&path, config).unwrap();
        let mut last = None;
        for round in 0..600u64 {
            if round % 100 == 99 {
                drop(j);
                j = reopen(&path, config);
                let pending: Vec<_> = j.pending().map(|(id, _)| id).collect();
                assert_eq!(pending, model.keys().copied().collect::<Vec<_>>());
            }
            if model.len() == 16 || (!model.is_empty() && rng.below(2) == 0) {
                let k = rng.below(model.len() as u64) as usize;
                let id = *model.keys().nth(k).unwrap();
                assert_eq!(j.ack(id).unwrap(), AckOutcome::Acked);
                assert_eq!(j.ack(id).unwrap(), AckOutcome::AlreadyAcked);
                model.remove(&id);
            } else {
                let body = payload(round, rng.below(201) as usize);
                let id = j.push(&body).unwrap();
                assert!(last.is_none_or(|l| id > l), "I3");
                last = Some(id);
                model.insert(id, body);
            }
        }
        drop(j);
        let mut j = reopen(&path, config);
        assert!(j.next_id() > last.unwrap());
        let mut buf = [0u8; 200];
        for (id, body) in &model {
            let n = j.read(*id, &mut buf).unwrap();
            assert_eq!(&buf[..n], &body[..], "I4: event {id}");
        }
        assert_eq!(j.pending_count(), model.len());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// After the host loses power the disk may hold a later write of a group
/// commit without an earlier one. Here the first event of a batch is wiped
/// from the file (as if its pages never reached the disk) while the two behind
/// it are kept: the store must open with what was durable before the batch,
/// taking the hole as the end of an interrupted write, not as damage.
#[test]
fn i1_i10_a_batch_the_disk_kept_out_of_order_opens_as_an_interrupted_write() {
    let dir = scratch_dir("out-of-order");
    let path = dir.join("store");
    let mut j = FileStore::create(&path, CONFIG).unwrap();
    let a = j.push(&payload(1, 100)).unwrap();
    let (b, c, d) = (payload(2, 100), payload(3, 100), payload(4, 100));
    j.push_batch(&[&b, &c, &d], &mut [EventId(0); 3]).unwrap();
    drop(j);
    let mut image = std::fs::read(&path).unwrap();
    let at = image
        .windows(b.len())
        .position(|w| w == &b[..])
        .expect("the batch's first body is in the file");
    image[at..at + b.len()].fill(0xFF);
    std::fs::write(&path, &image).unwrap();
    let mut j = FileStore::open(&path, CONFIG).expect("an interrupted batch is not damage");
    let pending: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
    assert_eq!(pending, vec![a], "the event before the batch, alone");
    // The store goes on (I10): a new event is durable and reads back.
    let e = j.push(&payload(5, 100)).unwrap();
    assert!(e > a, "I3");
    drop(j);
    let mut j = FileStore::open(&path, CONFIG).unwrap();
    let pending: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
    assert_eq!(pending, vec![a, e]);
    let mut buf = [0u8; 200];
    let n = j.read(e, &mut buf).unwrap();
    assert_eq!(&buf[..n], &payload(5, 100)[..], "I4");
    std::fs::remove_dir_all(dir).unwrap();
}

/// I8 on a real store file: one bit of a durable event flipped on the disk,
/// with records behind it, must not pass for the end of an interrupted write
/// (which would drop the events and acks behind it). A flip that leaves the
/// byte as anything but `0xFF` cannot be a crash (a byte lands whole or not at
/// all): `open` refuses it. One that turns the byte into `0xFF` may be either:
/// corrected, the record is what was written, and the records behind it stay.
#[test]
fn i8_a_flipped_bit_of_a_durable_event_with_records_behind_it() {
    let dir = scratch_dir("flipped");
    for erased in [false, true] {
        let path = dir.join(format!("store-{erased}"));
        let mut j = FileStore::create(&path, CONFIG).unwrap();
        let a = j.push(&payload(1, 100)).unwrap();
        let b = payload(2, 100);
        let id_b = j.push(&b).unwrap();
        let c = j.push(&payload(3, 100)).unwrap();
        assert_eq!(j.ack(a).unwrap(), AckOutcome::Acked);
        drop(j);
        let mut image = std::fs::read(&path).unwrap();
        let at = image
            .windows(b.len())
            .position(|w| w == &b[..])
            .expect("the body is in the file");
        // A byte one 0 bit short of 0xFF, or one with more 0 bits; its lowest
        // 0 bit reads 1.
        let k = b
            .iter()
            .position(|&x| (x.count_zeros() == 1) == erased && x != 0xFF)
            .expect("a byte of each kind in the payload");
        image[at + k] |= 1 << b[k].trailing_ones();
        std::fs::write(&path, &image).unwrap();
        match FileStore::open(&path, CONFIG) {
            Err(FileError::Journal(OpenError::Corrupted { .. })) if !erased => {}
            Ok(mut j) if erased => {
                let pending: Vec<EventId> = j.pending().map(|(id, _)| id).collect();
                assert_eq!(pending, vec![id_b, c], "the ack of {a:?} and {c:?} kept");
                let mut buf = [0u8; 200];
                let n = j.read(id_b, &mut buf).unwrap();
                assert_eq!(&buf[..n], &b[..], "I4: the corrected event");
            }
            other => panic!(
                "byte reads erased {erased}: {:?}",
                other.map(|j| j.pending().map(|(id, _)| id).collect::<Vec<_>>())
            ),
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Opens the store at `path` just closed by this test. Tests run in parallel
/// and another one spawns child processes: a child forked in that moment holds
/// a copy of every descriptor, and with it the lock, until its `exec` closes
/// them. `Locked` is retried for up to 2 s; anything else fails.
fn reopen<const N: usize>(path: &Path, config: Config<N>) -> Journal<FileMedium, N> {
    for _ in 0..200 {
        match FileStore::open(path, config) {
            Err(FileError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    FileStore::open(path, config).unwrap()
}

/// Runs `f` expecting a panic; returns its message.
fn expect_panic(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    panic_message(&*err)
}

/// I7: a failed fdatasync panics at once, naming the operation, the offset and
/// the error; what was durable before it is still there.
#[test]
fn i7_failed_fsync_panics_naming_operation_offset_and_error() {
    let dir = scratch_dir("fsync-fault");
    let path = dir.join("store");
    let mut medium = FileMedium::create(&path, GEOMETRY).unwrap();
    // Three syncs succeed: the first sector's header (a file syncs each
    // header before the records behind it), then one per push.
    medium.set_faults(FaultPlan::fail_sync_after(3));
    let mut j = Journal::open(medium, CONFIG).unwrap();
    let a = j.push(b"one").unwrap();
    let b = j.push(b"two").unwrap();
    let msg = expect_panic(move || {
        let _ = j.push(b"three");
    });
    for needle in [
        "sync",
        "offset",
        "fdatasync",
        &path.display().to_string(),
        "Input/output error",
    ] {
        assert!(
            msg.contains(needle),
            "panic message {msg:?} lacks {needle:?}"
        );
    }
    assert!(
        msg.chars().any(|c| c.is_ascii_digit()),
        "no offset in {msg:?}"
    );
    // The journal was dropped during the unwind: the lock is free, the two
    // durable events are there.
    let j = FileStore::open(&path, CONFIG).unwrap();
    let ids: Vec<_> = j.pending().map(|(id, _)| id).collect();
    assert_eq!(&ids[..2], [a, b]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// I7: the sync after a new sector's header (a file syncs it before any record
/// behind it) fails: the push panics naming the sync, its offset and the error,
/// and nothing it wrote was promised: the store reopens without it and takes
/// the event again.
#[test]
fn i7_failed_header_sync_panics_and_promises_nothing() {
    let dir = scratch_dir("header-sync-fault");
    let path = dir.join("store");
    let mut medium = FileMedium::create(&path, GEOMETRY).unwrap();
    // The first sync is the first sector's header, before the first record.
    medium.set_faults(FaultPlan::fail_sync_after(0));
    let mut j = Journal::open(medium, CONFIG).unwrap();
    let msg = expect_panic(move || {
        let _ = j.push(b"first");
    });
    // Offset 0: no record yet (the end of the push would sync after it).
    for needle in [
        "sync after offset 0 failed",
        "fdatasync",
        "Input/output error",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    let mut j = FileStore::open(&path, CONFIG).unwrap();
    assert_eq!(j.pending_count(), 0, "the failed push promised nothing");
    let id = j.push(b"first").unwrap();
    drop(j);
    let mut j = FileStore::open(&path, CONFIG).unwrap();
    let mut buf = [0u8; 8];
    let n = j.read(id, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"first");
    std::fs::remove_dir_all(dir).unwrap();
}

/// I7: a failed pwrite panics, naming the operation, the offset and the error.
#[test]
fn i7_failed_write_panics_naming_operation_offset_and_error() {
    let dir = scratch_dir("write-fault");
    let path = dir.join("store");
    let mut medium = FileMedium::create(&path, GEOMETRY).unwrap();
    medium.set_faults(FaultPlan::fail_program_after(3));
    let mut j = Journal::open(medium, CONFIG).unwrap();
    let msg = expect_panic(move || {
        for _ in 0..10 {
            let _ = j.push(b"event");
        }
    });
    for needle in [
        "program",
        "offset",
        "pwrite",
        "file offset 0x",
        "Input/output error",
    ] {
        assert!(
            msg.contains(needle),
            "panic message {msg:?} lacks {needle:?}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Out-of-range and misaligned operations are errors of the medium, not I/O on
/// the wrong bytes.
#[test]
fn medium_checks_bounds_and_alignment() {
    let dir = scratch_dir("bounds");
    let mut m = FileMedium::create(dir.join("store"), GEOMETRY).unwrap();
    let size = GEOMETRY.size();
    let mut buf = [0u8; 8];
    assert!(m.read(size - 4, &mut buf).is_err());
    assert!(m.program(size, &[0; 8]).is_err());
    assert!(m.program(4, &[0; 8]).is_err());
    assert!(m.program(8, &[0; 4]).is_err());
    assert!(m.erase(GEOMETRY.sector_count).is_err());
    m.program(8, &[0x12; 8]).unwrap();
    m.read(8, &mut buf).unwrap();
    assert_eq!(buf, [0x12; 8]);
    m.erase(0).unwrap();
    m.sync().unwrap();
    m.read(8, &mut buf).unwrap();
    assert_eq!(buf, [0xFF; 8]);
    let err = m.read(size, &mut buf).unwrap_err();
    assert!(
        format!("{err:?}").contains("pread of 8 B at file offset"),
        "{err:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shared_journal_serves_many_threads() {
    let dir = scratch_dir("shared");
    let path = dir.join("store");
    let store = SharedJournal::new(
        FileStore::create(
            &path,
            Config::<64>::new(
                Geometry {
                    sector_size: 16384,
                    sector_count: 8,
                    ..GEOMETRY
                },
                100,
            ),
        )
        .unwrap(),
    );
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..25u64 {
                    let body = payload(t * 1000 + i, 50);
                    let id = store.push(&body).unwrap();
                    assert_eq!(store.read_to_vec(id).unwrap(), body);
                    if i % 2 == 0 {
                        store.ack(id).unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(store.pending_count(), 4 * 12);
    assert_eq!(store.next_id(), EventId(100));
    let pending = store.pending();
    let mut out = vec![AckOutcome::Acked; pending.len()];
    let ids: Vec<_> = pending.iter().map(|&(id, _)| id).collect();
    store.ack_batch(&ids, &mut out).unwrap();
    assert_eq!(store.status().pending, 0);
    // A caller bug is refused before the lock is taken: the handle stays usable.
    let msg = expect_panic(|| {
        let _ = store.push_batch(&[b"a", b"b"], &mut [EventId(0)]);
    });
    assert!(msg.contains("ids shorter than bodies"), "{msg}");
    assert_eq!(store.pending_count(), 0);
    let j = store.try_into_inner().unwrap();
    drop(j);
    std::fs::remove_dir_all(dir).unwrap();
}

/// After a failed fsync poisons the handle, every later call on every clone
/// panics: the intended stop.
#[test]
fn i7_shared_journal_stops_after_a_persist_failure() {
    let dir = scratch_dir("shared-poison");
    let path = dir.join("store");
    let mut medium = FileMedium::create(&path, GEOMETRY).unwrap();
    // The first sector's header and the first push sync; the next sync fails.
    medium.set_faults(FaultPlan::fail_sync_after(2));
    let store = SharedJournal::new(Journal::open(medium, CONFIG).unwrap());
    let id = store.push(b"durable").unwrap();
    let other = store.clone();
    let msg = std::thread::spawn(move || {
        expect_panic(|| {
            let _ = other.push(b"fails");
        })
    })
    .join()
    .unwrap();
    assert!(msg.contains("fdatasync"), "{msg}");
    let later = expect_panic(|| {
        store.pending_count();
    });
    assert!(later.contains("refusing to continue"), "{later}");
    let later = expect_panic(|| {
        let _ = store.ack(id);
    });
    assert!(later.contains("refusing to continue"), "{later}");
    drop(store);
    let j = FileStore::open(&path, CONFIG).unwrap();
    assert!(j.is_pending(id));
    std::fs::remove_dir_all(dir).unwrap();
}
