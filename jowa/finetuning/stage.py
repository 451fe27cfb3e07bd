"""Fine-tuning as a `jowa.training.loop.Stage`: models loaded and prepared, data in memory, one phase.

One phase for the whole run (the critic trains from step 0, as the official `train_critic_after_n_steps:
-1`), so the optimizer is never reset — imagination switching on at `imagination.after` changes only
what the objective feeds the model. Hooks, in order: the target-head copy every `target_update_every`
steps (and after a resume), the objective's step counter, the periodic evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from jowa.finetuning.buffer import SegmentBuffer
from jowa.finetuning.config import FinetuneConfig, imagined_per_batch
from jowa.finetuning.data import GameData, load_game_data
from jowa.finetuning.evaluation import PeriodicEvaluation
from jowa.finetuning.freezing import apply_freezing
from jowa.finetuning.mixed_objective import FinetuneObjective, Imagination, StepCounter
from jowa.finetuning.options import FinetuneOptions, FinetunePlan
from jowa.finetuning.segment_batches import FinetuneBatches
from jowa.finetuning.task_rows import init_task_row
from jowa.games import task_id
from jowa.model.world_model import WorldActionModel
from jowa.planning.beam_search import BeamSearch
from jowa.training.loop import Phase, PhaseParts, Stage
from jowa.training.optim import WorldLearningRates, make_adamw, make_schedule, world_param_groups
from jowa.training.state import seed_everything
from jowa.training.throughput import world_flops_per_token
from jowa.training.world_stage import TOKENIZER, WORLD_MODEL, TargetUpdate


@dataclass
class BuiltFinetune:
    stage: Stage
    model: WorldActionModel
    tokenizer: nn.Module
    data: GameData
    source: FinetuneBatches
    objective: FinetuneObjective
    evaluation: PeriodicEvaluation | None
    parameter_counts: dict[str, int]


def param_groups(model: WorldActionModel, tokenizer: nn.Module, config: FinetuneConfig) -> list[dict]:
    """The official AdamW groups restricted to what trains, plus the tokenizer (no decay) when it trains."""
    rates = WorldLearningRates(config.lr, config.critic_lr, config.weight_decay)
    groups = []
    for group in world_param_groups(model, rates, with_critic=True):
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            groups.append({**group, "params": params})
    if config.tokenizer.train:
        groups.append({"name": TOKENIZER, "params": list(tokenizer.parameters()), "lr": config.tokenizer.lr,
                       "weight_decay": 0.0})
    return groups


def build_finetune(plan: FinetunePlan, options: FinetuneOptions, facts: dict[str, str]) -> BuiltFinetune:
    from jowa.tokenizer import Tokenizer

    config, device = plan.config, plan.device
    seed_everything(config.seed)
    tokenizer = Tokenizer.from_pretrained(plan.tokenizer_dir, map_location=device)
    tokenizer.requires_grad_(config.tokenizer.train).train(config.tokenizer.train)
    if config.tokenizer.train:
        tokenizer.perceptual_net()  # read the LPIPS weights now: a missing file fails before training
    model = WorldActionModel.from_pretrained(plan.model_dir, map_location=device).train()
    init_task_row(model, plan.game, plan.task_row, plan.pretrained_games)
    model.update_target()  # the official fine-tuning copies the target head right after loading
    counts = apply_freezing(model, config.train)
    if config.tokenizer.train:
        counts["tokenizer"] = sum(p.numel() for p in tokenizer.parameters())

    d, im = config.data, config.imagination
    data = load_game_data(options.replay, plan.picks, tokenizer, d.tokenize_batch_frames, device,
                          keep_frames=config.tokenizer.train)
    source = FinetuneBatches(
        data.episodes, task_id(plan.game), config.batch_size, d.segment_length, d.stride, config.seed,
        seed_batch_size=config.batch_size if im.enabled else 0, seed_offset=im.seed_offset,
        tokenizer_frames=config.tokenizer.frames if config.tokenizer.train else 0,
    )
    imagination = None
    if im.enabled:
        capacity = im.buffer_factor * source.num_segments
        buffer = SegmentBuffer(capacity, d.segment_length, seed=config.seed + im.seed_offset)
        imagination = Imagination(buffer, BeamSearch(beam_width=im.beam_width, horizon=im.horizon), im.after,
                                  imagined_per_batch(config))
    objective = FinetuneObjective(model, tokenizer, config.loss, imagination, config.tokenizer.train)

    def build() -> PhaseParts:
        optimizer = make_adamw(param_groups(model, tokenizer, config), config.betas, config.eps)
        schedule = make_schedule(optimizer, config.schedule, config.warmup_steps, config.steps)
        return PhaseParts(objective, optimizer, schedule)

    hooks: list = [TargetUpdate(model, config.target_update_every), StepCounter(objective)]
    evaluation = None
    if plan.evaluation is not None:
        evaluation = PeriodicEvaluation(model, tokenizer, plan.evaluation, config.evaluation.every, config.steps,
                                        options.out / "best", options.out / "evaluations.json")
        hooks.append(evaluation)
    stage = Stage(
        name="finetune", steps=config.steps, phases=[Phase("finetune", 0, build)], source=source,
        saved_modules={WORLD_MODEL: model, TOKENIZER: tokenizer}, grad_accum=1, micro_batch_size=config.batch_size,
        grad_clip=config.grad_clip, items_in=lambda batch: batch.real.batch_size,
        tokens_per_item=d.segment_length * model.config.tokens_per_block,
        flops_per_token=world_flops_per_token(model, model.config), hooks=hooks, facts=facts,
    )
    return BuiltFinetune(stage, model, tokenizer, data, source, objective, evaluation, counts)
