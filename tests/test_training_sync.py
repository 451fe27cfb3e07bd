"""A training step between two log points reads nothing back to the host (no device sync on a GPU), and the
optimizer's kind is chosen by where the parameters are (fused on CUDA, foreach on CPU).

CPU has no sync to observe, so we record the operations that would sync on CUDA: every scalar read
(`.item()`, `float()`, `int()`, `bool()` all reach `aten._local_scalar_dense`), data-dependent shapes
(`nonzero`, boolean-mask indexing, `masked_select`), `tolist()` and `numpy()`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jowa.config import WorldModelConfig
from jowa.model.world_model import WorldActionModel
from jowa.training import optim
from jowa.training.config import CheckpointConfig, LoggingConfig, WorldStageConfig
from jowa.training.distributed import init_distributed
from jowa.training.loop import LoopSettings, train_stage
from jowa.training.state import seed_everything
from jowa.training.synthetic import SyntheticSegments
from jowa.training.world_stage import world_stage

aten = torch.ops.aten
SMALL = WorldModelConfig(obs_vocab_size=64, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
SYNCING = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default,
           aten.masked_select.default, aten.equal.default, aten.repeat_interleave.Tensor}
MASK_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}


def _bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices)


class HostReads(TorchDispatchMode):
    """Records, while `on`, the name of every operation that would wait for a CUDA device."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.on and (func in SYNCING or (func in MASK_INDEXING and _bool_index(args))):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch):
    mode = HostReads()
    for name in ("tolist", "numpy"):
        original = getattr(torch.Tensor, name)

        def patched(self, *args, _original=original, _name=name, **kwargs):
            if mode.on:
                mode.seen.append(f"Tensor.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, patched)
    with mode:
        yield mode


def test_the_detector_sees_scalar_reads_and_mask_indexing(reads: HostReads) -> None:
    x, mask = torch.arange(4.0), torch.tensor([True, False, True, False])
    reads.on = True
    int(mask.sum()), x[mask], bool(x.sum() > 0), x.tolist()
    reads.on = False
    assert len(reads.seen) == 4, reads.seen


class Watch:
    """Hook: records the host reads between the end of step `first` and the end of step `last`."""

    def __init__(self, mode: HostReads, first: int, last: int) -> None:
        self.mode, self.first, self.last = mode, first, last

    def after_step(self, step: int) -> None:
        self.mode.on = self.first <= step < self.last

    def after_resume(self, step: int) -> None:
        pass


def _train(tmp_path: Path, mode: HostReads, critic_start: int, steps: int = 6) -> None:
    seed_everything(0)
    model = WorldActionModel(SMALL)
    config = WorldStageConfig(steps=steps, batch_size=4, critic_start=critic_start, target_update_every=2)
    stage = world_stage(model, config, SyntheticSegments(4, SMALL.obs_vocab_size), micro_batch_size=4)
    stage.hooks.append(Watch(mode, 1, steps - 1))  # steps 2 .. steps-1: no log, no checkpoint, no phase switch
    settings = LoopSettings("torch", Path("unused.json"), "fp32", CheckpointConfig(every=1000, keep_last=1),
                            LoggingConfig(every=steps, progress_bar=False), max_bad_steps=3)
    outcome = train_stage(stage, init_distributed("cpu", argv=[]), settings, tmp_path)
    assert outcome.state.step == steps and outcome.state.skipped_steps == 0


@pytest.mark.parametrize("critic_start", [6, 0], ids=["world-model", "critic"])
def test_a_step_between_log_points_reads_nothing_back(tmp_path: Path, reads: HostReads,
                                                      monkeypatch: pytest.MonkeyPatch, critic_start: int) -> None:
    # The CUDA choice (fused, which skips a non-finite step on the device), here on CPU parameters.
    monkeypatch.setattr(optim, "update_kwargs", lambda params: {"fused": True})
    _train(tmp_path, reads, critic_start)
    assert reads.seen == []


def test_a_tokenizer_step_between_log_points_reads_nothing_back(tmp_path: Path, reads: HostReads,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from jowa.config import TokenizerConfig
    from jowa.tokenizer import Tokenizer
    from jowa.training.config import TokenizerStageConfig
    from jowa.training.frames import FrameBatches
    from jowa.training.tokenizer_stage import tokenizer_stage

    monkeypatch.setattr(optim, "update_kwargs", lambda params: {"fused": True})
    seed_everything(0)
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=64, embed_dim=8, z_channels=8, ch=4, num_res_blocks=1,
                                          attn_resolutions=(), lpips_net="none"))
    frames = np.random.default_rng(0).integers(0, 256, (64, 84, 84), dtype=np.uint8)
    stage = tokenizer_stage(tokenizer, TokenizerStageConfig(steps=6, batch_size=4), FrameBatches(frames, 4, 0), 4)
    stage.hooks.append(Watch(reads, 1, 5))
    settings = LoopSettings("torch", Path("unused.json"), "fp32", CheckpointConfig(every=1000, keep_last=1),
                            LoggingConfig(every=6, progress_bar=False), max_bad_steps=3)
    assert train_stage(stage, init_distributed("cpu", argv=[]), settings, tmp_path).state.step == 6
    assert reads.seen == []


def test_the_official_row_lists_would_be_seen(reads: HostReads) -> None:
    """Control: the row-list form of the TD target (kept for diagnostics and parity) does sync; the training
    loss computes the same value without."""
    from jowa.losses import c51_td_loss, td_prediction, td_rows, td_target
    from jowa.model.distributional import atom_support

    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 4, 18 * 51), torch.randn(2, 3, 4, 18 * 51)
    actions, rewards = torch.randint(0, 18, (3, 4)), torch.tensor([[0.0, 1, 0, -1]] * 3)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [True, True, True, False]])
    ends, valid, support = torch.tensor([[0.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]), torch.ones(3, 18, dtype=torch.bool), atom_support(-10, 10, 51)
    rows = td_rows(mask, ends)
    reads.on = True
    dense = c51_td_loss(logits, target, actions, rewards, rows, valid, support, 0.99)
    assert reads.seen == []
    official = td_target(target, rewards, rows, valid, support, 0.99).projected
    predicted = td_prediction(logits, actions, rows)
    reads.on = False
    assert reads.seen
    listed = -(official * torch.log(predicted + 1e-8)).sum(dim=-1).mean()
    assert torch.allclose(dense, listed, rtol=1e-6, atol=0)


def test_update_kind_follows_the_parameters() -> None:
    cpu = [torch.nn.Parameter(torch.zeros(2))]
    assert optim.update_kwargs(cpu) == {"foreach": True}
    assert optim.make_adamw([{"params": cpu}], (0.9, 0.999), 1e-8).defaults["foreach"] is True
    if torch.cuda.is_available():
        gpu = [torch.nn.Parameter(torch.zeros(2, device="cuda"))]
        assert optim.update_kwargs(gpu) == {"fused": True}
        assert optim.make_adamw([{"params": gpu}], (0.9, 0.999), 1e-8).defaults["fused"] is True
        assert optim.update_kwargs(cpu + gpu) == {"foreach": True}  # mixed devices: fused would refuse


def test_a_fused_update_skips_a_nonfinite_step_on_the_device() -> None:
    """The mechanism of the sync-free skip: found_inf = 1 leaves weights, moments and the step count alone."""
    from jowa.training.engine import EngineSpec
    from jowa.training.torch_engine import TorchEngine

    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    engine = TorchEngine(model, optimizer, None, EngineSpec(1, 1, 1.0, "fp32"), init_distributed("cpu", argv=[]))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.full((1, 3), float("nan"))).sum().backward()
    result = engine.step()
    assert not bool(result.applied) and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(float(s["step"]) == 0 for s in optimizer.state.values())
    model(torch.ones(1, 3)).sum().backward()
    assert bool(engine.step().applied) and not torch.equal(before[0], model.weight)
