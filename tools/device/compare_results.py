#!/usr/bin/env python3
"""Compare two `results/` folders of the same config run on two devices or precisions (issue 13:
"the default pipeline's tables on CUDA f32 equal the CPU run's within one image per cell").

Usage: compare_results.py CPU_RESULTS OTHER_RESULTS [--max-images N]

For `zeroshot_predictions.parquet` it counts, per (model, dataset, prompts) cell, the items whose
top-1 prediction differs; for every other table, the largest absolute difference per numeric
column. Prints one line per table and exits 1 when a cell differs by more than N images (default
1). Needs pyarrow (and pandas).
"""
import argparse
import os
import sys

import pyarrow.parquet as pq


def numeric(col) -> bool:
    return str(col.dtype) in ("float64", "float32", "int64", "int32", "uint64", "uint32", "int16", "int8", "uint8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("other")
    ap.add_argument("--max-images", type=int, default=1)
    a = ap.parse_args()
    worst = 0
    names = sorted(f for f in os.listdir(a.reference) if f.endswith(".parquet"))
    for name in names:
        other = os.path.join(a.other, name)
        if not os.path.exists(other):
            print(f"{name:36} missing in {a.other}")
            worst = max(worst, 10**9)
            continue
        x = pq.read_table(os.path.join(a.reference, name)).to_pandas()
        y = pq.read_table(other).to_pandas()
        if name == "zeroshot_predictions.parquet":
            keys = ["model", "dataset", "prompts", "item_id"]
            m = x.merge(y, on=keys, suffixes=("_a", "_b"))
            m["differs"] = m["prediction_a"] != m["prediction_b"]
            per_cell = m.groupby(["model", "dataset", "prompts"])["differs"].sum()
            cells = int((per_cell > 0).sum())
            most = int(per_cell.max()) if len(per_cell) else 0
            worst = max(worst, most)
            print(f"{name:36} {len(m)} items in {len(per_cell)} cells; top-1 differs in "
                  f"{int(m['differs'].sum())} items, {cells} cells; at most {most} per cell")
            continue
        if x.shape != y.shape:
            print(f"{name:36} shape {x.shape} vs {y.shape}")
            continue
        diffs = []
        for c in x.columns:
            if numeric(x[c]) and numeric(y[c]):
                d = (x[c].astype(float) - y[c].astype(float)).abs().max()
                if d == d and d > 0:
                    diffs.append(f"{c}={d:.3g}")
        print(f"{name:36} {'identical' if not diffs else 'max |diff| ' + ', '.join(diffs[:5])}")
    print(f"largest per-cell top-1 difference: {worst} (allowed {a.max_images})")
    return 0 if worst <= a.max_images else 1


if __name__ == "__main__":
    sys.exit(main())
