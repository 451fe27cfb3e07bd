"""Model-based data synthesis for fine-tuning (docs/official_jowa.md §9.1), kept as tokens, with the official bugs fixed.

From a real L-step segment (steps 0..L-1, all real, the last not terminal) and horizon H:
- context: the last C = L − H real steps, observations o_H..o_{L-1} with the actions *between* them,
  a_H..a_{L-2} — the tokens [o_H, a_H, …, o_{L-2}, a_{L-2}, o_{L-1}] ending at o_{L-1}'s last token;
- a planner (`jowa.planning.planner.Planner`; fine-tuning uses the batched beam search of §7.3, K and H)
  from o_{L-1}; the imagined path behind its decision (beam search: the best depth-H path) gives imagined
  actions â_{L-1}.. (the first is the planned action at o_{L-1}), reward signs r̂ and imagined
  observations ô_L..ô_{L+H-1} (as tokens);
- the synthetic segment, L steps, every step with its own action and reward:
      observations [o_H .. o_{L-1}, ô_L .. ô_{L+H-1}]
      actions      [a_H .. a_{L-2}, â_{L-1} .. â_{L+H-2}, â_{L+H-2} (dummy)]
      rewards      [r_H .. r_{L-2}, r̂_{L-1} .. r̂_{L+H-2}, r̂_{L+H-2} (dummy)]
      ends all 0, mask all 1.
The official code took the real actions/rewards from indices H+1..L-1 — each one step early — and stored
imagined frames as 0..255 pixels beside real ones in [0, 1]. Tokens avoid the second question entirely.
Imagined segments feed only the TD and CQL losses (see `jowa.finetuning.mixed_objective`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.data.batch import Batch
from jowa.model.world_model import WorldActionModel
from jowa.objective import interleave
from jowa.planning.planner import Planner


@dataclass
class ImaginedPaths:
    actions: torch.Tensor  # [S, H] imagined actions, the first = the planned action at the last real step
    rewards: torch.Tensor  # [S, H] predicted reward signs in {-1, 0, 1}
    observations: torch.Tensor  # [S, H, 36] imagined observation tokens


def imagination_context(seeds: Batch, horizon: int) -> torch.Tensor:
    """[S, L] real segments -> [S, 37·(L−H) − 1] tokens: the last L − H steps, ending at o_{L-1}^35."""
    if not bool(seeds.mask_padding.all()):
        raise ValueError("imagination needs segments whose steps are all real")
    start = horizon  # the context keeps steps H..L-1
    return interleave(seeds.observations[:, start:], seeds.actions[:, start:])[:, :-1]


@torch.no_grad()
def imagine_paths(model: WorldActionModel, seeds: Batch, planner: Planner) -> ImaginedPaths:
    """The planner from every seed's last real step, batched over seeds; each decision's imagined path,
    which must reach the planner's horizon H (beam search's does; MCTS's may stop short)."""
    horizon = planner.horizon
    contexts = imagination_context(seeds, horizon)
    paths = planner.decide(model, list(contexts), seeds.tasks, trace=True).paths
    short = [len(p.actions) for p in paths if len(p.actions) != horizon]
    if short:
        raise ValueError(f"{planner.describe()} imagined paths of {short[0]} steps; imagination needs H = {horizon}")
    device = seeds.observations.device
    return ImaginedPaths(
        actions=torch.tensor([p.actions for p in paths], dtype=torch.long, device=device).view(-1, horizon),
        rewards=torch.tensor([p.rewards for p in paths], dtype=torch.float32, device=device).view(-1, horizon),
        observations=torch.stack([p.observations for p in paths]).to(device).view(
            len(paths), horizon, -1) if paths else seeds.observations[:, :0],
    )


def synthetic_segments(seeds: Batch, paths: ImaginedPaths) -> Batch:
    """Real context + imagined continuation, aligned step by step (module docstring)."""
    horizon, length = paths.actions.shape[1], seeds.num_steps
    observations = torch.cat([seeds.observations[:, horizon:], paths.observations], dim=1)  # [S, L, 36]
    actions = torch.cat([seeds.actions[:, horizon:length - 1], paths.actions, paths.actions[:, -1:]], dim=1)  # [S, L]
    rewards = torch.cat([seeds.rewards[:, horizon:length - 1], paths.rewards, paths.rewards[:, -1:]], dim=1)  # [S, L]
    return Batch(
        observations=observations, actions=actions, rewards=rewards.to(seeds.rewards.dtype),
        ends=torch.zeros_like(seeds.ends), mask_padding=torch.ones_like(seeds.mask_padding), tasks=seeds.tasks,
    )


@torch.no_grad()
def imagine(model: WorldActionModel, seeds: Batch, planner: Planner) -> Batch:
    """Synthetic segments from `seeds`, planned with the model in eval mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return synthetic_segments(seeds, imagine_paths(model, seeds, planner))
    finally:
        model.train(was_training)
