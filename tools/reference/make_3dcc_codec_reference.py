#!/usr/bin/env python3
"""Reference outputs for ImageNet-3DCC's video-codec corruptions (`bit_error`, `h265_crf`,
`h265_abr`), as `atlas_corrupt3d::codec` computes them.

    python3 -m venv /work/venv-c3d && /work/venv-c3d/bin/pip install numpy pillow
    /work/venv-c3d/bin/python tools/reference/make_3dcc_codec_reference.py   # from the repo root

Needs the `ffmpeg` and `ffprobe` binaries on PATH (Debian: `apt-get install ffmpeg`; the
committed outputs were written with Debian 12's ffmpeg 5.1, libx264 164, libx265 3.5).

What it follows, line by line (repository EPFL-VILAB/3DCommonCorruptions, commit
4fc007b022b91774c9d671afe3d29005812d5745, and moviepy 1.0.3, which 3DCC's code calls):

1. `create_3dcc/motion_video/create_motion.py`, `create_motion_data`: a 60-frame camera path
   `npyResult` is written as `npyResult + list(reversed(npyResult))[1:]` (119 frames) with
   `moviepy.editor.ImageSequenceClip(sequence=..., fps=25).write_videofile(path, logger=None)`.
   -> `moviepy_frame_indices` (moviepy 1.0.3 `video/io/ImageSequenceClip.py`,
   `ImageSequenceClip.__init__`: `images_starts`, `find_image_index`, `duration`; `Clip.py`,
   `Clip.iter_frames`: `np.arange(0, duration, 1.0 / fps)`) and `write_video` (moviepy 1.0.3
   `video/io/ffmpeg_writer.py`, `FFMPEG_VideoWriter.__init__` / `ffmpeg_write_video`: the
   default codec `libx264`, `preset='medium'`, `-pix_fmt yuv420p` only for even sizes).
   Floating point makes moviepy write 120 frames, not 119: `np.arange` over the summed
   duration 4.760000000000003 has 120 steps, the last of which shows the last sequence frame
   again; so frame 120 (and 119) is path frame 0.
2. `create_3dcc/motion_video/video_distortions.py`, `bit_error`, `h265_crf`, `h265_abr`
   -> the functions of the same names below: the same ffmpeg / ffprobe command lines, then
   the decoded `input00120.png` (1-based frame 120) is the corrupted image.
3. `create_3dcc/motion_video/create_video.py`, `create_video_data`: per image, the zoom or the
   motion video at random (`random.getrandbits(1)`); every corruption x severity starts from
   that one source video. (The fixture below is one path; the crate's caller picks the path.)

Deviations, all shared with the crate (they are what makes the output reproducible):
- Threads are pinned. moviepy passes no `-threads`, so libx264 picks its thread count from the
  CPU count, and libx264 output depends on it (its SEI also records `threads=N`, and the
  `noise` bitstream filter's state runs over those bytes); libx265 picks frame threads and a
  thread pool from the CPU count too. Here libx264 gets `-threads 1` (moviepy's own `threads`
  argument of `write_videofile`, placed where FFMPEG_VideoWriter puts it), libx265 gets
  `-x265-params pools=none:frame-threads=1`, and every decode gets `-threads 1`. On Debian's
  ffmpeg 5.1 + x265 3.5, libx265 with a thread pool also aborts at exit
  ("corrupted size vs. prev_size", status 134) after writing a complete file; `pools=none`
  avoids that. For frames as small as the world's (x265: "Too few rows/columns, --wpp
  disabled") the x265 pin gives the same pixels as the unpinned encoder on a 2-core machine.
- Frame 120 if the decode wrote it (it does for every 60-frame path: see 1), else the last
  decoded frame; the reference would `mv` a missing file and leave the image out (or keep a
  stale `input00120.png` from the previous video, since its tmp folder is never emptied).
- Temporary files go to a fresh folder per job instead of `./motion_video/tmp/`.

Inputs (written to crates/atlas-corrupt3d/tests/fixtures/codec/):
- path.png     the 60 path frames, W x H each, stacked vertically (W x 60H, RGB, 8-bit):
               a textured background and a disc, moving, with grain from a fixed seed.
Outputs: `<corruption>_<severity>.png` (W x H RGB) for bit_error, h265_crf, h265_abr x 1..5,
and `meta.json` (the ffmpeg version line, the ffprobe source bit rate, moviepy's frame
indices) for the reader.
"""
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 64, 48
PATH_FRAMES = 60
FPS = 25
OUT = Path("crates/atlas-corrupt3d/tests/fixtures/codec")
DECODE_THREADS = ["-threads", "1"]
X265_PIN = ["-x265-params", "pools=none:frame-threads=1"]
FRAME = "input00120.png"
# libx265 logs to stderr past ffmpeg's -loglevel; the reference lets it reach the terminal.
QUIET = subprocess.DEVNULL


def path_frames():
    """60 deterministic W x H frames: a sinusoidal texture sliding left and a disc moving
    right-down, with grain (a stand-in for a rendered camera path; content only needs to
    move). The Rust test reads the committed PNG, not this function."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    rng = np.random.default_rng(20221)
    frames = []
    for i in range(PATH_FRAMES):
        s = i / (PATH_FRAMES - 1)
        x = xx + 12.0 * s
        f = np.empty((H, W, 3), np.float64)
        f[..., 0] = 128 + 90 * np.sin(x / 3.1) * np.cos(yy / 5.3)
        f[..., 1] = 128 + 90 * np.cos((x + yy) / 4.7)
        f[..., 2] = 128 + 90 * np.sin((x - yy) / 6.1)
        cx, cy = 14 + 30 * s, 14 + 16 * s
        f[(xx - cx) ** 2 + (yy - cy) ** 2 < 90] = [250, 235, 30]
        # Quantised to steps of 8 so that the committed filmstrip PNG stays small, plus a
        # step of grain per value (a fixed-seed PCG64 stream) so that the H.264 video has
        # enough bytes for `bit_error`'s byte-frequency noise to hit it.
        grain = rng.integers(-1, 2, size=f.shape) * 8
        frames.append(np.uint8(np.clip(np.round(f / 8) * 8 + grain, 0, 255)))
    return frames


def moviepy_frame_indices(n_seq, fps=FPS):
    """Which sequence frame moviepy 1.0.3 writes at each time step (see module docs, 1)."""
    durations = [1.0 / fps for _ in range(n_seq)]
    # moviepy: `1.0*i/fps-np.finfo(np.float32).eps`. NumPy 1.x (the reference's era) computes
    # that in float64; NumPy 2 (NEP 50) would keep float32 and write other frames, so the eps
    # is taken as a Python float here.
    images_starts = [1.0 * i / fps - float(np.finfo(np.float32).eps) for i in range(n_seq)]
    duration = sum(durations)

    def find_image_index(t):
        return max([i for i in range(n_seq) if images_starts[i] <= t])

    return [find_image_index(t) for t in np.arange(0, duration, 1.0 / fps)]


def write_video(sequence, path, fps=FPS):
    """moviepy 1.0.3 `FFMPEG_VideoWriter.__init__` command (codec='libx264', preset='medium',
    threads=1 pinned, no audio), fed by `ffmpeg_write_video`'s `iter_frames` loop."""
    h, w = sequence[0].shape[:2]
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-vcodec", "rawvideo",
           "-s", "%dx%d" % (w, h), "-pix_fmt", "rgb24", "-r", "%.02f" % fps, "-an", "-i", "-"]
    cmd.extend(["-vcodec", "libx264", "-preset", "medium"])
    cmd.extend(["-threads", str(1)])
    if w % 2 == 0 and h % 2 == 0:
        cmd.extend(["-pix_fmt", "yuv420p"])
    cmd.extend([str(path)])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    for idx in moviepy_frame_indices(len(sequence), fps):
        proc.stdin.write(sequence[idx].tobytes())
    proc.stdin.close()
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise RuntimeError(f"{cmd}: {err.decode(errors='replace')}")


def kept_frame(tmp):
    """`mv ./motion_video/tmp/input00120.png img_path`, or the last frame (module docs)."""
    frame = tmp / FRAME
    if not frame.is_file():
        frame = sorted(tmp.glob("input*.png"))[-1]
    return np.asarray(Image.open(frame).convert("RGB"))


def decode(dst, tmp):
    for old in tmp.glob("input*.png"):
        old.unlink()
    subprocess.run(["ffmpeg", "-y", *DECODE_THREADS, "-i", str(dst), str(tmp / "input%05d.png"),
                    "-loglevel", "0", "-nostats"])
    return kept_frame(tmp)


def bit_error(src, dst, severity, tmp):
    """video_distortions.py, `bit_error`."""
    c = [100000, 50000, 30000, 20000, 10000][severity - 1]
    subprocess.run(["ffmpeg", "-y", "-i", str(src), "-c", "copy", "-bsf",
                    "noise={}".format(str(c)), str(dst), "-loglevel", "quiet"])
    return decode(dst, tmp)


def h265_crf(src, dst, severity, tmp):
    """video_distortions.py, `h265_crf`."""
    c = [24, 26, 32, 39, 41][severity - 1]
    subprocess.call(["ffmpeg", "-y", "-i", str(src), "-vf", "crop='iw-mod(iw,2)':'ih-mod(ih,2)'",
                     "-vcodec", "libx265", *X265_PIN, "-loglevel", "error", "-crf", str(c),
                     str(dst), "-loglevel", "0", "-nostats"], stderr=QUIET)
    return decode(dst, tmp)


def source_bit_rate(src):
    """video_distortions.py, `h265_abr`: ffprobe's `format.bit_rate` of the source video."""
    result = subprocess.Popen(["ffprobe", "-v", "quiet", "-print_format", "json", "-show_format",
                               "-show_streams", str(src)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    data = json.load(result.stdout)
    result.wait()
    return float(data["format"]["bit_rate"])


def h265_abr(src, dst, severity, tmp):
    """video_distortions.py, `h265_abr`."""
    c = [2, 4, 8, 16, 32][severity - 1]
    bit_rate = str(int(source_bit_rate(src) / c))
    subprocess.call(["ffmpeg", "-y", "-i", str(src), "-vf", "crop='iw-mod(iw,2)':'ih-mod(ih,2)'",
                     "-vcodec", "libx265", *X265_PIN, "-loglevel", "error", "-b:v", bit_rate,
                     "-maxrate", bit_rate, "-bufsize", bit_rate, str(dst), "-loglevel", "0",
                     "-nostats"], stderr=QUIET)
    return decode(dst, tmp)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    frames = path_frames()
    Image.fromarray(np.concatenate(frames, 0)).save(OUT / "path.png", optimize=True)
    sequence = frames + list(reversed(frames))[1:]
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
    meta = {"ffmpeg": version.stdout.splitlines()[0], "width": W, "height": H,
            "moviepy_frame_indices": moviepy_frame_indices(len(sequence))}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src, dst = tmp / "src.mp4", tmp / "out_vid.mp4"
        write_video(sequence, src)
        meta["source_bytes"] = src.stat().st_size
        meta["source_bit_rate"] = source_bit_rate(src)
        for name, fn in [("bit_error", bit_error), ("h265_crf", h265_crf),
                         ("h265_abr", h265_abr)]:
            for severity in range(1, 6):
                img = fn(src, dst, severity, tmp)
                Image.fromarray(img).save(OUT / f"{name}_{severity}.png")
                clean = frames[0].astype(np.int64)
                mad = np.abs(img.astype(np.int64) - clean).mean()
                print(f"{name} {severity}: mean |x - path frame 0| = {mad:.3f}")
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
