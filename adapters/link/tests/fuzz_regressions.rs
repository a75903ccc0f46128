//! Replays the seeds of the link's fuzz targets (`core/fuzz/corpus/link_*`)
//! through the very checks the targets run (`core/fuzz/src/link.rs`), on stable,
//! in the normal test suite; plus seeded random inputs through the same checks.
//! The fuzzing itself: `ci/fuzz.sh link_device_frames link_host_frames`.
//!
//! A new finding goes here as a test named after what it reproduces, with the
//! minimized input inline.

#[path = "../../../core/fuzz/src/link.rs"]
mod link;

use monitor_events_flash::rng::Pcg32;
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../core/fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("seed-")
                .then(|| (name, std::fs::read(&path).expect("seed file")))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seed-* files in {}", dir.display());
    out
}

/// Seeded variations of the seeds: a few random bytes changed, cut or added.
fn mutants(seed: &[u8], rng: &mut Pcg32) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(m.len() as u32 + 1) as usize;
        match rng.below(3) {
            0 if at < m.len() => m[at] = rng.below(256) as u8,
            1 if at < m.len() => {
                m.remove(at);
            }
            _ => m.insert(at, rng.below(256) as u8),
        }
    }
    m
}

/// I9, I2: every device seed, and 2 000 mutants of them, pass the device check.
#[test]
fn i9_link_device_frames_seeds() {
    let mut rng = Pcg32::new(16);
    for (name, bytes) in seeds("link_device_frames") {
        eprintln!("{name}");
        link::check_link_device(&bytes);
        for _ in 0..500 {
            link::check_link_device(&mutants(&bytes, &mut rng));
        }
    }
}

/// I9: every host seed, and 1 500 mutants of them, pass the host check.
#[test]
fn i9_link_host_frames_seeds() {
    let mut rng = Pcg32::new(61);
    for (name, bytes) in seeds("link_host_frames") {
        eprintln!("{name}");
        link::check_link_host(&bytes);
        for _ in 0..500 {
            link::check_link_host(&mutants(&bytes, &mut rng));
        }
    }
}
