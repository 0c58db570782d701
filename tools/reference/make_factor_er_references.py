#!/usr/bin/env python3
"""Reference factor-level effective robustness (run from the repository root).

    pip install numpy scipy
    python3 tools/reference/make_factor_er_references.py

Writes, for crates/atlas-factors/tests/factor_er.rs:
- crates/atlas-factors/tests/fixtures/factor_published.csv: published factor accuracies in the
  long layout (model, dataset, factor, accuracy, count; factor `all` = accuracy over every
  annotated item), synthetic numbers.
- crates/atlas-factors/tests/fixtures/factor_er.json: the run's models (per-factor counts and
  correct counts on one factor table) and, per (space, boundary) scenario, the expected fits and
  rows.

The computation, independent of the Rust code:
- per factor f, baseline points (x, y) = (accuracy over all annotated items, accuracy on items
  with f) of every baseline model, then of every published model not evaluated in the run whose
  table has both `all` and f for the dataset;
- an accuracy p of n items with no finite transform (p = 0 or 1 in logit / probit space):
  boundary "clip" -> min(max(p, 0.5/n), 1 - 0.5/n) (dropped when n is unknown), "drop" -> the
  point is left out;
- scipy.stats.linregress on the transformed points (logit = scipy.special.logit, probit =
  scipy.special.ndtri, linear = identity);
- every model's row: predicted = f^-1(slope * f(x) + intercept) with x bounded the same way,
  ER = (unaltered) factor accuracy - predicted.
"""
import csv
import io
import json
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.special import expit, logit, ndtr, ndtri

OUT = Path("crates/atlas-factors/tests/fixtures")
FACTORS = ["pose", "color", "texture", "shape"]
COUNTS = [40, 25, 10, 6]
N_IMAGES = 200
DATASET = "imagenet-x"

# (model, baseline, correct per factor, correct overall)
MODELS = [
    ("rn18", True, [18, 15, 7, 0], 110),
    ("rn50", True, [24, 17, 8, 3], 130),
    ("vit-s", True, [27, 19, 9, 6], 142),
    ("vit-b", True, [30, 21, 10, 6], 155),
    ("convnext", True, [33, 23, 10, 5], 168),
    ("clip-b32", False, [26, 22, 10, 6], 140),
    ("clip-l14", False, [35, 24, 9, 6], 176),
]

# Published rows: (model, dataset, factor, accuracy, count or None)
def published_rows():
    rows = []
    for m, acc, per in [
        ("pub-a", 0.60, [0.52, 0.62, 0.70, 0.50]),
        ("pub-b", 0.70, [0.61, 0.72, 1.00, 0.66]),
        ("pub-c", 0.80, [0.72, 0.86, 0.90, 1.00]),
    ]:
        rows.append((m, DATASET, "all", acc, 50000))
        for f, c, a in zip(FACTORS, [4000, 2500, 1000, 600], per):
            # pub-c's shape accuracy of 1 comes without a count: it cannot be clipped.
            count = None if (m == "pub-c" and f == "shape") else c
            rows.append((m, DATASET, f, a, count))
    # Another dataset (ignored) and a model evaluated in the run (its own numbers are used).
    rows.append(("pub-a", "other-set", "all", 0.3, 100))
    rows.append(("pub-a", "other-set", "pose", 0.2, 10))
    rows.append(("clip-b32", DATASET, "all", 0.1, 100))
    rows.append(("clip-b32", DATASET, "pose", 0.1, 100))
    return rows


def transform(space):
    return {
        "Logit": (logit, expit),
        "Probit": (ndtri, ndtr),
        "Linear": (lambda p: p, lambda z: z),
    }[space]


def bound(p, n, space, boundary):
    """(value, clipped) or None (dropped)."""
    if space == "Linear" or 0 < p < 1:
        return p, False
    if boundary == "clip" and n:
        e = 0.5 / n
        return min(max(p, e), 1 - e), True
    return None


def scenario(space, boundary, pub):
    fwd, inv = transform(space)
    evaluated = {m[0] for m in MODELS}
    fits, rows = [], []
    for f, name in enumerate(FACTORS):
        raw = [(c_all / N_IMAGES, N_IMAGES, cs[f] / COUNTS[f], COUNTS[f])
               for _, base, cs, c_all in MODELS if base]
        n_own = len(raw)
        for m in sorted({r[0] for r in pub if r[1] == DATASET and r[0] not in evaluated}):
            get = {r[2]: r for r in pub if r[0] == m and r[1] == DATASET}
            if "all" in get and name in get:
                raw.append((get["all"][3], get["all"][4], get[name][3], get[name][4]))
        bx, by = [], []
        n_pub = n_clip = n_drop = 0
        for i, (x, nx, y, ny) in enumerate(raw):
            bxv, byv = bound(x, nx, space, boundary), bound(y, ny, space, boundary)
            if bxv is None or byv is None:
                n_drop += 1
                continue
            bx.append(bxv[0])
            by.append(byv[0])
            n_clip += int(bxv[1] or byv[1])
            n_pub += int(i >= n_own)
        r = stats.linregress(fwd(np.array(bx)), fwd(np.array(by)))
        fits.append({"factor": name, "slope": r.slope, "intercept": r.intercept,
                     "n_baseline": len(bx), "n_baseline_published": n_pub, "n_clipped": n_clip,
                     "n_dropped": n_drop})
        for m, base, cs, c_all in MODELS:
            x, y = c_all / N_IMAGES, cs[f] / COUNTS[f]
            xb = bound(x, N_IMAGES, space, boundary)
            pred = float(inv(r.slope * fwd(xb[0]) + r.intercept))
            rows.append({"model": m, "factor": name, "predicted": pred,
                         "effective_robustness": y - pred})
    return {"space": space, "boundary": boundary, "fits": fits, "rows": rows}


def main():
    pub = published_rows()
    OUT.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "dataset", "factor", "accuracy", "count"])
    for m, d, f, a, c in pub:
        w.writerow([m, d, f, repr(a), "" if c is None else c])
    (OUT / "factor_published.csv").write_text(buf.getvalue())
    models = [{"model": m, "baseline": b, "correct": cs, "correct_all": c_all}
              for m, b, cs, c_all in MODELS]
    out = {
        "dataset": DATASET,
        "factors": FACTORS,
        "counts": COUNTS,
        "n_images": N_IMAGES,
        "models": models,
        "scenarios": [scenario(s, b, pub) for s, b in
                      [("Logit", "clip"), ("Probit", "clip"), ("Logit", "drop"),
                       ("Linear", "clip")]],
    }
    p = OUT / "factor_er.json"
    p.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{p}: {p.stat().st_size} bytes")
    for s in out["scenarios"]:
        for f in s["fits"]:
            print(s["space"], s["boundary"], f)


if __name__ == "__main__":
    main()
