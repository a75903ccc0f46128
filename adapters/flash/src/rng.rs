//! docs/BENCH.md's random numbers and fingerprint, `no_std`: [`Pcg32`] (the workloads'
//! generator) and [`Fnv1a64`] (the fingerprint). The host-side workload driver
//! (the `workload` module, feature `sim`) and firmware self-tests share them.

/// PCG32 (XSH-RR 64/32) as in the PCG reference implementation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcg32 {
    state: u64,
}

/// The stream increment (`inc`) of docs/BENCH.md's PCG32.
pub const PCG32_INCREMENT: u64 = 1442695040888963407;
const PCG32_MULTIPLIER: u64 = 6364136223846793005;

impl Pcg32 {
    /// Seeded like the reference `srandom`: state = 0; step; state += seed; step.
    pub fn new(seed: u64) -> Self {
        let mut rng = Self { state: 0 };
        rng.step();
        rng.state = rng.state.wrapping_add(seed);
        rng.step();
        rng
    }

    /// Advances the state; returns the state before the step.
    fn step(&mut self) -> u64 {
        let old = self.state;
        self.state = old
            .wrapping_mul(PCG32_MULTIPLIER)
            .wrapping_add(PCG32_INCREMENT);
        old
    }

    /// One step's output.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.step();
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// `next_u32() % n` (slightly biased, as specified).
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }

    /// Two outputs, the first in the high half.
    pub fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// 32 bytes: eight outputs, little endian.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for chunk in b.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.next_u32().to_le_bytes());
        }
        b
    }
}

/// FNV-1a, 64 bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// The empty hash (offset basis 0xcbf29ce484222325).
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `bytes` in.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub const fn value(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_matches_the_reference_stream() {
        // pcg32_srandom_r(&rng, 42, 54) from the PCG reference (pcg32-global-demo):
        // inc = (54 << 1) | 1 = 109; its first outputs are well known.
        let mut rng = Pcg32 { state: 0 };
        let step = |r: &mut Pcg32| {
            let old = r.state;
            r.state = old.wrapping_mul(PCG32_MULTIPLIER).wrapping_add(109);
            let x = (((old >> 18) ^ old) >> 27) as u32;
            x.rotate_right((old >> 59) as u32)
        };
        step(&mut rng);
        rng.state = rng.state.wrapping_add(42);
        step(&mut rng);
        let got: Vec<u32> = (0..6).map(|_| step(&mut rng)).collect();
        assert_eq!(
            got,
            [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]
        );
    }

    #[test]
    fn fnv1a64_known_values() {
        let mut h = Fnv1a64::new();
        assert_eq!(h.value(), 0xcbf29ce484222325);
        h.update(b"a");
        assert_eq!(h.value(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a64::new();
        h.update(b"foobar");
        assert_eq!(h.value(), 0x85944171f73967e8);
    }
}
