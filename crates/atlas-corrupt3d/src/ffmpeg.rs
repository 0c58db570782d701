//! The ffmpeg and ffprobe binaries behind the `codec` module: finding them, what identifies their
//! output (version, libx264 and libx265 builds), and running them with errors that name the
//! command and the tail of its stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::Corrupt3dError;

/// Environment variable naming the ffmpeg binary to use.
pub const FFMPEG_ENV: &str = "ATLAS_FFMPEG";
/// Environment variable naming the ffprobe binary to use.
pub const FFPROBE_ENV: &str = "ATLAS_FFPROBE";
/// The libx265 thread pin (see the module docs).
pub const X265_PARAMS: &str = "pools=none:frame-threads=1";
/// How to get ffmpeg, for messages.
pub const INSTALL_HINT: &str = "install ffmpeg with libx264 and libx265 (Debian/Ubuntu: `apt-get install ffmpeg`) or set \
     ATLAS_FFMPEG (and ATLAS_FFPROBE) to the binaries";

/// The ffmpeg and ffprobe binaries, with what determines their output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    /// First line of `ffmpeg -version`.
    pub version: String,
    /// libx264's identification (`x264 - core N rNNNN hash`), from an encoded frame.
    pub x264: String,
    /// libx265's identification (`x265 (build N) - version:[...]`), from an encoded frame.
    pub x265: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Ffmpeg {
    /// Finds ffmpeg and ffprobe (module docs) and checks them; `Ok(None)` when there is no
    /// ffmpeg. A binary named by [`FFMPEG_ENV`] / [`FFPROBE_ENV`] that does not exist is an error.
    pub fn locate() -> Result<Option<Ffmpeg>, Corrupt3dError> {
        let env = |var: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let ffmpeg = match env(FFMPEG_ENV) {
            Some(p) if p.is_file() => p,
            Some(p) => {
                return Err(Corrupt3dError::FfmpegMissing(format!(
                    "{FFMPEG_ENV}={} is not a file: point it at the ffmpeg binary or unset it",
                    p.display()
                )));
            }
            None => match on_path("ffmpeg") {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        let beside = ffmpeg.with_file_name("ffprobe");
        let ffprobe = match env(FFPROBE_ENV) {
            Some(p) if p.is_file() => p,
            Some(p) => {
                return Err(Corrupt3dError::FfmpegMissing(format!(
                    "{FFPROBE_ENV}={} is not a file: point it at the ffprobe binary or unset it",
                    p.display()
                )));
            }
            None if beside.is_file() => beside,
            None => on_path("ffprobe").ok_or_else(|| {
                Corrupt3dError::FfmpegMissing(format!(
                    "found {} but no ffprobe next to it or on PATH: {INSTALL_HINT}",
                    ffmpeg.display()
                ))
            })?,
        };
        Ffmpeg::at(&ffmpeg, &ffprobe).map(Some)
    }

    /// Uses these binaries: reads the version and encodes one frame with libx264 and libx265
    /// to read their identification (an error when either encoder is missing).
    pub fn at(ffmpeg: &Path, ffprobe: &Path) -> Result<Ffmpeg, Corrupt3dError> {
        let mut cmd = Command::new(ffmpeg);
        cmd.arg("-version");
        let out = run(&mut cmd)?;
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let mut cmd = Command::new(ffprobe);
        cmd.arg("-version");
        run(&mut cmd)?;
        let probe = |codec: &str, extra: &[&str], format: &str, tag: &str, end: &str| {
            let mut cmd = Command::new(ffmpeg);
            cmd.args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
                .arg("color=c=gray:s=16x16:r=25")
                .args(["-frames:v", "1", "-vcodec", codec])
                .args(extra)
                .args(["-f", format, "-"]);
            let out = run(&mut cmd)?;
            identification(&out.stdout, tag, end).ok_or_else(|| {
                Corrupt3dError::FfmpegMissing(format!(
                    "{} encoded a frame with {codec} but it carries no `{tag}` identification: \
                     {INSTALL_HINT}",
                    ffmpeg.display()
                ))
            })
        };
        let x264 = probe(
            "libx264",
            &["-threads", "1"],
            "h264",
            "x264 - core",
            " - H.264",
        )?;
        let x265 = probe(
            "libx265",
            &["-x265-params", &format!("{X265_PARAMS}:log-level=error")],
            "hevc",
            "x265 (build",
            " - H.265",
        )?;
        Ok(Ffmpeg {
            ffmpeg: ffmpeg.to_path_buf(),
            ffprobe: ffprobe.to_path_buf(),
            version,
            x264,
            x265,
        })
    }

    /// The ffmpeg binary.
    pub fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }

    /// The ffprobe binary.
    pub fn ffprobe(&self) -> &Path {
        &self.ffprobe
    }
}

/// The encoder's identification string in its first frame's SEI: from `tag` up to `end`.
fn identification(bytes: &[u8], tag: &str, end: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find(tag)?;
    let rest = &text[start..];
    let stop = rest.find(end)?;
    Some(rest[..stop].trim().to_string())
}

/// The command line, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The last `n` characters of a process's stderr.
pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    text[start..].to_string()
}

/// Runs `cmd` to completion; a failure to start or a non-zero exit is an error naming the
/// command and the tail of its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, Corrupt3dError> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(Corrupt3dError::Ffmpeg {
            command: describe(cmd),
            reason: format!("{}: {}", out.status, tail(&out.stderr, 800)),
        });
    }
    Ok(out)
}

/// Runs `cmd` to completion, whatever its exit status (an error only when it cannot start).
pub(crate) fn output(cmd: &mut Command) -> Result<Output, Corrupt3dError> {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Corrupt3dError::Ffmpeg {
            command: describe(cmd),
            reason: format!("could not start it ({e}): {INSTALL_HINT}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_end() {
        assert_eq!(tail(b"abcdef\n", 3), "def");
        assert_eq!(tail(b"ab", 10), "ab");
        assert_eq!(
            identification(
                b"..x264 - core 164 r3095 - H.264/MPEG",
                "x264 - core",
                " - H.264"
            )
            .as_deref(),
            Some("x264 - core 164 r3095")
        );
    }
}
