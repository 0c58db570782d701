//! `evaluate` on an `EvalSet` (head restricted by `ZeroShotHead` methods, only group-member
//! columns multiplied, cosines optionally sliced from a precomputed matrix) equals the former
//! path: restrict the head, multiply every class, group-max the logits.

use std::collections::BTreeMap;

use atlas_artifacts::{ContentHash, EvalSet, ItemIndex, ItemStatus, ZeroShotHead};
use atlas_metrics::bootstrap::Rng;
use atlas_metrics::classification::{ClassGroups, GroupAggregation, logits_from_cosines};
use atlas_metrics::cosine::cosines;
use atlas_zeroshot::{Predictions, evaluate};

fn unit_rows(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * dim)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        .collect();
    for row in v.chunks_mut(dim) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// The former `atlas_zeroshot::evaluate`: restrict, multiply all classes, then group-max.
#[allow(clippy::too_many_arguments)]
fn former(
    index: &ItemIndex,
    emb: &[f32],
    status: &[ItemStatus],
    head: &ZeroShotHead,
    subset: Option<&[usize]>,
    groups: Option<&ClassGroups>,
    scale: f32,
    bias: Option<f32>,
) -> Predictions {
    let head = match subset {
        Some(s) => head.restrict(s).unwrap(),
        None => head.clone(),
    };
    let dim = head.dim;
    let classes = groups.map_or(head.num_classes(), ClassGroups::len);
    let keep: Vec<usize> = (0..index.len())
        .filter(|&i| status[i].is_embedded() && index.labels[i] >= 0)
        .collect();
    let rows: Vec<f32> = keep
        .iter()
        .flat_map(|&i| emb[i * dim..(i + 1) * dim].to_vec())
        .collect();
    let cos = cosines(&rows, &head.weights, dim);
    let mut logits = vec![0f32; cos.len()];
    logits_from_cosines(&cos, scale, bias, &mut logits).unwrap();
    if let Some(g) = groups {
        let mut agg = vec![0f64; g.len()];
        let mut out = Vec::new();
        for row in logits.chunks_exact(head.num_classes()) {
            g.aggregate_into(row, GroupAggregation::Max, &mut agg)
                .unwrap();
            out.extend(agg.iter().map(|&v| v as f32));
        }
        logits = out;
    }
    let failed = status.iter().filter(|s| !s.is_embedded()).count();
    Predictions::from_logits(
        keep.iter().map(|&i| index.ids[i].clone()).collect(),
        keep.iter().map(|&i| index.labels[i] as u32).collect(),
        &logits,
        classes,
        failed,
    )
    .unwrap()
}

#[test]
fn evaluate_on_an_eval_set_equals_the_former_path() {
    let mut rng = Rng::seed_from_u64(5);
    let (classes, dim, n) = (40, 24, 300);
    let head = ZeroShotHead {
        classnames: (0..classes).map(|c| format!("c{c}")).collect(),
        dim,
        weights: unit_rows(&mut rng, classes, dim),
        linear: None,
    };
    let subset: Vec<usize> = (0..12).map(|k| (k * 7 + 3) % classes).collect();
    for case in 0..4 {
        let with_subset = case % 2 == 1;
        let with_groups = case >= 2;
        let label_space = if with_subset { subset.len() } else { classes };
        let groups = with_groups.then(|| {
            let g: Vec<Vec<usize>> = (0..7)
                .map(|g| {
                    (0..1 + g % 3)
                        .map(|k| (g * 5 + k * 3) % label_space)
                        .collect()
                })
                .collect();
            ClassGroups::new(g, label_space).unwrap()
        });
        let n_labels = groups.as_ref().map_or(label_space, ClassGroups::len) as u64;
        let index = ItemIndex {
            ids: (0..n).map(|i| format!("item{i}")).collect(),
            hashes: (0..n)
                .map(|i| ContentHash::of(format!("h{i}").as_bytes()))
                .collect(),
            labels: (0..n)
                .map(|i| {
                    if i % 11 == 0 {
                        -1
                    } else {
                        rng.below(n_labels) as i64
                    }
                })
                .collect(),
            meta: BTreeMap::new(),
        };
        let emb = unit_rows(&mut rng, n, dim);
        let status: Vec<ItemStatus> = (0..n)
            .map(|i| match i % 17 {
                5 => ItemStatus::Failed("decode".into()),
                9 => ItemStatus::NotEmbedded,
                _ => ItemStatus::Embedded,
            })
            .collect();
        let sub = with_subset.then_some(subset.as_slice());
        let (scale, bias) = (
            if case == 1 { 30.5 } else { 100.0 },
            (case == 3).then_some(-2.5),
        );
        let want = former(
            &index,
            &emb,
            &status,
            &head,
            sub,
            groups.as_ref(),
            scale,
            bias,
        );
        let full_cos = cosines(&emb, &head.weights, dim);
        for cached in [None, Some(full_cos.as_slice())] {
            let set = EvalSet {
                model: "m",
                dataset: "d",
                role: "id",
                index: &index,
                embeddings: &emb,
                status: &status,
                head: &head,
                class_subset: sub,
                scale,
                bias,
                cosines: cached,
                norms: None,
            };
            let got = evaluate(&set, groups.as_ref()).unwrap();
            assert_eq!(got, want, "case {case}, cached {}", cached.is_some());
        }
    }
}

#[test]
fn groups_over_another_width_are_an_error() {
    let head = ZeroShotHead {
        classnames: vec!["a".into(), "b".into()],
        dim: 1,
        weights: vec![1.0, -1.0],
        linear: None,
    };
    let index = ItemIndex {
        ids: vec!["x".into()],
        hashes: vec![ContentHash::of(b"h")],
        labels: vec![0],
        meta: BTreeMap::new(),
    };
    let status = vec![ItemStatus::Embedded];
    let set = EvalSet {
        model: "m",
        dataset: "d",
        role: "id",
        index: &index,
        embeddings: &[1.0],
        status: &status,
        head: &head,
        class_subset: None,
        scale: 1.0,
        bias: None,
        cosines: None,
        norms: None,
    };
    let g = ClassGroups::new(vec![vec![0, 2]], 3).unwrap();
    assert!(matches!(
        evaluate(&set, Some(&g)),
        Err(atlas_zeroshot::ZeroShotError::GroupWidth { .. })
    ));
    assert!(evaluate(&set, None).is_ok());
}
