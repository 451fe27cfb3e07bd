"""Collection: real ALE play → DQN-Replay files that read back with exactly the requested transitions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from jowa.data.collect import collect
from jowa.data.replay import ReadStats, read_episodes
from jowa.data.replay_layout import list_suffixes, replay_log_dir
from jowa.games import minimal_to_full

REPO = Path(__file__).resolve().parent.parent


def test_collect_two_games_reads_back_exactly(tmp_path):
    # Capacity 150 < 320 + padding rows: the run spans a rotated chunk and a final partial one.
    stats = collect(["Pong", "Breakout"], 320, tmp_path, envs_per_game=2, capacity=150, seed=3,
                    asynchronous=False, progress=False)
    assert {g: s.transitions for g, s in stats.items()} == {"Pong": 320, "Breakout": 320}
    assert stats["Pong"].budget_cuts == 1  # a random Pong game lasts ~900 steps
    assert len(list_suffixes(replay_log_dir(tmp_path, "Pong", "1"))) >= 3
    read = ReadStats()
    episodes = list(read_episodes(tmp_path, stats=read))
    per_game = Counter()
    for episode in episodes:
        per_game[episode.game] += len(episode)
        assert set(np.unique(episode.actions)) <= set(minimal_to_full(episode.game))
        assert np.abs(episode.rewards).max() <= 1.0  # clipped as Dopamine stored them
        assert episode.terminals[-1] == 1 and not episode.terminals[:-1].any()
        assert episode.frames.any(axis=(1, 2)).all()  # real frames, no padding rows left in
    assert per_game == {"Pong": 320, "Breakout": 320}
    assert read.fragments == 0 and read.skipped == []
    meta = json.loads((tmp_path / "Breakout" / "1" / "collect.json").read_text())
    assert meta["transitions"] == 320 and meta["episodes"] == stats["Breakout"].episodes


def test_collect_script_runs_from_a_checkout(tmp_path):
    out = tmp_path / "replay"
    result = subprocess.run(
        [sys.executable, "data/atari/collect.py", "--games", "Breakout", "--transitions", "120", "--out", str(out),
         "--capacity", "100", "--sync"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Breakout" in result.stdout
    assert sum(len(e) for e in read_episodes(out)) == 120
    rerun = subprocess.run(
        [sys.executable, "data/atari/collect.py", "--games", "Breakout", "--transitions", "10", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert rerun.returncode == 2 and "error: " in rerun.stderr and "already holds replay files" in rerun.stderr
