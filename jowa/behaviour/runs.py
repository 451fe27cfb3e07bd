"""Behaviour runs for several games and seeds: check every run first, then train them one after another, or
`parallel` at a time in worker processes of one torch thread each (one core per run: on 2 cores two runs
of one thread each take the same wall time as one of two threads, and each gets more agent steps)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from jowa.behaviour.agents import agent_settings
from jowa.behaviour.curve import BehaviourSummary, behaviour_summary
from jowa.behaviour.train import RunConfig, check_run_dir, run_dir_of, train_run
from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS
from jowa.games import check_game


def plan_behaviour_runs(
    games: Sequence[str],
    seeds: Sequence[int],
    transitions: int,
    out: str | os.PathLike,
    *,
    agent: str = "ppo",
    wall_minutes: float | None = None,
    num_envs: int | None = None,
    sticky: float = 0.25,
    max_episode_steps: int = DOPAMINE_MAX_EPISODE_STEPS,
    capacity: int = 1_000_000,
    compresslevel: int = 6,
) -> list[tuple[RunConfig, str]]:
    """(config, run name) per game and seed; ValueError naming the first bad input or conflicting run."""
    games = [check_game(g) for g in games]
    if not games or len(set(games)) != len(games):
        raise ValueError(f"games must be distinct and non-empty, got {games}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    if transitions <= 0:
        raise ValueError(f"transitions must be positive, got {transitions}")
    if wall_minutes is not None and wall_minutes <= 0:
        raise ValueError(f"minutes must be positive, got {wall_minutes}")
    settings = agent_settings(agent, **({"num_envs": num_envs} if num_envs else {}))
    plans = []
    for game in games:
        for seed in seeds:
            config = RunConfig(game=game, agent=agent, settings=settings, seed=seed, transitions=transitions,
                               wall_minutes=wall_minutes, sticky=sticky, max_episode_steps=max_episode_steps,
                               capacity=capacity, compresslevel=compresslevel)
            check_run_dir(run_dir_of(out, game, str(seed)), config)  # raises on other settings
            plans.append((config, str(seed)))
    return plans


def collect_behaviour(plans: list[tuple[RunConfig, str]], out: str | os.PathLike, *, device: str = "auto",
                      commit_seconds: float = 60.0, progress: bool = True,
                      parallel: int = 1) -> dict[tuple[str, str], BehaviourSummary]:
    """Train and log every planned run (finished runs are skipped, crashed ones continue)."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    if parallel == 1 or len(plans) == 1:
        for config, run in plans:
            train_run(config, out, run, device=device, commit_seconds=commit_seconds, progress=progress)
    else:
        # spawn: a fork would copy this process's torch thread pool and any open env
        with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            jobs = [pool.submit(_train_one_thread, config, str(out), run, device, commit_seconds, progress)
                    for config, run in plans]
            for job in jobs:
                job.result()  # a worker's error ends the collection here, with its traceback
    return {(config.game, run): behaviour_summary(Path(out) / config.game / run) for config, run in plans}


def _train_one_thread(config: RunConfig, out: str, run: str, device: str, commit_seconds: float,
                      progress: bool) -> None:
    import torch

    torch.set_num_threads(1)
    train_run(config, out, run, device=device, commit_seconds=commit_seconds, progress=progress)
