"""The search trees of G environments' MCTS as tensors: pUCT selection, backup, min-max statistics.

Node i of environment g is row [g, i] of every array (root = 0, nodes numbered in creation order). A node
exists once it has been imagined (its world-model step done), i.e. once it has been visited: the
official code's unvisited children are only their priors, which sit in the parent's `prior` row. The
arithmetic follows the official `src/MCTS.py` (docs/official_jowa.md §7.4) in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Trees:
    visits: torch.Tensor  # [G, M] float64 visit counts
    value_sum: torch.Tensor  # [G, M] float64 sums of backed-up values
    reward: torch.Tensor  # [G, M] float64 predicted reward sign of the step into the node (root 0)
    leaf_value: torch.Tensor  # [G, M] float64 value at the node's expansion (max or mean Q)
    prior: torch.Tensor  # [G, M, A] float64 softmax(Q / T) at the node, invalid actions 0
    q: torch.Tensor  # [G, M, A] masked Q at the node (for the tree record)
    children: torch.Tensor  # [G, M, A] long node id of each action's child, -1 = not imagined yet
    parent: torch.Tensor  # [G, M] long (-1 for the root)
    action: torch.Tensor  # [G, M] long action from the parent (-1 for the root)
    depth: torch.Tensor  # [G, M] long
    obs: torch.Tensor  # [G, M, 36] long imagined observation tokens
    size: torch.Tensor  # [G] long nodes created
    low: torch.Tensor  # [G] float64 min-max statistics (MuZero's MinMaxStats)
    high: torch.Tensor  # [G] float64

    @classmethod
    def empty(cls, groups: int, nodes: int, actions: int, obs_tokens: int, device: torch.device) -> "Trees":
        f64 = dict(dtype=torch.float64, device=device)
        long = dict(dtype=torch.long, device=device)
        return cls(
            visits=torch.zeros(groups, nodes, **f64), value_sum=torch.zeros(groups, nodes, **f64),
            reward=torch.zeros(groups, nodes, **f64), leaf_value=torch.zeros(groups, nodes, **f64),
            prior=torch.zeros(groups, nodes, actions, **f64), q=torch.zeros(groups, nodes, actions, device=device),
            children=torch.full((groups, nodes, actions), -1, **long), parent=torch.full((groups, nodes), -1, **long),
            action=torch.full((groups, nodes), -1, **long), depth=torch.zeros(groups, nodes, **long),
            obs=torch.zeros(groups, nodes, obs_tokens, **long), size=torch.ones(groups, **long),
            low=torch.full((groups,), float("inf"), **f64), high=torch.full((groups,), float("-inf"), **f64),
        )

    def set_node(self, rows: torch.Tensor, node: torch.Tensor, q: torch.Tensor, temperature: float,
                 use_mean: bool) -> torch.Tensor:
        """Store the masked Q [R, A] read at `node` [R] of environments `rows` [R]: its prior and leaf
        value (returned, [R] float64)."""
        self.q[rows, node] = q.float()
        self.prior[rows, node] = torch.softmax(q.double() / temperature, dim=-1)
        valid = torch.isfinite(q)
        if use_mean:  # over the valid actions (the official mean over all 18 would be -inf)
            value = torch.where(valid, q.double(), 0.0).sum(-1) / valid.sum(-1)
        else:
            value = q.double().max(dim=-1).values
        self.leaf_value[rows, node] = value
        return value

    def mean_value(self) -> torch.Tensor:
        """[G, M] value_sum / visits (0 for unvisited nodes, as the official `Node.value`)."""
        return torch.where(self.visits > 0, self.value_sum / self.visits.clamp(min=1), 0.0)

    def normalize(self, value: torch.Tensor) -> torch.Tensor:
        """[G, A] -> min-max normalised with each environment's bounds (unchanged while max <= min)."""
        low, high = self.low[:, None], self.high[:, None]
        return torch.where(high > low, (value - low) / (high - low), value)

    def ucb(self, node: torch.Tensor, gamma: float, c_init: float, c_base: float) -> torch.Tensor:
        """pUCT scores [G, A] of the children of `node` [G]; actions with prior < 1e-12 (invalid) get -inf."""
        g = torch.arange(len(node), device=node.device)
        parent_visits = self.visits[g, node][:, None]  # [G, 1]
        child = self.children[g, node]  # [G, A]
        visited = child >= 0
        safe = child.clamp(min=0)
        child_visits = torch.where(visited, self.visits[g[:, None], safe], 0.0)
        child_value = self.mean_value()[g[:, None], safe]
        value_score = torch.where(visited, self.normalize(self.reward[g[:, None], safe] + gamma * child_value), 0.0)
        pb_c = torch.log((parent_visits + c_base + 1) / c_base) + c_init
        prior = self.prior[g, node]
        prior_score = parent_visits.sqrt() * pb_c * prior / (child_visits + 1)
        return torch.where(prior < 1e-12, float("-inf"), prior_score + value_score)

    def backup(self, path: torch.Tensor, length: torch.Tensor, value: torch.Tensor, rows: torch.Tensor,
               gamma: float) -> None:
        """Back `value` [G] up the paths [G, D] (nodes root-first, `length` [G] of them) of environments
        `rows` [G] bool, deepest first: value sum += v, visits += 1, bounds take the node's mean value,
        then v <- node reward + γ v (the official order)."""
        v = value.clone()
        g = torch.arange(len(path), device=path.device)
        for level in range(path.shape[1] - 1, -1, -1):
            here = rows & (length > level)
            if not bool(here.any()):
                continue
            r, n = g[here], path[here, level]
            self.value_sum[r, n] += v[r]
            self.visits[r, n] += 1
            mean = self.value_sum[r, n] / self.visits[r, n]
            self.low[r] = torch.minimum(self.low[r], mean)
            self.high[r] = torch.maximum(self.high[r], mean)
            v[r] = self.reward[r, n] + gamma * v[r]


def last_argmax(scores: torch.Tensor) -> torch.Tensor:
    """[G, A] -> [G] index of the maximum, ties to the largest index (the official max over (score, action))."""
    return scores.shape[-1] - 1 - scores.flip(-1).argmax(dim=-1)
