//! The retrieval stage's part of the report.

use atlas_stagekit::report::{
    Axis, Column, Figure, Filter, Measure, Plot, Scale, Scatter, Section, Source,
};

pub fn sections() -> Vec<Section> {
    let recall = |label| Measure::pct("recall", label).ci("recall_lower", "recall_upper");
    vec![Section {
        id: "retrieval",
        title: "Zero-shot retrieval",
        about: "Recall@K of image-to-text and text-to-image retrieval (a supervised classifier \
                has no text tower and is left out). Retrieval does not depend on the prompt set, \
                so a model's value repeats under each of its prompt sets.",
        tables: vec!["retrieval"],
        columns: vec![
            Column::new("retrieval", recall("R@1"))
                .filter(Filter::Eq("k", "1"))
                .split_by("direction"),
            Column::new("retrieval", recall("R@5"))
                .filter(Filter::Eq("k", "5"))
                .split_by("direction"),
        ],
        figures: vec![Figure {
            id: "retrieval-vs-zeroshot",
            title: "Retrieval vs zero-shot accuracy",
            caption: "Recall@1 per retrieval set and direction against zero-shot ID top-1.",
            plot: Plot::Scatter(Box::new(Scatter {
                table: "retrieval",
                filter: vec![Filter::Eq("k", "1")],
                panels: vec!["dataset", "direction"],
                x: Axis::new(Source::IdAccuracy, Scale::Linear),
                y: vec![Axis::new(Source::Column(recall("R@1")), Scale::Linear)],
                diagonal: false,
                fit: None,
                mean_panel: None,
                reference: None,
            })),
        }],
    }]
}
