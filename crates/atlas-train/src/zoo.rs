//! The demo zoo: a reference CLIP model and variants that each differ from it in ONE factor,
//! trained on the generated world and saved as open_clip checkpoints.
//!
//! - [`catalog`]: the models ([`zoo_specs`]), architectures, recipes, options, shared world,
//!   preprocessing and tokenizer;
//! - `build`: one model's build and the parallel schedule of builds;
//! - [`cards`]: reports, model cards, the zoo README and [`check_cards`];
//! - [`lmm`]: the demo LMM (`llava`: a LLaVA-architecture model on `arch`'s saved tower).
//!
//! A build writes `zoo_report.json` and `README.md` beside the models; a partial build
//! (`ZooOptions::only`) updates its models' entries of an earlier report in the same folder.

mod build;
pub mod cards;
pub mod catalog;
pub mod lmm;

use std::path::{Path, PathBuf};
use std::time::Instant;

use atlas_models::{Precision, select_device};
use atlas_world::WorldConfig;

pub use atlas_artifacts::FactorTags;
pub use cards::{CardCheck, ModelReport, ZooReport, check_cards, zoo_readme};
pub use catalog::{
    ArchSpec, CONTEXT_LENGTH, EVAL_SPLITS, PROMPTS_TAG, RESOLUTION, Recipe, SIMPLE_PROMPT,
    WorldKind, ZOO_VERSION, ZooOptions, ZooSpec, reference_train, world_config, zoo_preprocess,
    zoo_specs, zoo_tokenizer,
};

use crate::data::{Split, read_lines_near};
use crate::error::{Result, TrainError, io_err};
use build::{BuildCtx, schedule};
use cards::write_json;
use catalog::needed;

/// Builds (or reuses) a world and returns its root directory.
pub fn ensure_world(
    cfg: &WorldConfig,
    root: &Path,
    splits: &[atlas_world::Split],
) -> Result<PathBuf> {
    let dir = root.join(&cfg.hash()[..16]);
    let missing = splits
        .iter()
        .any(|s| !dir.join(s.name()).join("manifest.csv").is_file());
    if missing {
        atlas_world::generate(cfg, &dir, splits).map_err(|e| TrainError::World(e.to_string()))?;
    }
    Ok(dir)
}

/// Builds the demo zoo into `out_dir/<name>/`. See [`zoo_specs`] and the crate docs.
pub fn train_demo_zoo(out_dir: &Path, opts: &ZooOptions) -> Result<ZooReport> {
    let start = Instant::now();
    let specs = zoo_specs();
    let wanted = needed(&specs, &opts.only)?;
    let device =
        select_device(opts.device, Precision::F32).map_err(|e| TrainError::Model(e.to_string()))?;
    let ad = device.clone().autodiff();
    let pre = zoo_preprocess();

    use atlas_world::Split as WS;
    let ref_world = world_config(
        WorldKind::TextureCorrelated,
        opts.train_size,
        opts.world_seed,
    );
    let eval_splits: Vec<WS> = vec![
        WS::Train,
        WS::IdTest,
        WS::ShiftResampled,
        WS::ShiftSketch,
        WS::ShiftRendition,
        WS::CueConflict,
    ];
    let t_world = Instant::now();
    let ref_dir = ensure_world(&ref_world, &opts.world_dir, &eval_splits)?;
    let need_balanced = specs
        .iter()
        .any(|s| wanted.contains(&s.name) && s.recipe.world() == Some(WorldKind::Balanced));
    let bal_dir = if need_balanced {
        let cfg = world_config(WorldKind::Balanced, opts.train_size, opts.world_seed);
        Some(ensure_world(&cfg, &opts.world_dir, &[WS::Train])?)
    } else {
        None
    };
    let world_seconds = t_world.elapsed().as_secs_f64();

    let classnames = read_lines_near(&ref_dir.join("train"), "classnames.txt")?;
    let templates = read_lines_near(&ref_dir.join("train"), "templates.txt")?;
    let tok = zoo_tokenizer(&templates, &classnames)?;
    let train_ref = Split::load(&ref_dir.join("train"), RESOLUTION)?;
    for c in train_ref.captions.iter().take(2000) {
        let unk = tok.unknown_words(c);
        if !unk.is_empty() {
            return Err(TrainError::Tokenizer(format!(
                "caption {c:?} has words outside the vocabulary: {unk:?}"
            )));
        }
    }
    let train_bal = match &bal_dir {
        Some(d) => Some(Split::load(&d.join("train"), RESOLUTION)?),
        None => None,
    };
    let mut evals = Vec::new();
    for s in &eval_splits[1..] {
        evals.push((
            s.name().to_string(),
            Split::load(&ref_dir.join(s.name()), RESOLUTION)?,
        ));
    }

    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    for (file, lines) in [
        ("classnames.txt", &classnames),
        ("templates.txt", &templates),
    ] {
        let path = out_dir.join(file);
        std::fs::write(&path, lines.join("\n") + "\n").map_err(io_err(&path))?;
    }
    let ctx = BuildCtx {
        train_ref: &train_ref,
        train_bal: train_bal.as_ref(),
        tok: &tok,
        pre: &pre,
        device: &device,
        ad: &ad,
        classnames: &classnames,
        templates: &templates,
        evals: &evals,
        out_dir,
        opts,
        world: &ref_world,
    };
    let todo: Vec<&ZooSpec> = specs.iter().filter(|s| wanted.contains(&s.name)).collect();
    let (trained, mut reports) = schedule(&todo, opts.jobs.max(1), &ctx)?;
    drop(trained);
    // Reports in spec order, whatever order the workers finished in.
    reports.sort_by_key(|r| specs.iter().position(|s| s.name == r.name));
    let total_weights_bytes = reports.iter().map(|r| r.weights_bytes).sum();
    let report = ZooReport {
        models: reports,
        total_seconds: start.elapsed().as_secs_f64(),
        total_weights_bytes,
        world_seconds,
    };
    let path = out_dir.join("zoo_report.json");
    let written = match opts.only.is_empty() {
        true => report.clone(),
        false => merge_reports(read_report(&path)?, &report, &specs),
    };
    write_json(&path, &serde_json::to_value(&written).unwrap_or_default())?;
    let readme = out_dir.join("README.md");
    std::fs::write(&readme, zoo_readme(&written, opts)).map_err(io_err(&readme))?;
    Ok(report)
}

/// The `zoo_report.json` of an earlier build in the output folder, if there is one.
fn read_report(path: &Path) -> Result<Option<ZooReport>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| TrainError::Json {
            path: path.to_path_buf(),
            source,
        })
}

/// A partial build (`--only`) folded into the folder's earlier report: its models replace their
/// earlier entries, the others are kept (models no longer in the catalogue are dropped), in
/// catalogue order; its time is added to the totals, so `total_seconds` is the time spent on
/// all the builds the folder holds.
fn merge_reports(old: Option<ZooReport>, new: &ZooReport, specs: &[ZooSpec]) -> ZooReport {
    let Some(old) = old else {
        return new.clone();
    };
    let mut models: Vec<ModelReport> = old
        .models
        .into_iter()
        .filter(|m| !new.models.iter().any(|n| n.name == m.name))
        .filter(|m| specs.iter().any(|s| s.name == m.name))
        .chain(new.models.iter().cloned())
        .collect();
    models.sort_by_key(|m| specs.iter().position(|s| s.name == m.name));
    ZooReport {
        total_weights_bytes: models.iter().map(|m| m.weights_bytes).sum(),
        models,
        total_seconds: old.total_seconds + new.total_seconds,
        world_seconds: old.world_seconds + new.world_seconds,
    }
}
