//! The OOD-detection stage's part of the report.

use atlas_stagekit::report::{
    Axis, Column, Figure, Filter, Measure, Plot, Scale, Scatter, Section, Source, Strip,
};

pub fn sections() -> Vec<Section> {
    let auroc = || Measure::pct("auroc", "AUROC").ci("auroc_lower", "auroc_upper");
    let fpr = || Measure::pct("fpr95", "FPR95").ci("fpr95_lower", "fpr95_upper");
    let strip = |id, title, value: Measure| Figure {
        id,
        title,
        caption: "Per OOD set (mean: over the sets), one panel per score, one dot per model and \
                  prompt set.",
        plot: Plot::Strip(Strip {
            table: "ood",
            filter: Vec::new(),
            panels: vec!["score"],
            category: "dataset",
            value,
            scale: Scale::Unit,
            reference: None,
        }),
    };
    let mean_mcm = |m: Measure| {
        Column::new("ood", m)
            .filter(Filter::Eq("dataset", "mean"))
            .filter(Filter::Eq("score", "mcm"))
    };
    vec![Section {
        id: "ood",
        title: "OOD detection",
        about: "Telling ID images (positives) from OOD images by a score of the logits: MCM, MSP, \
                MaxLogit, Energy. AUROC (higher is better) and the FPR on OOD at 95% ID recall \
                (lower is better); the summary shows MCM averaged over the OOD sets.",
        tables: vec!["ood"],
        columns: vec![mean_mcm(auroc()), mean_mcm(fpr())],
        figures: vec![
            strip("ood-auroc", "AUROC per OOD set and score", auroc()),
            strip("ood-fpr95", "FPR95 per OOD set and score", fpr()),
            Figure {
                id: "ood-vs-id",
                title: "OOD detection vs ID accuracy",
                caption: "Mean over the OOD sets, per score.",
                plot: Plot::Scatter(Box::new(Scatter {
                    table: "ood",
                    filter: vec![Filter::Eq("dataset", "mean")],
                    panels: vec!["score"],
                    x: Axis::new(Source::IdAccuracy, Scale::Linear),
                    y: vec![
                        Axis::new(Source::Column(auroc()), Scale::Linear),
                        Axis::new(Source::Column(fpr()), Scale::Linear),
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
