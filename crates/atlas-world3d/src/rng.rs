//! A tiny keyed PRNG: SplitMix64 seeded by mixing the key words (config seed, domain tag,
//! indices). Integer operations only, so every stream is identical on every platform and
//! independent of thread scheduling: each scene, view and pair draws from its own key.

/// The SplitMix64 increment (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Domain tags, so streams of different purposes never coincide.
pub(crate) mod domain {
    pub const SCENE: u64 = 1;
    pub const VIEW: u64 = 2;
    pub const SEMANTIC: u64 = 3;
    pub const MOTION: u64 = 4;
}

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A stream keyed by `words` (order matters).
    pub(crate) fn new(words: &[u64]) -> Rng {
        let mut s = 0x6174_6C61_7333_6421_u64; // "atlas3d!"
        for &w in words {
            s = mix64(s ^ mix64(w.wrapping_add(GAMMA)));
        }
        Rng(s)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)` (53 bits).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `[0, n)` (`n == 0` gives 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A uniform value in `[0, 1)` for an integer lattice cell (3D cell noise).
pub(crate) fn cell_noise(seed: u64, i: i64, j: i64, k: i64) -> f64 {
    let h =
        mix64(seed ^ mix64((i as u64).wrapping_mul(GAMMA) ^ mix64((j as u64) ^ mix64(k as u64))));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_keyed_and_uniformish() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(&[1, 2]).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(Rng::new(&[1, 2]).next_u64(), Rng::new(&[2, 1]).next_u64());
        let mut r = Rng::new(&[9]);
        let mean = (0..10_000).map(|_| r.unit()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
