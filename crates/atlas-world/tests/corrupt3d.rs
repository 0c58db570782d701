//! The `corrupt3d` split on disk: its manifest rows are the source specs' rows with the image's
//! own path and the corruption columns, and its clean images are the rendered specs.

use std::collections::BTreeMap;

use atlas_world::{
    Split, SplitSizes, WorldConfig, generate, hidden_fraction, manifest_columns, manifest_row,
    render, sample_spec,
};

#[test]
fn corrupt3d_manifest_matches_specs_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = WorldConfig {
        seed: 5,
        sizes: SplitSizes {
            corrupt3d: 2,
            ..SplitSizes::uniform(0)
        },
        ..WorldConfig::default()
    };
    let summary = generate(&cfg, dir.path(), &[Split::Corrupt3d]).unwrap();
    let s = &summary.splits[0];
    let mut r = csv::Reader::from_path(&s.manifest).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, manifest_columns(Split::Corrupt3d));
    let rows: Vec<BTreeMap<String, String>> = r
        .records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2 * 36);
    assert_eq!(rows.len() as u64, s.count);
    for row in &rows {
        let i: u64 = row["source"].parse().unwrap();
        let spec = sample_spec(Split::Corrupt3d, i, &cfg);
        let mut expect = manifest_row(&spec, hidden_fraction(&spec).unwrap());
        let severity: u8 = row["severity"].parse().unwrap();
        let path = if row["corruption"] == "clean" {
            assert_eq!(severity, 0);
            format!("images/clean/{i:06}.png")
        } else {
            assert!((1..=5).contains(&severity));
            format!("images/{}/{severity}/{i:06}.png", row["corruption"])
        };
        expect[0] = path;
        expect.extend([
            row["corruption"].clone(),
            severity.to_string(),
            i.to_string(),
        ]);
        let got: Vec<String> = header.iter().map(|h| row[h].clone()).collect();
        assert_eq!(got, expect, "corrupt3d row {i}");
        let img = image::open(s.dir.join(&row["path"])).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (128, 128));
        if row["corruption"] == "clean" {
            assert_eq!(img, render(&spec).unwrap(), "clean image {i}");
        }
    }
}
