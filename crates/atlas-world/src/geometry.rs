//! Shape outlines in unit coordinates (centred at the origin, inside the unit circle, "up" is
//! -y) and the transforms that place a shape, or its pattern, in an image.

use tiny_skia::{FillRule, Path, PathBuilder, Transform};

use crate::rng::sin_cos_deg;
use crate::spec::Placement;
use crate::vocab::Shape;

// ---------------------------------------------------------------------------------------------
// Shapes in unit coordinates: centred at the origin, inside the unit circle, "up" is -y.

fn poly(points: &[(f64, f64)]) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let (first, rest) = points.split_first()?;
    pb.move_to(first.0 as f32, first.1 as f32);
    for p in rest {
        pb.line_to(p.0 as f32, p.1 as f32);
    }
    pb.close();
    pb.finish()
}

/// Point on a circle of radius `r` around `(cx, cy)` at `deg` (0 = +x, 90 = +y = down).
fn on_circle(cx: f64, cy: f64, r: f64, deg: f64) -> (f64, f64) {
    let (s, c) = sin_cos_deg(deg);
    (cx + r * c, cy + r * s)
}

/// Arc points from `a0` to `a1` degrees (either direction), `n` segments, both ends included.
fn arc(cx: f64, cy: f64, r: f64, a0: f64, a1: f64, n: usize) -> Vec<(f64, f64)> {
    (0..=n)
        .map(|i| on_circle(cx, cy, r, a0 + (a1 - a0) * i as f64 / n as f64))
        .collect()
}

fn regular(n: usize, r: f64, start_deg: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| on_circle(0.0, 0.0, r, start_deg + 360.0 * i as f64 / n as f64))
        .collect()
}

/// The shape's outline path in unit coordinates and its fill rule.
pub(crate) fn unit_path(shape: Shape) -> Option<(Path, FillRule)> {
    let winding = FillRule::Winding;
    let p = match shape {
        Shape::Circle => (PathBuilder::from_circle(0.0, 0.0, 0.9)?, winding),
        Shape::Square => (
            poly(&[(-0.68, -0.68), (0.68, -0.68), (0.68, 0.68), (-0.68, 0.68)])?,
            winding,
        ),
        Shape::Triangle => {
            let pts: Vec<_> = regular(3, 1.0, -90.0)
                .into_iter()
                .map(|(x, y)| (x, y + 0.1))
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Star => {
            let pts: Vec<_> = (0..10)
                .map(|i| {
                    let r = if i % 2 == 0 { 1.0 } else { 0.42 };
                    on_circle(0.0, 0.05, r, -90.0 + 36.0 * i as f64)
                })
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Heart => {
            let mut pb = PathBuilder::new();
            let k = 0.95f32;
            pb.move_to(0.0, 0.88 * k);
            pb.cubic_to(-0.6 * k, 0.42 * k, -k, 0.05 * k, -0.95 * k, -0.35 * k);
            pb.cubic_to(-0.9 * k, -0.85 * k, -0.25 * k, -0.95 * k, 0.0, -0.48 * k);
            pb.cubic_to(0.25 * k, -0.95 * k, 0.9 * k, -0.85 * k, 0.95 * k, -0.35 * k);
            pb.cubic_to(k, 0.05 * k, 0.6 * k, 0.42 * k, 0.0, 0.88 * k);
            pb.close();
            (pb.finish()?, winding)
        }
        Shape::Cross => {
            let (a, b) = (0.3, 0.94);
            (
                poly(&[
                    (-a, -b),
                    (a, -b),
                    (a, -a),
                    (b, -a),
                    (b, a),
                    (a, a),
                    (a, b),
                    (-a, b),
                    (-a, a),
                    (-b, a),
                    (-b, -a),
                    (-a, -a),
                ])?,
                winding,
            )
        }
        Shape::Pentagon => {
            let pts: Vec<_> = regular(5, 0.95, -90.0)
                .into_iter()
                .map(|(x, y)| (x, y + 0.05))
                .collect();
            (poly(&pts)?, winding)
        }
        Shape::Hexagon => (poly(&regular(6, 0.95, -90.0))?, winding),
        Shape::Arrow => (
            poly(&[
                (-0.95, -0.22),
                (0.12, -0.22),
                (0.12, -0.62),
                (0.95, 0.0),
                (0.12, 0.62),
                (0.12, 0.22),
                (-0.95, 0.22),
            ])?,
            winding,
        ),
        Shape::Crescent => {
            // outer circle r=0.95 at 0, bite: circle r=0.8 at (0.45, 0); intersections at
            // +-57.053 deg (outer) and +-85.220 deg (inner). Shifted right to centre the bbox.
            let dx = 0.2;
            let mut pts = arc(dx, 0.0, 0.95, 57.053, 302.947, 40);
            pts.extend(arc(0.45 + dx, 0.0, 0.8, 274.780, 85.220, 32));
            (poly(&pts)?, winding)
        }
        Shape::Ring => {
            let mut pb = PathBuilder::new();
            pb.push_circle(0.0, 0.0, 0.92);
            pb.push_circle(0.0, 0.0, 0.52);
            (pb.finish()?, FillRule::EvenOdd)
        }
        Shape::Diamond => (
            poly(&[(0.0, -1.0), (0.62, 0.0), (0.0, 1.0), (-0.62, 0.0)])?,
            winding,
        ),
        Shape::Bolt => (
            poly(&[
                (0.2, -0.95),
                (-0.5, 0.1),
                (-0.05, 0.1),
                (-0.25, 0.95),
                (0.5, -0.15),
                (0.05, -0.15),
                (0.35, -0.95),
            ])?,
            winding,
        ),
        Shape::Trapezoid => (
            poly(&[(-0.45, -0.5), (0.45, -0.5), (0.92, 0.5), (-0.92, 0.5)])?,
            winding,
        ),
        Shape::Semicircle => (poly(&arc(0.0, 0.4, 0.95, 180.0, 360.0, 40))?, winding),
        Shape::Teardrop => {
            // point at (0, -1); circle r=0.6 at (0, 0.35); tangents at -26.388 / 206.388 deg
            let mut pts = vec![(0.0, -1.0)];
            pts.extend(arc(0.0, 0.35, 0.6, -26.388, 206.388, 40));
            (poly(&pts)?, winding)
        }
    };
    Some(p)
}

// ---------------------------------------------------------------------------------------------
// Transforms

/// Unit shape coordinates -> pixels.
pub(crate) fn object_transform(p: &Placement, res: f32) -> Transform {
    let (s, c) = sin_cos_deg(p.rotation as f64);
    let k = p.scale * res / 2.0;
    Transform::from_row(
        k * c as f32,
        k * s as f32,
        -k * s as f32,
        k * c as f32,
        p.x * res,
        p.y * res,
    )
}

/// Extent `(min_x, min_y, max_x, max_y)` of a placed shape around its centre, in image units.
pub(crate) fn shape_extent(
    shape: Shape,
    scale: f32,
    rotation: f32,
) -> Option<(f32, f32, f32, f32)> {
    let (unit, _) = unit_path(shape)?;
    let p = Placement {
        x: 0.0,
        y: 0.0,
        scale,
        rotation,
    };
    let b = unit
        .transform(object_transform(&p, 1.0))?
        .compute_tight_bounds()?;
    Some((b.left(), b.top(), b.right(), b.bottom()))
}

/// Pattern coordinates (pixels of a 64 px image, rotated with the object) -> pixels.
pub(crate) fn pattern_transform(p: &Placement, res: f32) -> Transform {
    let (s, c) = sin_cos_deg(p.rotation as f64);
    let u = res / 64.0;
    Transform::from_row(
        u * c as f32,
        u * s as f32,
        -u * s as f32,
        u * c as f32,
        p.x * res,
        p.y * res,
    )
}
