"""Measures that a black background or a static frame cannot flatter, each beside a trivial baseline.

- `pixels`: tokenizer reconstruction error on foreground and moving pixels vs drawing the background.
- `codes`: codebook usage (distinct codes, perplexity).
- `world`: next-frame token accuracy on changed tokens vs copying the last frame; reward-sign accuracy
  on rewarded steps vs the majority class.
- `critic`: TD loss vs ln(atoms), Q spread over valid actions, Q vs observed returns-to-go.
- `held`: the fixed batch of episodes that end (whole or their tails) the world/critic measures run on.
"""

from jowa.diagnostics.codes import code_usage
from jowa.diagnostics.critic import critic_measures, q_spread, return_measures, returns_to_go, uniform_td_loss
from jowa.diagnostics.pixels import (
    CHANGE_LEVELS, FOREGROUND_LEVELS, background_frame, motion_order, tokenizer_measures,
)
from jowa.diagnostics.world import eval_forward, next_token_predictions, reward_measures, token_measures, world_measures

__all__ = [
    "CHANGE_LEVELS", "FOREGROUND_LEVELS", "background_frame", "code_usage", "critic_measures", "eval_forward",
    "motion_order", "next_token_predictions", "q_spread", "return_measures", "returns_to_go", "reward_measures",
    "token_measures", "tokenizer_measures", "uniform_td_loss", "world_measures",
]
