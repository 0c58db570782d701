//! The calibration stage's part of the report.

use atlas_stagekit::report::{
    Axis, Column, Figure, Filter, Lines, Measure, Plot, Scale, Scatter, Section, Source,
};

pub fn sections() -> Vec<Section> {
    let ece = |col, lo, hi, label| Measure::pct(col, label).ci(lo, hi);
    vec![Section {
        id: "calibration",
        title: "Calibration",
        about: "Expected calibration error (15 equal-width bins) before and after temperature \
                scaling, the temperature fitted on a held-out part of the ID set and carried to \
                the shifted sets; reliability diagrams per split.",
        tables: vec!["calibration", "reliability"],
        columns: vec![
            Column::new(
                "calibration",
                ece("ece_raw", "ece_raw_lower", "ece_raw_upper", "ECE ID"),
            )
            .filter(Filter::Eq("role", "id")),
            Column::new(
                "calibration",
                ece(
                    "ece_scaled",
                    "ece_scaled_lower",
                    "ece_scaled_upper",
                    "ECE ID (TS)",
                ),
            )
            .filter(Filter::Eq("role", "id")),
            Column::new("calibration", Measure::num("temperature", "T", 3))
                .filter(Filter::Eq("role", "id")),
        ],
        figures: vec![
            Figure {
                id: "reliability",
                title: "Reliability diagrams",
                caption: "Accuracy vs mean confidence per confidence bin (empty bins left out), \
                          one line per model and prompt set; raw: T = 1, scaled: the fitted T. \
                          The diagonal is perfect calibration.",
                plot: Plot::Lines(Lines {
                    table: "reliability",
                    filter: Vec::new(),
                    panels: vec!["dataset", "temperature_kind"],
                    x: Measure::pct("mean_confidence", "confidence"),
                    y: Measure::pct("accuracy", "accuracy"),
                    order: "bin",
                    weight: Some("count"),
                    diagonal: true,
                }),
            },
            Figure {
                id: "ece-vs-id",
                title: "ECE vs ID accuracy",
                caption: "Per split, before and after temperature scaling.",
                plot: Plot::Scatter(Box::new(Scatter {
                    table: "calibration",
                    filter: Vec::new(),
                    panels: vec!["dataset"],
                    x: Axis::new(Source::IdAccuracy, Scale::Linear),
                    y: vec![
                        Axis::new(
                            Source::Column(ece(
                                "ece_raw",
                                "ece_raw_lower",
                                "ece_raw_upper",
                                "ECE before TS",
                            )),
                            Scale::Linear,
                        ),
                        Axis::new(
                            Source::Column(ece(
                                "ece_scaled",
                                "ece_scaled_lower",
                                "ece_scaled_upper",
                                "ECE after TS",
                            )),
                            Scale::Linear,
                        ),
                    ],
                    diagonal: false,
                    fit: None,
                    mean_panel: None,
                    reference: None,
                })),
            },
        ],
    }]
}
