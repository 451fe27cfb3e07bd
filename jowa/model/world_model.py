"""The world-action model: embeddings, GPT backbone, dynamics/reward/end heads and the C51 Q ensemble."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from jowa.model_files import PretrainedMixin
from jowa.config import WorldModelConfig
from jowa.games import NUM_ACTIONS, action_masks
from jowa.model.distributional import atom_support
from jowa.model.embeddings import TypedEmbedding
from jowa.model.heads import MLPHead, QHead
from jowa.model.kv_cache import AttentionCache, KVCache
from jowa.model.layout import ACTION_HEAD, OBS_HEAD, Q_HEAD, head_positions, is_action_position
from jowa.model.transformer import Transformer


@dataclass
class WorldModelOutput:
    """Head outputs for the positions of the fed chunk that each head reads."""

    output_sequence: torch.Tensor  # [B, n, d] after ln_f
    logits_observations: torch.Tensor  # [B, n_obs, obs_vocab]
    logits_rewards: torch.Tensor  # [B, n_act, 3]
    logits_ends: torch.Tensor  # [B, n_act, 2]
    logits_q: torch.Tensor  # [num_q, B, n_q, 18·51]
    logits_q_target: torch.Tensor | None  # same, from the target head (None when not requested)


def init_transformer_weights(module: nn.Module) -> None:
    """The official init: N(0, 0.02) Linear/Embedding weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


class WorldActionModel(nn.Module, PretrainedMixin):
    """JOWA's transformer over interleaved [36 observation tokens, 1 action token] blocks.

    State-dict keys equal the official ones except the `attn.mask` and `head_*.indices` buffers,
    which we derive instead of storing.
    """

    kind = "world_model"
    config_class = WorldModelConfig

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.transformer = Transformer(config)
        self.pos_emb = nn.Embedding(config.max_tokens, d)
        self.task_emb = TypedEmbedding(config.max_tasks, config.max_tasks, d)
        self.embedder = TypedEmbedding(config.act_vocab_size, config.obs_vocab_size, d)
        self.head_observations = MLPHead(d, config.obs_vocab_size)
        self.head_rewards = MLPHead(d, 3)
        self.head_ends = MLPHead(d, 2)
        q_out = NUM_ACTIONS * config.num_atoms
        self.head_q = QHead(config.num_q, d, config.q_mlp_dim, q_out, config.q_dropout)
        self.apply(init_transformer_weights)  # does not reach the ensemble's ParameterList (official quirk)
        self.head_q_target = copy.deepcopy(self.head_q).requires_grad_(False).eval()
        self.register_buffer("atoms", atom_support(config.vmin, config.vmax, config.num_atoms), persistent=False)
        self.register_buffer("action_masks", action_masks(), persistent=False)  # [60, 18]

    def train(self, mode: bool = True) -> "WorldActionModel":
        super().train(mode)
        self.head_q_target.eval()  # the target head never uses dropout
        return self

    @torch.no_grad()
    def update_target(self) -> None:
        """Hard copy of the online Q head into the target head."""
        for target, online in zip(self.head_q_target.parameters(), self.head_q.parameters()):
            target.copy_(online)

    def empty_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> KVCache:
        """A cache in `dtype`; by default the compute dtype (autocast's where it is on, else the weights'), so
        keys and values are stored as computed, not cast back at every attention."""
        device = self.pos_emb.weight.device
        if dtype is None:
            autocast = torch.is_autocast_enabled(device.type)
            dtype = torch.get_autocast_dtype(device.type) if autocast else self.pos_emb.weight.dtype
        return self.transformer.empty_cache(batch_size, device, dtype)

    def embed(self, tokens: torch.Tensor, tasks: torch.Tensor, start: int) -> torch.Tensor:
        """tokens [B, n] at absolute positions start.., tasks [B] -> [B, n, d]: token + position + task."""
        length = tokens.shape[1]
        is_action = is_action_position(self.config.tokens_per_block, start, length, tokens.device)
        positions = torch.arange(start, start + length, device=tokens.device)
        x = self.embedder(tokens, is_action) + self.pos_emb(positions)
        if self.config.use_task_embed:
            x = x + self.task_emb(tasks[:, None], is_action)
        return x

    def forward(
        self, tokens: torch.Tensor, tasks: torch.Tensor, cache: AttentionCache | None = None, with_target: bool = True,
    ) -> WorldModelOutput:
        """tokens [B, n] (continuing the cache if given), tasks [B] int64 task ids."""
        start = cache.length if cache is not None else 0
        length = tokens.shape[1]
        if start + length > self.config.max_tokens:
            raise ValueError(f"{start + length} tokens exceed the {self.config.max_tokens}-token window")
        h = self.transformer(self.embed(tokens, tasks, start), cache)  # [B, n, d]

        def at(kind: str, x: torch.Tensor) -> torch.Tensor:
            index = head_positions(kind, self.config.tokens_per_block, start, length, x.device)
            return x.index_select(1, index)

        q_input = h if self.config.q_loss_backwards_wm else h.detach()
        h_action = at(ACTION_HEAD, h)
        return WorldModelOutput(
            output_sequence=h,
            logits_observations=self.head_observations(at(OBS_HEAD, h)),
            logits_rewards=self.head_rewards(h_action),
            logits_ends=self.head_ends(h_action),
            logits_q=self.head_q(at(Q_HEAD, q_input)),
            logits_q_target=self.head_q_target(at(Q_HEAD, h.detach())) if with_target else None,
        )

    def valid_actions(self, tasks: torch.Tensor) -> torch.Tensor:
        """[B] task ids -> [B, 18] bool valid-action mask."""
        return self.action_masks.index_select(0, tasks)
