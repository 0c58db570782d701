//! The LMM stage's part of the report.

use atlas_stagekit::report::{
    Axis, Column, Figure, Measure, Plot, Reduce, Scale, Scatter, Section, Source, Strip,
};

pub fn sections() -> Vec<Section> {
    let lmm =
        || Measure::pct("lmm_accuracy", "LMM acc").ci("lmm_accuracy_lower", "lmm_accuracy_upper");
    let clip = || {
        Measure::pct("clip_accuracy", "CLIP acc").ci("clip_accuracy_lower", "clip_accuracy_upper")
    };
    let worst_gain = || {
        Measure::pct("worst_gain", "gain on CLIP-worst").ci("worst_gain_lower", "worst_gain_upper")
    };
    vec![Section {
        id: "lmm",
        title: "LMM vs CLIP (ImageNet-D questions)",
        about: "Each labelled image becomes a two-way question (ground truth vs the surrogate \
                CLIP's top-1 if wrong, else its top-2) asked to an LMM; LMM accuracy is TRUE / \
                (TRUE + FALSE) of its answers, CLIP accuracy the surrogate's top-1 on the same \
                items. The gain is LMM minus CLIP, overall and on CLIP's worst categories \
                (bottom-k per split by CLIP accuracy). Entries are the surrogate models.",
        tables: vec!["lmm_summary"],
        columns: vec![
            Column::new("lmm_summary", lmm()).reduce(Reduce::Mean),
            Column::new("lmm_summary", clip()).reduce(Reduce::Mean),
            Column::new("lmm_summary", worst_gain()).reduce(Reduce::Mean),
        ],
        figures: vec![
            Figure {
                id: "lmm-vs-clip",
                title: "LMM accuracy vs CLIP accuracy",
                caption: "One point per surrogate, LMM and split; above the diagonal the LMM \
                          does better than CLIP.",
                plot: Plot::Scatter(Box::new(Scatter {
                    table: "lmm_summary",
                    filter: Vec::new(),
                    panels: vec!["lmm"],
                    x: Axis::new(Source::Column(clip()), Scale::Linear),
                    y: vec![Axis::new(Source::Column(lmm()), Scale::Linear)],
                    diagonal: true,
                    fit: None,
                    mean_panel: None,
                    reference: None,
                })),
            },
            Figure {
                id: "lmm-worst-gain",
                title: "Gain on CLIP's worst categories",
                caption: "Per split: LMM minus CLIP accuracy on the categories where CLIP is \
                          worst, with its bootstrap interval.",
                plot: Plot::Strip(Strip {
                    table: "lmm_summary",
                    filter: Vec::new(),
                    panels: vec!["lmm"],
                    category: "dataset",
                    value: worst_gain(),
                    scale: Scale::Linear,
                    reference: None,
                }),
            },
        ],
    }]
}
