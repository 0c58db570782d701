//! ImageNet-3DCC's video-codec corruptions (`bit_error`, `h265_crf`, `h265_abr`, severities
//! 1..=5) in the `world3d-motion` split, through the `ffmpeg` binary
//! ([`atlas_corrupt3d::codec`]).
//!
//! 3DCC corrupts the video of an image's camera path, not the image
//! (`create_3dcc/motion_video/create_video.py`, `create_video_data`): per image it takes the
//! zoom (z) or the motion (xy) video at random, writes its 60 path frames forward and back as
//! an H.264 mp4 (moviepy), corrupts or re-encodes the video and keeps decoded frame 120. Here
//! the path is the one the split already renders for motion blur
//! (`atlas_world3d::motion::motion_path`), all 60 frames of it (the z blur needs only 38: the
//! other 22 are rendered only when the codecs are on), and the choice of video is
//! deterministic per source: z when the first byte of
//! `blake3("world3d-motion codec video" || scene seed as u64 LE)` is odd, else xy
//! ([`video_kind`]).
//!
//! What decides the bytes (the ffmpeg version line, libx264's and libx265's identifications,
//! the libx265 thread pin) is part of the split's `config.json` ([`CodecConfig`]), so another
//! ffmpeg renders the split again. The same configuration gives byte-identical PNGs run to run
//! (threads are pinned, see `atlas_corrupt3d::codec`).
//!
//! **Without ffmpeg** (none on `PATH` and no `ATLAS_FFMPEG`) the split is written without the
//! codec corruptions and a warning says how to get them (`apt-get install ffmpeg`); nothing
//! fails. An `ATLAS_FFMPEG` / `ATLAS_FFPROBE` that does not point at a working binary is an
//! error (it was asked for); an ffmpeg found on `PATH` that lacks libx264 / libx265 is a
//! warning, as a missing one.

use atlas_corrupt3d::codec::{self, Codec, Ffmpeg};
use atlas_world3d::Scene;
use atlas_world3d::motion::MotionKind;
use serde::Serialize;

use crate::PipelineError;

/// The codec corruptions' names, in manifest order.
pub const CODECS: [&str; 3] = ["bit_error", "h265_crf", "h265_abr"];

/// What decides the codec corruptions' bytes (part of the split's `config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodecConfig {
    /// `ffmpeg -version`'s first line.
    pub ffmpeg: String,
    /// libx264's identification (its SEI: `x264 - core N rNNNN hash`).
    pub x264: String,
    /// libx265's identification (`x265 (build N) - version:[...]`).
    pub x265: String,
    /// The libx265 thread pin ([`codec::X265_PARAMS`]).
    pub x265_params: String,
    /// ffmpeg itself, not serialised: where it is does not change the output.
    #[serde(skip)]
    pub tools: Ffmpeg,
}

impl CodecConfig {
    /// The configuration of these binaries.
    pub fn new(tools: Ffmpeg) -> CodecConfig {
        CodecConfig {
            ffmpeg: tools.version.clone(),
            x264: tools.x264.clone(),
            x265: tools.x265.clone(),
            x265_params: codec::X265_PARAMS.to_string(),
            tools,
        }
    }
}

/// Finds ffmpeg for the split: `Ok(None)` with a warning when it is missing or unusable
/// (module docs), an error when `ATLAS_FFMPEG` / `ATLAS_FFPROBE` names a binary that is not.
pub fn detect() -> Result<Option<CodecConfig>, PipelineError> {
    let overridden = [codec::FFMPEG_ENV, codec::FFPROBE_ENV]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    match Ffmpeg::locate() {
        Ok(Some(ff)) => Ok(Some(CodecConfig::new(ff))),
        Ok(None) => {
            tracing::warn!(
                "world3d-motion: no ffmpeg, so the split has no video-codec corruptions \
                 (bit_error, h265_crf, h265_abr); to get them, {}",
                codec::INSTALL_HINT
            );
            Ok(None)
        }
        Err(e) if overridden => Err(PipelineError::Config(format!(
            "world3d-motion: {e} (fix {} / {} or unset them)",
            codec::FFMPEG_ENV,
            codec::FFPROBE_ENV
        ))),
        Err(e) => {
            tracing::warn!(
                error = %e,
                "world3d-motion: ffmpeg is not usable, so the split has no video-codec \
                 corruptions (bit_error, h265_crf, h265_abr)"
            );
            Ok(None)
        }
    }
}

/// The camera path whose video a source's codec corruptions use (module docs).
pub fn video_kind(scene: &Scene) -> MotionKind {
    let mut h = blake3::Hasher::new();
    h.update(b"world3d-motion codec video");
    h.update(&scene.seed.to_le_bytes());
    if h.finalize().as_bytes()[0] & 1 == 1 {
        MotionKind::Z
    } else {
        MotionKind::Xy
    }
}

/// The codec corruptions of one path's frames: `[codec][severity - 1]`, codecs as [`CODECS`].
pub fn corrupt(
    cfg: &CodecConfig,
    frames: &[image::RgbImage],
) -> Result<Vec<[image::RgbImage; 5]>, PipelineError> {
    let err = |e: atlas_corrupt3d::Corrupt3dError| {
        PipelineError::Config(format!("world3d-motion codec corruptions: {e}"))
    };
    let frames = frames
        .iter()
        .map(|f| {
            let (w, h) = f.dimensions();
            atlas_corrupt3d::RgbImage::new(w as usize, h as usize, f.as_raw().clone())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let out = codec::codec_corruptions(&cfg.tools, &frames).map_err(err)?;
    debug_assert!(Codec::ALL.iter().map(|c| c.name()).eq(CODECS));
    out.into_iter()
        .map(|sev| {
            let v = sev
                .into_iter()
                .map(|img| {
                    let (w, h) = (img.width() as u32, img.height() as u32);
                    image::RgbImage::from_raw(w, h, img.into_raw()).ok_or_else(|| {
                        PipelineError::Config(format!(
                            "world3d-motion: a decoded {w}x{h} frame has the wrong length"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            v.try_into().map_err(|_| {
                PipelineError::Config("world3d-motion: five codec severities expected".into())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world3d_motion::{CLEAN, config, ensure};
    use atlas_world3d::World3dConfig;
    use std::collections::BTreeMap;
    use std::path::Path;

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
        let cfg = config(&world, 48, &[0, 1])
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
                    assert_eq!((img.width(), img.height()), (48, 48), "{p}");
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

    fn video_kind_of(cfg: &crate::world3d_motion::MotionConfig, source: &str) -> MotionKind {
        let scenes = atlas_world3d::scenes(&cfg.world3d).unwrap();
        let id: usize = source.parse().unwrap();
        video_kind(&scenes[id / cfg.world3d.views_per_instance])
    }

    #[test]
    fn the_video_kind_is_a_function_of_the_scene_seed_and_takes_both_values() {
        let world = World3dConfig::default();
        let scenes = atlas_world3d::scenes(&world).unwrap();
        let kinds: Vec<MotionKind> = scenes.iter().map(video_kind).collect();
        assert_eq!(kinds, scenes.iter().map(video_kind).collect::<Vec<_>>());
        assert!(kinds.contains(&MotionKind::Xy) && kinds.contains(&MotionKind::Z));
    }
}
