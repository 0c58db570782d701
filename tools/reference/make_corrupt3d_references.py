#!/usr/bin/env python3
"""Reference outputs for `atlas-corrupt3d` (3D common corruptions, Kar et al., CVPR 2022).

    python3 -m venv /work/venv-c3d && /work/venv-c3d/bin/pip install numpy
    /work/venv-c3d/bin/python tools/reference/make_corrupt3d_references.py   # from the repo root

An independent NumPy re-implementation of the public reference code, repository
EPFL-VILAB/3DCommonCorruptions (commit 4fc007b022b91774c9d671afe3d29005812d5745), following
it step by step; every function below names the file and function it follows. The reference
runs the depth/shading corruptions in float32 PyTorch and the image-only ones in float64
NumPy; the arithmetic here keeps the same precision where it is element-wise (fog, flash:
float32; ISO noise, low light: float64) and uses float64 for the Gaussian blur stacks of the
defocus corruptions (accumulation order differs from a GPU convolution anyway).

Randomness: the reference draws with `np.random.poisson` / `np.random.normal`. Those streams
cannot be reproduced outside NumPy, so the crate takes the random field as an explicit input:
one uniform variate in [0, 1) and one standard normal per (pixel, channel), stored as float32.
A Poisson draw with mean `lam` is the inverse CDF of the uniform: the smallest k with
u < P(X <= k), computed by the recurrence p_0 = exp(-lam), p_k = p_{k-1} * lam / k
(capped at k = 1000). The Gaussian draw with scale c is `c * z`. This script writes the field
it used (`noise_uniform.f32`, `noise_normal.f32`), and the Rust test feeds the same field to
`atlas_corrupt3d::*_with_noise`; `atlas_corrupt3d::corrupt` instead draws the field from a
seeded xoshiro256++ stream.

Inputs (deterministic, written to crates/atlas-corrupt3d/tests/fixtures/):
- rgb.u8         48x64x3 u8, row-major, RGB interleaved: gradients, a checkerboard, a disc.
- depth.f32      48x64 little-endian float32 in the reference's normalised units (Taskonomy
                 euclidean depth PNG / 8000, i.e. 1.0 = 15.625 m): far at the top, a near floor
                 at the bottom, a near object (disc); smooth, strictly positive, no ties.
- reshade.f32    48x64 float32 in [0, 1] (a reshading / shading image, as 8-bit PNG / 255).
- noise_uniform.f32, noise_normal.f32   48*64*3 float32 each (the random field, see above).
- noise_draw_seed7.f32   33 uniforms then 33 normals of the crate's NoiseField::draw(33, 7)
                 (xoshiro256++, see `xoshiro_noise`), pinning the seeded stream.
Outputs: `<name>_<severity>.u8`, 48x64x3 u8, for each implemented corruption, severity 1..5.
The conversion back to u8 follows torchvision's ToPILImage (`x.mul(255).byte()`, truncation)
for the torch-based corruptions and `np.uint8` (truncation) for the NumPy ones.
"""
import math
from pathlib import Path

import numpy as np

H, W = 48, 64
OUT = Path("crates/atlas-corrupt3d/tests/fixtures")
KMAX = 1000


# -------------------------------------------------- the crate's seeded noise stream
M64 = (1 << 64) - 1


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def xoshiro_noise(n, seed):
    """`NoiseField::draw(n, seed)`: xoshiro256++ (Blackman & Vigna 2019) seeded like
    rand_xoshiro's `seed_from_u64` (four SplitMix64 outputs); n uniforms = (u64 >> 40) * 2^-24,
    then n normals by Box-Muller (u1 = 1 - (u64 >> 11) * 2^-53, u2 = (u64 >> 11) * 2^-53,
    r = sqrt(-2 ln u1), the pair r cos(2 pi u2), r sin(2 pi u2))."""
    state, s = seed, []
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        s.append(z ^ (z >> 31))

    def next_u64():
        result = (_rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    uniform = [(next_u64() >> 40) * 2.0**-24 for _ in range(n)]
    normal = []
    while len(normal) < n:
        u1 = 1.0 - (next_u64() >> 11) * 2.0**-53
        u2 = (next_u64() >> 11) * 2.0**-53
        r = math.sqrt(-2.0 * math.log(u1))
        normal.append(r * math.cos(2.0 * math.pi * u2))
        if len(normal) < n:
            normal.append(r * math.sin(2.0 * math.pi * u2))
    return np.array(uniform, dtype=np.float32), np.array(normal, dtype=np.float32)


# ----------------------------------------------------------------------------- inputs
def make_inputs():
    y, x = np.mgrid[0:H, 0:W]
    r = (x * 4 + y) % 256
    g = (y * 5 + 20) % 256
    b = np.where(((x // 8) + (y // 8)) % 2 == 0, 200, 40)
    disc = (x - 40) ** 2 + (y - 30) ** 2 < 10**2
    r = np.where(disc, 250, r)
    g = np.where(disc, 230 - y, g)
    b = np.where(disc, 10 + x, b)
    rgb = np.stack([r, g, b], axis=-1).astype(np.uint8)

    yf = y.astype(np.float64)
    xf = x.astype(np.float64)
    depth = 0.06 + 0.84 * (1.0 - yf / (H - 1)) ** 1.5 + 0.01 * np.sin(xf / 5.0) + 1e-4 * xf
    depth = np.where(disc, 0.12 + 0.0007 * xf + 0.0003 * yf, depth)
    depth = depth.astype(np.float32)

    shade = 0.5 + 0.45 * np.cos((xf - 32.0) / 20.0) * np.cos((yf - 24.0) / 30.0)
    reshade = (np.round(shade * 255.0) / 255.0).astype(np.float32)

    rng = np.random.default_rng(20220619)
    uniform = rng.random(H * W * 3, dtype=np.float32)
    normal = rng.standard_normal(H * W * 3, dtype=np.float32)
    return rgb, depth, reshade, uniform, normal


def to_u8(x):
    """torchvision ToPILImage / np.uint8 on values in [0, 255]: truncation."""
    return np.clip(np.trunc(x), 0, 255).astype(np.uint8)


# ------------------------------------------------- create_3dcc/create_dof.py (near/far focus)
def gaussian(m, std):
    """create_dof.py: gaussian(M, std, sym=True)."""
    if m == 1:
        return np.ones(1)
    n = np.arange(0, m, dtype=np.float64) - (m - 1.0) / 2.0
    return np.exp(-(n**2) / (2 * std * std))


def separable_gaussian(img, r, cutoff):
    """create_dof.py: separable_gaussian(img, r, cutoff): replicate padding by cutoff // 2,
    1-D kernel along the width, divide by the kernel sum, then along the height."""
    if r < 1e-1:
        return img
    assert cutoff % 2 == 1
    fil = gaussian(cutoff, r)
    s = fil.sum()
    pad = cutoff // 2
    p = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    tmp = np.zeros((H + 2 * pad, W, 3))
    for k in range(cutoff):
        tmp += fil[k] * p[:, k : k + W, :]
    tmp /= s
    out = np.zeros((H, W, 3))
    for k in range(cutoff):
        out += fil[k] * tmp[k : k + H, :, :]
    return out / s


def compute_quantiles(depth, n_quantiles=8, eps=1e-4):
    """create_dof.py: compute_quantiles (torch.quantile = linear interpolation), with
    quantile_vals[0] -= eps and quantile_vals[-1] += eps."""
    q = np.arange(0, n_quantiles + 1) / n_quantiles
    vals = np.quantile(depth.reshape(-1).astype(np.float64), q)
    vals[0] -= eps
    vals[-1] += eps
    return vals


def compute_quantile_membership(depth, vals):
    """create_dof.py: compute_quantile_membership (torch.searchsorted, side='left')."""
    d = depth.astype(np.float64)
    right = np.searchsorted(vals, d, side="left")
    left = right - 1
    q_r, q_l = vals[right], vals[left]
    dist = q_r - q_l
    return (d - q_l) / dist, (q_r - d) / dist, left, right


def refocus_image(rgb, depth, focus_distance, aperture):
    """create_dof.py: refocus_image -> compute_circle_of_confusion_no_magnification,
    get_blur_stack(cutoff_multiplier=3), composite_blur_stack."""
    vals = compute_quantiles(depth)
    dist_left, dist_right, left, right = compute_quantile_membership(depth, vals)
    radii = aperture * np.abs(vals - focus_distance) / vals
    stack = []
    for r in radii:
        cutoff = int(r * 3)  # get_blur_stack_single_image
        if cutoff % 2 == 0:
            cutoff += 1
        stack.append(separable_gaussian(rgb, r, cutoff))
    stack = np.stack(stack)  # (9, H, W, 3)
    sim_left = 1 - dist_left**2  # composite_blur_stack
    sim_right = 1 - dist_right**2
    total = sim_left + sim_right
    yy, xx = np.mgrid[0:H, 0:W]
    out = (sim_left / total)[..., None] * stack[left, yy, xx] + (sim_right / total)[
        ..., None
    ] * stack[right, yy, xx]
    return out


def defocus_blur_3d(rgb_u8, depth, severity, far):
    """create_dof.py: defocus_blur_3D: 8 depth quantiles; aperture = severity + 2; focus on
    quantile value 0 (near_focus, sample_idxs_2 `[:1]`) or 7 (far_focus, `[7:8]`), where the
    far copy's aperture is (aperture - 1.5) / 1."""
    rgb = rgb_u8.astype(np.float32).astype(np.float64) / 255.0
    vals = compute_quantiles(depth)
    aperture = severity + 2.0
    if far:
        aperture = (aperture - 1.5) / 1.0
        focus = vals[7]
    else:
        focus = vals[0]
    out = refocus_image(rgb, depth, focus, aperture)
    return to_u8(out.astype(np.float32) * np.float32(255))


# ------------------------------------------------------------ create_3dcc/create_fog.py
def fog_3d(rgb_u8, depth, severity):
    """create_fog.py: fog_3d: t = exp(-alpha * depth), alpha = [4, 8, 12, 16, 20];
    atmosphere I_s = rgb.mean() (over all pixels and channels); t * rgb + I_s * (1 - t)."""
    alpha = np.float32([4, 8, 12, 16, 20][severity - 1])
    rgb = rgb_u8.astype(np.float32) / np.float32(255)
    t = np.exp(-alpha * depth)[..., None].astype(np.float32)
    i_s = np.float32(rgb.astype(np.float64).mean())
    fog = t * rgb + i_s * (np.float32(1) - t)
    return to_u8(fog * np.float32(255))


# ---------------------------------------------------------- create_3dcc/create_flash.py
def flash(rgb_u8, reshade, severity):
    """create_flash.py: flash: rgb + rgb * reshade / corr_scaler, corr_scaler =
    [2.4, 1.4, 0.9, 0.6, 0.4]; clamp(max=1)."""
    s = np.float32([2.4, 1.4, 0.9, 0.6, 0.4][severity - 1])
    rgb = rgb_u8.astype(np.float32) / np.float32(255)
    out = rgb + rgb * reshade[..., None] / s
    out = np.minimum(out, np.float32(1))
    return to_u8(out * np.float32(255))


# --------------------------------------------------------- create_3dcc/create_non3d.py
def poisson_icdf(u, lam):
    """The crate's Poisson draw from an explicit uniform (replaces np.random.poisson)."""
    u = u.astype(np.float64)
    k = np.zeros(lam.shape)
    p = np.exp(-lam)
    cdf = p.copy()
    active = u >= cdf
    for i in range(1, KMAX + 1):
        if not active.any():
            break
        p = p * lam / i
        cdf = cdf + p
        k = np.where(active, i, k)
        active = active & (u >= cdf)
    return k


def iso_noise(rgb_u8, severity, uniform, normal):
    """create_non3d.py: iso_noise: Poisson with c_poisson = 25 (all severities), then
    Gaussian with scale 0.7 * [.08, .12, 0.18, 0.26, 0.38]; clip to [0, 1]; np.uint8."""
    u = uniform.reshape(H, W, 3)
    z = normal.reshape(H, W, 3).astype(np.float64)
    c_poisson = 25
    x = rgb_u8 / 255.0
    x = np.clip(poisson_icdf(u, x * c_poisson) / c_poisson, 0, 1) * 255
    c_gauss = 0.7 * [0.08, 0.12, 0.18, 0.26, 0.38][severity - 1]
    x = x / 255.0
    x = np.clip(x + z * c_gauss, 0, 1) * 255
    return to_u8(x)


def poisson_gaussian_noise(x, severity, uniform, normal):
    """create_non3d.py: poisson_gaussian_noise: c_poisson = 10 * [60, 25, 12, 5, 3],
    c_gauss = 0.1 * [.08, .12, 0.18, 0.26, 0.38]."""
    u = uniform.reshape(H, W, 3)
    z = normal.reshape(H, W, 3).astype(np.float64)
    c_poisson = 10 * [60, 25, 12, 5, 3][severity - 1]
    x = np.array(x) / 255.0
    x = np.clip(poisson_icdf(u, x * c_poisson) / c_poisson, 0, 1) * 255
    c_gauss = 0.1 * [0.08, 0.12, 0.18, 0.26, 0.38][severity - 1]
    x = np.array(x) / 255.0
    x = np.clip(x + z * c_gauss, 0, 1) * 255
    return to_u8(x)


def low_light(rgb_u8, severity, uniform, normal):
    """create_non3d.py: low_light: imadjust(x, x.min(), x.max(), 0, c, gamma=2) with
    c = [.60, .50, 0.40, 0.30, 0.20], then poisson_gaussian_noise(severity=3)."""
    c = [0.60, 0.50, 0.40, 0.30, 0.20][severity - 1]
    x = rgb_u8 / 255.0
    a, b = x.min(), x.max()
    x_scaled = (((x - a) / (b - a)) ** 2.0) * (c - 0) + 0  # imadjust
    x_scaled = x_scaled * 255
    return poisson_gaussian_noise(x_scaled, 3, uniform, normal)


def color_quant(rgb_u8, severity):
    """create_non3d.py: color_quant: PIL.ImageOps.posterize(x, bits = 6 - severity), i.e.
    keep the top `bits` bits of every channel value."""
    bits = 6 - severity
    mask = (~((1 << (8 - bits)) - 1)) & 0xFF
    return (rgb_u8 & np.uint8(mask)).astype(np.uint8)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rgb, depth, reshade, uniform, normal = make_inputs()
    (OUT / "rgb.u8").write_bytes(rgb.tobytes())
    (OUT / "depth.f32").write_bytes(depth.astype("<f4").tobytes())
    (OUT / "reshade.f32").write_bytes(reshade.astype("<f4").tobytes())
    (OUT / "noise_uniform.f32").write_bytes(uniform.astype("<f4").tobytes())
    (OUT / "noise_normal.f32").write_bytes(normal.astype("<f4").tobytes())
    # Pins the crate's own draw (`corrupt(..., seed)`): 33 values of NoiseField::draw(33, 7).
    u7, z7 = xoshiro_noise(33, 7)
    (OUT / "noise_draw_seed7.f32").write_bytes(np.concatenate([u7, z7]).astype("<f4").tobytes())
    cases = {
        "near_focus": lambda s: defocus_blur_3d(rgb, depth, s, far=False),
        "far_focus": lambda s: defocus_blur_3d(rgb, depth, s, far=True),
        "fog_3d": lambda s: fog_3d(rgb, depth, s),
        "flash": lambda s: flash(rgb, reshade, s),
        "low_light": lambda s: low_light(rgb, s, uniform, normal),
        "iso_noise": lambda s: iso_noise(rgb, s, uniform, normal),
        "color_quant": lambda s: color_quant(rgb, s),
    }
    for name, f in cases.items():
        for s in range(1, 6):
            out = f(s)
            assert out.shape == (H, W, 3) and out.dtype == np.uint8
            (OUT / f"{name}_{s}.u8").write_bytes(out.tobytes())
            diff = np.abs(out.astype(int) - rgb.astype(int)).mean()
            print(f"{name:12s} severity {s}: mean |out - clean| = {diff:7.3f}")


if __name__ == "__main__":
    main()
