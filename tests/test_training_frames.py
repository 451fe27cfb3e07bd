"""Stage-1 frame pool (reservoir over the replay) and resumable frame batches; the reconstruction grid."""

from __future__ import annotations

import numpy as np
import torch

from jowa.training.frames import FrameBatches, _reservoir_add
from jowa.training.tokenizer_stage import grid_image


def test_reservoir_keeps_a_uniform_sample_of_the_stream() -> None:
    rng = np.random.default_rng(0)
    means = []
    for trial in range(200):
        pool = np.zeros((20, 84, 84), np.uint8)
        seen = 0
        for start in range(0, 250, 50):  # frames arrive in chunks; frame t holds the value t
            chunk = np.broadcast_to(np.arange(start, start + 50, dtype=np.uint8)[:, None, None], (50, 84, 84))
            seen = _reservoir_add(pool, seen, chunk, rng)
        values = pool[:, 0, 0].astype(int)
        assert seen == 250 and len(set(values.tolist())) == 20  # no frame twice
        means.append(values.mean())
    assert abs(np.mean(means) - 124.5) < 3  # uniform over 0..249


def test_short_streams_fill_the_pool_in_order() -> None:
    pool = np.zeros((10, 84, 84), np.uint8)
    frames = np.arange(6, dtype=np.uint8)[:, None, None] * np.ones((1, 84, 84), np.uint8)
    assert _reservoir_add(pool, 0, frames, np.random.default_rng(0)) == 6
    assert pool[:6, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_frame_batches_resume_and_differ_by_rank() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (50, 84, 84), dtype=np.uint8)
    a = FrameBatches(frames, 8, seed=0, rank=0)
    [next(a) for _ in range(3)]
    state = a.state_dict()
    expected = next(a)
    b = FrameBatches(frames, 8, seed=0, rank=0)
    b.load_state_dict(state)
    assert torch.equal(next(b), expected) and expected.dtype == torch.uint8 and expected.shape == (8, 84, 84)
    assert not torch.equal(next(FrameBatches(frames, 8, seed=0, rank=1)), next(FrameBatches(frames, 8, seed=0, rank=0)))


def test_grid_puts_each_reconstruction_under_its_original() -> None:
    originals = np.full((10, 84, 84), 7, np.uint8)
    reconstructions = np.full((10, 84, 84), 200, np.uint8)
    image = grid_image(originals, reconstructions, columns=8)
    assert image.shape == (2 * 2 * 86, 8 * 86)
    assert image[0, 0] == 7 and image[86, 0] == 200 and image[2 * 86, 86] == 7 and image[3 * 86, 86] == 200
    assert image[2 * 86, 2 * 86] == 255  # the unused cell of the last row stays white


def test_each_game_gets_its_share_of_the_scan(tmp_path) -> None:
    # One large chunk per game: a global scan limit would fill the pool from the first chunk's game only.
    from jowa.data.replay_layout import replay_log_dir
    from jowa.data.replay_writer import ReplayWriter
    from jowa.training.frames import load_frame_pool

    for game, value in (("Pong", 50), ("Breakout", 200)):
        writer = ReplayWriter(replay_log_dir(tmp_path, game, "1"), capacity=1000)
        for _ in range(4):
            terminals = np.zeros(60, np.uint8)
            terminals[-1] = 1
            writer.add_rows(np.full((60, 84, 84), value, np.uint8), np.zeros(60, np.int64), np.zeros(60, np.float32),
                            terminals)
        writer.log_final()
    pool = load_frame_pool(tmp_path, None, max_frames=500, scan_limit=120, seed=0)
    values = sorted(set(pool.frames[:, 0, 0].tolist()))
    assert values == [50, 200] and pool.scanned == 120 and set(pool.samples) == {"Pong", "Breakout"}  # 60 each


def test_the_pool_keeps_each_frames_predecessor_without_changing_the_frames(tmp_path) -> None:
    from jowa.data.replay_layout import replay_log_dir
    from jowa.data.replay_writer import ReplayWriter
    from jowa.training.frames import load_frame_pool

    writer = ReplayWriter(replay_log_dir(tmp_path, "Pong", "1"), capacity=1000)
    for episode in range(3):  # frame t of episode e has the grey level 50·e + t
        terminals = np.zeros(40, np.uint8)
        terminals[-1] = 1
        levels = (50 * episode + np.arange(40)).astype(np.uint8)
        writer.add_rows(np.broadcast_to(levels[:, None, None], (40, 84, 84)).copy(), np.zeros(40, np.int64),
                        np.zeros(40, np.float32), terminals)
    writer.log_final()
    plain = load_frame_pool(tmp_path, None, max_frames=30, scan_limit=1000, seed=0)
    paired = load_frame_pool(tmp_path, None, max_frames=30, scan_limit=1000, seed=0, previous=True)
    assert plain.previous is None and np.array_equal(paired.frames, plain.frames)
    level, before = paired.frames[:, 0, 0].astype(int), paired.previous[:, 0, 0].astype(int)
    first = level % 50 == 0  # an episode's first frame is its own predecessor
    assert np.array_equal(before[~first], level[~first] - 1) and np.array_equal(before[first], level[first])
    batch = next(FrameBatches(paired.frames, 8, seed=0, previous=paired.previous))
    assert batch.shape == (8, 2, 84, 84) and (batch[:, 0].int() - batch[:, 1].int()).max() <= 1
