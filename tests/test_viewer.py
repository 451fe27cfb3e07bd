"""The viewer without a browser: the session's real and dream steps, the planner's tree, the command checks."""

from __future__ import annotations

import json
import re
import socket

import pytest
import torch

from jowa.config import TokenizerConfig, WorldModelConfig
from jowa.games import task_id
from jowa.model.world_model import WorldActionModel
from jowa.planning import BeamSearch, plan
from jowa.planning.beam_search import search_tree
from jowa.planning.imagination import imagine_step
from jowa.tokenizer import Tokenizer
from jowa.viewer.cli import main
from jowa.viewer.memory import TokenMemory
from jowa.viewer.run_check import resolve_run
from jowa.viewer.session import PlaySession

TOKENIZER = TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1, lpips_net="none")
MODEL = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


def make_run(path, games: list[str] | None = ("Breakout", "Pong")):
    """A randomly initialised run in pretrain.py's layout; run.json records `games` (None: no record)."""
    torch.manual_seed(0)
    Tokenizer(TOKENIZER).save_pretrained(path / "final" / "tokenizer")
    WorldActionModel(MODEL).save_pretrained(path / "final" / "world_model")
    if games is not None:
        (path / "run.json").write_text(json.dumps({"stages": {"world": {"games": list(games)}}}))
    return path


@pytest.fixture(scope="module")
def session():
    torch.manual_seed(0)
    model, tokenizer = WorldActionModel(MODEL).eval(), Tokenizer(TOKENIZER).eval()
    s = PlaySession(model, tokenizer, "Breakout", BeamSearch(beam_width=2, horizon=2), context=6)
    yield s
    s.close()


def test_memory_context_is_the_planner_layout() -> None:
    memory = TokenMemory(capacity=2)
    memory.push(None, torch.full((36,), 1))
    memory.push(3, torch.full((36,), 2))
    memory.push(4, torch.full((36,), 5))  # the oldest block drops out
    context = memory.context()
    assert context.numel() == 2 * 37 - 1
    assert context[:36].eq(2).all() and int(context[36]) == 4 and context[37:].eq(5).all()
    with pytest.raises(ValueError, match="action"):
        TokenMemory(2).push(1, torch.zeros(36))


def test_tree_has_every_beam_node_with_probabilities_and_the_planner_decision() -> None:
    torch.manual_seed(1)
    model = WorldActionModel(MODEL).eval()
    context = torch.randint(0, 32, (3 * 37 - 1,))
    tasks = torch.tensor([task_id("Breakout")])
    options = BeamSearch(beam_width=2, horizon=2)
    traced = plan(model, [context], tasks, options, trace=True)
    assert torch.equal(traced.actions, plan(model, [context], tasks, options).actions)  # tracing changes nothing
    tree = search_tree(traced, 0, "beam search")
    assert [sum(n.depth == d for n in tree.nodes) for d in range(3)] == [1, 2, 4]  # Breakout: 4 actions, K=2
    assert tree.chosen_action == int(traced.actions[0])
    assert {n.action for n in tree.children(0)} <= {0, 1, 3, 4}
    assert sum(n.kept for n in tree.nodes if n.depth == 2) == 2
    # Probabilities are those of the model: imagine the first child again by hand.
    child = tree.children(0)[0]
    cache = model.empty_cache(1)
    model(context[None], tasks, cache=cache, with_target=False)
    step = imagine_step(model, cache, torch.tensor([child.action]), tasks, model.valid_actions(tasks), with_probs=True)
    assert child.reward_sign == int(step.rewards[0])
    assert child.reward_prob == pytest.approx(float(step.reward_probs[0, child.reward_sign + 1]), rel=1e-5)
    assert child.end_prob == pytest.approx(float(step.end_probs[0]), rel=1e-5, abs=1e-7)
    expected = step.q_values[0].tolist()  # invalid actions are masked to -inf and shown as None
    assert [q is None for q in child.q] == [v <= -1e30 for v in expected]
    assert [q for q in child.q if q is not None] == pytest.approx([v for v in expected if v > -1e30], rel=1e-5)
    assert json.dumps(tree.to_json(), allow_nan=False)  # plain JSON for the page


def test_real_and_dream_steps(session) -> None:
    session.reset()
    session.step(1)  # FIRE in the emulator
    assert session.state.real_steps == 1 and session.real_memory.actions == [1]
    frozen = session.real_frame.copy()
    session.dream()
    for action in (3, 4, None):  # two keys, then the planner's choice
        session.step(action)
    assert session.state.mode == "dream" and session.state.dream_steps == 3
    assert session.state.real_steps == 1 and (session.real_frame == frozen).all()  # the emulator waits
    assert session.dream_memory.actions[-3:-1] == [3, 4]
    assert 0.0 <= session.state.last.end_prob <= 1.0 and 0.0 < session.state.last.reward_prob <= 1.0
    with pytest.raises(ValueError, match="not one of"):
        session.step(2)  # UP is not a Breakout action
    session.wake()
    assert session.state.mode == "real" and session.dream_memory is None
    assert len(session.recording) == 6 and session.recording[-1].shape == (84, 2 * 84 + 2)  # 2 resets + 4 steps


def test_dream_reuses_the_planners_imagined_step_exactly(session) -> None:
    session.reset()
    session.dream()
    node = session._planned_step(session.tree.chosen_action)
    assert node is not None
    cache = session.model.empty_cache(1)
    session.model(session.dream_memory.context()[None], session.task, cache=cache, with_target=False)
    fresh = imagine_step(session.model, cache, torch.tensor([session.tree.chosen_action]), session.task,
                         session.model.valid_actions(session.task))
    assert torch.equal(node[0], fresh.next_obs_tokens[0]) and node[1] == int(fresh.rewards[0])


def test_horizon_limit_restarts_the_dream_from_reality(session) -> None:
    session.reset()
    session.dream()
    session.horizon_limit = 2
    for _ in range(3):
        session.step(0)
    assert session.state.dream_steps == 1  # 2 steps, then a fresh dream from the real context
    session.horizon_limit = 0


def test_session_takes_any_planner_and_shows_its_tree() -> None:
    from jowa.planning import MCTS

    torch.manual_seed(0)
    model, tokenizer = WorldActionModel(MODEL).eval(), Tokenizer(TOKENIZER).eval()
    s = PlaySession(model, tokenizer, "Breakout", MCTS(horizon=2, simulations=3), context=6)
    try:
        s.reset()
        decided = s.tree.chosen_action
        s.step(None)  # the agent's move: MCTS's decision
        assert s.state.real_steps == 1 and s.real_memory.actions == [decided]
        tree = s.tree.to_json()
        assert tree["planner"] == "MCTS H=2 simulations=3" and tree["chosen_action"] in (0, 1, 3, 4)
        assert 2 <= len(tree["nodes"]) <= 4 and json.dumps(tree, allow_nan=False)
        s.dream()
        s.step(None)  # no beam trace to reuse: the dream imagines the step itself
        assert s.state.dream_steps == 1
    finally:
        s.close()


def test_bad_commands_exit_2_before_any_server(tmp_path, capsys) -> None:
    run = make_run(tmp_path / "run")
    cases = [(["--run", str(tmp_path / "nope"), "--game", "Breakout"], "run directory not found"),
             (["--run", str(run), "--game", "Brekaout"], "Unknown game 'Brekaout'"),
             (["--run", str(run), "--game", "Seaquest"], "trained on Breakout, Pong, not Seaquest"),
             (["--run", str(run), "--game", "Pong", "-H", "7", "--context", "6"], "context 6 \\+ horizon 7")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1
        assert re.search(message, err), err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--run", str(run), "--game", "Pong", "--port", str(busy.getsockname()[1])]) == 2
        assert "in use" in capsys.readouterr().err


def test_runs_are_resolved_like_plan_py_and_the_demo_layout(tmp_path) -> None:
    demo = tmp_path / "demo"
    make_run(demo / "pretrain", ["Breakout", "Assault"])
    (demo / "finetune" / "final").mkdir(parents=True)
    make_run(demo / "finetune" / "final", None)
    (demo / "finetune" / "finetune.json").write_text(json.dumps({"game": "Pong", "pretrained_games": ["Breakout"]}))
    (demo / "demo.json").write_text(json.dumps({"config": {"held_out": "Pong"}}))
    assert resolve_run(demo, "Breakout").run == demo / "pretrain"
    pong = resolve_run(demo, "Pong")
    assert pong.run == demo / "finetune" and pong.known_games == ("Pong", "Breakout")
    unrecorded = resolve_run(make_run(tmp_path / "bare", None), "Seaquest")
    assert unrecorded.known_games is None and "does not record" in unrecorded.note


def test_play_py_serves_on_localhost_and_stops_cleanly_on_ctrl_c(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    run = make_run(tmp_path / "run")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(__file__).resolve().parent.parent / "play.py"
    process = subprocess.Popen([sys.executable, str(script), "--run", str(run), "--game", "Breakout", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        lines = []
        for line in process.stdout:  # up to the URL line
            lines.append(line)
            if "http://" in line:
                break
        assert f"at http://127.0.0.1:{port}/" in lines[-1], lines
        for _ in range(100):  # the URL is printed just before uvicorn binds
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                import time

                time.sleep(0.1)
        assert "<title>jowa: play inside the world model</title>" in page
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert "jowa viewer stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_planner_view_off_skips_planning_but_the_agent_still_plans(session) -> None:
    session.reset()
    session.planner_view = False
    session.step(0)
    assert session.plan_stale and session.timings.plan_ms == 0.0  # a person's step: no planner
    session.dream()
    assert session._planned_step(0) is None  # a stale plan is never reused for the dream
    session.step(None)  # the agent's step plans first
    assert session.timings.plan_ms > 0.0
    session.planner_view = True
