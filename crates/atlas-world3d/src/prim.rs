//! Analytic solids and exact ray casting.
//!
//! A [`Solid`] is a union of [`Part`]s; a part is a primitive, optionally minus another
//! (constructive solid geometry difference, e.g. a crescent is a disc minus a disc). Every
//! primitive reports the *spans* of a ray inside it (`t` intervals with the surface normals at
//! both ends), computed in closed form (quadrics, planes) — only the torus's quartic is solved
//! numerically (root isolation by derivatives, safeguarded Newton), with tangential (grazing)
//! contacts counted as misses.
//!
//! Each primitive lives in its own local frame (`p_world = rot * p_local + pos`); rays need not
//! be unit length, and the ray parameter `t` is preserved by the frame change, so with the
//! camera's z-normalised rays `t` is z-depth. Normals are unnormalised gradients and may point
//! either way; shading orients them towards the viewer.

use crate::math::{Mat3, Vec3};
use crate::poly::{horner, poly_roots};

/// A ray `o + t d` (`d` need not be unit length).
#[derive(Clone, Copy, Debug)]
pub struct Ray {
    pub o: Vec3,
    pub d: Vec3,
}

/// A ray-surface hit: the ray parameter and the (world, unnormalised) surface normal.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub t: f64,
    pub n: Vec3,
}

/// A span of the ray inside a solid: enter at `a`, leave at `b` (`a.t <= b.t`).
#[derive(Clone, Copy, Debug)]
struct Span {
    a: Hit,
    b: Hit,
}

/// At most [`MAX_SPANS`] spans, sorted by entry.
const MAX_SPANS: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Spans {
    s: [Span; MAX_SPANS],
    n: usize,
}

const NO_HIT: Hit = Hit {
    t: 0.0,
    n: Vec3::ZERO,
};

impl Spans {
    fn empty() -> Spans {
        Spans {
            s: [Span {
                a: NO_HIT,
                b: NO_HIT,
            }; MAX_SPANS],
            n: 0,
        }
    }

    fn push(&mut self, a: Hit, b: Hit) {
        if self.n < MAX_SPANS && a.t <= b.t {
            self.s[self.n] = Span { a, b };
            self.n += 1;
        }
    }

    fn as_slice(&self) -> &[Span] {
        &self.s[..self.n]
    }

    /// `self` minus the spans of `cut` (the normals at cut boundaries are `cut`'s).
    fn subtract(&self, cut: &Spans) -> Spans {
        let mut cur = *self;
        for c in cut.as_slice() {
            let mut next = Spans::empty();
            for s in cur.as_slice() {
                if c.b.t <= s.a.t || c.a.t >= s.b.t {
                    next.push(s.a, s.b);
                    continue;
                }
                if c.a.t > s.a.t {
                    next.push(s.a, c.a);
                }
                if c.b.t < s.b.t {
                    next.push(c.b, s.b);
                }
            }
            cur = next;
        }
        cur
    }
}

/// The shape of a primitive, in its local frame.
#[derive(Clone, Debug)]
pub enum Shape3 {
    /// Axis-aligned ellipsoid centred at the origin with semi-axes `r`.
    Ellipsoid { r: Vec3 },
    /// Convex polytope `{p : n_i . p <= d_i}` (a bounded intersection of half-spaces).
    Polytope { planes: Vec<(Vec3, f64)> },
    /// Capped cylinder around the local `z` axis, `z` in `[-h, h]`.
    Cylinder { r: f64, h: f64 },
    /// Capped cone around the local `z` axis: base radius `r` at `z = 0`, apex at `z = h`.
    Cone { r: f64, h: f64 },
    /// Torus around the local `z` axis: tube centre radius `big`, tube radius `small`.
    Torus { big: f64, small: f64 },
}

/// A primitive placed in the world.
#[derive(Clone, Debug)]
pub struct Prim {
    pub shape: Shape3,
    /// Local-to-world rotation.
    pub rot: Mat3,
    /// Local origin in world coordinates.
    pub pos: Vec3,
    /// Radius of a sphere around `pos` containing the primitive.
    pub bound: f64,
}

impl Prim {
    /// A primitive with its local frame at `pos`, rotated by `rot`.
    pub fn new(shape: Shape3, rot: Mat3, pos: Vec3) -> Prim {
        let bound = match &shape {
            Shape3::Ellipsoid { r } => r.x.max(r.y).max(r.z),
            Shape3::Polytope { planes } => polytope_bound(planes),
            Shape3::Cylinder { r, h } => (r * r + h * h).sqrt(),
            Shape3::Cone { r, h } => r.max(*h),
            Shape3::Torus { big, small } => big + small,
        };
        Prim {
            shape,
            rot,
            pos,
            bound: bound * (1.0 + 1e-9) + 1e-9,
        }
    }

    /// The same primitive moved by the rigid motion `p -> rot * p + pos`.
    pub fn transformed(&self, rot: &Mat3, pos: Vec3) -> Prim {
        Prim {
            shape: self.shape.clone(),
            rot: rot.mul(&self.rot),
            pos: rot.apply(self.pos) + pos,
            bound: self.bound,
        }
    }

    fn spans(&self, ray: &Ray) -> Spans {
        let mut out = Spans::empty();
        // Bounding-sphere rejection.
        let oc = ray.o - self.pos;
        let a = ray.d.dot(ray.d);
        let b = oc.dot(ray.d);
        let c = oc.dot(oc) - self.bound * self.bound;
        if b * b - a * c < 0.0 {
            return out;
        }
        let inv = self.rot.transpose();
        let o = inv.apply(oc);
        let d = inv.apply(ray.d);
        let to_world = |h: Hit| Hit {
            t: h.t,
            n: self.rot.apply(h.n),
        };
        let mut push = |lo: Hit, hi: Hit| out.push(to_world(lo), to_world(hi));
        match &self.shape {
            Shape3::Ellipsoid { r } => {
                let inv2 = Vec3::new(1.0 / (r.x * r.x), 1.0 / (r.y * r.y), 1.0 / (r.z * r.z));
                let qa = d.mul_elem(d).dot(inv2);
                let qb = 2.0 * o.mul_elem(d).dot(inv2);
                let qc = o.mul_elem(o).dot(inv2) - 1.0;
                if let Some((t0, t1)) = roots(qa, qb, qc) {
                    let n = |t: f64| (o + d * t).mul_elem(inv2);
                    push(Hit { t: t0, n: n(t0) }, Hit { t: t1, n: n(t1) });
                }
            }
            Shape3::Polytope { planes } => {
                if let Some((lo, hi)) = clip_planes(planes, o, d, None) {
                    push(lo, hi);
                }
            }
            Shape3::Cylinder { r, h } => {
                let slab = slab_z(o, d, -h, *h);
                let qa = d.x * d.x + d.y * d.y;
                let qb = 2.0 * (o.x * d.x + o.y * d.y);
                let qc = o.x * o.x + o.y * o.y - r * r;
                let grad = |t: f64| {
                    let p = o + d * t;
                    Vec3::new(p.x, p.y, 0.0)
                };
                for iv in quad_inside(qa, qb, qc, grad).into_iter().flatten() {
                    if let Some((lo, hi)) = intersect(iv, slab) {
                        push(lo, hi);
                    }
                }
            }
            Shape3::Cone { r, h } => {
                let slab = slab_z(o, d, 0.0, *h);
                let k2 = (r / h) * (r / h);
                // x^2 + y^2 - k^2 (h - z)^2 <= 0
                let ez = h - o.z;
                let qa = d.x * d.x + d.y * d.y - k2 * d.z * d.z;
                let qb = 2.0 * (o.x * d.x + o.y * d.y + k2 * ez * d.z);
                let qc = o.x * o.x + o.y * o.y - k2 * ez * ez;
                let grad = |t: f64| {
                    let p = o + d * t;
                    Vec3::new(p.x, p.y, k2 * (h - p.z))
                };
                let mut best: Option<(Hit, Hit)> = None;
                for iv in quad_inside(qa, qb, qc, grad).into_iter().flatten() {
                    if let Some((lo, hi)) = intersect(iv, slab) {
                        // Only the lower nappe meets the slab: join touching pieces.
                        best = Some(match best {
                            None => (lo, hi),
                            Some((l0, h0)) => (
                                if lo.t < l0.t { lo } else { l0 },
                                if hi.t > h0.t { hi } else { h0 },
                            ),
                        });
                    }
                }
                if let Some((lo, hi)) = best {
                    push(lo, hi);
                }
            }
            Shape3::Torus { big, small } => torus_spans(*big, *small, o, d, &mut push),
        }
        out
    }
}

/// Largest distance from the origin of a bounded polytope's vertices (enumerated as the feasible
/// intersections of plane triples; the polytopes here have at most a dozen planes).
fn polytope_bound(planes: &[(Vec3, f64)]) -> f64 {
    let mut best: f64 = 0.0;
    let n = planes.len();
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let (a, b, c) = (planes[i], planes[j], planes[k]);
                let det = a.0.dot(b.0.cross(c.0));
                if det.abs() < 1e-12 {
                    continue;
                }
                let p = (b.0.cross(c.0) * a.1 + c.0.cross(a.0) * b.1 + a.0.cross(b.0) * c.1)
                    * (1.0 / det);
                if planes.iter().all(|(nn, d)| nn.dot(p) <= d + 1e-9) {
                    best = best.max(p.norm());
                }
            }
        }
    }
    best
}

/// The two real roots of `a t^2 + b t + c` in increasing order (`None` without real roots or
/// when `a == 0`).
fn roots(a: f64, b: f64, c: f64) -> Option<(f64, f64)> {
    if a == 0.0 {
        return None;
    }
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return None;
    }
    let s = disc.sqrt();
    // Numerically stable form.
    let q = -0.5 * (b + if b >= 0.0 { s } else { -s });
    let (r0, r1) = if q == 0.0 { (0.0, 0.0) } else { (q / a, c / q) };
    Some(if r0 <= r1 { (r0, r1) } else { (r1, r0) })
}

type Interval = (Hit, Hit);

const NEG_INF: Hit = Hit {
    t: f64::NEG_INFINITY,
    n: Vec3::ZERO,
};
const POS_INF: Hit = Hit {
    t: f64::INFINITY,
    n: Vec3::ZERO,
};

/// Where `a t^2 + b t + c <= 0`: up to two intervals (unbounded ends are infinite).
fn quad_inside(a: f64, b: f64, c: f64, grad: impl Fn(f64) -> Vec3) -> [Option<Interval>; 2] {
    let hit = |t: f64| Hit { t, n: grad(t) };
    if a.abs() < 1e-14 {
        // Linear (or constant): b t + c <= 0.
        if b.abs() < 1e-14 {
            return [(c <= 0.0).then_some((NEG_INF, POS_INF)), None];
        }
        let t = -c / b;
        return [
            Some(if b > 0.0 {
                (NEG_INF, hit(t))
            } else {
                (hit(t), POS_INF)
            }),
            None,
        ];
    }
    match roots(a, b, c) {
        None => [(a < 0.0).then_some((NEG_INF, POS_INF)), None],
        Some((t0, t1)) if a > 0.0 => [Some((hit(t0), hit(t1))), None],
        Some((t0, t1)) => [Some((NEG_INF, hit(t0))), Some((hit(t1), POS_INF))],
    }
}

/// The interval where `lo <= z <= hi` along the local ray.
fn slab_z(o: Vec3, d: Vec3, lo: f64, hi: f64) -> Option<Interval> {
    let up = Vec3::new(0.0, 0.0, 1.0);
    clip_planes(&[(up, hi), (-up, -lo)], o, d, Some((NEG_INF, POS_INF)))
}

fn intersect(a: Interval, b: Option<Interval>) -> Option<Interval> {
    let b = b?;
    let lo = if a.0.t >= b.0.t { a.0 } else { b.0 };
    let hi = if a.1.t <= b.1.t { a.1 } else { b.1 };
    (lo.t <= hi.t && lo.t.is_finite() && hi.t.is_finite()).then_some((lo, hi))
}

/// Clips the ray against half-spaces `n . p <= d` (Cyrus-Beck), starting from `start` (the
/// whole line when `None`). Returns the entry and exit with the planes' normals.
fn clip_planes(
    planes: &[(Vec3, f64)],
    o: Vec3,
    d: Vec3,
    start: Option<Interval>,
) -> Option<Interval> {
    let (mut lo, mut hi) = start.unwrap_or((NEG_INF, POS_INF));
    for &(n, dist) in planes {
        let denom = n.dot(d);
        let num = dist - n.dot(o);
        if denom.abs() < 1e-15 {
            if num < 0.0 {
                return None;
            }
            continue;
        }
        let t = num / denom;
        if denom < 0.0 {
            if t > lo.t {
                lo = Hit { t, n };
            }
        } else if t < hi.t {
            hi = Hit { t, n };
        }
        if lo.t > hi.t {
            return None;
        }
    }
    Some((lo, hi))
}

/// Spans of a ray inside a torus (local frame). The implicit function
/// `(|p|^2 + big^2 - small^2)^2 - 4 big^2 (x^2 + y^2)` along the ray is a quartic in `t`; its
/// real roots in the part of the ray inside both the bounding sphere and the slab
/// `|z| <= small` are isolated by the roots of its derivatives (monotone pieces) and polished
/// by safeguarded Newton iteration. Tangential double roots (grazing rays) count as misses.
fn torus_spans(big: f64, small: f64, o: Vec3, d: Vec3, push: &mut impl FnMut(Hit, Hit)) {
    let rb = big + small;
    let Some((s0, s1)) = roots(d.dot(d), 2.0 * o.dot(d), o.dot(o) - rb * rb) else {
        return;
    };
    let (t0, t1) = if d.z.abs() > 1e-15 {
        let (a, b) = ((-small - o.z) / d.z, (small - o.z) / d.z);
        (s0.max(a.min(b)), s1.min(a.max(b)))
    } else if o.z.abs() <= small {
        (s0, s1)
    } else {
        return;
    };
    if t0 >= t1 {
        return;
    }
    // Re-origin at the segment start for conditioning: p = q + d u, u in [0, t1 - t0].
    let q = o + d * t0;
    let big2 = big * big;
    let (a, b, c) = (d.dot(d), 2.0 * q.dot(d), q.dot(q) + big2 - small * small);
    let (dd, e, f) = (
        d.x * d.x + d.y * d.y,
        2.0 * (q.x * d.x + q.y * d.y),
        q.x * q.x + q.y * q.y,
    );
    let poly = [
        c * c - 4.0 * big2 * f,
        2.0 * b * c - 4.0 * big2 * e,
        b * b + 2.0 * a * c - 4.0 * big2 * dd,
        2.0 * a * b,
        a * a,
    ];
    let len = t1 - t0;
    let mut found = [0.0; 4];
    let n = poly_roots(&poly, 4, 0.0, len, &mut found);
    let grad = |t: f64| {
        let p = o + d * t;
        let s = p.dot(p) + big2 - small * small;
        p * (4.0 * s) - Vec3::new(p.x, p.y, 0.0) * (8.0 * big2)
    };
    let hit = |u: f64| Hit {
        t: t0 + u,
        n: grad(t0 + u),
    };
    let mut enter = (horner(&poly, 4, 0.0) <= 0.0).then_some(0.0);
    for &u in &found[..n] {
        match enter.take() {
            Some(ue) => push(hit(ue), hit(u)),
            None => enter = Some(u),
        }
    }
    if let Some(ue) = enter {
        push(hit(ue), hit(len));
    }
}

/// A primitive, optionally minus another.
#[derive(Clone, Debug)]
pub struct Part {
    pub prim: Prim,
    pub minus: Option<Prim>,
}

impl Part {
    pub fn solid(prim: Prim) -> Part {
        Part { prim, minus: None }
    }

    pub fn difference(prim: Prim, minus: Prim) -> Part {
        Part {
            prim,
            minus: Some(minus),
        }
    }

    fn first_hit(&self, ray: &Ray, t_min: f64) -> Option<Hit> {
        let mut spans = self.prim.spans(ray);
        if let Some(m) = &self.minus {
            let cut = m.spans(ray);
            if cut.n > 0 {
                spans = spans.subtract(&cut);
            }
        }
        spans
            .as_slice()
            .iter()
            .find(|s| s.b.t > t_min && s.a.t > t_min)
            .map(|s| s.a)
    }
}

/// A union of parts, with a bounding sphere for early ray rejection.
#[derive(Clone, Debug, Default)]
pub struct Solid {
    parts: Vec<Part>,
    /// `(centre, radius)` of a sphere containing every part.
    bound: (Vec3, f64),
}

impl Solid {
    /// The union of `parts`.
    pub fn new(parts: Vec<Part>) -> Solid {
        let bound = bounding_sphere(&parts);
        Solid { parts, bound }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The nearest surface hit with `t > t_min`, if any.
    pub fn first_hit(&self, ray: &Ray, t_min: f64) -> Option<Hit> {
        let (c, r) = self.bound;
        let oc = ray.o - c;
        let b = oc.dot(ray.d);
        if b * b - ray.d.dot(ray.d) * (oc.dot(oc) - r * r) < 0.0 {
            return None;
        }
        let mut best: Option<Hit> = None;
        for p in &self.parts {
            if let Some(h) = p.first_hit(ray, t_min)
                && best.is_none_or(|b| h.t < b.t)
            {
                best = Some(h);
            }
        }
        best
    }

    /// The solid moved by the rigid motion `p -> rot * p + pos`.
    pub fn transformed(&self, rot: &Mat3, pos: Vec3) -> Solid {
        let tr = |p: &Prim| p.transformed(rot, pos);
        Solid::new(
            self.parts
                .iter()
                .map(|p| Part {
                    prim: tr(&p.prim),
                    minus: p.minus.as_ref().map(tr),
                })
                .collect(),
        )
    }

    /// A sphere `(centre, radius)` containing the solid.
    pub fn bounding_sphere(&self) -> (Vec3, f64) {
        self.bound
    }
}

/// A sphere around the parts' bounding spheres, centred on the box around them.
fn bounding_sphere(parts: &[Part]) -> (Vec3, f64) {
    if parts.is_empty() {
        return (Vec3::ZERO, 0.0);
    }
    let inf = f64::INFINITY;
    let (mut lo, mut hi) = (Vec3::new(inf, inf, inf), Vec3::new(-inf, -inf, -inf));
    for p in parts {
        let (c, r) = (p.prim.pos, p.prim.bound);
        lo = Vec3::new(lo.x.min(c.x - r), lo.y.min(c.y - r), lo.z.min(c.z - r));
        hi = Vec3::new(hi.x.max(c.x + r), hi.y.max(c.y + r), hi.z.max(c.z + r));
    }
    let c = (lo + hi) * 0.5;
    let r = parts
        .iter()
        .map(|p| (p.prim.pos - c).norm() + p.prim.bound)
        .fold(0.0, f64::max);
    (c, r * (1.0 + 1e-9))
}
