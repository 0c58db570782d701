//! The report over a synthetic study (the real stages' sections, the tables' documented
//! columns): every plot has one mark per entry, the effective-robustness points are the rows of
//! `shift.parquet`, the terminal summary fits 120 columns, and missing tables or columns show as
//! such instead of failing.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::{Float64Array, StringArray};
use atlas_report::synthetic::{StudySize, write_study};
use atlas_stagekit::report::Section;
use atlas_stagekit::stage::Stage;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn sections() -> Vec<Section> {
    let mut s = atlas_zeroshot::report::sections();
    s.extend(atlas_shift::ShiftStage.report());
    s.extend(atlas_factors::FactorsStage.report());
    s.extend(atlas_factors::FactorErStage.report());
    s.extend(atlas_shapebias::ShapeBiasStage.report());
    s.extend(atlas_calibration::CalibrationStage.report());
    s.extend(atlas_ood::OodStage.report());
    s.extend(atlas_retrieval::RetrievalStage.report());
    s
}

fn small_study(dir: &Path) {
    let size = StudySize {
        models: 9,
        factors: 4,
        categories: 5,
        ..StudySize::default()
    };
    write_study(dir, &size, 7).unwrap();
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// `(figure, panel, svg body)` of every plot of the page.
fn plots(html: &str) -> Vec<(String, String, String)> {
    html.split("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\"")
        .skip(1)
        .map(|p| {
            let head = &p[..p.find('>').unwrap()];
            (
                attr(head, "data-figure").unwrap().to_string(),
                attr(head, "data-panel").unwrap().to_string(),
                p[..p.find("</svg>").unwrap()].to_string(),
            )
        })
        .collect()
}

fn entries_of(svg: &str) -> BTreeSet<usize> {
    svg.split(" data-e=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

fn entry_labels(html: &str) -> Vec<String> {
    let start = html.find("id=\"atlas-data\">").unwrap() + "id=\"atlas-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&html[start..end].replace("<\\/", "</")).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} [{}]",
                e["m"].as_str().unwrap(),
                e["p"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_plot_has_one_mark_per_entry_and_er_points_are_shift_rows() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    let r = atlas_report::build(dir.path(), &sections(), "2026-12-05T00:00:00Z").unwrap();
    assert_eq!(r.entries, 18, "9 models x 2 prompt sets");
    let all = plots(&r.html);
    let figures: BTreeSet<&str> = all.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(figures.len(), 12, "{figures:?}");
    for (fig, panel, svg) in &all {
        assert_eq!(entries_of(svg).len(), 18, "{fig} / {panel}");
    }
    // The standalone files hold the figures with their queries.
    for fig in &figures {
        let (_, text) = r
            .figures
            .iter()
            .find(|f| f.0 == format!("{fig}.svg"))
            .unwrap_or_else(|| panic!("figures/{fig}.svg"));
        assert!(
            text.contains("<desc>") && text.contains("SELECT"),
            "{fig}: no query"
        );
    }

    // ER points vs shift.parquet, read here with the parquet crate.
    let file = std::fs::File::open(dir.path().join("shift.parquet")).unwrap();
    let mut rows = BTreeSet::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        let s = |c: &str| {
            b.column_by_name(c)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let f = |c: &str| {
            b.column_by_name(c)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        let (m, p, d, x, y) = (
            s("model"),
            s("prompts"),
            s("dataset"),
            f("acc_id"),
            f("acc_ood"),
        );
        for i in 0..b.num_rows() {
            rows.insert((
                format!("{} [{}]", m.value(i), p.value(i)),
                d.value(i).to_string(),
                x.value(i).to_bits(),
                y.value(i).to_bits(),
            ));
        }
    }
    let labels = entry_labels(&r.html);
    let mut points = BTreeSet::new();
    for (_, panel, svg) in all.iter().filter(|p| p.0 == "er-shift" && !p.1.is_empty()) {
        for c in svg.split("<circle class=\"pt").skip(1) {
            let tag = &c[..c.find('>').unwrap()];
            let e: usize = attr(tag, "data-e").unwrap().parse().unwrap();
            let x: f64 = attr(tag, "data-x").unwrap().parse().unwrap();
            let y: f64 = attr(tag, "data-y").unwrap().parse().unwrap();
            points.insert((labels[e].clone(), panel.clone(), x.to_bits(), y.to_bits()));
        }
    }
    assert_eq!(rows.len(), 9 * 2 * 5);
    assert_eq!(points, rows);
    // Each shift panel has its baseline lines (one per prompt set) and bands; the averaged
    // panel the mean of the lines, without a band.
    let er: Vec<_> = all.iter().filter(|p| p.0 == "er-shift").collect();
    assert_eq!(er.len(), 6, "5 shifts + the mean");
    for (_, panel, svg) in &er {
        assert_eq!(svg.matches("class=\"fit\"").count(), 2, "{panel}");
        let bands = svg.matches("class=\"band\"").count();
        assert_eq!(bands, if panel.is_empty() { 0 } else { 2 }, "{panel}");
    }

    // The terminal summary fits 120 columns and has one table per family.
    assert!(
        r.terminal.lines().all(|l| l.chars().count() <= 120),
        "{}",
        r.terminal
    );
    for t in [
        "Zero-shot top-1 accuracy (%)",
        "Effective robustness",
        "Visual factors",
        "Calibration",
        "OOD detection",
        "Zero-shot retrieval",
    ] {
        assert!(r.terminal.contains(t), "{t}:\n{}", r.terminal);
    }
}

#[test]
fn missing_tables_and_columns_say_so() {
    let dir = tempfile::tempdir().unwrap();
    small_study(dir.path());
    std::fs::remove_file(dir.path().join("ood.parquet")).unwrap();
    // A shift table without `acc_ood` (an older or newer schema).
    let file = std::fs::File::open(dir.path().join("shift.parquet")).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let b = &batches[0];
    let keep: Vec<usize> = (0..b.num_columns())
        .filter(|&i| b.schema().field(i).name() != "acc_ood")
        .collect();
    let b = b.project(&keep).unwrap();
    let out = std::fs::File::create(dir.path().join("shift.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();

    let r = atlas_report::build(dir.path(), &sections(), "now").unwrap();
    assert!(
        r.html.contains("OOD detection: not configured"),
        "no OOD notice"
    );
    assert!(
        r.html
            .contains("not available: results/shift.parquet has no column acc_ood"),
        "no missing-column notice"
    );
    assert!(
        r.terminal.contains("not configured: OOD detection"),
        "{}",
        r.terminal
    );
    // The other figures are still drawn.
    assert!(plots(&r.html).iter().any(|p| p.0 == "reliability"));
    // An empty folder gives a page, too.
    let empty = tempfile::tempdir().unwrap();
    let r = atlas_report::build(empty.path(), &sections(), "now").unwrap();
    assert!(r.html.contains("Zero-shot top-1 accuracy: not configured"));
}

/// The study-size timing of BENCHMARKS.md without file writing:
/// `cargo test -p atlas-report --test report -- --ignored --nocapture study_size`
/// (`cargo xtask bench report` measures it with the files written).
#[test]
#[ignore]
fn study_size_report_under_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    write_study(dir.path(), &StudySize::default(), 0).unwrap();
    let t0 = std::time::Instant::now();
    let r = atlas_report::build(dir.path(), &sections(), "now").unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "study size: {} entries, {} marks, report.html {:.1} MiB, {secs:.2} s",
        r.entries,
        r.marks,
        r.html.len() as f64 / (1 << 20) as f64
    );
    assert_eq!(r.entries, 168);
    assert!(secs < 10.0, "{secs:.1} s");
}
