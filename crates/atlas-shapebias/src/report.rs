//! The shape-bias stage's part of the report.

use atlas_stagekit::report::{
    Axis, Column, Figure, Measure, Plot, Reference, Scale, Scatter, Section, Source, Strip,
};

pub fn sections() -> Vec<Section> {
    let humans = || {
        Some(Reference::Mean {
            table: "shape_bias",
            column: "human_shape_bias",
            label: "humans",
        })
    };
    vec![Section {
        id: "shapebias",
        title: "Shape vs texture bias",
        about: "Cue-conflict images (shape of one category, texture of another): the fraction of \
                shape decisions among shape or texture decisions. The red line is the human \
                observers' shape bias on the same images, when human responses are configured.",
        tables: vec!["shape_bias", "shape_bias_categories"],
        columns: vec![
            Column::new(
                "shape_bias",
                Measure::pct("shape_bias", "").ci("shape_bias_lower", "shape_bias_upper"),
            )
            .split_by("dataset"),
        ],
        figures: vec![
            Figure {
                id: "shape-bias-categories",
                title: "Shape bias per category",
                caption: "As model-vs-human plots it: one row per shape category, one dot per \
                          model and prompt set.",
                plot: Plot::Strip(Strip {
                    table: "shape_bias_categories",
                    filter: Vec::new(),
                    panels: vec!["dataset"],
                    category: "category",
                    value: Measure::pct("shape_bias", "fraction of shape decisions"),
                    scale: Scale::Unit,
                    reference: humans(),
                }),
            },
            Figure {
                id: "shape-bias-vs-id",
                title: "Shape bias vs ID accuracy",
                caption: "Does a more accurate model decide more by shape?",
                plot: Plot::Scatter(Box::new(Scatter {
                    table: "shape_bias",
                    filter: Vec::new(),
                    panels: vec!["dataset"],
                    x: Axis::new(Source::IdAccuracy, Scale::Linear),
                    y: vec![Axis::new(
                        Source::Column(
                            Measure::pct("shape_bias", "shape bias")
                                .ci("shape_bias_lower", "shape_bias_upper"),
                        ),
                        Scale::Unit,
                    )],
                    diagonal: false,
                    fit: None,
                    mean_panel: None,
                    reference: humans(),
                })),
            },
        ],
    }]
}
