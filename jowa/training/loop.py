"""The one training loop: both stages, every engine, every launcher.

A `Stage` says what to train (phases, each building its objective + optimizer), on what data (a
resumable `BatchSource`), and what to save (`PretrainedMixin` modules). `train_stage` runs it to
`steps` optimizer steps, checkpointing every `checkpoint.every` steps, at the end and on SIGTERM,
and resuming from the newest valid checkpoint when asked.

Per optimizer step: `grad_accum` micro batches (forward through the engine, backward of the
non-finite-guarded loss), then `engine.step()`. A step whose gradient is not finite is skipped
and counted; `max_bad_steps` of them in a row stop the run with `TrainingDiverged`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from safetensors.torch import load_file
from torch import nn

from jowa.config import to_dict
from jowa.model_files import CONFIG_NAME, WEIGHTS_NAME, CheckpointError
from jowa.training.batch_source import BatchSource, Prefetcher, to_device
from jowa.training.config import CheckpointConfig, LoggingConfig
from jowa.training.distributed import DistContext, any_rank
from jowa.training.engine import Engine, EngineSpec, StepResult, poison_nonfinite
from jowa.training.engine_choice import build_engine
from jowa.training.logger import TrainLogger
from jowa.training.objective_modules import ObjectiveOutput
from jowa.training.signals import StopRequest
from jowa.training.state import RankState, TrainState, capture_rng, restore_rng
from jowa.training.step_checkpoints import CheckpointManager, CorruptCheckpoint, step_dir_name, validate
from jowa.training.throughput import Meter, peak_flops

ENGINE_DIR = "engine"


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient."""


class ResumeError(RuntimeError):
    """A checkpoint that is intact but cannot continue this run (other config, ranks or engine)."""


@dataclass
class PhaseParts:
    objective: nn.Module  # forward(batch) -> ObjectiveOutput
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None


@dataclass
class Phase:
    name: str
    start: int  # first optimizer step of the phase
    build: Callable[[], PhaseParts]  # called on entering the phase: fresh optimizer (official reset)


class Hook(Protocol):
    """Called on every rank after each optimizer step and after a resume. A hook with an
    `attach(logger)` method gets the stage's `TrainLogger` before training starts."""

    def after_step(self, step: int) -> None: ...
    def after_resume(self, step: int) -> None: ...


@dataclass
class Stage:
    name: str
    steps: int
    phases: list[Phase]
    source: BatchSource
    saved_modules: dict[str, nn.Module]  # PretrainedMixin modules written into every checkpoint
    grad_accum: int
    micro_batch_size: int
    grad_clip: float
    items_in: Callable[[Any], int]  # segments / frames in a micro batch
    tokens_per_item: int  # tokens/s = items/s × this (1 for frames)
    flops_per_token: float | None = None
    hooks: list[Hook] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # must match on resume (e.g. tokenizer fingerprint)


@dataclass
class LoopSettings:
    engine: str  # "torch" or "deepspeed" (resolved)
    deepspeed_config: Path
    precision: str  # "fp32" or "bf16" (resolved)
    checkpoint: CheckpointConfig
    logging: LoggingConfig
    max_bad_steps: int
    resume: bool = False
    prefetch: int = 2


@dataclass
class StageOutcome:
    status: str  # "finished" or "interrupted"
    state: TrainState
    checkpoint: Path | None
    first_losses: dict[str, float] = field(default_factory=dict)  # the first logged means
    last_losses: dict[str, float] = field(default_factory=dict)  # the last logged means
    phase_losses: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # phase → first/last
    resumed_from: Path | None = None
    problems: list[str] = field(default_factory=list)  # corrupt checkpoints passed over


def _phase_index(phases: list[Phase], step: int) -> int:
    index = 0
    for i, phase in enumerate(phases):
        if phase.start <= step:
            index = i
    return index


def _load_module(module: nn.Module, directory: Path) -> None:
    """Weights of a `save_pretrained` directory into an existing module, after checking its config."""
    config = type(module).read_config(directory)  # type: ignore[attr-defined]
    if to_dict(config) != to_dict(module.config):  # type: ignore[attr-defined]
        raise ResumeError(f"{directory}/{CONFIG_NAME}: the checkpoint's config differs from this run's")
    try:
        state = load_file(str(directory / WEIGHTS_NAME), device="cpu")
    except Exception as error:
        raise CheckpointError(f"{directory / WEIGHTS_NAME}: unreadable ({error})") from error
    module.load_state_dict(state, strict=True)


class _Run:
    """The mutable pieces of one `train_stage` call."""

    def __init__(self, stage: Stage, ctx: DistContext, settings: LoopSettings, root: Path) -> None:
        self.stage, self.ctx, self.settings = stage, ctx, settings
        self.checkpoints = CheckpointManager(root / "checkpoints", settings.checkpoint.keep_last, ctx)
        self.state = TrainState(stage=stage.name, world_size=ctx.world_size, engine=settings.engine,
                                extra=dict(stage.facts))
        self.engine: Engine | None = None
        self.phase = -1
        self.data_state: dict[str, Any] = stage.source.state_dict()

    def enter_phase(self, index: int) -> None:
        if self.engine is not None:
            self.engine.close()
        parts = self.stage.phases[index].build()
        spec = EngineSpec(self.stage.grad_accum, self.stage.micro_batch_size, self.stage.grad_clip,
                          self.settings.precision)
        self.engine = build_engine(self.settings.engine, parts.objective, parts.optimizer, parts.scheduler, spec,
                                   self.ctx, self.settings.deepspeed_config)
        self.phase = index

    def save(self) -> Path:
        assert self.engine is not None
        rank_state = RankState(rng=capture_rng(), data=self.data_state)

        def write(directory: Path) -> None:
            if self.ctx.is_main:
                for name, module in self.stage.saved_modules.items():
                    module.save_pretrained(directory / name)  # type: ignore[attr-defined]
                self.state.save(directory)
            (directory / ENGINE_DIR).mkdir(exist_ok=True)
            self.engine.save(directory / ENGINE_DIR)  # type: ignore[union-attr]
            rank_state.save(directory, self.ctx.rank)

        return self.checkpoints.save(self.state.step, write)

    def resume(self, directory: Path) -> RankState:
        saved = TrainState.load(directory)
        mismatches = [
            f"{what}: checkpoint {theirs!r}, this run {ours!r}"
            for what, theirs, ours in (
                ("stage", saved.stage, self.stage.name), ("ranks", saved.world_size, self.ctx.world_size),
                ("engine", saved.engine, self.settings.engine),
            ) if theirs != ours
        ]
        mismatches += [f"{k}: checkpoint {saved.extra.get(k)!r}, this run {v!r}"
                       for k, v in self.stage.facts.items() if saved.extra.get(k) != v]
        if mismatches:
            raise ResumeError(f"cannot resume from {directory}: " + "; ".join(mismatches))
        for name, module in self.stage.saved_modules.items():
            _load_module(module, directory / name)
        self.state = saved
        self.enter_phase(_phase_index(self.stage.phases, saved.step))
        assert self.engine is not None
        # DeepSpeed reads its states with torch.load(weights_only=False), i.e. unpickles them: every rank
        # checks the files it may read against the manifest first (rank 0's check saw its own disk only).
        try:
            validate(directory, under=ENGINE_DIR)
        except CorruptCheckpoint as error:
            raise ResumeError(f"cannot resume from {directory}: {error}") from error
        self.engine.load(directory / ENGINE_DIR)
        rank_state = RankState.load(directory, self.ctx.rank)
        self.stage.source.load_state_dict(rank_state.data)
        self.data_state = rank_state.data
        return rank_state


class _Window:
    """Scalars accumulated between two log points. Everything stays on the device until `_settle` reads the
    window's step results in one transfer (at log points, checkpoints and the end): no host sync per step."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}  # loss terms summed over applied steps
        self.pending: list[tuple[int, StepResult]] = []  # (step, result) not read yet
        self.count = 0  # applied steps read so far
        self.norms: list[float] = []
        self.meter = Meter()

    def add(self, step: int, terms: dict[str, torch.Tensor], result: StepResult) -> None:
        applied = result.applied.to(next(iter(terms.values())).device) if terms else result.applied  # DeepSpeed's: CPU
        for name, value in terms.items():  # a skipped step adds an exact 0 (its terms may be nan)
            self.sums[name] = self.sums.get(name, 0) + torch.where(applied, value, 0)
        self.pending.append((step, result))

    def take_pending(self) -> list[tuple[int, bool, float]]:
        """(step, applied, norm) of the steps not read yet, in one device-to-host transfer."""
        if not self.pending:
            return []
        # one engine per window (a phase switch settles first), so one device: one transfer
        rows = torch.stack([torch.stack([r.applied.double(), r.grad_norm.double()]) for _, r in self.pending]).tolist()
        read = [(step, bool(a), norm) for (step, _), (a, norm) in zip(self.pending, rows)]
        self.pending = []
        for _, applied, norm in read:
            if applied:
                self.count += 1
                self.norms.append(norm)
        return read

    def means(self) -> dict[str, float]:
        if not self.count:
            return {}
        values = torch.stack([v.detach().double() for v in self.sums.values()]).cpu().tolist()  # exact float32s
        return {k: v / self.count for k, v in zip(self.sums, values)}


def _settle(run: "_Run", window: _Window, logger: TrainLogger) -> None:
    """Read the window's pending step results: count skipped steps and stop after `max_bad_steps` in a row."""
    stage, state, limit = run.stage, run.state, run.settings.max_bad_steps
    for step, applied, norm in window.take_pending():
        if applied:
            state.bad_in_row = 0
            continue
        state.skipped_steps += 1
        state.bad_in_row += 1
        logger.message(f"[{stage.name}] step {step}: non-finite loss or gradient (norm {norm}); update skipped "
                       f"({state.bad_in_row} in a row, {state.skipped_steps} in total)")
        if state.bad_in_row >= limit:
            raise TrainingDiverged(
                f"[{stage.name}] stopped at step {state.step}: {state.bad_in_row} consecutive steps had a non-finite "
                f"loss or gradient (up to step {step}; max_bad_steps={limit}). The weights are those of the last "
                f"good step; lower the learning rate or check the data, then resume from a checkpoint."
            )


def _flush(
    run: "_Run", window: _Window, logger: TrainLogger, outcome: StageOutcome, peak: float | None,
) -> tuple[str, str]:
    """Log the window; returns the progress bar's loss and tokens/s texts."""
    stage, engine = run.stage, run.engine
    assert engine is not None
    _settle(run, window, logger)
    means = window.means()
    values = {f"loss/{k}": v for k, v in means.items()}
    values.update({f"lr/{k}": v for k, v in engine.learning_rates().items()})
    if window.norms:
        values["grad_norm"] = sum(window.norms) / len(window.norms)
    values["skipped_steps"] = float(run.state.skipped_steps)
    values.update(window.meter.report(run.ctx.world_size, stage.flops_per_token, peak))
    logger.scalars(run.state.step, values)
    if means:
        outcome.first_losses = outcome.first_losses or means
        outcome.last_losses = means
        phase = outcome.phase_losses.setdefault(stage.phases[run.phase].name, {"first": means})
        phase["last"] = means
    main = means.get("total", math.nan)
    return f"{main:.4f}", f"{values['throughput/tokens_per_s']:.0f}"


def train_stage(
    stage: Stage, ctx: DistContext, settings: LoopSettings, root: Path, run_config: dict[str, Any] | None = None,
) -> StageOutcome:
    """Train `stage` under `root` (checkpoints/ and tb/ inside) until `stage.steps` or SIGTERM."""
    if ctx.device.type == "cpu":
        # Measured: mid-training the VQ tokenizer produces denormal floats that make CPU steps ~10× slower
        # (1 s → 11 s per step for tiny); flushing them to zero left every logged loss unchanged.
        torch.set_flush_denormal(True)
    run = _Run(stage, ctx, settings, root)
    outcome = StageOutcome("finished", run.state, None)
    rank_state: RankState | None = None
    if settings.resume:
        found = run.checkpoints.newest_valid()
        outcome.problems = found.problems
        if found.directory is not None:
            rank_state = run.resume(found.directory)
            outcome.resumed_from = outcome.checkpoint = found.directory
    elif run.checkpoints.finished():
        raise ResumeError(f"{run.checkpoints.root} already holds checkpoints "
                          f"({run.checkpoints.finished()[0].name}); resume them (--resume) or use a new run directory")
    if run.engine is None:
        run.enter_phase(_phase_index(stage.phases, run.state.step))
    logger = TrainLogger(root / "tb", stage.name, settings.logging, ctx, stage.steps, run.state.step, run_config,
                         metrics=root / "metrics.jsonl")
    for problem in outcome.problems:
        logger.message(problem)
    if outcome.resumed_from is not None:
        logger.message(f"[{stage.name}] resumed from {outcome.resumed_from} at step {run.state.step}")
    for hook in stage.hooks:
        if hasattr(hook, "attach"):
            hook.attach(logger)
        if rank_state is not None:
            hook.after_resume(run.state.step)
    batches = Prefetcher(stage.source, depth=settings.prefetch, pin_memory=ctx.device.type == "cuda")
    if rank_state is not None:
        restore_rng(rank_state.rng)  # last: nothing after this may draw from the global RNGs before step 1
    peak = peak_flops(ctx.device)
    try:
        with StopRequest() as stop:
            _steps(run, batches, logger, outcome, stop, peak)
        outcome.state = run.state
        if outcome.checkpoint is None or outcome.checkpoint.name != step_dir_name(run.state.step):
            outcome.checkpoint = run.save()  # the end, or a SIGTERM between periodic checkpoints
    finally:
        batches.close()
        logger.close()
        if run.engine is not None:
            run.engine.close()
    return outcome


STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on a stop request (one small collective)


def _stop_now(run: _Run, stop: StopRequest) -> bool:
    """One process reads its own flag (no tensor at all). Several ranks must agree, which is a collective
    and a read: only every STOP_CHECK_EVERY steps (a SIGTERM waits at most that many steps)."""
    if run.ctx.world_size == 1:
        return stop.requested
    return run.state.step % STOP_CHECK_EVERY == 0 and any_rank(stop.requested, run.ctx.device)


def _steps(run: _Run, batches: Prefetcher, logger: TrainLogger, outcome: StageOutcome, stop: StopRequest,
           peak: float | None) -> None:
    stage, ctx, settings = run.stage, run.ctx, run.settings
    window = _Window()
    while run.state.step < stage.steps:
        if _stop_now(run, stop):
            _settle(run, window, logger)
            outcome.status = "interrupted"
            logger.message(f"[{stage.name}] {stop.signal_name or 'stop'} received: saving step {run.state.step} and stopping")
            break
        index = _phase_index(stage.phases, run.state.step)
        if index != run.phase:
            _settle(run, window, logger)
            if window.count:  # a log window never mixes two phases' losses
                _flush(run, window, logger, outcome, peak)
                window = _Window()
            run.enter_phase(index)
            logger.message(f"[{stage.name}] step {run.state.step}: phase {stage.phases[index].name!r} "
                           f"(fresh optimizer)")
        engine = run.engine
        assert engine is not None
        step_terms: dict[str, torch.Tensor] = {}
        items, waited = 0, 0.0
        for micro in range(stage.grad_accum):
            started = time.perf_counter()
            try:
                batch, data_state = next(batches)
            except StopIteration:
                raise RuntimeError(f"[{stage.name}] the data source ran out at step {run.state.step}") from None
            waited += time.perf_counter() - started
            items += stage.items_in(batch)
            batch = to_device(batch, ctx.device)
            with engine.micro_step(boundary=micro == stage.grad_accum - 1):
                output: ObjectiveOutput = engine.forward(batch)
                engine.backward(poison_nonfinite(output.loss, engine.trainable))
            run.data_state = data_state
            for name, value in output.terms.items():
                step_terms[name] = step_terms.get(name, 0) + value / stage.grad_accum
        result = engine.step()
        run.state.step += 1
        run.state.items_seen += items * ctx.world_size
        window.meter.add(items * stage.tokens_per_item, items, waited)
        window.add(run.state.step, step_terms, result)
        for hook in stage.hooks:
            hook.after_step(run.state.step)
        postfix = None
        last = run.state.step == stage.steps
        if run.state.step % settings.logging.every == 0 or last:
            loss, rate = _flush(run, window, logger, outcome, peak)
            postfix = {"loss": loss, "tok/s": rate}
            window = _Window()
        logger.advance(postfix)
        if run.state.step % settings.checkpoint.every == 0 or last:
            _settle(run, window, logger)  # the saved state counts every skipped step so far
            outcome.checkpoint = run.save()
