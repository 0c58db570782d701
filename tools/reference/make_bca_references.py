#!/usr/bin/env python3
"""Reference BCa bootstrap intervals for atlas_metrics::bootstrap (run from the repository root).

    pip install numpy scipy
    python3 tools/reference/make_bca_references.py

Writes crates/atlas-metrics/tests/fixtures/bca.json, read by crates/atlas-metrics/tests/bca.rs.

The replicates are the workspace's own (the pure-Python port of the bootstrap generator in
make_prng_streams.py: replicate b of n items under a seed draws the same multiplicities as the
Rust code), so both sides bootstrap the same distribution. The interval is then computed
independently:

- exact jackknife (a stratum of at most `jackknife_groups` items): by scipy itself,
  `scipy.stats.bootstrap(data, statistic, method='BCa', n_resamples=0,
  bootstrap_result=<our replicate values>)`, which computes z0 from our replicates (scipy's tie
  rule), the acceleration from its own leave-one-out jackknife, and reads the quantiles with
  `scipy.stats.quantile` (linear interpolation, as numpy). Multi-sample statistics use scipy's
  unpaired multi-sample bootstrap (each sample jackknifed on its own), which is the Rust
  stratified bootstrap.
- delete-a-group jackknife (more items than `jackknife_groups`): scipy has no grouped jackknife,
  so this is a NumPy implementation of the same formulas with the groups standing for the
  observations: the items are shuffled with the workspace generator (Fisher-Yates, stream
  seed_from_u64(stratum seed ^ JACKKNIFE_SALT)) and item at shuffled position k goes to group
  floor(k*G/n).

The skewed ECE cases are well-calibrated samples (true ECE 0) chosen so that the percentile
interval lies entirely above the point estimate: resampling inflates ECE. The BCa interval is
moved down by the measured bias (z0); the test checks that its lower end is below the estimate.
(It need not contain the estimate: with a = 0 a BCa interval contains the estimate exactly when
the estimate lies between the alpha and 1 - alpha quantiles of the replicates, the same
condition as the percentile interval's; when it lies below them, the BCa interval lies below it.)
"""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_prng_streams as P  # noqa: E402

JACKKNIFE_SALT = 0x6A09E667F3BCC909


def counts_matrix(n, seed, n_resamples):
    return np.array([P.replicate_counts(n, seed, b) for b in range(n_resamples)], dtype=np.float64)


def mean_w(values, w):
    return (w * values).sum(axis=-1) / w.sum(axis=-1)


def ece_w(conf, correct, w, n_bins=15):
    """ECE of items weighted by multiplicities w: bins (j/n_bins, (j+1)/n_bins] as the crate's
    bin_indices (an item of confidence 0 is in no bin)."""
    edges = np.arange(n_bins + 1) * (1.0 / n_bins)
    edges[n_bins] = 1.0
    bins = np.searchsorted(edges[1:], conf, side="left")
    bins = np.where((bins < n_bins) & (conf > edges[np.minimum(bins, n_bins)]), bins, -1)
    w = np.atleast_2d(w)
    total = w.sum(axis=1)
    out = np.zeros(w.shape[0])
    for k in range(n_bins):
        m = bins == k
        gap = (w[:, m] * (correct[m] - conf[m])).sum(axis=1)
        out += np.abs(gap)
    return out / total


def scipy_bca(data, statistic, replicates, level, paired):
    res = stats.bootstrap(
        data,
        statistic,
        n_resamples=0,
        bootstrap_result=SimpleNamespace(bootstrap_distribution=np.asarray(replicates)),
        method="BCa",
        confidence_level=level,
        paired=paired,
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def percentile_interval(replicates, level):
    a = (1 - level) / 2
    return [float(v) for v in np.quantile(replicates, [a, 1 - a])]


def jackknife_groups(n, max_groups, seed):
    if n <= max_groups:
        return np.arange(n)
    perm = list(range(n))
    r = P.BootRng(seed ^ JACKKNIFE_SALT)
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    group = np.zeros(n, dtype=np.int64)
    for k, item in enumerate(perm):
        group[item] = k * max_groups // n
    return group


def numpy_bca(estimate, replicates, jackknife_sets, level):
    """The BCa formulas (scipy's _bca_interval) given jackknife values per stratum."""
    b = len(replicates)
    p = (np.sum(replicates < estimate) + np.sum(replicates <= estimate)) / (2 * b)
    p = min(max(p, 0.5 / b), 1 - 0.5 / b)
    z0 = ndtri(p)
    nums, dens = 0.0, 0.0
    for theta in jackknife_sets:
        n = len(theta)
        u = (n - 1) * (theta.mean() - theta)
        nums += (u**3).sum() / n**3
        dens += (u**2).sum() / n**2
    a = nums / dens**1.5 / 6
    za = ndtri((1 - level) / 2)
    lv = []
    for z in (za, -za):
        num = z0 + z
        lv.append(ndtr(z0 + num / (1 - a * num)))
    return [float(v) for v in np.quantile(replicates, lv)]


def case_mean(rng, n, seed, n_resamples, level):
    values = np.round(rng.exponential(1.0, n) ** 2, 6)
    w = counts_matrix(n, seed, n_resamples)
    reps = mean_w(values, w)
    est = values.mean()
    lo, hi = scipy_bca((values,), lambda x, axis: x.mean(axis=axis), reps, level, False)
    return {
        "kind": "mean", "seed": seed, "n_resamples": n_resamples, "level": level,
        "values": values.tolist(), "estimate": est, "lower": lo, "upper": hi,
        "percentile": percentile_interval(reps, level),
    }


def case_strata(rng, n0, n1, seed, n_resamples, level):
    v0 = np.round(rng.gamma(0.5, 1.0, n0), 6)
    v1 = np.round(rng.normal(0.0, 1.0, n1), 6)
    w0 = counts_matrix(n0, P.stratum_seed(seed, 0), n_resamples)
    w1 = counts_matrix(n1, P.stratum_seed(seed, 1), n_resamples)
    reps = mean_w(v0, w0) - mean_w(v1, w1)
    est = v0.mean() - v1.mean()
    stat = lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis)  # noqa: E731
    lo, hi = scipy_bca((v0, v1), stat, reps, level, False)
    return {
        "kind": "strata", "seed": seed, "n_resamples": n_resamples, "level": level,
        "values0": v0.tolist(), "values1": v1.tolist(), "estimate": est, "lower": lo, "upper": hi,
    }


def calibrated(rng, n):
    conf = np.round(rng.uniform(0.3, 1.0, n), 6)
    correct = (rng.uniform(0, 1, n) < conf).astype(np.float64)
    return conf, correct


def case_ece(n, seed, n_resamples, level, search_seed):
    """A well-calibrated sample whose percentile interval lies above its ECE."""
    rng = np.random.default_rng(search_seed)
    w = counts_matrix(n, seed, n_resamples)
    for _ in range(200):
        conf, correct = calibrated(rng, n)
        est = float(ece_w(conf, correct, np.ones(n))[0])
        reps = ece_w(conf, correct, w)
        pct = percentile_interval(reps, level)
        if pct[0] > est:
            break
    else:
        raise SystemExit("no skewed ECE case found")
    idx = np.arange(n)
    stat = lambda i, axis: ece_w(conf, correct, np.stack([np.bincount(r, minlength=n) for r in np.atleast_2d(i)]))  # noqa: E731,E501
    lo, hi = scipy_bca((idx,), lambda i, axis: stat(i, axis).reshape(np.shape(i)[:-1]), reps, level, False)
    return {
        "kind": "ece", "seed": seed, "n_resamples": n_resamples, "level": level,
        "confidences": conf.tolist(), "correct": correct.tolist(), "n_bins": 15,
        "estimate": est, "lower": lo, "upper": hi, "percentile": pct,
    }


def case_grouped_ece(n, seed, n_resamples, level, groups, search_seed):
    """More items than jackknife groups: the delete-a-group path, against NumPy."""
    rng = np.random.default_rng(search_seed)
    w = counts_matrix(n, seed, n_resamples)
    for _ in range(200):
        conf, correct = calibrated(rng, n)
        est = float(ece_w(conf, correct, np.ones(n))[0])
        reps = ece_w(conf, correct, w)
        pct = percentile_interval(reps, level)
        if pct[0] > est:
            break
    else:
        raise SystemExit("no skewed grouped ECE case found")
    g = jackknife_groups(n, groups, P.stratum_seed(seed, 0))
    jw = np.ones((groups, n))
    for k in range(groups):
        jw[k, g == k] = 0
    jack = ece_w(conf, correct, jw)
    lo, hi = numpy_bca(est, reps, [jack], level)
    return {
        "kind": "grouped_ece", "seed": seed, "n_resamples": n_resamples, "level": level,
        "jackknife_groups": groups, "confidences": conf.tolist(), "correct": correct.tolist(),
        "n_bins": 15, "groups": g.tolist(), "estimate": est, "lower": lo, "upper": hi,
        "percentile": pct,
    }


def case_grouped_strata(rng, n0, n1, seed, n_resamples, level, groups):
    """Two strata, the larger one grouped, the smaller exact: NumPy formulas."""
    v0 = np.round(rng.exponential(1.0, n0), 6)
    v1 = np.round(rng.exponential(2.0, n1), 6)
    s0, s1 = P.stratum_seed(seed, 0), P.stratum_seed(seed, 1)
    reps = mean_w(v0, counts_matrix(n0, s0, n_resamples)) - mean_w(v1, counts_matrix(n1, s1, n_resamples))
    est = v0.mean() - v1.mean()
    jack = []
    for s, (v, other) in enumerate([(v0, v1.mean()), (v1, v0.mean())]):
        g = jackknife_groups(len(v), groups, P.stratum_seed(seed, s))
        ng = g.max() + 1
        vals = np.array([v[g != k].mean() for k in range(ng)])
        jack.append(vals - other if s == 0 else other - vals)
    lo, hi = numpy_bca(est, reps, jack, level)
    return {
        "kind": "grouped_strata", "seed": seed, "n_resamples": n_resamples, "level": level,
        "jackknife_groups": groups, "values0": v0.tolist(), "values1": v1.tolist(),
        "estimate": est, "lower": lo, "upper": hi,
    }


def main():
    rng = np.random.default_rng(20240611)
    out = {
        "cases": [
            case_mean(rng, 40, 3, 400, 0.95),
            case_mean(rng, 150, 11, 300, 0.9),
            case_strata(rng, 30, 25, 7, 300, 0.95),
            case_ece(180, 5, 400, 0.95, 1),
            case_grouped_ece(600, 9, 300, 0.95, 40, 2),
            case_grouped_strata(rng, 500, 40, 13, 300, 0.95, 50),
        ]
    }
    p = Path("crates/atlas-metrics/tests/fixtures/bca.json")
    p.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{p}: {p.stat().st_size} bytes")
    for c in out["cases"]:
        print(c["kind"], c["estimate"], c["lower"], c["upper"], c.get("percentile"))


if __name__ == "__main__":
    main()
