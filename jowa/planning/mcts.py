"""MCTS in the learned world model (the official `src/MCTS.py`, docs/official_jowa.md §7.4), batched over environments.

A MuZero-style pUCT search: priors softmax(Q/T) (invalid actions 0), UCB = prior term + min-max-normalised
(reward + γ · child value), leaf value max Q, one world-model step (argmax decoding) per simulation. The
official code searches one environment per process; here the simulations run in lockstep over the
environments of one context length: each simulation is one batched selection over all trees and one
batched world-model step per parent depth (rows of one depth share a cache length). Every imagined node
keeps its own KV cache rows, as the official code keeps a copy per node.

Two official quirks are fixed unless `official_quirks`:
- at the depth cap an already imagined node is imagined again (its children overwritten); here its stored
  leaf value is backed up instead: the same decisions under argmax decoding, without the world-model step;
- the final argmax covers all 18 root children, unvisited ones (invalid actions among them) at value 0, so
  an invalid action wins when every visited child's value is negative; here only visited children count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.model.distributional import q_values
from jowa.model.kv_cache import KVCache, select_rows
from jowa.model.world_model import WorldActionModel
from jowa.planning.imagination import imagine_step
from jowa.planning.mcts_tree import Trees, last_argmax
from jowa.planning.planner import (
    Decision, ImaginedPath, PlannerSettings, check_horizon, length_groups, search_inputs,
)
from jowa.planning.tree import SearchNode, SearchTree, q_tuple

DEFAULT_SIMULATIONS = 20  # the official eval/eval_MCTS.sh


@dataclass
class MCTS:
    horizon: int = 6  # H: the root context is the last 8 − H blocks; nodes go down to depth max(1, H − 1)
    # Per decision; None = K²(H − 1) + K with each environment's K (the official default without a count).
    simulations: int | None = DEFAULT_SIMULATIONS
    temperature: float = 0.9  # of the priors softmax(Q / T)
    gamma: float = 0.99
    c_init: float = 1.25  # pUCT c1
    c_base: float = 19652.0  # pUCT c2
    use_mean: bool = False  # leaf value: mean instead of max of the valid Q
    use_count: bool = False  # decision: most visited root child instead of the best mean value
    beam_width: int = 2  # K for the default simulation count when no per-environment K is given
    official_quirks: bool = False  # reproduce the two official edge-case bugs (module docstring)

    def validate(self, max_blocks: int = 8) -> None:
        check_horizon(self.horizon, max_blocks, minimum=1)
        if self.simulations is not None and self.simulations < 1:
            raise ValueError(f"MCTS needs >= 1 simulation, got {self.simulations}")
        if self.temperature <= 0 or self.beam_width < 1:
            raise ValueError(f"MCTS temperature must be > 0 and K >= 1, got {self.temperature} and {self.beam_width}")

    def describe(self) -> str:
        count = "K²(H−1)+K" if self.simulations is None else str(self.simulations)
        return f"MCTS H={self.horizon} simulations={count}" + (" (official quirks)" if self.official_quirks else "")

    @property
    def depth_cap(self) -> int:
        """The official descent stops at depth horizon − 1, but always takes at least one step."""
        return max(1, self.horizon - 1)

    def counts(self, num_envs: int, widths: torch.Tensor | None) -> torch.Tensor:
        """Simulations per environment [E]."""
        if self.simulations is not None:
            return torch.full((num_envs,), self.simulations, dtype=torch.long)
        k = torch.full((num_envs,), self.beam_width) if widths is None else widths.long().cpu()
        return k * k * (self.horizon - 1) + k

    @torch.no_grad()
    def decide(
        self, model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
        widths: torch.Tensor | None = None, trace: bool = False,
    ) -> Decision:
        self.validate(model.config.max_blocks)
        device = model.atoms.device
        inputs = search_inputs(model, contexts, tasks, self.horizon)
        tasks, valid, truncated = inputs.tasks, inputs.valid, inputs.contexts
        counts = self.counts(len(contexts), widths).to(device)
        actions = torch.empty(len(contexts), dtype=torch.long, device=device)
        root_q = torch.empty(len(contexts), valid.shape[1], device=device)
        trees: list[SearchTree | None] = [None] * len(contexts)
        paths: list[ImaginedPath | None] = [None] * len(contexts)
        for group in length_groups(truncated):
            rows = torch.tensor(group, device=device)
            tokens = torch.stack([truncated[i] for i in group])
            found, chosen = self._search(model, tokens, tasks[rows], valid[rows], counts[rows])
            actions[rows], root_q[rows] = chosen, found.q[:, 0]
            if trace:
                for j, e in enumerate(group):
                    trees[e] = self._tree(found, j, int(chosen[j]))
                    paths[e] = self._path(found, j, int(chosen[j]))
        if not trace:
            return Decision(actions, root_q)
        return Decision(actions, root_q, [t for t in trees if t is not None], [p for p in paths if p is not None])

    def _search(self, model: WorldActionModel, tokens: torch.Tensor, tasks: torch.Tensor, valid: torch.Tensor,
                counts: torch.Tensor) -> tuple[Trees, torch.Tensor]:
        """G environments of one context length: tokens [G, n] -> (trees, chosen actions [G])."""
        groups, device = len(tokens), tokens.device
        nodes = 1 + int(counts.max())  # the root + at most one new node per simulation
        trees = Trees.empty(groups, nodes, valid.shape[1], model.config.obs_tokens_per_block, device)
        root_cache = model.empty_cache(groups)
        out = model(tokens, tasks, cache=root_cache, with_target=False)
        root = torch.zeros(groups, dtype=torch.long, device=device)
        everyone = torch.arange(groups, device=device)
        trees.set_node(everyone, root, q_values(out.logits_q[:, :, -1], model.atoms, valid), self.temperature,
                       self.use_mean)
        store = _CacheStore(model.empty_cache(groups * nodes), nodes, tokens.shape[1], model.config.tokens_per_block)
        store.put(everyone, root, root_cache, depth=0)
        for simulation in range(int(counts.max())):
            active = simulation < counts
            path, length, parent, action, revisit = self._select(trees, active)
            leaf = path[everyone, length - 1]
            new = active & ~revisit
            leaf = torch.where(new, trees.size, leaf)  # new nodes take the next free id
            path[everyone, length - 1] = torch.where(active, leaf, path[everyone, length - 1])
            trees.size += new.long()
            step = new | (revisit & self.official_quirks)
            value = trees.leaf_value[everyone, leaf].clone()
            if bool(step.any()):
                value[step] = self._imagine(model, trees, store, tasks, valid, step, parent, action, leaf)
            trees.backup(path, length, value, active, self.gamma)
        return trees, self._choose(trees)

    def _select(self, trees: Trees, active: torch.Tensor):
        """Descend every active tree by maximal UCB until an action not imagined yet or the depth cap.

        -> path [G, cap + 1] (node ids root-first, the last slot to fill for new nodes), its length [G],
        the parent [G] and action [G] of the leaf, and whether the leaf already existed (a cap revisit)."""
        groups, device = len(active), active.device
        g = torch.arange(groups, device=device)
        path = torch.full((groups, self.depth_cap + 1), -1, dtype=torch.long, device=device)
        path[:, 0] = 0
        length = torch.ones(groups, dtype=torch.long, device=device)
        node = torch.zeros(groups, dtype=torch.long, device=device)
        parent, action = node.clone(), node.clone()
        revisit = torch.zeros(groups, dtype=torch.bool, device=device)
        going = active.clone()
        for depth in range(1, self.depth_cap + 1):
            if not bool(going.any()):
                break
            chosen = last_argmax(trees.ucb(node, self.gamma, self.c_init, self.c_base))
            child = trees.children[g, node, chosen]
            parent = torch.where(going, node, parent)
            action = torch.where(going, chosen, action)
            length = torch.where(going, depth + 1, length)
            exists = going & (child >= 0)
            path[exists, depth] = child[exists]
            revisit = revisit | (exists & (depth == self.depth_cap))
            node = torch.where(exists, child, node)
            going = exists & (depth < self.depth_cap)
        return path, length, parent, action, revisit

    def _imagine(self, model: WorldActionModel, trees: Trees, store: "_CacheStore", tasks: torch.Tensor,
                 valid: torch.Tensor, step: torch.Tensor, parent: torch.Tensor, action: torch.Tensor,
                 leaf: torch.Tensor) -> torch.Tensor:
        """One world-model step for the environments `step` [G] bool: from `parent`'s cache with `action`
        into node `leaf`; batched per parent depth (one cache length per batch). -> leaf values [step.sum()]."""
        g = torch.arange(len(step), device=step.device)
        values = torch.zeros(len(step), dtype=torch.float64, device=step.device)
        parent_depth = trees.depth[g, parent]
        for depth in sorted(set(parent_depth[step].tolist())):
            rows = g[step & (parent_depth == depth)]
            cache = store.get(rows, parent[rows], depth)
            out = imagine_step(model, cache, action[rows], tasks[rows], valid[rows])
            node = leaf[rows]
            store.put(rows, node, cache, depth + 1)
            trees.reward[rows, node] = out.rewards.double()
            trees.obs[rows, node] = out.next_obs_tokens
            trees.parent[rows, node], trees.action[rows, node] = parent[rows], action[rows]
            trees.depth[rows, node] = depth + 1
            trees.children[rows, parent[rows], action[rows]] = node
            values[rows] = trees.set_node(rows, node, out.q_values, self.temperature, self.use_mean)
        return values[step]

    def _choose(self, trees: Trees) -> torch.Tensor:
        """The root child of best mean value (or most visits); see the module docstring for the quirk."""
        g = torch.arange(len(trees.size), device=trees.size.device)
        child = trees.children[:, 0]  # [G, A]
        safe = child.clamp(min=0)
        stat = trees.visits if self.use_count else trees.mean_value()
        scores = torch.where(child >= 0, stat[g[:, None], safe], 0.0)  # unvisited children count as 0
        if self.official_quirks:
            return scores.argmax(dim=-1)
        scores = torch.where(child >= 0, scores, float("-inf"))
        fallback = trees.q[:, 0].argmax(dim=-1)  # nothing visited: greedy on the root Q
        return torch.where((child >= 0).any(dim=-1), scores.argmax(dim=-1), fallback)

    def _tree(self, trees: Trees, g: int, chosen: int) -> SearchTree:
        """Environment g's imagined nodes, root first then by depth (ids renumbered in that order)."""
        size = int(trees.size[g])
        order = sorted(range(size), key=lambda i: (int(trees.depth[g, i]), i))
        new_id = {old: new for new, old in enumerate(order)}
        mean = trees.mean_value()[g]
        nan = float("nan")
        nodes = []
        for old in order:
            parent = int(trees.parent[g, old])
            nodes.append(SearchNode(
                id=new_id[old], parent=new_id.get(parent, -1), depth=int(trees.depth[g, old]),
                action=int(trees.action[g, old]), reward_sign=int(trees.reward[g, old]), reward_prob=nan,
                end_prob=nan, q=q_tuple(trees.q[g, old].tolist()), score=float(mean[old]),
            ))
        return SearchTree(chosen, self.describe(), nodes)

    def _path(self, trees: Trees, g: int, chosen: int) -> ImaginedPath:
        """The principal variation: the chosen root child, then each node's best visited child."""
        stat = (trees.visits if self.use_count else trees.mean_value())[g]
        actions, rewards, observations = [], [], []
        node, action = 0, chosen
        while int(trees.children[g, node, action]) >= 0:
            node = int(trees.children[g, node, action])
            actions.append(action)
            rewards.append(float(trees.reward[g, node]))
            observations.append(trees.obs[g, node].cpu())
            child = trees.children[g, node]
            if not bool((child >= 0).any()):
                break
            action = int(torch.where(child >= 0, stat[child.clamp(min=0)], float("-inf")).argmax())
        obs = torch.stack(observations) if observations else torch.zeros(0, trees.obs.shape[-1], dtype=torch.long)
        return ImaginedPath(actions, rewards, obs)


class _CacheStore:
    """Every node's KV cache rows in one preallocated cache of G·M rows (node i of environment g at row
    g·M + i); a node at depth d holds root length + 37 d tokens."""

    def __init__(self, cache: KVCache, nodes: int, root_length: int, tokens_per_step: int) -> None:
        self.cache, self.nodes, self.root_length, self.tokens_per_step = cache, nodes, root_length, tokens_per_step

    def length(self, depth: int) -> int:
        return self.root_length + self.tokens_per_step * depth

    def get(self, rows: torch.Tensor, node: torch.Tensor, depth: int) -> KVCache:
        index = rows * self.nodes + node
        n = self.length(depth)
        return KVCache(select_rows(self.cache.keys, index, n), select_rows(self.cache.values, index, n), n)

    def put(self, rows: torch.Tensor, node: torch.Tensor, cache: KVCache, depth: int) -> None:
        index = rows * self.nodes + node
        n = self.length(depth)
        self.cache.keys[:, index, :, :n] = cache.keys[:, :, :, :n].to(self.cache.keys.dtype)
        self.cache.values[:, index, :, :n] = cache.values[:, :, :, :n].to(self.cache.values.dtype)


def build(settings: PlannerSettings) -> MCTS:
    simulations = DEFAULT_SIMULATIONS if settings.simulations is None else settings.simulations
    return MCTS(horizon=settings.horizon, simulations=simulations, beam_width=settings.beam_width)
