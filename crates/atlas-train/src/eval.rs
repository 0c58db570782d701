//! Zero-shot evaluation inside the trainer, with open_clip's head rule: per class, embed every
//! template, L2-normalise each embedding, average, re-normalise.

use atlas_preprocess::PreprocessConfig;
use atlas_tokenizer::WordTokenizer;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::model::{ClipLike, l2_normalize};
use crate::train::token_tensor;

/// Fills `{c}` in a template with a class name.
pub fn fill(template: &str, class: &str) -> String {
    template.replace("{c}", class)
}

/// Zero-shot head `[classes, dim]` (rows L2-normalised). `model` on a plain (inference) device.
pub fn zero_shot_head<M: ClipLike>(
    model: &M,
    tok: &WordTokenizer,
    classnames: &[String],
    templates: &[String],
    device: &Device,
) -> Tensor<2> {
    let mut rows = Vec::with_capacity(classnames.len());
    for c in classnames {
        let ids: Vec<Vec<u32>> = templates.iter().map(|t| tok.encode(&fill(t, c))).collect();
        let emb = l2_normalize(model.encode_text(token_tensor(&ids, tok.context_length, device)));
        let mean = emb.mean_dim(0);
        rows.push(l2_normalize(mean));
    }
    Tensor::cat(rows, 0)
}

/// L2-normalised image embeddings `[n, dim]` of a whole split, in batches.
pub fn image_embeddings<M: ClipLike>(
    model: &M,
    data: &Split,
    pre: &PreprocessConfig,
    batch: usize,
    device: &Device,
) -> Tensor<2> {
    let idx: Vec<usize> = (0..data.len()).collect();
    let parts: Vec<Tensor<2>> = idx
        .chunks(batch.max(1))
        .map(|chunk| l2_normalize(model.encode_image(data.batch(chunk, pre, device))))
        .collect();
    Tensor::cat(parts, 0)
}

/// Row-major copy of a 2-D tensor.
pub fn to_vec2(t: Tensor<2>) -> (Vec<f32>, [usize; 2]) {
    let dims = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    (v, dims)
}

/// Top-1 predictions of `emb @ head^T`.
pub fn predict(emb: Tensor<2>, head: Tensor<2>) -> Vec<usize> {
    argmax_rows(emb.matmul(head.transpose()))
}

/// Index of each row's largest logit (the first on ties).
pub fn argmax_rows(logits: Tensor<2>) -> Vec<usize> {
    let (v, [n, c]) = to_vec2(logits);
    (0..n)
        .map(|i| {
            let row = &v[i * c..(i + 1) * c];
            let mut best = 0;
            for j in 1..c {
                if row[j] > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Accuracy of one split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitAccuracy {
    pub split: String,
    pub n: usize,
    pub top1: f64,
    /// For the cue-conflict split: fraction of (correct-shape or correct-texture) answers that are
    /// shape answers, when the manifest has a texture-class column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape_bias: Option<f64>,
}

/// Zero-shot accuracy of `model` on `data` with `head`.
pub fn evaluate<M: ClipLike>(
    model: &M,
    data: &Split,
    head: Tensor<2>,
    pre: &PreprocessConfig,
    device: &Device,
    split: &str,
) -> SplitAccuracy {
    let emb = image_embeddings(model, data, pre, 256, device);
    evaluate_embeddings(emb, data, head, split)
}

/// Zero-shot accuracy from precomputed L2-normalised image embeddings of `data`.
pub fn evaluate_embeddings(
    emb: Tensor<2>,
    data: &Split,
    head: Tensor<2>,
    split: &str,
) -> SplitAccuracy {
    accuracy(&predict(emb, head), data, split)
}

/// Top-1 accuracy (and the cue-conflict shape bias) of predictions `pred` of `data`'s items.
pub fn accuracy(pred: &[usize], data: &Split, split: &str) -> SplitAccuracy {
    let correct = pred
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| p == l)
        .count();
    SplitAccuracy {
        split: split.to_string(),
        n: data.len(),
        top1: correct as f64 / data.len().max(1) as f64,
        shape_bias: shape_bias(data, pred),
    }
}

/// Shape bias on a cue-conflict split: among predictions equal to the shape class or the texture
/// class (a manifest column naming a class, `texture_class` or `texture_label`), the fraction
/// that are the shape. `None` when there is no such column.
fn shape_bias(data: &Split, pred: &[usize]) -> Option<f64> {
    // Prefer the class-name column; fall back to an integer texture label.
    let col = ["texture_class", "texture_label"]
        .iter()
        .find_map(|name| data.factors.iter().find(|(k, _)| k == name))
        .map(|(_, v)| v)?;
    let (mut shape, mut texture) = (0usize, 0usize);
    for (i, p) in pred.iter().enumerate() {
        let value = col.get(i)?;
        let tex = match data.classnames.iter().position(|c| c == value) {
            Some(t) => t,
            None => match value.parse::<usize>() {
                Ok(t) if t < data.classnames.len() => t,
                _ => continue,
            },
        };
        if tex == data.labels[i] {
            continue;
        }
        if *p == data.labels[i] {
            shape += 1;
        } else if *p == tex {
            texture += 1;
        }
    }
    (shape + texture > 0).then(|| shape as f64 / (shape + texture) as f64)
}

/// `[n, d]` tensor from rows.
pub fn tensor2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}
