"""Evaluate a trained run: resolve and check the settings, play every game, write the report."""

from __future__ import annotations

import logging
import signal
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from jowa.evaluation.episode_log import EPISODES_NAME, EpisodeLog
from jowa.evaluation.open_loop_report import TITLE as OPEN_LOOP_TITLE
from jowa.evaluation.open_loop_report import open_loop_section
from jowa.evaluation.processes import Processes, warn_idle
from jowa.evaluation.protocols import Protocol, get_protocol
from jowa.evaluation.references import behaviour_actor_factory, behaviour_notes, reference_table
from jowa.evaluation.report import EvaluationResults, write_report, write_video
from jowa.evaluation.rollouts import AgentActor, RandomActor, RolloutResult, allocate_slots, play
from jowa.evaluation.settings_file import TableEntry, read_settings_file
from jowa.games import FULL_ACTIONS, check_game, minimal_to_full, task_id
from jowa.model_files import WEIGHTS_NAME, file_sha256, find_model_dir
from jowa.training.signals import StopRequest

if TYPE_CHECKING:
    from jowa.planning.planner import PlannerSettings

log = logging.getLogger(__name__)
MAX_BLOCKS = 8
SINGLE = Processes()
PLANNER_LABELS = {"beam": "beam search", "greedy": "greedy", "mcts": "MCTS"}


@dataclass
class GameSetting:
    context: int  # blocks of real history the agent keeps (the official buffer_size)
    beam_width: int  # K (nodes kept per depth)


@dataclass
class EvaluationSettings:
    games: list[str]
    episodes: int
    protocol: Protocol
    horizon: int  # 0 = greedy
    per_game: dict[str, GameSetting]
    num_envs: int
    seed: int = 0
    planner: str = "beam"  # a name of jowa.planning.registry.PLANNERS; horizon 0 is always greedy
    simulations: int | None = None  # MCTS (None: its default)
    return_lambda: float = 1.0  # beam search's λ-return score (jowa.planning.beam_search; 1 = official)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["planner"] = PLANNER_LABELS.get(self.planner, self.planner)
        if self.planner != "mcts":  # beam search and greedy records stay as before the planner seam
            out.pop("simulations")
        if self.return_lambda == 1.0:  # official-score records stay as before the option
            out.pop("return_lambda")
        return out

    def label(self) -> str:
        """The planner as reports name it (K is per game, so not here)."""
        if self.planner == "greedy":
            return "greedy"
        if self.planner == "mcts":
            from jowa.planning.mcts import DEFAULT_SIMULATIONS

            return f"MCTS H={self.horizon} simulations={self.simulations or DEFAULT_SIMULATIONS}"
        from jowa.planning.beam_search import lambda_suffix

        return f"{PLANNER_LABELS.get(self.planner, self.planner)} H={self.horizon}{lambda_suffix(self.return_lambda)}"

    def planner_settings(self) -> PlannerSettings:
        """The planner's own options (each game's K reaches it per environment, as `widths`)."""
        from jowa.planning.planner import PlannerSettings

        return PlannerSettings(self.horizon, simulations=self.simulations, return_lambda=self.return_lambda)


def resolve_settings(
    games: list[str], episodes: int, protocol: str, beam_width: int, horizon: int, context: int,
    num_envs: int, greedy: bool = False, settings_file: str | Path | None = None, seed: int = 0,
    max_episode_steps: int | None = None, planner: str = "beam", simulations: int | None = None,
    return_lambda: float = 1.0,
) -> EvaluationSettings:
    """Command-line values, overridden per game by a settings file (docs/official_jowa.md §8.4 tables); fails early on bad input."""
    from jowa.planning.planner import check_context, check_horizon
    from jowa.planning.registry import PLANNERS, make_planner

    if planner not in PLANNERS:
        raise ValueError(f"unknown planner {planner!r}; choose from {sorted(PLANNERS)}")
    if simulations is not None and simulations < 1:
        raise ValueError(f"simulations must be >= 1, got {simulations}")
    games = [check_game(g) for g in games]
    if not games:
        raise ValueError("no games to evaluate")
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"episodes and envs must be >= 1, got {episodes} and {num_envs}")
    table: dict[str, TableEntry] = {}
    if settings_file is not None:
        path = Path(settings_file)
        if not path.is_file():
            raise FileNotFoundError(f"settings file not found: {path}")
        file_horizon, table = read_settings_file(path)
        horizon = horizon if file_horizon is None else file_horizon
    greedy = greedy or planner == "greedy" or (planner == "beam" and horizon == 0)
    if greedy:  # no look-ahead, so no score to mix: greedy is already the λ = 0 end
        horizon, planner, return_lambda = 0, "greedy", 1.0
    check_horizon(horizon, MAX_BLOCKS, minimum=1 if planner == "mcts" else 0)
    per_game = {}
    for game in games:
        entry = table.get(game, TableEntry())
        width = beam_width if entry.beam_width is None else entry.beam_width
        setting = GameSetting(context if entry.context is None else entry.context, 1 if greedy else width)
        check_context(setting.context, horizon, MAX_BLOCKS, game)
        if setting.beam_width < 1:
            raise ValueError(f"{game}: beam width must be >= 1, got {setting.beam_width}")
        valid = len(minimal_to_full(game))
        if setting.beam_width > valid and planner == "beam":
            log.warning("%s has %d valid actions: beam width %d expands only %d actions per node (as official)",
                        game, valid, setting.beam_width, valid)
        per_game[game] = setting
    chosen = get_protocol(protocol)
    if max_episode_steps is not None:  # a shorter cap than the protocol's, e.g. for a quick look
        if max_episode_steps < 1:
            raise ValueError(f"max episode steps must be >= 1, got {max_episode_steps}")
        chosen = replace(chosen, name=f"{chosen.name} (capped at {max_episode_steps} steps)",
                         max_episode_steps=max_episode_steps,
                         description=f"{chosen.description}; here capped at {max_episode_steps} agent steps")
    settings = EvaluationSettings(games, episodes, chosen, horizon, per_game, num_envs, seed, planner, simulations,
                                  return_lambda)
    make_planner(planner, settings.planner_settings())  # the planner's own checks, before any model is loaded
    return settings


def load_run(run: str | Path, device: torch.device):
    """The newest tokenizer and world model of a run directory, in eval mode on `device`."""
    from jowa.model.world_model import WorldActionModel
    from jowa.tokenizer import Tokenizer

    model = WorldActionModel.from_pretrained(find_model_dir(run, "world_model"), map_location=device).eval()
    tokenizer = Tokenizer.from_pretrained(find_model_dir(run, "tokenizer"), map_location=device).eval()
    if tokenizer.config.vocab_size != model.config.obs_vocab_size:
        raise ValueError(f"{run}: tokenizer vocabulary {tokenizer.config.vocab_size} != model's {model.config.obs_vocab_size}")
    return model, tokenizer


def agent_actor_factory(model, tokenizer, settings: EvaluationSettings):
    from jowa.planning.agent import Agent
    from jowa.planning.registry import make_planner

    planner = make_planner(settings.planner, settings.planner_settings())

    def make(slot_games: list[str]) -> AgentActor:
        tasks = torch.tensor([task_id(g) for g in slot_games])
        buffers = torch.tensor([settings.per_game[g].context for g in slot_games])
        widths = torch.tensor([settings.per_game[g].beam_width for g in slot_games])
        generator = torch.Generator().manual_seed(settings.seed)
        epsilon = settings.protocol.epsilon
        return AgentActor(Agent(model, tokenizer, tasks, planner, buffers, widths, epsilon, generator))

    return make


class EvaluationStopped(RuntimeError):
    """SIGTERM or Ctrl-C stopped an evaluation; what finished is in the episode log (and a partial report)."""


def results_from_log(log: EpisodeLog, side: str, name: str, settings: EvaluationSettings,
                     with_settings: bool) -> EvaluationResults | None:
    """The logged episodes of one side as report results (games without a finished episode left out)."""
    returns = {g: log.returns(side, g) for g in settings.games if log.returns(side, g)}
    if not returns:
        return None
    metadata = {}
    for game in returns:
        lengths = log.lengths(side, game)
        meta: dict[str, Any] = {"mean_episode_steps": sum(lengths) / len(lengths)}
        played = log.action_counts(side, game)
        if played is not None and sum(played):  # an agent that plays one action whatever the screen shows
            top = max(range(len(played)), key=played.__getitem__)
            meta.update(top_action=FULL_ACTIONS[top], top_action_share=round(played[top] / sum(played), 3))
        if with_settings:
            meta.update(context=settings.per_game[game].context, K=settings.per_game[game].beam_width, H=settings.horizon)
        metadata[game] = meta
    return EvaluationResults(returns, metadata, name=name)


def _missing(log: EpisodeLog, side: str, settings: EvaluationSettings) -> tuple[dict[str, int], int]:
    """Episodes of `side` still to play per game, and how many the log holds."""
    missing = {g: settings.episodes - len(log.returns(side, g)) for g in settings.games}
    return missing, len(settings.games) * settings.episodes - sum(missing.values())


def _play_side(log: EpisodeLog | None, side: str, settings: EvaluationSettings, make_actor, video_frames: int,
               progress: bool, stop: StopRequest, processes: Processes = SINGLE) -> RolloutResult:
    """Play the episodes of `side` the log does not hold yet, logging each as it ends (several processes:
    each plays its slot groups, rank 0 logs them all in group order; only rank 0 has the log)."""
    missing, done = processes.share(_missing(log, side, settings) if log is not None else None)
    # Fresh environment seeds on a continued evaluation, so that it does not replay the logged episodes.
    seed = settings.seed + 100_003 * done
    if processes.world == 1:
        return play(settings.games, missing, settings.protocol, settings.num_envs, make_actor, seed, video_frames,
                    progress, side, on_episode=lambda g, r, n, a: log.append(side, g, r, n, a),
                    should_stop=lambda: stop.requested)
    warn_idle(processes, len(allocate_slots(settings.games, missing, settings.num_envs)), settings.num_envs)
    mine = play(settings.games, missing, settings.protocol, settings.num_envs, make_actor, seed, video_frames,
                progress and processes.main, side, should_stop=lambda: stop.requested, owned=processes.owns)
    merged = RolloutResult({g: [] for g in settings.games}, {g: [] for g in settings.games})
    for part in processes.gather(mine):
        merged.episodes += part.episodes
        merged.videos.update(part.videos)  # a game is played by one process only
        merged.stopped |= part.stopped
    merged.episodes.sort(key=lambda episode: episode[0])  # stable: group order, then as they ended
    for _, game, episode_return, steps, played in merged.episodes:
        merged.returns[game].append(episode_return)
        merged.lengths[game].append(steps)
        if log is not None:
            log.append(side, game, episode_return, steps, played)
    return merged


def evaluate_run(
    run: str | Path, settings: EvaluationSettings, out_dir: str | Path, device: str = "cpu",
    random_baseline: bool = False, video_frames: int = 0, progress: bool = True, restart_other: bool = False,
    behaviour: str | Path | None = None, open_loop_segments: int = 3, processes: Processes = SINGLE,
) -> Path:
    """Play all episodes with the run's agent (and optionally a random policy), write the report.

    Every episode is logged as it ends (`out_dir/episodes.jsonl`); rerunning continues from the log (a log
    of other settings or weights is refused, or with `restart_other` replaced). On SIGTERM or Ctrl-C a
    partial report of the finished episodes is written, then EvaluationStopped raised. `behaviour`: a root
    of behaviour runs ({root}/{Game}/{run}, data/atari/collect.py --agent) whose agents are played too and
    shown beside the random policy as reference agents. `open_loop_segments` real segments per game are
    imagined open-loop by the model for the report (0: none). `processes` (jowa.evaluation.processes): under
    `accelerate launch` each process plays its share of the slot groups on its own device; rank 0 alone logs
    (after each side) and writes the report, the same as one process's."""
    out_dir = Path(out_dir)
    cap = settings.protocol.max_episode_steps
    notes = behaviour_notes(behaviour, settings.games, cap) if behaviour is not None else {}
    device_t = torch.device(device)
    model, tokenizer = load_run(run, device_t)
    planner = settings.label()
    identity = {kind: file_sha256(find_model_dir(run, kind) / WEIGHTS_NAME) for kind in ("world_model", "tokenizer")}
    log = processes.on_main(lambda: EpisodeLog(out_dir / EPISODES_NAME, {
        **settings.to_json(), "run": str(run), "planner": planner, "weights_sha256": identity}, restart_other))
    with StopRequest((signal.SIGTERM, signal.SIGINT)) as stop:
        with torch.autocast(device_t.type, dtype=torch.bfloat16, enabled=device_t.type == "cuda"):
            agent = _play_side(log, "agent", settings, agent_actor_factory(model, tokenizer, settings),
                               video_frames, progress, stop, processes)
        if random_baseline and not processes.any(stop.requested):
            _play_side(log, "random", settings, lambda slot_games: RandomActor(slot_games, settings.seed), 0,
                       progress, stop, processes)
        if behaviour is not None and not processes.any(stop.requested):
            _play_side(log, "behaviour", settings, behaviour_actor_factory(behaviour, settings.seed), 0, progress,
                       stop, processes)
        signal_name = processes.share(stop.signal_name)
    report = processes.on_main(lambda: _write_run_report(
        log, run, settings, out_dir, device, random_baseline, behaviour, notes, agent.videos, signal_name,
        open_loop_segments, model, tokenizer))
    return report if report is not None else out_dir


def _write_run_report(
    log: EpisodeLog, run: str | Path, settings: EvaluationSettings, out_dir: Path, device: str,
    random_baseline: bool, behaviour: str | Path | None, notes: dict[str, Any], videos: dict[str, Any],
    signal_name: str | None, open_loop_segments: int, model, tokenizer,
) -> Path:
    """The report of what the log holds (partial: written, then EvaluationStopped raised)."""
    device_t = torch.device(device)
    results = results_from_log(log, "agent", "jowa", settings, with_settings=True)
    baseline = results_from_log(log, "random", "random", settings, with_settings=False) if random_baseline else None
    wanted = len(settings.games) * settings.episodes * (1 + random_baseline + (behaviour is not None))
    finished = len(log.records)
    if results is None:
        raise EvaluationStopped(f"stopped by {signal_name} before any episode finished; rerun the same "
                                f"command to continue ({out_dir / EPISODES_NAME})")
    note = None if finished == wanted else (
        f"Partial report: {finished} of {wanted} episodes finished before {signal_name or 'the stop'}; "
        f"rerun the same command to continue.")
    report_settings = {**settings.to_json(), "run": str(run), "device": device, "planner": settings.label()}
    sections = {}
    if behaviour is not None:
        sides = {name: {g: log.returns(side, g) for g in settings.games}
                 for side, name in (("agent", "jowa"), ("random", "random"), ("behaviour", "behaviour agent"))
                 if side != "random" or random_baseline}
        sections["Reference agents"] = (
            ["Mean return ± standard error (episodes) under the same protocol; the behaviour agent is the learner "
             f"whose log is the training data ({behaviour}).", "", *reference_table(sides, notes)],
            {"behaviour_root": str(behaviour), "returns": sides, "behaviour_logs": notes})
    loop = None
    if open_loop_segments > 0 and note is None:
        with torch.autocast(device_t.type, dtype=torch.bfloat16, enabled=device_t.type == "cuda"):
            loop = open_loop_section(model, tokenizer, settings.games, settings.protocol.sticky, settings.seed,
                                     open_loop_segments)
        sections[OPEN_LOOP_TITLE] = (loop.lines(), loop.data())
    out = write_report(out_dir, results, report_settings, baseline, note=note, sections=sections)
    if loop is not None:
        loop.write_images(out)
    (out / "videos").mkdir(exist_ok=True)
    for game, frames in videos.items():
        write_video(frames, out / "videos" / f"{game}.gif", fps=15, scale=2)
    if note is not None:
        raise EvaluationStopped(f"{note} Report so far: {out / 'report.md'}")
    return out
