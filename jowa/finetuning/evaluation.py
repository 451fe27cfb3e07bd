"""Periodic evaluation during fine-tuning: play a few episodes of the new game, keep the best checkpoint.

A loop hook (`after_step`): every `every` steps and at the last one, the agent of the planning code
(`jowa.evaluation.runner.agent_actor_factory`: greedy when H = 0, else beam search) plays
`settings.episodes` episodes; the model and tokenizer are then saved to `best/` whenever the mean return
is at least the best so far (later checkpoints win ties). The history is written to a JSON file after
every evaluation, so a resumed run knows its best score.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from jowa.atomic import write_json
from jowa.evaluation.rollouts import play
from jowa.evaluation.runner import EvaluationSettings, agent_actor_factory
from jowa.model.world_model import WorldActionModel

BEST_FILE = "best.json"


@dataclass
class EvaluationRecord:
    step: int
    mean_return: float
    returns: list[float]
    mean_episode_steps: float
    seconds: float


@torch.no_grad()
def evaluate_agent(model: WorldActionModel, tokenizer: nn.Module, settings: EvaluationSettings,
                   progress: bool = False) -> tuple[list[float], list[int]]:
    """Returns and lengths of `settings.episodes` episodes of `settings.games[0]`, both modules in eval mode
    for the duration (their modes are restored)."""
    modes = model.training, tokenizer.training
    model.eval()
    tokenizer.eval()
    device = model.atoms.device
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            result = play(settings.games, settings.episodes, settings.protocol, settings.num_envs,
                          agent_actor_factory(model, tokenizer, settings), settings.seed, 0, progress, "eval")
    finally:
        model.train(modes[0])
        tokenizer.train(modes[1])
    game = settings.games[0]
    return result.returns[game], result.lengths[game]


class PeriodicEvaluation:
    """Loop hook; see the module docstring."""

    def __init__(
        self, model: WorldActionModel, tokenizer: nn.Module, settings: EvaluationSettings, every: int, last_step: int,
        best_dir: Path, history_path: Path,
    ) -> None:
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.every, self.last_step = every, last_step
        self.best_dir, self.history_path = best_dir, history_path
        self.history: list[EvaluationRecord] = []
        self.logger = None

    def attach(self, logger) -> None:
        self.logger = logger

    @property
    def best(self) -> EvaluationRecord | None:
        best = None
        for record in self.history:
            if best is None or record.mean_return >= best.mean_return:
                best = record
        return best

    def due(self, step: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == self.last_step)

    def after_step(self, step: int) -> None:
        if self.due(step):
            self.evaluate(step)

    def after_resume(self, step: int) -> None:
        """The evaluations up to `step`; plus the one whose model `best/` holds, if it came later (the
        interrupted run evaluated it after its last checkpoint, and its weights are still there)."""
        if self.history_path.is_file():
            saved = json.loads(self.history_path.read_text())
            self.history = [EvaluationRecord(**r) for r in saved if r["step"] <= step]
        best_file = self.best_dir / BEST_FILE
        if best_file.is_file():
            best = EvaluationRecord(**json.loads(best_file.read_text()))
            if best.step > step:
                self.history.insert(0, best)

    def evaluate(self, step: int) -> EvaluationRecord:
        started = time.perf_counter()
        returns, lengths = evaluate_agent(self.model, self.tokenizer, self.settings)
        record = EvaluationRecord(step, sum(returns) / len(returns), returns, sum(lengths) / len(lengths),
                                  round(time.perf_counter() - started, 2))
        previous = self.best
        self.history.append(record)
        if previous is None or record.mean_return >= previous.mean_return:
            self.model.save_pretrained(self.best_dir / "world_model")
            self.tokenizer.save_pretrained(self.best_dir / "tokenizer")
            write_json(self.best_dir / BEST_FILE, asdict(record))
        write_json(self.history_path, [asdict(r) for r in self.history])
        if self.logger is not None:
            self.logger.scalars(step, {"eval/mean_return": record.mean_return,
                                       "eval/mean_episode_steps": record.mean_episode_steps})
            best = self.best
            self.logger.message(f"[finetune] step {step}: mean return {record.mean_return:.2f} over "
                                f"{len(returns)} episodes (best {best.mean_return:.2f} at step {best.step})")
        return record
