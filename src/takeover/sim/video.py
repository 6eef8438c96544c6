"""Browser-playable H.264 mp4 (yuv420p), written to a temp name and renamed: never half a file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_mp4(path, frames, fps: int = 20) -> Path:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
    writer = imageio.get_writer(tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=16,
                                ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
    try:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    finally:
        writer.close()
    os.replace(tmp, path)
    return path
