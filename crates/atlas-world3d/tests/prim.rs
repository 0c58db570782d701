//! Ray/primitive distances against closed-form values worked out by hand for each primitive.

use atlas_world3d::prim::{Part, Prim, Ray, Shape3, Solid};
use atlas_world3d::{Mat3, Vec3};

fn v(x: f64, y: f64, z: f64) -> Vec3 {
    Vec3::new(x, y, z)
}

fn hit(prim: Prim, o: Vec3, d: Vec3) -> Option<f64> {
    Solid::new(vec![Part::solid(prim)])
        .first_hit(&Ray { o, d }, 1e-9)
        .map(|h| h.t)
}

fn close(got: Option<f64>, want: f64) {
    let g = got.unwrap_or_else(|| panic!("expected a hit at {want}"));
    assert!((g - want).abs() < 1e-9, "{g} vs {want}");
}

#[test]
fn ellipsoid_and_scaled_rays() {
    let e = || {
        Prim::new(
            Shape3::Ellipsoid {
                r: v(0.5, 0.3, 0.8),
            },
            Mat3::IDENTITY,
            v(0.0, 0.0, 1.0),
        )
    };
    close(hit(e(), v(0.0, -5.0, 1.0), v(0.0, 1.0, 0.0)), 4.7);
    // A non-unit direction scales t.
    close(hit(e(), v(0.0, -5.0, 1.0), v(0.0, 2.0, 0.0)), 2.35);
    close(hit(e(), v(0.0, 0.0, 5.0), v(0.0, 0.0, -1.0)), 5.0 - 1.8);
    assert!(hit(e(), v(0.0, -5.0, 1.9), v(0.0, 1.0, 0.0)).is_none());
}

#[test]
fn polytopes_rotated_boxes_and_octahedra() {
    let s = 1.0 / 3f64.sqrt();
    let octa: Vec<(Vec3, f64)> = [-1.0, 1.0]
        .iter()
        .flat_map(|&a| {
            [-1.0, 1.0]
                .iter()
                .flat_map(move |&b| [-1.0, 1.0].map(|c| (v(a * s, b * s, c * s), s)))
        })
        .collect();
    let o = Prim::new(
        Shape3::Polytope { planes: octa },
        Mat3::IDENTITY,
        Vec3::ZERO,
    );
    // |x| + |y| + |z| <= 1 at y = z = 0.1: x = 0.8.
    close(hit(o, v(5.0, 0.1, 0.1), v(-1.0, 0.0, 0.0)), 4.2);
    let h = 0.4;
    let planes = vec![
        (v(1.0, 0.0, 0.0), h),
        (v(-1.0, 0.0, 0.0), h),
        (v(0.0, 1.0, 0.0), h),
        (v(0.0, -1.0, 0.0), h),
        (v(0.0, 0.0, 1.0), h),
        (v(0.0, 0.0, -1.0), h),
    ];
    let cube = Prim::new(
        Shape3::Polytope { planes },
        Mat3::rot_z(std::f64::consts::FRAC_PI_4),
        Vec3::ZERO,
    );
    // The rotated cube's corner points along +x at distance h * sqrt(2).
    close(
        hit(cube, v(5.0, 0.0, 0.0), v(-1.0, 0.0, 0.0)),
        5.0 - h * 2f64.sqrt(),
    );
}

#[test]
fn cylinders_and_cones() {
    let cyl = || {
        Prim::new(
            Shape3::Cylinder { r: 0.3, h: 0.5 },
            Mat3::IDENTITY,
            Vec3::ZERO,
        )
    };
    close(hit(cyl(), v(5.0, 0.0, 0.1), v(-1.0, 0.0, 0.0)), 4.7);
    close(hit(cyl(), v(0.1, 0.0, 5.0), v(0.0, 0.0, -1.0)), 4.5);
    assert!(hit(cyl(), v(5.0, 0.0, 0.6), v(-1.0, 0.0, 0.0)).is_none());
    // A cylinder lying along world y (local z rotated onto y).
    let lying = Prim::new(
        Shape3::Cylinder { r: 0.3, h: 0.5 },
        Mat3::rot_x(-std::f64::consts::FRAC_PI_2),
        Vec3::ZERO,
    );
    close(hit(lying, v(0.0, -5.0, 0.0), v(0.0, 1.0, 0.0)), 4.5);
    let cone = || Prim::new(Shape3::Cone { r: 0.4, h: 1.0 }, Mat3::IDENTITY, Vec3::ZERO);
    // At height z the radius is 0.4 (1 - z).
    close(hit(cone(), v(5.0, 0.0, 0.25), v(-1.0, 0.0, 0.0)), 5.0 - 0.3);
    close(hit(cone(), v(0.0, 0.0, 5.0), v(0.0, 0.0, -1.0)), 4.0);
    close(hit(cone(), v(0.1, 0.0, -5.0), v(0.0, 0.0, 1.0)), 5.0);
    // Above the apex, the upper nappe of the double cone is not part of the solid.
    assert!(hit(cone(), v(5.0, 0.0, 1.5), v(-1.0, 0.0, 0.0)).is_none());
}

#[test]
fn tori_have_holes() {
    let t = || {
        Prim::new(
            Shape3::Torus {
                big: 0.4,
                small: 0.1,
            },
            Mat3::IDENTITY,
            Vec3::ZERO,
        )
    };
    close(hit(t(), v(5.0, 0.0, 0.0), v(-1.0, 0.0, 0.0)), 4.5);
    assert!(hit(t(), v(0.0, 0.0, 5.0), v(0.0, 0.0, -1.0)).is_none());
    close(hit(t(), v(0.4, 0.0, 5.0), v(0.0, 0.0, -1.0)), 4.9);
    // From the centre of the hole the first surface is the inner wall at x = 0.3.
    close(hit(t(), v(0.0, 0.0, 0.0), v(1.0, 0.0, 0.0)), 0.3);
}

#[test]
fn differences_cut_solids() {
    let disc = Prim::new(
        Shape3::Cylinder { r: 0.5, h: 0.1 },
        Mat3::IDENTITY,
        Vec3::ZERO,
    );
    let cut = Prim::new(
        Shape3::Cylinder { r: 0.4, h: 0.2 },
        Mat3::IDENTITY,
        v(0.3, 0.0, 0.0),
    );
    let s = Solid::new(vec![Part::difference(disc, cut)]);
    // From above at x = 0.3 the disc is cut away: no hit.
    assert!(
        s.first_hit(
            &Ray {
                o: v(0.3, 0.0, 5.0),
                d: v(0.0, 0.0, -1.0)
            },
            1e-9
        )
        .is_none()
    );
    // Along -x at y = 0: enters the disc at x = 0.5 but that is inside the cut (0.3 + 0.4 =
    // 0.7 > 0.5); the solid begins where the cut ends, at x = 0.3 - 0.4 = -0.1.
    let h = s
        .first_hit(
            &Ray {
                o: v(5.0, 0.0, 0.0),
                d: v(-1.0, 0.0, 0.0),
            },
            1e-9,
        )
        .unwrap();
    assert!((h.t - 5.1).abs() < 1e-9, "{}", h.t);
    assert!(h.n.x.abs() > 0.99 * h.n.norm(), "normal {:?}", h.n);
}
