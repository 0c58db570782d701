#!/usr/bin/env python3
"""Reference values for the calibration stage's dataset protocols (run from the repository root).

    pip install numpy scipy
    python3 tools/reference/make_calibration_protocols.py

Writes crates/atlas-calibration/tests/fixtures/protocols.json: seeded synthetic embeddings of
four sets over a 12-class one-hot head (so a cosine is exactly an embedding component and the
float32 logits `scale * cos` are the same bytes here and in Rust), and what NumPy gives for:

- `val` (ID, 12 classes) and `val-calib` (the named calibration set: the temperature is fitted
  on it with the authors' bisection, `tune_temp` of Klaus-Tu/VLM_calibrate, in float64);
- `objectnet`: labels are 5 *groups* of head classes (ObjectNet's 113 groups of ImageNet
  classes); the group protocol of the shift stage: a group's logit is the **max** of its member
  classes' logits, and calibration is the softmax over the group logits (so the prediction is
  the shift stage's ObjectNet prediction, and `max(z / T) = max(z) / T`);
- `imagenet-r`: labels are positions in a 6-class subset (ImageNet-R/A's 200 classes):
  `subset_heads = true` scores the softmax over the subset's logits only (the dataset's own
  label space, as the authors build weights from each test set's class names), `false` the
  softmax over the full head with label `subset[k]` (the 1000-way option).

ECE: 15 equal-width bins, `lower < conf <= upper` (the authors' `_ECELoss`); NLL: mean
cross-entropy; Brier: mean over items of sum over classes of (p - onehot)^2; accuracy: argmax
(first index on ties) equals the label.
"""
import json
from pathlib import Path

import numpy as np
import scipy.special as sps

OUT = Path(__file__).resolve().parents[2] / "crates/atlas-calibration/tests/fixtures"
SEED = 20251205
CLASSES = 12
SCALE = np.float32(16.0)
GROUPS = [[0, 1], [2], [3, 4, 5], [7], [9, 10]]  # classes 6, 8, 11 belong to no group
SUBSET = [1, 3, 4, 8, 10, 11]
LOWER, UPPER, TOL = 0.5, 10.0, 1e-4


def authors_ece(conf, correct, n_bins=15):
    b = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(b[:-1], b[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        prop = in_bin.mean()
        if prop > 0:
            ece += abs(conf[in_bin].mean() - correct[in_bin].mean()) * prop
    return float(ece)


def ce(logits, labels, t):
    return float(np.mean(-sps.log_softmax(logits / t, axis=1)[np.arange(len(labels)), labels]))


def dce_dt(logits, labels, t):
    """d/dT of the mean cross-entropy of softmax(logits / T)."""
    p = sps.softmax(logits / t, axis=1)
    zy = logits[np.arange(len(labels)), labels]
    return float(np.mean(zy - (p * logits).sum(1)) / t**2)


def tune_temp(logits, labels, lower=LOWER, upper=UPPER, eps=TOL):
    """The authors' binary search on the sign of dCE/dT, then the best of {lower, mid, upper}."""
    while upper - lower > eps:
        mid = 0.5 * (lower + upper)
        if dce_dt(logits, labels, mid) > 0:
            upper = mid
        else:
            lower = mid
    return min([lower, 0.5 * (lower + upper), upper], key=lambda t: ce(logits, labels, t))


def metrics(logits, labels, t):
    """Accuracy, ECE, NLL, Brier of softmax(logits / T)."""
    z = logits.astype(np.float64)
    p = sps.softmax(z / t, axis=1)
    conf = p.max(1)
    correct = (z.argmax(1) == labels).astype(float)
    onehot = np.eye(z.shape[1])[labels]
    return dict(
        accuracy=float(correct.mean()),
        ece=authors_ece(conf, correct),
        nll=ce(z, labels, t),
        brier=float(np.mean(((p - onehot) ** 2).sum(1))),
    )


def scored(logits, labels, t):
    raw, scaled = metrics(logits, labels, 1.0), metrics(logits, labels, t)
    return dict(
        n=len(labels),
        accuracy=raw["accuracy"],
        ece_raw=raw["ece"], nll_raw=raw["nll"], brier_raw=raw["brier"],
        ece_scaled=scaled["ece"], nll_scaled=scaled["nll"], brier_scaled=scaled["brier"],
    )


def embeddings(rng, targets, signal):
    """Rows leaning towards head row `targets[i]` by `signal[i]`, with noise: unit length, then
    rounded to multiples of 1/1024 (exact float32 values with short decimals; the stage does not
    need exactly unit rows)."""
    x = rng.normal(0, 1, (len(targets), CLASSES))
    x[np.arange(len(targets)), targets] += signal
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (np.round(x * 1024) / 1024).astype(np.float32)


def logits_of(emb):
    """`scale * cos` in float32 against the one-hot head (cos = the embedding's components)."""
    return (SCALE * emb).astype(np.float32)


def main():
    rng = np.random.default_rng(SEED)
    sets = {}

    def plain(name, n, role):
        labels = rng.integers(0, CLASSES, n)
        emb = embeddings(rng, labels, rng.uniform(0.0, 4.0, n))
        sets[name] = dict(role=role, labels=labels.tolist(), embeddings=emb.ravel().tolist())
        return logits_of(emb), labels

    val, val_y = plain("val", 200, "id")
    cal, cal_y = plain("val-calib", 150, "id")

    # ObjectNet-style: label = group; the image leans towards one member class of its group.
    g_y = rng.integers(0, len(GROUPS), 160)
    member = np.array([GROUPS[g][rng.integers(0, len(GROUPS[g]))] for g in g_y])
    g_emb = embeddings(rng, member, rng.uniform(0.0, 4.0, len(g_y)))
    sets["objectnet"] = dict(role="shift", groups=GROUPS, labels=g_y.tolist(),
                             embeddings=g_emb.ravel().tolist())
    g_full = logits_of(g_emb)
    g_logits = np.stack([g_full[:, m].max(1) for m in GROUPS], axis=1)

    # ImageNet-R-style: label k = head row SUBSET[k].
    s_y = rng.integers(0, len(SUBSET), 120)
    s_emb = embeddings(rng, np.array(SUBSET)[s_y], rng.uniform(0.0, 4.0, len(s_y)))
    sets["imagenet-r"] = dict(role="shift", subset=SUBSET, labels=s_y.tolist(),
                              embeddings=s_emb.ravel().tolist())
    s_full = logits_of(s_emb)

    t = tune_temp(cal.astype(np.float64), cal_y)
    expected = dict(
        temperature=t,
        n_calibration=len(cal_y),
        val=scored(val, val_y, t),
        objectnet=scored(g_logits, g_y, t),
        imagenet_r_subset_heads=scored(s_full[:, SUBSET], s_y, t),
        imagenet_r_full_head=scored(s_full, np.array(SUBSET)[s_y], t),
    )
    # Sanity: the protocols differ on these inputs (a test of one cannot pass on the other).
    wrong = scored(g_full, g_y, t)  # the 1000-way head scored against group labels
    assert abs(wrong["nll_raw"] - expected["objectnet"]["nll_raw"]) > 1e-3
    assert abs(expected["imagenet_r_subset_heads"]["nll_raw"]
               - expected["imagenet_r_full_head"]["nll_raw"]) > 1e-3
    OUT.mkdir(parents=True, exist_ok=True)
    doc = dict(
        seed=SEED, classes=CLASSES, scale=float(SCALE),
        search=dict(lower=LOWER, upper=UPPER, tol=TOL),
        sets=sets, expected=expected,
    )
    with open(OUT / "protocols.json", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"wrote {OUT / 'protocols.json'}: T = {t:.6f}")


if __name__ == "__main__":
    main()
