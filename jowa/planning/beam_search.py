"""Batched beam search in the learned world model (docs/official_jowa.md §7.3), over many environments at once.

The official planner handles one environment per process. Here one call plans for E environments,
each with its own game, context and beam width: the root pass and every depth's expansion are single
batched forward passes over all (environment, node, action) rows, and beam expansion reuses the KV
cache by indexing. Environments whose contexts differ in length are planned in one group per length
(positions must start at 0 in every row), so a call makes at most 8 groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from jowa.model.distributional import q_values
from jowa.model.shared_prefix_cache import SharedPrefixCache
from jowa.model.world_model import WorldActionModel
from jowa.planning.imagination import imagine_step
from jowa.planning.planner import Decision, ImaginedPath, PlannerSettings, check_horizon, search_inputs
from jowa.planning.tree import SearchNode, SearchTree, q_tuple


@dataclass
class BeamSearch:
    """The official planner's options, and the planner (`decide`, the `Planner` protocol)."""

    beam_width: int = 2  # K: nodes kept per depth; each expands min(K, #valid actions) actions
    horizon: int = 2  # H; 0 = greedy on Q at the root
    gamma: float = 0.99
    # Beyond the official planner (off by default): stop a path at a predicted terminal
    # (no reward or value after it), and sample imagined tokens at a temperature instead of argmax.
    terminal_ends_path: bool = False
    temperature: float = 0.0
    # Store each environment's real context once and share it between its search rows (fewer bytes
    # read per imagined token, beam reordering copies only the imagined tails). Same decisions.
    # None: only where a group of contexts holds several environments. Alone, one environment's few rows
    # share little; the two caches measured within noise there (BENCHMARKS.md, E = 1), and the plain one
    # is the baseline's, so a lone environment is never slower than it.
    shared_prefix: bool | None = None
    # λ of a λ-return over the path's n-step estimates (ours, docs/diagnosis.md "A λ-return score"):
    # G_n = Σ_{t≤n} γ^(t−1) r̂_t + γ^n Q(ŝ_n, a_(n+1)) for n < d (G_0 = Q(s, a_1)), and the node's own
    # G_d bootstraps from max Q(ŝ_d); a depth-d node scores (1 − λ) Σ_{n<d} λ^n G_n + λ^d G_d.
    # 1 = the official score G_H; 0 = greedy's Q(s, a_1).
    return_lambda: float = 1.0

    def validate(self, max_blocks: int = 8) -> None:
        if self.beam_width < 1:
            raise ValueError(f"beam width must be >= 1, got {self.beam_width}")
        if not 0.0 <= self.return_lambda <= 1.0:
            raise ValueError(f"return lambda must be in [0, 1], got {self.return_lambda}")
        check_horizon(self.horizon, max_blocks)

    def shares_prefix(self, num_envs: int) -> bool:
        """Whether a call planning `num_envs` environments together uses the shared-prefix cache."""
        return self.shared_prefix if self.shared_prefix is not None else num_envs > 1

    def describe(self) -> str:
        if self.horizon == 0:
            return "greedy"
        return f"beam search K={self.beam_width} H={self.horizon}{lambda_suffix(self.return_lambda)}"

    def decide(
        self, model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
        widths: torch.Tensor | None = None, trace: bool = False,
    ) -> Decision:
        result = plan(model, contexts, tasks, self, widths, trace)
        if not trace:
            return Decision(result.actions, result.root_q, detail=result)
        trees = [search_tree(result, e, self.describe()) for e in range(len(contexts))]
        paths = [best_path(traces, self.horizon) for traces in result.traces]
        return Decision(result.actions, result.root_q, trees, paths, result)


def lambda_suffix(return_lambda: float) -> str:
    """How labels name a λ-return score: nothing for the official λ = 1."""
    return f" λ={return_lambda:g}" if return_lambda != 1.0 else ""


def build(settings: PlannerSettings) -> BeamSearch:
    return BeamSearch(beam_width=settings.beam_width, horizon=settings.horizon, return_lambda=settings.return_lambda)


@dataclass
class DepthTrace:
    """All children created at one depth for one environment, in expansion order."""

    parents: torch.Tensor  # [C] node id of the parent (root = 0, children numbered from 1 in creation order)
    actions: torch.Tensor  # [C]
    rewards: torch.Tensor  # [C]
    ends: torch.Tensor  # [C] bool
    next_obs_tokens: torch.Tensor  # [C, 36]
    q_masked: torch.Tensor  # [C, 18]
    scores: torch.Tensor  # [C]
    kept: torch.Tensor  # [<=K] node ids of the new beam, best first
    reward_probs: torch.Tensor | None = None  # [C, 3] probabilities of the reward signs −1, 0, +1
    end_probs: torch.Tensor | None = None  # [C] probability of termination


@dataclass
class PlanResult:
    actions: torch.Tensor  # [E] chosen full-set actions
    root_q: torch.Tensor  # [E, 18] masked Q at the root
    traces: list[list[DepthTrace]] = field(default_factory=list)  # [E][depth], when requested


@torch.no_grad()
def plan(
    model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor, options: BeamSearch,
    beam_widths: torch.Tensor | None = None, trace: bool = False, generator: torch.Generator | None = None,
) -> PlanResult:
    """Choose one action per environment.

    contexts: E token histories, each [37n − 1] ending with the current o^35 (the agent buffer);
    the last min(8 − H, n) blocks are used. tasks [E]; beam_widths [E] overrides options.beam_width.
    """
    options.validate(model.config.max_blocks)
    device = model.atoms.device
    count = len(contexts)
    inputs = search_inputs(model, contexts, tasks, options.horizon)
    tasks, valid, truncated = inputs.tasks, inputs.valid, inputs.contexts
    widths = (beam_widths if beam_widths is not None else torch.full((count,), options.beam_width)).to(device)
    actions = torch.empty(count, dtype=torch.long, device=device)
    root_q = torch.empty(count, valid.shape[1], device=device)
    traces: list[list[DepthTrace]] = [[] for _ in range(count)]
    for length in sorted({t.numel() for t in truncated}):
        group = torch.tensor([i for i, t in enumerate(truncated) if t.numel() == length], device=device)
        stacked = torch.stack([truncated[i] for i in group.tolist()])
        result = _plan_group(model, stacked, tasks[group], valid[group], widths[group], options, trace, generator)
        actions[group] = result.actions
        root_q[group] = result.root_q
        for j, i in enumerate(group.tolist()):
            traces[i] = result.traces[j] if trace else []
    return PlanResult(actions, root_q, traces if trace else [])


def _plan_group(
    model: WorldActionModel, tokens: torch.Tensor, tasks: torch.Tensor, valid: torch.Tensor, widths: torch.Tensor,
    options: BeamSearch, trace: bool, generator: torch.Generator | None,
) -> PlanResult:
    """Environments whose contexts have the same length: tokens [G, n].

    Each node expands its top K' = min(K, #valid) actions; the beam keeps the best K children
    (K, not K': the official planner keeps 5 of 16 children for Atlantis at K = 5)."""
    expand_widths = torch.minimum(widths, valid.sum(dim=1))
    cache = model.empty_cache(tokens.shape[0])
    out = model(tokens, tasks, cache=cache, with_target=False)
    root_q = q_values(out.logits_q[:, :, -1], model.atoms, valid)  # [G, 18]
    if options.horizon == 0:
        return PlanResult(root_q.argmax(dim=-1), root_q, [[] for _ in range(len(tokens))])
    if options.shares_prefix(len(tokens)):
        cache = SharedPrefixCache.from_prefix(cache)

    # The beam: one row per node, grouped by environment, best first within an environment.
    env = torch.arange(len(tokens), device=tokens.device)  # [R] environment of each row
    node_q, returns = root_q, torch.zeros(len(tokens), device=tokens.device)
    mixed = torch.zeros(len(tokens), device=tokens.device)  # (1 − λ) Σ_{n<d} λ^n G_n of each row's path
    first_action = torch.zeros(len(tokens), dtype=torch.long, device=tokens.device)
    absorbed = torch.zeros(len(tokens), dtype=torch.bool, device=tokens.device)
    node_ids = torch.zeros(len(tokens), dtype=torch.long, device=tokens.device)
    next_id = torch.ones(len(tokens), dtype=torch.long, device=tokens.device)
    traces: list[list[DepthTrace]] = [[] for _ in range(len(tokens))]
    for depth in range(1, options.horizon + 1):
        parent, action = _expand(node_q, expand_widths[env])  # children in (row, top-k) order
        child_env = env[parent]
        cache = cache.select(parent)
        step = imagine_step(model, cache, action, tasks[child_env], valid[child_env], options.temperature, generator,
                            with_probs=trace)
        reward, value = step.rewards.float(), step.q_values.max(dim=-1).values
        if options.terminal_ends_path:  # nothing is earned after a predicted terminal
            reward = torch.where(absorbed[parent], torch.zeros_like(reward), reward)
            value = torch.where(absorbed[parent] | step.ends, torch.zeros_like(value), value)
        child_returns = returns[parent] + options.gamma ** (depth - 1) * reward
        scores = child_returns + options.gamma ** depth * value
        if options.return_lambda != 1.0:  # the official score stays bit-exact at λ = 1
            lam = options.return_lambda
            shorter = returns[parent] + options.gamma ** (depth - 1) * node_q[parent, action]  # G_(d−1)
            if options.terminal_ends_path:
                shorter = torch.where(absorbed[parent], returns[parent], shorter)
            mixed = mixed[parent] + (1.0 - lam) * lam ** (depth - 1) * shorter
            scores = mixed + lam ** depth * scores
        keep = _keep_best(child_env, scores, widths, len(tokens))
        child_ids = _number_children(child_env, next_id)
        if trace:
            _record(traces, child_env, node_ids[parent], action, step, scores, child_ids, keep)
        env, node_q, returns = child_env[keep], step.q_values[keep], child_returns[keep]
        if options.return_lambda != 1.0:
            mixed = mixed[keep]
        first_action = action[keep] if depth == 1 else first_action[parent][keep]
        if options.terminal_ends_path:
            absorbed = (absorbed[parent] | step.ends)[keep]
        node_ids = child_ids[keep]
        cache = cache.select(keep)
    best_row = _first_row_of_each_env(env, len(tokens))
    return PlanResult(first_action[best_row], root_q, traces)


def _expand(node_q: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-K' actions of every node by masked Q, flattened in (node, top-k) order.

    node_q [R, 18], widths [R] -> parent row [C], action [C]."""
    top = node_q.topk(int(widths.max()), dim=-1).indices  # [R, Kmax]
    rank = torch.arange(top.shape[1], device=top.device)
    chosen = rank[None, :] < widths[:, None]  # [R, Kmax]
    parent = torch.arange(len(node_q), device=top.device)[:, None].expand_as(top)
    return parent[chosen], top[chosen]


def _keep_best(child_env: torch.Tensor, scores: torch.Tensor, widths: torch.Tensor, num_envs: int) -> torch.Tensor:
    """Indices of each environment's top-K children by score, environments in order, best first.

    Stable sorts: ties keep expansion order, as the official Python sort does."""
    by_score = torch.sort(scores, descending=True, stable=True).indices
    order = by_score[torch.sort(child_env[by_score], stable=True).indices]
    envs_sorted = child_env[order]
    starts = torch.searchsorted(envs_sorted, torch.arange(num_envs, device=scores.device))
    rank = torch.arange(len(order), device=scores.device) - starts[envs_sorted]
    return order[rank < widths[envs_sorted]]


def _number_children(child_env: torch.Tensor, next_id: torch.Tensor) -> torch.Tensor:
    """Node ids in creation order per environment (root = 0); advances `next_id` in place."""
    counts = torch.bincount(child_env, minlength=len(next_id))
    offsets = torch.cumsum(counts, 0) - counts
    ids = next_id[child_env] + torch.arange(len(child_env), device=child_env.device) - offsets[child_env]
    next_id += counts
    return ids


def _first_row_of_each_env(env: torch.Tensor, num_envs: int) -> torch.Tensor:
    return torch.searchsorted(env, torch.arange(num_envs, device=env.device))


def _record(traces, child_env, parent_ids, action, step, scores, child_ids, keep) -> None:
    for e in range(len(traces)):
        mine = child_env == e
        kept = keep[child_env[keep] == e]
        traces[e].append(DepthTrace(
            parents=parent_ids[mine].cpu(), actions=action[mine].cpu(), rewards=step.rewards[mine].float().cpu(),
            ends=step.ends[mine].cpu(), next_obs_tokens=step.next_obs_tokens[mine].cpu(),
            q_masked=step.q_values[mine].cpu(), scores=scores[mine].cpu(), kept=child_ids[kept].cpu(),
            reward_probs=None if step.reward_probs is None else step.reward_probs[mine].cpu(),
            end_probs=None if step.end_probs is None else step.end_probs[mine].cpu(),
        ))


def search_tree(result: PlanResult, env: int, planner: str) -> SearchTree:
    """Environment `env`'s decision as a planner-agnostic tree (needs `plan(..., trace=True)` for the nodes)."""
    nan = float("nan")
    nodes = [SearchNode(0, -1, 0, -1, 0, nan, nan, q_tuple(result.root_q[env].tolist()))]
    traces = result.traces[env] if result.traces else []
    for depth, level in enumerate(traces, start=1):
        kept = set(level.kept.tolist())
        first = len(nodes)
        for j in range(len(level.actions)):
            sign = int(level.rewards[j])
            nodes.append(SearchNode(
                id=first + j, parent=int(level.parents[j]), depth=depth, action=int(level.actions[j]),
                reward_sign=sign,
                reward_prob=nan if level.reward_probs is None else float(level.reward_probs[j, sign + 1]),
                end_prob=nan if level.end_probs is None else float(level.end_probs[j]),
                q=q_tuple(level.q_masked[j].tolist()), score=float(level.scores[j]), kept=first + j in kept,
            ))
    return SearchTree(int(result.actions[env]), planner, nodes)


def best_path(traces: list[DepthTrace], horizon: int) -> ImaginedPath:
    """Walk one environment's search back from its best depth-H node (empty at H = 0)."""
    if horizon == 0 or not traces:
        return ImaginedPath([], [], torch.zeros(0, 36, dtype=torch.long))
    first_id = [1]
    for level in traces[:-1]:
        first_id.append(first_id[-1] + len(level.actions))
    node = int(traces[horizon - 1].kept[0])
    actions, rewards, observations = [], [], []
    for depth in range(horizon, 0, -1):
        level, index = traces[depth - 1], node - first_id[depth - 1]
        actions.append(int(level.actions[index]))
        rewards.append(float(level.rewards[index]))
        observations.append(level.next_obs_tokens[index])
        node = int(level.parents[index])
    return ImaginedPath(actions[::-1], rewards[::-1], torch.stack(observations[::-1]))
