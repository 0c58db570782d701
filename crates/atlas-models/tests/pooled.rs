//! `Transformer::forward_pooled` (the last block run for the pooled token only) is the same
//! function as pooling from `Transformer::forward`, with and without the causal mask, for any
//! token position per sequence. On the committed `qg_p8` fixture's two towers
//! (`tools/parity/make_model_fixtures.py`).

use std::path::Path;

use atlas_models::{CheckpointSource, LoadOptions, VisionTower, load};
use burn::tensor::{Distribution, Int, Tensor, TensorData};

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    let d = (a - b).abs().max().into_data();
    d.try_to_vec::<f32>().unwrap_or_else(|e| panic!("{e:?}"))[0]
}

#[test]
fn pooled_last_block_equals_pooling_the_full_forward() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qg_p8/open_clip");
    let m = load(&CheckpointSource::LocalDir(dir), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let VisionTower::Vit(visual) = &m.model.visual else {
        panic!("qg_p8 is a ViT");
    };
    let device = m.device.clone();
    for (tower, transformer) in [
        ("text", &m.model.transformer),
        ("image", &visual.transformer),
    ] {
        let [width] = transformer.resblocks[0].ln_1.gamma.dims();
        let (b, l) = (5, 13);
        let x: Tensor<3> = Tensor::random([b, l, width], Distribution::Normal(0.0, 1.0), &device);
        let pos_host: Vec<i64> = vec![0, 12, 3, 7, 12];
        for causal in [false, true] {
            let pos: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(pos_host.clone(), [b]), &device);
            let full = transformer
                .forward(x.clone(), causal)
                .reshape([b * l, width]);
            let rows: Vec<i64> = (0..b as i64)
                .map(|r| r * l as i64 + pos_host[r as usize])
                .collect();
            let rows: Tensor<1, Int> = Tensor::from_data(TensorData::new(rows, [b]), &device);
            let want = full.select(0, rows);
            let got = transformer.forward_pooled(x.clone(), causal, pos);
            assert_eq!(got.dims(), [b, width]);
            let err = max_abs_diff(got, want.clone());
            let scale = max_abs_diff(want, Tensor::zeros([b, width], &device));
            println!("{tower} causal={causal}: max abs diff {err:.3e} (max |x| {scale:.3})");
            assert!(
                err <= 1e-5 * scale.max(1.0),
                "{tower} causal={causal}: {err}"
            );
        }
    }
}
