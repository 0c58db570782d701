//! The world's `world3d-motion` split: ImageNet-3DCC's camera-motion blur (`xy_motion_blur`,
//! `z_motion_blur`, severities 1..=5) on views of the 3D world, for the `corruption` stage.
//!
//! The 2.5-D `corrupt3d` split cannot move the camera; here each blurred image is the mean of
//! frames *rendered* along 3DCC's camera path (`atlas_world3d::motion`). A severity averages a
//! prefix of one path, so each (view, kind) renders its longest prefix once and the five
//! severities average its first 20/30/40/50/60 (xy) or 20/25/30/35/38 (z) frames.
//!
//! With ffmpeg installed the split also holds ImageNet-3DCC's video-codec corruptions
//! (`bit_error`, `h265_crf`, `h265_abr`): frame 120 of the path's forward-and-back video after
//! bit errors or HEVC re-encoding, as 3DCC computes them (`crate::world3d_codec`, which also
//! says what happens without ffmpeg: the split is written without them, with a warning).
//!
//! Layout of `<world>/world3d-motion/` (as `corrupt3d`):
//!
//! ```text
//! images/clean/NNNNNN.png                      the sharp view (NNNNNN = the world3d view id)
//! images/<xy_motion_blur|z_motion_blur>/<severity>/NNNNNN.png
//! images/<bit_error|h265_crf|h265_abr>/<severity>/NNNNNN.png   (with ffmpeg only)
//! manifest.csv                                 path,label,corruption,severity,source
//! config.json                                  the configuration (written last)
//! ```
//!
//! `label` is the class label (as the world3d manifest; `-1` for a held-out class), `corruption`
//! is `clean` or the 3DCC name, `severity` is 0 for clean and 1..=5 otherwise, and `source` is
//! the world3d view id. The views are the world3d split's cameras (same seed, classes,
//! instances and poses) at the split's own image size. Generated once per configuration: a
//! different `config.json` regenerates the split.

use std::path::Path;

use atlas_world3d::motion::{MotionKind, PATH_FRAMES, average_frames, motion_frames, motion_path};
use atlas_world3d::{Scene, World3dConfig, render, view_camera};
use rayon::prelude::*;
use serde::Serialize;

use crate::PipelineError;
use crate::world3d_codec::{self, CODECS, CodecConfig};

/// The split name (`[[dataset]] kind = "world", path = "world3d-motion"`).
pub const SPLIT: &str = "world3d-motion";

/// Default image side (pixels): twice the demo models' 32, as `corrupt3d`.
pub const MOTION_SIZE: u32 = 64;

/// The `corruption` value of the sharp views.
pub const CLEAN: &str = "clean";

/// The camera motions with their ImageNet-3DCC corruption names.
pub const KINDS: [(MotionKind, &str); 2] = [
    (MotionKind::Xy, "xy_motion_blur"),
    (MotionKind::Z, "z_motion_blur"),
];

/// Bumped when the same configuration would write different images.
pub const MOTION_VERSION: u32 = 2;

/// What the split holds (its `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MotionConfig {
    pub version: u32,
    /// The 3D world the views come from, at the split's image size.
    pub world3d: World3dConfig,
    /// The views of every instance that are blurred (indices `0..views_per_instance`).
    pub views: Vec<usize>,
    /// The video-codec corruptions' tools (`None`: not written, no ffmpeg).
    pub codecs: Option<CodecConfig>,
}

impl MotionConfig {
    /// The configuration with the video-codec corruptions of these tools (or without).
    pub fn with_codecs(self, codecs: Option<CodecConfig>) -> MotionConfig {
        MotionConfig { codecs, ..self }
    }
}

/// The split's configuration: the world3d split's `world` at image side `size`, blurring views
/// `views` of each instance. The error says which value to change.
pub fn config(
    world: &World3dConfig,
    size: u32,
    views: &[usize],
) -> Result<MotionConfig, PipelineError> {
    let bad = |m: String| Err(PipelineError::Config(format!("[world] world3d: {m}")));
    if views.is_empty() {
        return bad("motion_views is empty: list at least one view index, e.g. [0]".into());
    }
    let mut sorted = views.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != views.len() {
        return bad(format!(
            "motion_views {views:?} repeats a view: list each once"
        ));
    }
    if let Some(&v) = sorted.iter().find(|&&v| v >= world.views_per_instance) {
        return bad(format!(
            "motion_views has view {v}, but an instance has views 0..{}: use smaller indices or \
             raise views_per_instance",
            world.views_per_instance
        ));
    }
    let world3d = World3dConfig {
        size,
        ..world.clone()
    };
    world3d
        .validate()
        .map_err(|e| PipelineError::Config(format!("[world] world3d: motion_size {size}: {e}")))?;
    Ok(MotionConfig {
        version: MOTION_VERSION,
        world3d,
        views: sorted,
        codecs: None,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |e| PipelineError::Io(path.to_path_buf(), e)
}

fn write_png(path: &Path, img: &image::RgbImage) -> Result<(), PipelineError> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(atlas_world3d::World3dError::from)?;
    atlas_world3d::io::write_atomic(path, buf.get_ref())?;
    Ok(())
}

/// Renders the split into `dir` unless it is there with the same configuration.
pub fn ensure(dir: &Path, cfg: &MotionConfig) -> Result<(), PipelineError> {
    let want = serde_json::to_vec_pretty(cfg)
        .map_err(|e| PipelineError::Config(format!("world3d-motion config: {e}")))?;
    let marker = dir.join("config.json");
    if std::fs::read(&marker).is_ok_and(|b| b == want) && dir.join("manifest.csv").is_file() {
        return Ok(());
    }
    let scenes = atlas_world3d::scenes(&cfg.world3d)?;
    let jobs: Vec<(usize, usize)> = (0..scenes.len())
        .flat_map(|s| cfg.views.iter().map(move |&v| (s, v)))
        .collect();
    tracing::info!(dir = %dir.display(), views = jobs.len(), "rendering the 3D world's motion blur");
    let start = std::time::Instant::now();
    // The marker goes last: a split cut off half-way is rendered again.
    let _ = std::fs::remove_file(&marker);
    let images = dir.join("images");
    if images.is_dir() {
        std::fs::remove_dir_all(&images).map_err(io(&images))?;
    }
    let mut subdirs = vec![images.join(CLEAN)];
    let codecs = if cfg.codecs.is_some() {
        &CODECS[..]
    } else {
        &[]
    };
    for name in KINDS.iter().map(|k| k.1).chain(codecs.iter().copied()) {
        subdirs.extend((1..=5).map(|s| images.join(name).join(s.to_string())));
    }
    for d in &subdirs {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let rows: Vec<Vec<String>> = jobs
        .par_iter()
        .map(|&(s, v)| source(dir, cfg, &scenes[s], v))
        .collect::<Result<_, _>>()?;
    let mut manifest = String::from("path,label,corruption,severity,source\n");
    for r in rows.iter().flatten() {
        manifest.push_str(r);
        manifest.push('\n');
    }
    atlas_world3d::io::write_atomic(&dir.join("manifest.csv"), manifest.as_bytes())?;
    atlas_world3d::io::write_atomic(&marker, &want)?;
    tracing::info!(
        seconds = start.elapsed().as_secs_f64(),
        "world3d-motion rendered"
    );
    Ok(())
}

/// One view: its sharp image, both motions and (with ffmpeg) the codec corruptions at every
/// severity (manifest rows, clean first).
fn source(
    dir: &Path,
    cfg: &MotionConfig,
    scene: &Scene,
    view: usize,
) -> Result<Vec<String>, PipelineError> {
    let w = &cfg.world3d;
    let id = scene.index * w.views_per_instance + view;
    let label = scene.class.label().map_or(-1, |l| l as i64);
    let name = format!("{id:06}.png");
    let camera = view_camera(w, scene, view);
    let mut rows = Vec::with_capacity(26);
    // The codecs need the whole 60-frame path of one motion (module `world3d_codec`).
    let video = cfg
        .codecs
        .as_ref()
        .map(|_| world3d_codec::video_kind(scene));
    let mut video_frames = Vec::new();
    let clean = format!("images/{CLEAN}/{name}");
    write_png(&dir.join(&clean), &render(scene, &camera).rgb)?;
    rows.push(format!("{clean},{label},{CLEAN},0,{id}"));
    for (kind, corruption) in KINDS {
        // Severities average prefixes of one path: render the longest once.
        let path = motion_path(scene, &camera, kind);
        let n = if video == Some(kind) {
            PATH_FRAMES
        } else {
            kind.frames(5)?
        };
        let frames = motion_frames(scene, &camera, &path, n);
        for severity in 1..=5u8 {
            let n = kind.frames(severity)?.min(frames.len());
            let img = average_frames(&frames[..n]).ok_or_else(|| {
                PipelineError::Config(format!(
                    "world3d-motion: view {id}: no {corruption} frames rendered"
                ))
            })?;
            let file = format!("images/{corruption}/{severity}/{name}");
            write_png(&dir.join(&file), &img)?;
            rows.push(format!("{file},{label},{corruption},{severity},{id}"));
        }
        if video == Some(kind) {
            video_frames = frames;
        }
    }
    if let Some(codecs) = &cfg.codecs {
        let out = world3d_codec::corrupt(codecs, &video_frames)?;
        for (corruption, images) in CODECS.iter().zip(&out) {
            for (severity, img) in (1..=5u8).zip(images) {
                let file = format!("images/{corruption}/{severity}/{name}");
                write_png(&dir.join(&file), img)?;
                rows.push(format!("{file},{label},{corruption},{severity},{id}"));
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlas_corrupt3d::codec::Ffmpeg;
    use std::collections::BTreeMap;

    fn small() -> World3dConfig {
        World3dConfig {
            classes: vec![atlas_world3d::Shape::Star, atlas_world3d::Shape::Ring],
            instances_per_class: 1,
            views_per_instance: 2,
            ..World3dConfig::default()
        }
    }

    fn pixels(path: &Path) -> Vec<u8> {
        image::open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_rgb8()
            .into_raw()
    }

    #[test]
    fn every_source_has_clean_and_both_motions_at_five_severities_and_blur_grows() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config(&small(), 48, &[0]).unwrap();
        ensure(tmp.path(), &cfg).unwrap();
        let manifest = std::fs::read_to_string(tmp.path().join("manifest.csv")).unwrap();
        let mut lines = manifest.lines();
        assert_eq!(lines.next(), Some("path,label,corruption,severity,source"));
        // source -> [(corruption, severity, path)]
        let mut by_source: BTreeMap<String, Vec<(String, u8, String)>> = BTreeMap::new();
        for l in lines {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            assert!(f[1].parse::<i64>().unwrap() >= 0, "training classes: {l}");
            by_source.entry(f[4].to_string()).or_default().push((
                f[2].to_string(),
                f[3].parse().unwrap(),
                f[0].to_string(),
            ));
        }
        // 2 scenes x view 0 of each: view ids 0 and 2.
        assert_eq!(by_source.keys().collect::<Vec<_>>(), ["0", "2"]);
        for (source, rows) in &by_source {
            assert_eq!(rows.len(), 1 + 2 * 5, "{source}");
            let clean: Vec<_> = rows.iter().filter(|r| r.0 == CLEAN).collect();
            assert_eq!(clean.len(), 1);
            assert_eq!(clean[0].1, 0);
            let clean_px = pixels(&tmp.path().join(&clean[0].2));
            for (_, kind) in KINDS {
                let mut diffs = Vec::new();
                for s in 1..=5u8 {
                    let r: Vec<_> = rows.iter().filter(|r| r.0 == kind && r.1 == s).collect();
                    assert_eq!(r.len(), 1, "{source} {kind} {s}");
                    let px = pixels(&tmp.path().join(&r[0].2));
                    let mad = px
                        .iter()
                        .zip(&clean_px)
                        .map(|(&a, &b)| (a as f64 - b as f64).abs())
                        .sum::<f64>()
                        / px.len() as f64;
                    diffs.push(mad);
                }
                assert!(
                    diffs.windows(2).all(|w| w[1] > w[0]) && diffs[0] > 0.0,
                    "{source} {kind}: blur grows with severity: {diffs:?}"
                );
            }
        }
        // Same configuration: nothing is rendered again.
        let before = std::fs::metadata(tmp.path().join("manifest.csv"))
            .unwrap()
            .modified()
            .unwrap();
        ensure(tmp.path(), &cfg).unwrap();
        let after = std::fs::metadata(tmp.path().join("manifest.csv"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn bad_views_say_what_to_change() {
        let w = small();
        for (views, want) in [
            (vec![], "at least one"),
            (vec![0, 0], "repeats"),
            (vec![2], "views_per_instance"),
        ] {
            let e = config(&w, 32, &views).unwrap_err().to_string();
            assert!(e.contains(want), "{views:?}: {e}");
        }
        assert!(config(&w, 4, &[0]).is_err(), "size below 8");
    }

    /// ffmpeg's configuration; without ffmpeg the test FAILS unless
    /// `ATLAS_SKIP_FFMPEG_TESTS=1` (then `None`: skipped).
    fn tools() -> Option<CodecConfig> {
        match Ffmpeg::locate() {
            Ok(Some(ff)) => Some(CodecConfig::new(ff)),
            Ok(None) if std::env::var("ATLAS_SKIP_FFMPEG_TESTS").is_ok_and(|v| v == "1") => {
                eprintln!("skipped: no ffmpeg and ATLAS_SKIP_FFMPEG_TESTS=1");
                None
            }
            Ok(None) => panic!(
                "ffmpeg not found: install it (`apt-get install ffmpeg`), set ATLAS_FFMPEG, or \
                 set ATLAS_SKIP_FFMPEG_TESTS=1 to skip the codec tests"
            ),
            Err(e) => panic!("{e}"),
        }
    }

    fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn mad(a: &[u8], b: &[u8]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x.abs_diff(y)))
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn the_split_has_three_codecs_at_five_severities_per_source_and_renders_identically() {
        let Some(codecs) = tools() else { return };
        let world = World3dConfig {
            classes: vec![atlas_world3d::Shape::Star, atlas_world3d::Shape::Ring],
            instances_per_class: 1,
            views_per_instance: 2,
            ..World3dConfig::default()
        };
        let cfg = config(&world, 64, &[0, 1])
            .unwrap()
            .with_codecs(Some(codecs));
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ensure(a.path(), &cfg).unwrap();
        ensure(b.path(), &cfg).unwrap();
        let (fa, fb) = (files(a.path()), files(b.path()));
        assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
        for (k, v) in &fa {
            assert!(v == &fb[k], "{k} differs between two renders");
        }
        let config_json = String::from_utf8(fa["config.json"].clone()).unwrap();
        assert!(
            config_json.contains("\"x265_params\"") && config_json.contains("ffmpeg version"),
            "{config_json}"
        );
        let manifest = String::from_utf8(fa["manifest.csv"].clone()).unwrap();
        // source -> corruption -> severities (path)
        let mut rows: BTreeMap<String, BTreeMap<String, Vec<(u8, String)>>> = BTreeMap::new();
        for l in manifest.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            rows.entry(f[4].into())
                .or_default()
                .entry(f[2].into())
                .or_default()
                .push((f[3].parse().unwrap(), f[0].into()));
        }
        // 2 scenes x views 0 and 1: view ids 0, 1, 2, 3.
        assert_eq!(rows.len(), 4);
        let mut kinds = Vec::new();
        for (source, by) in &rows {
            assert_eq!(by.len(), 1 + 2 + 3, "{source}: {:?}", by.keys());
            let clean = &by[CLEAN];
            let px = |p: &str| {
                image::load_from_memory(&fa[p])
                    .unwrap()
                    .to_rgb8()
                    .into_raw()
            };
            let clean_px = px(&clean[0].1);
            for codec in CODECS {
                let sev = &by[codec];
                assert_eq!(
                    sev.iter().map(|s| s.0).collect::<Vec<_>>(),
                    [1, 2, 3, 4, 5],
                    "{source} {codec}"
                );
                for (_, p) in sev {
                    let img = image::load_from_memory(&fa[p.as_str()]).unwrap();
                    assert_eq!((img.width(), img.height()), (64, 64), "{p}");
                }
            }
            // The kept frame is path frame 0, the sharp view, re-encoded: CRF 41 loses more
            // of it than CRF 24.
            let crf = &by["h265_crf"];
            let (mild, harsh) = (
                mad(&px(&crf[0].1), &clean_px),
                mad(&px(&crf[4].1), &clean_px),
            );
            assert!(harsh > mild && mild > 0.0, "{source}: {mild} {harsh}");
            kinds.push(format!("{:?}", video_kind_of(&cfg, source)));
        }
        println!("video per source: {kinds:?}");
    }

    fn video_kind_of(cfg: &MotionConfig, source: &str) -> MotionKind {
        let scenes = atlas_world3d::scenes(&cfg.world3d).unwrap();
        let id: usize = source.parse().unwrap();
        world3d_codec::video_kind(&scenes[id / cfg.world3d.views_per_instance])
    }

    /// The default split's render time: `cargo test -p atlas-pipeline --release --
    /// --ignored default_split_render_time --nocapture`.
    #[test]
    #[ignore]
    fn default_split_render_time() {
        let tmp = tempfile::tempdir().unwrap();
        let world = World3dConfig {
            size: 128, // the world3d split's default size
            ..World3dConfig::default()
        };
        let cfg = config(&world, MOTION_SIZE, &[0]).unwrap();
        let t = std::time::Instant::now();
        ensure(tmp.path(), &cfg).unwrap();
        println!(
            "world3d-motion default ({} views at {} px): {:.2} s",
            cfg.world3d.classes.len() * cfg.world3d.instances_per_class * cfg.views.len(),
            MOTION_SIZE,
            t.elapsed().as_secs_f64()
        );
    }
}
