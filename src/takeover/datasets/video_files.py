"""mp4 files of camera frames through the ffmpeg that imageio-ffmpeg ships (no PyAV needed): an encoder
that many episodes stream into one file at a constant frame rate, so frame i sits at exactly i / fps,
a decoder for a range of frames, and the presentation times of every frame (to check the former).

Encoding: H.264, every other frame a key frame (LeRobot's g=2, for random access), no B-frames (no
reordering, no start offset), pixel format yuv444p at qp 0 (default: lossless in YUV, the RGB round trip
is off by a level or two) or yuv420p at crf 18 (smaller, plays in browsers; colour edges blur).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from .errors import DatasetError

PIX_FMTS = {"yuv444p": ["-qp", "0"], "yuv420p": ["-crf", "18"]}


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise DatasetError(f"video files need ffmpeg (imageio-ffmpeg): {exc}") from None


class VideoEncoder:
    """Frames (H, W, 3) uint8 RGB in, one mp4 out; `close()` waits for ffmpeg and checks it."""

    def __init__(self, path, height: int, width: int, fps: int, pix_fmt: str = "yuv444p"):
        if pix_fmt not in PIX_FMTS:
            raise DatasetError(f"pixel format {pix_fmt!r} is not one of {', '.join(PIX_FMTS)}")
        if pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise DatasetError(f"yuv420p needs even frame sizes, the frames are {height}x{width}; use yuv444p")
        self.path, self.shape, self.frames = Path(path), (height, width, 3), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "medium",
               *PIX_FMTS[pix_fmt], "-pix_fmt", pix_fmt, "-g", "2", "-bf", "0", "-r", str(fps),
               "-movflags", "+faststart", "-f", "mp4", str(self.path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frames: np.ndarray):
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.shape[1:] != self.shape:
            raise DatasetError(f"{self.path}: frames of shape {frames.shape[1:]}, the video is {self.shape}")
        try:
            self._proc.stdin.write(frames.tobytes())
        except BrokenPipeError:
            self.close()
        self.frames += len(frames)

    def close(self):
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise DatasetError(f"{self.path}: ffmpeg failed to encode ({err.splitlines()[-1] if err else proc.returncode})")

    def kill(self):
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def decode_frames(path, start_s: float, count: int, height: int, width: int) -> np.ndarray:
    """`count` frames (count, H, W, 3) uint8 from the frame presented at `start_s` on."""
    # seek a millisecond early: ffmpeg's accurate seek drops frames presented before the given time
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error"]
    if start_s > 0:
        cmd += ["-ss", f"{max(0.0, start_s - 1e-3):.6f}"]
    cmd += ["-i", str(path), "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise DatasetError(f"{path}: cannot decode ({err.splitlines()[-1] if err else proc.returncode})")
    frame_bytes = height * width * 3
    got = len(proc.stdout) // frame_bytes
    if got != count:
        raise DatasetError(f"{path}: holds {got} frames from {start_s:.3f} s, the metadata says {count}")
    return np.frombuffer(proc.stdout, np.uint8).reshape(count, height, width, 3)


def frame_times(path) -> np.ndarray:
    """Presentation time in seconds of every frame of the video, in order (ffmpeg's showinfo filter)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-vf", "showinfo", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    text = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise DatasetError(f"{path}: cannot decode ({text.strip().splitlines()[-1] if text.strip() else proc.returncode})")
    return np.array([float(m) for m in re.findall(r"pts_time:\s*([-0-9.e]+)", text)])
