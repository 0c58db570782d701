#!/usr/bin/env python3
"""Reference outputs for `atlas_metrics::correspondence` (Probe3D dense correspondence).

    /work/venv-ref/bin/python tools/reference/make_correspondence_references.py   # repo root
    (needs numpy; torch only for the self-checks of the resampling helpers)

An independent NumPy re-implementation of the public Probe3D code, repository mbanani/probe3d
(commit a1f14640076e38b8bc07b66d0fe2d01d15691e9d), following it step by step; every function
below names the file and function it follows ("P3D <file>::<function>"). Probe3D runs float32
on the GPU (faiss for the kNN); this script runs float64 NumPy, as the crate does. Tie rules,
which Probe3D leaves to faiss / torch.topk, are pinned here as in the crate: lower index first
(stable sorts); argmax takes the first maximum (torch.argmax).

The torch resampling calls (grid_sample bilinear with both align_corners settings, bicubic
interpolate, nearest interpolate) are re-implemented in NumPy from their ATen definitions and
checked against torch itself on random inputs before any fixture is written.

Fixture: crates/atlas-metrics/tests/fixtures/correspondence/correspondence.json
- "scannet": pairs (features, depth maps in metres, K, camera-to-world poses) -> per pair the
  matches (indices into the row-major list of valid points), ratio-test weights, 2D errors,
  relative rotation; the summary (recall at 5/10/20 px, recall@10px per rotation bin); one pair
  without valid depth in view 1 (expected error).
- "navi": pairs (features, xyz grids, quaternion + translation(mm) world-to-camera poses,
  view-1 K) -> matches, 3D and 2D errors, rotation; summary (1/2/5 cm, 5/25/50 px, binned 2 cm).
- "binned": compute_binned_performance on seeded values, angles on bin edges, empty bins.
- "rotation": so3_rotation_angle of random rotations, identity, ~180 degrees.
- "spair": pairs (features, raw keypoints as the ImageAnnotation dict, image sizes, target bbox)
  -> square keypoints, threshold scale, per-pair errors; summary per class / viewpoint bin.
Values are short decimal strings of float32 inputs (depth in mm / 1000, features to 1e-3), so
the Rust side reads exactly the inputs used here.
"""
import json
import math
from pathlib import Path

import numpy as np

OUT = Path("crates/atlas-metrics/tests/fixtures/correspondence/correspondence.json")


# ------------------------------------------------------------------ torch resampling in NumPy
def grid_sample_bilinear(feat, ix, iy):
    """ATen GridSampler.h `grid_sampler_2d` (bilinear, zeros) at pixel index (ix, iy); feat HxWxC."""
    H, W, C = feat.shape
    out = np.zeros(C)
    x0, y0 = math.floor(ix), math.floor(iy)
    x1, y1 = x0 + 1, y0 + 1
    for x, y, w in (
        (x0, y0, (x1 - ix) * (y1 - iy)),
        (x1, y0, (ix - x0) * (y1 - iy)),
        (x0, y1, (x1 - ix) * (iy - y0)),
        (x1, y1, (ix - x0) * (iy - y0)),
    ):
        if 0 <= x < W and 0 <= y < H:
            out = out + feat[y, x] * w
    return out


def unnormalize(g, size, align_corners):
    """ATen GridSampler.h `grid_sampler_unnormalize`."""
    if align_corners:
        return ((g + 1.0) / 2.0) * (size - 1.0)
    return ((g + 1.0) * size - 1.0) / 2.0


def cubic_taps(n_in, n_out):
    """ATen UpSample.h: area_pixel_compute_source_index(cubic), get_cubic_upsample_coefficients."""
    A = -0.75
    c1 = lambda x: ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    c2 = lambda x: ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    scale = n_in / n_out
    taps = []
    for i in range(n_out):
        real = scale * (i + 0.5) - 0.5
        base = math.floor(real)
        t = real - base
        w = [c2(t + 1.0), c1(t), c1(1.0 - t), c2(2.0 - t)]
        idx = [min(max(base + o, 0), n_in - 1) for o in (-1, 0, 1, 2)]
        taps.append((idx, w))
    return taps


def upsample_bicubic(feat, h, w):
    """F.interpolate(feat, size=(h, w), mode="bicubic", align_corners=False); HxWxC -> hxwxC."""
    ty, tx = cubic_taps(feat.shape[0], h), cubic_taps(feat.shape[1], w)
    out = np.zeros((h, w, feat.shape[2]))
    for oy, (iy, wy) in enumerate(ty):
        for ox, (ix, wx) in enumerate(tx):
            acc = np.zeros(feat.shape[2])
            for ky in range(4):
                row = np.zeros(feat.shape[2])
                for kx in range(4):
                    row = row + feat[iy[ky], ix[kx]] * wx[kx]
                acc = acc + row * wy[ky]
            out[oy, ox] = acc
    return out


def interpolate_nearest(x, scale):
    """F.interpolate(x, scale_factor=scale, mode="nearest") (ATen UpSample.h `nearest_idx`)."""
    H, W = x.shape[:2]
    oh, ow = int(math.floor(H * scale)), int(math.floor(W * scale))
    inv = np.float32(1.0 / scale)
    sy = [min(int(np.floor(np.float32(i) * inv)), H - 1) for i in range(oh)]
    sx = [min(int(np.floor(np.float32(i) * inv)), W - 1) for i in range(ow)]
    return x[np.ix_(sy, sx)]


def self_check_against_torch(rng):
    import torch
    import torch.nn.functional as F

    feat = rng.normal(size=(5, 7, 3))
    t = torch.tensor(feat.transpose(2, 0, 1))[None]
    for align in (False, True):
        g = rng.uniform(-1.3, 1.3, size=(20, 2))
        ref = F.grid_sample(t, torch.tensor(g)[None, None], mode="bilinear", align_corners=align)
        ref = ref[0, :, 0].T.numpy()
        for k in range(20):
            ix = unnormalize(g[k, 0], 7, align)
            iy = unnormalize(g[k, 1], 5, align)
            assert np.allclose(grid_sample_bilinear(feat, ix, iy), ref[k], atol=1e-12), align
    for h, w in ((11, 13), (20, 28), (5, 7), (3, 4)):
        ref = F.interpolate(t, size=(h, w), mode="bicubic")[0].numpy().transpose(1, 2, 0)
        assert np.allclose(upsample_bicubic(feat, h, w), ref, atol=1e-12), (h, w)
    d = rng.uniform(size=(1, 1, 30, 42)).astype(np.float32)
    ref = F.interpolate(torch.tensor(d), scale_factor=0.25)[0, 0].numpy()
    assert np.array_equal(interpolate_nearest(d[0, 0], 0.25), ref)
    print("resampling helpers equal torch")


# ------------------------------------------------------------------ P3D geometric correspondence
def get_grid(H, W):
    """P3D evals/utils/correspondence.py::get_grid: pixel centres (x + .5, y + .5, 1), 3xHxW."""
    xs = np.tile(np.linspace(0.5, W - 0.5, W)[None, :], (H, 1))
    ys = np.tile(np.linspace(0.5, H - 0.5, H)[:, None], (1, W))
    return np.stack((xs, ys, np.ones_like(xs)), axis=0)


def grid_to_pointcloud(K_inv, depth):
    """P3D evals/utils/correspondence.py::grid_to_pointcloud: (K^-1 (depth * grid)).T, HW x 3."""
    H, W = depth.shape
    points = depth[None] * get_grid(H, W)
    return (K_inv @ points.reshape(3, H * W)).T


def project_3dto2d(xyz, K):
    """P3D evals/utils/correspondence.py::project_3dto2d."""
    uvd = xyz @ K.T
    return uvd[:, :2] / np.maximum(uvd[:, 2:3], 1e-9)


def sample_pointcloud_features(feats, K, pc, image_shape):
    """P3D evals/utils/correspondence.py::sample_pointcloud_features (grid_sample, align False)."""
    H, W = image_shape
    uv = project_3dto2d(pc, K)
    gx = 2 * uv[:, 0] / W - 1
    gy = 2 * uv[:, 1] / H - 1
    h, w = feats.shape[:2]
    return np.stack(
        [
            grid_sample_bilinear(feats, unnormalize(gx[i], w, False), unnormalize(gy[i], h, False))
            for i in range(len(pc))
        ]
    )


def normalize(x):
    """torch.nn.functional.normalize(x, dim=-1) (eps 1e-12)."""
    return x / np.maximum(np.sqrt((x * x).sum(-1, keepdims=True)), 1e-12)


def knn_points(X_f, Y_f, K=2):
    """P3D evals/utils/correspondence.py::knn_points(metric="cosine") with faiss_knn: normalise,
    K nearest by L2 (stable: lower index on ties), distance 1 - cosine_similarity."""
    X_f, Y_f = normalize(X_f), normalize(Y_f)
    dots = X_f @ Y_f.T
    xx = (X_f * X_f).sum(-1)
    yy = (Y_f * Y_f).sum(-1)
    d2 = xx[:, None] + yy[None, :] - 2.0 * dots
    X_nn = np.argsort(d2, axis=1, kind="stable")[:, :K]
    nx = np.maximum(np.sqrt(xx), 1e-8)[:, None]
    ny = np.maximum(np.sqrt(yy), 1e-8)[X_nn]
    dists = 1 - np.take_along_axis(dots, X_nn, axis=1) / (nx * ny)
    return dists, X_nn


def calculate_ratio_test(dists):
    """P3D evals/utils/correspondence.py::calculate_ratio_test."""
    dists = np.maximum(dists, 1e-9)
    ratio = dists[..., 0] / np.maximum(dists[..., 1], 1e-9)
    return 1 - ratio


def get_topk_matches(dists, idx, num_corres):
    """P3D evals/utils/correspondence.py::get_topk_matches (torch.topk; lower index on ties)."""
    num_corres = min(num_corres, dists.shape[-1])
    idx_source = np.array(sorted(range(len(dists)), key=lambda i: (-dists[i], i))[:num_corres])
    return idx_source, idx[idx_source], dists[idx_source]


def get_correspondences_ratio_test(P1_F, P2_F, num_corres):
    """P3D evals/utils/correspondence.py::get_correspondences_ratio_test (cosine, one-way, ratio)."""
    if P2_F.shape[0] < 2:
        raise ValueError("k = 2 needs two target points")
    dists_1, idx_1 = knn_points(P1_F, P2_F, 2)
    idx_1 = idx_1[..., 0]
    weights_1 = calculate_ratio_test(dists_1)
    return get_topk_matches(weights_1, idx_1, num_corres)


def estimate_correspondence_depth(feat_0, feat_1, depth_0, depth_1, K, num_corr):
    """P3D evals/utils/correspondence.py::estimate_correspondence_depth."""
    K_inv = np.linalg.inv(K)
    xyz_0 = grid_to_pointcloud(K_inv, depth_0)
    xyz_1 = grid_to_pointcloud(K_inv, depth_1)
    xyz_0 = xyz_0[xyz_0[:, 2] > 0]
    xyz_1 = xyz_1[xyz_1[:, 2] > 0]
    if len(xyz_0) < 2 or len(xyz_1) < 2:
        raise ValueError("no valid depth")
    f0 = sample_pointcloud_features(feat_0, K, xyz_0, depth_0.shape)
    f1 = sample_pointcloud_features(feat_1, K, xyz_1, depth_1.shape)
    idx0, idx1, corr_dist = get_correspondences_ratio_test(f0, f1, num_corr)
    return xyz_0[idx0], xyz_1[idx1], corr_dist, idx0, idx1


def estimate_correspondence_xyz(feat_0, feat_1, xyz_grid_0, xyz_grid_1, num_corr):
    """P3D evals/utils/correspondence.py::estimate_correspondence_xyz (grids HxWx3 here)."""
    h, w = xyz_grid_0.shape[:2]
    feat_0 = upsample_bicubic(feat_0, h, w)
    feat_1 = upsample_bicubic(feat_1, h, w)
    m0, m1 = xyz_grid_0[..., 2] > 0, xyz_grid_1[..., 2] > 0
    f0, f1 = feat_0[m0], feat_1[m1]
    xyz_0, xyz_1 = xyz_grid_0[m0], xyz_grid_1[m1]
    if len(xyz_0) < 2 or len(xyz_1) < 2:
        raise ValueError("no valid points")
    idx0, idx1, c_dist = get_correspondences_ratio_test(f0, f1, num_corr)
    return xyz_0[idx0], xyz_1[idx1], c_dist, idx0, idx1


def transform_points_Rt(points, viewpoint):
    """P3D evals/utils/transformations.py::transform_points_Rt (inverse=False)."""
    R, t = viewpoint[:3, :3], viewpoint[None, :3, 3]
    return points @ R.T + t


def so3_rotation_angle(R, eps=1e-4):
    """P3D evals/utils/transformations.py::so3_rotation_angle (radians)."""
    rot_trace = R[0, 0] + R[1, 1] + R[2, 2]
    if rot_trace < -1.0 - eps or rot_trace > 3.0 + eps:
        raise ValueError("A matrix has trace outside valid range [-1-eps,3+eps].")
    return math.acos(min(max((rot_trace - 1.0) * 0.5, -1.0), 1.0))


def compute_binned_performance(y, x, x_bins):
    """P3D evals/utils/correspondence.py::compute_binned_performance (empty bin -> None, not NaN)."""
    out = []
    for i in range(len(x_bins) - 1):
        mask = (x >= x_bins[i]) & (x < x_bins[i + 1])
        out.append(float(y[mask].mean()) if mask.any() else None)
    return out


def quaternion_to_rotation_matrix(q):
    """P3D evals/datasets/utils.py::quaternion_to_rotation_matrix (q = w, x, y, z)."""
    w, x, y, z = q
    s = 2.0 / (q * q).sum()
    return np.array(
        [
            [1 - s * (y**2 + z**2), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x**2 + z**2), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x**2 + y**2)],
        ]
    )


def camera_matrices_from_annotation(q, t_mm):
    """P3D evals/datasets/utils.py::camera_matrices_from_annotation, then navi.py::get_single's
    `Rt[:3, 3] = Rt[:3, 3] / 1000.0`: 4x4 translate(t) @ rotation(q)."""
    Rt = np.eye(4)
    Rt[:3, :3] = quaternion_to_rotation_matrix(q)
    Rt[:3, 3] = np.asarray(t_mm) / 1000.0
    return Rt


# ------------------------------------------------------------------ inputs
def short(v):
    """The shortest decimal that reads back as the float32 `v`."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def f32(a, decimals):
    """float32 values with a short decimal form; returns (array as float64, JSON list)."""
    a = np.round(np.asarray(a, dtype=np.float64), decimals).astype(np.float32)
    flat = np.array([short(v) for v in a.ravel()]).reshape(a.shape)
    return a.astype(np.float64), flat.tolist()


def random_rotation(rng, deg):
    axis = normalize(rng.normal(size=3))
    a = math.radians(deg)
    Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * Kx + (1 - math.cos(a)) * Kx @ Kx


def scannet_case(rng, deg, zero_view1=False):
    H, W, h, w, C = 32, 40, 5, 6, 12
    K = np.array([[36.0, 0.0, 19.5], [0.0, 35.0, 15.5], [0.0, 0.0, 1.0]])
    d0, d0j = f32(rng.uniform(0.8, 3.0, (H, W)) * (rng.uniform(size=(H, W)) > 0.15), 3)
    d1, d1j = f32(rng.uniform(0.8, 3.0, (H, W)) * (rng.uniform(size=(H, W)) > 0.15), 3)
    if zero_view1:
        d1, d1j = f32(np.zeros((H, W)), 3)
    f0, f0j = f32(rng.normal(size=(h, w, C)), 3)
    f1, f1j = f32(rng.normal(size=(h, w, C)), 3)
    c2w0 = np.eye(4)
    c2w0[:3, :3] = random_rotation(rng, rng.uniform(0, 40))
    c2w0[:3, 3] = rng.normal(size=3)
    c2w1 = c2w0.copy()
    c2w1[:3, :3] = c2w0[:3, :3] @ random_rotation(rng, deg)
    c2w1[:3, 3] = c2w0[:3, 3] + rng.normal(scale=0.1, size=3)
    case = {
        "height": H, "width": W, "feat_hw": [h, w], "channels": C, "K": K.tolist(),
        "depth0": d0j, "depth1": d1j, "feat0": f0j, "feat1": f1j,
        "c2w0": c2w0.tolist(), "c2w1": c2w1.tolist(), "num_corr": 25, "scale": 0.25,
    }
    # P3D evaluate_scannet_correspondence.py::main, per instance
    Rt_gt = (np.linalg.inv(c2w1) @ c2w0)[:3, :4]  # scannet_pairs.py::__getitem__ Rt_01
    deps = [interpolate_nearest(d, 0.25) for d in (d0, d1)]
    K_mat = K.copy()
    K_mat[:2, :] *= 0.25
    try:
        xyz0, xyz1, dist, i0, i1 = estimate_correspondence_depth(f0, f1, deps[0], deps[1], K_mat, 25)
    except ValueError:
        case["expect_error"] = True
        return case, None
    uv_0in1 = project_3dto2d(transform_points_Rt(xyz0, Rt_gt), K_mat)
    uv_1in1 = project_3dto2d(xyz1, K_mat)
    err = np.linalg.norm(uv_0in1 - uv_1in1, axis=1)
    rel_ang = so3_rotation_angle(Rt_gt[:3, :3]) * 180.0 / np.pi
    case.update(idx0=i0.tolist(), idx1=i1.tolist(), weight=dist.tolist(), err2d=err.tolist(),
                rotation_deg=rel_ang)
    return case, (err, rel_ang)


def navi_case(rng, deg, sparse=False):
    H = W = 20
    h = w = 4
    C = 10
    f0, f0j = f32(rng.normal(size=(h, w, C)), 3)
    f1, f1j = f32(f0 + rng.normal(scale=0.3, size=(h, w, C)), 3)  # view 1 resembles view 0
    q0 = normalize(rng.normal(size=4))
    # view 1 = view 0 rotated by `deg` about a random axis: Hamilton product q0 * qd, then
    # scaled by 1.7 (unnormalised on purpose: Probe3D uses s = 2 / |q|^2)
    axis = normalize(rng.normal(size=3))
    a = math.radians(deg)
    qd = np.concatenate([[math.cos(a / 2)], math.sin(a / 2) * axis])
    w0, x0, y0, z0 = q0
    w1, x1, y1, z1 = qd
    q1 = 1.7 * np.array([
        w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1,
        w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
        w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1,
        w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1,
    ])
    t0 = rng.normal(scale=300, size=3)
    R_rel = quaternion_to_rotation_matrix(q1) @ quaternion_to_rotation_matrix(q0).T
    t1 = R_rel @ t0 + rng.normal(scale=20, size=3)  # relative translation of a few cm
    # view-1 points: the view-0 points moved by the relative pose, plus ~1 cm noise
    z = rng.uniform(0.4, 0.9, (H, W)) * (rng.uniform(size=(H, W)) > (0.7 if sparse else 0.2))
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    g0 = np.stack(((xs - 10) * z / 30.0, (ys - 10) * z / 30.0, z), axis=-1)
    g1 = g0 @ R_rel.T + (t1 - R_rel @ t0) / 1000.0 + rng.normal(scale=0.01, size=g0.shape)
    g1[z == 0] = 0.0
    grids = [f32(g0, 3), f32(g1, 3)]
    fx = 610.0
    K1 = np.diag([fx, fx, 1.0])  # navi.py::get_single: intrinsics = eye(3); [:2] *= final_fx
    case = {
        "height": H, "width": W, "feat_hw": [h, w], "channels": C,
        "xyz0": grids[0][1], "xyz1": grids[1][1], "feat0": f0j, "feat1": f1j,
        "q0": q0.tolist(), "t0_mm": t0.tolist(), "q1": q1.tolist(), "t1_mm": t1.tolist(),
        "K1": K1.tolist(), "num_corr": 12, "scale": 0.25,
    }
    # P3D evaluate_navi_correspondence.py::main; Rt_01 from navi.py::__getitem__
    Rt_0 = camera_matrices_from_annotation(q0, t0)
    Rt_1 = camera_matrices_from_annotation(q1, t1)
    Rt_gt = (Rt_1 @ np.linalg.inv(Rt_0))[:3, :4]
    g0 = interpolate_nearest(grids[0][0], 0.25)
    g1 = interpolate_nearest(grids[1][0], 0.25)
    c_xyz0, c_xyz1, c_dist, i0, i1 = estimate_correspondence_xyz(f0, f1, g0, g1, 12)
    c_xyz0in1 = transform_points_Rt(c_xyz0, Rt_gt)
    err3d = np.linalg.norm(c_xyz0in1 - c_xyz1, axis=1)
    err2d = np.linalg.norm(project_3dto2d(c_xyz0in1, K1) - project_3dto2d(c_xyz1, K1), axis=1)
    rel_ang = so3_rotation_angle(Rt_gt[:3, :3]) * 180.0 / np.pi
    case.update(idx0=i0.tolist(), idx1=i1.tolist(), weight=c_dist.tolist(), err3d=err3d.tolist(),
                err2d=err2d.tolist(), rotation_deg=rel_ang)
    return case, (err3d, err2d, rel_ang)


def recall(errs, th):
    """P3D evaluate_*_correspondence.py::main: (err < th).float().mean() over the stacked pairs
    (pooled here: pairs may differ in length)."""
    e = np.concatenate(errs)
    return float((e < th).mean())


# ------------------------------------------------------------------ P3D SPair-71k
def process_keypoints(kp_dict, num_kps=None):
    """P3D evals/datasets/spair.py::SPairDataset.process_keypoints (bbox=None): int tensor."""
    num_kps = len(kp_dict) if num_kps is None else num_kps
    kps = np.zeros((num_kps, 3), dtype=np.int64)
    for i in range(num_kps):
        if kp_dict[str(i)]:
            kps[i, :2] = np.trunc(np.asarray(kp_dict[str(i)], dtype=np.float64))
            kps[i, 2] = 1
    return kps


def spair_getitem(kp_dict_i, kp_dict_j, size_i, size_j, trg_bndbox, trg_imsize, S):
    """P3D evals/datasets/spair.py::SPairDataset.__getitem__ (use_bbox=False, square=True)."""
    kps_i, kps_j = process_keypoints(kp_dict_i), process_keypoints(kp_dict_j)
    hw_i, hw_j = max(size_i), max(size_j)  # image padded to a square: PIL size[0] = max(h, w)
    l, u, r, d = trg_bndbox
    thresh_scale = float(max(r - l, d - u)) / max(trg_imsize[:2])
    kps_i[:, :2] = np.trunc(kps_i[:, :2] * S / hw_i)  # float result written into an int tensor
    kps_j[:, :2] = np.trunc(kps_j[:, :2] * S / hw_j)
    return kps_i, kps_j, thresh_scale


def compute_errors(feat_i, feat_j, kps_i, kps_j, thresh_scale, S):
    """P3D evaluate_spair_correspondence.py::compute_errors (mask_feats=False): error_same."""
    norm = lambda f: f / np.maximum(np.sqrt((f * f).sum(-1, keepdims=True)), 1e-12)
    feats_i, feats_j = norm(feat_i), norm(feat_j)
    h, w, C = feats_i.shape
    kps_i = kps_i.astype(np.float64)
    kps_j = kps_j.astype(np.float64)
    kps_i[:, :2] = kps_i[:, :2] / S
    kps_j[:, :2] = kps_j[:, :2] / S
    valid = (kps_i[:, 2] * kps_j[:, 2]) == 1  # valid_kps.diagonal() = in_both
    errors = []
    for k in np.nonzero(valid)[0]:
        gx = kps_i[k, 0] * 2 - 1
        gy = kps_i[k, 1] * 2 - 1
        f = grid_sample_bilinear(feats_i, unnormalize(gx, w, True), unnormalize(gy, h, True))
        heat = (feats_j * f).sum(-1)  # einsum "k f, f h w -> k h w"
        flat = int(np.argmax(heat.reshape(-1)))  # argmax_2d: first maximum
        pred = np.array([flat % w, flat // w], dtype=np.float64) / w  # / feats.shape[-1]
        errors.append(float(np.linalg.norm(pred - kps_j[k, :2]) / thresh_scale))
    return errors


def spair_case(rng, category, vp, n_kps, tie=False, outside=False, none_common=False, similar=False):
    S, h, w, C = 60, 10, 10, 6
    size_i = (int(rng.integers(300, 500)), int(rng.integers(300, 500)))  # (w, h)
    size_j = size_i if similar else (int(rng.integers(300, 500)), int(rng.integers(300, 500)))

    def kp_dict(size, drop):
        d = {}
        for i in range(n_kps):
            if rng.uniform() < drop:
                d[str(i)] = None
            else:
                d[str(i)] = [float(np.round(rng.uniform(0, size[0]), 1)),
                             float(np.round(rng.uniform(0, size[1]), 1))]
        return d

    kd_i, kd_j = kp_dict(size_i, 0.25), kp_dict(size_j, 0.25)
    if similar:  # the target shows the same keypoints, moved by a few pixels
        kd_j = {k: (None if v is None else [v[0] + float(rng.integers(-3, 4)), v[1] + 2.0])
                for k, v in kd_i.items()}
    if none_common:
        for i in range(n_kps):
            (kd_i if i % 2 else kd_j)[str(i)] = None
    if outside:  # a keypoint beyond the image's right edge: zero padding in grid_sample
        kd_i["0"] = [size_i[0] + 40.0, 10.0]
        kd_j["0"] = [5.0, 5.0]
    l, u = int(rng.integers(0, 50)), int(rng.integers(0, 50))
    bbox = [l, u, l + int(rng.integers(100, 250)), u + int(rng.integers(100, 250))]
    fi, fij = f32(rng.normal(size=(h, w, C)), 3)
    fj, fjj = f32(fi + rng.normal(scale=0.2, size=(h, w, C)) if similar else rng.normal(size=(h, w, C)), 3)
    if tie:  # two identical target pixels: the first in row-major order must win
        fj[4, 5] = fj[1, 2]
        fjj[4][5] = fjj[1][2]
    kps_i, kps_j, ts = spair_getitem(kd_i, kd_j, size_i, size_j, bbox, list(size_j) + [3], S)
    if tie:  # make the tied vector the best match of keypoint 1's source feature
        kd_i["1"] = [0.0, 0.0]
        kps_i[1] = [0, 0, 1]
        fi[0, 0] = fj[1, 2] * 3.0
        fij[0][0] = [short(v) for v in fi[0, 0]]
        fi = np.asarray(fij, dtype=np.float32).astype(np.float64)
        if kps_j[1, 2] == 0:
            kd_j["1"] = [1.0, 1.0]
            kps_j[1] = [int(1 * S / max(size_j)), int(1 * S / max(size_j)), 1]
    errs = compute_errors(fi, fj, kps_i, kps_j, ts, S)
    return {
        "category": category, "viewpoint_variation": vp, "image_size": S,
        "feat_hw": [h, w], "channels": C, "feat_src": fij, "feat_trg": fjj,
        "src_kps": kd_i, "trg_kps": kd_j, "src_imsize": list(size_i), "trg_imsize": list(size_j),
        "trg_bndbox": bbox, "square_src": kps_i.tolist(), "square_trg": kps_j.tolist(),
        "thresh_scale": ts, "errors": errs,
    }


def spair_main(cases, thresh=0.10):
    """P3D evaluate_spair_correspondence.py::main + evaluate_dataset: per class and vp bin
    (0, 1, 2, None=all) pooled recall; mean over classes with a value (N/A -> left out)."""
    classes = sorted({c["category"] for c in cases})
    per_class = {}
    for cls in classes:
        row = []
        for vp in (0, 1, 2, None):
            sel = [c for c in cases if c["category"] == cls and (vp is None or c["viewpoint_variation"] == vp)]
            errs = [e for c in sel for e in c["errors"]]
            row.append(float((np.array(errs) < thresh).mean()) if errs else None)
        per_class[cls] = row
    mean = []
    for b in range(4):
        vals = [per_class[c][b] for c in classes if per_class[c][b] is not None]
        mean.append(float(sum(vals) / len(vals)) if vals else None)
    return {"per_class": per_class, "mean": mean}


def main():
    rng = np.random.default_rng(20240614)
    self_check_against_torch(rng)

    sc, errs, angs = [], [], []
    for deg in (8.0, 22.0, 47.0, 9.0):
        case, res = scannet_case(rng, deg)
        sc.append(case)
        errs.append(res[0])
        angs.append(res[1])
    sc.append(scannet_case(rng, 10.0, zero_view1=True)[0])
    scannet = {
        "pairs": sc,
        "recall_px": [recall(errs, th) for th in (5, 10, 20)],
        "binned_recall_10px": compute_binned_performance(
            np.array([(e < 10).mean() for e in errs]), np.array(angs), [0, 15, 30, 60, 180]),
    }

    nv, e3, e2, na = [], [], [], []
    for deg, sparse in ((12.0, False), (70.0, False), (35.0, True)):
        case, (a, b, ang) = navi_case(rng, deg, sparse)
        nv.append(case)
        e3.append(a)
        e2.append(b)
        na.append(ang)
    navi = {
        "pairs": nv,
        "recall_m": [recall(e3, th) for th in (0.01, 0.02, 0.05)],
        "recall_px": [recall(e2, th) for th in (5, 25, 50)],
        "binned_recall_2cm": compute_binned_performance(
            np.array([(e < 0.02).mean() for e in e3]), np.array(na), [0, 30, 60, 90, 120]),
    }

    y = rng.uniform(size=40)
    x = np.concatenate([rng.uniform(0, 200, size=36), [15.0, 30.0, 180.0, 0.0]])
    binned = {"y": y.tolist(), "x": x.tolist(), "edges": [0, 15, 30, 60, 180],
              "expected": compute_binned_performance(y, x, [0, 15, 30, 60, 180]),
              "edges_sparse": [0, 1, 2, 300],
              "expected_sparse": compute_binned_performance(y, x, [0, 1, 2, 300])}

    rots = [random_rotation(rng, d) for d in (0.0, 1e-3, 33.0, 90.0, 179.9, 180.0)]
    rotation = {"matrices": [r.tolist() for r in rots],
                "degrees": [so3_rotation_angle(r) * 180.0 / np.pi for r in rots]}

    sp = [
        spair_case(rng, "cat", 0, 10, similar=True),
        spair_case(rng, "cat", 1, 10, tie=True),
        spair_case(rng, "cat", 1, 10, outside=True),
        spair_case(rng, "dog", 2, 12, similar=True),
        spair_case(rng, "dog", 2, 12, none_common=True),
        spair_case(rng, "bus", 0, 8, none_common=True),
        spair_case(rng, "bus", 1, 8, similar=True),
    ]
    spair = {"pairs": sp, "summary": spair_main(sp)}

    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {"probe3d_commit": "a1f14640076e38b8bc07b66d0fe2d01d15691e9d", "scannet": scannet,
           "navi": navi, "binned": binned, "rotation": rotation, "spair": spair}
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    print("scannet", scannet["recall_px"], scannet["binned_recall_10px"])
    print("navi", navi["recall_m"], navi["recall_px"], navi["binned_recall_2cm"])
    print("spair", spair["summary"])


if __name__ == "__main__":
    main()
