//! The world's classes as 3D objects built from analytic primitives, with named keypoints.
//!
//! **Canonical object frame**: metres, `z` up, the object standing on the ground plane `z = 0`
//! and centred on the `z` axis. Flat classes (triangle, star, heart, cross, pentagon, hexagon,
//! arrow, crescent, ring, diamond's girdle, and the held-out trapezoid, semicircle, bolt) are the
//! 2D shape of `atlas-world` drawn in the `x`-`z` plane and extruded along `y` (thickness): the
//! *front* face looks towards `-y`, *left* is `-x`. The circle is an ellipsoid, the square a
//! box, the ring a torus, the diamond a bipyramid, the teardrop a sphere with a tangent cone.
//!
//! Every keypoint lies on the object's surface (a vertex, an edge end or an extreme point) and is
//! fixed in this frame; its name is stable across instances of a class.

use std::f64::consts::{FRAC_PI_2, PI};

use atlas_world::Shape;

use crate::math::{Mat3, Vec3};
use crate::prim::{Part, Prim, Shape3, Solid};
use crate::rng::Rng;

/// A class instance in its canonical frame.
#[derive(Clone, Debug)]
pub struct Model {
    pub solid: Solid,
    /// Named keypoints on the surface (canonical frame).
    pub keypoints: Vec<(String, Vec3)>,
}

/// Builds an instance of `shape`; proportions are drawn from `rng`.
pub(crate) fn build(shape: Shape, rng: &mut Rng) -> Model {
    let mut b = Builder::default();
    match shape {
        Shape::Circle => circle(&mut b, rng),
        Shape::Square => square(&mut b, rng),
        Shape::Triangle => {
            let (w, h, ax, hy) = (
                rng.range(0.4, 0.55),
                rng.range(0.8, 1.05),
                rng.range(-0.1, 0.1),
                thick(rng),
            );
            let poly = [(-w, 0.0), (w, 0.0), (ax, h)];
            b.prism(&poly, hy);
            b.both(
                &[
                    ("base_left", -w, 0.0),
                    ("base_right", w, 0.0),
                    ("apex", ax, h),
                ],
                hy,
            );
        }
        Shape::Star => star(&mut b, rng),
        Shape::Heart => heart(&mut b, rng),
        Shape::Cross => cross(&mut b, rng),
        Shape::Pentagon => {
            let names = [
                "top",
                "upper_left",
                "lower_left",
                "lower_right",
                "upper_right",
            ];
            regular(&mut b, rng, &names, 90.0, 0.809_017)
        }
        Shape::Hexagon => {
            let names = [
                "right",
                "upper_right",
                "upper_left",
                "left",
                "lower_left",
                "lower_right",
            ];
            regular(&mut b, rng, &names, 0.0, 0.866_025)
        }
        Shape::Arrow => arrow(&mut b, rng),
        Shape::Crescent => crescent(&mut b, rng),
        Shape::Ring => ring(&mut b, rng),
        Shape::Diamond => diamond(&mut b, rng),
        Shape::Trapezoid => {
            let (wb, h, hy) = (rng.range(0.45, 0.55), rng.range(0.6, 0.8), thick(rng));
            let wt = wb * rng.range(0.45, 0.65);
            b.prism(&[(-wb, 0.0), (wb, 0.0), (wt, h), (-wt, h)], hy);
            let kp = [("bottom_left", -wb, 0.0), ("bottom_right", wb, 0.0)];
            b.both(&kp, hy);
            b.both(&[("top_right", wt, h), ("top_left", -wt, h)], hy);
        }
        Shape::Semicircle => semicircle(&mut b, rng),
        Shape::Teardrop => teardrop(&mut b, rng),
        Shape::Bolt => bolt(&mut b, rng),
    }
    Model {
        solid: Solid::new(b.parts),
        keypoints: b.kps,
    }
}

/// Half thickness of an extruded class.
fn thick(rng: &mut Rng) -> f64 {
    rng.range(0.1, 0.17)
}

#[derive(Default)]
struct Builder {
    parts: Vec<Part>,
    kps: Vec<(String, Vec3)>,
}

impl Builder {
    fn add(&mut self, p: Prim) {
        self.parts.push(Part::solid(p));
    }

    /// A convex polygon of the `x`-`z` plane extruded over `y` in `[-hy, hy]`.
    fn prism(&mut self, poly: &[(f64, f64)], hy: f64) {
        self.add(prism(poly, hy));
    }

    fn kp(&mut self, name: &str, p: Vec3) {
        self.kps.push((name.to_string(), p));
    }

    /// `front_<name>` at `y = -hy` and `back_<name>` at `y = hy` for each `(name, x, z)`.
    fn both(&mut self, pts: &[(&str, f64, f64)], hy: f64) {
        for &(name, x, z) in pts {
            self.kp(&format!("front_{name}"), Vec3::new(x, -hy, z));
        }
        for &(name, x, z) in pts {
            self.kp(&format!("back_{name}"), Vec3::new(x, hy, z));
        }
    }
}

/// Convex polytope through the given vertices' faces: each face plane oriented away from
/// `inside`.
fn plane_through(a: Vec3, b: Vec3, c: Vec3, inside: Vec3) -> (Vec3, f64) {
    let mut n = (b - a).cross(c - a).normalize();
    if n.dot(inside - a) > 0.0 {
        n = -n;
    }
    (n, n.dot(a))
}

/// A convex `x`-`z` polygon extruded along `y`, as a polytope centred at the polygon's
/// centroid.
fn prism(poly: &[(f64, f64)], hy: f64) -> Prim {
    let k = poly.len() as f64;
    let (cx, cz) = poly
        .iter()
        .fold((0.0, 0.0), |(x, z), p| (x + p.0 / k, z + p.1 / k));
    let centre = Vec3::ZERO;
    let mut planes = vec![
        (Vec3::new(0.0, 1.0, 0.0), hy),
        (Vec3::new(0.0, -1.0, 0.0), hy),
    ];
    for i in 0..poly.len() {
        let (x0, z0) = (poly[i].0 - cx, poly[i].1 - cz);
        let j = (i + 1) % poly.len();
        let (x1, z1) = (poly[j].0 - cx, poly[j].1 - cz);
        let a = Vec3::new(x0, 0.0, z0);
        let b = Vec3::new(x1, 0.0, z1);
        planes.push(plane_through(a, b, a + Vec3::new(0.0, 1.0, 0.0), centre));
    }
    Prim::new(
        Shape3::Polytope { planes },
        Mat3::IDENTITY,
        Vec3::new(cx, 0.0, cz),
    )
}

/// A cylinder whose axis is the world `y` axis through `(x, ., z)`.
fn disc_y(x: f64, z: f64, r: f64, hy: f64) -> Prim {
    Prim::new(
        Shape3::Cylinder { r, h: hy },
        Mat3::rot_x(-FRAC_PI_2),
        Vec3::new(x, 0.0, z),
    )
}

/// The point of the ellipsoid with semi-axes `r` centred at `c` in direction `dir`.
fn on_ellipsoid(c: Vec3, r: Vec3, dir: Vec3) -> Vec3 {
    let s = Vec3::new(dir.x / r.x, dir.y / r.y, dir.z / r.z).norm();
    c + dir * (1.0 / s)
}

fn circle(b: &mut Builder, rng: &mut Rng) {
    let a = rng.range(0.42, 0.55);
    let r = Vec3::new(
        a * rng.range(0.9, 1.1),
        a * rng.range(0.9, 1.1),
        a * rng.range(0.85, 1.1),
    );
    let c = Vec3::new(0.0, 0.0, r.z);
    b.add(Prim::new(Shape3::Ellipsoid { r }, Mat3::IDENTITY, c));
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let dirs = [
        ("top", Vec3::new(0.0, 0.0, 1.0)),
        ("front", Vec3::new(0.0, -1.0, 0.0)),
        ("back", Vec3::new(0.0, 1.0, 0.0)),
        ("left", Vec3::new(-1.0, 0.0, 0.0)),
        ("right", Vec3::new(1.0, 0.0, 0.0)),
        ("front_left", Vec3::new(-s, -s, 0.0)),
        ("front_right", Vec3::new(s, -s, 0.0)),
        ("back_left", Vec3::new(-s, s, 0.0)),
        ("back_right", Vec3::new(s, s, 0.0)),
    ];
    for (name, d) in dirs {
        b.kp(name, on_ellipsoid(c, r, d));
    }
}

fn square(b: &mut Builder, rng: &mut Rng) {
    let s = rng.range(0.35, 0.45);
    let h = Vec3::new(
        s * rng.range(0.9, 1.1),
        s * rng.range(0.9, 1.1),
        s * rng.range(0.9, 1.1),
    );
    let c = Vec3::new(0.0, 0.0, h.z);
    b.add(box_prim(c, h));
    for (fy, fname) in [(-1.0, "front"), (1.0, "back")] {
        for (fz, zname) in [(1.0, "top"), (-1.0, "bottom")] {
            for (fx, xname) in [(-1.0, "left"), (1.0, "right")] {
                let p = c + Vec3::new(fx * h.x, fy * h.y, fz * h.z);
                b.kp(&format!("{fname}_{zname}_{xname}"), p);
            }
        }
    }
}

/// An axis-aligned box with centre `c` and half extents `h`.
fn box_prim(c: Vec3, h: Vec3) -> Prim {
    let planes = vec![
        (Vec3::new(1.0, 0.0, 0.0), h.x),
        (Vec3::new(-1.0, 0.0, 0.0), h.x),
        (Vec3::new(0.0, 1.0, 0.0), h.y),
        (Vec3::new(0.0, -1.0, 0.0), h.y),
        (Vec3::new(0.0, 0.0, 1.0), h.z),
        (Vec3::new(0.0, 0.0, -1.0), h.z),
    ];
    Prim::new(Shape3::Polytope { planes }, Mat3::IDENTITY, c)
}

fn polar(r: f64, deg: f64, cz: f64) -> (f64, f64) {
    let (s, c) = deg.to_radians().sin_cos();
    (r * c, cz + r * s)
}

fn star(b: &mut Builder, rng: &mut Rng) {
    let big = rng.range(0.5, 0.6);
    let small = big * rng.range(0.38, 0.48);
    let hy = thick(rng);
    let cz = big * 0.809_017; // the two lower tips touch the ground
    let tip = |k: usize| polar(big, 90.0 + 72.0 * k as f64, cz);
    let inner = |k: usize| polar(small, 126.0 + 72.0 * k as f64, cz);
    let pent: Vec<(f64, f64)> = (0..5).map(inner).collect();
    b.prism(&pent, hy);
    for k in 0..5 {
        b.prism(&[inner((k + 4) % 5), inner(k), tip(k)], hy);
    }
    let names = [
        "top",
        "upper_left",
        "lower_left",
        "lower_right",
        "upper_right",
    ];
    let pts: Vec<(&str, f64, f64)> = (0..5).map(|k| (names[k], tip(k).0, tip(k).1)).collect();
    b.both(&pts, hy);
}

fn heart(b: &mut Builder, rng: &mut Rng) {
    let s = rng.range(0.5, 0.62);
    let hy = thick(rng);
    let a = s * std::f64::consts::FRAC_1_SQRT_2;
    let lobe_r = s * 0.5 * rng.range(1.0, 1.08);
    b.prism(&[(0.0, 0.0), (a, a), (0.0, 2.0 * a), (-a, a)], hy);
    b.add(disc_y(-0.5 * a, 1.5 * a, lobe_r, hy));
    b.add(disc_y(0.5 * a, 1.5 * a, lobe_r, hy));
    // The notch: where the two lobe circles meet on the axis (above the square's top corner
    // when the lobes are enlarged).
    let notch = 1.5 * a + (lobe_r * lobe_r - 0.25 * a * a).max(0.0).sqrt();
    b.both(
        &[
            ("tip", 0.0, 0.0),
            ("notch", 0.0, notch),
            ("left_lobe_top", -0.5 * a, 1.5 * a + lobe_r),
            ("right_lobe_top", 0.5 * a, 1.5 * a + lobe_r),
            ("left_side", -0.5 * a - lobe_r, 1.5 * a),
            ("right_side", 0.5 * a + lobe_r, 1.5 * a),
        ],
        hy,
    );
}

fn cross(b: &mut Builder, rng: &mut Rng) {
    let w = rng.range(0.09, 0.13);
    let hh = rng.range(0.45, 0.55);
    let l = rng.range(0.3, 0.42);
    let hz = 2.0 * hh * rng.range(0.58, 0.68);
    let hy = thick(rng);
    b.add(box_prim(Vec3::new(0.0, 0.0, hh), Vec3::new(w, hy, hh)));
    b.add(box_prim(Vec3::new(0.0, 0.0, hz), Vec3::new(l, hy, w)));
    let pts = [
        ("top_end", 0.0, 2.0 * hh),
        ("bottom_end", 0.0, 0.0),
        ("left_end", -l, hz),
        ("right_end", l, hz),
        ("upper_left_corner", -w, hz + w),
        ("upper_right_corner", w, hz + w),
    ];
    b.both(&pts, hy);
}

/// A regular polygon prism, vertex `k` at `start + k * 360 / n` degrees; `lift` (times the
/// circumradius) puts the lowest edge on the ground.
fn regular(b: &mut Builder, rng: &mut Rng, names: &[&str], start: f64, lift: f64) {
    let r = rng.range(0.45, 0.55);
    let hy = thick(rng);
    let n = names.len();
    let v: Vec<(f64, f64)> = (0..n)
        .map(|k| polar(r, start + 360.0 * k as f64 / n as f64, r * lift))
        .collect();
    b.prism(&v, hy);
    let pts: Vec<(&str, f64, f64)> = (0..n).map(|k| (names[k], v[k].0, v[k].1)).collect();
    b.both(&pts, hy);
}

fn arrow(b: &mut Builder, rng: &mut Rng) {
    let len = rng.range(1.0, 1.2);
    let head = len * rng.range(0.3, 0.4);
    let hh = rng.range(0.25, 0.32);
    let sh = rng.range(0.08, 0.12);
    let hy = thick(rng);
    let (tail, base, tip) = (-0.5 * len, 0.5 * len - head, 0.5 * len);
    let zc = hh;
    let shaft_c = Vec3::new(0.5 * (tail + base + 0.02), 0.0, zc);
    b.add(box_prim(
        shaft_c,
        Vec3::new(0.5 * (base + 0.02 - tail), hy, sh),
    ));
    b.prism(&[(base, zc - hh), (tip, zc), (base, zc + hh)], hy);
    let pts = [
        ("tip", tip, zc),
        ("head_top", base, zc + hh),
        ("head_bottom", base, zc - hh),
        ("tail_top", tail, zc + sh),
        ("tail_bottom", tail, zc - sh),
    ];
    b.both(&pts, hy);
}

fn crescent(b: &mut Builder, rng: &mut Rng) {
    let big = rng.range(0.45, 0.55);
    let small = big * rng.range(0.75, 0.85);
    let (ox, oz) = (big * rng.range(0.4, 0.5), big * rng.range(-0.05, 0.1));
    let hy = thick(rng);
    let outer = disc_y(0.0, big, big, hy);
    let cut = disc_y(ox, big + oz, small, hy * 1.5);
    b.parts.push(Part::difference(outer, cut));
    // Horn tips: the intersections of the two circles.
    let (dx, dz) = (ox, oz);
    let d = (dx * dx + dz * dz).sqrt();
    let along = (big * big - small * small + d * d) / (2.0 * d);
    let across = (big * big - along * along).max(0.0).sqrt();
    let (ux, uz) = (dx / d, dz / d);
    let (mx, mz) = (along * ux, big + along * uz);
    let (h1, h2) = (
        (mx - across * uz, mz + across * ux),
        (mx + across * uz, mz - across * ux),
    );
    let (upper, lower) = if h1.1 > h2.1 { (h1, h2) } else { (h2, h1) };
    let pts = [
        ("upper_horn", upper.0, upper.1),
        ("lower_horn", lower.0, lower.1),
        ("outer_left", -big, big),
        ("outer_top", 0.0, 2.0 * big),
    ];
    b.both(&pts, hy);
}

fn ring(b: &mut Builder, rng: &mut Rng) {
    let big = rng.range(0.32, 0.4);
    let small = rng.range(0.08, 0.12);
    let c = big + small;
    let rot = Mat3::rot_x(-FRAC_PI_2);
    b.add(Prim::new(
        Shape3::Torus { big, small },
        rot,
        Vec3::new(0.0, 0.0, c),
    ));
    let (o, i) = (big + small, big - small);
    let kps = [
        ("outer_top", Vec3::new(0.0, 0.0, c + o)),
        ("outer_left", Vec3::new(-o, 0.0, c)),
        ("outer_right", Vec3::new(o, 0.0, c)),
        ("inner_top", Vec3::new(0.0, 0.0, c + i)),
        ("inner_bottom", Vec3::new(0.0, 0.0, c - i)),
        ("inner_left", Vec3::new(-i, 0.0, c)),
        ("inner_right", Vec3::new(i, 0.0, c)),
        ("front_top", Vec3::new(0.0, -small, c + big)),
        ("front_left", Vec3::new(-big, -small, c)),
        ("front_right", Vec3::new(big, -small, c)),
    ];
    for (name, p) in kps {
        b.kp(name, p);
    }
}

fn diamond(b: &mut Builder, rng: &mut Rng) {
    let w = rng.range(0.32, 0.4);
    let depth = w * rng.range(0.6, 0.9);
    let lo = rng.range(0.45, 0.6);
    let hi = lo + rng.range(0.3, 0.45);
    let bottom = Vec3::new(0.0, 0.0, 0.0);
    let top = Vec3::new(0.0, 0.0, hi);
    let g = [
        Vec3::new(w, 0.0, lo),
        Vec3::new(0.0, depth, lo),
        Vec3::new(-w, 0.0, lo),
        Vec3::new(0.0, -depth, lo),
    ];
    let centre = Vec3::new(0.0, 0.0, lo);
    let mut planes = Vec::new();
    for k in 0..4 {
        let (a, c) = (g[k] - centre, g[(k + 1) % 4] - centre);
        planes.push(plane_through(a, c, top - centre, Vec3::ZERO));
        planes.push(plane_through(a, c, bottom - centre, Vec3::ZERO));
    }
    b.add(Prim::new(
        Shape3::Polytope { planes },
        Mat3::IDENTITY,
        centre,
    ));
    let kps = [
        ("top", top),
        ("bottom", bottom),
        ("girdle_right", g[0]),
        ("girdle_back", g[1]),
        ("girdle_left", g[2]),
        ("girdle_front", g[3]),
    ];
    for (name, p) in kps {
        b.kp(name, p);
    }
}

fn semicircle(b: &mut Builder, rng: &mut Rng) {
    let r = rng.range(0.5, 0.6);
    let hy = thick(rng);
    let disc = disc_y(0.0, 0.0, r, hy);
    let below = box_prim(
        Vec3::new(0.0, 0.0, -0.6 * r),
        Vec3::new(1.1 * r, 1.5 * hy, 0.6 * r),
    );
    b.parts.push(Part::difference(disc, below));
    let (s, c) = (PI / 4.0).sin_cos();
    let pts = [
        ("top", 0.0, r),
        ("left_corner", -r, 0.0),
        ("right_corner", r, 0.0),
        ("upper_left", -r * c, r * s),
        ("upper_right", r * c, r * s),
    ];
    b.both(&pts, hy);
}

fn teardrop(b: &mut Builder, rng: &mut Rng) {
    let r = rng.range(0.3, 0.36);
    let dist = r * rng.range(2.0, 2.6); // sphere centre to apex
    let zc = r;
    b.add(Prim::new(
        Shape3::Ellipsoid {
            r: Vec3::new(r, r, r),
        },
        Mat3::IDENTITY,
        Vec3::new(0.0, 0.0, zc),
    ));
    // The cone tangent to the sphere: base circle at the tangency height.
    let base_z = zc + r * r / dist;
    let base_r = r * (1.0 - (r / dist) * (r / dist)).sqrt();
    let h = zc + dist - base_z;
    b.add(Prim::new(
        Shape3::Cone { r: base_r, h },
        Mat3::IDENTITY,
        Vec3::new(0.0, 0.0, base_z),
    ));
    let kps = [
        ("apex", Vec3::new(0.0, 0.0, zc + dist)),
        ("front", Vec3::new(0.0, -r, zc)),
        ("back", Vec3::new(0.0, r, zc)),
        ("left", Vec3::new(-r, 0.0, zc)),
        ("right", Vec3::new(r, 0.0, zc)),
        ("bottom", Vec3::new(0.0, 0.0, 0.0)),
    ];
    for (name, p) in kps {
        b.kp(name, p);
    }
}

fn bolt(b: &mut Builder, rng: &mut Rng) {
    let s = rng.range(0.95, 1.1);
    let hy = thick(rng);
    let p = |x: f64, z: f64| (x * s, z * s);
    let upper = [p(-0.3, 0.48), p(0.06, 0.48), p(0.3, 1.0), p(-0.06, 1.0)];
    let lower = [p(-0.08, 0.58), p(0.32, 0.58), p(-0.2, 0.0)];
    b.prism(&upper, hy);
    b.prism(&lower, hy);
    let pts = [
        ("top_left", upper[3].0, upper[3].1),
        ("top_right", upper[2].0, upper[2].1),
        ("tip", lower[2].0, lower[2].1),
        ("left_notch", upper[0].0, upper[0].1),
        ("right_notch", lower[1].0, lower[1].1),
    ];
    b.both(&pts, hy);
}
