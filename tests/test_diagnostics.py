"""jowa.diagnostics: measures that a black background or a static frame cannot flatter, checked on
synthetic data whose right answers are known."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from jowa.config import WorldModelConfig
from jowa.data.batch import Batch
from jowa.diagnostics import (
    background_frame, code_usage, critic_measures, motion_order, q_spread, return_measures, returns_to_go,
    reward_measures, token_measures, tokenizer_measures, world_measures,
)
from jowa.diagnostics.held import episode_windows, held_episodes
from jowa.model.world_model import WorldActionModel, WorldModelOutput
from jowa.objective import interleave


def moving_square(steps: int, size: int = 6, level: int = 200) -> np.ndarray:
    """uint8 [steps, 84, 84]: a grey floor (rows 70..83 at 90) and a bright square moving right 3 px a step."""
    frames = np.zeros((steps, 84, 84), np.uint8)
    frames[:, 70:] = 90
    for t in range(steps):
        frames[t, 30:30 + size, 10 + 3 * t:10 + 3 * t + size] = level
    return frames


def test_background_is_the_static_part_and_drawing_it_loses_exactly_the_square() -> None:
    frames = moving_square(20)
    background = background_frame(frames)
    assert background[75, 40] == 90 and background[32, 40] == 0  # floor kept, the square (there 2 of 20 frames) not
    previous, following = frames[:-1], frames[1:]
    perfect = tokenizer_measures(previous, following, following.copy(), background)
    assert perfect["l1_all"] == perfect["l1_foreground"] == perfect["l1_changed"] == 0
    assert perfect["foreground_fraction"] == pytest.approx(36 / (84 * 84))
    # the square moves 3 px right: 3 columns appear and 3 vanish → 2·3·6 changed pixels per pair
    assert perfect["changed_fraction"] == pytest.approx(36 / (84 * 84))
    # drawing the background misses every foreground pixel by exactly 200 grey levels
    assert perfect["background_l1_foreground"] == pytest.approx(200 / 255)
    assert perfect["background_l1_all"] == pytest.approx(36 * 200 / 255 / (84 * 84))
    # the changed pixels of frame t+1: half are the square (error 200), half the background it left (error 0)
    assert perfect["background_l1_changed"] == pytest.approx(100 / 255)
    # a reconstruction that drops the square is no better than the background on the foreground, while
    # the plain all-pixel error looks tiny
    dropped = tokenizer_measures(previous, following, np.broadcast_to(background, following.shape), background)
    assert dropped["l1_foreground"] == dropped["background_l1_foreground"] and dropped["l1_all"] < 0.01


def test_small_moving_objects_are_counted_one_by_one() -> None:
    frames = np.zeros((2, 84, 84), np.uint8)
    frames[:, 70:74, 0:40] = 120  # a paddle, too large to count, still
    following = frames.copy()
    following[0, 40:42, 20:22] = 200  # a ball (4 px) appears in pair 0
    following[1, 40:42, 50:52] = 200  # and another in pair 1
    following[1, 10:12, 5:7] = 200
    frames[1, 10:12, 5:7] = 200  # a small piece that does not move: not counted
    background = np.zeros((84, 84), np.uint8)
    background[70:74, 0:40] = 120
    measures = tokenizer_measures(frames, following, following.copy(), background)
    assert measures["small_objects"] == 2 and measures["small_objects_kept"] == 1.0
    faint = following.copy()
    faint[0, 40:42, 20:22] = 90  # closer to the background (0) than to the ball (200): lost
    measures = tokenizer_measures(frames, following, faint, background)
    assert measures["small_objects_kept"] == 0.5
    assert tokenizer_measures(frames, following, np.broadcast_to(background, following.shape),
                              background)["small_objects_kept"] == 0.0
    assert math.isnan(tokenizer_measures(frames, frames, frames, background)["small_objects_kept"])


def test_motion_order_puts_the_moving_frames_first() -> None:
    still = np.zeros((3, 84, 84), np.uint8)
    moving = moving_square(4)
    frames = np.concatenate([still, moving[:2]])
    following = np.concatenate([still, moving[2:]])
    following[1, :2, :2] = 255  # 4 changed pixels; each moving pair changes 36
    assert motion_order(frames, following).tolist()[:3] == [3, 4, 1]


def test_code_usage_counts_distinct_codes_and_their_perplexity() -> None:
    one = code_usage(np.zeros((4, 36), np.int64), 512)
    assert one == {"codes_used": 1.0, "code_usage": 1 / 512, "code_perplexity": 1.0}
    even = code_usage(torch.arange(64).repeat(3), 128)
    assert even["codes_used"] == 64 and even["code_usage"] == 0.5 and even["code_perplexity"] == pytest.approx(64)


def static_tokens(batch: int = 2, steps: int = 4, changed: bool = False) -> torch.Tensor:
    tokens = torch.arange(36).repeat(batch, steps, 1)  # [B, T, 36], every frame the same
    if changed:
        tokens[:, 2:, :9] += 100  # a quarter of the tokens change once, between frames 1 and 2
    return tokens


def copy_predictions(tokens: torch.Tensor) -> torch.Tensor:
    """[B, T, K] → predictions equal to the previous frame's tokens (frame 0: anything)."""
    return torch.cat([tokens[:, :1], tokens[:, :-1]], dim=1)


def test_tokens_that_never_change_make_copying_perfect_and_the_changed_measures_empty() -> None:
    tokens = static_tokens()
    mask = torch.ones(2, 4, dtype=torch.bool)
    m = token_measures(copy_predictions(tokens), tokens, mask)
    assert m["changed_token_fraction"] == 0 and m["token_accuracy"] == m["copy_token_accuracy"] == 1
    assert math.isnan(m["changed_token_accuracy"]) and math.isnan(m["copy_changed_token_accuracy"])


def test_a_model_forced_to_copy_scores_the_copy_baseline(tiny_model: WorldActionModel) -> None:
    tokens = static_tokens(changed=True)
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    batch = make_batch(tokens, mask)
    copied = copy_predictions(tokens).flatten(1)  # [B, T·K]: the token each position should predict
    logits = torch.nn.functional.one_hot(torch.cat([copied[:, 1:], copied[:, :1]], 1), 512).float()
    outputs = WorldModelOutput(torch.zeros(0), logits, torch.zeros(2, 4, 3), torch.zeros(2, 2), torch.zeros(0), None)
    m = world_measures(tiny_model, batch, outputs)
    assert m["token_accuracy"] == m["copy_token_accuracy"] == pytest.approx(1 - 9 / 36 * 2 / 5)  # 5 real t ≥ 1
    assert m["changed_token_fraction"] == pytest.approx(9 / 36 * 2 / 5)
    assert m["changed_token_accuracy"] == m["copy_changed_token_accuracy"] == 0
    # the objective's cross-entropy on the same positions: ~30 nats on each wrong one (a logit of 30 elsewhere)
    sharp = world_measures(tiny_model, batch, dataclasses.replace(outputs, logits_observations=30 * logits))
    assert sharp["token_cross_entropy"] == pytest.approx(30 * 9 / 36 * 2 / 5, rel=1e-6)
    uniform = world_measures(tiny_model, batch, dataclasses.replace(outputs, logits_observations=torch.zeros_like(logits)))
    assert uniform["token_cross_entropy"] == pytest.approx(math.log(512))


def test_reward_accuracy_on_rewarded_steps_beside_the_majority_class() -> None:
    rewards = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, -1.0, 0.0, 5.0]])
    mask = torch.tensor([[True] * 4, [True, True, True, False]])  # the 5.0 is padding
    never = reward_measures(torch.ones(2, 4, dtype=torch.long), rewards, mask)
    assert never["rewarded_fraction"] == pytest.approx(2 / 7)
    assert never["reward_accuracy"] == never["majority_reward_accuracy"] == pytest.approx(5 / 7)
    assert never["rewarded_accuracy"] == never["majority_rewarded_accuracy"] == 0
    right = reward_measures((rewards.sign() + 1).long(), rewards, mask)
    assert right["rewarded_accuracy"] == 1 and right["reward_accuracy"] == 1


def make_batch(tokens: torch.Tensor, mask: torch.Tensor, rewards: torch.Tensor | None = None,
               actions: torch.Tensor | None = None) -> Batch:
    b, t = mask.shape
    tokens = tokens[:b]
    ends = torch.zeros(b, t, dtype=torch.long)
    actions = torch.ones(b, t, dtype=torch.long) if actions is None else actions
    return Batch(observations=tokens * mask[..., None], actions=actions * mask,
                 rewards=torch.zeros(b, t) if rewards is None else rewards, ends=ends, mask_padding=mask,
                 tasks=torch.tensor([13, 39][:b]))  # Breakout (4 valid actions), Pong (6)


@pytest.fixture
def tiny_model() -> WorldActionModel:
    torch.manual_seed(0)
    config = WorldModelConfig(obs_vocab_size=512, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
    return WorldActionModel(config)


def test_uniform_q_gives_the_uniform_td_loss_and_no_spread(tiny_model: WorldActionModel) -> None:
    with torch.no_grad():
        for p in tiny_model.head_q.parameters():
            p.zero_()
    tiny_model.update_target()
    tiny_model.train()
    rng_before = torch.get_rng_state()
    batch = make_batch(static_tokens(changed=True), torch.ones(2, 4, dtype=torch.bool),
                       rewards=torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0]]))
    m = critic_measures(tiny_model, batch, gamma=0.99)
    assert m["uniform_td_loss"] == pytest.approx(math.log(51))
    assert m["td_loss"] == pytest.approx(math.log(51), abs=1e-5) and m["q_spread"] == 0
    # The bootstrapped target r + γz of a uniform distribution is itself nearly uniform: one copy narrows it by γ.
    assert 0.98 * math.log(51) < m["td_target_entropy"] < m["td_loss"]
    assert tiny_model.training and tiny_model.transformer.training and not tiny_model.head_q_target.training
    assert torch.equal(torch.get_rng_state(), rng_before)  # eval mode: no dropout draws


def test_q_spread_reads_only_the_valid_actions() -> None:
    q = torch.zeros(1, 2, 18)
    q[..., 17] = 100.0  # an invalid action's Q must not count
    q[0, 0, 1] = 2.0
    valid = torch.zeros(1, 18, dtype=torch.bool)
    valid[0, :4] = True
    assert q_spread(q, valid, torch.tensor([[True, True]])) == pytest.approx(1.0)  # (2 + 0) / 2
    assert q_spread(q, valid, torch.tensor([[False, True]])) == 0


def test_returns_to_go_and_q_against_them() -> None:
    g = returns_to_go(np.array([0.0, 3.0, 0.0, -1.0]), gamma=0.5)  # 3 is clipped to 1
    assert g.tolist() == pytest.approx([0.5 - 0.125, 1 - 0.25, -0.5, -1.0])
    same = return_measures(g, g)
    assert same["q_return_correlation"] == pytest.approx(1) and same["q_return_mean_error"] == 0
    shifted = return_measures(g + 2, g)
    assert shifted["q_return_correlation"] == pytest.approx(1) and shifted["q_return_mean_error"] == pytest.approx(2)
    assert math.isnan(return_measures(np.zeros(4), g)["q_return_correlation"])  # constant Q says nothing


def write_shards(directory: Path) -> None:
    from jowa.data.shards import ShardWriter, write_index

    rng = np.random.default_rng(0)
    for game, lengths in (("Breakout", (5, 30, 11)), ("Pong", (9, 4))):
        writer = ShardWriter(directory, game, "sha256:test")
        for i, n in enumerate(lengths):
            rewards = np.zeros(n, np.float32)
            rewards[-1] = 1.0
            terminals = np.zeros(n, np.uint8)
            terminals[-1] = i != 1 or game == "Pong"  # Breakout's 30-step episode is cut, not ended
            writer.write(f"{game}/{i}", game, rng.integers(0, 512, (n, 36)), rng.integers(0, 4, n), rewards,
                         terminals)
        writer.close()
    write_index(directory)


def test_held_batch_is_episodes_that_end_in_windows_with_their_returns(tmp_path: Path) -> None:
    from jowa.data.shards import resolve_shards

    write_shards(tmp_path)
    episodes = held_episodes(resolve_shards(tmp_path), max_steps=40)  # 20 steps per game
    assert [(h.episode.game, h.episode.steps, h.start) for h in episodes] == [
        ("Breakout", 5, 0), ("Breakout", 11, 0), ("Pong", 9, 0), ("Pong", 4, 0)]
    # 8 per game, the newest first: Breakout's last episode only fits as its tail; Pong's last, then a tail
    tails = held_episodes(resolve_shards(tmp_path), max_steps=16)
    assert [(h.episode.game, h.episode.steps, h.start) for h in tails] == [
        ("Breakout", 11, 3), ("Pong", 9, 5), ("Pong", 4, 0)]
    assert [h.episode.id for h in tails] == ["Breakout/2", "Pong/0", "Pong/1"]  # not the log's first episodes
    tail_batch, tail_returns = episode_windows(tails, length=8, gamma=0.5)
    assert tail_batch.mask_padding.sum(1).tolist() == [8, 4, 4] and tail_returns[1, :4].tolist() == [0.125, 0.25, 0.5, 1.0]
    batch, returns = episode_windows(episodes, length=8, gamma=0.5)
    assert batch.mask_padding.shape == (1 + 2 + 2 + 1, 8) and int(batch.mask_padding.sum()) == 5 + 11 + 9 + 4
    assert returns[0, :5].tolist() == pytest.approx([0.0625, 0.125, 0.25, 0.5, 1.0])
    assert returns[2, 2] == 1.0 and returns[1, 0] == pytest.approx(0.5 ** 10)  # 11-step episode across windows
    assert int(batch.ends.sum()) == 4 and returns[~batch.mask_padding].abs().sum() == 0


def test_verdicts_follow_the_numbers() -> None:
    from jowa.diagnostics.verdicts import critic_verdict, tokenizer_verdict, world_verdict

    lost = {"l1_foreground": 0.31, "background_l1_foreground": 0.30, "l1_changed": 0.05, "background_l1_changed": 0.4}
    text = tokenizer_verdict(lost)
    assert "foreground error 0.310 is worse than drawing the background (0.300): the objects are lost" in text
    assert "0.290 is no better than drawing the background (0.300)" in tokenizer_verdict({**lost, "l1_foreground": 0.29})
    assert "moving" not in text and "well below drawing the background (0.400)" in text
    assert "0.500 is worse than drawing the background (0.400): the motion is lost" in tokenizer_verdict(
        {**lost, "l1_changed": 0.5})
    assert "small moving" not in text  # no objects counted: nothing said
    assert "keeps 9 % of the 414 small moving objects (balls, shots): most are lost" in tokenizer_verdict(
        {**lost, "small_objects": 414.0, "small_objects_kept": 0.09})
    assert tokenizer_verdict({**lost, "small_objects": 10.0, "small_objects_kept": 0.6}).endswith(
        "keeps 60 % of the 10 small moving objects (balls, shots).")
    static = {"changed_token_fraction": 0.1, "changed_token_accuracy": 0.0, "token_accuracy": 0.85,
              "copy_token_accuracy": 0.9, "rewarded_fraction": 0.02, "rewarded_accuracy": 0.0,
              "majority_rewarded_accuracy": 0.0}
    text = world_verdict(static)
    assert "no better than copying the last frame (90 %)" in text and "static part of the screen" in text
    assert "learnt nothing about rewards" in text
    flat = {"td_loss": 3.92, "uniform_td_loss": math.log(51), "q_spread": 0.0, "q_return_correlation": math.nan,
            "q_return_mean_error": 0.1, "return_mean": 0.2}
    assert "at that of a uniform return distribution" in critic_verdict(flat)
    assert "no return is learnt" in critic_verdict({**flat, "td_target_entropy": 1.0})
    assert "target is still near-uniform" in critic_verdict({**flat, "td_target_entropy": 3.9})
    assert "0.500 above its target's own entropy" in critic_verdict({**flat, "td_loss": 1.5, "td_target_entropy": 1.0})
    good = {**flat, "td_loss": 1.0, "q_return_correlation": 0.8}
    assert "below a uniform" in critic_verdict(good) and "Q tracks the observed" in critic_verdict(good)
    reads = {**good, "greedy_matches_data": 0.91, "most_common_action_share": 0.64, "greedy_top_action_share": 0.6}
    assert ("greedy action is the data's on 91 % of the steps, above the 64 % of always playing the data's most "
            "common action, and it plays one action on 60 % of them") in critic_verdict(reads)
    copies = {**reads, "data_repeats_previous": 0.8, "greedy_follows_swap": 0.7, "greedy_kept_under_swap": 0.2}
    assert ("the data repeat their previous action on 80 % of the steps, and with the context's actions swapped "
            "greedy names the new previous action on 70 % and keeps its own choice on 20 %: it copies the previous "
            "action more than it reads the screen") in critic_verdict(copies)
    screen = {**copies, "greedy_follows_swap": 0.1, "greedy_kept_under_swap": 0.9}
    assert "it reads the screen more than it copies the previous action" in critic_verdict(screen)
    assert "swapped" not in critic_verdict(reads)  # no copy measures, no clause
    blind = {**reads, "greedy_matches_data": 0.5, "greedy_top_action_share": 1.0}
    assert "on 50 % of the steps, no better than the 64 %" in critic_verdict(blind)
    assert "greedy action" not in critic_verdict(good)  # not measured: not said


def test_tokenizer_hook_logs_the_measures_without_touching_rng_or_mode() -> None:
    from jowa.config import TokenizerConfig
    from jowa.tokenizer import Tokenizer
    from jowa.training.frames import GameSample
    from jowa.training.tokenizer_stage import TokenizerMeasures, motion_frames

    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=16, embed_dim=8, z_channels=8, ch=8, num_res_blocks=1,
                                          attn_resolutions=(), lpips_net="none")).train()
    frames = moving_square(9)
    still = np.broadcast_to(frames[:1], (4, 84, 84))
    samples = {"Pong": GameSample(np.stack([frames[:-1], frames[1:]], 1), background_frame(frames)),
               "Breakout": GameSample(np.stack([still, still], 1), still[0].copy())}
    logged = []

    class Logger:
        def scalars(self, step: int, values: dict) -> None:
            logged.append((step, values))

    hook = TokenizerMeasures(tokenizer, samples, every=2, last=3)
    hook.attach(Logger())
    rng = torch.get_rng_state()
    for step in (1, 2, 3):
        hook.after_step(step)
    assert [s for s, _ in logged] == [2, 3] and torch.equal(torch.get_rng_state(), rng) and tokenizer.training
    values = logged[0][1]
    assert {"diag/l1_foreground", "diag/background_l1_changed", "diag/code_perplexity"} <= set(values)
    assert values["diag/changed_fraction"] == pytest.approx(36 * 8 / (12 * 84 * 84))  # still pairs change nothing
    assert 1 <= values["diag/codes_used"] <= 16
    assert motion_frames(samples, 4).shape == (4, 84, 84)
    assert (motion_frames(samples, 4)[:2] > 150).any()  # Pong's moving pairs first; Breakout's still ones after


def test_world_hook_measures_a_fixed_batch_of_held_episodes(tmp_path: Path, tiny_model: WorldActionModel) -> None:
    from jowa.data.shards import resolve_shards
    from jowa.training.world_stage import WorldMeasures

    write_shards(tmp_path)
    hook = WorldMeasures(tiny_model, resolve_shards(tmp_path), segment_length=8, gamma=0.99, every=5, last=7,
                         max_steps=40)
    tiny_model.train()
    rng = torch.get_rng_state()
    hook.after_step(3)
    assert not hook.logged
    hook.after_step(5)
    hook.after_step(7)
    assert list(hook.logged) == [5, 7] and hook.logged[5] == hook.logged[7]  # same weights, same fixed batch
    m = hook.logged[5]
    assert m["uniform_td_loss"] == pytest.approx(math.log(51)) and m["rewarded_fraction"] == pytest.approx(4 / 29)
    assert -1 <= m["q_return_correlation"] <= 1 and m["q_spread"] >= 0
    assert tiny_model.training and torch.equal(torch.get_rng_state(), rng)


def test_each_bootstrap_reads_the_target_head_at_its_own_choice_of_action() -> None:
    from jowa.losses import td_rows, td_target

    support = torch.linspace(-10, 30, 51)
    # one member, one row of two steps, two valid actions of 18; logits [M, B, T, A·Z]
    target = torch.zeros(1, 1, 2, 18, 51)
    target[..., 0, -1] = 20.0  # the target head: action 0 is worth ~30
    target[..., 1, 0] = 20.0   # action 1 is worth ~−10
    online = torch.zeros(1, 1, 2, 18, 51)
    online[..., 1, -1] = 20.0  # the online head prefers action 1
    valid = torch.zeros(1, 18, dtype=torch.bool)
    valid[0, :2] = True
    rows = td_rows(torch.ones(1, 2, dtype=torch.bool), torch.zeros(1, 2))
    rewards = torch.zeros(1, 2)
    data_actions = torch.tensor([[5, 1]])
    official = td_target(target.flatten(-2), rewards, rows, valid, support, 0.99)
    double = td_target(target.flatten(-2), rewards, rows, valid, support, 0.99, "double", online.flatten(-2))
    data = td_target(target.flatten(-2), rewards, rows, valid, support, 0.99, "data", actions=data_actions)
    assert official.best_actions.tolist() == [[0, 0]] and double.best_actions.tolist() == [[1, 1]]
    assert data.best_actions.tolist() == [[5, 1]]  # the logged actions, whatever the heads say
    # the value still comes from the target head: a* = 1 bootstraps its ~−10, projected at γ·(−10) ≈ −9.9
    assert float((official.projected * support).sum(-1)) == pytest.approx(0.99 * 30, abs=0.05)
    assert float((double.projected * support).sum(-1)) == pytest.approx(0.99 * -10, abs=0.05)
    assert float((data.projected * support).sum(-1)) == pytest.approx(0.99 * -10, abs=0.05)  # step 1 took action 1
    with pytest.raises(ValueError, match="bootstrap"):
        td_target(target.flatten(-2), rewards, rows, valid, support, 0.99, "mean")


def test_action_agreement_counts_the_valid_argmax_against_the_data() -> None:
    from jowa.diagnostics.critic import action_agreement

    q = torch.zeros(1, 4, 18)
    q[..., 17] = 9.0          # invalid: never the greedy action
    q[0, :3, 2] = 1.0         # greedy picks 2 on the first three steps, 0 (first of the ties) on the last
    valid = torch.zeros(1, 18, dtype=torch.bool)
    valid[0, :4] = True
    batch = make_batch(static_tokens(changed=True), torch.tensor([[True, True, True, False]]),
                       actions=torch.tensor([[2, 2, 1, 0]]))
    m = action_agreement(q, valid, batch)
    assert m["greedy_matches_data"] == pytest.approx(2 / 3) and m["most_common_action_share"] == pytest.approx(2 / 3)
    assert m["greedy_top_action_share"] == 1  # action 2 on every real step: one action whatever the screen


def test_repeat_share_counts_repeats_within_episodes_only() -> None:
    from jowa.diagnostics.behaviour_actions import repeat_share

    # 2 repeats of 3 pairs, then 0 of 1; the boundary between the episodes (2 → 2) is not a pair
    assert repeat_share([np.array([1, 1, 1, 2]), np.array([2, 0]), np.array([5])]) == pytest.approx(2 / 4)
    assert math.isnan(repeat_share([np.array([3])]))


def test_behaviour_action_measures_tell_a_decisive_policy_from_a_uniform_one() -> None:
    from jowa.diagnostics.behaviour_actions import action_measures

    to_full = np.array([0, 1, 3, 4])  # a 4-action game's minimal set in the full set
    logged = np.array([1, 1, 3, 4, 1, 0])
    decisive = np.eye(4)[[1, 1, 2, 3, 1, 0]] * 0.97 + 0.01  # greedy = the logged action at every step
    m = action_measures(decisive, logged, to_full)
    assert m["greedy_equals_logged"] == 1.0 and m["most_common_action_share"] == 0.5
    assert m["mean_max_probability"] == pytest.approx(0.98) and m["uniform_probability"] == 0.25
    assert m["mean_entropy_over_uniform"] < 0.2
    uniform = np.full((6, 4), 0.25)
    m = action_measures(uniform, logged, to_full)
    assert m["greedy_equals_logged"] == pytest.approx(1 / 6)  # argmax of ties: minimal action 0 = full 0
    assert m["mean_entropy_over_uniform"] == pytest.approx(1.0)


class _OneActionCritic(torch.nn.Module):
    """Q = 1 for one action a step and 0 for the rest: the context's previous action token (`copies`), or the
    valid action the frame's first token names (a critic that reads the screen)."""

    def __init__(self, copies: bool) -> None:
        super().__init__()
        from jowa.games import action_masks

        self.copies = copies
        self.register_buffer("atoms", torch.tensor([0.0, 1.0]))
        self.register_buffer("masks", action_masks())

    def valid_actions(self, tasks: torch.Tensor) -> torch.Tensor:
        return self.masks.index_select(0, tasks)

    def forward(self, tokens: torch.Tensor, tasks: torch.Tensor, with_target: bool = False):
        from types import SimpleNamespace

        blocks = tokens.unflatten(1, (-1, 37))  # [B, T, 36 observation tokens + 1 action]
        if self.copies:
            choice = torch.cat([blocks[:, :1, 36], blocks[:, :-1, 36]], dim=1)
        else:
            valid = [torch.nonzero(row).squeeze(-1) for row in self.valid_actions(tasks)]
            choice = torch.stack([v[blocks[i, :, 0] % len(v)] for i, v in enumerate(valid)])
        one = torch.nn.functional.one_hot(choice, 18).float()
        probabilities = torch.stack([1 - one, one], dim=-1).clamp_min(1e-6)  # [B, T, 18, 2 atoms]
        return SimpleNamespace(logits_q=probabilities.log().flatten(-2)[None])


@pytest.mark.parametrize("copies", [True, False])
def test_copy_measures_tell_a_critic_that_copies_the_previous_action_from_one_that_reads_the_screen(copies) -> None:
    from jowa.diagnostics.critic import copy_measures
    from jowa.model.distributional import q_values

    tokens = static_tokens()
    tokens[:, :, 0] = torch.tensor([[0, 1, 2, 3], [4, 3, 1, 0]])  # the screen names a different action each step
    batch = make_batch(tokens, torch.ones(2, 4, dtype=torch.bool), actions=torch.tensor([[1, 1, 1, 3], [0, 0, 3, 3]]))
    critic = _OneActionCritic(copies)
    q = q_values(critic(interleave(batch.observations, batch.actions), batch.tasks).logits_q, critic.atoms)
    m = copy_measures(critic, batch, q)
    assert m["data_repeats_previous"] == pytest.approx(4 / 6)  # two repeats in each row's three steps after the first
    if copies:
        assert m["greedy_matches_previous"] == 1 and m["greedy_follows_swap"] == 1
        assert m["greedy_kept_under_swap"] == 0  # every swapped action differs from the one it replaced
    else:
        assert m["greedy_kept_under_swap"] == 1 and m["greedy_follows_swap"] < 1
        # Breakout's greedy names FIRE, RIGHT, LEFT after 1, 1, 1; Pong's RIGHT, FIRE, NOOP after 0, 0, 3
        assert m["greedy_matches_previous"] == pytest.approx(1 / 6)


def test_swapped_actions_are_other_valid_actions_of_the_game() -> None:
    from jowa.diagnostics.critic import swapped_actions
    from jowa.games import action_masks

    valid = action_masks()[torch.tensor([13, 39])]
    actions = torch.tensor([[0, 1, 3, 4] * 25, [0, 1, 3, 4, 11, 12] * 16 + [0] * 4])
    swapped = swapped_actions(actions, valid, torch.Generator().manual_seed(0))
    assert (swapped != actions).all()
    assert valid.gather(1, swapped).all()
    assert set(swapped[0].tolist()) == {0, 1, 3, 4}  # every other valid action drawn
