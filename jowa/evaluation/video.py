"""Episode videos: uint8 frames as GIF (or MP4 where imageio-ffmpeg is installed), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jowa.atomic import atomic_file


def write_video(frames: np.ndarray, path: str | Path, fps: int = 15, scale: int = 1) -> Path:
    """Write uint8 frames [n, H, W] (gray) or [n, H, W, 3] (RGB) as .gif or .mp4; `scale` repeats pixels.

    GIF uses imageio (or Pillow if imageio is missing); MP4 needs imageio with the imageio-ffmpeg plugin.
    The file is written to a temporary name and renamed.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ValueError(f"frames must be uint8 [n,H,W] or [n,H,W,3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("No frames to write")
    if scale < 1 or fps < 1:
        raise ValueError(f"scale and fps must be >= 1, got scale={scale}, fps={fps}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"Unsupported video format {path.suffix!r}; use .gif or .mp4")
    with atomic_file(path) as tmp:
        _write_frames(frames, tmp, suffix, fps)
    return path


def _write_frames(frames: np.ndarray, path: Path, suffix: str, fps: int) -> None:
    try:
        import imageio.v3 as iio
    except ImportError:
        iio = None
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401  (the plugin imageio needs for MP4)
        except ImportError:
            iio = None
        if iio is None:
            raise RuntimeError("Writing .mp4 needs `pip install imageio imageio-ffmpeg`; or write a .gif")
        iio.imwrite(path, frames, fps=fps, macro_block_size=1)
    elif iio is not None:
        iio.imwrite(path, frames, extension=".gif", duration=1000 / fps, loop=0)
    else:
        try:
            from PIL import Image
        except ImportError as err:
            raise RuntimeError("Writing a .gif needs imageio or Pillow (`pip install imageio`)") from err
        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
