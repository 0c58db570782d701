//! open_clip's `resize_pos_embed`: `F.interpolate(mode='bicubic', antialias=True,
//! align_corners=False)` on the patch grid of the position embedding, ported from PyTorch's CPU
//! kernel (`_upsample_bicubic2d_aa`: separable, Keys cubic with a = -0.5, support widened by the
//! scale when downsampling, weights normalised per output pixel; width pass first, then
//! height, all in f32 like the reference for f32 tensors).

/// Weights of one output index: the first input index and the normalised weights.
fn aa_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = in_size as f32 / out_size as f32;
    let support: f32 = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let invscale: f32 = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..out_size)
        .map(|i| {
            let center = scale * (i as f32 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
            let mut w: Vec<f32> = (xmin..xmax)
                .map(|j| cubic((j as f32 - center + 0.5) * invscale))
                .collect();
            let total: f32 = w.iter().sum();
            if total != 0.0 {
                for x in &mut w {
                    *x /= total;
                }
            }
            (xmin, w)
        })
        .collect()
}

fn cubic(x: f32) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// Resize a `[old_h * old_w, channels]` row-major grid of embeddings to `[new_h * new_w,
/// channels]`.
pub fn resize_grid_bicubic_aa(
    grid: &[f32],
    channels: usize,
    old: (usize, usize),
    new: (usize, usize),
) -> Vec<f32> {
    let (oh, ow) = old;
    let (nh, nw) = new;
    debug_assert_eq!(grid.len(), oh * ow * channels);
    // Horizontal pass: [oh, ow, C] -> [oh, nw, C].
    let wx = aa_weights(ow, nw);
    let mut tmp = vec![0f32; oh * nw * channels];
    for y in 0..oh {
        for (x, (xmin, ws)) in wx.iter().enumerate() {
            let out = &mut tmp[(y * nw + x) * channels..(y * nw + x + 1) * channels];
            for c in 0..channels {
                let mut acc = 0f32;
                for (j, w) in ws.iter().enumerate() {
                    acc += grid[(y * ow + xmin + j) * channels + c] * w;
                }
                out[c] = acc;
            }
        }
    }
    // Vertical pass: [oh, nw, C] -> [nh, nw, C].
    let wy = aa_weights(oh, nh);
    let mut out = vec![0f32; nh * nw * channels];
    for (y, (ymin, ws)) in wy.iter().enumerate() {
        for x in 0..nw {
            for c in 0..channels {
                let mut acc = 0f32;
                for (j, w) in ws.iter().enumerate() {
                    acc += tmp[((ymin + j) * nw + x) * channels + c] * w;
                }
                out[(y * nw + x) * channels + c] = acc;
            }
        }
    }
    out
}

/// open_clip `resize_pos_embed` on a `[1 + old_grid², width]` position embedding (one class
/// token). Returns `None` when the row count is not `1 + square`.
pub fn resize_pos_embed(pos: &[f32], width: usize, new_grid: usize) -> Option<Vec<f32>> {
    let rows = pos.len() / width.max(1);
    let old_tokens = rows.checked_sub(1)?;
    let old_grid = (old_tokens as f64).sqrt().round() as usize;
    if old_grid * old_grid != old_tokens || rows * width != pos.len() {
        return None;
    }
    let mut out = pos[..width].to_vec();
    out.extend(resize_grid_bicubic_aa(
        &pos[width..],
        width,
        (old_grid, old_grid),
        (new_grid, new_grid),
    ));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_identity() {
        let grid: Vec<f32> = (0..4 * 4 * 2).map(|x| x as f32 * 0.37).collect();
        let out = resize_grid_bicubic_aa(&grid, 2, (4, 4), (4, 4));
        for (a, b) in grid.iter().zip(&out) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
    }

    #[test]
    fn constant_stays_constant() {
        let grid = vec![1.5f32; 3 * 3];
        for n in [2, 5, 7] {
            let out = resize_grid_bicubic_aa(&grid, 1, (3, 3), (n, n));
            assert!(out.iter().all(|v| (v - 1.5).abs() < 1e-5));
        }
    }
}
