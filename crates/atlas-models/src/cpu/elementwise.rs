//! The towers' MLP activations (and attention's softmax rows) as one pass over host memory, on
//! every core, in SIMD.
//!
//! burn's CPU backend computes exact GELU with a scalar `erf` per element (~43 ms for the
//! `[32, 50, 3072]` activations of one ViT-B/32 block on 2 cores, PyTorch 3.3 ms) and QuickGELU as
//! three passes. Here each activation is one branch-free formula the compiler vectorises, built
//! for AVX-512 and AVX2 and picked at run time, with plain `*`/`+` (no fused multiply-add), so the
//! result is the same bits on every machine.
//!
//! - GELU: `0.5 x (1 + erf(x / sqrt 2))` with erf by Abramowitz & Stegun 7.1.26 (|error| <=
//!   1.5e-7), the approximation PyTorch's vectorised CPU `erf` uses; for `x < 0` the `1 + erf`
//!   is formed as the complement directly (`p(t) exp(-z^2)`), without cancellation.
//! - QuickGELU: `x / (1 + exp(-1.702 x))`.
//! - tanh GELU: `0.5 x (1 + tanh(u)) = x / (1 + exp(-2u))`, `u = sqrt(2/pi) (x + 0.044715 x^3)`.
//!
//! `exp` is Cody-Waite range reduction with Cephes' degree-6 polynomial (about 1 ulp on the
//! reduced range), the argument clamped to `[-87.3, 88.3]` so `2^n` stays a normal number.

use crate::activation::Activation;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 * 2^23`: adding it rounds an f32 in `(-2^22, 2^22)` to an integer held in the low bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let kn = x * LOG2E + ROUND_MAGIC;
    let n = kn - ROUND_MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // kn's bits are 0x4B40_0000 + n: move n + 127 into the exponent field.
    let pow2n = f32::from_bits(kn.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    e * pow2n
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let z = (x * FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    // erfc(|z|) / 2
    let half_tail = 0.5 * poly * exp(-(z * z));
    let cdf = if x < 0.0 { half_tail } else { 1.0 - half_tail };
    x * cdf
}

#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + exp(-1.702 * x))
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

#[inline(always)]
fn apply_generic(v: &mut [f32], act: Activation) {
    match act {
        Activation::Gelu => v.iter_mut().for_each(|x| *x = gelu(*x)),
        Activation::QuickGelu => v.iter_mut().for_each(|x| *x = quick_gelu(*x)),
        Activation::GeluTanh => v.iter_mut().for_each(|x| *x = gelu_tanh(*x)),
    }
}

/// Row softmax of a square `[cols, cols]` score block in place: `x <- exp(x - max) / sum` over
/// each row (its first `row + 1` entries under a causal mask, the rest set to 0).
#[inline(always)]
fn softmax_rows_generic(scores: &mut [f32], cols: usize, causal: bool) {
    const LANES: usize = 16;
    for (i, s) in scores.chunks_exact_mut(cols).enumerate() {
        let valid = if causal { (i + 1).min(cols) } else { cols };
        let (row, masked) = s.split_at_mut(valid);
        // Maximum and sum in 16 lanes (vectorisable), then across the lanes.
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (m, &x) in lanes.iter_mut().zip(c) {
                *m = if x > *m { x } else { *m };
            }
        }
        for (m, &x) in lanes.iter_mut().zip(chunks.remainder()) {
            *m = if x > *m { x } else { *m };
        }
        let max = lanes
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        row.iter_mut().for_each(|v| *v = exp(*v - max));
        let mut sums = [0.0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (s, &x) in sums.iter_mut().zip(c) {
                *s += x;
            }
        }
        for (s, &x) in sums.iter_mut().zip(chunks.remainder()) {
            *s += x;
        }
        let inv = 1.0 / sums.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= inv);
        masked.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// One pass over a buffer: what [`run`] builds for the CPU at hand.
#[derive(Clone, Copy)]
enum Pass {
    Activation(Activation),
    Softmax { cols: usize, causal: bool },
}

#[inline(always)]
fn run_generic(v: &mut [f32], pass: Pass) {
    match pass {
        Pass::Activation(act) => apply_generic(v, act),
        Pass::Softmax { cols, causal } => softmax_rows_generic(v, cols, causal),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
fn run_avx512(v: &mut [f32], pass: Pass) {
    run_generic(v, pass)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(v: &mut [f32], pass: Pass) {
    run_generic(v, pass)
}

/// [`run_generic`] built for AVX-512, AVX2 or the baseline, picked by CPU detection (the same
/// bits from each build: no fused multiply-add is formed).
fn run(v: &mut [f32], pass: Pass) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") && has!("avx512vl") {
            // SAFETY: the CPU has the features the function was compiled for.
            return unsafe { run_avx512(v, pass) };
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: as above.
            return unsafe { run_avx2(v, pass) };
        }
    }
    run_generic(v, pass)
}

/// Softmax of each row of a square `[cols, cols]` score block in place (causal: each row over
/// its first `row + 1` entries, the rest 0).
pub fn softmax_rows(scores: &mut [f32], cols: usize, causal: bool) {
    run(scores, Pass::Softmax { cols, causal })
}

/// Apply `act` to every element in place, split over the rayon pool.
pub fn apply(v: &mut [f32], act: Activation) {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    if v.len() <= CHUNK {
        run(v, Pass::Activation(act));
    } else {
        v.par_chunks_mut(CHUNK)
            .for_each(|c| run(c, Pass::Activation(act)));
    }
}

/// One element, the scalar build (the tests' reference).
#[cfg(test)]
fn apply_one(x: f32, act: Activation) -> f32 {
    let mut v = [x];
    apply_generic(&mut v, act);
    v[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.28-free check: integrate exp(-t^2) with Simpson's rule.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn activations_match_their_definitions() {
        let mut x = -12.0f32;
        while x < 12.0 {
            let xd = x as f64;
            let gelu_want = 0.5 * xd * (1.0 + erf64(xd / 2f64.sqrt()));
            let g = apply_one(x, Activation::Gelu) as f64;
            assert!(
                (g - gelu_want).abs() <= 2e-7 * xd.abs().max(1.0),
                "gelu({x}) = {g}, want {gelu_want}"
            );
            let q_want = xd / (1.0 + (-1.702 * xd).exp());
            let q = apply_one(x, Activation::QuickGelu) as f64;
            assert!(
                (q - q_want).abs() <= 4e-7 * xd.abs().max(1.0),
                "quick_gelu({x})"
            );
            let u = (2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd.powi(3));
            let t_want = 0.5 * xd * (1.0 + u.tanh());
            let t = apply_one(x, Activation::GeluTanh) as f64;
            assert!(
                (t - t_want).abs() <= 4e-7 * xd.abs().max(1.0),
                "gelu_tanh({x})"
            );
            x += 0.031;
        }
    }

    #[test]
    fn the_simd_builds_give_the_scalar_bits() {
        let xs: Vec<f32> = (0..70_001)
            .map(|i| (i as f32 - 35_000.0) * 3.3e-4)
            .collect();
        for act in [
            Activation::Gelu,
            Activation::QuickGelu,
            Activation::GeluTanh,
        ] {
            let mut v = xs.clone();
            apply(&mut v, act);
            for (x, y) in xs.iter().zip(&v) {
                assert_eq!(y.to_bits(), apply_one(*x, act).to_bits(), "{act} at {x}");
            }
        }
    }
}
