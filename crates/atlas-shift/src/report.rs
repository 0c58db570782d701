//! The shift stage's part of the report: effective robustness per shift and averaged.

use atlas_stagekit::report::{
    Axis, Column, Figure, FitLine, Measure, Plot, Published, Scale, Scatter, Section, Source,
};

pub fn sections() -> Vec<Section> {
    vec![Section {
        id: "shift",
        title: "Effective robustness under distribution shift",
        about: "Shifted vs ID top-1 accuracy on logit axes, one panel per shifted dataset and one \
                averaged over them. The line is the fit over the baseline models (and published \
                rows, grey), with its pointwise 95% band; effective robustness (ER) is a model's \
                distance above it, in accuracy.",
        tables: vec!["shift", "shift_fits"],
        columns: vec![
            Column::new(
                "shift",
                Measure::pct("effective_robustness", "ER").ci("er_lower", "er_upper"),
            )
            .split_by("dataset"),
        ],
        figures: vec![Figure {
            id: "er-shift",
            title: "Effective robustness",
            caption: "x: top-1 on the line's x axis (acc_id), y: top-1 on the shifted set \
                      (acc_ood); outlined dots are baseline models.",
            plot: Plot::Scatter(Box::new(Scatter {
                table: "shift",
                filter: Vec::new(),
                panels: vec!["dataset"],
                x: Axis::new(
                    Source::Column(
                        Measure::pct("acc_id", "ID accuracy").ci("acc_id_lower", "acc_id_upper"),
                    ),
                    Scale::Logit,
                ),
                y: vec![Axis::new(
                    Source::Column(
                        Measure::pct("acc_ood", "shifted accuracy")
                            .ci("acc_ood_lower", "acc_ood_upper"),
                    ),
                    Scale::Logit,
                )],
                diagonal: true,
                fit: Some(FitLine {
                    table: "shift_fits",
                    key: vec!["dataset", "prompts"],
                    slope: "slope",
                    intercept: "intercept",
                    slope_se: "stderr",
                    intercept_se: "intercept_stderr",
                    space: "space",
                    n_points: "n_baseline",
                    fitted: "baseline",
                    published: Some(Published {
                        table: "shift_published_points",
                        x: "acc_id",
                        y: "acc_ood",
                        in_fit: "in_fit",
                    }),
                }),
                mean_panel: Some("mean over shifts"),
                reference: None,
            })),
        }],
    }]
}
