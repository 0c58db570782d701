//! The same model code trains: build on an autodiff device, backprop a CLIP loss.
//! Run with `cargo test -p atlas-models --features autodiff --test autodiff`.
#![cfg(feature = "autodiff")]

use atlas_models::{Activation, Clip, builtin_config};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

#[test]
fn clip_loss_backprop_reaches_both_towers() {
    let mut cfg = builtin_config("ViT-B-32").unwrap_or_else(|| panic!("builtin config"));
    // Tiny version of the architecture.
    cfg.embed_dim = 16;
    cfg.vision.image_size = 32;
    cfg.vision.patch_size = 16;
    cfg.vision.width = 32;
    cfg.vision.head_width = 16;
    cfg.vision.layers = 1;
    cfg.text.width = 16;
    cfg.text.heads = 2;
    cfg.text.layers = 1;
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
        atlas_models::VisualTower::Vit(v) => v.conv1.grad(&grads),
        atlas_models::VisualTower::ResNet(r) => r.conv1.weight.grad(&grads),
    };
    let g_tok = model.token_embedding.weight.grad(&grads);
    let g_scale = model.logit_scale.grad(&grads);
    assert!(g_conv.is_some() && g_tok.is_some() && g_scale.is_some());
}
