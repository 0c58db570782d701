#!/usr/bin/env python3
"""Reference values for the shape-bias stage's model-vs-human protocol and shape-only sets (run
from the repository root; reads the shared cue-conflict data).

    pip install numpy scipy
    python3 tools/reference/make_shapebias_protocols.py   # CLIP_ATLAS_SHARED=... if not ../shared

Writes crates/atlas-shapebias/tests/fixtures/model_vs_human.json: real item ids (a seeded sample
of the cue-conflict stimuli, the edges and the filled silhouettes of model-vs-human, file names
as released) with sparse synthetic embeddings over a 1000-class one-hot head (so a cosine is an
embedding component and the float32 logits `scale * cos` are the same bytes here and in Rust),
and what model-vs-human's rule gives on them:

- decision (model-vs-human `ImageNetProbabilitiesTo16ClassesMapping`): softmax of the 1000
  logits, the **mean** probability over each category's ImageNet classes
  (`16class_imagenet_mapping.json`), argmax;
- shape bias (`plotting/analyses.py::ShapeBias`): drop shape == texture; shape hits / (shape +
  texture hits);
- shape-only sets (edges, filled silhouettes): the fraction decided as the shape category (the
  folder name).

Twice: at logit scale 100 (model-vs-human's CLIP wrapper, the stage's `protocol =
"model-vs-human"`) and at 4 (a stand-in for a checkpoint's own scale). The embeddings put a spike
on one member class of one category and a plateau on every member class of another, so the mean
rule picks the spike at scale 100 and the plateau at scale 4: the two protocols disagree.
"""
import json
import os
from pathlib import Path

import numpy as np
import scipy.special as sps

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/atlas-shapebias/tests/fixtures"
SHARED = Path(os.environ.get("CLIP_ATLAS_SHARED", ROOT.parent / "shared"))
CUE = SHARED / "data/cue-conflict"
SEED = 20251206
SCALES = {"model-vs-human": 100.0, "checkpoint": 4.0}


def listing(folder):
    return sorted(f"{d.name}/{f.name}" for d in (CUE / folder).iterdir() if d.is_dir()
                  for f in d.iterdir())


def parse(item):
    """(shape, texture or None) of `<shape>/<shape>N-<texture>M.png` / `<shape>/<shape>N.png`."""
    folder, file = item.split("/")
    stem = file.rsplit(".", 1)[0]
    texture = stem.rsplit("-", 1)[1].rstrip("0123456789") if "-" in stem else None
    return folder, texture


def decisions(x, groups, scale):
    """model-vs-human's 16-class decision on float32 logits `scale * x`, with the margin between
    the best and second-best category (to keep clear of float ties)."""
    logits = (np.float32(scale) * x).astype(np.float32).astype(np.float64)
    p = sps.softmax(logits, axis=1)
    mean = np.stack([p[:, g].mean(1) for g in groups], axis=1)
    order = np.flip(np.argsort(mean, axis=1), axis=1)
    top = np.take_along_axis(mean, order[:, :2], axis=1)
    return order[:, 0], (top[:, 0] - top[:, 1]) / top[:, 0]


def embed(rng, cats, items, groups):
    """Sparse rows: a spike on one member of one category, a plateau on every member of another
    (each chosen among the item's shape, its texture and a random category), light noise."""
    rows = []
    for item in items:
        shape, texture = parse(item)
        pool = [cats.index(shape)] + ([cats.index(texture)] if texture else [])
        pool.append(int(rng.integers(0, len(cats))))
        spike, plateau = rng.choice(len(pool), 2, replace=False)
        spike, plateau = pool[spike], pool[plateau]
        if spike == plateau:
            plateau = (plateau + 1) % len(cats)
        row = {}
        for c in rng.choice(1000, 12, replace=False):
            row[int(c)] = float(rng.normal(0, 0.01))
        for c in groups[plateau]:
            row[int(c)] = 0.25 + float(rng.normal(0, 0.005))
        row[int(rng.choice(groups[spike]))] = 0.30 + float(rng.normal(0, 0.005))
        rows.append({k: round(v * 4096) / 4096 for k, v in row.items()})
    return rows


def dense(rows):
    x = np.zeros((len(rows), 1000), dtype=np.float32)
    for i, r in enumerate(rows):
        for k, v in r.items():
            x[i, k] = v
    return x


def main():
    mapping = json.loads((CUE / "16class_imagenet_mapping.json").read_text())
    cats = mapping["categories"]
    groups = [mapping["mapping"][c]["imagenet_indices"] for c in cats]
    rng = np.random.default_rng(SEED)
    cue_all = listing("stimuli")
    same = [i for i in cue_all if parse(i)[0] == parse(i)[1]]
    cue = sorted(set(rng.choice(cue_all, 60, replace=False).tolist()) | set(same[:4]))
    sets = {
        "cue-conflict": cue,
        "edges": sorted(rng.choice(listing("edges"), 24, replace=False).tolist()),
        "filled-silhouettes": sorted(
            rng.choice(listing("filled-silhouettes"), 24, replace=False).tolist()),
    }
    doc = dict(seed=SEED, categories=cats, groups=groups, sets={}, expected={})
    xs = {}
    for name, items in sets.items():
        for _ in range(100):  # redraw until every decision is clear of a float tie
            rows = embed(rng, cats, items, groups)
            x = dense(rows)
            if all(decisions(x, groups, s)[1].min() > 1e-4 for s in SCALES.values()):
                break
        else:
            raise SystemExit(f"{name}: no tie-free draw")
        xs[name] = x
        doc["sets"][name] = dict(
            ids=items,
            sparse=[sorted([k, v] for k, v in r.items()) for r in rows],
        )
    for proto, scale in SCALES.items():
        d, _ = decisions(xs["cue-conflict"], groups, scale)
        shape = np.array([cats.index(parse(i)[0]) for i in cue])
        texture = np.array([cats.index(parse(i)[1]) for i in cue])
        keep = shape != texture
        sh = int((d[keep] == shape[keep]).sum())
        tx = int((d[keep] == texture[keep]).sum())
        exp = dict(logit_scale=scale, n_total=len(cue), n_excluded=int((~keep).sum()),
                   n_conflict=int(keep.sum()), shape_hits=sh, texture_hits=tx,
                   shape_bias=sh / (sh + tx), decisions=d.tolist(), shape_only={})
        for name in ("edges", "filled-silhouettes"):
            ds, _ = decisions(xs[name], groups, scale)
            truth = np.array([cats.index(parse(i)[0]) for i in sets[name]])
            exp["shape_only"][name] = dict(n=len(truth), accuracy=float((ds == truth).mean()))
        doc["expected"][proto] = exp
    a, b = doc["expected"]["model-vs-human"], doc["expected"]["checkpoint"]
    assert a["shape_bias"] != b["shape_bias"], "the scales must give different shape biases"
    for name in ("edges", "filled-silhouettes"):
        assert a["shape_only"][name]["accuracy"] != b["shape_only"][name]["accuracy"], name
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "model_vs_human.json", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {OUT / 'model_vs_human.json'}:",
          {k: (v["shape_bias"], {n: s["accuracy"] for n, s in v["shape_only"].items()})
           for k, v in doc["expected"].items()})


if __name__ == "__main__":
    main()
