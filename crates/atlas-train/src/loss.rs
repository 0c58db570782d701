//! Contrastive losses of CLIP and SigLIP.

use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Device, Tensor, TensorData};

/// Which loss trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// CLIP: symmetric cross-entropy over the batch similarity matrix, learnable temperature.
    Clip,
    /// SigLIP: pairwise sigmoid loss with learnable temperature and bias.
    Siglip,
    /// Supervised: softmax cross-entropy of a linear head's logits on the class labels
    /// ([`crate::supervised::train_supervised`]); no text.
    #[serde(rename = "cross-entropy")]
    CrossEntropy,
}

impl LossKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clip => "clip",
            Self::Siglip => "siglip",
            Self::CrossEntropy => "cross-entropy",
        }
    }
}

/// `[n, n]` identity matrix on `device`.
pub fn eye(n: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [n, n]), device)
}

/// CLIP loss (open_clip `ClipLoss`): `logits = exp(logit_scale) * img @ txt^T`,
/// `(CE(logits, arange) + CE(logits^T, arange)) / 2`. `img` and `txt` are L2-normalised `[n, d]`;
/// `logit_scale` is the log temperature, shape `[1]`.
pub fn clip_loss(img: Tensor<2>, txt: Tensor<2>, logit_scale: Tensor<1>) -> Tensor<1> {
    let [n, _] = img.dims();
    let positives = eye(n, &img.device());
    clip_loss_with_positives(img, txt, logit_scale, positives)
}

/// [`clip_loss`] with several positives per row: `positives` is a symmetric 0/1 `[n, n]` matrix
/// with a unit diagonal (e.g. [`same_caption_matrix`]); each row's target distribution is its
/// positives, uniformly. With the identity this is exactly [`clip_loss`].
pub fn clip_loss_with_positives(
    img: Tensor<2>,
    txt: Tensor<2>,
    logit_scale: Tensor<1>,
    positives: Tensor<2>,
) -> Tensor<1> {
    let [n, _] = img.dims();
    let scale = logit_scale.exp().reshape([1, 1]);
    let logits = img.matmul(txt.transpose()) * scale;
    let targets = positives.clone() / positives.sum_dim(1);
    let per_image = log_softmax(logits.clone(), 1) * targets.clone();
    // Symmetric positives: column sums equal row sums, so the transpose of `targets` is the
    // per-text target distribution.
    let per_text = log_softmax(logits, 0) * targets.transpose();
    let total = per_image.sum() + per_text.sum();
    total.mul_scalar(-0.5 / n as f64)
}

/// `[n, n]` 0/1 matrix: 1 where captions `i` and `j` have the same token ids (always on the
/// diagonal). Identical captions in a batch describe their images equally well, so they are
/// positives of each other, not negatives.
pub fn same_caption_matrix(ids: &[Vec<u32>], device: &Device) -> Tensor<2> {
    let n = ids.len();
    let mut v = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            if i == j || ids[i] == ids[j] {
                v[i * n + j] = 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [n, n]), device)
}

/// SigLIP loss (open_clip `SigLipLoss`, one device): `logits = exp(logit_scale) * img @ txt^T +
/// logit_bias`, labels `+1` on the diagonal and `-1` elsewhere, loss
/// `-sum(log_sigmoid(labels * logits)) / n`.
pub fn siglip_loss(
    img: Tensor<2>,
    txt: Tensor<2>,
    logit_scale: Tensor<1>,
    logit_bias: Tensor<1>,
) -> Tensor<1> {
    let [n, _] = img.dims();
    let positives = eye(n, &img.device());
    siglip_loss_with_positives(img, txt, logit_scale, logit_bias, positives)
}

/// [`siglip_loss`] with label `+1` wherever `positives` is 1.
pub fn siglip_loss_with_positives(
    img: Tensor<2>,
    txt: Tensor<2>,
    logit_scale: Tensor<1>,
    logit_bias: Tensor<1>,
    positives: Tensor<2>,
) -> Tensor<1> {
    let [n, _] = img.dims();
    let scale = logit_scale.exp().reshape([1, 1]);
    let logits = img.matmul(txt.transpose()) * scale + logit_bias.reshape([1, 1]);
    let labels = positives.mul_scalar(2.0).sub_scalar(1.0);
    log_sigmoid(logits * labels)
        .sum()
        .mul_scalar(-1.0 / n as f64)
}

/// Cross-entropy of `logits` `[n, c]` against integer `labels`, mean over the batch.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [n, c] = logits.dims();
    let device = logits.device();
    let mut onehot = vec![0f32; n * c];
    for (i, &l) in labels.iter().enumerate() {
        if l < c {
            onehot[i * c + l] = 1.0;
        }
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, c]), &device);
    (log_softmax(logits, 1) * onehot)
        .sum()
        .mul_scalar(-1.0 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Device::flex())
    }
    fn t1(v: f32) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![v], [1]), &Device::flex())
    }
    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    /// Reference values computed in-test from the definitions in f64.
    #[test]
    fn clip_and_siglip_match_definitions() {
        let img = [0.6f32, 0.8, 1.0, 0.0, 0.0, 1.0];
        let txt = [0.8f32, 0.6, 0.0, 1.0, 1.0, 0.0];
        let (scale, bias) = (2.0f64, -1.5f64);
        let s = |i: usize, j: usize| {
            (img[2 * i] * txt[2 * j] + img[2 * i + 1] * txt[2 * j + 1]) as f64 * scale.exp()
        };
        let mut ce_i = 0.0;
        let mut ce_t = 0.0;
        let mut sig = 0.0;
        for i in 0..3 {
            let lse_i = (0..3).map(|j| s(i, j).exp()).sum::<f64>().ln();
            let lse_t = (0..3).map(|j| s(j, i).exp()).sum::<f64>().ln();
            ce_i += lse_i - s(i, i);
            ce_t += lse_t - s(i, i);
            for j in 0..3 {
                let y = if i == j { 1.0 } else { -1.0 };
                let z = y * (s(i, j) + bias);
                sig += -(-(1.0 + (-z).exp()).ln());
            }
        }
        let want_clip = (ce_i + ce_t) / 6.0;
        let want_sig = sig / 3.0;
        let got_clip = scalar(clip_loss(
            t2(&img, [3, 2]),
            t2(&txt, [3, 2]),
            t1(scale as f32),
        ));
        let got_sig = scalar(siglip_loss(
            t2(&img, [3, 2]),
            t2(&txt, [3, 2]),
            t1(scale as f32),
            t1(bias as f32),
        ));
        assert!(
            (got_clip as f64 - want_clip).abs() < 1e-4,
            "{got_clip} vs {want_clip}"
        );
        assert!(
            (got_sig as f64 - want_sig).abs() < 1e-4,
            "{got_sig} vs {want_sig}"
        );
    }

    /// Two identical captions: each image's target is split over both texts.
    #[test]
    fn duplicate_captions_are_positives() {
        let ids = vec![vec![1, 2], vec![1, 2], vec![3]];
        let pos = same_caption_matrix(&ids, &Device::flex());
        let p = pos.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(p, vec![1., 1., 0., 1., 1., 0., 0., 0., 1.]);
        let img = [0.6f32, 0.8, 1.0, 0.0, 0.0, 1.0];
        let txt = [0.8f32, 0.6, 0.0, 1.0, 1.0, 0.0];
        let scale = 1.5f64;
        let s = |i: usize, j: usize| {
            (img[2 * i] * txt[2 * j] + img[2 * i + 1] * txt[2 * j + 1]) as f64 * scale.exp()
        };
        let (mut ce_i, mut ce_t) = (0.0, 0.0);
        for i in 0..3 {
            let lse_i = (0..3).map(|j| s(i, j).exp()).sum::<f64>().ln();
            let lse_t = (0..3).map(|j| s(j, i).exp()).sum::<f64>().ln();
            let m = (0..3).filter(|&j| p[i * 3 + j] > 0.0).count() as f64;
            for j in (0..3).filter(|&j| p[i * 3 + j] > 0.0) {
                ce_i += (lse_i - s(i, j)) / m;
                ce_t += (lse_t - s(j, i)) / m;
            }
        }
        let want = (ce_i + ce_t) / 6.0;
        let got = scalar(clip_loss_with_positives(
            t2(&img, [3, 2]),
            t2(&txt, [3, 2]),
            t1(scale as f32),
            pos,
        ));
        assert!((got as f64 - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn cross_entropy_uniform_is_log_c() {
        let got = scalar(cross_entropy(t2(&[0.0; 8], [2, 4]), &[1, 3]));
        assert!((got - 4f32.ln()).abs() < 1e-5);
    }
}
