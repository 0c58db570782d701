//! Real roots of polynomials up to degree 4 on an interval, by recursive isolation: the roots of
//! the derivative split the interval into monotone pieces, and each sign change in a piece is
//! polished by Newton steps kept inside a shrinking bracket. Roots without a sign change
//! (tangential double roots) are not reported, or, when rounding makes the polynomial dip
//! below zero there, reported as a pair of nearly equal roots.

/// `c[0] + c[1] x + ... + c[deg] x^deg`.
pub(crate) fn horner(c: &[f64; 5], deg: usize, x: f64) -> f64 {
    c[..=deg].iter().rev().fold(0.0, |acc, &k| acc * x + k)
}

/// The roots in `(lo, hi)` where the polynomial changes sign, ascending, into `out`; returns
/// how many. Recursion on the derivative splits `[lo, hi]` into monotone pieces.
pub(crate) fn poly_roots(c: &[f64; 5], deg: usize, lo: f64, hi: f64, out: &mut [f64; 4]) -> usize {
    if deg == 0 {
        return 0;
    }
    let mut deriv = [0.0; 5];
    for k in 1..=deg {
        deriv[k - 1] = c[k] * k as f64;
    }
    let mut crit = [0.0; 4];
    let nc = if deg == 1 {
        0
    } else {
        poly_roots(&deriv, deg - 1, lo, hi, &mut crit)
    };
    let mut n = 0;
    let mut a = lo;
    for b in crit[..nc].iter().copied().chain([hi]) {
        let (fa, fb) = (horner(c, deg, a), horner(c, deg, b));
        if (fa <= 0.0) != (fb <= 0.0) && n < 4 {
            out[n] = polish(c, &deriv, deg, a, b, fa);
            n += 1;
        }
        a = b;
    }
    n
}

/// The sign change of a polynomial monotone on `[a, b]`: Newton steps kept inside a shrinking
/// bracket, bisection when a step leaves it.
fn polish(c: &[f64; 5], deriv: &[f64; 5], deg: usize, mut a: f64, mut b: f64, fa: f64) -> f64 {
    let a_neg = fa <= 0.0;
    let mut x = 0.5 * (a + b);
    for _ in 0..64 {
        let fx = horner(c, deg, x);
        if (fx <= 0.0) == a_neg {
            a = x;
        } else {
            b = x;
        }
        let dfx = horner(deriv, deg - 1, x);
        let newton = x - fx / dfx;
        let next = if dfx != 0.0 && newton > a && newton < b {
            newton
        } else {
            0.5 * (a + b)
        };
        if (next - x).abs() <= 1e-14 * (1.0 + x.abs()) || b - a <= 1e-14 * (1.0 + x.abs()) {
            return next;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sign_changes_of_a_quartic() {
        // (x - 1)(x - 2)(x - 3)(x - 4) = x^4 - 10x^3 + 35x^2 - 50x + 24
        let c = [24.0, -50.0, 35.0, -10.0, 1.0];
        let mut out = [0.0; 4];
        let n = poly_roots(&c, 4, 0.0, 5.0, &mut out);
        assert_eq!(n, 4);
        for (k, r) in out.iter().enumerate() {
            assert!((r - (k + 1) as f64).abs() < 1e-12, "{r}");
        }
        assert_eq!(poly_roots(&c, 4, 1.5, 2.5, &mut out), 1);
        // (x - 1)^2 (x^2 + 1): a double root only. Rounding may show it as no sign change or
        // as a pair of sign changes at the root (a grazing ray: an empty or tiny span).
        let d = [1.0, -2.0, 2.0, -2.0, 1.0];
        let n = poly_roots(&d, 4, -3.0, 3.0, &mut out);
        assert!(n == 0 || n == 2, "{n}");
        assert!(out[..n].iter().all(|r| (r - 1.0).abs() < 1e-6), "{out:?}");
        assert!((horner(&d, 4, 2.0) - 5.0).abs() < 1e-12);
    }
}
