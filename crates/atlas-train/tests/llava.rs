//! The demo LMM's training on a small world with the committed `arch` tower: on a tiny budget
//! the loss falls and the saved model, loaded and run by atlas-llava, answers the two-way
//! question above chance; the saved directory is what atlas-llava's loader and tokenizer need.

use std::path::PathBuf;

use atlas_train::data::Split;
use atlas_train::llava::vocab::IMAGE_ID;
use atlas_train::llava::{LlavaArch, LlavaBuild, LlavaTrainConfig, build_llava};
use atlas_train::zoo::{RESOLUTION, WorldKind, world_config, zoo_preprocess};
use atlas_world::Split as WS;

fn arch_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/zoo/arch")
}

#[test]
fn a_short_run_learns_the_two_way_question() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = world_config(WorldKind::TextureCorrelated, 4000, 7);
    cfg.sizes.id_test = 200;
    let dir = atlas_train::zoo::ensure_world(&cfg, root.path(), &[WS::Train, WS::IdTest])
        .expect("generate the test world");
    let train = Split::load(&dir.join("train"), RESOLUTION).unwrap();
    let id_test = Split::load(&dir.join("id-test"), RESOLUTION).unwrap();
    let evals = vec![("id-test".to_string(), id_test)];
    let pre = zoo_preprocess();
    let out_dir = root.path().join("llava");
    let train_cfg = LlavaTrainConfig {
        steps: 150,
        batch_size: 32,
        warmup: 15,
        images: 4000,
        log_every: 50,
        ..LlavaTrainConfig::default()
    };
    let out = build_llava(&LlavaBuild {
        tower_dir: arch_dir(),
        train: &train,
        evals: &evals,
        pre: &pre,
        arch: LlavaArch::default(),
        cfg: train_cfg,
        out_dir: out_dir.clone(),
        device: atlas_models::DeviceKind::Cpu,
        eval_limit: 200,
    })
    .expect("build the demo LMM");

    let (first, last) = out.log.head_tail_mean(15);
    eprintln!(
        "loss {first:.3} -> {last:.3}; {:.2} steps/s; {:?}",
        out.log.steps_per_second, out.two_way
    );
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    let acc = &out.two_way[0];
    assert_eq!(acc.n, 200);
    assert!(
        acc.accuracy > 0.6 && acc.true_ + acc.false_ >= 150,
        "two-way accuracy {acc:?}"
    );

    // The directory loads in atlas-llava with its tokenizer; `<image>` is the config's token.
    let loaded = atlas_llava::load_on(&out_dir, &atlas_models::Device::flex()).unwrap();
    assert_eq!(loaded.config.image_token_id, IMAGE_ID);
    assert_eq!(loaded.config.image_tokens(), 16);
    let tok = loaded.tokenizer.as_ref().expect("tokenizer.json");
    let ids = tok
        .encode(&atlas_train::llava::train::two_way_prompt("circle", "star"))
        .unwrap();
    assert_eq!(ids.iter().filter(|&&t| t == IMAGE_ID).count(), 16);
    assert!(!ids.contains(&0), "no <unk> in the prompt: {ids:?}");
    let size = std::fs::metadata(out_dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert_eq!(size, out.weights_bytes);
    assert!(size < 4_000_000, "{size} bytes");
}
