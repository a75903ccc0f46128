//! The generator of the golden images in `tests/golden/` that `tests/cli.rs` runs
//! `inspect` and `verify` on. The images are committed; regenerate them (after a
//! deliberate format change) with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p monitor-events-host --test golden
//! ```
//!
//! | image | what |
//! |---|---|
//! | `clean.img` | 8 sectors x 4096 B (program unit 4 B, multiwrite): 200 events of every kind from a seeded workload, most acked (in place, and with ack records after a restart), a few kept pending long enough to be copied forward by compaction |
//! | `torn.img` | `clean.img` plus one more push cut by a power loss in the middle of its record (a torn tail: dropped silently, nothing lost) |
//! | `corrupt.img` | `clean.img` with one bit of a pending event's body in the middle of a sector turned from 1 to 0 (bit rot: `open` refuses it) |

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use monitor_events::journal::{Corruption, Journal, OpenError, Seen};
use monitor_events::{
    Config, EventStore, Geometry, MonitorEvent, MonitorEventSource, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::SharedFlash;
use monitor_events_flash::sim::{SimFlash, Torn};
use monitor_events_host::panic::install_panic_hook;
use monitor_events_host::sim::rng::Rng;
use monitor_events_host::sim::workload::Monitor;

/// The golden images' geometry.
const GEOMETRY: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};

const CONFIG: Config<16> = Config::new(GEOMETRY, MAX_ENCODED_LEN);

type Store = EventStore<SharedFlash, 16>;

fn golden_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

fn seen(image: &[u8]) -> (Result<(), OpenError>, Vec<Seen>) {
    let flash = SimFlash::from_image(GEOMETRY, image.to_vec()).expect("size");
    let mut seen = Vec::new();
    let r = Journal::open_with(flash, CONFIG, |s| seen.push(s)).map(|_| ());
    (r, seen)
}

/// The workload of `clean.img`: returns the store (still open) on its flash.
fn clean_workload(flash: &SharedFlash) -> Store {
    let mut rng = Rng::new(2024);
    let mut monitor = Monitor::new(&mut rng, 4);
    let mut store = Store::open(flash.clone(), CONFIG).expect("blank flash opens");
    let mut pushed: Vec<(MonitorEventSource, bool)> = Vec::new();
    for i in 0..200u32 {
        let event = match i % 10 {
            4 | 9 => {
                let (channel, update_id) = monitor.next_update(&mut rng);
                MonitorEvent::UpdateCompleted { channel, update_id }
            }
            _ if i % 67 == 30 => monitor
                .force_close(&mut rng)
                .unwrap_or_else(|| monitor.commitment_confirmed(&mut rng, None)),
            _ => monitor.htlc_resolution(&mut rng).event,
        };
        let id = store.push(&event).expect("room: acks keep up");
        // Every 40th event stays pending to the end (compaction copies it forward);
        // the others are acked once six younger events exist.
        let keep = i % 40 == 3;
        pushed.push((
            MonitorEventSource {
                channel: event.channel(),
                id,
            },
            keep,
        ));
        if pushed.len() > 6 {
            let (source, keep) = pushed[pushed.len() - 7];
            if !keep {
                store.ack(source).expect("pending");
            }
        }
        if i == 120 {
            // A restart: events from before it are acked with records from now on.
            drop(store);
            store = Store::open(flash.clone(), CONFIG).expect("reopens");
        }
    }
    store
}

/// Generates the three images (deterministic: the same bytes on every run).
fn generate() -> [(&'static str, Vec<u8>); 3] {
    install_panic_hook();
    let flash = SharedFlash::new(SimFlash::new(GEOMETRY));
    let mut store = clean_workload(&flash);
    let clean = flash.get().image().to_vec();
    let (r, s) = seen(&clean);
    assert_eq!(r, Ok(()));
    assert!(s.iter().all(|x| !matches!(x, Seen::TornTail { .. })));

    // torn.img: the next push's record program is cut, with a random subset of
    // its bits programmed.
    flash
        .get_mut()
        .cut_after(0, Torn::RandomSubset(0x006d_6f6e_6974_6f72));
    let mut rng = Rng::new(77);
    let event = Monitor::new(&mut rng, 2).htlc_resolution(&mut rng).event;
    let cut = catch_unwind(AssertUnwindSafe(|| store.push(&event)));
    assert!(cut.is_err(), "the push must be cut");
    drop(store);
    let torn = flash.get().image().to_vec();
    let (r, s) = seen(&torn);
    assert_eq!(r, Ok(()));
    assert!(
        s.iter().any(|x| matches!(x, Seen::TornTail { .. })),
        "the cut must leave a torn tail: {s:?}"
    );

    // corrupt.img: a 1 bit of a pending event's body, not in the last record of
    // its sector, reads 0.
    let (_, s) = seen(&clean);
    let records: Vec<(u32, u32, bool)> = s
        .iter()
        .filter_map(|x| match x {
            Seen::Event {
                offset, len, acked, ..
            } => Some((*offset, *len, *acked)),
            _ => None,
        })
        .collect();
    let sector = |off: u32| off / GEOMETRY.sector_size;
    let (offset, len) = records
        .windows(2)
        .find(|w| !w[0].2 && sector(w[0].0) == sector(w[1].0) && w[0].1 > 40)
        .map(|w| (w[0].0, w[0].1))
        .expect("a pending record followed by another in its sector");
    let mut corrupt = clean.clone();
    let mid = (offset + 8 + len / 2) as usize;
    let byte = (mid..mid + len as usize / 2)
        .find(|&b| corrupt[b] != 0)
        .expect("a byte with a 1 bit");
    let bit = corrupt[byte].trailing_zeros();
    corrupt[byte] &= !(1 << bit);
    let (r, _) = seen(&corrupt);
    assert!(
        matches!(
            r,
            Err(OpenError::Corrupted {
                reason: Corruption::BitFlip,
                ..
            })
        ),
        "{r:?}"
    );

    println!("corrupt.img: bit {bit} of byte {byte:#x} cleared");
    [
        ("clean.img", clean),
        ("torn.img", torn),
        ("corrupt.img", corrupt),
    ]
}

/// The committed images are exactly what the generator makes today: the on-medium
/// format and the journal's write pattern are pinned. With `UPDATE_GOLDEN=1` the
/// files are rewritten instead (after a deliberate format change).
#[test]
fn golden_images_match_the_generator() {
    let dir = golden_dir();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, image) in generate() {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&path, &image).expect("write golden image");
        } else {
            let committed = std::fs::read(&path).expect("golden image");
            assert!(
                committed == image,
                "{name} differs from what the generator makes now; if the format changed on purpose, run with UPDATE_GOLDEN=1"
            );
        }
    }
}

/// The committed images are what the generator describes (the generator's own
/// checks, on the files as committed).
#[test]
fn committed_golden_images_are_as_described() {
    let read = |name: &str| std::fs::read(golden_dir().join(name)).expect("golden image");
    let (clean, torn, corrupt) = (read("clean.img"), read("torn.img"), read("corrupt.img"));
    for image in [&clean, &torn, &corrupt] {
        assert_eq!(image.len(), GEOMETRY.size() as usize);
    }
    let (r, s) = seen(&clean);
    assert_eq!(r, Ok(()));
    assert!(s
        .iter()
        .any(|x| matches!(x, Seen::Event { copy: true, .. })));
    assert!(s.iter().any(|x| matches!(x, Seen::Ack { .. })));
    assert!(!s.iter().any(|x| matches!(x, Seen::TornTail { .. })));
    let (r, s) = seen(&torn);
    assert_eq!(r, Ok(()));
    assert!(s.iter().any(|x| matches!(x, Seen::TornTail { .. })));
    let (r, _) = seen(&corrupt);
    assert!(matches!(
        r,
        Err(OpenError::Corrupted {
            reason: Corruption::BitFlip,
            ..
        })
    ));
}
