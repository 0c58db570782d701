//! Structure-aware byte mutation of valid seeds.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};

/// The case's random stream (xoshiro256++ seeded from `(seed, case)` by SplitMix64).
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    pub fn for_case(seed: u64, case: u64) -> Self {
        let mixed = seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA71A_5F22;
        Rng(Xoshiro256PlusPlus::seed_from_u64(mixed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Integers that break length and offset fields: boundaries, signs, powers of two.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    100_000_000,
    1 << 40,
];

/// Decimal / octal spellings of big numbers for text formats (tar sizes, JSON offsets).
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e309",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "77777777777",
    "99999999999999999999999",
    "NaN",
    "1.5",
];

/// Mutates copies of valid seeds.
pub struct Mutator {
    seeds: Vec<Vec<u8>>,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seeds: Vec<Vec<u8>>, dict: Vec<Vec<u8>>) -> Self {
        assert!(!seeds.is_empty(), "a mutator needs at least one seed");
        Mutator { seeds, dict }
    }

    /// One seed (or, rarely, random bytes) with 1 to 8 stacked mutations.
    pub fn mutate(&self, rng: &mut Rng) -> Vec<u8> {
        if rng.one_in(64) {
            let n = rng.below(512);
            return rng.bytes(n);
        }
        let mut data = self.seeds[rng.below(self.seeds.len())].clone();
        // Mostly few mutations: deep in the parser, most of the input must stay valid.
        let max_rounds = if rng.one_in(4) { 8 } else { 2 };
        let rounds = 1 + rng.below(max_rounds);
        for _ in 0..rounds {
            self.mutate_once(rng, &mut data);
        }
        data
    }

    fn mutate_once(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let len = data.len();
        match rng.below(14) {
            // Bit flip.
            0 | 1 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            // Random byte.
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            // Interesting integer written over a (length) field, either byte order and width.
            3 | 4 if len > 0 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let bytes = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let bytes = if bytes[0] == (v as u8) {
                    &bytes[..width]
                } else {
                    &bytes[8 - width..]
                };
                let at = rng.below(len);
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(d) = data.get_mut(at + k) {
                        *d = *b;
                    }
                }
            }
            // Truncate.
            5 if len > 0 => data.truncate(rng.below(len)),
            // Delete a range.
            6 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64.min(len - a))).min(len);
                data.drain(a..b);
            }
            // Duplicate a range in place.
            7 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let chunk = data[a..b].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            // Splice: our head, another seed's tail.
            8 => {
                let other = &self.seeds[rng.below(self.seeds.len())];
                let a = rng.below(len + 1);
                let b = rng.below(other.len() + 1);
                data.truncate(a);
                data.extend_from_slice(&other[b..]);
            }
            // Dictionary token inserted or written over.
            9 | 10 if !self.dict.is_empty() => {
                let tok = &self.dict[rng.below(self.dict.len())];
                let at = rng.below(len + 1);
                if rng.one_in(2) {
                    data.splice(at..at, tok.iter().copied());
                } else {
                    let end = (at + tok.len()).min(len);
                    data.splice(at..end, tok.iter().copied());
                }
            }
            // A number in text (length fields of text formats), replacing a digit run.
            11 => {
                let num = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
                let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
                if digits.is_empty() {
                    let at = rng.below(len + 1);
                    data.splice(at..at, num.iter().copied());
                } else {
                    let a = digits[rng.below(digits.len())];
                    let mut b = a;
                    while b < len && data[b].is_ascii_digit() {
                        b += 1;
                    }
                    data.splice(a..b, num.iter().copied());
                }
            }
            // Random bytes inserted.
            12 => {
                let n = 1 + rng.below(16);
                let at = rng.below(len + 1);
                let bytes = rng.bytes(n);
                data.splice(at..at, bytes);
            }
            // Swap two bytes.
            _ if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                data.swap(a, b);
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_reproducible_and_differ() {
        let m = Mutator::new(vec![b"hello 12345 world".to_vec()], vec![b"..".to_vec()]);
        let a: Vec<Vec<u8>> = (0..50)
            .map(|c| m.mutate(&mut Rng::for_case(7, c)))
            .collect();
        let b: Vec<Vec<u8>> = (0..50)
            .map(|c| m.mutate(&mut Rng::for_case(7, c)))
            .collect();
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(
            distinct.len() > 40,
            "only {} distinct inputs",
            distinct.len()
        );
        assert!(a.iter().any(|x| x.as_slice() != b"hello 12345 world"));
    }

    #[test]
    fn a_panicking_parser_fails_the_run_with_the_case() {
        let settings = crate::Settings {
            cases: 500,
            seed: 1,
            start: 0,
        };
        let r = std::panic::catch_unwind(|| {
            crate::run_with(
                "selftest",
                settings,
                |rng| Mutator::new(vec![b"abc".to_vec()], vec![]).mutate(rng),
                |input| {
                    assert!(input.len() < 6, "long input");
                    true
                },
            )
        });
        let msg = match r {
            Ok(_) => panic!("the run should fail"),
            Err(p) => crate::panic_message(&*p),
        };
        assert!(msg.contains("ATLAS_FUZZ_START="), "{msg}");
        assert!(msg.contains("long input"), "{msg}");
    }
}
