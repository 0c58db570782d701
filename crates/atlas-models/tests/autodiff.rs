//! The same model code trains: build on an autodiff device, backprop a CLIP loss.
//! Runs in `cargo test --workspace` (atlas-train turns the `autodiff` feature on, and the
//! workspace build unifies features); alone: `cargo test -p atlas-models --features autodiff`.
#![cfg(feature = "autodiff")]

use atlas_models::{Activation, Clip, ClipConfig, VisionConfig, VisionTower, builtin_config};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};

/// A tiny version of ViT-B-32.
fn tiny_config() -> ClipConfig {
    let mut cfg = builtin_config("ViT-B-32").unwrap_or_else(|| panic!("builtin config"));
    cfg.embed_dim = 16;
    cfg.vision = VisionConfig::vit(32, 16, 32, 1, 16, 4.0);
    cfg.text.width = 16;
    cfg.text.heads = 2;
    cfg.text.layers = 1;
    cfg
}

fn ids(rows: Vec<i64>, shape: [usize; 2], dtype: DType, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(rows, shape).convert_dtype(dtype), device)
}

#[test]
fn clip_loss_backprop_reaches_both_towers() {
    let cfg = tiny_config();
    let device = Device::flex().autodiff();
    let model = Clip::init(&cfg, Activation::QuickGelu, &device);
    let b = 2;
    let pixels: Tensor<4> = Tensor::random([b, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let ids: Tensor<2, Int> = Tensor::from_data(
        TensorData::new(
            vec![49406i64, 320, 49407, 0, 49406, 1125, 539, 49407],
            [b, 4],
        ),
        &device,
    );
    let img = model.encode_image(pixels);
    let txt = model.encode_text(ids);
    let logits = img.matmul(txt.transpose()) * model.logit_scale.val().exp().unsqueeze::<2>();
    let loss = log_softmax(logits, 1).neg().mean();
    let grads = loss.backward();
    let g_conv = match &model.visual {
        VisionTower::Vit(v) => v.conv1.grad(&grads),
        VisionTower::ModifiedResNet(r) => r.conv1.weight.grad(&grads),
        VisionTower::SiglipVit(s) => s.patch_weight.grad(&grads),
        VisionTower::ConvNeXt(c) => c.trunk.stem_conv.weight.grad(&grads),
        VisionTower::Eva(e) => e.patch_weight.grad(&grads),
    };
    let g_tok = model.token_embedding.weight.grad(&grads);
    let g_scale = model.logit_scale.grad(&grads);
    assert!(g_conv.is_some() && g_tok.is_some() && g_scale.is_some());
}

/// `encode_text` finds the first end-of-text id on the device for ids of any int dtype (the
/// trainer builds them in the device's default int dtype, i32 on flex; i64 from host data),
/// pooling exactly where host-computed positions do, and its gradient reaches the embeddings.
#[test]
fn encode_text_on_autodiff_pools_at_the_first_eot() {
    let cfg = tiny_config();
    let device = Device::flex().autodiff();
    let model = Clip::init(&cfg, Activation::Gelu, &device);
    let eot = i64::from(cfg.text.eot_token_id);
    // Second EOT, padding after EOT, EOT first, and a row without EOT (pools at the last id).
    let rows = vec![
        49406, 320, eot, 7, eot, 0, //
        49406, 1125, 539, eot, 0, 0, //
        eot, 5, 6, 7, 8, 9, //
        49406, 11, 12, 13, 14, 15,
    ];
    let host_positions = [2i64, 3, 0, 5];
    let default_int = Tensor::<1, Int>::arange(0..1, &device).dtype();
    let shape = [4, 6];
    let want = model.encode_text_at(
        ids(rows.clone(), shape, default_int, &device),
        Tensor::from_data(
            TensorData::new(host_positions.to_vec(), [4]).convert_dtype(default_int),
            &device,
        ),
    );
    let want = want.try_into_vec_as::<f32>().unwrap_or_default();
    assert_eq!(want.len(), 4 * cfg.embed_dim);
    for dtype in [default_int, DType::I64, DType::I32] {
        let got = model.encode_text(ids(rows.clone(), shape, dtype, &device));
        let grads = got.clone().sum().backward();
        assert!(
            model.token_embedding.weight.grad(&grads).is_some(),
            "{dtype:?}: no gradient"
        );
        let got = got.try_into_vec_as::<f32>().unwrap_or_default();
        assert_eq!(got, want, "ids as {dtype:?}");
    }
}
