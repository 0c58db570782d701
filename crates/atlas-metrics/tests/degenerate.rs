//! Degenerate inputs give the documented error or value, never a silent NaN.

use std::sync::Arc;

use arrow::array::{FixedSizeListArray, Float32Array};
use arrow::datatypes::{DataType, Field};
use atlas_metrics::MetricsError;
use atlas_metrics::bootstrap::{BootstrapConfig, bootstrap_ci, bootstrap_mean_ci};
use atlas_metrics::calibration::{TemperatureSearch, ece, ece_from_logits, nll, tune_temperature};
use atlas_metrics::classification::{
    ClassGroups, ClassSubset, Matrix, argmax, per_class_accuracy, predictions, rank_of,
    top_k_accuracy,
};
use atlas_metrics::factors::{FactorAnnotations, error_ratios, factor_accuracies};
use atlas_metrics::ood::{ood_metrics, openood_metrics};
use atlas_metrics::retrieval::recall_at_k;
use atlas_metrics::robustness::{
    FitSpace, RobustnessFit, bootstrap_effective_robustness, linregress,
};
use atlas_metrics::shape_bias::shape_bias;

#[test]
fn argmax_ties_and_nan_follow_numpy() {
    assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    assert_eq!(argmax(&[1.0, f32::NAN, 5.0, f32::NAN]), 1);
    assert_eq!(rank_of(&[2.0, 2.0, 2.0], 2), 2);
}

#[test]
fn empty_ood_or_id_set_is_an_error() {
    assert!(matches!(
        ood_metrics(&[0.1, 0.2], &[], 0.95),
        Err(MetricsError::NoNegatives { .. })
    ));
    assert!(matches!(
        ood_metrics(&[], &[0.1], 0.95),
        Err(MetricsError::NoPositives { .. })
    ));
    assert!(matches!(
        openood_metrics(&[0.1], &[], 0.95),
        Err(MetricsError::NoNegatives { .. })
    ));
    assert!(matches!(
        ood_metrics(&[f64::NAN], &[0.1], 0.95),
        Err(MetricsError::NonFinite { .. })
    ));
    assert!(matches!(
        ood_metrics(&[0.3], &[0.1], 0.0),
        Err(MetricsError::InvalidParameter { .. })
    ));
}

#[test]
fn factor_with_zero_images_is_none_and_all_correct_is_error() {
    let names = vec!["a".to_string(), "b".to_string()];
    // Factor b never present.
    let ann = FactorAnnotations::new(names, vec![true, false, true, false, false, false]).unwrap();
    let acc = factor_accuracies(&[true, false, true], &ann, None).unwrap();
    assert_eq!(acc.per_factor, vec![Some(0.5), None]);
    assert_eq!(acc.worst_factor, Some(0.5));
    let er = error_ratios(&acc).unwrap();
    assert_eq!(er[1], None);
    assert!((er[0].unwrap() - 0.5 / (1.0 / 3.0)).abs() < 1e-12);
    // All correct: 1 - acc_overall = 0.
    let all = factor_accuracies(&[true, true, true], &ann, None).unwrap();
    assert!(matches!(
        error_ratios(&all),
        Err(MetricsError::Undefined { .. })
    ));
    // Everything masked out.
    assert!(matches!(
        factor_accuracies(&[true, true, true], &ann, Some(&[false, false, false])),
        Err(MetricsError::Empty { .. })
    ));
}

#[test]
fn single_class_and_all_correct() {
    let logits = [0.3f32, -1.0, 2.0];
    let m = Matrix::new(&logits, 1).unwrap();
    assert_eq!(predictions(m), vec![0, 0, 0]);
    assert_eq!(top_k_accuracy(m, &[0, 0, 0], 1).unwrap(), 1.0);
    // Single class: softmax confidence is exactly 1, ECE 0, NLL 0.
    assert_eq!(ece_from_logits(m, &[0, 0, 0], 1.0, 15).unwrap(), 0.0);
    assert_eq!(nll(m, &[0, 0, 0], 1.0).unwrap(), 0.0);
    // All correct with confidence 1 in the top bin.
    assert_eq!(ece(&[1.0, 1.0], &[true, true], 15).unwrap(), 0.0);
    // Label out of range.
    assert!(matches!(
        top_k_accuracy(m, &[0, 1, 0], 1),
        Err(MetricsError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        top_k_accuracy(m, &[0, 0, 0], 0),
        Err(MetricsError::InvalidParameter { .. })
    ));
    assert!(matches!(
        top_k_accuracy(m, &[], 1),
        Err(MetricsError::LengthMismatch { .. })
    ));
    let empty = Matrix::new(&[], 3).unwrap();
    assert!(matches!(
        top_k_accuracy(empty, &[], 1),
        Err(MetricsError::Empty { .. })
    ));
    assert_eq!(
        per_class_accuracy(&[0, 0], &[0, 0], 2).unwrap(),
        vec![Some(1.0), None]
    );
}

#[test]
fn invalid_shapes_and_parameters() {
    assert!(matches!(
        Matrix::new(&[1.0, 2.0, 3.0], 2),
        Err(MetricsError::Shape { .. })
    ));
    assert!(Matrix::new(&[1.0], 0).is_err());
    assert!(ClassSubset::new(vec![], 10).is_err());
    assert!(ClassSubset::new(vec![1, 1], 10).is_err());
    assert!(ClassSubset::new(vec![10], 10).is_err());
    assert!(ClassGroups::new(vec![vec![]], 10).is_err());
    let logits = [1.0f32, 2.0, 3.0, 0.0];
    let m = Matrix::new(&logits, 2).unwrap();
    assert!(nll(m, &[0, 1], 0.0).is_err());
    assert!(nll(m, &[0, 1], f64::NAN).is_err());
    let bad = TemperatureSearch {
        lower: 2.0,
        upper: 1.0,
        tol: 1e-4,
    };
    assert!(tune_temperature(m, &[0, 1], bad).is_err());
    let nan = [f32::NAN, 1.0];
    assert!(matches!(
        nll(Matrix::new(&nan, 2).unwrap(), &[0], 1.0),
        Err(MetricsError::NonFinite { .. })
    ));
}

#[test]
fn regression_degenerate_cases() {
    assert!(matches!(
        linregress(&[0.5], &[0.4]),
        Err(MetricsError::Undefined { .. })
    ));
    assert!(matches!(
        linregress(&[0.5, 0.5, 0.5], &[0.1, 0.2, 0.3]),
        Err(MetricsError::Undefined { .. })
    ));
    // All y equal: r undefined (scipy NaN) -> None, slope 0, stderr 0.
    let f = linregress(&[0.1, 0.2, 0.3], &[0.4, 0.4, 0.4]).unwrap();
    assert_eq!(f.rvalue, None);
    assert!(f.slope.abs() < 1e-12);
    assert_eq!(f.stderr, 0.0);
    // Accuracy of exactly 1 (or 0) has no logit.
    assert!(matches!(
        RobustnessFit::fit(&[0.5, 1.0], &[0.4, 0.5], FitSpace::Logit),
        Err(MetricsError::Undefined { .. })
    ));
    assert!(RobustnessFit::fit(&[0.5, 1.0], &[0.4, 0.5], FitSpace::Linear).is_ok());
}

#[test]
fn shape_bias_degenerate() {
    // No conflict images: shape bias None, accuracies None.
    let r = shape_bias(&[0, 1], &[0, 1], &[0, 1], 16).unwrap();
    assert_eq!(r.n_conflict, 0);
    assert_eq!(r.shape_bias, None);
    assert_eq!(r.shape_accuracy, None);
    // Decisions match neither: shape bias None.
    let r = shape_bias(&[5, 5], &[0, 1], &[2, 3], 16).unwrap();
    assert_eq!(r.shape_bias, None);
    assert_eq!(r.shape_accuracy, Some(0.0));
    assert!(matches!(
        shape_bias(&[], &[], &[], 16),
        Err(MetricsError::Empty { .. })
    ));
    assert!(shape_bias(&[16], &[0], &[1], 16).is_err());
}

#[test]
fn retrieval_degenerate_and_ties() {
    // 2 texts, 3 images; text 0 -> image 0, text 1 -> image 0; image 1, 2 have no captions.
    let s = [0.5f32, 0.5, 0.1, 0.2, 0.9, 0.2];
    let m = Matrix::new(&s, 3).unwrap();
    let r = recall_at_k(m, &[0, 0], &[1, 2]).unwrap();
    // text 0: image 0 ties with image 1 and wins on lower index -> hit at k=1.
    // text 1: image 0 (0.2) ties with image 2 (0.2) and loses to image 1 (0.9): rank 1.
    assert_eq!(r[0].text_to_image, 0.5);
    assert_eq!(r[1].text_to_image, 1.0);
    // image 0's best caption is text 0 (0.5 > 0.2): rank 0. Images 1, 2: no captions = misses.
    assert!((r[0].image_to_text - 1.0 / 3.0).abs() < 1e-12);
    assert!(recall_at_k(m, &[0, 0], &[3]).is_err()); // k > #texts
    assert!(recall_at_k(m, &[0, 3], &[1]).is_err());
}

#[test]
fn bootstrap_is_deterministic_and_sane() {
    let values: Vec<f64> = (0..500).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
    let cfg = BootstrapConfig {
        n_resamples: 400,
        seed: 7,
        level: 0.95,
        ..BootstrapConfig::default()
    };
    let a = bootstrap_mean_ci(&values, &cfg).unwrap();
    let b = bootstrap_mean_ci(&values, &cfg).unwrap();
    assert_eq!(
        a, b,
        "same seed, same interval (independent of thread scheduling)"
    );
    assert!(a.lower < a.estimate && a.estimate < a.upper);
    let c = bootstrap_mean_ci(&values, &BootstrapConfig { seed: 8, ..cfg }).unwrap();
    assert_ne!(a, c);
    // Mean of 0..1 uniform-ish values, n = 500: CI half-width about 1.96 * 0.29 / sqrt(500) = 0.025.
    assert!(
        (a.upper - a.lower) > 0.03 && (a.upper - a.lower) < 0.07,
        "{a:?}"
    );
    assert!(bootstrap_mean_ci(&[], &cfg).is_err());
    assert!(
        bootstrap_ci(
            3,
            &BootstrapConfig {
                n_resamples: 0,
                ..cfg
            },
            |_| Ok(1.0)
        )
        .is_err()
    );
    // Statistic failing on most resamples -> error, not NaN.
    assert!(
        bootstrap_ci(5, &cfg, |idx| if idx == [0, 1, 2, 3, 4] {
            Ok(1.0)
        } else {
            Ok(f64::NAN)
        })
        .is_err()
    );
    // ER bootstrap over baseline models.
    let id: Vec<f64> = (0..20).map(|i| 0.4 + 0.02 * i as f64).collect();
    let ood: Vec<f64> = id
        .iter()
        .map(|x| x - 0.2 + 0.01 * ((x * 100.0) as i32 % 3) as f64)
        .collect();
    let ci = bootstrap_effective_robustness(&id, &ood, FitSpace::Logit, 0.7, 0.6, &cfg).unwrap();
    assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper, "{ci:?}");
}

#[test]
fn arrow_entry_point_borrows_the_child_buffer() {
    let values = Float32Array::from(vec![0.1f32, 0.9, 0.8, 0.2, 0.5, 0.5]);
    let field = Arc::new(Field::new("item", DataType::Float32, false));
    let list = FixedSizeListArray::new(field, 2, Arc::new(values), None);
    let m = Matrix::from_arrow(&list).unwrap();
    assert_eq!((m.rows(), m.cols()), (3, 2));
    assert_eq!(predictions(m), vec![1, 0, 0]);
    let sliced = list.slice(1, 2);
    let ms = Matrix::from_arrow(&sliced).unwrap();
    assert_eq!(ms.row(0), &[0.8, 0.2]);
}

/// The cached resample plans are the draws of `Rng::resample_into`, counted; the per-replicate
/// ranking of `RankedPool` equals a fresh `BinaryRanking` of the resampled scores (ties included).
#[test]
fn counted_replicates_equal_index_replicates() {
    use atlas_metrics::bootstrap::{CiMethod, Rng, bootstrap_counts_ci, plan};
    use atlas_metrics::ood::{BinaryRanking, RankedPool};
    // Percentile: the statistics below rely on every replicate holding exactly n items (BCa's
    // jackknife evaluations hold fewer).
    let cfg = BootstrapConfig {
        n_resamples: 50,
        seed: 11,
        level: 0.9,
        method: CiMethod::Percentile,
        ..BootstrapConfig::default()
    };
    let n = 300;
    let p = plan(n, &cfg).unwrap();
    // Scores with many ties (rounded), ID higher on average.
    let pos: Vec<f64> = (0..120)
        .map(|i| ((i * 7919 % 97) as f64 / 10.0).round())
        .collect();
    let neg: Vec<f64> = (0..180)
        .map(|i| ((i * 104729 % 89) as f64 / 12.0).round())
        .collect();
    let pool = RankedPool::new(&pos, &neg).unwrap();
    for b in 0..cfg.n_resamples {
        let mut idx = vec![0usize; n];
        Rng::for_replicate(cfg.seed, b as u64).resample_into(n, &mut idx);
        let mut counts = vec![0u16; n];
        for &i in &idx {
            counts[i] += 1;
        }
        assert_eq!(p.counts(b), &counts[..], "replicate {b}");
        let (a, o): (Vec<usize>, Vec<usize>) = idx.iter().partition(|&&i| i < 120);
        let a: Vec<f64> = a.iter().map(|&i| pos[i]).collect();
        let o: Vec<f64> = o.iter().map(|&i| neg[i - 120]).collect();
        let fresh = BinaryRanking::new(&a, &o).unwrap();
        let counted = pool.ranking(&counts[..120], &counts[120..]).unwrap();
        assert_eq!(fresh, counted, "replicate {b}");
        assert_eq!(fresh.roc_auc(), counted.roc_auc());
        assert_eq!(fresh.fpr_at_recall(0.95), counted.fpr_at_recall(0.95));
        for level in [0.95, 0.5, 0.3, 1.0] {
            let (auc, fpr) = pool
                .auroc_fpr(&counts[..120], &counts[120..], level)
                .unwrap();
            assert_eq!(auc, fresh.roc_auc(), "replicate {b}");
            assert_eq!(
                fpr,
                fresh.fpr_at_recall(level),
                "replicate {b} level {level}"
            );
        }
    }
    // Several statistics from one pass equal separate calls.
    let values: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
    let both = bootstrap_counts_ci(n, &cfg, 2, |c, out| {
        let s: f64 = c.iter().zip(&values).map(|(&c, v)| c as f64 * v).sum();
        out[0] = s / n as f64;
        out[1] = 2.0 * s / n as f64;
        Ok(())
    })
    .unwrap();
    let single = bootstrap_mean_ci(&values, &cfg).unwrap();
    assert!(
        (both[0].lower - single.lower).abs() < 1e-12
            && (both[0].upper - single.upper).abs() < 1e-12
    );
    assert!((both[1].upper - 2.0 * single.upper).abs() < 1e-9);
    // One stratum is exactly the plain counted bootstrap; a second stratum is resampled apart.
    use atlas_metrics::bootstrap::bootstrap_strata_ci;
    let strat = bootstrap_strata_ci(&[n, 40], &cfg, 2, |c, out| {
        assert_eq!((c[0].len(), c[1].len()), (n, 40));
        assert_eq!(c[1].iter().map(|&x| x as usize).sum::<usize>(), 40);
        out[0] = c[0]
            .iter()
            .zip(&values)
            .map(|(&c, v)| c as f64 * v)
            .sum::<f64>()
            / n as f64;
        out[1] = c[1].iter().map(|&x| x as f64).sum::<f64>();
        Ok(())
    })
    .unwrap();
    assert!(
        (strat[0].lower - single.lower).abs() < 1e-12
            && (strat[0].upper - single.upper).abs() < 1e-12
    );
    assert_eq!((strat[1].lower, strat[1].upper), (40.0, 40.0));
    let via_idx = bootstrap_ci(n, &cfg, |idx| {
        Ok(idx.iter().map(|&i| values[i]).sum::<f64>() / n as f64)
    })
    .unwrap();
    assert!(
        (via_idx.lower - single.lower).abs() < 1e-12
            && (via_idx.upper - single.upper).abs() < 1e-12
    );
}

/// The counted ECE of a replicate equals `ece` on the expanded items.
#[test]
fn counted_ece_equals_ece_on_expanded_items() {
    use atlas_metrics::calibration::{bin_indices, ece, ece_counted};
    let conf: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
    let ok: Vec<bool> = (0..200).map(|i| (i * 13) % 3 != 0).collect();
    let bins = bin_indices(&conf, 15).unwrap();
    let counts: Vec<u16> = (0..200).map(|i| ((i * 7) % 4) as u16).collect();
    let (mut c, mut k) = (Vec::new(), Vec::new());
    for i in 0..200 {
        for _ in 0..counts[i] {
            c.push(conf[i]);
            k.push(ok[i]);
        }
    }
    let want = ece(&c, &k, 15).unwrap();
    let got = ece_counted(&bins, &conf, &ok, &counts, 15);
    assert!((want - got).abs() < 1e-12, "{want} vs {got}");
    assert!(want > 0.0);
}

/// The fused per-row pass equals the separate confidence, NLL and Brier functions.
#[test]
fn row_stats_equal_separate_functions() {
    use atlas_metrics::calibration::{brier, confidences_and_correct, nll, row_stats};
    use atlas_metrics::classification::Matrix;
    let logits: Vec<f32> = (0..40 * 7)
        .map(|i| ((i * 29 % 53) as f32 / 9.0).sin() * 4.0)
        .collect();
    let labels: Vec<u32> = (0..40).map(|i| (i * 3 % 7) as u32).collect();
    let m = Matrix::new(&logits, 7).unwrap();
    for t in [1.0, 0.7, 2.5] {
        let rows = row_stats(m, &labels, t).unwrap();
        let (conf, ok) = confidences_and_correct(m, &labels, t).unwrap();
        for (r, (c, k)) in rows.iter().zip(conf.iter().zip(&ok)) {
            assert!((r.confidence - c).abs() < 1e-12);
            assert_eq!(r.correct, *k);
        }
        let mean = |f: fn(&atlas_metrics::calibration::RowStats) -> f64| {
            rows.iter().map(f).sum::<f64>() / rows.len() as f64
        };
        assert!((mean(|r| r.nll) - nll(m, &labels, t).unwrap()).abs() < 1e-10);
        assert!((mean(|r| r.brier) - brier(m, &labels, t).unwrap()).abs() < 1e-10);
    }
}
