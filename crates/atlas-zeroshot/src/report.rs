//! Zero-shot classification's part of the report (the pipeline puts it first, before the
//! registered stages' sections).

use atlas_stagekit::report::{Column, Figure, Measure, Plot, Scale, Section, Strip};

pub fn sections() -> Vec<Section> {
    let top1 = |label| Measure::pct("top1", label).ci("top1_lower", "top1_upper");
    vec![Section {
        id: "zeroshot",
        title: "Zero-shot top-1 accuracy",
        about: "Top-1 accuracy of the zero-shot head (prompt-ensemble text embeddings) per split; \
                a supervised classifier uses its own head.",
        tables: vec!["zeroshot"],
        columns: vec![Column::new("zeroshot", top1("")).split_by("dataset")],
        figures: vec![Figure {
            id: "zeroshot-top1",
            title: "Zero-shot top-1 per split",
            caption: "One row per split, one dot per model and prompt set.",
            plot: Plot::Strip(Strip {
                table: "zeroshot",
                filter: Vec::new(),
                panels: Vec::new(),
                category: "dataset",
                value: top1("top-1 accuracy"),
                scale: Scale::Unit,
                reference: None,
            }),
        }],
    }]
}
