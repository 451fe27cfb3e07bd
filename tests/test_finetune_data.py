"""Fine-tuning data: choosing exactly N transitions, stride-1 batches with exact resume, task-row init,
freezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jowa.config import WorldModelConfig
from jowa.data.replay import EpisodeSpan
from jowa.finetuning.data import MemoryEpisode, NotEnoughData, choose
from jowa.finetuning.freezing import apply_freezing
from jowa.finetuning.segment_batches import FinetuneBatches
from jowa.finetuning.task_rows import init_task_row, resolve_task_row
from jowa.games import task_id
from jowa.model.world_model import WorldActionModel

SPANS = [EpisodeSpan("Breakout", "1", start, length) for start, length in ((3, 100), (106, 50), (159, 80), (242, 70))]


def covered(picks) -> list[tuple[int, int, int]]:
    return [(p.span.start, p.first, p.length) for p in picks]


def test_first_and_last_take_exactly_n_transitions_from_either_end() -> None:
    assert covered(choose(SPANS, 120, "first")) == [(3, 0, 100), (106, 0, 20)]  # the crossing episode keeps its start
    assert covered(choose(SPANS, 100, "last")) == [(159, 50, 30), (242, 0, 70)]  # … its end for `last`
    assert sum(p.length for p in choose(SPANS, 300, "first")) == 300


def test_random_and_last_fraction_draw_whole_episodes_in_stream_order() -> None:
    picks = choose(SPANS, 120, "random", seed=3)
    assert sum(p.length for p in picks) == 120
    assert [p.span.start for p in picks] == sorted(p.span.start for p in picks)
    assert picks == choose(SPANS, 120, "random", seed=3)
    # the last 50 % of 300 transitions: episodes starting at stream position >= 150 (the last two)
    late = choose(SPANS, 100, "last-fraction=0.5", seed=0)
    assert {p.span.start for p in late} <= {159, 242} and sum(p.length for p in late) == 100


def test_too_few_transitions_is_a_clear_error() -> None:
    with pytest.raises(NotEnoughData, match="holds 300 transitions in complete episodes; asked for 301"):
        choose(SPANS, 301, "first")
    with pytest.raises(NotEnoughData, match=r"holds 150 transitions .* in the last 0.5 of the stream \(of 300 in"):
        choose(SPANS, 151, "last-fraction=0.5")
    with pytest.raises(ValueError, match="choose first, last, random or last-fraction"):
        choose(SPANS, 10, "middle")


def episodes(lengths: list[int], terminal_last: bool = True) -> list[MemoryEpisode]:
    out, step = [], 0
    for n in lengths:
        index = np.arange(step, step + n)
        terminals = np.zeros(n, np.uint8)
        terminals[-1] = terminal_last
        out.append(MemoryEpisode(np.repeat(index[:, None] % 500, 36, 1).astype(np.uint16), index % 4,
                                 (index % 3 - 1).astype(np.float32), terminals, "Breakout"))
        step += n
    return out


def test_batches_cover_every_stride_one_segment_once_per_epoch_and_resume_exactly() -> None:
    data = episodes([10, 7])
    source = FinetuneBatches(data, task_id("Breakout"), batch_size=17, seed_batch_size=4)
    # seeds: starts 0 and 1 of the 10-step episode (start 2 would end at its game over)
    assert source.num_segments == 17 and source.seedable == 2
    batch = next(source)
    firsts = sorted(batch.real.observations[:, 0, 0].tolist())
    assert firsts == list(range(17))  # every step starts exactly one segment
    assert batch.real.tasks.unique().tolist() == [task_id("Breakout")]
    row = batch.real.observations[:, 0, 0].tolist().index(14)  # 3 steps before the end of episode 2
    assert batch.real.mask_padding[row].tolist() == [True] * 3 + [False] * 5
    assert batch.real.ends[row].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert bool(batch.seeds.mask_padding.all()) and int(batch.seeds.ends.sum()) == 0
    assert batch.real_frames.shape == (0, 8, 84, 84) and batch.tokenizer_frames.shape == (0, 84, 84)

    for _ in range(3):
        next(source)
    state = source.state_dict()
    expected = next(source)
    again = FinetuneBatches(data, task_id("Breakout"), batch_size=17, seed_batch_size=4)
    again.load_state_dict(state)
    resumed = next(again)
    assert torch.equal(resumed.real.observations, expected.real.observations)
    assert torch.equal(resumed.seeds.actions, expected.seeds.actions)
    with pytest.raises(ValueError, match="settings differ"):
        FinetuneBatches(data, task_id("Breakout"), batch_size=8).load_state_dict(state)


def test_frames_come_with_the_batch_only_for_tokenizer_finetuning() -> None:
    data = episodes([12])
    for e in data:
        e.frames = np.repeat(e.tokens[:, :1, None].astype(np.uint8), 84, 1).repeat(84, 2)  # frame t is all t
    source = FinetuneBatches(data, task_id("Breakout"), batch_size=3, tokenizer_frames=5)
    batch = next(source)
    assert batch.real_frames.shape == (3, 8, 84, 84) and batch.tokenizer_frames.shape == (5, 84, 84)
    assert torch.equal(batch.real_frames[:, :, 0, 0].long() * batch.real.mask_padding, batch.real.observations[:, :, 0])
    with pytest.raises(ValueError, match="nothing to imagine from"):
        FinetuneBatches(episodes([5]), 13, batch_size=2, seed_batch_size=2)


@pytest.fixture()
def model() -> WorldActionModel:
    torch.manual_seed(0)
    return WorldActionModel(WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=16, q_mlp_dim=16))


def test_task_rows_own_copied_or_mean(model: WorldActionModel) -> None:
    tables = [t.weight for t in model.task_emb.embedding_tables]
    before = [t.detach().clone() for t in tables]
    pretrained = ["Phoenix", "Assault"]
    assert resolve_task_row("own", "Robotank", pretrained) == "own"
    assert resolve_task_row("official", "Robotank", pretrained) == "Phoenix"
    assert resolve_task_row("official", "Pong", pretrained) == "own"
    with pytest.raises(ValueError, match="needs the pretraining games"):
        resolve_task_row("mean", "Pong", None)
    with pytest.raises(ValueError, match="choose own, official, mean or a game name"):
        resolve_task_row("Phoenixx", "Pong", pretrained)

    init_task_row(model, "Robotank", "own")
    assert all(torch.equal(t, b) for t, b in zip(tables, before))
    init_task_row(model, "Robotank", "Phoenix")
    for t, b in zip(tables, before):
        assert torch.equal(t[task_id("Robotank")], b[task_id("Phoenix")])
        assert torch.equal(t[task_id("Phoenix")], b[task_id("Phoenix")])  # the source row is left alone
    init_task_row(model, "Pong", "mean", pretrained)
    for t, b in zip(tables, before):
        assert torch.allclose(t[task_id("Pong")], (b[task_id("Phoenix")] + b[task_id("Assault")]) / 2)


def test_freezing_modes(model: WorldActionModel) -> None:
    total = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head_q_target."))
    assert apply_freezing(model, "all") == {"trainable": total, "frozen": 0}
    counts = apply_freezing(model, "freeze_backbone")
    assert counts["frozen"] == sum(p.numel() for p in model.transformer.parameters())
    apply_freezing(model, "heads_and_task")
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"task_emb", "head_observations", "head_rewards", "head_ends", "head_q"}
    with pytest.raises(ValueError, match="train mode"):
        apply_freezing(model, "some")
