"""One imagined environment step in the learned model: 37 cached single-token passes (docs/official_jowa.md §7.3),
through `SingleTokenDecoder` (the same arithmetic as `WorldActionModel.forward`, a fraction of its ops)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.model.decode import SingleTokenDecoder
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
    passes = _TokenPasses(model, tasks, cache)
    reward_logits, end_logits, obs_logits = passes.action(actions)
    rewards = reward_logits.argmax(dim=-1) - 1
    ends = end_logits.argmax(dim=-1).bool()
    reward_probs = torch.softmax(reward_logits.float(), dim=-1) if with_probs else None
    end_probs = torch.softmax(end_logits.float(), dim=-1)[:, 1] if with_probs else None
    tokens = [_pick(obs_logits, temperature, generator)]
    for _ in range(model.config.obs_tokens_per_block - 1):
        tokens.append(_pick(passes.observation(tokens[-1]), temperature, generator))
    q = q_values(passes.last_observation(tokens[-1]), model.atoms, valid)  # o^35: the Q position
    return ImaginedStep(torch.stack(tokens, dim=1), rewards, ends, q, reward_probs, end_probs)


class _TokenPasses:
    """One token per row into the cache -> the logits read at that position. An evaluation-mode
    `WorldActionModel` goes through `SingleTokenDecoder` and only the head the position needs; any other
    model (one left in training mode applies its dropout; the tests' scripted worlds) through its forward."""

    def __init__(self, model: WorldActionModel, tasks: torch.Tensor, cache: KVCache | SharedPrefixCache) -> None:
        self.model, self.tasks, self.cache = model, tasks, cache
        fast = isinstance(model, WorldActionModel) and not model.training
        self.decoder = SingleTokenDecoder(model) if fast else None

    def _forward(self, tokens: torch.Tensor):
        return self.model(tokens[:, None], self.tasks, cache=self.cache, with_target=False)

    def action(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Action tokens [C] -> reward [C, 3], termination [C, 2] and first next-observation [C, V] logits."""
        if self.decoder is None:
            out = self._forward(tokens)
            return out.logits_rewards[:, -1], out.logits_ends[:, -1], out.logits_observations[:, -1]
        h = self.decoder.hidden(tokens, self.tasks, self.cache)
        return self.model.head_rewards(h), self.model.head_ends(h), self.model.head_observations(h)

    def observation(self, tokens: torch.Tensor) -> torch.Tensor:
        """Observation tokens o^0..o^34 [C] -> the next observation token's logits [C, V]."""
        if self.decoder is None:
            return self._forward(tokens).logits_observations[:, -1]
        return self.model.head_observations(self.decoder.hidden(tokens, self.tasks, self.cache))

    def last_observation(self, tokens: torch.Tensor) -> torch.Tensor:
        """o^35 [C] -> the Q ensemble's logits there [M, C, 18·Z]."""
        if self.decoder is None:
            return self._forward(tokens).logits_q[:, :, -1]
        return self.model.head_q(self.decoder.hidden(tokens, self.tasks, self.cache)[:, None])[:, :, -1]
