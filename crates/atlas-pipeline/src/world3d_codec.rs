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
    use atlas_world3d::World3dConfig;

    #[test]
    fn the_video_kind_is_a_function_of_the_scene_seed_and_takes_both_values() {
        let world = World3dConfig::default();
        let scenes = atlas_world3d::scenes(&world).unwrap();
        let kinds: Vec<MotionKind> = scenes.iter().map(video_kind).collect();
        assert_eq!(kinds, scenes.iter().map(video_kind).collect::<Vec<_>>());
        assert!(kinds.contains(&MotionKind::Xy) && kinds.contains(&MotionKind::Z));
    }
}
