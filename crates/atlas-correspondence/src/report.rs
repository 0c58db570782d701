//! The correspondence stage's part of the report: each model's headline numbers, recall by
//! threshold, recall by relative rotation, and the CNN vs ViT difference.

use atlas_stagekit::report::{
    Column, Figure, Filter, Measure, Plot, Reduce, Reference, Scale, Section, Strip,
};

pub fn sections() -> Vec<Section> {
    vec![Section {
        id: "correspondence",
        title: "Dense correspondence (3D awareness)",
        about: "How well each image tower's dense features match points across views (Probe3D): \
                geometric pairs (two views of one object, ground truth from depth and camera \
                poses) scored by the recall of ratio-test matches within a pixel threshold, \
                semantic pairs (two instances of one class) by keypoint-transfer PCK@0.1 of the \
                target box. The last figure is the CNN minus ViT difference of the family \
                means with a paired bootstrap interval over pairs.",
        tables: vec![
            "correspondence",
            "correspondence_bins",
            "correspondence_arch",
        ],
        columns: vec![
            Column::new(
                "correspondence",
                Measure::pct("value", "corresp.").ci("value_lower", "value_upper"),
            )
            .filter(Filter::Eq("headline", "true"))
            .split_by("task")
            .reduce(Reduce::Mean),
        ],
        figures: vec![
            Figure {
                id: "correspondence-recall",
                title: "Correspondence by threshold",
                caption: "Geometric recall at each pixel threshold and semantic PCK, one dot per \
                          model, with 95% bootstrap intervals over pairs.",
                plot: Plot::Strip(Strip {
                    table: "correspondence",
                    filter: Vec::new(),
                    panels: vec!["dataset", "task"],
                    category: "metric",
                    value: Measure::pct("value", "recall / PCK").ci("value_lower", "value_upper"),
                    scale: Scale::Linear,
                    reference: None,
                }),
            },
            Figure {
                id: "correspondence-rotation",
                title: "Geometric recall by relative rotation",
                caption: "Per-pair recall at the binned threshold averaged within bins of the \
                          relative camera rotation (semantic: PCK per viewpoint-variation bin), \
                          one dot per model.",
                plot: Plot::Strip(Strip {
                    table: "correspondence_bins",
                    filter: Vec::new(),
                    panels: vec!["dataset", "task"],
                    category: "bin",
                    value: Measure::pct("value", "recall / PCK"),
                    scale: Scale::Linear,
                    reference: None,
                }),
            },
            Figure {
                id: "correspondence-arch",
                title: "CNN minus ViT",
                caption: "Mean over CNN towers minus mean over ViT towers per metric, with a \
                          paired bootstrap interval over pairs; right of zero: CNNs correspond \
                          better.",
                plot: Plot::Strip(Strip {
                    table: "correspondence_arch",
                    filter: Vec::new(),
                    panels: vec!["dataset"],
                    category: "metric",
                    value: Measure::pct("difference", "CNN - ViT")
                        .ci("difference_lower", "difference_upper"),
                    scale: Scale::Linear,
                    reference: Some(Reference::Value(0.0, "no difference")),
                }),
            },
        ],
    }]
}
