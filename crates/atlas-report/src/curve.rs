//! Lines of a scatter panel: a baseline fit (with its pointwise 95% band) or the mean of
//! several fits (the averaged panel), evaluated at any x.

use atlas_metrics::robustness::{FitSpace, LinearFit, norm_ppf};

/// One baseline line of a panel: `f(y) = slope·f(x) + intercept`.
#[derive(Debug, Clone)]
pub struct FitDraw {
    pub label: String,
    pub space: FitSpace,
    pub fit: LinearFit,
    /// Mean of the fitted points' x in fit space, when every fitted point is known (band).
    pub x_mean: Option<f64>,
}

impl FitDraw {
    /// `(y, band low, band high)` at data value `x` (band: pointwise 95%, normal quantile).
    pub fn at(&self, x: f64) -> Option<(f64, Option<(f64, f64)>)> {
        let t = self.space.forward(x).ok()?;
        let z = self.fit.slope * t + self.fit.intercept;
        let band = self.x_mean.map(|m| {
            let h = norm_ppf(0.975) * self.fit.mean_response_stderr(m, t);
            (self.space.inverse(z - h), self.space.inverse(z + h))
        });
        Some((self.space.inverse(z), band))
    }
}

/// A line of a panel: one fit, or the mean of several (the averaged panel).
#[derive(Debug, Clone)]
pub enum Curve {
    Fit(FitDraw),
    Mean(String, Vec<FitDraw>),
}

impl Curve {
    pub fn label(&self) -> &str {
        match self {
            Curve::Fit(f) => &f.label,
            Curve::Mean(l, _) => l,
        }
    }

    pub fn at(&self, x: f64) -> Option<(f64, Option<(f64, f64)>)> {
        match self {
            Curve::Fit(f) => f.at(x),
            Curve::Mean(_, fs) => {
                let ys: Option<Vec<f64>> = fs.iter().map(|f| f.at(x).map(|p| p.0)).collect();
                let ys = ys?;
                Some((ys.iter().sum::<f64>() / ys.len() as f64, None))
            }
        }
    }
}
