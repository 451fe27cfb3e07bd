"""Pretraining end to end: tokenizer → tokenize → world-action model, in one run directory.

    out/
      run.json                  size, model config, finished stages
      tokenizer/                stage 1: checkpoints/, tb/, grids/*.png
      tokens/                   token shards + index.json (unless --tokens points elsewhere)
      world/                    stage 2: checkpoints/, tb/
      final/tokenizer/          the trained tokenizer   (save_pretrained directories:
      final/world_model/        the trained model        config.json + model.safetensors)

Every check that can fail (size, games, replay, shards vs tokenizer, vocabularies, batch split,
DeepSpeed config) runs in `plan()` before any training starts.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from jowa.atomic import copy_directory
from jowa.config import ModelSize, apply_overrides, load_size, to_dict
from jowa.games import check_game
from jowa.model_files import weights_identity as tokenizer_identity  # the name token shards record it under
from jowa.training.config import TrainingConfig, load_training, micro_batch_size, validate
from jowa.training.distributed import DistContext, barrier
from jowa.training.engine_choice import resolve_deepspeed_config, resolve_engine, resolve_precision
from jowa.training.loop import LoopSettings, StageOutcome, train_stage
from jowa.training.run_record import RunRecord
from jowa.training.state import seed_everything

FINAL = "final"
ALL_STAGES = ("tokenizer", "tokenize", "world")


@dataclass
class PretrainOptions:
    size: str
    out: Path
    replay: Path | None = None
    tokens: Path | None = None  # existing token shards: skip the tokenize stage
    tokenizer: Path | None = None  # existing tokenizer checkpoint: skip stage 1
    stage: str = "all"  # all, tokenizer, tokenize or world
    resume: bool = False
    training: str | None = None  # configs/training/<name>.yaml or a path; default by size
    overrides: list[str] = field(default_factory=list)  # training keys, or model.<…> for the size preset
    games: list[str] | None = None  # default: every game under --replay
    verify: bool = False  # check the sha256 of every existing token shard before training (sizes always)


@dataclass
class Plan:
    stages: list[str]  # the stages to run, in order
    size: ModelSize
    training: TrainingConfig
    record: RunRecord
    tokenizer_dir: Path  # where the tokenizer comes from (or will be written)
    tokens_dir: Path
    settings: dict[str, Any]  # engine / precision / DeepSpeed config, resolved


def default_training(size: str) -> str:
    return "tiny" if size == "tiny" else "official"


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(model overrides without the `model.` prefix, training overrides)."""
    model = [o[len("model."):] for o in overrides if o.startswith("model.")]
    return model, [o for o in overrides if not o.startswith("model.")]


def read_index(tokens: Path) -> dict[str, Any]:
    from jowa.data.shards import INDEX_NAME

    path = tokens / INDEX_NAME if tokens.is_dir() else tokens
    if not path.is_file():
        raise FileNotFoundError(f"No token-shard index at {path}; make shards with `--stage tokenize` "
                                f"or data/atari/prepare.py tokenize")
    return json.loads(path.read_text())


def check_replay(replay: Path | None, games: list[str] | None) -> list[str]:
    """The games to read from the episode source `replay` (DQN-Replay root, Minari datasets, or `kind:path`)."""
    from jowa.data.source import open_source

    if replay is None:
        raise ValueError("--replay is needed to train the tokenizer or to tokenize (or pass --tokenizer/--tokens)")
    source = open_source(replay)
    if not source.root.is_dir():
        raise FileNotFoundError(f"Replay directory {source.root} does not exist")
    present = source.games()
    if not present:
        raise ValueError(f"Replay directory {replay} holds no game directories ({{Game}}/{{run}}/replay_logs) "
                         f"and no Minari dataset (<id>/data/metadata.json)")
    wanted = present if games is None else [check_game(g) for g in games]
    missing = [g for g in wanted if g not in present]
    if missing:
        raise ValueError(f"No replay data for {missing} under {replay} (it has {present})")
    return wanted


def plan(options: PretrainOptions, ctx: DistContext) -> Plan:
    """Resolve and validate everything; raises with a clear message before any work starts."""
    if options.stage not in ("all", *ALL_STAGES):
        raise ValueError(f"--stage {options.stage!r}: choose all, {', '.join(ALL_STAGES)}")
    model_overrides, train_overrides = split_overrides(options.overrides)
    try:
        size = load_size(options.size, model_overrides)
        training = apply_overrides(load_training(options.training or default_training(options.size)), train_overrides)
    except (KeyError, TypeError) as error:  # unknown keys, wrong types: configuration errors, said plainly
        raise ValueError(f"configuration: {error}") from error
    validate(training)
    if size.tokenizer.vocab_size != size.world_model.obs_vocab_size:
        raise ValueError(f"size {options.size}: tokenizer vocab {size.tokenizer.vocab_size} != world model "
                         f"obs_vocab_size {size.world_model.obs_vocab_size}")
    record = RunRecord.open(options.out, size.name, to_dict(size))
    tokenizer_dir = options.tokenizer or options.out / FINAL / "tokenizer"
    tokens_dir = options.tokens or options.out / "tokens"

    stages = list(ALL_STAGES) if options.stage == "all" else [options.stage]
    if options.tokenizer is not None:
        stages = [s for s in stages if s != "tokenizer"]
    if options.tokens is not None:
        stages = [s for s in stages if s != "tokenize"]
    if options.stage == "all":
        stages = [s for s in stages if not record.done(s)]

    if {"tokenizer", "tokenize"} & set(stages):
        options.games = check_replay(options.replay, options.games)
    if options.tokenizer is not None and not (options.tokenizer / "model.safetensors").is_file():
        raise FileNotFoundError(f"--tokenizer {options.tokenizer}: no model.safetensors (a tokenizer checkpoint "
                                f"directory, e.g. <run>/final/tokenizer)")
    if "world" in stages:
        if "tokenizer" not in stages and not (tokenizer_dir / "model.safetensors").is_file():
            raise FileNotFoundError(f"No trained tokenizer at {tokenizer_dir}; run stage 1 or pass --tokenizer")
        if "tokenize" not in stages:
            index = read_index(tokens_dir)
            if "tokenizer" in stages:
                raise ValueError(f"--tokens {tokens_dir} was made by tokenizer {index['tokenizer']}, which the "
                                 f"tokenizer trained now cannot match; pass --tokenizer with the one that made them")
            identity = tokenizer_identity(tokenizer_dir)
            if index["tokenizer"] != identity:
                raise ValueError(f"token shards {tokens_dir} were made by tokenizer {index['tokenizer']}, not by "
                                 f"{tokenizer_dir} ({identity}); re-tokenize or pass the matching --tokenizer")
            from jowa.data.shards import resolve_shards, verify_shards

            verify_shards(resolve_shards(tokens_dir), checksums=options.verify and ctx.is_main)
    for stage_config, name in ((training.tokenizer, "tokenizer"), (training.world, "world")):
        micro_batch_size(stage_config.batch_size, stage_config.grad_accum, ctx.world_size)  # must split exactly
    engine = resolve_engine(training.engine.kind, ctx)
    deepspeed_config = resolve_deepspeed_config(training.engine.deepspeed_config)
    if engine == "deepspeed" and not deepspeed_config.is_file():
        raise FileNotFoundError(f"DeepSpeed config {deepspeed_config} not found (engine.deepspeed_config)")
    settings = {"engine": engine, "precision": resolve_precision(training.engine.precision, ctx.device),
                "deepspeed_config": deepspeed_config}
    return Plan(stages, size, training, record, tokenizer_dir, tokens_dir, settings)


def loop_settings(p: Plan, resume: bool) -> LoopSettings:
    t = p.training
    return LoopSettings(p.settings["engine"], p.settings["deepspeed_config"], p.settings["precision"],
                        t.checkpoint, t.logging, t.max_bad_steps, resume=resume, prefetch=t.data.prefetch)


def _report(ctx: DistContext, text: str) -> None:
    if ctx.is_main:
        print(text, flush=True)


def _losses(outcome: StageOutcome) -> str:
    """One line per phase: first → last logged mean of every loss term."""
    lines = []
    for phase, ends in outcome.phase_losses.items():
        first, last = ends["first"], ends["last"]
        keys = [k for k in last if k in first and not k.startswith("q_value")]
        lines.append(f"  {phase}: " + ", ".join(f"{k} {first[k]:.4f} → {last[k]:.4f}" for k in keys))
    return "\n".join(lines)


def run_tokenizer(p: Plan, options: PretrainOptions, ctx: DistContext) -> StageOutcome:
    import numpy as np

    from jowa.tokenizer import Tokenizer
    from jowa.training.frames import FrameBatches, load_frame_pool
    from jowa.training.tokenizer_stage import (
        TOKENIZER, ReconstructionGrid, TokenizerMeasures, grid_frames, motion_frames, tokenizer_stage,
    )

    t = p.training.tokenizer
    seed_everything(p.training.seed)
    tokenizer = Tokenizer(p.size.tokenizer).to(ctx.device)  # on its device first: the optimizer is chosen by it
    _maybe_compile(p, ctx, "tokenizer", tokenizer, t.steps)
    micro = micro_batch_size(t.batch_size, t.grad_accum, ctx.world_size)
    assert options.replay is not None
    pool = load_frame_pool(options.replay, options.games, t.pool_frames, t.scan_frames, p.training.seed,
                           ctx.rank, ctx.world_size, previous=t.motion_weight > 0)
    _report(ctx, f"[tokenizer] {len(pool.frames)} frames in the pool (of {pool.scanned} read) from "
                 f"{', '.join(pool.games)}; {micro} frames per micro batch × {t.grad_accum} × {ctx.world_size} ranks")
    backgrounds = np.stack([s.background for s in pool.samples.values()]) if pool.samples else None
    batches = FrameBatches(pool.frames, micro, p.training.seed, ctx.rank, pool.previous)
    stage = tokenizer_stage(tokenizer, t, batches, micro, backgrounds)
    if t.code_restart_every:
        from jowa.training.code_restart import DeadCodeRestart

        stage.hooks.append(DeadCodeRestart(tokenizer, grid_frames(pool.frames, t.code_restart_frames),
                                           t.code_restart_every, p.training.seed, t.code_restart_by, backgrounds,
                                           t.foreground_weight))
    if ctx.is_main:
        shown = motion_frames(pool.samples, t.grid_frames) if pool.samples else grid_frames(pool.frames, t.grid_frames)
        stage.hooks.append(ReconstructionGrid(tokenizer, shown, options.out / TOKENIZER / "grids", t.grid_every,
                                              t.steps))
        if pool.samples:
            stage.hooks.append(TokenizerMeasures(tokenizer, pool.samples, t.grid_every, t.steps))
    outcome = train_stage(stage, ctx, loop_settings(p, options.resume), options.out / TOKENIZER,
                          {"size": to_dict(p.size), "training": to_dict(p.training)})
    if outcome.status == "finished" and ctx.is_main:
        assert outcome.checkpoint is not None
        p.tokenizer_dir.parent.mkdir(parents=True, exist_ok=True)
        copy_directory(outcome.checkpoint / TOKENIZER, p.tokenizer_dir)
        p.record.mark("tokenizer", status="done", steps=outcome.state.step, checkpoint=str(outcome.checkpoint),
                      identity=tokenizer_identity(p.tokenizer_dir))
    barrier()
    return outcome


def _maybe_compile(p: Plan, ctx: DistContext, stage: str, module: Any, steps: int) -> None:
    """engine.compile: compile the stage's model in place (keys unchanged) when asked or when it pays."""
    from jowa.model.compile import compile_tokenizer, compile_world_model, resolve_compile

    if not resolve_compile(p.training.engine.compile, ctx.device, steps):
        return
    names = (compile_tokenizer if stage == "tokenizer" else compile_world_model)(module)
    _report(ctx, f"[{stage}] torch.compile: {len(names)} modules ({names[0]} …); the first steps include compiling")


def _patient_group(seconds: float) -> Any:
    """A gloo side group with a long timeout: tokenizing on rank 0 can outlast the main group's timeout."""
    if not dist.is_initialized():
        return None
    return dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=seconds))


def run_tokenize(p: Plan, options: PretrainOptions, ctx: DistContext) -> None:
    """Rank 0 encodes every frame once; the other ranks wait for it."""
    from jowa.data.tokenize_replay import tokenize_replay

    group = _patient_group(7 * 24 * 3600)
    if ctx.is_main:
        if not (p.tokenizer_dir / "model.safetensors").is_file():
            raise FileNotFoundError(f"No trained tokenizer at {p.tokenizer_dir}; run stage 1 first")
        started = time.perf_counter()
        report = tokenize_replay(options.replay, str(p.tokenizer_dir), p.tokens_dir, games=options.games,
                                 batch_frames=p.training.data.tokenize_batch_frames, device=str(ctx.device),
                                 progress=p.training.logging.progress_bar)
        seconds = time.perf_counter() - started
        _report(ctx, f"[tokenize] {report.episodes} episodes, {report.transitions} transitions → "
                     f"{p.tokens_dir} ({report.shards_written} new shards) in {seconds:.1f}s")
        p.record.mark("tokenize", status="done", tokens=str(p.tokens_dir), identity=tokenizer_identity(p.tokenizer_dir),
                      episodes=report.episodes, transitions=report.transitions, seconds=round(seconds, 1))
    if group is not None:
        dist.barrier(group=group)
        dist.destroy_process_group(group)


def run_world(p: Plan, options: PretrainOptions, ctx: DistContext) -> StageOutcome:
    from jowa.data.segments import SegmentDataset
    from jowa.data.shards import resolve_shards
    from jowa.model.world_model import WorldActionModel
    from jowa.tokenizer import Tokenizer
    from jowa.training.segment_source import SegmentSource
    from jowa.training.world_stage import MEASURE_EVERY_LOGS, WORLD_MODEL, WorldMeasures, world_stage

    w, data = p.training.world, p.training.data
    index = read_index(p.tokens_dir)
    identity = tokenizer_identity(p.tokenizer_dir)
    if index["tokenizer"] != identity:
        raise ValueError(f"token shards {p.tokens_dir} were made by tokenizer {index['tokenizer']}, not by "
                         f"{p.tokenizer_dir} ({identity})")
    tokenizer = Tokenizer.from_pretrained(p.tokenizer_dir).requires_grad_(False).eval()
    seed_everything(p.training.seed)
    model = WorldActionModel(p.size.world_model).to(ctx.device)  # before its optimizer (fused on CUDA)
    _maybe_compile(p, ctx, "world", model, w.steps)
    micro = micro_batch_size(w.batch_size, w.grad_accum, ctx.world_size)
    dataset = SegmentDataset(p.tokens_dir, batch_size=micro, segment_length=w.segment_length, stride=data.stride,
                             mixing=data.mixing, shuffle_buffer=data.shuffle_buffer, seed=p.training.seed,
                             rank=ctx.rank, world_size=ctx.world_size)
    source = SegmentSource(dataset, data.num_workers, p.training.seed, pin_memory=ctx.device.type == "cuda")
    _report(ctx, f"[world] {index['transitions']} transitions of {', '.join(index['games'])}; {micro} segments per "
                 f"micro batch × {w.grad_accum} × {ctx.world_size} ranks = {w.batch_size} per step; "
                 f"engine {p.settings['engine']}, {p.settings['precision']}")
    stage = world_stage(model, w, source, micro, tokenizer=tokenizer, facts={"tokenizer": identity})
    if ctx.is_main:
        stage.hooks.append(WorldMeasures(model, resolve_shards(p.tokens_dir), w.segment_length, w.loss.gamma,
                                         p.training.logging.every * MEASURE_EVERY_LOGS, w.steps,
                                         bootstrap=w.loss.bootstrap))
    outcome = train_stage(stage, ctx, loop_settings(p, options.resume), options.out / "world",
                          {"size": to_dict(p.size), "training": to_dict(p.training)})
    if outcome.status == "finished" and ctx.is_main:
        assert outcome.checkpoint is not None
        (options.out / FINAL).mkdir(parents=True, exist_ok=True)
        copy_directory(outcome.checkpoint / WORLD_MODEL, options.out / FINAL / WORLD_MODEL)
        if p.tokenizer_dir != options.out / FINAL / "tokenizer":
            copy_directory(p.tokenizer_dir, options.out / FINAL / "tokenizer")
        p.record.mark("world", status="done", steps=outcome.state.step, checkpoint=str(outcome.checkpoint),
                      tokenizer=identity, skipped_steps=outcome.state.skipped_steps)
    barrier()
    return outcome


def pretrain(options: PretrainOptions, ctx: DistContext) -> dict[str, Any]:
    """Run the planned stages; returns a summary (also printed on rank 0). Stops early on SIGTERM."""
    p = plan(options, ctx)
    if ctx.is_main:
        p.record.save()
    summary: dict[str, Any] = {"stages": {}, "out": str(options.out)}
    if not p.stages:
        _report(ctx, f"{options.out}: every requested stage is already done")
    for name in p.stages:
        started = time.perf_counter()
        outcome = None
        if name == "tokenizer":
            outcome = run_tokenizer(p, options, ctx)
        elif name == "tokenize":
            run_tokenize(p, options, ctx)
        else:
            outcome = run_world(p, options, ctx)
        seconds = time.perf_counter() - started
        entry: dict[str, Any] = {"seconds": round(seconds, 1)}
        if outcome is not None:
            entry.update(status=outcome.status, step=outcome.state.step, skipped=outcome.state.skipped_steps,
                         losses=outcome.phase_losses,
                         checkpoint=str(outcome.checkpoint))
            _report(ctx, f"[{name}] {outcome.status} at step {outcome.state.step} in {seconds:.1f}s "
                         f"({outcome.state.skipped_steps} skipped); losses, first → last logged:\n{_losses(outcome)}")
            for problem in outcome.problems:
                _report(ctx, f"[{name}] warning: {problem}")
        summary["stages"][name] = entry
        if outcome is not None and outcome.status != "finished":
            _report(ctx, f"[{name}] stopped early; continue with the same command plus --resume")
            summary["interrupted"] = name
            break
    return summary


def device_summary(ctx: DistContext) -> str:
    threads = torch.get_num_threads()
    return f"{ctx.launcher} launch, rank {ctx.rank}/{ctx.world_size}, {ctx.device}, {threads} threads"
