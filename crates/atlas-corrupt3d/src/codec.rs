//! ImageNet-3DCC's video-codec corruptions `bit_error`, `h265_crf` and `h265_abr`, by running
//! the `ffmpeg` binary exactly as the reference does.
//!
//! The reference (EPFL-VILAB/3DCommonCorruptions, commit `4fc007b0`) does not corrupt an image
//! but a video of the image's camera path:
//!
//! 1. `create_3dcc/motion_video/create_motion.py`, `create_motion_data`: the 60-frame xy or z
//!    camera path `npyResult` goes to an mp4 as `npyResult + list(reversed(npyResult))[1:]`
//!    (119 frames) with moviepy 1.0.3's `ImageSequenceClip(..., fps=25).write_videofile(path)`:
//!    `FFMPEG_VideoWriter.__init__` (`moviepy/video/io/ffmpeg_writer.py`) pipes raw `rgb24`
//!    frames at `-r 25.00` into libx264, `-preset medium`, `-pix_fmt yuv420p` when both sides
//!    are even. Which frame moviepy writes at each step is [`moviepy_frame_indices`]
//!    (`ImageSequenceClip.__init__`'s `images_starts` / `find_image_index`, `Clip.iter_frames`'
//!    `np.arange(0, duration, 1 / fps)`): the summed duration is 4.760000000000003, so it
//!    writes 120 frames, not 119, the 120th repeating the last sequence frame, i.e. path
//!    frame 0. `images_starts` is float64, as under NumPy 1.x (moviepy 1.0.3's era; NumPy 2
//!    would compute `1.0*i/fps - np.float32 eps` in float32 and skip and repeat other frames).
//! 2. `create_3dcc/motion_video/create_video.py`, `create_video_data`: the zoom (z) or the
//!    motion (xy) video at random per image; every corruption x severity starts from it.
//! 3. `create_3dcc/motion_video/video_distortions.py`:
//!    - `bit_error`: `ffmpeg -y -i src -c copy -bsf noise=C dst`, C = 100000, 50000, 30000,
//!      20000, 10000 ([`BIT_ERROR_AMOUNT`]): ffmpeg's `noise` bitstream filter overwrites a
//!      byte of the H.264 packets when its running state (the sum of `byte + 1` over all bytes
//!      so far) is a multiple of C, deterministically;
//!    - `h265_crf`: libx265 with `-crf` 24, 26, 32, 39, 41 ([`H265_CRF`]) after
//!      `-vf crop='iw-mod(iw,2)':'ih-mod(ih,2)'`;
//!    - `h265_abr`: the source's `ffprobe` `format.bit_rate`, divided by 2, 4, 8, 16, 32
//!      ([`H265_ABR_DIVISOR`]) and truncated (`str(int(float(rate) / c))`), as libx265's
//!      `-b:v`, `-maxrate` and `-bufsize`, same crop;
//!
//!    then each decodes `dst` to `input%05d.png` and keeps `input00120.png` (frame 120,
//!    1-based).
//!
//! [`codec_corruptions`] does all of that for one path. `tools/reference/make_3dcc_codec_reference.py`
//! is the line-by-line Python version; `tests/codec_reference.rs` requires every codec x
//! severity within 1/255 of its committed output.
//!
//! # Deviations, and why
//!
//! - **Threads are pinned**, so that a configuration gives the same bytes on every machine:
//!   libx264 `-threads 1` (moviepy's own `threads` argument, placed where moviepy puts it),
//!   libx265 `-x265-params pools=none:frame-threads=1` ([`X265_PARAMS`]), and `-threads 1` on
//!   every decode. Unpinned, libx264 and libx265 choose thread counts from the CPU count, and
//!   their output depends on them (libx264's SEI also records `threads=N`, and the `noise`
//!   filter's state runs over those bytes). `pools=none` also avoids an abort of Debian
//!   12's ffmpeg 5.1 + x265 3.5 at exit ("corrupted size vs. prev_size", after a complete
//!   file). At the world's image sizes x265 disables wavefront parallelism itself ("Too few
//!   rows/columns"), so the pin changes no pixel there against an unpinned 2-core run.
//! - **The kept frame**: frame 120 when the decode wrote it (it does for 60-frame paths),
//!   else the last decoded frame. The reference would `mv` a missing file and lose the image
//!   (or keep a stale `input00120.png` of the previous video: its tmp folder is never emptied).
//! - Exit status: the reference ignores it (`subprocess.call`). Here every step must succeed,
//!   except that a libx265 encode which aborts after x265 reported it done is accepted when
//!   the decode then yields every frame (Debian 12's x265 3.5 can abort in its teardown). That
//!   x265 also crashes outright on some small sizes (48x48 frames, nearly always; 64x64,
//!   64x48, 56x64, 72x72 and 128x128 never in our runs): the error says so.
//! - Log flags (`-loglevel error` everywhere, so that a failure can say why) and a fresh
//!   temporary folder per call instead of `./motion_video/tmp/`: no effect on the output.
//!
//! # Scale caveat (faithful, but worth knowing)
//!
//! The severities are tuned for 3DCC's 512-pixel videos. On small frames the video has far
//! fewer bytes, so `bit_error` flips few bytes (about `video bytes / C`: none to a few at 64 x
//! 64 pixels), and `h265_abr`'s divided bit rate reaches libx265's 1 kbit/s resolution (ffmpeg
//! hands x265 the rate in whole kbit/s; 0 kbit/s turns rate control off), so the harshest
//! severities need not be the most degraded.
//!
//! # Finding ffmpeg
//!
//! [`Ffmpeg::locate`]: the binary named by the environment variable [`FFMPEG_ENV`]
//! (`ATLAS_FFMPEG`), else `ffmpeg` on `PATH`; `ffprobe` from [`FFPROBE_ENV`], else next to
//! that ffmpeg, else on `PATH`. Not found is `Ok(None)` (callers skip the codec corruptions and
//! say how to get them); found but unusable (no libx264 / libx265) is an error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Corrupt3dError;
pub use crate::ffmpeg::{FFMPEG_ENV, FFPROBE_ENV, Ffmpeg, INSTALL_HINT, X265_PARAMS};
use crate::ffmpeg::{describe, output, run, tail};
use crate::image::RgbImage;

/// Frames of a 3DCC camera path (`create_motion.py`: `numpy.linspace(0.0, 1.0, 60)`).
pub const PATH_FRAMES: usize = 60;
/// The video frame rate (`ImageSequenceClip(..., fps=25)`).
pub const VIDEO_FPS: f64 = 25.0;
/// The kept frame, 1-based (`input00120.png`).
pub const KEPT_FRAME: usize = 120;
/// `bit_error`'s `noise` amounts, severities 1..=5.
pub const BIT_ERROR_AMOUNT: [u32; 5] = [100000, 50000, 30000, 20000, 10000];
/// `h265_crf`'s CRF values, severities 1..=5.
pub const H265_CRF: [u32; 5] = [24, 26, 32, 39, 41];
/// `h265_abr`'s divisors of the source bit rate, severities 1..=5.
pub const H265_ABR_DIVISOR: [u32; 5] = [2, 4, 8, 16, 32];
/// The reference's crop to even sides before libx265.
const EVEN_CROP: &str = "crop='iw-mod(iw,2)':'ih-mod(ih,2)'";

/// A video-codec corruption of ImageNet-3DCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// Bit errors in the H.264 stream (`bit_error`).
    BitError,
    /// HEVC at constant rate factor (`h265_crf`).
    H265Crf,
    /// HEVC at an average bit rate (`h265_abr`).
    H265Abr,
}

impl Codec {
    /// All three, in the order [`codec_corruptions`] returns them.
    pub const ALL: [Codec; 3] = [Codec::BitError, Codec::H265Crf, Codec::H265Abr];

    /// The ImageNet-3DCC folder name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::BitError => "bit_error",
            Codec::H265Crf => "h265_crf",
            Codec::H265Abr => "h265_abr",
        }
    }
}

/// Which of `n_seq` sequence frames moviepy 1.0.3 writes at each time step at `fps`
/// (`ImageSequenceClip.__init__` and `Clip.iter_frames`, same float arithmetic).
pub fn moviepy_frame_indices(n_seq: usize, fps: f64) -> Vec<usize> {
    if n_seq == 0 {
        return Vec::new();
    }
    let eps = f32::EPSILON as f64; // np.finfo(np.float32).eps
    let starts: Vec<f64> = (0..n_seq).map(|i| 1.0 * i as f64 / fps - eps).collect();
    // `duration = sum(durations)`: Python's left-to-right sum of `1.0 / fps`.
    let duration = (0..n_seq).fold(0.0f64, |acc, _| acc + 1.0 / fps);
    let step = 1.0 / fps;
    // np.arange(0, duration, step): ceil((stop - start) / step) values `start + i * step`.
    let n = ((duration - 0.0) / step).ceil() as usize;
    (0..n)
        .map(|i| {
            let t = 0.0 + i as f64 * step;
            (0..n_seq).rfind(|&j| starts[j] <= t).unwrap_or(0)
        })
        .collect()
}

/// The path frame written at each video frame: moviepy's frames of
/// `path + reversed(path)[1:]` for a path of `n` frames.
pub fn video_frame_sources(n: usize) -> Vec<usize> {
    let seq: Vec<usize> = (0..n).chain((0..n.saturating_sub(1)).rev()).collect();
    moviepy_frame_indices(seq.len(), VIDEO_FPS)
        .into_iter()
        .map(|i| seq[i])
        .collect()
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Corrupt3dError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "atlas-codec-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Corrupt3dError {
    Corrupt3dError::Codec(format!(
        "{}: {e} (check the temporary folder, $TMPDIR, is writable and has space)",
        path.display()
    ))
}

/// The three codec corruptions x severities 1..=5 of one camera path (`frames`: the path's
/// frames in order, all one size; 3DCC's paths have [`PATH_FRAMES`]): `[codec][severity - 1]`,
/// codecs in [`Codec::ALL`] order.
pub fn codec_corruptions(
    ff: &Ffmpeg,
    frames: &[RgbImage],
) -> Result<[[RgbImage; 5]; 3], Corrupt3dError> {
    let first = frames
        .first()
        .ok_or_else(|| Corrupt3dError::Codec("no path frames given".into()))?;
    let (w, h) = (first.width(), first.height());
    if let Some(f) = frames.iter().find(|f| (f.width(), f.height()) != (w, h)) {
        return Err(Corrupt3dError::Codec(format!(
            "path frames differ in size ({w}x{h} and {}x{}): render every frame at one size",
            f.width(),
            f.height()
        )));
    }
    let tmp = TempDir::new()?;
    let src = tmp.0.join("src.mp4");
    write_source(ff, frames, w, h, &tmp.0, &src)?;
    let n_video = video_frame_sources(frames.len()).len();
    let bit_rate = source_bit_rate(ff, &src)?;
    let dst = tmp.0.join("out_vid.mp4");
    let mut out: Vec<[RgbImage; 5]> = Vec::with_capacity(3);
    for codec in Codec::ALL {
        let mut sev = Vec::with_capacity(5);
        for s in 0..5 {
            let mut cmd = Command::new(ff.ffmpeg());
            cmd.args(["-nostdin", "-y", "-loglevel", "error", "-i"])
                .arg(&src);
            match codec {
                Codec::BitError => {
                    cmd.args(["-c", "copy", "-bsf"])
                        .arg(format!("noise={}", BIT_ERROR_AMOUNT[s]));
                }
                Codec::H265Crf => {
                    cmd.args(["-vf", EVEN_CROP, "-vcodec", "libx265"])
                        .args(["-x265-params", X265_PARAMS])
                        .args(["-crf", &H265_CRF[s].to_string()]);
                }
                Codec::H265Abr => {
                    // str(int(float(data['format']['bit_rate']) / c))
                    let rate = ((bit_rate / f64::from(H265_ABR_DIVISOR[s])) as i64).to_string();
                    cmd.args(["-vf", EVEN_CROP, "-vcodec", "libx265"])
                        .args(["-x265-params", X265_PARAMS])
                        .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate]);
                }
            }
            cmd.arg(&dst).arg("-nostats");
            let out = output(&mut cmd)?;
            // libx265 of Debian 12's ffmpeg 5.1 can abort in its teardown after writing a
            // complete file (seen at 48x48: "free(): invalid next size"). The reference ignores
            // the exit status (`subprocess.call`); here an abnormal exit is accepted only when
            // x265 reported the encode done and the decode then yields every frame.
            let aborted = !out.status.success();
            if aborted
                && (codec == Codec::BitError
                    || !String::from_utf8_lossy(&out.stderr).contains("encoded "))
            {
                let hint = if codec == Codec::BitError {
                    ""
                } else {
                    " (libx265 3.5 as Debian 12 ships it crashes on some small sizes, e.g. \
                     48x48 frames: render the path at another size, e.g. 64x64)"
                };
                return Err(Corrupt3dError::Ffmpeg {
                    command: describe(&cmd),
                    reason: format!("{}{hint}: {}", out.status, tail(&out.stderr, 800)),
                });
            }
            let frames_dir = tmp.0.join(format!("{}_{}", codec.name(), s + 1));
            let (img, decoded) = decode_kept_frame(ff, &dst, &frames_dir)?;
            if aborted && decoded != n_video {
                return Err(Corrupt3dError::Ffmpeg {
                    command: describe(&cmd),
                    reason: format!(
                        "{} and its video decodes to {decoded} of {n_video} frames: {}",
                        out.status,
                        tail(&out.stderr, 800)
                    ),
                });
            }
            sev.push(img);
        }
        let sev: [RgbImage; 5] = sev
            .try_into()
            .map_err(|_| Corrupt3dError::Codec("five severities expected".into()))?;
        out.push(sev);
    }
    out.try_into()
        .map_err(|_| Corrupt3dError::Codec("three codecs expected".into()))
}

/// moviepy's `write_videofile` of the path's forward-and-back video (module docs, 1), from a
/// raw file instead of a pipe (same frames, same command otherwise).
fn write_source(
    ff: &Ffmpeg,
    frames: &[RgbImage],
    w: usize,
    h: usize,
    tmp: &Path,
    src: &Path,
) -> Result<(), Corrupt3dError> {
    let raw_path = tmp.join("frames.rgb");
    let sources = video_frame_sources(frames.len());
    let mut raw = Vec::with_capacity(sources.len() * w * h * 3);
    for &i in &sources {
        raw.extend_from_slice(frames[i].as_raw());
    }
    std::fs::write(&raw_path, &raw).map_err(|e| io_err(&raw_path, e))?;
    let mut cmd = Command::new(ff.ffmpeg());
    cmd.args(["-nostdin", "-y", "-loglevel", "error"])
        .args(["-f", "rawvideo", "-vcodec", "rawvideo"])
        .args(["-s", &format!("{w}x{h}"), "-pix_fmt", "rgb24"])
        .args(["-r", &format!("{VIDEO_FPS:.2}"), "-an", "-i"])
        .arg(&raw_path)
        .args(["-vcodec", "libx264", "-preset", "medium", "-threads", "1"]);
    if w.is_multiple_of(2) && h.is_multiple_of(2) {
        cmd.args(["-pix_fmt", "yuv420p"]);
    }
    cmd.arg(src);
    run(&mut cmd)?;
    Ok(())
}

/// `ffprobe -v quiet -print_format json -show_format -show_streams src`'s `format.bit_rate`.
fn source_bit_rate(ff: &Ffmpeg, src: &Path) -> Result<f64, Corrupt3dError> {
    let mut cmd = Command::new(ff.ffprobe());
    cmd.args([
        "-v",
        "quiet",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ])
    .arg(src);
    let out = run(&mut cmd)?;
    let text = String::from_utf8_lossy(&out.stdout);
    json_format_bit_rate(&text).ok_or_else(|| Corrupt3dError::Ffmpeg {
        command: describe(&cmd),
        reason: format!(
            "no numeric format.bit_rate in its output: {}",
            tail(&out.stdout, 400)
        ),
    })
}

/// `float(data['format']['bit_rate'])` of ffprobe's JSON.
fn json_format_bit_rate(text: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let rate = &v["format"]["bit_rate"];
    let rate = match rate {
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        other => other.as_f64()?,
    };
    Some(rate).filter(|r: &f64| r.is_finite())
}

/// `ffmpeg -y -i dst input%05d.png`, then frame [`KEPT_FRAME`] (else the last one written).
/// The decode's exit status is not checked (the reference does not either: a damaged stream
/// may end with an error after the frames are out); no frame at all is an error.
/// Returns the kept frame and how many frames the decode wrote.
fn decode_kept_frame(
    ff: &Ffmpeg,
    dst: &Path,
    dir: &Path,
) -> Result<(RgbImage, usize), Corrupt3dError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut cmd = Command::new(ff.ffmpeg());
    cmd.args([
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-threads",
        "1",
        "-i",
    ])
    .arg(dst)
    .arg(dir.join("input%05d.png"))
    .arg("-nostats");
    let out = output(&mut cmd)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("input") && n.ends_with(".png"))
        })
        .collect();
    written.sort();
    let decoded = written.len();
    let want = dir.join(format!("input{KEPT_FRAME:05}.png"));
    let kept = if written.contains(&want) {
        want
    } else {
        written.pop().ok_or_else(|| Corrupt3dError::Ffmpeg {
            command: describe(&cmd),
            reason: format!(
                "{}; it decoded no frame: {}",
                out.status,
                tail(&out.stderr, 800)
            ),
        })?
    };
    let img = image::open(&kept)
        .map_err(|e| Corrupt3dError::Codec(format!("{}: {e}", kept.display())))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok((
        RgbImage::new(w as usize, h as usize, img.into_raw())?,
        decoded,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moviepy_writes_120_frames_for_a_60_frame_path_and_ends_on_frame_0() {
        let src = video_frame_sources(PATH_FRAMES);
        assert_eq!(src.len(), KEPT_FRAME);
        assert_eq!(src[KEPT_FRAME - 1], 0);
        assert_eq!(&src[..60], &(0..60).collect::<Vec<_>>()[..]);
        // Then back to frame 0; the summed duration's rounding adds a 120th step, which
        // shows the last sequence frame (path frame 0) again.
        assert_eq!(&src[60..62], &[58, 57]);
        assert_eq!(src[118], 0);
        let seq = moviepy_frame_indices(119, VIDEO_FPS);
        assert_eq!(seq.len(), 120);
        assert_eq!(&seq[116..], &[116, 117, 118, 118]);
        assert!(seq.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == w[0]));
        assert!(moviepy_frame_indices(0, VIDEO_FPS).is_empty());
    }

    #[test]
    fn ffprobe_json_bit_rate_is_read_from_the_format_object() {
        let json =
            r#"{"streams": [{"bit_rate": "1"}], "format": {"size": "12809", "bit_rate": "21348"}}"#;
        assert_eq!(json_format_bit_rate(json), Some(21348.0));
        assert_eq!(
            json_format_bit_rate("{\"format\": {\"bit_rate\": \"N/A\"}}"),
            None
        );
        assert_eq!(json_format_bit_rate("{}"), None);
    }
}
