//! Solid (3D) textures: the `atlas-world` surface patterns evaluated at the canonical-frame
//! position of a surface point, so a texture sticks to its object in every view. Colours are
//! `atlas-world`'s palette (`Color::rgb`), treated as reflectance in `[0, 1]`; pattern marks use
//! `atlas-world`'s rule (a darker shade of light colours, a lighter tint of dark ones).

use atlas_world::{Color, Pattern};
use serde::{Deserialize, Serialize};

use crate::math::Vec3;
use crate::rng::{Rng, cell_noise};

/// The surface of an object: colour, pattern and the pattern's placement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Material {
    pub color: Color,
    pub pattern: Pattern,
    /// Base reflectance (the colour after the instance's brightness jitter), `[0, 1]`.
    pub base: [f64; 3],
    /// Reflectance of the pattern marks.
    pub mark: [f64; 3],
    /// Pattern period in metres.
    pub period: f64,
    /// Pattern origin offset in metres (canonical frame).
    pub offset: Vec3,
    /// Seed of the `noise` pattern's cells.
    pub noise_seed: u64,
}

fn luminance(c: [f64; 3]) -> f64 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

fn mix(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

impl Material {
    /// A material of `color` and `pattern` with instance jitter drawn from `rng`.
    pub(crate) fn new(color: Color, pattern: Pattern, rng: &mut Rng) -> Material {
        let rgb = color.rgb();
        let gain = rng.range(0.88, 1.12);
        let base = rgb.map(|c| (c as f64 / 255.0 * gain).clamp(0.0, 1.0));
        let mark = if luminance(base) > 0.45 {
            mix(base, [0.0; 3], 0.5)
        } else {
            mix(base, [1.0; 3], 0.55)
        };
        Material {
            color,
            pattern,
            base,
            mark,
            period: 0.16 * rng.range(0.8, 1.25),
            offset: Vec3::new(
                rng.range(0.0, 1.0),
                rng.range(0.0, 1.0),
                rng.range(0.0, 1.0),
            ),
            noise_seed: rng.next_u64(),
        }
    }

    /// Reflectance at canonical-frame point `p`.
    pub fn albedo(&self, p: Vec3) -> [f64; 3] {
        if self.is_mark(p) {
            self.mark
        } else {
            self.base
        }
    }

    fn is_mark(&self, p: Vec3) -> bool {
        let q = (p + self.offset) * (1.0 / self.period);
        let fr = |x: f64| x - x.floor();
        let near0 = |x: f64, w: f64| {
            let f = fr(x);
            f < w || f > 1.0 - w
        };
        match self.pattern {
            Pattern::Solid | Pattern::None => false,
            Pattern::Stripes => fr(q.z) < 0.45,
            Pattern::Dots => {
                let d = Vec3::new(q.x - q.x.round(), q.y - q.y.round(), q.z - q.z.round());
                d.norm() < 0.3
            }
            Pattern::Checker => {
                (q.x.floor() as i64 + q.y.floor() as i64 + q.z.floor() as i64).rem_euclid(2) == 0
            }
            Pattern::Waves => {
                let w = q.z + 0.3 * (std::f64::consts::TAU * 0.5 * (q.x + q.y)).sin();
                fr(w) < 0.35
            }
            Pattern::Noise => {
                let c = q * 2.0;
                cell_noise(
                    self.noise_seed,
                    c.x.floor() as i64,
                    c.y.floor() as i64,
                    c.z.floor() as i64,
                ) < 0.45
            }
            Pattern::Grid => near0(q.x, 0.08) || near0(q.y, 0.08) || near0(q.z, 0.08),
            Pattern::Bricks => {
                let row = (q.z * 2.0).floor();
                let off = if (row as i64).rem_euclid(2) == 1 {
                    0.5
                } else {
                    0.0
                };
                near0(q.z * 2.0, 0.1) || near0(q.x + q.y + off, 0.06)
            }
            Pattern::Zigzag => {
                let s = q.x + q.y;
                let tri = 2.0 * (fr(s) - 0.5).abs(); // triangle wave in [0, 1]
                fr(q.z + 0.5 * tri) < 0.35
            }
            Pattern::Diagonal => fr(q.x + q.z + 0.5 * q.y) < 0.4,
            Pattern::Concentric => fr((p - Vec3::new(0.0, 0.0, 0.5)).norm() / self.period) < 0.45,
            Pattern::Crosshatch => {
                near0(q.x + q.z + 0.5 * q.y, 0.12) || near0(q.x - q.z - 0.5 * q.y, 0.12)
            }
        }
    }
}

/// The ground: square tiles of two reflectances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ground {
    pub a: [f64; 3],
    pub b: [f64; 3],
    /// Tile edge in metres.
    pub tile: f64,
    /// Radius (metres, around the origin) beyond which there is no ground (only sky).
    pub radius: f64,
}

impl Ground {
    pub(crate) fn new(rng: &mut Rng) -> Ground {
        const PALETTE: [[f64; 3]; 4] = [
            [0.62, 0.6, 0.56],
            [0.5, 0.55, 0.5],
            [0.6, 0.55, 0.48],
            [0.55, 0.57, 0.62],
        ];
        let a = PALETTE[rng.below(PALETTE.len())];
        let k = rng.range(0.78, 0.88);
        Ground {
            a,
            b: a.map(|c| c * k),
            tile: rng.range(0.4, 0.6),
            radius: 12.0,
        }
    }

    pub fn albedo(&self, p: Vec3) -> [f64; 3] {
        let i = (p.x / self.tile).floor() as i64 + (p.y / self.tile).floor() as i64;
        if i.rem_euclid(2) == 0 { self.a } else { self.b }
    }
}

/// The sky: a vertical gradient from `horizon` to `zenith`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sky {
    pub horizon: [f64; 3],
    pub zenith: [f64; 3],
}

impl Sky {
    pub(crate) fn new(rng: &mut Rng) -> Sky {
        let h = rng.range(0.0, 0.08);
        Sky {
            horizon: [0.86 - h, 0.9 - h, 0.95],
            zenith: [0.45, 0.6 - h, 0.85],
        }
    }

    /// Radiance seen along unit direction `d`.
    pub fn color(&self, d: Vec3) -> [f64; 3] {
        mix(self.horizon, self.zenith, d.z.clamp(0.0, 1.0).sqrt())
    }
}

pub(crate) fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    mix(a, b, t)
}
