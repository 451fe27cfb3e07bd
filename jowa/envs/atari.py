"""One Atari game as a gymnasium env with the Dopamine/JOWA preprocessing and the full 18-action interface.

Preprocessing is gymnasium's `AtariPreprocessing` over ale-py's `ALE/{Game}-v5` with frame-skip 1 in the
base env: 84×84 grayscale with INTER_AREA, frame-skip 4 with a max-pool of the last two frames, terminal =
game over (no life-loss terminals), no no-op starts. Sticky actions are ALE's per-frame
`repeat_action_probability`: 0.25 for data collection and the standard protocol, 0 for the paper's
evaluation protocol (docs/official_jowa.md §1.8, §8.1). Rewards are the raw, unclipped game rewards; the episode return and
length arrive in `info["episode"]` at the end of an episode (gymnasium's `RecordEpisodeStatistics`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, RecordEpisodeStatistics

from jowa.games import NUM_ACTIONS, check_game, full_to_minimal, minimal_to_full

DOPAMINE_MAX_EPISODE_STEPS = 27_000  # agent steps (108k frames): DQN-Replay's cap, ALE v5's default
FRAME_SKIP = 4


class FullActionSpace(gym.ActionWrapper):
    """Takes a full-set action 0..17 and steps the game with its minimal-set index.

    A full action outside the game's minimal set becomes NOOP (minimal index 0), as the official code
    does (docs/official_jowa.md §1.6); `strict=True` raises instead.
    """

    def __init__(self, env: gym.Env, game: str, strict: bool = False):
        super().__init__(env)
        self.game = check_game(game)
        self.strict = strict
        table = full_to_minimal(game)  # [18] minimal index, -1 for non-members
        self._valid = table >= 0
        self._to_minimal = np.where(self._valid, table, 0)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)

    def action(self, action: int) -> int:
        action = int(action)
        if not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"{self.game}: full-set action must be in 0..{NUM_ACTIONS - 1}, got {action}")
        if self.strict and not self._valid[action]:
            valid = minimal_to_full(self.game)
            raise ValueError(f"{self.game}: full action {action} is not in the minimal set {valid}")
        return int(self._to_minimal[action])


def make_env(
    game: str,
    *,
    sticky: float = 0.25,
    max_episode_steps: int | None = DOPAMINE_MAX_EPISODE_STEPS,
    strict_actions: bool = False,
    render_mode: str | None = None,
) -> gym.Env:
    """The game with Dopamine preprocessing; observations u8[84, 84], actions 0..17 (full set).

    `max_episode_steps` counts agent steps (4 frames each); reaching it ends the episode with
    `truncated=True`. Seed it with `env.reset(seed=...)`.
    """
    import ale_py  # registers the ALE/ namespace; imported here so `jowa.envs` loads without ROM lookups

    gym.register_envs(ale_py)
    if not 0.0 <= sticky <= 1.0:
        raise ValueError(f"sticky must be a probability, got {sticky}")
    max_frames = None if max_episode_steps is None else FRAME_SKIP * int(max_episode_steps)
    base = gym.make(
        f"ALE/{check_game(game)}-v5",
        frameskip=1,  # AtariPreprocessing does the skipping (and max-pooling) itself
        repeat_action_probability=sticky,
        full_action_space=False,  # the game's minimal set, as DQN-Replay stores; FullActionSpace maps 18 → it
        max_num_frames_per_episode=max_frames,
        render_mode=render_mode,
        disable_env_checker=True,
    )
    env = AtariPreprocessing(
        base,
        noop_max=0,
        frame_skip=FRAME_SKIP,
        screen_size=84,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        grayscale_newaxis=False,
        scale_obs=False,
    )
    env = FullActionSpace(env, game, strict=strict_actions)
    return RecordEpisodeStatistics(env)


def ale_minimal_to_full(env: gym.Env) -> tuple[int, ...]:
    """Full-set index of each of ALE's minimal actions for the env's ROM (to check against jowa.games)."""
    return tuple(int(a.value) for a in env.unwrapped.ale.getMinimalActionSet())
