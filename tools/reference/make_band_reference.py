#!/usr/bin/env python3
"""Reference for the effective-robustness line's confidence band (run from the repository root).

    pip install numpy statsmodels
    python3 tools/reference/make_band_reference.py

Writes crates/atlas-metrics/tests/fixtures/band.json: seeded baseline points (logit-space x, y)
and, at a grid of x, the standard error of the fitted mean response from statsmodels
(`OLS(y, add_constant(x)).fit().get_prediction(exog).se_mean`). The Rust test fits the same
points with `linregress` and checks `LinearFit::mean_response_stderr(mean(x), x)` against it:
the band is computed from a fit table's stderr / intercept_stderr and the fitted points' mean x
only, and statsmodels computes it from the raw points.
"""
import json
from pathlib import Path

import numpy as np
import statsmodels.api as sm

OUT = Path("crates/atlas-metrics/tests/fixtures/band.json")


def case(rng, n, spread):
    x = rng.normal(0.3, spread, n)
    y = 0.8 * x - 0.4 + rng.normal(0.0, 0.15, n)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    grid = np.linspace(x.min() - 1.0, x.max() + 1.0, 9)
    pred = fit.get_prediction(sm.add_constant(grid, has_constant="add"))
    return {
        "n": n,
        "x": x.tolist(),
        "y": y.tolist(),
        "grid": grid.tolist(),
        "mean": pred.predicted_mean.tolist(),
        "se_mean": pred.se_mean.tolist(),
    }


def main():
    rng = np.random.default_rng(16)
    cases = [case(rng, n, s) for n, s in [(3, 0.5), (7, 1.0), (30, 0.4), (84, 1.5)]]
    OUT.write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
