#!/usr/bin/env python3
"""Reference values for crates/atlas-metrics (run from the repository root).

    pip install numpy scipy scikit-learn pandas tqdm imagenet-x clip_benchmark  # + CPU torch
    python3 tools/reference/make_metric_references.py

Writes crates/atlas-metrics/tests/fixtures/*.json: seeded random inputs (with ties, all-correct,
single-class and degenerate cases) and the value each reference implementation gives on them.
Rust tests compare to 1e-6 with no Python at test time.

References used
- numpy: argmax (first index on ties), stable argsort for top-k, quantile (linear).
- scipy: special.softmax / log_softmax / logsumexp / logit / expit, stats.norm, stats.linregress.
- scikit-learn: roc_auc_score, average_precision_score, log_loss, brier_score_loss, roc_curve,
  precision_recall_curve, auc.
- imagenet-x (installed package): aggregate.compute_factor_accuracies, aggregate.error_ratio.
- CLIP_benchmark (installed package): metrics.zeroshot_retrieval.recall_at_k (+ its batchify).
- RE-IMPLEMENTED here because they are not on PyPI (logic copied from the published code):
  * MCM (deeplearning-wisc/MCM, utils/detection_util.py <- Outlier Exposure): fpr_and_fdr_at_recall.
  * OpenOOD (openood/evaluators/metrics.py): auc_and_fpr_recall.
  * model-vs-human (bethgelab/model-vs-human): ImageNetProbabilitiesTo16ClassesMapping (mean over
    member classes, np.flip(np.argsort)) and plotting/analyses.py::ShapeBias (drop shape == texture,
    fractions divided by len(df), shape / (shape + texture)).
  * the authors' calibration code (Klaus-Tu/VLM_calibrate, temperature_scaling.py): ECE with 15
    equal-width bins (lower < conf <= upper) and tune_temp's bisection on the sign of dCE/dT
    (torch autograd, here in float64) until upper - lower < eps, then the best of
    {lower, mid, upper}.
"""
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.special as sps
import scipy.stats as st
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k
from imagenet_x.aggregate import compute_factor_accuracies, error_ratio
from imagenet_x.utils import FACTORS

OUT = Path(__file__).resolve().parents[2] / "crates/atlas-metrics/tests/fixtures"
SEED = 20250101


def f32(a):
    """Float32 values whose decimal form is short (multiples of 1/1024), as a float64 array."""
    return (np.round(np.asarray(a, dtype=np.float64) * 1024) / 1024).astype(np.float32)


def clean(o):
    """JSON-safe: numpy -> python, NaN -> None."""
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return clean(o.tolist())
    if isinstance(o, (np.floating, float)):
        o = float(o)
        return None if np.isnan(o) else o
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    return o


def dump(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.json", "w") as f:
        json.dump(clean(obj), f, separators=(",", ":"))


# ----------------------------------------------------------------------------- classification
def classification(rng):
    n, c = 300, 10
    x = f32(rng.normal(0, 2, (n, c)))
    x[0, :] = 1.0  # all tied
    x[1, [2, 5, 7]] = 9.0  # tie for the max
    x[2, [0, 3]] = 5.0
    labels = rng.integers(0, c - 1, n)  # class c-1 never appears -> per-class None
    labels[1] = 5  # tied with 2 (first index wins -> wrong at k=1)
    x64 = x.astype(np.float64)
    order = np.argsort(-x, axis=1, kind="stable")
    topk = {str(k): float(np.mean([labels[i] in order[i, :k] for i in range(n)])) for k in (1, 2, 3, 5, 10)}
    preds = np.argmax(x, axis=1)
    per_class = [float(np.mean(preds[labels == k] == k)) if np.any(labels == k) else None for k in range(c)]
    subset = [7, 2, 9, 4]
    sub_pred = np.argmax(x[:, subset], axis=1)
    groups = [[0, 1, 2], [3], [4, 5, 6, 7], [8, 9, 1]]
    probs = sps.softmax(x64, axis=1)
    gmax = np.argmax(np.stack([x64[:, g].max(axis=1) for g in groups], 1), axis=1)
    gmean = np.argmax(np.stack([probs[:, g].mean(axis=1) for g in groups], 1), axis=1)
    cos = f32(rng.uniform(-1, 1, (5, c)))
    scaled = np.float32(100.0) * cos + np.float32(-10.0)
    single = f32(rng.normal(0, 1, (4, 1)))
    return dict(
        n=n, c=c, logits=x.ravel(), labels=labels,
        predictions=preds, topk_accuracy=topk, per_class_accuracy=per_class,
        mean_per_class_accuracy=float(np.mean([p for p in per_class if p is not None])),
        softmax=probs[:20].ravel(), log_softmax=sps.log_softmax(x64, axis=1)[:20].ravel(),
        logsumexp=sps.logsumexp(x64, axis=1),
        subset=subset, subset_predictions=sub_pred,
        groups=groups, group_max_predictions=gmax, group_mean_softmax_predictions=gmean,
        cosines=cos.ravel(), scale=100.0, bias=-10.0, scaled_logits=scaled.ravel(),
        single_class_logits=single.ravel(),
    )


# ----------------------------------------------------------------------------- robustness
def robustness(rng):
    nb = 30
    id_acc = rng.uniform(0.3, 0.9, nb)
    ood_acc = sps.expit(0.8 * sps.logit(id_acc) - 0.7 + rng.normal(0, 0.15, nb))
    tid = rng.uniform(0.4, 0.85, 6)
    tood = sps.expit(0.8 * sps.logit(tid) - 0.5 + rng.normal(0, 0.2, 6))
    spaces = {
        "Logit": (sps.logit, sps.expit),
        "Probit": (st.norm.ppf, st.norm.cdf),
        "Linear": (lambda p: p, lambda z: z),
    }
    fits = {}
    for name, (f, finv) in spaces.items():
        r = st.linregress(f(id_acc), f(ood_acc))
        fits[name] = dict(
            slope=r.slope, intercept=r.intercept, rvalue=r.rvalue, stderr=r.stderr,
            intercept_stderr=r.intercept_stderr,
            predicted=finv(r.slope * f(tid) + r.intercept),
            effective_robustness=tood - finv(r.slope * f(tid) + r.intercept),
            residuals=f(ood_acc) - (r.slope * f(id_acc) + r.intercept),
        )
    two = st.linregress([0.1, 0.7], [0.3, -0.2])
    p = np.array([1e-12, 1e-6, 0.001, 0.02, 0.024, 0.3, 0.5, 0.77, 0.976, 0.999, 1 - 1e-9])
    return dict(
        baseline_id=id_acc, baseline_ood=ood_acc, target_id=tid, target_ood=tood, fits=fits,
        two_points=dict(x=[0.1, 0.7], y=[0.3, -0.2], slope=two.slope, intercept=two.intercept,
                        rvalue=two.rvalue, stderr=two.stderr, intercept_stderr=two.intercept_stderr),
        ppf_p=p, ppf=st.norm.ppf(p), cdf_x=np.linspace(-8, 8, 33), cdf=st.norm.cdf(np.linspace(-8, 8, 33)),
    )


# ----------------------------------------------------------------------------- factors
def factors(rng):
    n, models = 400, 10
    fa = {}
    for which in ("top", "multi"):
        if which == "top":
            flags = np.zeros((n, 16), dtype=int)
            flags[np.arange(n), rng.integers(0, 16, n)] = 1
        else:
            flags = (rng.uniform(size=(n, 16)) < 0.2).astype(int)
        flags[:, FACTORS.index("style")] = 0  # a factor with zero images -> NaN / None
        keep = rng.uniform(size=n) > 0.1  # "prototypes" filtered out before the toolkit sees them
        skill = np.linspace(0.45, 0.9, models)
        correct = rng.uniform(size=(models, n)) < (skill[:, None] - 0.15 * flags[:, :4].sum(1)[None, :])
        rows = []
        for m in range(models):
            df = pd.DataFrame(flags[keep], columns=FACTORS)
            df["model"] = f"m{m:02d}"
            df["is_correct"] = correct[m][keep]
            rows.append(df)
        all_df = pd.concat(rows, ignore_index=True)
        acc = compute_factor_accuracies(all_df, FACTORS, "is_correct")
        er = error_ratio(acc)
        # Factor-level effective robustness: baseline = first 7 models, targets = last 3.
        fer = {}
        for fname in FACTORS:
            x = acc["average"].values[:7]
            y = acc[fname].values[:7]
            if np.any(np.isnan(y)):
                fer[fname] = None
                continue
            r = st.linregress(sps.logit(x), sps.logit(y))
            tx, ty = acc["average"].values[7:], acc[fname].values[7:]
            fer[fname] = dict(slope=r.slope, intercept=r.intercept,
                              er=ty - sps.expit(r.slope * sps.logit(tx) + r.intercept))
        fa[which] = dict(
            flags=flags.ravel().astype(bool), keep=keep, correct=correct.astype(bool).tolist(),
            per_factor=acc[FACTORS].values, average=acc["average"].values,
            worst_factor=acc["worst_factor"].values, error_ratio=er[FACTORS].values,
            factor_er=fer,
        )
    return dict(factors=FACTORS, n=n, models=models, cases=fa)


# ----------------------------------------------------------------------------- shape bias
def mvh_16_class_decision(probabilities, groups):
    """model-vs-human ImageNetProbabilitiesTo16ClassesMapping with np.mean, top-1 of the
    np.flip(np.argsort(...)) ranking."""
    agg = np.transpose([np.mean(np.take(probabilities, g, axis=-1), axis=-1) for g in groups])
    return np.flip(np.argsort(agg, axis=-1), axis=-1)[:, 0]


def mvh_shape_bias(resp, shape, texture):
    """model-vs-human plotting/analyses.py::ShapeBias.analysis."""
    df = pd.DataFrame(dict(object_response=resp, correct_shape=shape, correct_texture=texture))
    df2 = df.loc[df.correct_shape != df.correct_texture]
    fcs = len(df2.loc[df2.object_response == df2.correct_shape]) / len(df)
    fct = len(df2.loc[df2.object_response == df2.correct_texture]) / len(df)
    sb = fcs / (fcs + fct) if (fcs + fct) > 0 else None
    return dict(fraction_correct_shape=fcs, fraction_correct_texture=fct, shape_bias=sb)


def shape_bias(rng):
    ncat, per, c = 16, 20, 40
    shape = np.repeat(np.arange(ncat), per)
    texture = rng.integers(0, ncat, ncat * per)
    texture[::per] = shape[::per]  # some no-conflict images
    perm = rng.permutation(c)
    sizes = rng.integers(1, 4, ncat)
    groups, at = [], 0
    for s in sizes:
        groups.append(sorted(perm[at:at + s].tolist()))
        at += s
    logits = f32(rng.normal(0, 2, (ncat * per, c)))
    for i in range(ncat * per):  # push some decisions towards shape or texture
        u = rng.uniform()
        if u < 0.35:
            logits[i, groups[shape[i]]] += 4
        elif u < 0.6:
            logits[i, groups[texture[i]]] += 4
    dec = mvh_16_class_decision(sps.softmax(logits.astype(np.float64), axis=1), groups)
    res = mvh_shape_bias(dec, shape, texture)
    per_cat = []
    for k in range(ncat):
        m = shape == k
        per_cat.append(mvh_shape_bias(dec[m], shape[m], texture[m])["shape_bias"])
    direct = f32(rng.normal(0, 1, (ncat * per, ncat)))
    ddec = np.argmax(direct, axis=1)
    return dict(
        num_categories=ncat, c=c, groups=groups, logits=logits.ravel(), shape=shape, texture=texture,
        decisions=dec, result=res, per_category_shape_bias=per_cat,
        n_conflict=int(np.sum(shape != texture)),
        direct_logits=direct.ravel(), direct_decisions=ddec, direct_result=mvh_shape_bias(ddec, shape, texture),
    )


# ----------------------------------------------------------------------------- calibration
def authors_ece(confidences, accuracies, n_bins=15):
    """_ECELoss.forward of temperature_scaling.py on given confidences / 0-1 accuracies."""
    b = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    bins = []
    for lo, hi in zip(b[:-1], b[1:]):
        in_bin = (confidences > lo) & (confidences <= hi)
        prop = in_bin.mean()
        if prop > 0:
            acc_in, conf_in = accuracies[in_bin].mean(), confidences[in_bin].mean()
            ece += abs(conf_in - acc_in) * prop
            bins.append(dict(count=int(in_bin.sum()), acc=acc_in, conf=conf_in))
        else:
            bins.append(dict(count=0, acc=None, conf=None))
    return ece, bins


def authors_tune_temp(logits, labels, lower, upper, eps):
    """tune_temp(binary_search=True) with float64 tensors."""
    logits = torch.tensor(logits, dtype=torch.float64)
    labels = torch.tensor(labels, dtype=torch.long)
    t_guess = torch.tensor([0.5 * (lower + upper)], dtype=torch.float64).requires_grad_()
    while upper - lower > eps:
        if torch.autograd.grad(F.cross_entropy(logits / t_guess, labels), t_guess)[0] > 0:
            upper = 0.5 * (lower + upper)
        else:
            lower = 0.5 * (lower + upper)
        t_guess = t_guess * 0 + 0.5 * (lower + upper)
    return min([lower, 0.5 * (lower + upper), upper],
               key=lambda x: float(F.cross_entropy(logits / x, labels)))


def calibration(rng):
    n, c = 500, 10
    labels = rng.integers(0, c, n)
    x = rng.normal(0, 1, (n, c))
    x[np.arange(n), labels] += rng.uniform(0, 3, n)
    x = f32(3.0 * x)  # over-confident
    x64 = x.astype(np.float64)
    out = dict(n=n, c=c, logits=x.ravel(), labels=labels, temps={})
    for t in (1.0, 1.7):
        p = sps.softmax(x64 / t, axis=1)
        conf, pred = p.max(1), p.argmax(1)
        e, bins = authors_ece(conf, (pred == labels).astype(float))
        nll = float(np.mean(-sps.log_softmax(x64 / t, axis=1)[np.arange(n), labels]))
        assert abs(nll - skm.log_loss(labels, p, labels=list(range(c)))) < 1e-9
        out["temps"][str(t)] = dict(
            ece=e, bins=bins, nll=nll,
            brier=skm.brier_score_loss(labels, p, labels=list(range(c))),
        )
    out["tune"] = [
        dict(lower=lo, upper=up, tol=1e-4, temperature=authors_tune_temp(x64, labels, lo, up, 1e-4))
        for lo, up in ((0.5, 10.0), (0.01, 10.0), (0.05, 0.3))
    ]
    for d in out["tune"]:
        d["nll"] = float(np.mean(-sps.log_softmax(x64 / d["temperature"], axis=1)[np.arange(n), labels]))
    # Confidences on exact bin boundaries, 0 and 1.
    b = np.linspace(0, 1, 16)
    conf = np.concatenate([b, b[1:] - 1e-3, rng.uniform(0, 1, 40)])
    acc = (rng.uniform(size=conf.size) < 0.6).astype(float)
    e, bins = authors_ece(conf, acc)
    out["boundary"] = dict(conf=conf, correct=acc.astype(bool), ece=e, bins=bins)
    # All-correct, confident.
    ac = f32(np.eye(c)[labels[:50]] * 8 + rng.normal(0, 0.1, (50, c)))
    pa = sps.softmax(ac.astype(np.float64), axis=1)
    assert np.all(pa.argmax(1) == labels[:50])
    e, _ = authors_ece(pa.max(1), np.ones(50))
    out["all_correct"] = dict(logits=ac.ravel(), labels=labels[:50], ece=e,
                              nll=skm.log_loss(labels[:50], pa, labels=list(range(c))))
    return out


# ----------------------------------------------------------------------------- OOD
def stable_cumsum(arr, rtol=1e-05, atol=1e-08):
    out = np.cumsum(arr, dtype=np.float64)
    expected = np.sum(arr, dtype=np.float64)
    if not np.allclose(out[-1], expected, rtol=rtol, atol=atol):
        raise RuntimeError("cumsum was found to be unstable")
    return out


def fpr_and_fdr_at_recall(y_true, y_score, recall_level=0.95, pos_label=None):
    """MCM utils (from Outlier Exposure), verbatim logic."""
    classes = np.unique(y_true)
    if pos_label is None and not (np.array_equal(classes, [0, 1]) or np.array_equal(classes, [-1, 1])
                                  or np.array_equal(classes, [0]) or np.array_equal(classes, [-1])
                                  or np.array_equal(classes, [1])):
        raise ValueError("Data is not binary and pos_label is not specified")
    elif pos_label is None:
        pos_label = 1.0
    y_true = y_true == pos_label
    desc_score_indices = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc_score_indices]
    y_true = y_true[desc_score_indices]
    distinct_value_indices = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct_value_indices, y_true.size - 1]
    tps = stable_cumsum(y_true)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    thresholds = y_score[threshold_idxs]
    recall = tps / tps[-1]
    last_ind = tps.searchsorted(tps[-1])
    sl = slice(last_ind, None, -1)
    recall, fps, tps, thresholds = np.r_[recall[sl], 1], np.r_[fps[sl], 0], np.r_[tps[sl], 0], thresholds[sl]
    cutoff = np.argmin(np.abs(recall - recall_level))
    return fps[cutoff] / (np.sum(np.logical_not(y_true)))


def mcm_get_measures(_pos, _neg, recall_level=0.95):
    pos = np.array(_pos[:]).reshape((-1, 1))
    neg = np.array(_neg[:]).reshape((-1, 1))
    examples = np.squeeze(np.vstack((pos, neg)))
    labels = np.zeros(len(examples), dtype=np.int32)
    labels[: len(pos)] += 1
    auroc = skm.roc_auc_score(labels, examples)
    aupr = skm.average_precision_score(labels, examples)
    fpr = fpr_and_fdr_at_recall(labels, examples, recall_level)
    aupr_out = skm.average_precision_score(1 - labels, -examples)
    return dict(auroc=auroc, aupr_in=aupr, aupr_out=aupr_out, fpr=fpr)


def openood_auc_and_fpr_recall(conf, label, tpr_th):
    """OpenOOD evaluators/metrics.py (label -1 = OOD)."""
    ood_indicator = np.zeros_like(label)
    ood_indicator[label == -1] = 1
    fpr_list, tpr_list, thresholds = skm.roc_curve(ood_indicator, -conf)
    fpr = fpr_list[np.argmax(tpr_list >= tpr_th)]
    precision_in, recall_in, _ = skm.precision_recall_curve(1 - ood_indicator, conf)
    precision_out, recall_out, _ = skm.precision_recall_curve(ood_indicator, -conf)
    auroc = skm.auc(fpr_list, tpr_list)
    aupr_in = skm.auc(recall_in, precision_in)
    aupr_out = skm.auc(recall_out, precision_out)
    return dict(auroc=auroc, aupr_in=aupr_in, aupr_out=aupr_out, fpr=fpr)


def ood(rng):
    cases = []

    def add(name, id_s, ood_s, level=0.95):
        id_s, ood_s = np.asarray(id_s, float), np.asarray(ood_s, float)
        conf = np.concatenate([id_s, ood_s])
        label = np.concatenate([np.zeros(id_s.size, int), -np.ones(ood_s.size, int)])
        cases.append(dict(name=name, id=id_s, ood=ood_s, level=level,
                          mcm=mcm_get_measures(id_s, ood_s, level),
                          openood=openood_auc_and_fpr_recall(conf, label, level)))

    add("continuous", rng.normal(1, 1, 300), rng.normal(0, 1, 200))
    add("ties_2dp", np.round(rng.normal(0.5, 0.5, 300), 1), np.round(rng.normal(0, 0.5, 250), 1))
    add("ties_level90", np.round(rng.normal(0.5, 0.5, 300), 1), np.round(rng.normal(0, 0.5, 250), 1), 0.9)
    add("integers", rng.integers(0, 4, 40), rng.integers(0, 3, 60))
    add("all_equal", np.zeros(10), np.zeros(7))
    add("separated", rng.uniform(2, 3, 20), rng.uniform(0, 1, 30))
    add("inverted", rng.uniform(0, 1, 20), rng.uniform(2, 3, 30))
    add("one_each", [0.3], [0.1])
    add("diagonal_runs", [5, 5, 4, 4, 3, 3, 2, 2, 1, 1] * 3, [5, 4, 3, 2, 1] * 4)
    # Score functions on a small logit / cosine matrix.
    n, c = 40, 10
    cos = f32(rng.uniform(-0.2, 0.4, (n, c)))
    z = f32(rng.normal(0, 3, (n, c)))
    z64, cos64 = z.astype(np.float64), cos.astype(np.float64)
    scores = dict(
        mcm_t1=sps.softmax(cos64, axis=1).max(1), mcm_t001=sps.softmax(cos64 / 0.01, axis=1).max(1),
        msp=sps.softmax(z64, axis=1).max(1), maxlogit=z64.max(1),
        energy_t1=sps.logsumexp(z64, axis=1), energy_t2=2.0 * sps.logsumexp(z64 / 2.0, axis=1),
    )
    return dict(cases=cases, c=c, cosines=cos.ravel(), logits=z.ravel(), scores=scores)


# ----------------------------------------------------------------------------- retrieval
def stable_recall(scores, positive_pairs, k):
    """Recall@k with ties broken by lower index (stable descending sort)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(positive_pairs, order, axis=1).sum(1)
    return (hits > 0).astype(float)


def retrieval(rng):
    out = []
    for name, digits in (("continuous", None), ("ties", 1)):
        n_img, caps = 12, 5
        idx = np.repeat(np.arange(n_img), caps)
        idx = idx[idx != 4]  # image 4 has no caption
        idx = np.concatenate([idx, [7, 7]])  # image 7 has 7 captions
        s = rng.normal(0, 1, (idx.size, n_img))
        s[np.arange(idx.size), idx] += 1.2
        s = f32(s if digits is None else np.round(s, digits))
        pos = np.zeros_like(s, dtype=bool)
        pos[np.arange(idx.size), idx] = True
        st_ = torch.from_numpy(s)
        pt = torch.from_numpy(pos)
        res = {}
        for k in (1, 2, 5, 10):
            t2i = (batchify(recall_at_k, st_, pt, len(st_), "cpu", k=k) > 0).float().mean().item()
            i2t = (batchify(recall_at_k, st_.T, pt.T, len(st_), "cpu", k=k) > 0).float().mean().item()
            res[str(k)] = dict(
                clip_benchmark_text_to_image=t2i, clip_benchmark_image_to_text=i2t,
                stable_text_to_image=stable_recall(s, pos, k).mean(),
                stable_image_to_text=stable_recall(s.T, pos.T, k).mean(),
            )
        out.append(dict(name=name, n_images=n_img, scores=s.ravel(), texts_image_index=idx, recall=res))
    return out


def bootstrap(rng):
    v = rng.normal(0, 1, 37)
    s = np.sort(v)
    qs = [0.0, 0.025, 0.1, 0.5, 0.975, 1.0]
    return dict(sorted=s, q=qs, quantile=[float(np.quantile(s, q)) for q in qs])


def main():
    rng = np.random.default_rng(SEED)
    dump("classification", classification(rng))
    dump("robustness", robustness(rng))
    dump("factors", factors(rng))
    dump("shape_bias", shape_bias(rng))
    dump("calibration", calibration(rng))
    dump("ood", ood(rng))
    dump("retrieval", retrieval(rng))
    dump("bootstrap", bootstrap(rng))
    for p in sorted(OUT.glob("*.json")):
        print(f"{p.name}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
