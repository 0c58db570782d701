#!/usr/bin/env python3
"""Reference effective-robustness fits with published baselines (run from the repository root).

    pip install numpy scipy
    python3 tools/reference/make_shift_published_references.py

Writes, for crates/atlas-shift/tests/published.rs:
- crates/atlas-shift/tests/fixtures/testbed_sample.csv: a small table in imagenet-testbed's own
  layout (`robustness_top1s.csv` of modestyachts/imagenet-testbed: `model`, then one column per
  evaluation setting, top-1 in percent, empty cells for settings a model was not run on). The
  numbers are synthetic (a noisy line in logit space), not the testbed's.
- crates/atlas-shift/tests/fixtures/shift_published.json: the models evaluated "in the run"
  (their accuracies), and per scenario the expected fits (scipy.stats.linregress in logit space,
  as imagenet-testbed's plotter), predictions, effective robustness and published points.

The mapping from our dataset names to the testbed's evaluation settings is the one documented
in atlas_stagekit::published::default_published_names: imagenet -> val, imagenet-v2 ->
imagenetv2-matched-frequency-format-val, imagenet-r -> imagenet-r, objectnet ->
objectnet-1.0-beta; the class-restricted x axes keep their names (val-on-imagenet-r-classes,
val-on-objectnet-classes).

Scenarios:
- "subset_x": the default. Class-restricted shifts are fitted on val-on-<shift>-classes for every
  point; a published model without that value is left out (counted, listed with in_fit false).
- "full_id_x": published_full_id_x = true. Class-restricted shifts are fitted on the full ID
  accuracy (val) for every point, evaluated models included: no mixing of the two x axes.
"""
import csv
import io
import json
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.special import expit, logit

OUT = Path("crates/atlas-shift/tests/fixtures")
COLUMNS = [
    "imagenet-r",
    "imagenet-sketch",
    "imagenetv2-matched-frequency-format-val",
    "objectnet-1.0-beta",
    "val",
    "val-on-imagenet-r-classes",
    "val-on-objectnet-classes",
]
# Our dataset -> testbed column (the documented default mapping).
NAME = {
    "imagenet": "val",
    "imagenet-v2": "imagenetv2-matched-frequency-format-val",
    "imagenet-r": "imagenet-r",
    "objectnet": "objectnet-1.0-beta",
    "val-on-imagenet-r-classes": "val-on-imagenet-r-classes",
    "val-on-objectnet-classes": "val-on-objectnet-classes",
}
# shift -> (restricted, our x-axis name when restricted)
SHIFTS = {
    "imagenet-v2": (False, None),
    "imagenet-r": (True, "val-on-imagenet-r-classes"),
    "objectnet": (True, "val-on-objectnet-classes"),
}


def synth_table(rng):
    """Published models: val, subset vals, shifted accuracies on noisy logit lines (percent)."""
    models = [f"tb-model-{i}" for i in range(8)] + ["clip-evaluated"]
    rows = []
    for i, m in enumerate(models):
        v = 0.55 + 0.04 * i + rng.normal(0, 0.01)
        z = logit(v)
        row = {
            "model": m,
            "val": v,
            "val-on-imagenet-r-classes": expit(z + 0.4 + rng.normal(0, 0.05)),
            "val-on-objectnet-classes": expit(z + 0.3 + rng.normal(0, 0.05)),
            "imagenetv2-matched-frequency-format-val": expit(0.95 * z - 0.45 + rng.normal(0, 0.03)),
            "imagenet-sketch": expit(1.1 * z - 1.4 + rng.normal(0, 0.05)),
        }
        row["imagenet-r"] = expit(0.9 * logit(row["val-on-imagenet-r-classes"]) - 1.0 + rng.normal(0, 0.05))
        row["objectnet-1.0-beta"] = expit(1.2 * logit(row["val-on-objectnet-classes"]) - 1.5 + rng.normal(0, 0.05))
        rows.append(row)
    # Gaps as in the real table: one model never ran the ImageNet-R subset of val, one never ran
    # ObjectNet at all.
    del rows[2]["val-on-imagenet-r-classes"]
    del rows[5]["objectnet-1.0-beta"]
    del rows[5]["val-on-objectnet-classes"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model"] + COLUMNS)
    table = {}
    for r in rows:
        cells = []
        for c in COLUMNS:
            if c in r:
                pct = round(float(100 * r[c]), 10)
                cells.append(repr(pct))
            else:
                cells.append("")
        w.writerow([r["model"]] + cells)
        # What the parser reads: percent / 100.
        table[r["model"]] = {c: float(cell) / 100 for c, cell in zip(COLUMNS, cells) if cell}
    return buf.getvalue(), table


def evaluated_models(rng):
    out = []
    for i, (name, base) in enumerate([("rn50", 0.62), ("vit-b16", 0.71), ("clip-evaluated", 0.68),
                                       ("clip-l14", 0.75)]):
        full = round(base + rng.normal(0, 0.005), 6)
        shifts = {}
        for s, (restricted, _) in SHIFTS.items():
            x = round(float(expit(logit(full) + (0.35 if restricted else 0.0))), 6)
            y = round(float(expit(0.9 * logit(x) - 0.8 + (0.6 if name.startswith("clip") else 0))), 6)
            shifts[s] = {"x": x, "y": y}
        out.append({"model": name, "baseline": not name.startswith("clip"), "id": full,
                    "shifts": shifts})
    return out


def scenario(models, table, full_id_x):
    evaluated = {m["model"] for m in models}
    fits, rows, points = {}, [], []
    for shift, (restricted, subset_x) in SHIFTS.items():
        use_full = restricted and full_id_x
        x_axis = "imagenet" if (not restricted or use_full) else subset_x

        def x_of(m):
            return m["id"] if use_full else m["shifts"][shift]["x"]

        bx = [x_of(m) for m in models if m["baseline"]]
        by = [m["shifts"][shift]["y"] for m in models if m["baseline"]]
        n_pub = n_excl = 0
        for pm, vals in sorted(table.items()):
            if NAME[shift] not in vals:
                continue
            x = vals.get(NAME[x_axis])
            y = vals[NAME[shift]]
            in_fit = pm not in evaluated and x is not None
            if pm not in evaluated and x is None:
                n_excl += 1
            if in_fit:
                bx.append(x)
                by.append(y)
                n_pub += 1
            points.append({"model": pm, "dataset": shift, "x_axis": x_axis, "acc_id": x,
                           "acc_ood": y, "in_fit": in_fit})
        r = stats.linregress(logit(np.array(bx)), logit(np.array(by)))
        fits[shift] = {"x_axis": x_axis, "slope": r.slope, "intercept": r.intercept,
                       "rvalue": r.rvalue, "n_baseline_published": n_pub,
                       "n_published_excluded": n_excl, "n_baseline": len(bx)}
        for m in models:
            x, y = x_of(m), m["shifts"][shift]["y"]
            pred = float(expit(r.slope * logit(x) + r.intercept))
            rows.append({"model": m["model"], "dataset": shift, "x_axis": x_axis, "acc_id": x,
                         "predicted": pred, "effective_robustness": y - pred})
    return {"published_full_id_x": full_id_x, "fits": fits, "rows": rows, "points": points}


def main():
    rng = np.random.default_rng(7)
    text, table = synth_table(rng)
    models = evaluated_models(rng)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "testbed_sample.csv").write_text(text)
    out = {
        "id_dataset": "imagenet",
        "models": models,
        "scenarios": [scenario(models, table, False), scenario(models, table, True)],
    }
    p = OUT / "shift_published.json"
    p.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{p}: {p.stat().st_size} bytes")
    for s in out["scenarios"]:
        for k, f in s["fits"].items():
            print(s["published_full_id_x"], k, f)


if __name__ == "__main__":
    main()
