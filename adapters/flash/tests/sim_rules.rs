//! `SimFlash` against the fault model of docs/INVARIANTS.md and the counters of docs/BENCH.md.
//!
//! These tests check the simulator itself: the crash-point tests of I1, I2 and I8
//! are only as good as its rules and torn operations.

use monitor_events::{Geometry, Medium};
use monitor_events_flash::sim::{Op, Profile, SimError, SimFlash, Torn};
use std::{cell::RefCell, rc::Rc};

const SECTOR: u32 = 256;

fn flash(multiwrite: bool) -> SimFlash {
    SimFlash::new(Geometry {
        sector_size: SECTOR,
        sector_count: 4,
        write_size: 4,
        multiwrite,
    })
}

fn read(f: &mut SimFlash, offset: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    f.read(offset, &mut buf).unwrap();
    buf
}

// ---- the rules ----

#[test]
fn erased_reads_ff_and_program_clears_bits() {
    let mut f = flash(false);
    assert_eq!(read(&mut f, 0, 1024), vec![0xFF; 1024]);
    f.program(8, &[0x12, 0x34, 0x56, 0x78]).unwrap();
    assert_eq!(
        read(&mut f, 6, 8),
        [0xFF, 0xFF, 0x12, 0x34, 0x56, 0x78, 0xFF, 0xFF]
    );
}

#[test]
fn setting_a_bit_is_refused() {
    let mut f = flash(true);
    f.program(0, &[0x0F; 4]).unwrap();
    assert_eq!(
        f.program(0, &[0x1F, 0x0F, 0x0F, 0x0F]),
        Err(SimError::SetsBits)
    );
    assert_eq!(f.program(0, &[0xFF; 4]), Err(SimError::SetsBits));
    assert_eq!(read(&mut f, 0, 4), [0x0F; 4]);
    // Clearing more bits is a valid second program on multiwrite media.
    f.program(0, &[0x0E; 4]).unwrap();
    assert_eq!(read(&mut f, 0, 4), [0x0E; 4]);
}

#[test]
fn programs_must_be_aligned() {
    let mut f = flash(true);
    assert_eq!(f.program(2, &[0; 4]), Err(SimError::NotAligned));
    assert_eq!(f.program(4, &[0; 6]), Err(SimError::NotAligned));
    assert_eq!(f.program(1, &[0; 1]), Err(SimError::NotAligned));
    // Reads and erases take any byte offset / sector number.
    read(&mut f, 3, 5);
    assert_eq!(read(&mut f, 0, 1024), vec![0xFF; 1024]);
}

#[test]
fn one_program_per_unit_without_multiwrite() {
    let mut f = flash(false);
    f.program(0, &[0xF0; 8]).unwrap();
    assert_eq!(f.program(4, &[0x00; 4]), Err(SimError::WriteCount));
    // A program that overlaps one used unit changes none of its units.
    assert_eq!(f.program(4, &[0x00; 8]), Err(SimError::WriteCount));
    assert_eq!(
        read(&mut f, 0, 12),
        [0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xFF, 0xFF, 0xFF, 0xFF]
    );
    // Even an all-ones program uses up the unit.
    f.program(12, &[0xFF; 4]).unwrap();
    assert_eq!(f.program(12, &[0x00; 4]), Err(SimError::WriteCount));
    // An erase makes the sector's units programmable again, and only its.
    f.erase(0).unwrap();
    f.program(0, &[0x00; 4]).unwrap();
}

#[test]
fn two_programs_per_unit_with_multiwrite() {
    let mut f = flash(true);
    f.program(16, &[0b1100_1100; 4]).unwrap();
    f.program(16, &[0b1000_1000; 4]).unwrap();
    assert_eq!(f.program(16, &[0; 4]), Err(SimError::WriteCount));
    assert_eq!(read(&mut f, 16, 4), [0b1000_1000; 4]);
    f.erase(0).unwrap();
    f.program(16, &[0; 4]).unwrap();
    f.program(16, &[0; 4]).unwrap();
}

#[test]
fn erase_only_touches_its_sector() {
    let mut f = flash(false);
    f.program(SECTOR - 4, &[0; 8]).unwrap();
    f.erase(0).unwrap();
    assert_eq!(
        read(&mut f, SECTOR - 4, 8),
        [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    );
    assert_eq!(f.program(SECTOR, &[0; 4]), Err(SimError::WriteCount));
}

#[test]
fn bounds_are_checked() {
    let mut f = flash(true);
    let size = 4 * SECTOR;
    let mut buf = [0; 8];
    assert_eq!(f.read(size - 4, &mut buf), Err(SimError::OutOfBounds));
    assert_eq!(f.read(u32::MAX, &mut buf), Err(SimError::OutOfBounds));
    assert_eq!(f.program(size, &[0; 4]), Err(SimError::OutOfBounds));
    assert_eq!(f.program(size - 4, &[0; 8]), Err(SimError::OutOfBounds));
    assert_eq!(f.erase(4), Err(SimError::OutOfBounds));
    assert_eq!(f.erase(u32::MAX), Err(SimError::OutOfBounds));
    // The last bytes are fine, and an empty read at the end too.
    f.program(size - 4, &[0; 4]).unwrap();
    f.read(size, &mut []).unwrap();
}

#[test]
fn rejected_operations_are_not_counted() {
    let mut f = flash(false);
    f.program(0, &[0; 4]).unwrap();
    let stats = f.stats().clone();
    let _ = f.program(0, &[0; 4]);
    let _ = f.program(1, &[0; 4]);
    let _ = f.erase(9);
    let _ = f.read(4 * SECTOR, &mut [0]);
    assert_eq!(f.stats(), &stats);
    assert_eq!(f.op_index(), 1);
}

#[test]
fn works_through_the_ports_mut_ref() {
    fn fill<M: Medium>(mut m: M) {
        m.program(0, &[1, 2, 3, 4]).unwrap();
        m.sync().unwrap();
    }
    let mut f = flash(false);
    fill(&mut f);
    assert_eq!(read(&mut f, 0, 4), [1, 2, 3, 4]);
    assert_eq!(f.stats().syncs, 1);
}

// ---- power cuts ----

/// Programs 0x00 over a word with mixed bits, then erases sector 1.
fn two_ops(f: &mut SimFlash) -> Vec<Result<(), SimError>> {
    vec![f.program(0, &[0x00; 8]), f.erase(1)]
}

fn prepared() -> SimFlash {
    let mut f = flash(true);
    f.program(0, &[0xA5; 4]).unwrap();
    f.program(SECTOR, &[0x00; 16]).unwrap();
    f
}

#[test]
fn a_cut_kills_the_medium_until_power_on() {
    let mut f = prepared();
    f.cut_after(0, Torn::Completed);
    assert!(!f.is_dead());
    assert_eq!(f.program(0, &[0x00; 4]), Err(SimError::PowerCut));
    assert!(f.is_dead());
    assert_eq!(f.read(0, &mut [0; 4]), Err(SimError::PowerCut));
    assert_eq!(f.program(64, &[0x00; 4]), Err(SimError::PowerCut));
    assert_eq!(f.erase(2), Err(SimError::PowerCut));
    assert_eq!(f.sync(), Err(SimError::PowerCut));
    f.power_on();
    assert_eq!(read(&mut f, 0, 4), [0x00; 4]);
    assert_eq!(read(&mut f, 64, 4), [0xFF; 4]);
    f.program(64, &[0x00; 4]).unwrap();
}

#[test]
fn cut_after_counts_programs_and_erases_only() {
    let mut f = prepared();
    let start = f.op_index();
    assert_eq!(start, 2);
    f.cut_after(2, Torn::NotStarted);
    read(&mut f, 0, 16);
    f.sync().unwrap();
    let _ = f.program(1, &[0; 4]); // rejected: not an operation
    f.program(32, &[0; 4]).unwrap();
    f.erase(3).unwrap();
    assert_eq!(f.op_index(), start + 2);
    assert_eq!(f.program(36, &[0; 4]), Err(SimError::PowerCut));
    assert_eq!(f.op_index(), start + 3);
    assert_eq!(read_after_power_on(&mut f, 36, 4), [0xFF; 4]);
}

fn read_after_power_on(f: &mut SimFlash, offset: u32, len: usize) -> Vec<u8> {
    f.power_on();
    read(f, offset, len)
}

#[test]
fn power_on_disarms_a_pending_cut() {
    let mut f = prepared();
    f.cut_after(5, Torn::NotStarted);
    f.power_on();
    for i in 0..10 {
        f.program(64 + 4 * i, &[0; 4]).unwrap();
    }
}

#[test]
fn torn_program_variants() {
    let intended = [0x00u8; 4];
    let cases = [
        (Torn::NotStarted, Some([0xA5; 4])),
        (Torn::NoBits, Some([0xA5; 4])),
        (Torn::Completed, Some([0x00; 4])),
        (Torn::RandomSubset(3), None),
    ];
    for (torn, want) in cases {
        let mut f = prepared();
        f.cut_after(0, torn);
        assert_eq!(f.program(0, &intended), Err(SimError::PowerCut), "{torn:?}");
        f.power_on();
        let got = read(&mut f, 0, 4);
        match want {
            Some(w) => assert_eq!(got, w, "{torn:?}"),
            None => {
                // Bits that were 0 stay 0; only the 1 bits of 0xA5 may have cleared.
                assert!(got.iter().all(|b| b & !0xA5 == 0), "{got:02x?}");
                assert_ne!(got, [0xA5; 4], "seed 3 clears some bits");
                assert_ne!(got, [0x00; 4], "seed 3 keeps some bits");
            }
        }
        // The rest of the sector is unchanged.
        assert_eq!(read(&mut f, 4, 60), vec![0xFF; 60], "{torn:?}");
        // A started program uses up the unit's write count (2 on multiwrite).
        let second = f.program(0, &[0x00; 4]);
        match torn {
            Torn::NotStarted => assert_eq!(second, Ok(()), "{torn:?}"),
            _ => assert_eq!(second, Err(SimError::WriteCount), "{torn:?}"),
        }
    }
}

#[test]
fn torn_erase_variants() {
    for torn in Torn::variants([1, 2]) {
        let mut f = prepared();
        f.cut_after(0, torn);
        assert_eq!(f.erase(1), Err(SimError::PowerCut));
        f.power_on();
        let sector = read(&mut f, SECTOR, SECTOR as usize);
        match torn {
            Torn::NotStarted | Torn::NoBits => {
                assert_eq!(sector[..16], [0; 16]);
                assert_eq!(sector[16..], vec![0xFF; SECTOR as usize - 16][..]);
            }
            Torn::Completed => assert_eq!(sector, vec![0xFF; SECTOR as usize]),
            Torn::RandomSubset(_) => {
                let ones: u32 = sector.iter().map(|b| b.count_ones()).sum();
                let bits = SECTOR * 8;
                assert!(
                    ones > bits / 3 && ones < 2 * bits / 3,
                    "{ones} of {bits} bits set"
                );
            }
            Torn::Prefix(_) => {
                // A leading run erased, the rest as it was: the first 16 bytes were
                // programmed to 0, the rest of the sector is erased anyway.
                let erased = sector.iter().take_while(|&&b| b == 0xFF).count();
                assert!(sector[erased..16.max(erased)].iter().all(|&b| b == 0));
                assert!(sector[16.max(erased)..].iter().all(|&b| b == 0xFF));
            }
        }
        // Other sectors are untouched.
        assert_eq!(read(&mut f, 0, 4), [0xA5; 4]);
        assert_eq!(
            read(&mut f, 2 * SECTOR, 2 * SECTOR as usize),
            vec![0xFF; 2 * SECTOR as usize]
        );
    }
}

#[test]
fn random_subsets_are_reproducible_and_seeded() {
    let run = |seed| {
        let mut f = prepared();
        f.cut_after(1, Torn::RandomSubset(seed));
        two_ops(&mut f);
        f.image().to_vec()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn the_fork_hook_sees_each_operation_before_it_happens() {
    let mut f = prepared();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    f.set_fork_hook(move |before, op| {
        sink.borrow_mut().push((before.clone(), op.clone()));
    });
    read(&mut f, 0, 4);
    let _ = f.program(2, &[0; 4]); // rejected: the hook does not see it
    assert_eq!(two_ops(&mut f), [Ok(()), Ok(())]);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].1,
        Op::Program {
            offset: 0,
            data: vec![0; 8]
        }
    );
    assert_eq!(seen[1].1, Op::Erase { sector: 1 });
    assert_eq!(seen[0].0.image(), prepared().image());
    assert_eq!(seen[0].0.op_index(), 2);
    assert_eq!(seen[1].0.op_index(), 3);
    assert_eq!(&seen[1].0.image()[..8], &[0; 8]);
}

#[test]
fn a_fork_with_apply_torn_equals_a_real_cut() {
    for k in 0..2u64 {
        for torn in Torn::variants([5, 6]) {
            let mut real = prepared();
            real.cut_after(k, torn);
            two_ops(&mut real);

            let mut f = prepared();
            let forks = Rc::new(RefCell::new(Vec::new()));
            let sink = forks.clone();
            f.set_fork_hook(move |before, op| {
                let mut fork = before.clone();
                fork.apply_torn(op, torn).unwrap();
                sink.borrow_mut().push(fork);
            });
            two_ops(&mut f);
            let forks = forks.borrow();
            assert_eq!(forks[k as usize].image(), real.image(), "k {k}, {torn:?}");
        }
    }
}

#[test]
fn apply_torn_checks_the_rules() {
    let mut f = prepared();
    let op = Op::Program {
        offset: 2,
        data: vec![0; 4],
    };
    assert_eq!(
        f.apply_torn(&op, Torn::Completed),
        Err(SimError::NotAligned)
    );
    let op = Op::Erase { sector: 4 };
    assert_eq!(
        f.apply_torn(&op, Torn::Completed),
        Err(SimError::OutOfBounds)
    );
    let op = Op::Program {
        offset: 0,
        data: vec![0xFF; 4],
    };
    assert_eq!(f.apply_torn(&op, Torn::Completed), Err(SimError::SetsBits));
    assert_eq!(f.op_index(), 2, "apply_torn is not an operation");
}

// ---- counters and device time ----

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn counters_and_device_time_match_hand_computed_values() {
    let mut f = SimFlash::default();
    f.read(0, &mut [0; 100]).unwrap();
    f.read(7, &mut [0; 1]).unwrap();
    f.program(252, &[0; 8]).unwrap(); // crosses a 256 B SPI page
    f.program(512, &[0; 256]).unwrap();
    f.erase(1).unwrap();
    f.erase(1).unwrap();
    f.erase(15).unwrap();
    f.sync().unwrap();
    let s = f.stats().clone();
    assert_eq!((s.read_ops, s.bytes_read), (2, 101));
    assert_eq!((s.program_ops, s.bytes_programmed), (2, 264));
    assert_eq!(s.erases, 3);
    assert_eq!(s.syncs, 1);
    let mut per_sector = vec![0; 16];
    per_sector[1] = 2;
    per_sector[15] = 1;
    assert_eq!(s.sector_erases, per_sector);
    assert_eq!(s.max_sector_erases(), 2);
    assert!(close(s.mean_sector_erases(), 3.0 / 16.0));

    // nrf52840: reads 101/64 us; programs 264 * 10.25 us; erases 3 * 85 ms.
    let nrf = 101.0 / 64.0 + 264.0 * 10.25 + 3.0 * 85_000.0;
    // w25q-spi: reads 2 * 0.4 + 101 * 0.04; programs (2 + 1) pieces * 27.5 + 264 * 2.5;
    // erases 3 * 45 ms.
    let w25q = 2.0 * 0.4 + 101.0 * 0.04 + 3.0 * 27.5 + 264.0 * 2.5 + 3.0 * 45_000.0;
    assert!(
        close(s.device_us(Profile::Nrf52840), nrf),
        "{}",
        s.device_us(Profile::Nrf52840)
    );
    assert!(
        close(s.device_us(Profile::W25qSpi), w25q),
        "{}",
        s.device_us(Profile::W25qSpi)
    );

    f.reset_stats();
    assert_eq!(f.stats().bytes_read, 0);
    assert_eq!(f.stats().sector_erases, vec![0; 16]);
    assert_eq!(f.stats().device_us(Profile::Nrf52840), 0.0);
    assert_eq!(f.op_index(), 5, "reset_stats keeps the op index");
}

#[test]
fn a_cut_operation_is_not_counted() {
    let mut f = flash(true);
    f.cut_after(0, Torn::Completed);
    let _ = f.program(0, &[0; 4]);
    assert_eq!(f.stats().program_ops, 0);
    assert_eq!(f.stats().device_us(Profile::Nrf52840), 0.0);
}

// ---- images ----

#[test]
fn images_round_trip_through_files() {
    let mut f = prepared();
    f.flip_bit(8 * 100 + 3);
    assert_eq!(f.image()[100], 0xF7);
    let path = std::env::temp_dir().join(format!("sim-rules-{}.bin", std::process::id()));
    f.save(&path).unwrap();
    let geometry = f.geometry();
    let mut g = SimFlash::load(&path, geometry).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(g.image(), f.image());
    assert_eq!(g.geometry(), geometry);
    // Non-erased units count as programmed once: multiwrite allows one more.
    g.program(0, &[0; 4]).unwrap();
    assert_eq!(g.program(0, &[0; 4]), Err(SimError::WriteCount));
    g.program(4, &[0; 4]).unwrap();
    g.program(4, &[0; 4]).unwrap();
}

#[test]
fn from_image_checks_the_size() {
    let g = flash(false).geometry();
    assert_eq!(
        SimFlash::from_image(g, vec![0xFF; 10]).unwrap_err(),
        SimError::ImageSize
    );
    let mut f = SimFlash::from_image(g, vec![0; 1024]).unwrap();
    assert_eq!(f.program(0, &[0; 4]), Err(SimError::WriteCount));
    let path = std::env::temp_dir().join(format!("sim-rules-short-{}.bin", std::process::id()));
    std::fs::write(&path, [0u8; 3]).unwrap();
    let err = SimFlash::load(&path, g).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
#[should_panic(expected = "outside the image")]
fn flip_bit_outside_the_image_panics() {
    flash(false).flip_bit(4 * SECTOR as u64 * 8);
}
