"""Tokenizer measures that a black background cannot flatter: reconstruction error on the pixels that
belong to objects (differ from the game's background) and on the pixels that move (differ between
consecutive frames), each beside the error of "reconstructing" every frame as the background itself.

All errors are mean absolute differences in units of the full grey range (0..1, i.e. grey levels / 255),
pooled over every selected pixel of every frame. Errors pooled over pixels cannot tell a lost ball (4 of
7,056 pixels) from a blurred paddle, so the small moving objects are also counted one by one: each connected
piece of foreground of at most SMALL_OBJECT_PIXELS pixels with a changed pixel in it (a ball, a shot) is
kept when its reconstruction is closer to the frame than to the background there.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

FOREGROUND_LEVELS = 16  # grey levels a pixel must differ from the background by to count as foreground
CHANGE_LEVELS = 16  # grey levels a pixel must change by between frames t and t+1 to count as changed
SMALL_OBJECT_PIXELS = 16  # the largest connected piece of foreground that counts as a small object
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def background_frame(frames: np.ndarray) -> np.ndarray:
    """uint8 [N, 84, 84] frames of one game → uint8 [84, 84] per-pixel median: what stays put."""
    return np.median(frames, axis=0).round().astype(np.uint8)


def differs(a: np.ndarray, b: np.ndarray, levels: int) -> np.ndarray:
    """bool mask where |a − b| > levels (uint8 arrays of one shape, compared without wrap-around)."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)) > levels


def masked_l1(target: np.ndarray, estimate: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |target − estimate| / 255 over the pixels where `mask` holds (all without one); NaN over none."""
    error = np.abs(target.astype(np.float32) - estimate.astype(np.float32)) / 255
    if mask is None:
        return float(error.mean())
    return float(error[mask].mean()) if mask.any() else math.nan


def tokenizer_measures(
    frames: np.ndarray, next_frames: np.ndarray, reconstructions: np.ndarray, background: np.ndarray,
) -> dict[str, float]:
    """Errors of the reconstructions of `next_frames`, and of the background as a trivial baseline.

    frames, next_frames, reconstructions: uint8 [N, 84, 84] (frames[i] → next_frames[i] is one step of an
    episode; reconstructions[i] is next_frames[i] through the tokenizer); background: uint8 [N, 84, 84]
    (each pair's game background) or [84, 84]. Keys: l1_{all,foreground,changed}, the same with a
    `background_` prefix, and the fractions of foreground and changed pixels.
    """
    background = np.broadcast_to(background, next_frames.shape)
    foreground = differs(next_frames, background, FOREGROUND_LEVELS)  # [N, 84, 84]
    changed = differs(next_frames, frames, CHANGE_LEVELS)  # [N, 84, 84]
    measures = {"foreground_fraction": float(foreground.mean()), "changed_fraction": float(changed.mean())}
    for prefix, estimate in (("", reconstructions), ("background_", background)):
        measures[f"{prefix}l1_all"] = masked_l1(next_frames, estimate)
        measures[f"{prefix}l1_foreground"] = masked_l1(next_frames, estimate, foreground)
        measures[f"{prefix}l1_changed"] = masked_l1(next_frames, estimate, changed)
    count, kept = small_objects_kept(next_frames, reconstructions, background, foreground, changed)
    measures["small_objects"] = float(count)
    measures["small_objects_kept"] = kept / count if count else math.nan
    return measures


def small_objects_kept(frames: np.ndarray, reconstructions: np.ndarray, background: np.ndarray,
                       foreground: np.ndarray, changed: np.ndarray) -> tuple[int, int]:
    """(small moving objects in `frames`, how many of them the reconstructions keep); see the module docstring.
    All arrays [N, 84, 84]; the masks bool, the rest uint8."""
    count = kept = 0
    for i in range(len(frames)):
        labels, pieces = ndimage.label(foreground[i], structure=_EIGHT_NEIGHBOURS)
        if not pieces:
            continue
        index = np.arange(1, pieces + 1)
        size = ndimage.sum_labels(np.ones_like(labels), labels, index)
        moving = ndimage.maximum(changed[i], labels, index) > 0
        frame, estimate, empty = (a[i].astype(np.float32) for a in (frames, reconstructions, background))
        to_frame = ndimage.sum_labels(np.abs(estimate - frame), labels, index)
        to_background = ndimage.sum_labels(np.abs(estimate - empty), labels, index)
        small = (size <= SMALL_OBJECT_PIXELS) & moving
        count += int(small.sum())
        kept += int((small & (to_frame < to_background)).sum())
    return count, kept


def motion_order(frames: np.ndarray, next_frames: np.ndarray) -> np.ndarray:
    """int64 [N] indices of the pairs, most changed pixels first (ties by index: no RNG)."""
    counts = differs(next_frames, frames, CHANGE_LEVELS).reshape(len(frames), -1).sum(axis=1)
    return np.argsort(-counts, kind="stable")
