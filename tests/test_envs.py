"""Real ALE runs through the env factory and the vector form: preprocessing, actions, seeds, episode ends."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
import pytest

from jowa.envs import FullActionSpace, RandomPolicy, make_env, make_vector_env, valid_action_masks
from jowa.envs.atari import ale_minimal_to_full
from jowa.games import NUM_ACTIONS, full_to_minimal, minimal_to_full, task_id


@pytest.mark.parametrize("game", ["Pong", "Breakout", "MsPacman", "Assault", "Seaquest", "Phoenix", "TimePilot"])
def test_ale_minimal_action_set_matches_catalogue(game):
    env = make_env(game)
    assert ale_minimal_to_full(env) == minimal_to_full(game)
    env.close()


@pytest.mark.parametrize("game", ["Pong", "MsPacman", "Phoenix"])
def test_full_action_interface_round_trips_and_maps_invalid_to_noop(game):
    env = make_env(game)
    wrapper = env.env
    assert isinstance(wrapper, FullActionSpace) and env.action_space == gym.spaces.Discrete(NUM_ACTIONS)
    table = full_to_minimal(game)
    valid = minimal_to_full(game)
    for minimal, full in enumerate(valid):
        assert wrapper.action(full) == minimal == table[full]
    invalid = [a for a in range(NUM_ACTIONS) if a not in valid]
    assert invalid and all(wrapper.action(a) == 0 for a in invalid)  # official: non-members → NOOP
    with pytest.raises(ValueError, match="not in the minimal set"):
        FullActionSpace(env.env.env, game, strict=True).action(invalid[0])
    with pytest.raises(ValueError, match="0..17"):
        wrapper.action(18)
    env.close()


def test_preprocessing_is_dopamines_frame_pipeline():
    """Factory observation == max of the last 2 of 4 grayscale frames, INTER_AREA-resized to 84×84."""
    env = make_env("Breakout", sticky=0.0)
    raw = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0, obs_type="grayscale")
    obs, _ = env.reset(seed=3)
    screen, _ = raw.reset(seed=3)
    expected = cv2.resize(np.maximum(screen, 0), (84, 84), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(obs, expected)
    to_minimal = full_to_minimal("Breakout")
    actions = np.random.default_rng(0).choice(minimal_to_full("Breakout"), 60)
    for full in actions:
        obs, reward, terminated, truncated, _ = env.step(int(full))
        frames, total = [], 0.0
        for _ in range(4):
            screen, r, *_ = raw.step(int(to_minimal[full]))
            frames.append(screen)
            total += r
        expected = cv2.resize(np.maximum(frames[-2], frames[-1]), (84, 84), interpolation=cv2.INTER_AREA)
        assert obs.dtype == np.uint8 and obs.shape == (84, 84)
        np.testing.assert_array_equal(obs, expected)
        assert reward == total
    env.close()
    raw.close()


def test_episode_ends_at_game_over_with_raw_return():
    env = make_env("Breakout")
    env.reset(seed=0)
    policy, masks = RandomPolicy(0), valid_action_masks(["Breakout"])
    total, steps = 0.0, 0
    while True:
        _, reward, terminated, truncated, info = env.step(int(policy(None, None, masks, None)[0]))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
        assert steps < 2000
    assert terminated and not truncated  # game over (all 5 lives), not a life loss
    assert steps > 100 and info["episode"]["r"] == total and info["episode"]["l"] == steps
    env.close()


def test_rewards_are_unclipped_and_step_cap_truncates():
    env = make_env("Skiing", max_episode_steps=30)  # Skiing pays a negative time reward every frame
    env.reset(seed=0)
    rewards, truncated = [], False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(0)
        rewards.append(reward)
        assert not terminated
    assert len(rewards) == 30 and min(rewards) < -1.0
    assert info["episode"]["r"] == pytest.approx(sum(rewards))
    env.close()


def test_vector_env_steps_two_games_deterministically_for_a_seed():
    games = ["Pong", "Breakout"]
    masks = valid_action_masks(games)
    np.testing.assert_array_equal(masks[0], np.isin(np.arange(18), minimal_to_full("Pong")))
    tasks = np.array([task_id(g) for g in games])

    def rollout(steps: int):
        envs = make_vector_env(games, sticky=0.25)
        policy = RandomPolicy(seed=1)
        obs, _ = envs.reset(seed=11)
        frames, ends = [obs.copy()], 0
        starts = np.ones(len(games), dtype=bool)
        for _ in range(steps):
            actions = policy(obs, tasks, masks, starts)
            assert masks[np.arange(len(games)), actions].all()
            obs, rewards, terminated, truncated, info = envs.step(actions)
            starts = terminated | truncated
            if starts.any():
                ends += int(starts.sum())
                assert "final_obs" in info  # SAME_STEP autoreset: obs is already the next episode's first
            frames.append(obs.copy())
        envs.close()
        return np.stack(frames), ends

    frames, ends = rollout(250)
    assert frames.shape == (251, 2, 84, 84) and frames.dtype == np.uint8
    assert ends >= 1  # a random Breakout game is over in ~200 steps
    again, _ = rollout(250)
    np.testing.assert_array_equal(frames, again)
    assert (frames[1:, 0] != frames[:-1, 0]).any(axis=(1, 2)).mean() > 0.5  # Pong frames do change
