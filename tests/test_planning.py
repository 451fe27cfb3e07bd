"""Planner parity with the official beam search: every fixture case, one by one and batched; the greedy
planner and the agent through the planner registry."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from jowa.compat.comparison import assert_close
from jowa.compat.parity import load_small_model
from jowa.planning import BeamSearch, Greedy, PlannerSettings, make_planner, plan


@pytest.fixture(scope="module")
def fixtures(reference_dir):
    ref = reference_dir / "jowa"
    cases = json.loads((ref / "jowa_small_planning.json").read_text())["cases"]
    return load_small_model(ref).eval(), cases, load_file(str(ref / "jowa_small_planning.safetensors"))


def options_of(case: dict, shared_prefix: bool = True) -> BeamSearch:
    if case["planner"] == "greedy":
        return BeamSearch(beam_width=1, horizon=0)
    return BeamSearch(beam_width=case["beam_width"], horizon=case["horizon"], shared_prefix=shared_prefix)


def check_case(name: str, case: dict, tensors: dict, action: torch.Tensor, root_q: torch.Tensor, trace: list) -> None:
    assert int(action) == case["chosen_action"] == int(tensors[f"{name}/action"][0]), name
    assert_close(root_q, tensors[f"{name}/root_q_masked"])
    assert len(trace) == (case["horizon"] if case["planner"] != "greedy" else 0)
    for depth, level in enumerate(trace, start=1):
        key = f"{name}/depth{depth}"
        assert torch.equal(level.parents, tensors[f"{key}_parent"]), key
        assert torch.equal(level.actions, tensors[f"{key}_actions"]), key
        assert torch.equal(level.rewards, tensors[f"{key}_rewards"]), key
        assert torch.equal(level.ends, tensors[f"{key}_ends"]), key
        assert torch.equal(level.next_obs_tokens, tensors[f"{key}_next_obs_tokens"]), key
        assert_close(level.q_masked, tensors[f"{key}_q_masked"])
        assert_close(level.scores.double(), tensors[f"{key}_scores"])
        assert level.kept.tolist() == case["kept_beam_node_ids_per_depth"][str(depth)], key


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_every_case_one_by_one(fixtures, shared_prefix: bool) -> None:
    model, cases, tensors = fixtures
    for name, case in cases.items():
        options = options_of(case, shared_prefix)
        result = plan(model, [tensors[f"{name}/context_tokens"][0]], torch.tensor([case["env"]]), options, trace=True)
        check_case(name, case, tensors, result.actions[0], result.root_q[0], result.traces[0])


def test_cases_batched_by_horizon(fixtures) -> None:
    """Different games, beam widths and context lengths in one call per horizon."""
    model, cases, tensors = fixtures
    by_horizon: dict[int, list[str]] = {}
    for name, case in cases.items():
        by_horizon.setdefault(options_of(case).horizon, []).append(name)
    assert len(by_horizon[2]) >= 4
    for horizon, names in by_horizon.items():
        contexts = [tensors[f"{n}/context_tokens"][0] for n in names]
        tasks = torch.tensor([cases[n]["env"] for n in names])
        widths = torch.tensor([options_of(cases[n]).beam_width for n in names])
        result = plan(model, contexts, tasks, BeamSearch(horizon=horizon), beam_widths=widths, trace=True)
        for i, name in enumerate(names):
            check_case(name, cases[name], tensors, result.actions[i], result.root_q[i], result.traces[i])


def test_bad_horizon_is_an_error(fixtures) -> None:
    model, _, tensors = fixtures
    with pytest.raises(ValueError, match="horizon"):
        plan(model, [tensors["assault_K2_H2/context_tokens"][0]], torch.tensor([3]), BeamSearch(horizon=8))
    with pytest.raises(ValueError, match="horizon"):
        Greedy(horizon=1).validate()


def test_planners_agree_with_the_fixture_through_the_interface(fixtures) -> None:
    """Greedy and BeamSearch.decide give the fixture's decisions; the beam's trees and paths are its trace."""
    model, cases, tensors = fixtures
    for name, case in cases.items():
        context, task = [tensors[f"{name}/context_tokens"][0]], torch.tensor([case["env"]])
        planner = Greedy() if case["planner"] == "greedy" else BeamSearch(case["beam_width"], case["horizon"])
        decision = planner.decide(model, context, task, trace=True)
        assert int(decision.actions[0]) == case["chosen_action"], name
        assert_close(decision.root_q[0], tensors[f"{name}/root_q_masked"])
        assert decision.trees[0].chosen_action == case["chosen_action"]
        path = decision.paths[0]
        assert len(path.actions) == (0 if case["planner"] == "greedy" else case["horizon"])
        if path.actions:
            assert path.actions[0] == case["chosen_action"]
            last = tensors[f"{name}/depth{case['horizon']}_next_obs_tokens"]
            assert any(torch.equal(path.observations[-1], row) for row in last)  # a depth-H node's frame


@pytest.mark.parametrize("rollout", ["rollout_assault_greedy_buf8", "rollout_assault_K2_H2_buf8", "rollout_seaquest_K3_H2_buf3"])
def test_rollouts_through_the_agent(reference_dir, fixtures, rollout: str) -> None:
    from jowa.compat.parity import load_small_tokenizer_via_import
    from jowa.planning.agent import Agent

    model, _, tensors = fixtures
    ref = reference_dir / "jowa"
    spec = json.loads((ref / "jowa_small_planning.json").read_text())["rollouts"][rollout]
    tokenizer = load_small_tokenizer_via_import(ref)
    frames = tensors["rollout_frames_uint8"][:, 0]  # [10, 84, 84]
    assert torch.equal(tokenizer.encode_tokens(frames), tensors["rollout_frame_tokens"])
    settings = PlannerSettings(horizon=spec["horizon"] or 0, beam_width=spec["beam_width"] or 1)
    planner = make_planner("greedy" if settings.horizon == 0 else "beam", settings)
    agent = Agent(model, tokenizer, torch.tensor([spec["env"]]), planner, buffer_sizes=spec["buffer_size"], epsilon=0.0)
    actions = [int(agent.act(frame[None])[0]) for frame in frames]
    assert actions == spec["actions"] == tensors[f"{rollout}/actions"].tolist()
    assert torch.equal(agent.memory[0], tensors[f"{rollout}/final_token_buffer"][0])


def test_default_cache_shares_the_prefix_only_between_several_environments(fixtures, monkeypatch) -> None:
    """BeamSearch(shared_prefix=None): the plain cache for a lone environment, the shared prefix for a group."""
    from jowa.model.shared_prefix_cache import SharedPrefixCache

    model, _, tensors = fixtures
    calls: list[int] = []
    original = SharedPrefixCache.from_prefix.__func__
    monkeypatch.setattr(SharedPrefixCache, "from_prefix",
                        classmethod(lambda cls, prefix: calls.append(prefix.batch_size) or original(cls, prefix)))
    context = tensors["assault_K2_H2/context_tokens"][0]
    one = plan(model, [context], torch.tensor([3]), BeamSearch(beam_width=2, horizon=2))
    assert calls == []
    two = plan(model, [context, context], torch.tensor([3, 3]), BeamSearch(beam_width=2, horizon=2))
    assert calls == [2]
    assert int(one.actions[0]) == int(two.actions[0]) == int(two.actions[1])


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_cache_in_the_autocast_dtype_plans_exactly_as_an_fp32_cache(shared_prefix: bool, monkeypatch) -> None:
    """Under autocast the keys and values are computed in bf16: storing them so (not in fp32) loses nothing."""
    from jowa.config import load_size
    from jowa.model.world_model import WorldActionModel

    torch.manual_seed(0)
    model = WorldActionModel(load_size("tiny").world_model).eval()
    contexts = [torch.randint(0, model.config.obs_vocab_size, (37 * 2 + 36,)) for _ in range(2)]
    for context in contexts:
        context[36::37] = torch.randint(0, 18, (2,))
    tasks, options = torch.tensor([3, 46]), BeamSearch(beam_width=2, horizon=2, shared_prefix=shared_prefix)
    assert model.empty_cache(1).keys.dtype == torch.float32  # no autocast: the weights' dtype
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.empty_cache(1).keys.dtype == torch.bfloat16
        ours = plan(model, contexts, tasks, options, trace=True)
        default = model.empty_cache
        monkeypatch.setattr(model, "empty_cache", lambda batch, dtype=None: default(batch, torch.float32))
        fp32 = plan(model, contexts, tasks, options, trace=True)
    assert torch.equal(ours.actions, fp32.actions) and torch.equal(ours.root_q, fp32.root_q)
    for a, b in zip(ours.traces, fp32.traces):
        for level_a, level_b in zip(a, b):
            assert torch.equal(level_a.q_masked, level_b.q_masked)
            assert torch.equal(level_a.next_obs_tokens, level_b.next_obs_tokens)


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_return_lambda_scores_mix_the_estimates_along_each_path(fixtures, lam: float) -> None:
    """Every traced score is (1 − λ) Σ_{n<d} λ^n G_n + λ^d G_d, recomputed here from the traced tree, and the
    action is the best leaf's first one; at λ = 0 that is greedy's argmax of the root Q."""
    model, cases, tensors = fixtures
    for name in ["assault_K2_H1", "assault_K2_H2", "phoenix_K4_H3_ctx2"]:
        case = cases[name]
        options = BeamSearch(case["beam_width"], case["horizon"], return_lambda=lam)
        result = plan(model, [tensors[f"{name}/context_tokens"][0]], torch.tensor([case["env"]]), options, trace=True)
        gamma, root_q = options.gamma, result.root_q[0].double()
        # node id -> (Σ γ^(t−1) r̂_t, (1 − λ) Σ_{n<d} λ^n G_n, the node's Q row, the path's first action)
        nodes = {0: (0.0, 0.0, root_q, -1)}
        next_id = 1
        for depth, level in enumerate(result.traces[0], start=1):
            for i in range(len(level.actions)):
                returns, mixed, q, first = nodes[int(level.parents[i])]
                action = int(level.actions[i])
                mixed = mixed + (1 - lam) * lam ** (depth - 1) * (returns + gamma ** (depth - 1) * float(q[action]))
                returns = returns + gamma ** (depth - 1) * float(level.rewards[i])
                own = returns + gamma ** depth * float(level.q_masked[i].double().max())
                assert float(level.scores[i]) == pytest.approx(mixed + lam ** depth * own, abs=1e-5), name
                nodes[next_id + i] = (returns, mixed, level.q_masked[i].double(), action if depth == 1 else first)
            next_id += len(level.actions)
        best_leaf = int(result.traces[0][-1].kept[0])
        assert int(result.actions[0]) == nodes[best_leaf][3], name
        if lam == 0.0:
            assert int(result.actions[0]) == int(root_q.argmax()), name


def test_return_lambda_of_one_is_the_official_score_and_outside_zero_one_is_refused(fixtures) -> None:
    model, cases, tensors = fixtures
    name = "phoenix_K4_H3_ctx2"
    options = BeamSearch(4, 3, return_lambda=1.0)
    result = plan(model, [tensors[f"{name}/context_tokens"][0]], torch.tensor([cases[name]["env"]]), options, trace=True)
    check_case(name, cases[name], tensors, result.actions[0], result.root_q[0], result.traces[0])
    assert options.describe() == "beam search K=4 H=3"
    assert BeamSearch(4, 3, return_lambda=0.5).describe() == "beam search K=4 H=3 λ=0.5"
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="return lambda"):
            BeamSearch(2, 2, return_lambda=bad).validate()
