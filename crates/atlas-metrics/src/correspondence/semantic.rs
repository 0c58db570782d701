//! Semantic correspondence on SPair-71k as Probe3D evaluates it
//! (`evaluate_spair_correspondence.py`, `evals/datasets/spair.py`; config
//! `configs/spair_correspondence.yaml`: `image_size: 800`, `use_bbox: False`, `split: test`,
//! `num_instances: 200`, threshold 0.10).
//!
//! Per pair (`compute_errors`):
//! 1. keypoints ([`square_keypoints`], `SPairDataset.process_keypoints` / `__getitem__`): each
//!    image is padded bottom/right to a square of side `max(w, h)` and resized to
//!    `S = image_size`; a keypoint `(x, y)` becomes `trunc(trunc(x) * S / max(w, h))` (an int
//!    tensor scaled and written back into an int tensor); missing keypoints are `(0, 0)`, not
//!    visible;
//! 2. both feature maps L2-normalised per pixel (`F.normalize(dim=1)`);
//! 3. source features bilinearly sampled at `g = 2 kp / S - 1` with `align_corners=True`, i.e.
//!    at feature-pixel index `kp / S * (W_f - 1)` (the image corners map to the centres of the
//!    corner feature pixels), zero padding;
//! 4. heatmap = dot product with every target pixel; the first row-major maximum
//!    (`argmax_2d`) at `(col, row)` gives the prediction `(col, row) / W_f` (Probe3D divides both
//!    by the feature width; the maps are square);
//! 5. error = `|pred - kp_trg / S| / thresh_scale` for keypoints visible in both images, with
//!    `thresh_scale = max(bbox w, bbox h) / max(img w, img h)` of the target
//!    ([`threshold_scale`]): the error is in units of the target bounding box's longer side.
//!
//! PCK@alpha (`evaluate_dataset`): `mean(error < alpha)` pooled over all keypoints of all pairs
//! of one class and viewpoint-variation bin (0, 1, 2, or all pairs of the class); the reported
//! number is the mean over classes with pairs in that bin ([`spair_summary`]). A class-bin with
//! pairs but no keypoint visible in both is `None` and left out of the mean (Probe3D would
//! produce `NaN` for it, making the class mean `NaN`). Probe3D draws `num_instances = 200` pairs
//! per class and bin (`random.seed(20)` shuffle of a `glob` listing): choosing the pairs is the
//! caller's job.

use std::collections::BTreeMap;

use super::FeatureMap;
use super::sampling::{AlignCorners, bilinear_corners, unnormalize};
use crate::error::{MetricsError, Result, check_finite_f64, check_len};

/// PCK threshold (fraction of the bounding box's longer side).
pub const PCK_ALPHA: f64 = 0.10;
/// Probe3D's SPair image side.
pub const SPAIR_IMAGE_SIZE: u32 = 800;

/// A keypoint in `S x S` square-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    pub x: f64,
    pub y: f64,
    pub visible: bool,
}

/// `process_keypoints` then the resize of `__getitem__` (`use_bbox = False`): `raw[i]` is
/// keypoint `i` of the image's annotation (`None` when absent), `image_w x image_h` the original
/// image size.
pub fn square_keypoints(
    raw: &[Option<[f64; 2]>],
    image_w: u32,
    image_h: u32,
    image_size: u32,
) -> Result<Vec<Keypoint>> {
    let side = image_w.max(image_h);
    if side == 0 || image_size == 0 {
        return Err(MetricsError::InvalidParameter {
            what: "keypoint image size",
            reason: format!("{image_w} x {image_h} -> {image_size}"),
        });
    }
    let s = image_size as f64;
    let m = side as f64;
    raw.iter()
        .enumerate()
        .map(|(i, kp)| match kp {
            None => Ok(Keypoint {
                x: 0.0,
                y: 0.0,
                visible: false,
            }),
            Some([x, y]) => {
                if !(x.is_finite() && y.is_finite()) {
                    return Err(MetricsError::NonFinite {
                        what: "keypoint",
                        position: i,
                    });
                }
                Ok(Keypoint {
                    x: (x.trunc() * s / m).trunc(),
                    y: (y.trunc() * s / m).trunc(),
                    visible: true,
                })
            }
        })
        .collect()
}

/// SPair's `thresh_scale` without bounding-box crops: `max(r - l, d - u) / max(w, h)` from the
/// target's `trg_bndbox = [l, u, r, d]` and `trg_imsize[..2]`.
pub fn threshold_scale(trg_bndbox: [f64; 4], trg_imsize: [f64; 2]) -> Result<f64> {
    check_finite_f64("target bounding box", &trg_bndbox)?;
    check_finite_f64("target image size", &trg_imsize)?;
    let [l, u, r, d] = trg_bndbox;
    let scale = (r - l).max(d - u) / trg_imsize[0].max(trg_imsize[1]);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(MetricsError::Undefined {
            what: "SPair threshold scale",
            reason: format!("bbox {trg_bndbox:?} in image {trg_imsize:?}"),
        });
    }
    Ok(scale)
}

fn normalized(feat: &FeatureMap) -> Vec<f64> {
    let c = feat.channels();
    let mut out: Vec<f64> = feat.data().iter().map(|&v| v as f64).collect();
    for px in out.chunks_mut(c) {
        let n = px.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        px.iter_mut().for_each(|v| *v /= n);
    }
    out
}

/// Steps 2-4: the predicted target location of each source keypoint, as `(x, y)` in `[0, 1)`
/// units of the feature width. The two maps must have the same shape (Probe3D stacks them).
pub fn transfer_keypoints(
    src: &FeatureMap,
    tgt: &FeatureMap,
    kps: &[[f64; 2]],
    image_size: f64,
) -> Result<Vec<[f64; 2]>> {
    check_len("target feature height", src.height(), tgt.height())?;
    check_len("target feature width", src.width(), tgt.width())?;
    check_len("target feature channels", src.channels(), tgt.channels())?;
    check_finite_f64("keypoints", kps.as_flattened())?;
    if !(image_size.is_finite() && image_size > 0.0) {
        return Err(MetricsError::InvalidParameter {
            what: "image_size",
            reason: format!("{image_size}"),
        });
    }
    let (h, w, c) = (src.height(), src.width(), src.channels());
    let src64 = normalized(src);
    let tgt64 = normalized(tgt);
    let mut f = vec![0.0; c];
    Ok(kps
        .iter()
        .map(|kp| {
            let gx = kp[0] / image_size * 2.0 - 1.0;
            let gy = kp[1] / image_size * 2.0 - 1.0;
            let ix = unnormalize(gx, w, AlignCorners::True);
            let iy = unnormalize(gy, h, AlignCorners::True);
            f.iter_mut().for_each(|v| *v = 0.0);
            for (y, x, wt) in bilinear_corners(ix, iy, h, w) {
                let o = (y * w + x) * c;
                for (v, &s) in f.iter_mut().zip(&src64[o..o + c]) {
                    *v += s * wt;
                }
            }
            let mut best = (f64::NEG_INFINITY, 0usize);
            for (j, px) in tgt64.chunks(c).enumerate() {
                let s: f64 = px.iter().zip(&f).map(|(a, b)| a * b).sum();
                if s > best.0 {
                    best = (s, j);
                }
            }
            [
                (best.1 % w) as f64 / w as f64,
                (best.1 / w) as f64 / w as f64,
            ]
        })
        .collect())
}

/// Steps 2-5 for one pair: the normalised error of every keypoint visible in both images, in
/// keypoint order.
pub fn pair_errors(
    src: &FeatureMap,
    tgt: &FeatureMap,
    kps_src: &[Keypoint],
    kps_tgt: &[Keypoint],
    image_size: f64,
    thresh_scale: f64,
) -> Result<Vec<f64>> {
    check_len("target keypoints", kps_src.len(), kps_tgt.len())?;
    if !(thresh_scale.is_finite() && thresh_scale > 0.0) {
        return Err(MetricsError::InvalidParameter {
            what: "thresh_scale",
            reason: format!("{thresh_scale}"),
        });
    }
    let both: Vec<usize> = (0..kps_src.len())
        .filter(|&i| kps_src[i].visible && kps_tgt[i].visible)
        .collect();
    let pts: Vec<[f64; 2]> = both.iter().map(|&i| [kps_src[i].x, kps_src[i].y]).collect();
    let pred = transfer_keypoints(src, tgt, &pts, image_size)?;
    Ok(both
        .iter()
        .zip(&pred)
        .map(|(&i, p)| {
            let dx = p[0] - kps_tgt[i].x / image_size;
            let dy = p[1] - kps_tgt[i].y / image_size;
            (dx * dx + dy * dy).sqrt() / thresh_scale
        })
        .collect())
}

/// `mean(error < alpha)`; `None` for no errors.
pub fn pck(errors: &[f64], alpha: f64) -> Option<f64> {
    (!errors.is_empty())
        .then(|| errors.iter().filter(|&&e| e < alpha).count() as f64 / errors.len() as f64)
}

/// One evaluated pair.
#[derive(Debug, Clone, PartialEq)]
pub struct SpairPairErrors {
    pub category: String,
    /// SPair's `viewpoint_variation` (0, 1 or 2).
    pub viewpoint_variation: u8,
    pub errors: Vec<f64>,
}

/// PCK per class and viewpoint bin, bins ordered `[0, 1, 2, all]`, and their class means.
#[derive(Debug, Clone, PartialEq)]
pub struct SpairSummary {
    /// `None`: no pair in the bin, or no keypoint visible in both over its pairs.
    pub per_class: BTreeMap<String, [Option<f64>; 4]>,
    /// Mean over classes with a value in the bin; `None` when no class has one.
    pub mean: [Option<f64>; 4],
}

/// Aggregates pairs as `evaluate_spair_correspondence.py::main`.
pub fn spair_summary(pairs: &[SpairPairErrors], alpha: f64) -> Result<SpairSummary> {
    let mut pooled: BTreeMap<String, [Vec<f64>; 4]> = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        let bin = usize::from(p.viewpoint_variation);
        if bin > 2 {
            return Err(MetricsError::IndexOutOfRange {
                what: "viewpoint_variation",
                position: i,
                index: bin,
                bound: 3,
            });
        }
        check_finite_f64("SPair errors", &p.errors)?;
        let e = pooled.entry(p.category.clone()).or_default();
        e[bin].extend_from_slice(&p.errors);
        e[3].extend_from_slice(&p.errors);
    }
    let per_class: BTreeMap<String, [Option<f64>; 4]> = pooled
        .into_iter()
        .map(|(k, v)| (k, [0, 1, 2, 3].map(|b| pck(&v[b], alpha))))
        .collect();
    let mean = [0, 1, 2, 3].map(|b| {
        let vals: Vec<f64> = per_class.values().filter_map(|v| v[b]).collect();
        (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    });
    Ok(SpairSummary { per_class, mean })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypoints_truncate_like_int_tensors() {
        let k = square_keypoints(&[Some([10.7, 3.0]), None], 500, 375, 800).unwrap();
        // trunc(10.7) = 10, 10 * 800 / 500 = 16; 3 * 800 / 500 = 4.8 -> 4.
        assert_eq!((k[0].x, k[0].y, k[0].visible), (16.0, 4.0, true));
        assert!(!k[1].visible);
        assert!(
            (threshold_scale([10.0, 20.0, 110.0, 70.0], [500.0, 375.0]).unwrap() - 0.2).abs()
                < 1e-12
        );
        assert!(threshold_scale([10.0, 20.0, 10.0, 20.0], [500.0, 375.0]).is_err());
    }

    #[test]
    fn identical_maps_transfer_keypoints_onto_themselves() {
        // One-hot features: every pixel is its own best match.
        let (h, w) = (4, 4);
        let data: Vec<f32> = (0..h * w)
            .flat_map(|p| (0..h * w).map(move |c| if c == p { 1.0 } else { 0.0 }))
            .collect();
        let f = FeatureMap::new(h, w, h * w, data).unwrap();
        // image corner (0,0) -> feature pixel 0; S -> pixel 3 (align_corners=True).
        let p = transfer_keypoints(&f, &f, &[[0.0, 0.0], [8.0, 8.0]], 8.0).unwrap();
        assert_eq!(p, vec![[0.0, 0.0], [0.75, 0.75]]);
        let s = spair_summary(
            &[SpairPairErrors {
                category: "cat".into(),
                viewpoint_variation: 1,
                errors: vec![0.05, 0.2],
            }],
            PCK_ALPHA,
        )
        .unwrap();
        assert_eq!(s.mean, [None, Some(0.5), None, Some(0.5)]);
    }
}
