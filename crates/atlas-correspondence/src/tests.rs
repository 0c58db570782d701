//! Synthetic pairs whose answers are known: position-coded (one-hot) features match every
//! point exactly; constant features cannot tell points apart.

use arrow::array::{Array, BooleanArray, Float64Array, StringArray};
use atlas_artifacts::pairs::{Camera, Pair, PairSet, PairTask, PairView};
use atlas_metrics::bootstrap::CiMethod;
use atlas_stagekit::stage::{DenseSet, StageSet};
use atlas_stagekit::testing::{Owned, one_hot_head};

use crate::{ARCH_MODEL, Params, fit_tables, model_pairs};

const S: usize = 8;

fn view(image: String, kp_shift: f64) -> PairView {
    PairView {
        image,
        width: S as u32,
        height: S as u32,
        category: "star".into(),
        camera: Some(Camera {
            intrinsics: [8.0, 8.0, 4.0, 4.0],
            rotation: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            translation: [0.0, 0.0, 0.0],
        }),
        depth: Some(vec![2.0; S * S]),
        keypoints: vec![Some([1.5 + kp_shift, 2.5]), Some([2.5, 3.5]), None],
        bbox: Some([0.0, 0.0, 8.0, 8.0]),
    }
}

/// `n` geometric and `n` semantic pairs over `2 n` identical views.
fn pair_set(n: usize) -> PairSet {
    let views = (0..2 * n).map(|i| view(format!("item{i}"), 0.0)).collect();
    let mut pairs = Vec::new();
    for i in 0..n {
        pairs.push(Pair {
            task: PairTask::Geometric,
            a: 2 * i,
            b: 2 * i + 1,
            category: "star".into(),
            rotation_deg: Some(10.0 * i as f64),
            viewpoint_variation: None,
        });
        pairs.push(Pair {
            task: PairTask::Semantic,
            a: 2 * i + 1,
            b: 2 * i,
            category: if i % 2 == 0 { "star" } else { "ring" }.into(),
            rotation_deg: None,
            viewpoint_variation: Some((i % 3) as u8),
        });
    }
    PairSet { views, pairs }
}

/// `[c, h, w]` maps: one-hot by position (`exact`) or all ones.
fn maps(items: usize, exact: bool) -> Vec<Option<Vec<f32>>> {
    let c = S * S;
    let one = (0..c * S * S)
        .map(|k| {
            let (ch, p) = (k / (S * S), k % (S * S));
            if !exact || ch == p { 1.0 } else { 0.0 }
        })
        .collect::<Vec<f32>>();
    (0..items).map(|_| Some(one.clone())).collect()
}

fn params() -> Params {
    Params {
        image_size: S as u32,
        depth_scale: 1.0,
        px_thresholds: vec![0.5, 2.0],
        binned_px: 0.5,
        rotation_bins: vec![0.0, 15.0, 180.0],
        bootstrap: 200,
        ci_method: CiMethod::Percentile,
        ..Params::default()
    }
}

fn run(n: usize, exact: bool, tower: &str, model: &str) -> crate::ModelPairs {
    let set = pair_set(n);
    let owned = Owned::new(one_hot_head(2), vec![0; 2 * n], vec![vec![1.0, 0.0]; 2 * n]);
    let m = maps(2 * n, exact);
    let sets = vec![StageSet {
        set: owned.set(model, "world3d", "correspondence", None),
        groups: None,
        protocol: None,
        texts: None,
        dense: Some(DenseSet {
            tower,
            layer: 3,
            image_size: S as u32,
            shape: [S * S, S, S],
            maps: &m,
        }),
        pairs: Some(&set),
    }];
    model_pairs(model, &sets, &params()).unwrap()
}

fn col<'a, T: 'static>(b: &'a arrow::array::RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

#[test]
fn exact_features_match_everything_and_constant_ones_do_not() {
    let good = run(6, true, "ModifiedResNet", "cnn");
    let g = &good.datasets[0];
    assert_eq!(g.geometric.len(), 6);
    for p in &g.geometric {
        assert_eq!(p.error, None);
        let n = p.n.unwrap();
        assert_eq!(n, 64, "every pixel has depth");
        assert_eq!(p.hits, vec![64, 64]);
    }
    for p in &g.semantic {
        // Probe3D samples at kp / S * (W - 1) (align_corners): near the origin the nearest
        // feature pixel is the keypoint's own, so both visible keypoints transfer exactly.
        assert_eq!((p.n, p.hits), (Some(2), 2), "keypoint 2 is absent");
    }
    let bad = run(6, false, "ViT", "vit");
    let b = &bad.datasets[0];
    // Constant features: every point's best match is the first target point.
    assert!(b.geometric.iter().all(|p| p.hits[1] < 64));
    let t = fit_tables(&[good, bad], &params()).unwrap();
    let c = &t.correspondence;
    let (model, metric, value) = (
        col::<StringArray>(c, "model"),
        col::<StringArray>(c, "metric"),
        col::<Float64Array>(c, "value"),
    );
    let get = |m: &str, me: &str| {
        (0..c.num_rows())
            .find(|&i| model.value(i) == m && metric.value(i) == me)
            .map(|i| value.value(i))
            .unwrap()
    };
    assert_eq!(get("cnn", "recall@0.5px"), 1.0);
    assert_eq!(get("cnn", "pck@0.1"), 1.0);
    assert!(get("vit", "recall@2px") < 0.2);
    let headline = col::<BooleanArray>(c, "headline");
    assert_eq!((0..c.num_rows()).filter(|&i| headline.value(i)).count(), 4);
    let a = &t.arch;
    assert_eq!(col::<StringArray>(a, "model").value(0), ARCH_MODEL);
    let d = col::<Float64Array>(a, "difference");
    let lo = col::<Float64Array>(a, "difference_lower");
    for i in 0..a.num_rows() {
        assert!(d.value(i) > 0.5, "CNN (exact) beats ViT (constant)");
        assert!(lo.value(i) > 0.0, "and the interval excludes 0");
    }
    let bins = &t.bins;
    let v = col::<Float64Array>(bins, "value");
    let bin = col::<StringArray>(bins, "bin");
    let task = col::<StringArray>(bins, "task");
    // Rotations 0, 10 fall in [0, 15); 20..50 in [15, 180).
    let n = col::<arrow::array::Int64Array>(bins, "n_pairs");
    let first = (0..bins.num_rows())
        .find(|&i| bin.value(i) == "0-15 deg" && task.value(i) == "geometric")
        .unwrap();
    assert_eq!((n.value(first), v.value(first)), (2, 1.0));
}

#[test]
fn one_family_gives_a_row_with_a_note_and_no_difference() {
    let a = run(3, true, "ViT", "v1");
    let b = run(3, false, "ViT", "v2");
    let t = fit_tables(&[a, b], &params()).unwrap();
    let d = col::<Float64Array>(&t.arch, "difference");
    let note = col::<StringArray>(&t.arch, "note");
    assert!(d.is_null(0));
    assert!(note.value(0).contains("0 CNN"));
}

#[test]
fn a_missing_feature_map_is_recorded_per_pair_not_fatal() {
    let set = pair_set(2);
    let owned = Owned::new(one_hot_head(2), vec![0; 4], vec![vec![1.0, 0.0]; 4]);
    let mut m = maps(4, true);
    m[1] = None;
    let sets = vec![StageSet {
        set: owned.set("x", "world3d", "correspondence", None),
        groups: None,
        protocol: None,
        texts: None,
        dense: Some(DenseSet {
            tower: "ViT",
            layer: 3,
            image_size: S as u32,
            shape: [S * S, S, S],
            maps: &m,
        }),
        pairs: Some(&set),
    }];
    let r = model_pairs("x", &sets, &params()).unwrap();
    let g = &r.datasets[0].geometric;
    assert!(g[0].error.as_deref().unwrap().contains("item1"));
    assert_eq!(g[1].n, Some(64));
}

#[test]
fn params_refuse_bad_values_by_name() {
    let p = Params {
        image_size: 100,
        ..Params::default()
    };
    assert!(p.validate().unwrap_err().contains("image_size"));
    let p = Params {
        rotation_bins: vec![10.0, 5.0],
        ..Params::default()
    };
    assert!(p.validate().unwrap_err().contains("rotation_bins"));
    assert!(Params::default().validate().is_ok());
}
