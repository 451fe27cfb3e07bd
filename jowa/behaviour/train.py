"""Train a behaviour agent from scratch on one game and log every transition it takes as a DQN-Replay run.

`train_run` writes `{out}/{Game}/{run}/`:
- `replay_logs/` — Dopamine chunks (jowa.data.replay reads them), whole episodes, game-over terminals;
- `learning_curve.json`, `learning_curve.png` — returns against agent step and wall time, steps/s;
- `agent/latest.zip`, `agent/step_{N}.zip`, `agent/final.zip` — stable-baselines3 checkpoints;
- `state.json` — the commit record; `.segments/` — rows not yet in a chunk (gone when the run finishes).

A commit (every `commit_seconds`, at a rollout boundary) moves the finished episodes into the log, saves
the log's new rows, the agent and the curve, then rewrites `state.json`. Rerunning after a crash restores
the log and the agent of the last commit; the episodes in progress then (and everything after) are not
in the log and the agent has not learnt from them, so the log holds each transition exactly once. The
envs start new episodes on resume.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from jowa.atomic import atomic_file, write_json
from jowa.behaviour.agents import AgentSettings, load_agent, make_agent
from jowa.behaviour.curve import Curve, plot_curve, summarize, write_curve
from jowa.behaviour.replay_log import LogState, ResumableLog
from jowa.behaviour.vec_env import RecordingVecEnv
from jowa.data.replay_layout import list_suffixes, replay_log_dir
from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS
from jowa.games import check_game

STATE_NAME = "state.json"
AGENT_DIR = "agent"
FINAL_AGENT = "final.zip"


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; a rerun must match it to continue (`wall_minutes` may change)."""

    game: str
    agent: str
    settings: AgentSettings
    seed: int
    transitions: int  # logged transitions at most
    wall_minutes: float | None = None  # stop after this much training wall time (whole episodes kept)
    sticky: float = 0.25
    max_episode_steps: int = DOPAMINE_MAX_EPISODE_STEPS
    capacity: int = 1_000_000
    compresslevel: int = 6
    save_every: int = 100_000  # agent steps between kept checkpoints (latest.zip is rewritten each commit)

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "wall_minutes"}


@dataclass
class RunState:
    agent_steps: int = 0
    wall_seconds: float = 0.0
    log: LogState = field(default_factory=LogState)
    curve: Curve = field(default_factory=Curve)
    dropped_steps: int = 0  # steps in episodes never logged (in progress at a resume or at the time limit)
    resumes: int = 0
    training_done: bool = False
    done: bool = False


def run_dir_of(out: str | os.PathLike, game: str, run: str) -> Path:
    return Path(out) / check_game(game) / run


def check_run_dir(run_dir: Path, config: RunConfig) -> RunState | None:
    """The committed state of an earlier attempt (None if fresh); ValueError if it has other settings."""
    state_path = run_dir / STATE_NAME
    if not state_path.is_file():
        log_dir = run_dir / "replay_logs"
        if log_dir.is_dir() and list_suffixes(log_dir):
            raise ValueError(f"{log_dir} already holds replay files that are not a behaviour run; choose another --out")
        return None
    record = json.loads(state_path.read_text())
    if record["config"] != json.loads(json.dumps(config.identity())):
        theirs, ours = record["config"], json.loads(json.dumps(config.identity()))
        diff = sorted(k for k in ours if theirs.get(k) != ours[k])
        raise ValueError(f"{run_dir} holds a run with other settings ({', '.join(diff)}); choose another --out")
    s = record["state"]
    return RunState(agent_steps=s["agent_steps"], wall_seconds=s["wall_seconds"], log=LogState(**s["log"]),
                    curve=Curve(**s["curve"]), dropped_steps=s["dropped_steps"], resumes=s["resumes"],
                    training_done=s["training_done"], done=s["done"])


def train_run(config: RunConfig, out: str | os.PathLike, run: str, *, device: str = "auto",
              commit_seconds: float = 60.0, progress: bool = True) -> RunState:
    """Train and log one run (continuing a crashed one); returns its final state."""
    run_dir = run_dir_of(out, config.game, run)
    state = check_run_dir(run_dir, config) or RunState()
    if state.done:
        return state
    resumed = state.agent_steps > 0 or state.log.add_count > 0
    state.resumes += resumed
    log = ResumableLog(replay_log_dir(out, config.game, run), config.capacity, config.compresslevel, state.log)
    trainer = _Trainer(config, run_dir, log, state, commit_seconds)
    if not state.training_done:
        trainer.train(device, progress)
    trainer.finish()
    return state


class _Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, log: ResumableLog, state: RunState, commit_seconds: float):
        self.config, self.run_dir, self.log, self.state = config, run_dir, log, state
        self.commit_seconds = commit_seconds
        self.logged = sum(state.curve.episodes["length"])
        self.session_start = time.perf_counter()
        self.wall_at_start = state.wall_seconds
        (run_dir / AGENT_DIR).mkdir(parents=True, exist_ok=True)

    def wall(self) -> float:
        return self.wall_at_start + time.perf_counter() - self.session_start

    def train(self, device: str, progress: bool) -> None:
        c, s = self.config, self.state
        env = RecordingVecEnv(c.game, c.settings.num_envs, seed=1000 * c.seed + c.settings.num_envs * s.resumes,
                              budget=c.transitions - self.logged, sticky=c.sticky,
                              max_episode_steps=c.max_episode_steps)
        env.agent_steps, env.clock = s.agent_steps, self.wall
        latest = self.run_dir / AGENT_DIR / "latest.zip"
        if s.agent_steps and latest.is_file():
            self.model = load_agent(str(latest), c.agent, env, device)
        else:
            self.model = make_agent(c.settings, env, c.seed, device)
        self.env = env
        bar = tqdm(total=c.transitions, initial=s.agent_steps, unit="step", disable=not progress,
                   desc=f"{c.game} {c.agent}", dynamic_ncols=True)
        callback = _Callback(self, bar)
        try:
            self.model.learn(total_timesteps=10**12, callback=callback, reset_num_timesteps=not s.agent_steps)
            if env.recording:  # stopped by the time limit: only whole episodes are logged
                env.stop_recording()
            s.training_done = True
            self.commit(final=True)
        finally:
            bar.close()
            env.close()

    def commit(self, final: bool = False) -> None:
        """Finished episodes → log; log rows, agent, curve, then state.json (the commit point)."""
        s, c = self.state, self.config
        wall = self.wall()
        for episode in self.env.take_finished():
            self.log.add_episode(np.stack(episode.frames), np.asarray(episode.actions), np.asarray(episode.rewards))
            s.curve.add_episode(episode.agent_step, episode.wall_seconds, episode.rewards, episode.end)
            self.logged += len(episode)
        s.agent_steps = int(self.model.num_timesteps)
        s.wall_seconds = wall
        steps_now = s.agent_steps - (s.curve.progress["agent_step"][-1] if s.curve.progress["agent_step"] else 0)
        wall_now = wall - (s.curve.progress["wall_seconds"][-1] if s.curve.progress["wall_seconds"] else 0.0)
        s.curve.add_progress(s.agent_steps, wall, steps_now / wall_now if wall_now > 0 else 0.0)
        s.dropped_steps = s.dropped_steps + self.env.dropped_steps
        self.env.dropped_steps = 0
        s.log = self.log.commit()
        agent_dir = self.run_dir / AGENT_DIR
        _save_agent(self.model, agent_dir / "latest.zip")
        kept = s.agent_steps // c.save_every
        if kept and not (agent_dir / f"step_{kept * c.save_every}.zip").exists():
            _save_agent(self.model, agent_dir / f"step_{kept * c.save_every}.zip")
        if final:
            _save_agent(self.model, agent_dir / FINAL_AGENT)
        self.write_records()
        self.log.forget_obsolete()

    def finish(self) -> None:
        """Log the final chunk (the state still names the segments, so a crash here repeats only this)."""
        self.log.finish()
        self.state.done = True
        self.write_records()

    def write_records(self) -> None:
        s, c = self.state, self.config
        summary = summarize(s.curve, c.game, c.agent, s.agent_steps, s.wall_seconds)
        meta = {"game": c.game, "agent": c.agent, "seed": c.seed, "settings": asdict(c.settings),
                "sticky": c.sticky, "transitions": self.logged, "dropped_steps": s.dropped_steps,
                "resumes": s.resumes, "done": s.done, "torch_threads": torch.get_num_threads()}
        write_curve(self.run_dir, s.curve, summary, meta)
        plot_curve(self.run_dir, s.curve, f"{c.game} · {c.agent} · seed {c.seed}")
        state = {"agent_steps": s.agent_steps, "wall_seconds": round(s.wall_seconds, 2), "log": asdict(s.log),
                 "curve": asdict(s.curve), "dropped_steps": s.dropped_steps, "resumes": s.resumes,
                 "training_done": s.training_done, "done": s.done}
        write_json(self.run_dir / STATE_NAME, {"config": c.identity(), "state": state})


class _Callback(BaseCallback):
    """Stops at the budget or time limit, commits at rollout boundaries, drives the progress bar."""

    def __init__(self, trainer: _Trainer, bar: tqdm):
        super().__init__()
        self.trainer, self.bar = trainer, bar
        self.last_commit = time.perf_counter()

    def _on_rollout_start(self) -> None:  # the update of the previous rollout is done: a consistent point
        if time.perf_counter() - self.last_commit >= self.trainer.commit_seconds:
            self.trainer.commit()
            self.last_commit = time.perf_counter()

    def _on_step(self) -> bool:
        t, env = self.trainer, self.trainer.env
        self.bar.update(self.model.num_timesteps - self.bar.n)  # agent steps: tqdm's rate is agent steps/s
        if self.n_calls % 50 == 0:
            returns = t.state.curve.scored_returns() + [e.raw_return for e in env.finished if e.end != "budget_cut"]
            mean = f"{np.mean(returns[-20:]):.1f}" if returns else "-"
            logged = t.logged + sum(len(e) for e in env.finished)
            self.bar.set_postfix(logged=logged, ret20=mean, refresh=False)
        limit = t.config.wall_minutes
        return env.recording and not (limit is not None and t.wall() >= 60 * limit)


def _save_agent(model: Any, path: Path) -> None:
    with atomic_file(path) as tmp:  # keeps the .zip suffix, which stable-baselines3 would otherwise append
        model.save(str(tmp))
