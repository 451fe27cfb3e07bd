"""Segment sampler: exact padded segments, disjoint slots, determinism, resuming, game mixing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from jowa.data.batch import Batch
from jowa.data.segments import SegmentDataset, make_loader
from jowa.data.shards import ShardWriter, write_index
from jowa.games import OFFICIAL_BORROWED_TASK_ROWS, task_id

L = 8


def episode_arrays(number: int, steps: int, rng: np.random.Generator):
    """Tokens say where they come from: [t, 0] = step t, [t, 1] = episode number."""
    tokens = rng.integers(0, 2048, (steps, 36)).astype(np.uint16)
    tokens[:, 0] = np.arange(steps)
    tokens[:, 1] = number
    actions = rng.integers(1, 18, steps)  # never 0, so padding is visible
    rewards = rng.choice(np.array([-1.0, 1.0, 0.5], np.float32), steps)
    terminals = np.zeros(steps, np.uint8)
    terminals[-1] = 2 if number == 3 else 1  # one stored terminal > 1: ends must clip it to 1
    return tokens, actions, rewards, terminals


def build_shards(out: Path, plan: dict[str, list[list[int]]], seed: int = 0) -> dict[int, tuple]:
    """plan: game → shards → episode lengths. Returns episode number → (game, arrays)."""
    rng = np.random.default_rng(seed)
    episodes, number = {}, 0
    for game, shards in plan.items():
        writer = ShardWriter(out, game, "test", max_steps=1)  # roll after every roll_if_full call
        for lengths in shards:
            for steps in lengths:
                arrays = episode_arrays(number, steps, rng)
                writer.write(f"{game}/1/{number}/0", game, *arrays)
                episodes[number] = (game, arrays)
                number += 1
            writer.roll_if_full()
        writer.close()
    write_index(out)
    return episodes


def all_segments(episodes: dict[int, tuple], stride: int) -> Counter:
    return Counter((n, s) for n, (_, a) in episodes.items() for s in range(0, len(a[0]), stride))


def ids(batch: Batch) -> list[tuple[int, int]]:
    return [(int(row[0, 1]), int(row[0, 0])) for row in batch.observations]


PLAN = {"Pong": [[20, 3, 9], [1, 17], [30]], "Breakout": [[12, 8], [25, 4, 5]]}


@pytest.fixture()
def shards(tmp_path):
    return tmp_path, build_shards(tmp_path, PLAN)


@pytest.mark.parametrize("stride", [4, 1])
def test_one_epoch_yields_every_segment_once_padded_exactly(shards, stride):
    out, episodes = shards
    data = SegmentDataset(out, batch_size=5, stride=stride, epochs=1, shuffle_buffer=7, seed=3, rank=0, world_size=1)
    seen = Counter()
    for batch in data:
        assert batch.observations.shape[1:] == (L, 36) and batch.observations.dtype == torch.int64
        assert batch.actions.dtype == torch.int64 and batch.rewards.dtype == torch.float32
        assert batch.ends.dtype == torch.int64 and batch.mask_padding.dtype == torch.bool
        for i, (number, start) in enumerate(ids(batch)):
            seen[(number, start)] += 1
            game, (tokens, actions, rewards, terminals) = episodes[number]
            m = min(L, len(tokens) - start)
            np.testing.assert_array_equal(batch.observations[i, :m].numpy(), tokens[start:start + m])
            np.testing.assert_array_equal(batch.actions[i, :m].numpy(), actions[start:start + m])
            np.testing.assert_array_equal(batch.rewards[i, :m].numpy(), rewards[start:start + m])
            np.testing.assert_array_equal(batch.mask_padding[i].numpy(), np.arange(L) < m)
            ends = np.zeros(L, np.int64)
            if start + m == len(tokens):
                ends[m - 1] = 1  # the episode's end is the last valid step, clipped to 1
            np.testing.assert_array_equal(batch.ends[i].numpy(), ends)
            assert not batch.observations[i, m:].any() and not batch.actions[i, m:].any()
            assert not batch.rewards[i, m:].any()
            assert int(batch.tasks[i]) == task_id(game)
    assert seen == all_segments(episodes, stride)


@pytest.mark.parametrize("plan", [
    PLAN,  # 5 shards ≥ 4 slots: split by file
    {"Pong": [[20, 3, 9, 1, 17, 30]], "Breakout": [[12, 8, 25, 4, 5]]},  # 2 shards < 4 slots: split by segment
])
def test_two_ranks_two_workers_see_disjoint_segments(tmp_path, plan):
    episodes = build_shards(tmp_path, plan)
    for epoch_count in (1, 2):
        per_slot = []
        for rank in range(2):
            data = SegmentDataset(tmp_path, batch_size=4, epochs=epoch_count, seed=1, rank=rank, world_size=2)
            for worker in range(2):
                per_slot.append(Counter((r.episode.id, r.start) for r in data.segments(rank * 2 + worker, 4)))
        total = sum(per_slot, Counter())
        expected = Counter({(f"{episodes[n][0]}/1/{n}/0", s): c * epoch_count
                            for (n, s), c in all_segments(episodes, 4).items()})
        assert total == expected
        if epoch_count == 1:
            for a in range(4):
                for b in range(a + 1, 4):
                    assert not set(per_slot[a]) & set(per_slot[b])
                assert per_slot[a]  # every slot gets data


def test_dataloader_workers_and_ranks_cover_an_epoch_once(shards):
    out, episodes = shards
    seen = Counter()
    for rank in range(2):
        data = SegmentDataset(out, batch_size=3, epochs=1, seed=5, rank=rank, world_size=2)
        for batch in make_loader(data, num_workers=2):
            seen.update(ids(batch))
    assert seen == all_segments(episodes, 4)


def test_stream_is_deterministic_and_resumes(shards):
    out, _ = shards

    def first(n: int, seed: int = 0, start_batch: int = 0) -> list[list[tuple[int, int]]]:
        data = SegmentDataset(out, batch_size=4, seed=seed, shuffle_buffer=6, start_batch=start_batch,
                              rank=0, world_size=1)
        loader = make_loader(data, num_workers=2)
        batches = [ids(b) for _, b in zip(range(n), loader)]
        del loader
        return batches

    run = first(12)  # more than one epoch (24 segments): the stream goes on
    assert run == first(12)
    assert run != first(12, seed=1)
    assert first(7, start_batch=5) == run[5:]
    data = SegmentDataset(out, batch_size=4, seed=0, rank=0, world_size=1)
    state = data.state_dict(batches_consumed=5, num_workers=2)
    data.load_state_dict(state, num_workers=2)
    assert data.start_batch == 5
    with pytest.raises(ValueError, match="settings differ"):
        data.load_state_dict(state, num_workers=3)


def test_mixing_balanced_vs_uniform(tmp_path):
    plan = {"Pong": [[40] * 6, [40] * 6, [40] * 6], "Breakout": [[10, 10]]}  # 180 vs 6 segments
    build_shards(tmp_path, plan)

    def share(mixing: str) -> float:
        data = SegmentDataset(tmp_path, batch_size=50, mixing=mixing, shuffle_buffer=20, seed=0, rank=0, world_size=1)
        tasks = torch.cat([b.tasks for _, b in zip(range(20), data)])
        return float((tasks == task_id("Breakout")).float().mean())

    assert share("uniform") == pytest.approx(6 / 186, abs=0.02)
    assert share("balanced") == pytest.approx(0.5, abs=0.05)


def test_task_remap_and_pipe_urls(tmp_path):
    build_shards(tmp_path, {"MsPacman": [[9, 5]]})
    urls = [f"pipe:cat {p}" for p in sorted(tmp_path.glob("*.tar"))]
    data = SegmentDataset(urls, batch_size=8, epochs=1, task_remap=OFFICIAL_BORROWED_TASK_ROWS, rank=0, world_size=1)
    batch = next(iter(data))
    assert batch.tasks.tolist() == [task_id("Berzerk")] * 5  # 3 + 2 segments, on the row the official
    # fine-tuning borrowed for MsPacman
    with pytest.raises(ValueError, match="balanced mixing needs an index"):
        SegmentDataset(urls, batch_size=8, mixing="balanced")
