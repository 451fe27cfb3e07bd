"""Behaviour runs: a learning agent's play logged as DQN-Replay runs that read back, resume and load as a policy."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from jowa.behaviour import (RunConfig, agent_settings, behaviour_summary, capped_data_mean, load_behaviour_policy,
                           train_run)
from jowa.behaviour.replay_log import ResumableLog
from jowa.behaviour.vec_env import RecordingVecEnv
from jowa.data.collect import collect
from jowa.data.replay import ReadStats, read_episodes
from jowa.data.replay_layout import STORE_DTYPES, list_suffixes, member_path, replay_log_dir
from jowa.envs import load_policy, make_vector_env, valid_action_masks
from jowa.games import minimal_to_full, task_id

REPO = Path(__file__).resolve().parent.parent
TINY = {"num_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1}  # seconds, not learning


def _config(transitions: int, capacity: int = 250, game: str = "Breakout") -> RunConfig:
    return RunConfig(game=game, agent="ppo", settings=agent_settings("ppo", **TINY), seed=1,
                     transitions=transitions, capacity=capacity, save_every=256)


def _episode_keys(root: Path) -> list[tuple[int, str]]:
    return [(len(e), hashlib.sha1(e.frames.tobytes() + e.actions.tobytes()).hexdigest()) for e in read_episodes(root)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("behaviour")
    train_run(_config(600), out, "1", commit_seconds=0.0, progress=False)
    return out


def test_run_reads_back_through_the_reader_and_plain_numpy(finished_run):
    read = ReadStats()
    episodes = list(read_episodes(finished_run, stats=read))
    curve = json.loads((finished_run / "Breakout" / "1" / "learning_curve.json").read_text())
    assert sum(len(e) for e in episodes) == 600 == curve["transitions"] == sum(curve["episodes"]["length"])
    assert read.fragments == 0 and read.skipped == []
    assert sorted(len(e) for e in episodes) == sorted(curve["episodes"]["length"])
    assert curve["episodes"]["end"][-1] == "budget_cut" and set(curve["episodes"]["end"][:-1]) <= {"game_over"}
    for episode in episodes:
        assert set(np.unique(episode.actions)) <= set(minimal_to_full("Breakout"))
        assert np.abs(episode.rewards).max() <= 1.0
        assert episode.terminals[-1] == 1 and not episode.terminals[:-1].any()  # no life-loss terminals
    log_dir = replay_log_dir(finished_run, "Breakout", "1")
    suffixes = list_suffixes(log_dir)
    assert len(suffixes) >= 3 and all(len(members) == 6 for members in suffixes.values())
    for suffix in suffixes:
        for name, dtype in STORE_DTYPES.items():
            array = np.load(gzip.open(member_path(log_dir, name, suffix), "rb"), allow_pickle=False)
            assert array.dtype == dtype and len(array) == 250
        invalid = np.load(gzip.open(member_path(log_dir, "invalid_range", suffix), "rb"), allow_pickle=False)
        assert invalid.shape == (5,)


def test_run_records_curve_checkpoints_and_a_usable_policy(finished_run, tmp_path):
    run_dir = finished_run / "Breakout" / "1"
    curve = json.loads((run_dir / "learning_curve.json").read_text())
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    assert not (run_dir / ".segments").exists()  # every row is in a chunk once the run is done
    assert {"final.zip", "latest.zip", "step_256.zip"} <= {p.name for p in (run_dir / "agent").iterdir()}
    assert len(curve["progress"]["agent_step"]) >= 2 and curve["progress"]["steps_per_second"][-1] > 0
    summary = behaviour_summary(run_dir)
    scored = [r for r, e in zip(curve["episodes"]["return"], curve["episodes"]["end"]) if e != "budget_cut"]
    assert summary.final_mean_return == scored[-1]  # 10 % of a few episodes: the last one
    assert summary.data_mean_return == pytest.approx(np.mean(scored))
    # the data's return under an evaluation's step cap: each episode's rewards before its cap-th step
    pairs = [p for p, e in zip(curve["episodes"]["rewards"], curve["episodes"]["end"]) if e != "budget_cut"]
    assert [sum(r for _, r in p) for p in pairs] == pytest.approx(scored)  # the whole episode: its return
    assert capped_data_mean(run_dir, 10**9) == pytest.approx(np.mean(scored))
    assert capped_data_mean(run_dir, 0) == 0.0
    cap = 30
    assert capped_data_mean(run_dir, cap) == pytest.approx(np.mean([sum(r for t, r in p if t < cap) for p in pairs]))
    assert all(0 <= t < n for p, n in zip(curve["episodes"]["rewards"], curve["episodes"]["length"]) for t, _ in p)
    assert summary.transitions == 600 and summary.agent_steps >= 600
    for policy in (load_behaviour_policy(run_dir, seed=0), load_policy(f"behaviour:{run_dir}")):
        envs = make_vector_env(["Breakout"] * 2)
        obs, _ = envs.reset(seed=0)
        masks = valid_action_masks(["Breakout"] * 2)
        tasks = np.full(2, task_id("Breakout"))
        starts = np.ones(2, dtype=bool)
        for _ in range(5):
            actions = policy(obs, tasks, masks, starts)
            assert actions.shape == (2,) and masks[np.arange(2), actions].all()
            obs, _, terminated, truncated, _ = envs.step(actions)
            starts = terminated | truncated
        envs.close()
    stats = collect(["Breakout"], 60, tmp_path, policy=f"behaviour:{run_dir}", asynchronous=False, progress=False)
    assert stats["Breakout"].transitions == 60 == sum(len(e) for e in read_episodes(tmp_path))


def test_recording_env_logs_exactly_the_budget():
    env = RecordingVecEnv("Breakout", 3, seed=0, budget=100)
    env.reset()
    rng = np.random.default_rng(0)
    while env.recording:
        env.step_async(rng.integers(0, 4, 3))
        _, rewards, _, _ = env.step_wait()
        assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    episodes = env.take_finished()
    env.close()
    assert sum(len(e) for e in episodes) == 100 and episodes[-1].end == "budget_cut"
    assert all(len(e.frames) == len(e.actions) == len(e.rewards) for e in episodes)


def test_restored_log_writes_the_same_files_as_an_uninterrupted_one(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [(rng.integers(1, 255, (n, 84, 84), dtype=np.uint8), rng.integers(0, 4, n), rng.normal(size=n))
                for n in (40, 90, 15, 120, 60, 33)]
    reference = ResumableLog(tmp_path / "ref" / "replay_logs", capacity=100)
    for episode in episodes:
        reference.add_episode(*episode)
    reference.finish()
    crashed = ResumableLog(tmp_path / "run" / "replay_logs", capacity=100)
    for episode in episodes[:3]:
        crashed.add_episode(*episode)
    state = crashed.commit()
    for episode in episodes[3:5]:  # added (a chunk logged, a segment saved) but never committed: lost
        crashed.add_episode(*episode)
    crashed.commit()
    resumed = ResumableLog(tmp_path / "run" / "replay_logs", capacity=100, state=state)
    for episode in episodes[3:]:
        resumed.add_episode(*episode)
    resumed.finish()
    ref_files = sorted(p.name for p in (tmp_path / "ref" / "replay_logs").iterdir())
    assert ref_files == sorted(p.name for p in (tmp_path / "run" / "replay_logs").iterdir())
    for name in ref_files:
        assert (tmp_path / "ref" / "replay_logs" / name).read_bytes() == (tmp_path / "run" / "replay_logs" / name).read_bytes()


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from jowa.behaviour import RunConfig, agent_settings, train_run
settings = agent_settings("ppo", num_envs=2, n_steps=32, batch_size=32, n_epochs=1)
config = RunConfig(game="Breakout", agent="ppo", settings=settings, seed=1, transitions=1000, capacity=250)
train_run(config, sys.argv[1], "1", commit_seconds=0.0, progress=False)
"""
_CHILD_CONFIG = RunConfig(game="Breakout", agent="ppo", settings=agent_settings("ppo", **TINY), seed=1,
                          transitions=1000, capacity=250)


def test_killed_run_continues_and_logs_every_transition_once(tmp_path):
    run_dir = tmp_path / "Breakout" / "1"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    state = None
    while time.monotonic() < deadline:  # kill once a chunk is logged and more rows wait in segments
        time.sleep(0.2)
        try:
            state = json.loads((run_dir / "state.json").read_text())["state"]
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if state["log"]["log_count"] >= 1 and state["log"]["add_count"] > 300:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    state = json.loads((run_dir / "state.json").read_text())["state"]
    assert not state["done"] and state["log"]["log_count"] >= 1
    log_dir = run_dir / "replay_logs"
    kept = {p.name: p.read_bytes() for p in log_dir.iterdir()
            if int(p.name.rsplit(".", 2)[1]) < state["log"]["log_count"]}
    committed = state["curve"]["episodes"]
    train_run(_CHILD_CONFIG, tmp_path, "1", commit_seconds=0.0, progress=False)  # the rerun, in-process
    final = json.loads((run_dir / "learning_curve.json").read_text())
    assert final["resumes"] == 1 and final["done"]
    assert all(final["episodes"][k][:len(committed[k])] == committed[k] for k in ("length", "return", "end"))
    keys = _episode_keys(tmp_path)
    assert sum(n for n, _ in keys) == 1000  # every transition once: no gap, no duplicate
    assert len(set(keys)) == len(keys)
    assert Counter(n for n, _ in keys) == Counter(final["episodes"]["length"])
    for name, data in kept.items():  # chunks committed before the kill are untouched
        assert (log_dir / name).read_bytes() == data


def _cli(capsys, *args: str) -> tuple[int, str]:
    """Run collect.py's main in-process (a subprocess would spend seconds importing torch)."""
    sys.path.insert(0, str(REPO / "data" / "atari"))
    try:
        import collect as script  # data/atari/collect.py
    finally:
        sys.path.pop(0)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        script.main(list(args))
    return exit_info.value.code, capsys.readouterr().err


def test_cli_rejects_bad_input_with_exit_code_2(tmp_path, finished_run, capsys):
    code, err = _cli(capsys, "--agent", "dqn-nope", "--games", "Breakout", "--transitions", "10", "--out", str(tmp_path))
    assert code == 2 and "error: unknown agent 'dqn-nope'" in err
    code, err = _cli(capsys, "--agent", "ppo", "--games", "Brekout", "--transitions", "10", "--out", str(tmp_path))
    assert code == 2 and "Unknown game 'Brekout'" in err
    code, err = _cli(capsys, "--agent", "ppo", "--policy", "random", "--games", "Breakout", "--transitions", "10",
                     "--out", str(tmp_path))
    assert code == 2 and "exclude each other" in err
    code, err = _cli(capsys, "--agent", "ppo", "--games", "Breakout", "--transitions", "600", "--capacity", "250",
                     "--out", str(finished_run))  # the fixture's run used 2 envs, not 8
    assert code == 2 and "holds a run with other settings (" in err
    code, err = _cli(capsys, "--games", "Breakout", "--transitions", "10", "--out", str(finished_run))
    assert code == 2 and "already holds replay files" in err  # the policy collector exits 2 as well
    assert not any(tmp_path.iterdir())  # nothing was started


def test_parallel_runs_log_what_one_thread_runs_log_one_after_another(tmp_path):
    from jowa.behaviour.runs import collect_behaviour

    plans = [(_config(300, game=game), "1") for game in ("Breakout", "Pong")]
    summaries = collect_behaviour(plans, tmp_path / "parallel", commit_seconds=0.0, progress=False, parallel=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker runs with
    try:
        collect_behaviour(plans, tmp_path / "serial", commit_seconds=0.0, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert sorted(summaries) == [("Breakout", "1"), ("Pong", "1")]
    assert all(s.transitions == 300 for s in summaries.values())
    keys = _episode_keys(tmp_path / "parallel")  # both games' episodes
    assert sum(length for length, _ in keys) == 600 and keys == _episode_keys(tmp_path / "serial")
    with pytest.raises(ValueError, match="parallel must be at least 1"):
        collect_behaviour(plans, tmp_path / "none", parallel=0)


# --- DQN: ε over agent steps, per env; no update until the (unsaved) replay buffer refills ---

DQN_TINY = {"num_envs": 2, "buffer_size": 400, "learning_starts": 64, "exploration_steps": 200, "train_freq": 16,
            "batch_size": 8, "target_update_interval": 64}


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dqn")
    config = RunConfig(game="Breakout", agent="dqn", settings=agent_settings("dqn", **DQN_TINY), seed=1,
                       transitions=400, capacity=250, save_every=10**6)
    train_run(config, out, "1", commit_seconds=0.0, progress=False)
    return out / "Breakout" / "1"


def test_dqn_run_logs_and_plays_epsilon_greedy_on_its_q_values(dqn_run):
    assert sum(len(e) for e in read_episodes(dqn_run.parent.parent)) == 400
    policy = load_behaviour_policy(dqn_run, deterministic=True)
    model = policy.model
    assert model.num_timesteps >= 400 and model.exploration_rate == pytest.approx(0.01)  # decayed by step 200
    stacks = np.random.default_rng(0).integers(0, 255, (5, 4, 84, 84), dtype=np.uint8)
    probs = policy.probabilities(stacks)
    greedy = model.policy.q_net(model.policy.obs_to_tensor(stacks)[0]).argmax(dim=1)
    assert torch.equal(probs.argmax(dim=1), greedy)
    np.testing.assert_allclose(probs.max(dim=1).values.numpy(), 0.99 + 0.01 / 4, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(dim=1).numpy(), 1.0, rtol=1e-6)
    masks = valid_action_masks(["Breakout"] * 5)
    starts = np.ones(5, dtype=bool)
    actions = policy(stacks[:, -1], np.full(5, task_id("Breakout")), masks, starts)
    np.testing.assert_array_equal(actions, np.asarray(minimal_to_full("Breakout"))[greedy.numpy()])


def test_dqn_epsilon_follows_agent_steps_and_is_drawn_per_env(dqn_run):
    from jowa.behaviour.agents import load_agent

    model = load_agent(str(dqn_run / "agent" / "final.zip"), "dqn", device="cpu")
    for steps, eps in ((0, 1.0), (100, 0.505), (200, 0.01), (10**9, 0.01)):
        model.num_timesteps = steps
        assert model.epsilon() == pytest.approx(eps)
    model.exploration_rate = 0.5
    stack = np.zeros((4000, 4, 84, 84), dtype=np.uint8)  # one screen, so every env's greedy action is the same
    np.random.seed(0)
    actions, _ = model.predict(stack)
    greedy, _ = model.predict(stack, deterministic=True)
    # half explore, and a quarter of those hit the greedy action anyway: ~37.5 % differ, never all or none
    assert 0.33 < np.mean(actions != greedy) < 0.42


def test_resumed_dqn_waits_for_its_refilled_buffer_before_learning(dqn_run):
    from jowa.behaviour.agents import load_agent

    env = RecordingVecEnv("Breakout", 2, seed=5, budget=10**6)
    model = load_agent(str(dqn_run / "agent" / "latest.zip"), "dqn", env, device="cpu")
    model.learn(total_timesteps=0, reset_num_timesteps=False)  # sets up the logger and a fresh, empty buffer
    before = [p.detach().clone() for p in model.policy.q_net.parameters()]
    obs = env.reset()

    def play(calls: int) -> None:  # `calls` env steps of 2 transitions each into the buffer
        nonlocal obs
        for _ in range(calls):
            actions, _ = model.predict(obs)
            env.step_async(actions)
            next_obs, rewards, dones, infos = env.step_wait()
            model.replay_buffer.add(obs, next_obs, actions, rewards, dones, infos)
            obs = next_obs

    play(16)  # 32 transitions: below learning_starts (64)
    model.train(gradient_steps=1, batch_size=8)
    assert all(torch.equal(a, b) for a, b in zip(before, model.policy.q_net.parameters()))
    play(16)  # 64 transitions: learning starts
    model.train(gradient_steps=1, batch_size=8)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.policy.q_net.parameters()))
    env.close()


def test_curve_cuts_returns_at_a_step_cap_and_knows_when_it_cannot():
    from jowa.behaviour.curve import Curve

    curve = Curve()
    curve.add_episode(5, 1.0, np.array([0.0, 1.0, 0.0, 5.0, 0.0]), "game_over")
    curve.add_episode(9, 2.0, np.array([2.0, 0.0, -1.0, 0.0]), "game_over")
    curve.add_episode(10, 2.5, np.array([7.0]), "budget_cut")  # not scored: cut by the transition budget
    assert curve.episodes["return"] == [6.0, 1.0, 7.0] and curve.episodes["length"] == [5, 4, 1]
    assert curve.capped_returns(3) == [1.0, 1.0] and curve.capped_returns(2) == [1.0, 2.0]
    assert curve.capped_returns(100) == curve.scored_returns() == [6.0, 1.0]
    old = json.loads(json.dumps(curve.__dict__))  # a state written before rewards were recorded
    old["episodes"].pop("rewards")
    resumed = Curve(**old)
    resumed.add_episode(12, 3.0, np.array([1.0]), "game_over")
    assert resumed.capped_returns(3) is None and resumed.scored_returns() == [6.0, 1.0, 1.0]
