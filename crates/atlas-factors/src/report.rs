//! The factor stages' parts of the report: error ratios per visual factor, and factor-level
//! effective robustness.

use atlas_stagekit::report::{
    Axis, Column, Figure, Filter, FitLine, Measure, Plot, Reduce, Reference, Scale, Scatter,
    Section, Source, Strip,
};

/// `factors`: ImageNet-X error ratios.
pub fn factor_sections() -> Vec<Section> {
    vec![Section {
        id: "factors",
        title: "Visual factors: error ratio",
        about: "ImageNet-X error ratio per visual factor: the error on items showing the factor \
                over the error on all annotated items (> 1: the factor hurts).",
        tables: vec!["factors"],
        columns: vec![
            Column::new(
                "factors",
                Measure::num("error_ratio", "", 2).ci("error_ratio_lower", "error_ratio_upper"),
            )
            .filter(Filter::Ne("factor", "all"))
            .split_by("factor"),
        ],
        figures: vec![Figure {
            id: "factor-error-ratio",
            title: "Error ratio per factor",
            caption: "One dot per model and prompt set and factor.",
            plot: Plot::Strip(Strip {
                table: "factors",
                filter: vec![Filter::Ne("factor", "all")],
                panels: vec!["dataset"],
                category: "factor",
                value: Measure::num("error_ratio", "error ratio", 2)
                    .ci("error_ratio_lower", "error_ratio_upper"),
                scale: Scale::Linear,
                reference: Some(Reference::Value(1.0, "no effect")),
            }),
        }],
    }]
}

/// `factor_er`: factor-level effective robustness.
pub fn factor_er_sections() -> Vec<Section> {
    vec![Section {
        id: "factor-er",
        title: "Factor-level effective robustness",
        about: "Accuracy on items showing a factor vs accuracy over all annotated items, on logit \
                axes, one panel per factor, with the baseline models' line and band.",
        tables: vec!["factor_robustness", "factor_fits"],
        columns: vec![
            Column::new(
                "factor_robustness",
                Measure::pct("effective_robustness", "mean factor ER"),
            )
            .reduce(Reduce::Mean),
        ],
        figures: vec![Figure {
            id: "er-factors",
            title: "Factor-level effective robustness",
            caption: "x: accuracy over all factor-annotated items (acc_average), y: accuracy on \
                      the factor's items (acc_factor); outlined dots are baseline models.",
            plot: Plot::Scatter(Box::new(Scatter {
                table: "factor_robustness",
                filter: Vec::new(),
                panels: vec!["dataset", "factor"],
                x: Axis::new(
                    Source::Column(Measure::pct("acc_average", "accuracy, all items")),
                    Scale::Logit,
                ),
                y: vec![Axis::new(
                    Source::Column(Measure::pct("acc_factor", "accuracy with the factor")),
                    Scale::Logit,
                )],
                diagonal: true,
                fit: Some(FitLine {
                    table: "factor_fits",
                    key: vec!["dataset", "factor", "prompts"],
                    slope: "slope",
                    intercept: "intercept",
                    slope_se: "stderr",
                    intercept_se: "intercept_stderr",
                    space: "space",
                    n_points: "n_baseline",
                    fitted: "baseline",
                    published: None,
                }),
                mean_panel: None,
                reference: None,
            })),
        }],
    }]
}
