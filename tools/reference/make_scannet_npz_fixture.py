#!/usr/bin/env python3
"""Tiny ScanNet-pairs archives in the real NumPy formats for atlas-data's adapter test.

    /work/venv-ref/bin/python tools/reference/make_scannet_npz_fixture.py   # repo root

Writes crates/atlas-data/tests/fixtures/scannet_pairs/:
- test.npz (np.savez, stored members): "name" = int64 N x 4 (room, seq, frame_0, frame_1), the
  layout of LoFTR's assets/scannet_test_1500/test.npz that Probe3D's ScanNetPairsDataset reads;
- intrinsics.npz (np.savez_compressed, deflated members): one float64 3 x 3 K per scene id.
"""
from pathlib import Path

import numpy as np

OUT = Path("crates/atlas-data/tests/fixtures/scannet_pairs")
OUT.mkdir(parents=True, exist_ok=True)
name = np.array([[707, 0, 15, 585], [707, 0, 45, 1020], [708, 1, 0, 90]], dtype=np.int64)
np.savez(OUT / "test.npz", name=name)
K = {
    "scene0707_00": np.array([[1165.7, 0.0, 649.1], [0.0, 1165.7, 484.7], [0.0, 0.0, 1.0]]),
    "scene0708_01": np.array([[1170.2, 0.0, 647.8], [0.0, 1170.2, 483.9], [0.0, 0.0, 1.0]]),
}
np.savez_compressed(OUT / "intrinsics.npz", **K)
print("wrote", sorted(p.name for p in OUT.iterdir()))
