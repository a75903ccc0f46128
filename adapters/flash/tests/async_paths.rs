//! The async store against the blocking one: random operations driven through
//! both in lockstep must return the same answers and leave the same bytes on the
//! medium (invariants I1, I2, I3, I4), and an image written by either opens with
//! the other.

use embassy_futures::block_on;
use monitor_events::journal::{Auth, Config, Journal};
use monitor_events::{asynch, EventId, Geometry};
use monitor_events_flash::sim::SimFlash;
use monitor_events_flash::workload::Pcg32;

const N: usize = 24;

fn geometries() -> Vec<(Geometry, Config<N>)> {
    let mut out = Vec::new();
    for (sector_size, sector_count, write_size, multiwrite) in [
        (1024, 4, 4, true),
        (512, 8, 8, false),
        (4096, 3, 1, true),
        (256, 16, 4, true),
    ] {
        let g = Geometry {
            sector_size,
            sector_count,
            write_size,
            multiwrite,
        };
        if let Ok(c) = Config::<N>::try_new(g, 40) {
            out.push((g, c));
        }
        if let Ok(c) =
            Config::<N>::try_new(g, 40).and_then(|c| c.with_auth(Auth::new([7; 32], [1; 16])))
        {
            out.push((g, c));
        }
    }
    out
}

/// I1, I2, I3, I4: the same operations through both engines, same results, same
/// image after every one of them.
#[test]
fn i1_i4_async_and_blocking_write_the_same_bytes() {
    let mut ops_total = 0u64;
    for (seed, (g, config)) in geometries().into_iter().enumerate() {
        let mut rng = Pcg32::new(seed as u64 + 1);
        let mut b = Journal::<_, N>::open(SimFlash::new(g), config).unwrap();
        let mut a = block_on(asynch::Journal::<_, N>::open(SimFlash::new(g), config)).unwrap();
        for step in 0..3000 {
            let what = format!("{g:?} step {step}");
            match rng.next_u32() % 10 {
                0..=4 => {
                    let len = 1 + rng.next_u32() as usize % 40;
                    let body = vec![(step % 251) as u8; len];
                    let rb = b.push(&body);
                    let ra = block_on(a.push(&body));
                    assert_eq!(rb, ra, "{what}: push");
                }
                5..=8 => {
                    let ids: Vec<EventId> = b.pending().map(|p| p.0).collect();
                    if !ids.is_empty() {
                        let id = ids[rng.next_u32() as usize % ids.len()];
                        assert_eq!(b.ack(id), block_on(a.ack(id)), "{what}: ack");
                    }
                }
                _ => {
                    // Reopen each engine on the other's image.
                    let (fb, fa) = (b.into_medium(), a.into_medium());
                    b = Journal::open(fa, config).unwrap();
                    a = block_on(asynch::Journal::open(fb, config)).unwrap();
                }
            }
            assert_eq!(
                b.medium().image(),
                a.medium().image(),
                "{what}: images differ"
            );
            ops_total += 1;
        }
        let ids: Vec<_> = b.pending().collect();
        assert_eq!(ids, a.pending().collect::<Vec<_>>());
    }
    println!("async and blocking in lockstep: {ops_total} operations, images identical");
}
