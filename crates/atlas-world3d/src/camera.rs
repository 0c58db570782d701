//! Pinhole cameras.
//!
//! * **World frame**: right-handed, metres, `z` up; the ground is the plane `z = 0` and the object
//!   stands on it around the origin.
//! * **Camera frame** (OpenCV): `x` right, `y` down, `z` forward (the optical axis).
//! * **Extrinsics** are world-to-camera: `p_cam = R * p_world + t`; the camera centre is
//!   `C = -R^T t`.
//! * **Intrinsics** `K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]` in pixels:
//!   `u = fx * x / z + cx`, `v = fy * y / z + cy`. Pixel `(col, row)` covers
//!   `[col, col + 1) x [row, row + 1)`, so its centre is at `(col + 0.5, row + 0.5)`; with
//!   `cx = width / 2` the optical axis passes through the image centre.
//! * **Depth** is z-depth (the camera-frame `z` of the surface point) unless called euclidean
//!   (the distance from the camera centre, `z * |K^-1 [u, v, 1]|`).

use serde::{Deserialize, Serialize};

use crate::math::{Mat3, Vec3};

/// Pinhole intrinsics in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
}

impl Intrinsics {
    /// Square pixels, principal point at the image centre, horizontal field of view `fov_deg`.
    pub fn from_fov(width: u32, height: u32, fov_deg: f64) -> Intrinsics {
        let f = width as f64 * 0.5 / (fov_deg.to_radians() * 0.5).tan();
        Intrinsics {
            fx: f,
            fy: f,
            cx: width as f64 * 0.5,
            cy: height as f64 * 0.5,
        }
    }

    /// The matrix `K`.
    pub fn matrix(&self) -> [[f64; 3]; 3] {
        [
            [self.fx, 0.0, self.cx],
            [0.0, self.fy, self.cy],
            [0.0, 0.0, 1.0],
        ]
    }
}

/// A pinhole camera: image size, intrinsics and world-to-camera extrinsics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    pub k: Intrinsics,
    /// World-to-camera rotation (rows: the camera's x, y, z axes in world coordinates).
    pub r: Mat3,
    /// World-to-camera translation.
    pub t: Vec3,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with the world `z` axis up in the image (no roll).
    /// `eye - target` must not be vertical.
    pub fn look_at(eye: Vec3, target: Vec3, k: Intrinsics, width: u32, height: u32) -> Camera {
        let z = (target - eye).normalize();
        let x = z.cross(Vec3::new(0.0, 0.0, 1.0)).normalize();
        let y = z.cross(x);
        let r = Mat3::from_rows(x, y, z);
        let t = -r.apply(eye);
        Camera {
            width,
            height,
            k,
            r,
            t,
        }
    }

    /// The camera centre in world coordinates.
    pub fn center(&self) -> Vec3 {
        -self.r.transpose().apply(self.t)
    }

    /// A world point in camera coordinates.
    pub fn to_camera(&self, p: Vec3) -> Vec3 {
        self.r.apply(p) + self.t
    }

    /// A camera-frame point in world coordinates.
    pub fn to_world(&self, p: Vec3) -> Vec3 {
        self.r.transpose().apply(p - self.t)
    }

    /// The world-frame ray through image point `(u, v)` (continuous pixel coordinates), scaled
    /// so that its camera-frame `z` component is 1: the ray parameter of a point *is* its
    /// z-depth.
    pub fn ray_dir(&self, u: f64, v: f64) -> Vec3 {
        let d = Vec3::new(
            (u - self.k.cx) / self.k.fx,
            (v - self.k.cy) / self.k.fy,
            1.0,
        );
        self.r.transpose().apply(d)
    }

    /// Projects a world point: `(u, v, z)` with `z` the z-depth, or `None` behind the camera
    /// (`z <= 1e-9`). The point may project outside the image.
    pub fn project(&self, p: Vec3) -> Option<(f64, f64, f64)> {
        let c = self.to_camera(p);
        (c.z > 1e-9).then(|| {
            (
                self.k.fx * c.x / c.z + self.k.cx,
                self.k.fy * c.y / c.z + self.k.cy,
                c.z,
            )
        })
    }

    /// The camera-frame point at image point `(u, v)` and z-depth `z`.
    pub fn backproject_camera(&self, u: f64, v: f64, z: f64) -> Vec3 {
        Vec3::new(
            (u - self.k.cx) / self.k.fx * z,
            (v - self.k.cy) / self.k.fy * z,
            z,
        )
    }

    /// The world point at image point `(u, v)` and z-depth `z`.
    pub fn backproject(&self, u: f64, v: f64, z: f64) -> Vec3 {
        self.to_world(self.backproject_camera(u, v, z))
    }

    /// Euclidean distance / z-depth ratio at image point `(u, v)`: `|K^-1 [u, v, 1]|`.
    pub fn euclidean_factor(&self, u: f64, v: f64) -> f64 {
        Vec3::new(
            (u - self.k.cx) / self.k.fx,
            (v - self.k.cy) / self.k.fy,
            1.0,
        )
        .norm()
    }

    /// Whether `(u, v)` lies inside the image `[0, width) x [0, height)`.
    pub fn in_image(&self, u: f64, v: f64) -> bool {
        u >= 0.0 && v >= 0.0 && u < self.width as f64 && v < self.height as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_backproject_round_trip() {
        let k = Intrinsics::from_fov(64, 48, 50.0);
        let cam = Camera::look_at(
            Vec3::new(3.0, -2.0, 1.5),
            Vec3::new(0.0, 0.0, 0.4),
            k,
            64,
            48,
        );
        assert!((cam.center() - Vec3::new(3.0, -2.0, 1.5)).norm() < 1e-12);
        // The target projects to the principal point; world up is image up.
        let (u, v, _) = cam.project(Vec3::new(0.0, 0.0, 0.4)).unwrap();
        assert!((u - 32.0).abs() < 1e-9 && (v - 24.0).abs() < 1e-9);
        let (_, v_up, _) = cam.project(Vec3::new(0.0, 0.0, 0.9)).unwrap();
        assert!(v_up < v);
        let p = Vec3::new(0.3, 0.2, 0.7);
        let (u, v, z) = cam.project(p).unwrap();
        assert!((cam.backproject(u, v, z) - p).norm() < 1e-12);
        // The ray parameter is z-depth.
        let q = cam.center() + cam.ray_dir(u, v) * z;
        assert!((q - p).norm() < 1e-12);
    }
}
