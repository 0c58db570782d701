//! The world's `world3d` split: the classes as rendered 3D objects (`atlas-world3d`) with a
//! manifest and an atlas-pairs `pairs.json` (geometric pairs of views of one object, semantic
//! pairs of two instances of one class), so a correspondence dataset reads it like any other.
//!
//! Layout of `<world>/world3d/`: `atlas_world3d::io`'s files (`rgb/`, `depth/`, `mask/`,
//! `cameras.json`, `keypoints.json`, `pairs_*.json`, `world3d.json`), plus `manifest.csv`
//! (`path,label,class,instance,view`) and `pairs.json`. Generated once per configuration
//! (`config.json` records it; a different one regenerates the split).
//!
//! The `world3d-motion` split (ImageNet-3DCC's xy / z camera-motion blur on views of this
//! world, for the `corruption` stage) is rendered by [`world3d_motion`] from the same table.

use std::path::Path;

use atlas_artifacts::pairs::{
    Camera, PAIRS_FORMAT, PAIRS_VERSION, Pair, PairSetFile, PairTask, PairView, PairViewFile,
};
use atlas_world3d::{World3d, World3dConfig};

use crate::PipelineError;
use crate::config::LoadedConfig;
use crate::world3d_motion;

/// Side of the split's images (pixels): four times the demo models' 32, so the correspondence
/// ground truth is finer than any feature map.
pub const WORLD3D_SIZE: u32 = 128;

/// The split name (`[[dataset]] kind = "world", path = "world3d"`).
pub const SPLIT: &str = "world3d";

/// `[world] world3d = { .. }`: the split's size (every field optional).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct World3dTable {
    /// Image side in pixels (default [`WORLD3D_SIZE`]).
    pub size: u32,
    /// The first `classes` of the world's 12 training classes (default 12).
    pub classes: usize,
    pub instances_per_class: usize,
    pub views_per_instance: usize,
    pub geometric_pairs_per_instance: usize,
    pub semantic_pairs_per_class: usize,
    /// The views of each instance that the `world3d-motion` split blurs (default `[0]`: one
    /// per instance).
    pub motion_views: Vec<usize>,
    /// The `world3d-motion` split's image side in pixels (default
    /// [`world3d_motion::MOTION_SIZE`]).
    pub motion_size: u32,
}

impl Default for World3dTable {
    fn default() -> Self {
        let d = World3dConfig::default();
        Self {
            size: WORLD3D_SIZE,
            classes: d.classes.len(),
            instances_per_class: d.instances_per_class,
            views_per_instance: d.views_per_instance,
            geometric_pairs_per_instance: d.geometric_pairs_per_instance,
            semantic_pairs_per_class: d.semantic_pairs_per_class,
            motion_views: vec![0],
            motion_size: world3d_motion::MOTION_SIZE,
        }
    }
}

/// The split's configuration from the world's seed and the table.
pub fn config(seed: u64, t: &World3dTable) -> World3dConfig {
    let d = World3dConfig::default();
    World3dConfig {
        seed,
        size: t.size,
        classes: d.classes.iter().copied().take(t.classes).collect(),
        instances_per_class: t.instances_per_class,
        views_per_instance: t.views_per_instance,
        geometric_pairs_per_instance: t.geometric_pairs_per_instance,
        semantic_pairs_per_class: t.semantic_pairs_per_class,
        ..d
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |e| PipelineError::Io(path.to_path_buf(), e)
}

/// Renders the split into `dir` unless it is there with the same configuration.
pub fn ensure(dir: &Path, cfg: &World3dConfig) -> Result<(), PipelineError> {
    let want = serde_json::to_vec_pretty(cfg)
        .map_err(|e| PipelineError::Config(format!("world3d config: {e}")))?;
    let marker = dir.join("config.json");
    if std::fs::read(&marker).is_ok_and(|b| b == want) && dir.join("pairs.json").is_file() {
        return Ok(());
    }
    tracing::info!(dir = %dir.display(), views = cfg.classes.len() * cfg.instances_per_class * cfg.views_per_instance, "rendering the 3D world");
    // The marker goes last: a split cut off half-way is rendered again.
    let _ = std::fs::remove_file(&marker);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let world = atlas_world3d::generate(cfg)?;
    atlas_world3d::write_dir(dir, &world)?;
    atlas_world3d::io::write_atomic(&dir.join("manifest.csv"), manifest(&world).as_bytes())?;
    let pairs = serde_json::to_vec(&pair_file(&world))
        .map_err(|e| PipelineError::Config(format!("world3d pairs: {e}")))?;
    atlas_world3d::io::write_atomic(&dir.join("pairs.json"), &pairs)?;
    atlas_world3d::io::write_atomic(&marker, &want)?;
    Ok(())
}

fn manifest(world: &World3d) -> String {
    let mut s = String::from("path,label,class,instance,view\n");
    for v in &world.views {
        let [rgb, ..] = atlas_world3d::io::view_files(v.id);
        let label = v.class.label().map_or(-1, |l| l as i64);
        s.push_str(&format!(
            "{rgb},{label},{},{},{}\n",
            v.class.name(),
            v.instance,
            v.view
        ));
    }
    s
}

fn pair_file(world: &World3d) -> PairSetFile {
    let views = world
        .views
        .iter()
        .map(|v| {
            let [rgb, _, depth_f32, _] = atlas_world3d::io::view_files(v.id);
            let c = &v.camera;
            PairViewFile {
                view: PairView {
                    image: rgb,
                    width: c.width,
                    height: c.height,
                    category: v.class.name().to_string(),
                    camera: Some(Camera {
                        intrinsics: [c.k.fx, c.k.fy, c.k.cx, c.k.cy],
                        rotation: c.r.0,
                        translation: [c.t.x, c.t.y, c.t.z],
                    }),
                    depth: None,
                    keypoints: v
                        .keypoints
                        .iter()
                        .map(|k| k.visible.then_some([k.u, k.v]))
                        .collect(),
                    bbox: v.bbox.map(|b| b.map(f64::from)),
                },
                depth_file: Some(depth_f32),
            }
        })
        .collect();
    let mut pairs: Vec<Pair> = world
        .geometric_pairs
        .iter()
        .map(|p| Pair {
            task: PairTask::Geometric,
            a: p.view_a,
            b: p.view_b,
            category: p.class.name().to_string(),
            rotation_deg: Some(p.rotation_deg),
            viewpoint_variation: None,
        })
        .collect();
    pairs.extend(world.semantic_pairs.iter().map(|p| Pair {
        task: PairTask::Semantic,
        a: p.view_a,
        b: p.view_b,
        category: p.class.name().to_string(),
        rotation_deg: None,
        viewpoint_variation: Some(p.viewpoint_variation),
    }));
    PairSetFile {
        format: PAIRS_FORMAT.to_string(),
        version: PAIRS_VERSION,
        views,
        pairs,
    }
}

/// Generate the demo world's splits that the config reads (idempotent: an existing world with the
/// same config is left alone).
/// A blocking exclusive lock on `<world>.lock` beside the world folder (released on drop or
/// when the process ends).
fn lock_world(root: &Path) -> Result<std::fs::File, PipelineError> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "world".into());
    let parent = root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| PipelineError::Io(parent.to_path_buf(), e))?;
    let path = parent.join(format!(".{name}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| PipelineError::Io(path.clone(), e))?;
    if let Err(e) = f.lock() {
        // A filesystem without locks: concurrent workers could collide while generating.
        tracing::warn!(path = %path.display(), error = %e, "could not lock the world folder; start one worker first if several share it");
    }
    Ok(f)
}

pub fn ensure_world(cfg: &LoadedConfig) -> Result<(), PipelineError> {
    let Some(w) = &cfg.config.world else {
        return Ok(());
    };
    // `world3d = { .. }` configures the 3D split; the rest is the 2D world's `WorldConfig`.
    let mut rest = w.config.clone();
    let w3d: World3dTable = match rest.remove("world3d") {
        None => World3dTable::default(),
        Some(v) => v.try_into().map_err(|e| {
            PipelineError::Config(format!("{}: [world] world3d: {e}", cfg.path.display()))
        })?,
    };
    // The workers of a multi-worker run start together: one generates, the others wait here
    // and then find the world made (generation is deterministic and renames each split into
    // place, so a killed generator leaves nothing half-made).
    let _generating = lock_world(&cfg.resolve(&w.path))?;
    let table = toml::Value::Table(rest.into_iter().collect());
    let world_cfg: atlas_world::WorldConfig = table
        .try_into()
        .map_err(|e| PipelineError::Config(format!("{}: [world]: {e}", cfg.path.display())))?;
    let mut splits = Vec::new();
    let mut world3d = false;
    let mut motion = false;
    for d in cfg
        .config
        .datasets
        .iter()
        .filter(|d| d.kind == crate::config::DatasetKind::World)
    {
        if d.path.to_string_lossy() == SPLIT {
            world3d = true;
            continue;
        }
        if d.path.to_string_lossy() == world3d_motion::SPLIT {
            motion = true;
            continue;
        }
        let split: atlas_world::Split = d.path.to_string_lossy().parse()?;
        if !splits.contains(&split) {
            splits.push(split);
        }
    }
    atlas_world::generate(&world_cfg, &cfg.resolve(&w.path), &splits)?;
    let c = config(world_cfg.seed, &w3d);
    if world3d || motion {
        c.validate()?;
    }
    if world3d {
        ensure(&cfg.resolve(&w.path).join(SPLIT), &c)?;
    }
    if motion {
        let m = world3d_motion::config(&c, w3d.motion_size, &w3d.motion_views)?
            .with_codecs(crate::world3d_codec::detect()?);
        world3d_motion::ensure(&cfg.resolve(&w.path).join(world3d_motion::SPLIT), &m)?;
    }
    Ok(())
}
