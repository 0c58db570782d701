//! Trainer tests on a few generated world images: the loss goes down, training is deterministic,
//! and a saved checkpoint loads back through `atlas_models::load` with the same embeddings.

use std::path::PathBuf;
use std::sync::OnceLock;

use atlas_models::{
    Activation, CheckpointSource, Clip, ClipConfig, LoadOptions, LoadedClip, SaveDtype,
};
use atlas_train::data::Split;
use atlas_train::eval::to_vec2;
use atlas_train::model::{INIT_LOCK, interpolate, materialize};
use atlas_train::train::token_tensor;
use atlas_train::zoo::{
    ArchSpec, RESOLUTION, WorldKind, world_config, zoo_preprocess, zoo_tokenizer,
};
use atlas_train::{
    Augment, CaptionViews, ClipLike, LossKind, TrainConfig, WordTokenizer, train_contrastive,
};
use burn::module::Module;
use burn::tensor::Device;

/// A tiny world (train split only), generated once per test process.
fn world() -> &'static (PathBuf, Split, WordTokenizer) {
    static W: OnceLock<(PathBuf, Split, WordTokenizer)> = OnceLock::new();
    W.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("atlas-train-test-{}", std::process::id()));
        let cfg = world_config(WorldKind::TextureCorrelated, 64, 7);
        let dir = atlas_train::zoo::ensure_world(&cfg, &root, &[atlas_world::Split::Train])
            .expect("generate test world");
        let train = Split::load(&dir.join("train"), RESOLUTION).expect("load test world");
        let templates = atlas_train::data::read_lines_near(&dir.join("train"), "templates.txt")
            .expect("templates");
        let tok = zoo_tokenizer(&templates, &train.classnames).expect("tokenizer");
        (dir, train, tok)
    })
}

fn tiny_config(tok: &WordTokenizer, siglip: bool) -> ClipConfig {
    tiny_arch().clip_config(tok.vocab_size(), tok.eot_id(), siglip)
}

fn tiny_arch() -> ArchSpec {
    ArchSpec {
        patch_size: 8,
        vision_width: 32,
        vision_layers: 1,
        vision_head_width: 16,
        text_width: 32,
        text_heads: 2,
        text_layers: 1,
        embed_dim: 32,
        resnet_layers: None,
    }
}

/// A tiny ModifiedResNet image tower (stem width 8, one block per stage).
fn tiny_resnet_config(tok: &WordTokenizer) -> ClipConfig {
    ArchSpec {
        vision_width: 8,
        vision_head_width: 32,
        resnet_layers: Some([1, 1, 1, 1]),
        ..tiny_arch()
    }
    .clip_config(tok.vocab_size(), tok.eot_id(), false)
}

fn build(config: &ClipConfig, seed: u64, device: &Device) -> Clip {
    let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let m = Clip::init(config, Activation::Gelu, device);
    materialize(&m);
    m
}

fn short(loss: LossKind, steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 16,
        lr: 3e-3,
        warmup: 2,
        weight_decay: 0.1,
        beta2: 0.98,
        seed: 3,
        loss,
        log_every: 0,
        captions: CaptionViews {
            drop_color: 0.5,
            drop_pattern: 0.5,
            object_only: 0.25,
            wrap: 0.25,
        },
        duplicate_captions_positive: true,
        augment: Augment::default(),
    }
}

fn run(loss: LossKind, steps: usize) -> (Clip, Vec<f32>) {
    let (_, train, tok) = world();
    let device = Device::flex().autodiff();
    let siglip = loss == LossKind::Siglip;
    let mut model = build(&tiny_config(tok, siglip), 11, &device);
    if siglip {
        model = model.set_logit_params(10f32.ln(), Some(-10.0));
    }
    let (model, log) = train_contrastive(
        model,
        train,
        tok,
        &zoo_preprocess(),
        &short(loss, steps),
        &device,
    )
    .expect("train");
    (model, log.losses)
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn clip_loss_goes_down() {
    let (_, losses) = run(LossKind::Clip, 40);
    let (first, last) = (mean(&losses[..5]), mean(&losses[35..]));
    assert!(
        last < first - 0.2,
        "CLIP loss did not go down: {first} -> {last} ({losses:?})"
    );
}

#[test]
fn siglip_loss_goes_down() {
    let (_, losses) = run(LossKind::Siglip, 30);
    let (first, last) = (mean(&losses[..5]), mean(&losses[25..]));
    assert!(
        last < first,
        "SigLIP loss did not go down: {first} -> {last} ({losses:?})"
    );
}

#[test]
fn same_seed_same_loss_curve() {
    let (_, a) = run(LossKind::Clip, 6);
    let (_, b) = run(LossKind::Clip, 6);
    assert_eq!(a, b, "two runs with the same seed differ");
}

fn embeddings(
    model: &Clip,
    train: &Split,
    tok: &WordTokenizer,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let idx: Vec<usize> = (0..8).collect();
    let img = model.encode_image(train.batch(&idx, &zoo_preprocess(), device));
    let ids: Vec<Vec<u32>> = train.captions[..8].iter().map(|c| tok.encode(c)).collect();
    let txt = ClipLike::encode_text(model, token_tensor(&ids, tok.context_length, device));
    (to_vec2(img).0, to_vec2(txt).0)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Saves `model` as an f32 open_clip checkpoint in a fresh temporary directory and loads it back
/// through the public loader.
fn save_and_reload(model: &Clip, config: &ClipConfig) -> (tempfile::TempDir, LoadedClip) {
    let dir = tempfile::tempdir().expect("tempdir");
    atlas_models::save_open_clip(model, config, &zoo_preprocess(), dir.path(), SaveDtype::F32)
        .expect("save");
    let source: CheckpointSource = format!("local-dir:{}", dir.path().display())
        .parse()
        .expect("source");
    let loaded = atlas_models::load(&source, &LoadOptions::default()).expect("load");
    (dir, loaded)
}

#[test]
fn saved_checkpoint_loads_back_with_same_embeddings() {
    let (_, train, tok) = world();
    let (model, _) = run(LossKind::Clip, 3);
    let model = model.valid();
    let device = Device::flex();
    let config = tiny_config(tok, false);
    let (dir, loaded) = save_and_reload(&model, &config);
    tok.save(&dir.path().join("tokenizer.json"))
        .expect("save tokenizer");
    assert_eq!(loaded.config, config);
    assert_eq!(loaded.preprocess, zoo_preprocess());

    let (img_mem, txt_mem) = embeddings(&model, train, tok, &device);
    // Through the loader's public API (host pixels, token id rows).
    let idx: Vec<usize> = (0..8).collect();
    let pixels = to_vec4(train.batch(&idx, &zoo_preprocess(), &device));
    let img_loaded = loaded.encode_images(&pixels, 8).expect("encode images");
    let ids: Vec<Vec<u32>> = train.captions[..8].iter().map(|c| tok.encode(c)).collect();
    let txt_loaded = loaded.encode_texts(&ids).expect("encode texts");
    assert!(max_abs_diff(&img_mem, &img_loaded) < 1e-5);
    assert!(max_abs_diff(&txt_mem, &txt_loaded) < 1e-5);
    let scale = model.logit_scale().exp().into_scalar::<f32>();
    assert!((loaded.logit_scale - scale).abs() < 1e-4 * scale);

    // The tokenizer.json written next to the checkpoint encodes like the trainer.
    let hf = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).expect("hf");
    for c in &train.captions[..8] {
        let enc = hf.encode(c.as_str(), true).expect("encode");
        assert_eq!(enc.get_ids(), tok.encode(c).as_slice(), "{c}");
    }
}

fn to_vec4(t: burn::tensor::Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

#[test]
fn wise_ft_endpoints() {
    let (_, train, tok) = world();
    let device = Device::flex();
    let config = tiny_config(tok, false);
    let a = build(&config, 1, &device);
    let b = build(&config, 2, &device);
    let (ia, _) = embeddings(&a, train, tok, &device);
    let (ib, _) = embeddings(&b, train, tok, &device);
    let (i1, _) = embeddings(&interpolate(&a, b.clone(), 1.0), train, tok, &device);
    let (i0, _) = embeddings(&interpolate(&a, b.clone(), 0.0), train, tok, &device);
    assert!(max_abs_diff(&ia, &i1) < 1e-5);
    assert!(max_abs_diff(&ib, &i0) < 1e-5);
    let (ih, _) = embeddings(&interpolate(&a, b, 0.5), train, tok, &device);
    assert!(max_abs_diff(&ia, &ih) > 1e-3);
}

/// The ModifiedResNet tower trains (BatchNorm on batch statistics, running statistics updated),
/// and its checkpoint reloads with the same embeddings (eval mode: running statistics).
#[test]
fn resnet_tower_trains_and_round_trips() {
    let (_, train, tok) = world();
    let ad = Device::flex().autodiff();
    let config = tiny_resnet_config(tok);
    let model = build(&config, 5, &ad);
    let mut cfg = short(LossKind::Clip, 40);
    cfg.augment = Augment {
        flip: true,
        max_shift: 2,
    };
    let (model, log) =
        train_contrastive(model, train, tok, &zoo_preprocess(), &cfg, &ad).expect("train");
    let (first, last) = (mean(&log.losses[..5]), mean(&log.losses[35..]));
    assert!(last < first - 0.2, "ResNet CLIP loss: {first} -> {last}");
    let model = model.valid();
    let running_var = match &model.visual {
        atlas_models::VisionTower::ModifiedResNet(r) => r.bn1.running_var.value(),
        _ => panic!("expected a ResNet tower"),
    };
    let rv = to_vec2(running_var.unsqueeze::<2>()).0;
    assert!(
        rv.iter().any(|v| (v - 1.0).abs() > 1e-3),
        "running statistics never updated: {rv:?}"
    );
    let (_dir, loaded) = save_and_reload(&model, &config);
    assert_eq!(loaded.config, config);
    let device = Device::flex();
    let (img_mem, _) = embeddings(&model, train, tok, &device);
    let idx: Vec<usize> = (0..8).collect();
    let pixels = to_vec4(train.batch(&idx, &zoo_preprocess(), &device));
    let img_loaded = loaded.encode_images(&pixels, 8).expect("encode images");
    assert!(max_abs_diff(&img_mem, &img_loaded) < 1e-5);
}
