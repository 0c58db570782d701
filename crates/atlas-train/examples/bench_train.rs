//! Training speed of a zoo-sized model on random data (no world needed).
//!
//! ```text
//! cargo run -p atlas-train --example bench_train -- [steps] [batch] [patch] [width] [layers]
//! ```

use std::time::Instant;

use atlas_models::{Activation, Clip};
use atlas_train::data::Rng;
use atlas_train::loss::clip_loss;
use atlas_train::model::{ClipLike, l2_normalize};
use atlas_train::train::token_tensor;
use atlas_train::zoo::{ArchSpec, RESOLUTION};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let steps = arg(1, 10);
    let batch = arg(2, 128);
    let mut arch = ArchSpec::reference();
    arch.patch_size = arg(3, arch.patch_size as usize) as u32;
    arch.vision_width = arg(4, arch.vision_width);
    arch.vision_layers = arg(5, arch.vision_layers);
    let ctx = 20;
    let vocab = 120;
    let config = arch.clip_config(vocab, (vocab - 1) as u32, false);
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = Clip::init(&config, Activation::Gelu, &device);
    let mut optim = AdamWConfig::new().init();
    let mut rng = Rng::new(0);
    let s = RESOLUTION as usize;
    let t0 = Instant::now();
    for step in 0..steps {
        let px: Vec<f32> = (0..batch * 3 * s * s)
            .map(|_| rng.below(1000) as f32 / 500.0 - 1.0)
            .collect();
        let images = Tensor::<4>::from_data(TensorData::new(px, [batch, 3, s, s]), &device);
        let ids: Vec<Vec<u32>> = (0..batch)
            .map(|_| {
                let mut r: Vec<u32> = (0..ctx - 1)
                    .map(|_| 2 + rng.below(vocab - 4) as u32)
                    .collect();
                r.push((vocab - 1) as u32);
                r
            })
            .collect();
        let text = token_tensor(&ids, ctx, &device);
        let ts = Instant::now();
        let img = l2_normalize(ClipLike::encode_image(&model, images));
        let txt = l2_normalize(ClipLike::encode_text(&model, text));
        let loss = clip_loss(img, txt, model.logit_scale());
        let tf = ts.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let tb = ts.elapsed().as_secs_f64();
        model = optim.step(1e-3, model, grads);
        let v: f32 = model.logit_scale().into_scalar();
        eprintln!(
            "step {step}: fwd {tf:.3}s fwd+bwd {tb:.3}s total {:.3}s ({v})",
            ts.elapsed().as_secs_f64()
        );
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "patch {} width {} layers {} batch {batch}: {:.2} steps/s, {:.0} img/s",
        arch.patch_size,
        arch.vision_width,
        arch.vision_layers,
        steps as f64 / dt,
        (steps * batch) as f64 / dt
    );
}
