"""MCTS (jowa.planning.mcts): the official search's choices on scripted world models where the best action is
known, each official quirk against its fix, and invariants on the official small model."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Callable

import pytest
import torch

from jowa.games import action_masks, minimal_to_full, task_id
from jowa.model.kv_cache import KVCache
from jowa.planning import MCTS, BeamSearch, Greedy, make_planner
from jowa.planning.planner import PlannerSettings

BREAKOUT = task_id("Breakout")
VALID = minimal_to_full("Breakout")  # [0, 1, 3, 4]
State = tuple[int, ...]  # the imagined actions since the root


class ScriptedWorld:
    """A stand-in world model whose rewards and Q values are functions of the imagined actions.

    The KV cache carries each row's token history (key channel 0: the token, channel 1: 1 for imagined
    tokens), so the planners' row selection and cache copies are exercised as with a real model."""

    def __init__(self, q: Callable[[State], list[float]], reward: Callable[[State], float] = lambda s: 0.0) -> None:
        self.q, self.reward = q, reward
        self.config = SimpleNamespace(max_blocks=8, tokens_per_block=37, obs_tokens_per_block=36, max_tokens=296)
        self.atoms = torch.tensor([-10.0, 10.0])
        self.action_masks = action_masks()
        self.imagined_steps = 0  # rows fed an action token: one world-model step each

    def valid_actions(self, tasks: torch.Tensor) -> torch.Tensor:
        return self.action_masks.index_select(0, tasks)

    def empty_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> KVCache:
        return KVCache.empty(1, batch_size, 1, 2, self.config.max_tokens)

    def __call__(self, tokens: torch.Tensor, tasks: torch.Tensor, cache: KVCache | None = None,
                 with_target: bool = False) -> SimpleNamespace:
        rows, n = tokens.shape
        start = 0 if cache is None else cache.length
        if cache is not None:
            cache.check_room(n)
            cache.keys[0, :, 0, start:start + n, 0] = tokens.float()
            cache.keys[0, :, 0, start:start + n, 1] = float(start > 0)
            cache.advance(n)
        states = [self._state(cache, r) for r in range(rows)]
        position = start + n - 1  # what the last fed token predicts
        out = SimpleNamespace(logits_observations=torch.zeros(rows, 1, 32), logits_rewards=torch.zeros(rows, 1, 3),
                              logits_ends=torch.tensor([[[1.0, 0.0]]]).expand(rows, 1, 2),
                              logits_q=torch.zeros(1, rows, 1, 18 * 2))
        if position % 37 == 36 and start > 0:  # an imagined action: its reward
            self.imagined_steps += rows
            out.logits_rewards = torch.stack([self._sign(self.reward(s)) for s in states])[:, None]
        if position % 37 == 35:  # o^35: Q of the state
            out.logits_q = torch.stack([self._q_logits(self.q(s)) for s in states], dim=0)[None, :, None]
        return out

    @staticmethod
    def _state(cache: KVCache | None, row: int) -> State:
        if cache is None:
            return ()
        history = cache.keys[0, row, 0, :cache.length]  # [length, 2]
        positions = torch.arange(cache.length)
        imagined_actions = (history[:, 1] == 1) & (positions % 37 == 36)
        return tuple(int(t) for t in history[imagined_actions, 0].tolist())

    @staticmethod
    def _sign(reward: float) -> torch.Tensor:
        return torch.tensor([0.0, 0.0, 0.0]).index_fill(0, torch.tensor([int(reward) + 1]), 20.0)

    def _q_logits(self, q: list[float]) -> torch.Tensor:
        """Two atoms (−10, 10): P(10) = (q + 10) / 20 gives the expectation q."""
        p = ((torch.tensor(q) + 10) / 20).clamp(1e-6, 1 - 1e-6)
        return torch.stack([torch.log1p(-p), torch.log(p)], dim=-1).flatten()  # [18·2], action-major


def context(blocks: int = 4) -> list[torch.Tensor]:
    return [torch.zeros(37 * blocks - 1, dtype=torch.long)]


def decide(planner, world: ScriptedWorld, task: int = BREAKOUT):
    return planner.decide(world, context(), torch.tensor([task]), trace=True)


def test_mcts_finds_the_action_whose_next_state_is_worth_more() -> None:
    """Root Q favours NOOP; only after action 3 is the imagined state worth a lot: greedy misses it, MCTS not."""
    def q(state: State) -> list[float]:
        if not state:
            return [1.0 if a == 0 else 0.0 for a in range(18)]
        return [5.0 if state[0] == 3 else 0.0] * 18

    world = ScriptedWorld(q)
    assert int(decide(Greedy(), world).actions[0]) == 0
    decision = decide(MCTS(horizon=3, simulations=20), world)
    assert int(decision.actions[0]) == 3
    assert decision.paths[0].actions[0] == 3 and decision.trees[0].chosen_action == 3


def test_mcts_backs_up_rewards_found_deeper_in_the_tree() -> None:
    """A flat Q everywhere; every step after action 1 earns +1, which only the backup can see."""
    world = ScriptedWorld(lambda s: [0.0] * 18, reward=lambda s: 1.0 if len(s) >= 2 and s[0] == 1 else 0.0)
    decision = decide(MCTS(horizon=3, simulations=20), world)
    assert int(decision.actions[0]) == 1
    assert decision.paths[0].rewards == [0.0, 1.0]


def test_first_simulation_takes_the_largest_valid_action_on_ties_as_the_official_max() -> None:
    world = ScriptedWorld(lambda s: [0.0] * 18)
    tree = decide(MCTS(horizon=2, simulations=1), world).trees[0]
    assert [n.action for n in tree.nodes] == [-1, max(VALID)]


def test_all_negative_values_return_an_invalid_action_only_with_the_official_quirk() -> None:
    """NOOP and FIRE look best at the root, but every imagined state is worth -1: once both are visited, the
    official argmax over all 18 children's mean values (unvisited = 0) lands on action 2, invalid in Breakout."""
    world = ScriptedWorld(lambda s: [-1.0] * 18 if s else [5.0, 5.0] + [0.0] * 16)
    official = decide(MCTS(horizon=2, simulations=8, official_quirks=True), world)
    assert {n.action for n in official.trees[0].nodes[1:]} == {0, 1, 4}
    assert int(official.actions[0]) == 2 and 2 not in VALID
    fixed = decide(MCTS(horizon=2, simulations=8), world)
    assert int(fixed.actions[0]) == 0  # the first of the visited children, all at -1


def test_depth_cap_revisits_reimagine_the_node_only_with_the_official_quirk() -> None:
    """H = 2 caps the tree at depth 1: every simulation after a child's first visit revisits a capped node."""
    world = ScriptedWorld(lambda s: [s[0] / 4.0] * 18 if s else [0.0] * 18)  # children worth 0, .25, .75, 1
    official, fixed = MCTS(horizon=2, simulations=10, official_quirks=True), MCTS(horizon=2, simulations=10)
    chosen_official = decide(official, world)
    steps_official, world.imagined_steps = world.imagined_steps, 0
    chosen_fixed = decide(fixed, world)
    created = len(chosen_fixed.trees[0].nodes) - 1
    assert steps_official == 10 and world.imagined_steps == created < 10  # the fix steps once per node
    assert torch.equal(chosen_official.actions, chosen_fixed.actions)  # argmax decoding: the same values
    # actions exactly, scores to float tolerance (pytest >= 9.2 refuses approx on nested tuples)
    actions = lambda d: [n.action for n in d.trees[0].nodes]  # noqa: E731
    scores = lambda d: [n.score for n in d.trees[0].nodes]  # noqa: E731
    assert actions(chosen_official) == actions(chosen_fixed)
    assert scores(chosen_official) == pytest.approx(scores(chosen_fixed))


def test_default_simulation_count_is_the_official_k_squared_rule() -> None:
    planner = MCTS(horizon=3, simulations=None)
    assert planner.counts(2, torch.tensor([2, 3])).tolist() == [2 * 2 * 2 + 2, 3 * 3 * 2 + 3]
    assert make_planner("mcts", PlannerSettings(horizon=6)).simulations == 20
    with pytest.raises(ValueError, match="horizon"):
        make_planner("mcts", PlannerSettings(horizon=0))


def test_beam_search_is_a_planner_of_the_same_world() -> None:
    world = ScriptedWorld(lambda s: [0.0] * 18, reward=lambda s: 1.0 if s[:1] == (3,) else 0.0)
    # (the scripted cache is a plain KV cache: no shared-prefix rows)
    assert int(decide(BeamSearch(beam_width=4, horizon=2, shared_prefix=False), world).actions[0]) == 3


# ---------------------------------------------------------------- the official small model


@pytest.fixture(scope="module")
def small(reference_dir):
    from safetensors.torch import load_file

    from jowa.compat.parity import load_small_model

    ref = reference_dir / "jowa"
    cases = json.loads((ref / "jowa_small_planning.json").read_text())["cases"]
    tensors = load_file(str(ref / "jowa_small_planning.safetensors"))
    contexts = [tensors[f"{name}/context_tokens"][0] for name in cases]
    return load_small_model(ref).eval(), contexts, torch.tensor([case["env"] for case in cases.values()])


def test_batched_mcts_equals_one_environment_at_a_time_and_is_deterministic(small) -> None:
    model, contexts, tasks = small
    planner = MCTS(horizon=3, simulations=6)
    batched = planner.decide(model, contexts, tasks, trace=True)
    again = planner.decide(model, contexts, tasks, trace=True)
    assert torch.equal(batched.actions, again.actions)
    assert [t.to_json() for t in batched.trees] == [t.to_json() for t in again.trees]
    valid = model.valid_actions(tasks)
    assert bool(valid.gather(1, batched.actions[:, None]).all())  # valid actions only
    for i, (tokens, task) in enumerate(zip(contexts, tasks)):
        alone = planner.decide(model, [tokens], task.view(1), trace=True)
        assert int(alone.actions[0]) == int(batched.actions[i])
        assert [(n.parent, n.action) for n in alone.trees[0].nodes] == [(n.parent, n.action) for n in
                                                                         batched.trees[i].nodes]
        path = alone.paths[0]
        assert path.actions[0] == int(alone.actions[0]) and 1 <= len(path.actions) <= planner.depth_cap
        assert all(bool(valid[i, a]) for a in path.actions)
