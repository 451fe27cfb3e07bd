"""The training loop on synthetic segments: falling losses, phases, target updates, non-finite steps,
checkpoints (corrupt ones included) and SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from jowa.config import WorldModelConfig
from jowa.model.world_model import WorldActionModel
from jowa.training.config import CheckpointConfig, LoggingConfig, WorldStageConfig
from jowa.training.distributed import init_distributed
from jowa.training.logger import read_metrics
from jowa.training.loop import LoopSettings, ResumeError, Stage, TrainingDiverged, train_stage
from jowa.training.objective_modules import ObjectiveOutput
from jowa.training.state import seed_everything
from jowa.training.step_checkpoints import MANIFEST, CheckpointManager, CorruptCheckpoint, validate
from jowa.training.synthetic import SyntheticSegments
from jowa.training.world_stage import world_stage

SMALL = WorldModelConfig(obs_vocab_size=64, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
CTX = init_distributed("cpu", argv=[])


def make_stage(steps: int, critic_start: int, seed: int = 0, lr: float = 1e-3) -> tuple[WorldActionModel, Stage]:
    seed_everything(seed)
    model = WorldActionModel(SMALL)
    config = WorldStageConfig(steps=steps, batch_size=4, critic_start=critic_start, lr=lr, critic_phase_lr=lr,
                              critic_lr=lr, target_update_every=3)
    return model, world_stage(model, config, SyntheticSegments(4, SMALL.obs_vocab_size), micro_batch_size=4)


def settings(every: int = 100, resume: bool = False, max_bad_steps: int = 3) -> LoopSettings:
    return LoopSettings("torch", Path("unused.json"), "fp32", CheckpointConfig(every=every, keep_last=3),
                        LoggingConfig(every=2, progress_bar=False), max_bad_steps=max_bad_steps, resume=resume)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


class Record:
    """Hook: copies of the weights after every step."""

    def __init__(self, model: WorldActionModel) -> None:
        self.model = model
        self.after: dict[int, torch.Tensor] = {}
        self.target_equal: dict[int, bool] = {}

    def after_step(self, step: int) -> None:
        self.after[step] = flat(self.model)
        online, target = self.model.head_q.parameters(), self.model.head_q_target.parameters()
        self.target_equal[step] = all(torch.equal(a, b) for a, b in zip(online, target))

    def after_resume(self, step: int) -> None:
        pass


class NaNAt(nn.Module):
    """On chosen forward calls (counted over all phases in `counter`), either adds a constant NaN to
    the loss — its gradient alone would stay finite — or (`gradient=True`) keeps the loss finite and
    makes the gradient NaN: d sqrt(x)/dx at 0 is inf, times the 0 upstream."""

    def __init__(self, inner: nn.Module, calls: set[int], counter: list[int], gradient: bool) -> None:
        super().__init__()
        self.inner = inner
        self.calls = calls
        self.counter = counter
        self.gradient = gradient

    def forward(self, batch) -> ObjectiveOutput:
        out = self.inner(batch)
        self.counter[0] += 1
        if self.counter[0] in self.calls:
            if self.gradient:
                weight = next(self.inner.parameters())
                out = ObjectiveOutput(out.loss + torch.sqrt((weight - weight).sum()) * 0, out.terms)
            else:
                out = ObjectiveOutput(out.loss + float("nan"), out.terms)
        return out


def inject_nan(stage: Stage, calls: set[int], gradient: bool = False) -> None:
    counter = [0]
    for phase in stage.phases:
        build = phase.build

        def wrapped(build=build):
            parts = build()
            parts.objective = NaNAt(parts.objective, calls, counter, gradient)
            return parts

        phase.build = wrapped


def test_losses_fall_phases_switch_and_target_follows(tmp_path: Path) -> None:
    model, stage = make_stage(steps=16, critic_start=6)
    record = Record(model)
    stage.hooks.append(record)
    q_before = flat(model.head_q)
    outcome = train_stage(stage, CTX, settings(), tmp_path)
    assert outcome.status == "finished" and outcome.state.step == 16 and outcome.state.skipped_steps == 0
    # world-model phase: the Q head is frozen (no gradient, no weight decay)
    assert torch.equal(record.after[6][-q_before.numel():], record.after[1][-q_before.numel():])
    # critic phase: TD and CQL terms appear; the world-model CE has fallen from the start
    assert {"loss_td_error", "loss_cql_penalty"} <= set(outcome.last_losses)
    assert "loss_td_error" not in outcome.first_losses
    assert outcome.last_losses["loss_obs"] < 0.1 * outcome.first_losses["loss_obs"]  # 0.1 × the CE in stage 2
    # hard target copy every 3 steps, stale in between
    assert [s for s in range(7, 17) if record.target_equal[s]] == [9, 12, 15]
    final = outcome.checkpoint
    assert final is not None and final.name == "step_00000016" and validate(final) == 16
    reloaded = WorldActionModel.from_pretrained(final / "world_model")
    assert torch.equal(flat(reloaded), flat(model))
    assert any((tmp_path / "tb").glob("events.out.tfevents.*"))
    metrics = read_metrics(tmp_path / "metrics.jsonl")
    assert list(metrics["loss/loss_obs"]) == list(range(2, 17, 2))
    assert metrics["loss/loss_obs"][16] == pytest.approx(outcome.last_losses["loss_obs"], rel=1e-6)
    assert min(metrics["loss/loss_td_error"]) > 6  # critic terms only from the critic phase on


@pytest.mark.parametrize("gradient", [False, True], ids=["nan-loss", "nan-gradient"])
def test_nonfinite_step_is_skipped_and_counted(tmp_path: Path, gradient: bool) -> None:
    model, stage = make_stage(steps=6, critic_start=3)
    record = Record(model)
    stage.hooks.append(record)
    inject_nan(stage, {2, 5}, gradient)  # forward calls 2 and 5 = steps 2 (world-model phase) and 5 (critic)
    outcome = train_stage(stage, CTX, settings(), tmp_path)
    assert outcome.state.skipped_steps == 2 and outcome.state.bad_in_row == 0
    assert torch.equal(record.after[2], record.after[1]) and torch.equal(record.after[5], record.after[4])
    assert not torch.equal(record.after[3], record.after[2])  # training went on
    assert all(torch.isfinite(v).all() for v in record.after.values())


def test_consecutive_nonfinite_steps_stop_the_run(tmp_path: Path) -> None:
    model, stage = make_stage(steps=8, critic_start=8)
    inject_nan(stage, {2, 3, 4})
    with pytest.raises(TrainingDiverged, match="3 consecutive steps had a non-finite loss or gradient"):
        train_stage(stage, CTX, settings(max_bad_steps=3), tmp_path)


def test_corrupt_checkpoint_is_reported_and_the_previous_one_used(tmp_path: Path) -> None:
    _, stage = make_stage(steps=6, critic_start=3)
    train_stage(stage, CTX, settings(every=2), tmp_path)
    newest = tmp_path / "checkpoints" / "step_00000006"
    weights = newest / "world_model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10:] = bytes(10)  # flip the last bytes: same size, other content
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="model.safetensors: content does not match"):
        validate(newest)

    _, stage = make_stage(steps=8, critic_start=3)
    outcome = train_stage(stage, CTX, settings(every=2, resume=True), tmp_path)
    assert outcome.resumed_from is not None and outcome.resumed_from.name == "step_00000004"
    assert len(outcome.problems) == 1
    assert "step_00000006" in outcome.problems[0] and "world_model/model.safetensors" in outcome.problems[0]
    assert outcome.state.step == 8
    # steps 5-6 were logged twice (before the corrupt checkpoint and after resuming): one value each
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert sum('"step": 6,' in line for line in lines) == 2
    assert list(read_metrics(tmp_path / "metrics.jsonl")["loss/loss_obs"]) == [2, 3, 4, 6, 8]  # 3: the phase switch


def test_truncated_and_unfinished_checkpoints_are_not_valid(tmp_path: Path) -> None:
    _, stage = make_stage(steps=4, critic_start=2)
    train_stage(stage, CTX, settings(every=2), tmp_path)
    state = tmp_path / "checkpoints" / "step_00000004" / "training_state.pt"
    state.write_bytes(state.read_bytes()[:20])
    with pytest.raises(CorruptCheckpoint, match="training_state.pt: 20 bytes"):
        validate(state.parent)
    (tmp_path / "checkpoints" / "step_00000002" / MANIFEST).unlink()
    found = CheckpointManager(tmp_path / "checkpoints", 3, CTX).newest_valid()
    assert found.directory is None and len(found.problems) == 2


def test_sigterm_saves_and_stops(tmp_path: Path) -> None:
    model, stage = make_stage(steps=10, critic_start=4)

    class Terminate:
        def after_step(self, step: int) -> None:
            if step == 5:
                os.kill(os.getpid(), signal.SIGTERM)

        def after_resume(self, step: int) -> None:
            pass

    stage.hooks.append(Terminate())
    outcome = train_stage(stage, CTX, settings(every=100), tmp_path)
    assert outcome.status == "interrupted" and outcome.state.step == 5
    assert outcome.checkpoint is not None and validate(outcome.checkpoint) == 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again


def test_existing_checkpoints_need_resume_and_matching_facts(tmp_path: Path) -> None:
    _, stage = make_stage(steps=2, critic_start=1)
    stage.facts["tokenizer"] = "abc"
    train_stage(stage, CTX, settings(), tmp_path)
    _, stage = make_stage(steps=4, critic_start=1)
    with pytest.raises(ResumeError, match="already holds checkpoints"):
        train_stage(stage, CTX, settings(), tmp_path)
    stage.facts["tokenizer"] = "xyz"
    with pytest.raises(ResumeError, match="tokenizer: checkpoint 'abc', this run 'xyz'"):
        train_stage(stage, CTX, settings(resume=True), tmp_path)


def test_wandb_is_used_only_when_asked_and_never_prompts(tmp_path: Path, monkeypatch) -> None:
    import builtins

    from jowa.training.logger import TrainLogger

    logger = TrainLogger(tmp_path, "world", LoggingConfig(progress_bar=False), CTX, 10, 0)
    assert logger.wandb is None and logger.writer is not None
    logger.close()
    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(RuntimeError, match="wandb is not installed"):
        TrainLogger(tmp_path, "world", LoggingConfig(wandb=True, progress_bar=False), CTX, 10, 0)


def test_poison_marks_one_parameter_and_leaves_finite_losses_alone() -> None:
    from jowa.training.engine import poison_nonfinite

    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    poison_nonfinite((a * 2).sum() + (b * 3).sum(), [a, b]).backward()
    assert a.grad.tolist() == [2.0, 2.0, 2.0] and b.grad.tolist() == [3.0, 3.0]
    a.grad = b.grad = None
    poison_nonfinite((a * float("nan")).sum() + b.sum(), [a, b]).backward()
    norm = torch.nn.utils.clip_grad_norm_([a, b], 1.0)
    assert not torch.isfinite(norm) and not torch.isfinite(a.grad).any()  # inf (or nan where the loss was nan)
