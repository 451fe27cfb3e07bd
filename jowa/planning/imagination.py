"""One imagined environment step in the learned model: 37 cached single-token passes (docs/official_jowa.md §7.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.model.distributional import q_values
from jowa.model.kv_cache import KVCache
from jowa.model.shared_prefix_cache import SharedPrefixCache
from jowa.model.world_model import WorldActionModel


@dataclass
class ImaginedStep:
    next_obs_tokens: torch.Tensor  # [C, 36] decoded observation tokens
    rewards: torch.Tensor  # [C] predicted reward sign in {-1, 0, 1} (argmax class − 1)
    ends: torch.Tensor  # [C] bool predicted termination (argmax class)
    q_values: torch.Tensor  # [C, 18] expected Q at the imagined o^35, invalid actions = -inf
    # Only with `with_probs` (the planner's trace, the viewer): what the argmax decisions above were drawn from.
    reward_probs: torch.Tensor | None = None  # [C, 3] softmax over the reward classes (sign −1, 0, +1)
    end_probs: torch.Tensor | None = None  # [C] probability of termination


def _pick(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """[C, V] -> [C] argmax (temperature 0, the official decoding) or a sample at `temperature`."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def imagine_step(
    model: WorldActionModel, cache: KVCache | SharedPrefixCache, actions: torch.Tensor, tasks: torch.Tensor, valid: torch.Tensor,
    temperature: float = 0.0, generator: torch.Generator | None = None, with_probs: bool = False,
) -> ImaginedStep:
    """Feed `actions` [C] after the cached context (ending with o^35), decode the next frame's 36 tokens,
    then feed o^35 to read Q there. The cache grows by 37 tokens. `with_probs` also returns the reward
    and termination probabilities (the decisions are the same either way)."""
    out = model(actions[:, None], tasks, cache=cache, with_target=False)
    rewards = out.logits_rewards[:, -1].argmax(dim=-1) - 1
    ends = out.logits_ends[:, -1].argmax(dim=-1).bool()
    reward_probs = torch.softmax(out.logits_rewards[:, -1].float(), dim=-1) if with_probs else None
    end_probs = torch.softmax(out.logits_ends[:, -1].float(), dim=-1)[:, 1] if with_probs else None
    tokens = [_pick(out.logits_observations[:, -1], temperature, generator)]
    num_obs = model.config.obs_tokens_per_block
    for _ in range(num_obs - 1):
        out = model(tokens[-1][:, None], tasks, cache=cache, with_target=False)
        tokens.append(_pick(out.logits_observations[:, -1], temperature, generator))
    out = model(tokens[-1][:, None], tasks, cache=cache, with_target=False)  # o^35: the Q position
    q = q_values(out.logits_q[:, :, -1], model.atoms, valid)
    return ImaginedStep(torch.stack(tokens, dim=1), rewards, ends, q, reward_probs, end_probs)
