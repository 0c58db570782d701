//! The corruption stage's part of the report: accuracy by severity per corruption, and the
//! per-model means.

use atlas_stagekit::report::{
    Column, Figure, Filter, Measure, Plot, Reduce, Reference, Scale, Section, Strip,
};

pub fn sections() -> Vec<Section> {
    vec![Section {
        id: "corruption-3d",
        title: "3D common corruptions",
        about: "Zero-shot top-1 under the ImageNet-3DCC corruptions (depth of field, 3D fog, \
                flash, low light, ISO noise, colour quantisation) at severities 1-5, against \
                the clean images; effective robustness over the baseline models' line of \
                corrupted vs clean accuracy (logit axes), per corruption and severity.",
        tables: vec!["corruption_3d", "corruption_3d_mean"],
        columns: vec![
            Column::new(
                "corruption_3d_mean",
                Measure::pct("mean_top1", "3DCC top-1"),
            )
            .reduce(Reduce::Mean),
            Column::new(
                "corruption_3d_mean",
                Measure::num("mean_relative", "3DCC relative", 2),
            )
            .reduce(Reduce::Mean),
            Column::new("corruption_3d_mean", Measure::pct("mean_er", "3DCC ER"))
                .reduce(Reduce::Mean),
        ],
        figures: vec![
            Figure {
                id: "corruption-3d-severity",
                title: "Top-1 by corruption and severity",
                caption: "One panel per corruption, one row per severity (1 mild - 5 severe), one \
                          dot per model and prompt set; the dashed line is the clean accuracy \
                          averaged over models.",
                plot: Plot::Strip(Strip {
                    table: "corruption_3d",
                    filter: Vec::new(),
                    panels: vec!["dataset", "corruption"],
                    category: "severity",
                    value: Measure::pct("top1", "top-1").ci("top1_lower", "top1_upper"),
                    scale: Scale::Linear,
                    reference: Some(Reference::Mean {
                        table: "corruption_3d",
                        column: "clean_top1",
                        label: "clean",
                    }),
                }),
            },
            Figure {
                id: "corruption-3d-er",
                title: "Effective robustness per corruption",
                caption: "Effective robustness (percentage points above the baseline models' \
                          line), one row per corruption and severity, one dot per model and \
                          prompt set.",
                plot: Plot::Strip(Strip {
                    table: "corruption_3d",
                    filter: vec![Filter::Ne("baseline", "true")],
                    panels: vec!["dataset"],
                    category: "corruption",
                    value: Measure::pct("effective_robustness", "effective robustness")
                        .ci("er_lower", "er_upper"),
                    scale: Scale::Linear,
                    reference: Some(Reference::Value(0.0, "baseline line")),
                }),
            },
        ],
    }]
}
