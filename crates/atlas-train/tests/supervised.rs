//! The supervised recipe on a few generated world images: cross-entropy goes down, the run is
//! deterministic, only the image tower and the head change, and the head file holds what the
//! evaluation pipeline reads (`weight` [classes, dim], `bias` [classes], F32).

use std::path::PathBuf;
use std::sync::OnceLock;

use atlas_models::{Activation, Clip, ClipConfig};
use atlas_train::data::Split;
use atlas_train::eval::to_vec2;
use atlas_train::model::{INIT_LOCK, flat_params, materialize};
use atlas_train::supervised::{evaluate_head, raw_image_features};
use atlas_train::zoo::{ArchSpec, RESOLUTION, WorldKind, world_config, zoo_preprocess};
use atlas_train::{
    Augment, CaptionViews, LossKind, Supervised, TrainConfig, TrainError, train_contrastive,
    train_supervised,
};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// A tiny world (train split only), generated once per test process.
fn world() -> &'static Split {
    static W: OnceLock<(PathBuf, Split)> = OnceLock::new();
    &W.get_or_init(|| {
        let root =
            std::env::temp_dir().join(format!("atlas-train-sup-test-{}", std::process::id()));
        let cfg = world_config(WorldKind::TextureCorrelated, 96, 5);
        let dir = atlas_train::zoo::ensure_world(&cfg, &root, &[atlas_world::Split::Train])
            .expect("generate test world");
        let train = Split::load(&dir.join("train"), RESOLUTION).expect("load test world");
        (dir, train)
    })
    .1
}

/// A tiny ModifiedResNet tower (stem width 8, one block per stage) and text tower.
fn config() -> ClipConfig {
    ArchSpec {
        patch_size: 8,
        vision_width: 8,
        vision_layers: 1,
        vision_head_width: 32,
        text_width: 32,
        text_heads: 2,
        text_layers: 1,
        embed_dim: 32,
        resnet_layers: Some([1, 1, 1, 1]),
    }
    .clip_config(40, 39, false)
}

fn model(seed: u64, device: &Device) -> Supervised {
    let clip = {
        let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let m = Clip::init(&config(), Activation::Gelu, device);
        materialize(&m);
        m
    };
    Supervised::new(clip, world().classnames.len(), 32, seed, device)
}

fn short(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 16,
        lr: 3e-3,
        warmup: 2,
        weight_decay: 0.1,
        beta2: 0.98,
        seed: 3,
        loss: LossKind::CrossEntropy,
        log_every: 0,
        captions: CaptionViews::none(),
        duplicate_captions_positive: false,
        augment: Augment {
            flip: true,
            max_shift: 2,
        },
    }
}

fn run(steps: usize) -> (Supervised, Vec<f32>) {
    let ad = Device::flex().autodiff();
    let (m, log) = train_supervised(
        model(11, &ad),
        world(),
        &zoo_preprocess(),
        &short(steps),
        &ad,
    )
    .expect("train");
    (m.valid(), log.losses)
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

fn text_params(clip: &Clip) -> Vec<f32> {
    let mut out = Vec::new();
    for t in flat_params(&clip.token_embedding)
        .into_iter()
        .chain(flat_params(&clip.transformer))
        .chain(flat_params(&clip.ln_final))
        .chain(flat_params(&clip.text_projection))
    {
        out.extend(to_vec2(t.unsqueeze::<2>()).0);
    }
    out
}

#[test]
fn cross_entropy_goes_down_and_only_the_image_side_trains() {
    let start = model(11, &Device::flex());
    let (trained, losses) = run(40);
    let (first, last) = (mean(&losses[..5]), mean(&losses[35..]));
    assert!(
        last < first - 0.3,
        "cross-entropy did not go down: {first} -> {last} ({losses:?})"
    );
    // 12 classes: a fresh head is near ln 12.
    assert!((first - 12f32.ln()).abs() < 0.6, "first loss {first}");
    assert_eq!(text_params(&start.clip), text_params(&trained.clip));
    assert_ne!(start.head(), trained.head());
    let w0 = to_vec2(start.clip.visual.forward(world().batch(
        &[0, 1],
        &zoo_preprocess(),
        &Device::flex(),
    )));
    let w1 = to_vec2(trained.clip.visual.forward(world().batch(
        &[0, 1],
        &zoo_preprocess(),
        &Device::flex(),
    )));
    assert_ne!(w0, w1, "the image tower did not change");
}

#[test]
fn same_seed_same_run() {
    let (a, la) = run(5);
    let (b, lb) = run(5);
    assert_eq!(la, lb);
    assert_eq!(a.head(), b.head());
}

#[test]
fn head_file_holds_weight_and_bias_in_f32() {
    let (m, _) = run(3);
    let head = m.head();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("head.safetensors");
    head.save(&path).expect("save head");
    let bytes = std::fs::read(&path).expect("read head");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse head");
    let read = |name: &str| {
        let t = st.tensor(name).expect(name);
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        let v: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (t.shape().to_vec(), v)
    };
    let classes = world().classnames.len();
    assert_eq!(read("weight"), (vec![classes, 32], head.weight.clone()));
    assert_eq!(read("bias"), (vec![classes], head.bias.clone()));

    // The head's logits are `features @ weight^T + bias` on the raw features, and the model's
    // own forward pass agrees with them.
    let device = Device::flex();
    let feats = raw_image_features(&m.clip, world(), &zoo_preprocess(), 32, &device);
    let (f, [n, d]) = to_vec2(feats.clone());
    let (logits, _) = to_vec2(head.logits(feats));
    for i in [0, n - 1] {
        for c in 0..classes {
            let want: f32 = (0..d)
                .map(|k| f[i * d + k] * head.weight[c * d + k])
                .sum::<f32>()
                + head.bias[c];
            assert!((logits[i * classes + c] - want).abs() < 1e-4);
        }
    }
    let idx: Vec<usize> = (0..n).collect();
    let direct: Tensor<2> = m.logits(world().batch(&idx, &zoo_preprocess(), &device));
    let (direct, _) = to_vec2(direct);
    assert!(
        logits
            .iter()
            .zip(&direct)
            .all(|(a, b)| (a - b).abs() < 1e-4)
    );
    let acc = evaluate_head(&m.clip, &head, world(), &zoo_preprocess(), &device, "train");
    assert_eq!(acc.n, n);
}

#[test]
fn each_trainer_refuses_the_other_loss() {
    let ad = Device::flex().autodiff();
    let mut clip_cfg = short(2);
    clip_cfg.loss = LossKind::Clip;
    let Err(e) = train_supervised(model(1, &ad), world(), &zoo_preprocess(), &clip_cfg, &ad) else {
        panic!("a CLIP loss is refused");
    };
    assert!(matches!(e, TrainError::Config(m) if m.contains("cross-entropy")));
    let tok = atlas_train::WordTokenizer::from_texts(["a circle"], 8).expect("tokenizer");
    let Err(e) = train_contrastive(
        model(1, &ad).clip,
        world(),
        &tok,
        &zoo_preprocess(),
        &short(2),
        &ad,
    ) else {
        panic!("cross-entropy is refused");
    };
    assert!(matches!(e, TrainError::Config(m) if m.contains("supervised")));
}
