"""plan.py's library path: settings checks, and a full report from a small random run on real ALE games."""

from __future__ import annotations

import json
import logging

import pytest

from jowa.evaluation.episode_log import EpisodeLog
from jowa.evaluation.rollouts import allocate_slots
from jowa.evaluation.runner import evaluate_run, resolve_settings
from jowa.games import FULL_ACTIONS



def test_settings_fail_early_on_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="Unknown game"):
        resolve_settings(["Pongg"], 1, "jowa", 2, 2, 6, 4)
    with pytest.raises(ValueError, match="horizon"):
        resolve_settings(["Pong"], 1, "jowa", 2, 8, 0, 4)
    with pytest.raises(ValueError, match="context 7 \\+ horizon 2"):
        resolve_settings(["Pong"], 1, "jowa", 2, 2, 7, 4)
    with pytest.raises(ValueError, match="protocol"):
        resolve_settings(["Pong"], 1, "nope", 2, 2, 6, 4)
    table = tmp_path / "typos.yaml"
    for text, message in (("games:\n  Pong: {contxt: 4}\n", r"games\.Pong: unknown key\(s\) \['contxt'\]"),
                          ("horzon: 5\n", r"unknown key\(s\) \['horzon'\]; valid keys: \['games', 'horizon'\]"),
                          ("Pong: {context: 4}\n", r"unknown key\(s\) \['Pong'\]"),
                          ("games:\n  Pong: {context: four}\n", r"games\.Pong\.context must be an integer"),
                          ("games:\n  Pongg: {context: 4}\n", "Unknown game 'Pongg'"),
                          ("games: [\n", "not valid YAML")):
        table.write_text(text)
        with pytest.raises(ValueError, match=message):
            resolve_settings(["Pong"], 1, "jowa", 2, 2, 6, 4, settings_file=table)


def test_planner_settings_are_checked_and_recorded() -> None:
    with pytest.raises(ValueError, match="unknown planner 'mtcs'"):
        resolve_settings(["Pong"], 1, "jowa", 2, 2, 6, 4, planner="mtcs")
    with pytest.raises(ValueError, match=r"horizon H must be in \[1, 7\]"):  # MCTS imagines at least one step
        resolve_settings(["Pong"], 1, "jowa", 2, 0, 6, 4, planner="mcts")
    with pytest.raises(ValueError, match="simulations"):
        resolve_settings(["Pong"], 1, "jowa", 2, 2, 6, 4, planner="mcts", simulations=0)
    mcts = resolve_settings(["Pong"], 1, "jowa", 2, 6, 2, 4, planner="mcts", simulations=5)
    assert (mcts.planner, mcts.to_json()["planner"], mcts.to_json()["simulations"]) == ("mcts", "MCTS", 5)
    assert mcts.label() == "MCTS H=6 simulations=5"
    beam = resolve_settings(["Pong"], 1, "jowa", 2, 2, 6, 4)
    assert beam.to_json()["planner"] == "beam search" and "simulations" not in beam.to_json()  # records as before
    assert resolve_settings(["Pong"], 1, "jowa", 2, 0, 6, 4).planner == "greedy"  # H = 0 is greedy


def test_mcts_through_plan_cli(small_run, tmp_path, capsys) -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("plan_cli_mcts", Path(__file__).resolve().parent.parent / "plan.py")
    plan_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan_cli)
    out = tmp_path / "mcts"
    args = ["--run", str(small_run), "--games", "Breakout,Pong", "--episodes", "1", "--envs", "2", "--max-steps", "3",
            "--device", "cpu", "--planner", "mcts", "-H", "3", "--context", "4", "--simulations", "4", "--out", str(out)]
    assert plan_cli.main(args) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["planner"] == "MCTS H=3 simulations=4" and report["settings"]["simulations"] == 4
    assert all(g["metadata"]["mean_episode_steps"] == 3 for g in report["results"]["games"].values())
    # What the agent played: every step's action counted, the most played one named with its share.
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()[1:]]
    assert all(sum(r["actions"]) == r["steps"] == 3 and len(r["actions"]) == 18 for r in records)
    for game, g in report["results"]["games"].items():
        counts = [sum(c) for c in zip(*(r["actions"] for r in records if r["game"] == game))]
        assert g["metadata"]["top_action_share"] == round(max(counts) / sum(counts), 3)
        assert FULL_ACTIONS.index(g["metadata"]["top_action"]) == counts.index(max(counts))


def test_beam_width_beyond_valid_actions_warns_and_settings_file_overrides(tmp_path, caplog) -> None:
    table = tmp_path / "s.yaml"
    table.write_text("horizon: 1\ngames:\n  Breakout: {context: 3, beam_width: 9}\n")
    with caplog.at_level(logging.WARNING):
        settings = resolve_settings(["Breakout", "Pong"], 1, "standard", 2, 2, 6, 4, settings_file=table)
    assert "Breakout has 4 valid actions" in caplog.text
    assert settings.horizon == 1
    assert (settings.per_game["Breakout"].context, settings.per_game["Breakout"].beam_width) == (3, 9)
    assert (settings.per_game["Pong"].context, settings.per_game["Pong"].beam_width) == (6, 2)
    assert settings.protocol.sticky == 0.25


def test_slots_cover_every_game_within_the_env_budget() -> None:
    assert allocate_slots(["Pong", "Breakout"], 3, 4) == [["Pong", "Breakout", "Pong", "Breakout"]]
    assert allocate_slots(["A", "B", "C"], 1, 2) == [["A", "B"], ["C"]]
    assert allocate_slots(["A", "B", "C"], {"A": 0, "B": 3, "C": 1}, 3) == [["B", "C", "B"]]  # what is missing


def test_episode_log_continues_refuses_other_settings_and_drops_a_cut_line(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    log = EpisodeLog(path, {"games": ["Pong"], "episodes": 3})
    log.append("agent", "Pong", -21.0, 812)
    log.append("agent", "Pong", -20.0, 901)
    path.write_text(path.read_text() + '{"side": "agent", "ga')  # a crash in the middle of a line
    again = EpisodeLog(path, {"games": ["Pong"], "episodes": 3})
    assert again.returns("agent", "Pong") == [-21.0, -20.0] and again.lengths("agent", "Pong") == [812, 901]
    assert len(path.read_text().splitlines()) == 3
    assert again.action_counts("agent", "Pong") is None  # episodes logged without their actions
    again.append("agent", "Pong", -19.0, 3, [1, 2] + [0] * 16)
    assert again.action_counts("agent", "Pong") is None  # still none for the two before
    assert again.action_counts("agent", "Breakout") is None
    counted = EpisodeLog(tmp_path / "counted.jsonl", {"games": ["Pong"]})
    counted.append("agent", "Pong", 1.0, 3, [1, 2] + [0] * 16)
    counted.append("agent", "Pong", 2.0, 4, [0, 1, 3] + [0] * 15)
    assert EpisodeLog(counted.path, {"games": ["Pong"]}).action_counts("agent", "Pong") == [1, 3, 3] + [0] * 15
    with pytest.raises(ValueError, match="other settings \\(episodes\\)"):
        EpisodeLog(path, {"games": ["Pong"], "episodes": 4})
    assert EpisodeLog(path, {"games": ["Pong"], "episodes": 4}, restart_other=True).records == []


def test_sigterm_writes_a_partial_report_and_the_same_command_continues(small_run, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "eval"
    command = [sys.executable, str(repo / "plan.py"), "--run", str(small_run), "--games", "Pong", "--episodes", "4",
               "--envs", "1", "--greedy", "--max-steps", "100", "--device", "cpu", "--out", str(out)]
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = out / "episodes.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    finished = len(log.read_text().splitlines()) - 1
    assert 1 <= finished < 4 and "stopped: Partial report" in err
    report = json.loads((out / "report.json").read_text())
    assert report["note"].startswith(f"Partial report: {finished} of 4 episodes finished before SIGTERM")
    assert report["results"]["games"]["Pong"]["num_episodes"] == finished
    assert "> **Partial report" in (out / "report.md").read_text()
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["note"] is None and report["results"]["games"]["Pong"]["num_episodes"] == 4
    assert len(log.read_text().splitlines()) == 1 + 4  # every episode exactly once


@pytest.mark.parametrize("greedy", [True, False])
def test_full_report_from_a_small_run(small_run, tmp_path, greedy: bool) -> None:
    settings = resolve_settings(["Pong", "Breakout"], 2, "jowa", 2, 1, 2, 3, greedy=greedy, max_episode_steps=6)
    out = evaluate_run(small_run, settings, tmp_path / "report", random_baseline=True, video_frames=4, progress=False)
    report = json.loads((out / "report.json").read_text())
    for side in ("results", "baseline"):
        games = report[side]["games"]
        assert sorted(games) == ["Breakout", "Pong"]
        assert all(len(games[g]["returns"]) == 2 for g in games)
    assert report["results"]["games"]["Pong"]["metadata"]["mean_episode_steps"] == 6
    assert (out / "report.md").read_text().startswith("# Evaluation report")
    for name in ("raw_returns.png", "normalized_scores.png", "aggregates.png", "videos/Pong.gif", "videos/Breakout.gif"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "videos" / "Pong.gif").read_bytes()[:3] == b"GIF"
    assert report["settings"]["planner"] == ("greedy" if greedy else "beam search H=1")


def test_plan_cli_writes_reports(small_run, tmp_path, capsys) -> None:
    """The README's plan.py commands, with episodes capped at a few steps."""
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("plan_cli", repo / "plan.py")
    plan_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan_cli)
    quick = ["--run", str(small_run), "--episodes", "2", "--envs", "2", "--max-steps", "4", "--device", "cpu"]

    def run(*args: str) -> dict:
        out = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        assert plan_cli.main([*quick, *args, "--out", str(out)]) == 0
        assert f"report: {out / 'report.md'}" in capsys.readouterr().out
        return json.loads((out / "report.json").read_text())

    planned = run("--games", "Pong,Breakout", "-K", "2", "-H", "2", "--context", "6", "--protocol", "jowa")
    assert planned["settings"]["planner"] == "beam search H=2" and planned["baseline"] is None
    assert planned["settings"]["per_game"]["Pong"] == {"context": 6, "beam_width": 2}

    greedy = run("--games", "Pong,Breakout", "--greedy", "--random-baseline", "--video", "--video-frames", "3")
    assert greedy["settings"]["planner"] == "greedy" and sorted(greedy["baseline"]["games"]) == ["Breakout", "Pong"]
    assert len(list((tmp_path / "r1" / "videos").glob("*.gif"))) == 2

    table = run("--games", "Assault,Seaquest", "--settings", str(repo / "configs/eval/jowa_150M.yaml"))
    assert table["settings"]["horizon"] == 2
    assert table["settings"]["per_game"] == {"Assault": {"context": 4, "beam_width": 2},
                                             "Seaquest": {"context": 6, "beam_width": 4}}

    standard = run("--games", "Breakout", "--protocol", "standard")
    assert standard["settings"]["protocol"]["sticky"] == 0.25
    assert standard["results"]["games"]["Breakout"]["metadata"]["mean_episode_steps"] == 4

    assert plan_cli.main([*quick, "--games", "Pong", "-H", "7", "--out", str(tmp_path / "bad")]) == 2
    assert "error: " in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_behaviour_agents_are_played_and_shown_as_references(small_run, tmp_path) -> None:
    from jowa.behaviour import RunConfig, agent_settings, train_run

    tiny = {"num_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1}
    train_run(RunConfig(game="Pong", agent="ppo", settings=agent_settings("ppo", **tiny), seed=1, transitions=300,
                        capacity=250, save_every=256), tmp_path / "behaviour", "1", commit_seconds=0.0, progress=False)
    settings = resolve_settings(["Pong"], 2, "standard", 2, 0, 2, 2, greedy=True, max_episode_steps=5)
    out = evaluate_run(small_run, settings, tmp_path / "report", random_baseline=True, progress=False,
                       behaviour=tmp_path / "behaviour")
    section = json.loads((out / "report.json").read_text())["sections"]["Reference agents"]
    assert [len(section["returns"][name]["Pong"]) for name in ("jowa", "random", "behaviour agent")] == [2, 2, 2]
    assert section["behaviour_logs"]["Pong"]["run"].endswith("Pong/1")
    md = (out / "report.md").read_text()
    assert "## Reference agents" in md and "| Game | jowa | random | behaviour agent |" in md
    with pytest.raises(FileNotFoundError, match="no behaviour run of Breakout"):
        evaluate_run(small_run, resolve_settings(["Breakout"], 1, "standard", 2, 0, 2, 1, greedy=True,
                                                 max_episode_steps=5), tmp_path / "other", progress=False,
                     behaviour=tmp_path / "behaviour")
