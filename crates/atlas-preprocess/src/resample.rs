//! Pillow's `Image.resize` (libImaging/Resample.c and Geometry.c), ported to be bit-exact.
//!
//! Hand-written because no maintained crate reproduces Pillow bit for bit: `fast_image_resize` 5
//! with `CatmullRom` (a = -0.5, also antialiased) matches only ~81% of output bytes, off by up to
//! 10/255 on the sample photos (`tests/parity.rs::fast_image_resize_is_not_pillow_exact`), and
//! nothing else models Pillow 13's pass order. Pillow's algorithm (13.0.0 `Resample.c`), reproduced:
//! - separable convolution, horizontal pass first, except vertical first when the height shrinks
//!   by more than twice as many pixels as the width (new in Pillow 13); each pass rounds to u8 with
//!   `clip8` (fixed point, 22 fractional bits, coefficients rounded half away from zero);
//! - the filter support is widened by the downscale factor (antialiasing);
//! - a pass is skipped when its axis keeps its size;
//! - `I;16` uses double coefficients and `ROUND_UP` instead (`ImagingResample*_16bpc`);
//! - `NEAREST` (forced for modes `1` and `P`) is `ImagingScaleAffine` with accumulated doubles.
//!
//! Every output sample depends only on its own coefficients, and the 8-bit sums are exact
//! integers, so computing only a crop window of the resized image (and summing in any order)
//! gives the same bytes as resizing everything and cropping afterwards.

use crate::config::Interpolation;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The part of the resized image to produce (Pillow computes all of it; we skip what the
/// center crop discards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

fn support(f: Interpolation) -> f64 {
    match f {
        Interpolation::Bicubic => 2.0,
        Interpolation::Bilinear => 1.0,
    }
}

#[inline]
fn filter(f: Interpolation, x: f64) -> f64 {
    let x = x.abs();
    match f {
        Interpolation::Bicubic => {
            const A: f64 = -0.5;
            if x < 1.0 {
                ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * A
            } else {
                0.0
            }
        }
        Interpolation::Bilinear => {
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        }
    }
}

/// `precompute_coeffs` for one axis (box = the whole axis), for the output indices in `range`
/// only (a 1x10000 image resized to shortest side 224 has a 2.2M-wide axis, of which the crop
/// keeps 224).
struct Coeffs {
    ksize: usize,
    /// First output index described.
    start: usize,
    /// (first input index, number of taps) per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` normalised double coefficients per output index.
    kk: Vec<f64>,
}

impl Coeffs {
    #[inline]
    fn get(&self, xx: usize) -> (usize, &[f64]) {
        let i = xx - self.start;
        let (xmin, cnt) = self.bounds[i];
        (xmin, &self.kk[i * self.ksize..i * self.ksize + cnt])
    }
}

fn precompute_coeffs(
    in_size: usize,
    out_size: usize,
    range: std::ops::Range<usize>,
    f: Interpolation,
) -> Coeffs {
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = support(f) * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut kk = vec![0.0f64; range.len() * ksize];
    let mut bounds = Vec::with_capacity(range.len());
    let ss = 1.0 / filterscale;
    let start = range.start;
    for xx in range {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C `(int)` truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let xmax = (xmax.max(0) as usize).min(ksize);
        let xmin = xmin as usize;
        let i = xx - start;
        let k = &mut kk[i * ksize..(i + 1) * ksize];
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = filter(f, ((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        if ww != 0.0 {
            for kx in k.iter_mut().take(xmax) {
                *kx /= ww;
            }
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        ksize,
        start,
        bounds,
        kk,
    }
}

/// `normalize_coeffs_8bpc`: round half away from zero to 22 fractional bits.
fn fixed(kk: &[f64]) -> Vec<i32> {
    let one = f64::from(1u32 << PRECISION_BITS);
    kk.iter()
        .map(|&k| {
            if k < 0.0 {
                (-0.5 + k * one) as i32
            } else {
                (0.5 + k * one) as i32
            }
        })
        .collect()
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Input span `first..last` that the taps of the described output indices cover.
fn span(c: &Coeffs) -> (usize, usize) {
    let first = c.bounds.first().map_or(0, |b| b.0);
    let last = c.bounds.last().map_or(first, |b| b.0 + b.1);
    (first, last.max(first))
}

/// Copy a window out of an interleaved image.
fn crop<T: Copy>(src: &[T], w: usize, ch: usize, win: &Window) -> Vec<T> {
    let mut out = Vec::with_capacity(win.w * win.h * ch);
    for y in win.y0..win.y0 + win.h {
        out.extend_from_slice(&src[(y * w + win.x0) * ch..(y * w + win.x0 + win.w) * ch]);
    }
    out
}

/// Pillow 13's pass order (`ImagingResampleInner`): vertical first iff the height shrinks by
/// more than twice as many pixels as the width. Pillow <= 12 always went horizontal first; the
/// two orders round differently (up to 5/255 on the sample photos).
fn horizontal_first(w: usize, h: usize, out_w: usize, out_h: usize) -> bool {
    let dy = h as i64 - out_h as i64;
    let dx = w as i64 - out_w as i64;
    !(dy > 0 && dy > dx * 2)
}

/// The samples a pass works on: `rows` rows of `w` pixels, row 0 / column 0 being input
/// index `row0` / `col0`.
struct Plane<'a, T> {
    data: &'a [T],
    w: usize,
    row0: usize,
    col0: usize,
}

/// One separable pass of `ImagingResample{Horizontal,Vertical}_8bpc` over `N` channels.
/// Horizontal: output row `r` is input row `row0 + r`; vertical: output row `r` is `c`'s r-th
/// index and all columns of the plane are kept.
fn pass_u8<const N: usize>(p: &Plane<u8>, c: &Coeffs, horizontal: bool, rows: usize) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let kk = fixed(&c.kk);
    let rl_in = p.w * N;
    if horizontal {
        let ow = c.bounds.len();
        let mut out = vec![0u8; rows * ow * N];
        for (r, orow) in out.chunks_exact_mut(ow * N).enumerate() {
            let srow = &p.data[r * rl_in..(r + 1) * rl_in];
            for (i, px) in orow.chunks_exact_mut(N).enumerate() {
                let (xmin, cnt) = c.bounds[i];
                let xmin = xmin - p.col0;
                let k = &kk[i * c.ksize..i * c.ksize + cnt];
                let mut ss = [half; N];
                for (s, &kx) in srow[xmin * N..(xmin + cnt) * N].chunks_exact(N).zip(k) {
                    for ch in 0..N {
                        ss[ch] += i32::from(s[ch]) * kx;
                    }
                }
                for ch in 0..N {
                    px[ch] = clip8(ss[ch]);
                }
            }
        }
        out
    } else {
        // Integer sums: accumulating tap by tap over whole rows is the same arithmetic as
        // Pillow's per-pixel loop (sums are exact), and vectorises.
        let mut out = vec![0u8; c.bounds.len() * rl_in];
        let mut acc = vec![0i32; rl_in];
        for (i, orow) in out.chunks_exact_mut(rl_in).enumerate() {
            let (ymin, cnt) = c.bounds[i];
            acc.fill(half);
            for (t, &ky) in kk[i * c.ksize..i * c.ksize + cnt].iter().enumerate() {
                let y = ymin + t - p.row0;
                for (a, &s) in acc.iter_mut().zip(&p.data[y * rl_in..(y + 1) * rl_in]) {
                    *a += i32::from(s) * ky;
                }
            }
            for (o, &a) in orow.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        out
    }
}

/// `ImagingResample*_16bpc` pass: double sums in Pillow's order, `ROUND_UP`, and its byte-wise
/// clipping (values above 65535 keep their low byte under a 0xFF high byte).
fn pass_u16(p: &Plane<u16>, c: &Coeffs, horizontal: bool, rows: usize) -> Vec<u16> {
    fn store(ss: f64) -> u16 {
        let v = if ss >= 0.0 { ss + 0.5 } else { ss - 0.5 } as i32;
        let clip = |v: i32| v.clamp(0, 255) as u16;
        clip(v % 256) | (clip(v >> 8) << 8)
    }
    let mut out = Vec::new();
    if horizontal {
        for r in 0..rows {
            let srow = &p.data[r * p.w..(r + 1) * p.w];
            for i in 0..c.bounds.len() {
                let (xmin, k) = c.get(c.start + i);
                let xmin = xmin - p.col0;
                let mut ss = 0.0f64;
                for (&v, &kx) in srow[xmin..xmin + k.len()].iter().zip(k) {
                    ss += f64::from(v) * kx;
                }
                out.push(store(ss));
            }
        }
    } else {
        for i in 0..c.bounds.len() {
            let (ymin, k) = c.get(c.start + i);
            for x in 0..p.w {
                let mut ss = 0.0f64;
                for (t, &ky) in k.iter().enumerate() {
                    ss += f64::from(p.data[(ymin + t - p.row0) * p.w + x]) * ky;
                }
                out.push(store(ss));
            }
        }
    }
    out
}

/// Both passes in Pillow 13's order, computing only `win` of the output.
fn resize_generic<T: Copy>(
    src: &[T],
    ch: usize,
    (w, h): (usize, usize),
    (out_w, out_h): (usize, usize),
    win: Window,
    f: Interpolation,
    pass: impl Fn(&Plane<T>, &Coeffs, bool, usize) -> Vec<T>,
) -> Vec<T> {
    debug_assert_eq!(src.len(), w * h * ch);
    debug_assert!(win.x0 + win.w <= out_w && win.y0 + win.h <= out_h);
    let need_h = out_w != w;
    let need_v = out_h != h;
    if !need_h && !need_v {
        return crop(src, w, ch, &win);
    }
    let hc = need_h.then(|| precompute_coeffs(w, out_w, win.x0..win.x0 + win.w, f));
    let vc = need_v.then(|| precompute_coeffs(h, out_h, win.y0..win.y0 + win.h, f));
    // Input rows / columns the window needs.
    let (r0, r1) = vc.as_ref().map_or((win.y0, win.y0 + win.h), span);
    let (c0, c1) = hc.as_ref().map_or((win.x0, win.x0 + win.w), span);
    let sub = |data: &[T], dw: usize, rows: (usize, usize), cols: (usize, usize)| {
        let win = Window {
            x0: cols.0,
            y0: rows.0,
            w: cols.1 - cols.0,
            h: rows.1 - rows.0,
        };
        crop(data, dw, ch, &win)
    };
    match (&vc, horizontal_first(w, h, out_w, out_h)) {
        // Vertical first (only when the height shrinks): just the input columns the window needs.
        (Some(vc), false) => {
            let cols = sub(src, w, (0, h), (c0, c1));
            let p = Plane {
                data: &cols,
                w: c1 - c0,
                row0: 0,
                col0: c0,
            };
            let tmp = pass(&p, vc, false, win.h);
            match &hc {
                Some(hc) => {
                    let p = Plane {
                        data: &tmp,
                        w: c1 - c0,
                        row0: 0,
                        col0: c0,
                    };
                    pass(&p, hc, true, win.h)
                }
                None => tmp,
            }
        }
        _ => {
            // Horizontal pass over the needed input rows (all columns: it reads whole rows).
            let tmp = match &hc {
                Some(hc) => {
                    let rows = &src[r0 * w * ch..r1 * w * ch];
                    let p = Plane {
                        data: rows,
                        w,
                        row0: r0,
                        col0: 0,
                    };
                    pass(&p, hc, true, r1 - r0)
                }
                None => sub(src, w, (r0, r1), (win.x0, win.x0 + win.w)),
            };
            match &vc {
                Some(vc) => {
                    let p = Plane {
                        data: &tmp,
                        w: win.w,
                        row0: r0,
                        col0: 0,
                    };
                    pass(&p, vc, false, win.h)
                }
                None => tmp,
            }
        }
    }
}

/// Resize an interleaved u8 image with `N` channels to `out_w x out_h` and return `win` of it.
/// Pillow treats every channel alike (alpha premultiplication is the caller's job).
pub(crate) fn resize_u8<const N: usize>(
    src: &[u8],
    size: (usize, usize),
    out: (usize, usize),
    win: Window,
    f: Interpolation,
) -> Vec<u8> {
    resize_generic(src, N, size, out, win, f, pass_u8::<N>)
}

/// `I;16` resize.
pub(crate) fn resize_u16(
    src: &[u16],
    size: (usize, usize),
    out: (usize, usize),
    win: Window,
    f: Interpolation,
) -> Vec<u16> {
    resize_generic(src, 1, size, out, win, f, pass_u16)
}

/// `ImagingScaleAffine` (what `Image.resize` does with NEAREST): source positions accumulate
/// `in/out` in doubles from `0.5 * in/out`; pixels mapping outside the source are 0.
pub(crate) fn resize_nearest(
    src: &[u8],
    ch: usize,
    (w, h): (usize, usize),
    (out_w, out_h): (usize, usize),
    win: Window,
) -> Vec<u8> {
    if (w, h) == (out_w, out_h) {
        return crop(src, w, ch, &win);
    }
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let table = |n_in: usize, n_out: usize| -> Vec<Option<usize>> {
        let a = f64::from(n_in as f32) / n_out as f64;
        let mut o = a * 0.5;
        (0..n_out)
            .map(|_| {
                let i = coord(o);
                o += a;
                (i >= 0 && (i as usize) < n_in).then_some(i as usize)
            })
            .collect()
    };
    let xs = table(w, out_w);
    let ys = table(h, out_h);
    let mut out = vec![0u8; win.w * win.h * ch];
    for (oy, orow) in out.chunks_exact_mut(win.w * ch).enumerate() {
        let Some(sy) = ys[win.y0 + oy] else { continue };
        let srow = &src[sy * w * ch..(sy + 1) * w * ch];
        for (ox, px) in orow.chunks_exact_mut(ch).enumerate() {
            if let Some(sx) = xs[win.x0 + ox] {
                px.copy_from_slice(&srow[sx * ch..(sx + 1) * ch]);
            }
        }
    }
    out
}
