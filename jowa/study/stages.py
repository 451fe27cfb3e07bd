"""The study's stages, each a call of the library behind the matching command, resumable on its own.

    OUT/
      study.json            settings, behaviour directory, each finished stage with its wall time
      behaviour/            the learning agents' runs ({Game}/{seed}/, collect.py --agent), unless --behaviour
      tokenizer/            the shared tokenizer (pretrain.py --stage tokenizer): final/tokenizer
      tokens/               the shared token shards of the pretraining games
      models/<size>/        a world-action model per size (pretrain.py --tokens --tokenizer): final/
      finetune/pretrained/  the largest size fine-tuned on the held-out game
      finetune/scratch/     the same architecture from fresh weights, the same tokenizer, data and steps
      eval/                 plan.py-style reports (report.json) of every evaluation
      RESULTS.md, results.json, figures/
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from jowa.study.config import StudyConfig


class StudyStopped(RuntimeError):
    """A stage stopped early (SIGTERM or Ctrl-C) with its state saved; the same command continues it."""


@dataclass
class Study:
    out: Path
    config: StudyConfig
    behaviour: Path  # the root of the behaviour runs ({Game}/{run}/)

    @property
    def tokenizer_run(self) -> Path:
        return self.out / "tokenizer"

    @property
    def tokenizer_dir(self) -> Path:
        return self.out / "tokenizer" / "final" / "tokenizer"

    @property
    def tokens(self) -> Path:
        return self.out / "tokens"

    def model(self, size: str) -> Path:
        return self.out / "models" / size

    def finetuned(self, start: str) -> Path:
        return self.out / "finetune" / start

    def evaluation(self, name: str) -> Path:
        return self.out / "eval" / name


def device(config: StudyConfig) -> str:
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


# ------------------------------------------------------------------------------------------ behaviour

def behaviour_plans(config: StudyConfig, out: Path) -> list[tuple[Any, str]]:
    """(RunConfig, run name) per game, checked against any earlier attempt in `out` (other settings: error)."""
    from jowa.behaviour import RunConfig, agent_settings
    from jowa.behaviour.runs import plan_behaviour_runs
    from jowa.behaviour.train import check_run_dir, run_dir_of

    b = config.behaviour
    if not b.settings:  # the library's own planning
        return plan_behaviour_runs(config.all_games, [b.seed], b.transitions, out, agent=b.agent,
                                   wall_minutes=b.minutes, sticky=b.sticky)
    settings = agent_settings(b.agent, **b.settings)
    plans = []
    for game in config.all_games:
        run = RunConfig(game=game, agent=b.agent, settings=settings, seed=b.seed, transitions=b.transitions,
                        wall_minutes=b.minutes, sticky=b.sticky)
        check_run_dir(run_dir_of(out, game, str(b.seed)), run)
        plans.append((run, str(b.seed)))
    return plans


def check_behaviour_dir(root: Path, games: list[str]) -> dict[str, str]:
    """{game: run directory} of a finished behaviour run per game under `root`; ValueError otherwise."""
    from jowa.evaluation.references import behaviour_run

    if not root.is_dir():
        raise FileNotFoundError(f"--behaviour {root} does not exist")
    runs = {}
    for game in games:
        try:
            run = behaviour_run(root, game)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        state = json.loads((run / "state.json").read_text())
        if not state["state"].get("done"):
            raise ValueError(f"--behaviour {root}: the {game} run {run} is not finished (state.json done=false); "
                             "let it finish, or leave --behaviour out to make the data here")
        runs[game] = str(run)
    return runs


def behaviour_stage(s: Study) -> dict[str, Any]:
    from jowa.behaviour import behaviour_summary
    from jowa.behaviour.runs import collect_behaviour

    if s.behaviour != s.out / "behaviour":  # given with --behaviour: already made
        runs = check_behaviour_dir(s.behaviour, s.config.all_games)
        return {"source": str(s.behaviour), "made_here": False,
                "runs": {g: {"run": r, **behaviour_summary(r).__dict__} for g, r in runs.items()}}
    b = s.config.behaviour
    try:
        collect_behaviour(behaviour_plans(s.config, s.behaviour), s.behaviour, device=b.device,
                          commit_seconds=b.commit_seconds, parallel=b.parallel)
    except KeyboardInterrupt:
        raise StudyStopped(f"behaviour data stopped early; the runs keep their last commit (at most "
                           f"{b.commit_seconds:.0f}s lost)") from None
    runs = check_behaviour_dir(s.behaviour, s.config.all_games)
    return {"source": str(s.behaviour), "made_here": True,
            "runs": {g: {"run": r, **behaviour_summary(r).__dict__} for g, r in runs.items()}}


# ------------------------------------------------------------------------------------------ pretraining

def _pretrain(options: Any) -> dict[str, Any]:
    from jowa.training.distributed import init_distributed
    from jowa.training.pretrain import pretrain

    summary = pretrain(options, init_distributed())
    if "interrupted" in summary:
        raise StudyStopped(f"pretraining stopped early in its {summary['interrupted']} stage (checkpoint saved)")
    return summary


def tokenizer_stage(s: Study) -> dict[str, Any]:
    from jowa.training.pretrain import PretrainOptions

    p = s.config.pretrain
    return _pretrain(PretrainOptions(size=p.size, out=s.tokenizer_run, replay=s.behaviour, games=s.config.games,
                                     stage="tokenizer", resume=True, overrides=list(p.overrides)))


def tokenize_stage(s: Study) -> dict[str, Any]:
    """Every pretraining game's log (or JOWA's subsample of it) through the shared tokenizer, once."""
    import time

    from jowa.data.tokenize_replay import tokenize_replay
    from jowa.training.config import load_training
    from jowa.training.pretrain import default_training, split_overrides

    p = s.config.pretrain
    training = load_training(default_training(p.size))
    from jowa.config import apply_overrides

    training = apply_overrides(training, split_overrides(p.overrides)[1])
    started = time.perf_counter()
    subsample = {"runs_per_game": 1, "transitions_per_game": p.transitions_per_game} if p.transitions_per_game else {}
    report = tokenize_replay(s.behaviour, str(s.tokenizer_dir), s.tokens, games=s.config.games,
                             batch_frames=training.data.tokenize_batch_frames, device=device(s.config),
                             progress=training.logging.progress_bar, **subsample)
    return {"episodes": report.episodes, "transitions": report.transitions,
            "seconds": round(time.perf_counter() - started, 1)}


def world_stage(size: str) -> Callable[[Study], dict[str, Any]]:
    def run(s: Study) -> dict[str, Any]:
        from jowa.training.pretrain import PretrainOptions

        p = s.config.pretrain
        return _pretrain(PretrainOptions(size=p.size, out=s.model(size), tokens=s.tokens, tokenizer=s.tokenizer_dir,
                                         games=s.config.games, resume=True,
                                         overrides=[*p.overrides, *p.sizes[size]]))
    return run


# ------------------------------------------------------------------------------------------ evaluation

def _evaluate(s: Study, run: Path, games: list[str], name: str, planning: bool, references: bool) -> str:
    from jowa.evaluation.config import resolve
    from jowa.evaluation.runner import EvaluationStopped, evaluate_run

    e = s.config.evaluation
    envs = min(e.num_envs, e.episodes * len(games))
    settings = resolve(replace(e, horizon=e.horizon if planning else 0, num_envs=envs, seed=s.config.seed), games)
    try:
        report = evaluate_run(run, settings, s.evaluation(name), device=device(s.config), random_baseline=references,
                              video_frames=e.video_frames if planning else 0,
                              behaviour=s.behaviour if references else None, restart_other=True)
    except EvaluationStopped as error:
        raise StudyStopped(str(error)) from None
    return str(report / "report.json")


def evaluate_stage(size: str) -> Callable[[Study], dict[str, Any]]:
    """Planning and greedy on the pretraining games; the random policy and the behaviour agents (which do
    not depend on the model) are played once, beside the smallest size's planning agent."""
    def run(s: Study) -> dict[str, Any]:
        first = size == list(s.config.pretrain.sizes)[0]
        return {"plan": _evaluate(s, s.model(size), s.config.games, f"{size}_plan", True, first),
                "greedy": _evaluate(s, s.model(size), s.config.games, f"{size}_greedy", False, False)}
    return run


# ------------------------------------------------------------------------------------------ fine-tuning

def scratch_init(s: Study) -> Path:
    """The largest size's architecture with fresh weights, beside the pretrained tokenizer."""
    import torch

    from jowa.model.world_model import WorldActionModel

    target = s.out / "finetune" / "scratch-init"
    if not (target / "final" / "world_model" / "model.safetensors").is_file():
        config = WorldActionModel.read_config(s.model(s.config.main_size) / "final" / "world_model")
        torch.manual_seed(s.config.seed)
        WorldActionModel(config).save_pretrained(target / "final" / "world_model")
        shutil.copytree(s.tokenizer_dir, target / "final" / "tokenizer", dirs_exist_ok=True)
    return target


def finetune_stage(start: str) -> Callable[[Study], dict[str, Any]]:
    def run(s: Study) -> dict[str, Any]:
        from jowa.finetuning.run import FinetuneOptions, finetune

        f = s.config.finetune
        source = s.model(s.config.main_size) if start == "pretrained" else scratch_init(s)
        options = FinetuneOptions(run=source, game=s.config.held_out, out=s.finetuned(start), replay=s.behaviour,
                                  config=f.config, transitions=f.transitions, select=f.select,
                                  overrides=list(f.overrides), resume=True, device=device(s.config),
                                  pretrained_games=list(s.config.games) if start == "pretrained" else [])
        summary = finetune(options)
        if summary["status"] != "finished":
            raise StudyStopped(f"fine-tuning ({start}) stopped early ({summary['status']}; checkpoint saved)")
        return {key: summary[key] for key in ("step", "final", "data", "train_seconds", "losses") if key in summary}
    return run


def heldout_stage(s: Study) -> dict[str, Any]:
    """Both fine-tuned models on the held-out game, planning and greedy; random and behaviour once."""
    game = [s.config.held_out]
    return {f"{start}_{kind}": _evaluate(s, s.finetuned(start), game, f"heldout_{start}_{kind}", kind == "plan",
                                         start == "pretrained" and kind == "plan")
            for start in ("pretrained", "scratch") for kind in ("plan", "greedy")}


def results_stage(s: Study) -> dict[str, Any]:
    from jowa.study.results import write_results

    return write_results(s)


def stage_functions(config: StudyConfig) -> dict[str, Callable[[Study], dict[str, Any]]]:
    """Every stage in order: its name in study.json → the function that runs it."""
    stages: dict[str, Callable[[Study], dict[str, Any]]] = {"behaviour": behaviour_stage,
                                                             "tokenizer": tokenizer_stage, "tokenize": tokenize_stage}
    stages.update({f"world:{size}": world_stage(size) for size in config.pretrain.sizes})
    stages.update({f"evaluate:{size}": evaluate_stage(size) for size in config.pretrain.sizes})
    stages.update({"finetune:pretrained": finetune_stage("pretrained"), "finetune:scratch": finetune_stage("scratch"),
                   "evaluate:heldout": heldout_stage, "results": results_stage})
    return stages
