//! The emulator's random numbers: docs/BENCH.md's PCG32, the one generator of the
//! repository ([`monitor_events_flash::rng::Pcg32`], shared with the W1 workload
//! and the firmware self-tests), with the draws the workload needs on top. Every
//! run of `simulate` is reproducible from its seed.

use monitor_events_flash::rng::Pcg32;

/// A seeded PCG32 with ranges, chances and picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(Pcg32);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(Pcg32::new(seed))
    }

    /// The next 64 random bits (two PCG32 outputs).
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (0 if `n` is 0), by multiply-shift (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        self.0.bytes32()
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(3, 9);
            assert!((3..=9).contains(&x));
            b.range(3, 9);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_eq!(Rng::new(1).below(0), 0);
    }

    #[test]
    fn it_is_bench_md_pcg32() {
        let mut ours = Rng::new(42);
        let mut bench = Pcg32::new(42);
        assert_eq!(ours.next_u64(), bench.next_u64());
        assert_eq!(ours.bytes32(), bench.bytes32());
    }

    #[test]
    fn below_covers_its_range_evenly() {
        let mut r = Rng::new(3);
        let mut seen = [0u32; 6];
        for _ in 0..6000 {
            seen[r.below(6) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
    }
}
