//! Synthetic evaluation sets for the stage crates' tests.

use std::collections::BTreeMap;

use atlas_artifacts::{ContentHash, EvalSet, ItemIndex, ItemStatus, ZeroShotHead};

/// One-hot head of `classes` rows in `classes` dimensions.
pub fn one_hot_head(classes: usize) -> ZeroShotHead {
    let mut weights = vec![0f32; classes * classes];
    for c in 0..classes {
        weights[c * classes + c] = 1.0;
    }
    ZeroShotHead {
        classnames: (0..classes).map(|c| format!("class{c}")).collect(),
        dim: classes,
        weights,
        linear: None,
    }
}

/// Unit vector mixing basis directions: `mix = [(dim index, weight)]`, then normalised.
pub fn mixed(dim: usize, mix: &[(usize, f32)]) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    for &(i, w) in mix {
        v[i] += w;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

/// Owned data behind an [`EvalSet`].
pub struct Owned {
    pub index: ItemIndex,
    pub emb: Vec<f32>,
    pub status: Vec<ItemStatus>,
    pub head: ZeroShotHead,
}

impl Owned {
    /// Items with labels and embedding rows (each row `head.dim` long).
    pub fn new(head: ZeroShotHead, labels: Vec<i64>, rows: Vec<Vec<f32>>) -> Self {
        let n = labels.len();
        assert_eq!(rows.len(), n);
        Self {
            index: ItemIndex {
                ids: (0..n).map(|i| format!("item{i}")).collect(),
                hashes: (0..n)
                    .map(|i| ContentHash::of(format!("h{i}").as_bytes()))
                    .collect(),
                labels,
                meta: BTreeMap::new(),
            },
            emb: rows.concat(),
            status: vec![ItemStatus::Embedded; n],
            head,
        }
    }

    /// Item `i` points at class `pred[i]` exactly.
    pub fn pointing(head: ZeroShotHead, labels: Vec<i64>, pred: &[usize]) -> Self {
        let dim = head.dim;
        let rows = pred
            .iter()
            .map(|&p| head.weights[p * dim..(p + 1) * dim].to_vec())
            .collect();
        Self::new(head, labels, rows)
    }

    pub fn with_meta(mut self, key: &str, values: Vec<String>) -> Self {
        self.index.meta.insert(key.to_string(), values);
        self
    }

    pub fn set<'a>(
        &'a self,
        model: &'a str,
        dataset: &'a str,
        role: &'a str,
        subset: Option<&'a [usize]>,
    ) -> EvalSet<'a> {
        EvalSet {
            model,
            dataset,
            role,
            index: &self.index,
            embeddings: &self.emb,
            status: &self.status,
            head: &self.head,
            class_subset: subset,
            scale: 100.0,
            bias: None,
            cosines: None,
            norms: None,
        }
    }
}
