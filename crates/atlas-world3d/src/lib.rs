//! # atlas-world3d: the world's classes as a deterministic rendered 3D world
//!
//! Every class of `atlas-world` (12 training shapes, plus the 4 held-out ones on request)
//! becomes a textured 3D object built from analytic primitives (ellipsoids, convex polytopes,
//! cylinders, cones, tori, and differences of them — see [`shapes`]), with per-instance
//! proportions, colour and pattern from a seed, standing on a tiled ground under a sky and one
//! directional light. Views are ray cast exactly (one ray per pixel centre) through pinhole
//! cameras and come with RGB, z-depth, an object mask, named keypoints with depth-test
//! visibility and a bounding box. On top of the views:
//!
//! * [`GeometricPair`]s — two views of one scene, relative rotations spread over 0..180 degrees,
//!   with ground-truth pixel correspondences (depth back-projection + occlusion check) and the
//!   3D points in A's camera frame (Probe3D's ScanNet/NAVI-style pairs);
//! * [`SemanticPair`]s — different instances of one class with both keypoint sets, boxes and a
//!   viewpoint-variation bin (SPair-71k-style);
//! * camera-motion frames and [`motion_blur`] (ImageNet-3DCC's xy/z motion blur, rendered);
//! * [`write_dir`] — a documented on-disk layout (see [`io`]).
//!
//! ## Conventions
//! * World frame: right-handed, metres, `z` up, ground plane `z = 0`, object around the origin.
//! * Camera frame: OpenCV (`x` right, `y` down, `z` forward); extrinsics are world-to-camera,
//!   `p_cam = R p_world + t`; intrinsics `K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`.
//! * Pixel `(col, row)` has its centre at `(col + 0.5, row + 0.5)`.
//! * Depth is **z-depth** in metres, `0.0` where a ray meets only sky; euclidean (ray) distance
//!   is `z * |K^-1 [u, v, 1]|` ([`View::euclidean_depth`]). Probe3D uses z-depth; 3DCC's
//!   depth is euclidean.
//! * Determinism: the same config gives identical views, pairs and files, whatever the rayon
//!   thread count (each pixel, view and pair is a pure function of the config; random streams
//!   are keyed SplitMix64, see `rng`). Byte identity is for one build on one target (`f64`
//!   `sin`/`cos`/`sqrt` come from the platform's libm).
//!
//! ```
//! use atlas_world3d::{generate, World3dConfig};
//! use atlas_world::Shape;
//!
//! let cfg = World3dConfig {
//!     classes: vec![Shape::Star, Shape::Ring],
//!     size: 64,
//!     ..World3dConfig::default()
//! };
//! let world = generate(&cfg).unwrap();
//! assert_eq!(world.views.len(), 2 * cfg.instances_per_class * cfg.views_per_instance);
//! assert!(world.views.iter().all(|v| v.mask.iter().any(|&m| m == 255)));
//! ```

pub mod camera;
pub mod error;
pub mod io;
pub mod math;
pub mod motion;
pub mod pairs;
mod poly;
pub mod prim;
mod rng;
pub mod scene;
pub mod shapes;
pub mod texture;
pub mod view;
pub mod world;

pub use camera::{Camera, Intrinsics};
pub use error::{Result, World3dError};
pub use io::write_dir;
pub use math::{Mat3, Vec3, rotation_angle_deg};
pub use motion::{MotionKind, MotionPath, motion_blur, motion_frames, motion_path};
pub use pairs::{Correspondence, GeometricPair, SemanticPair, correspondences};
pub use scene::{Frame, Scene, render};
pub use view::{BBox, Keypoint, View};
pub use world::{World3d, World3dConfig, generate, scenes, view_camera};

pub use atlas_world::Shape;
