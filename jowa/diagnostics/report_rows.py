"""Per-game rows of the tokenizer and world-model measures, as the demo's and the study's reports tabulate them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jowa.config import CriticLossConfig

SCAN_FRAMES = 20_000  # replay frames read per game for the pair sample and the background
HELD_STEPS = 512  # steps per game (episodes that end, whole or their tails) for the world-model measures


def frame_samples(replay: Path, games: Sequence[str], seed: int) -> dict[str, Any]:
    """Each game's frame sample from a replay root (SCAN_FRAMES frames read)."""
    from jowa.training.frames import load_frame_pool

    return {g: load_frame_pool(replay, [g], 1, SCAN_FRAMES, seed).samples for g in games}


def tokenizer_rows(runs: Sequence[tuple[str, Path, Sequence[str]]], samples: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (label, tokenizer directory, games) and game: the tokenizer's measures on that game's sample."""
    from jowa.tokenizer import Tokenizer
    from jowa.training.tokenizer_stage import diagnostic_sample, measure_tokenizer

    rows = []
    for label, directory, games in runs:
        tokenizer = Tokenizer.from_pretrained(directory).eval()
        for game in games:
            pairs, backgrounds = diagnostic_sample(samples[game])
            rows.append({"game": game, "tokenizer": label, **measure_tokenizer(tokenizer, pairs, backgrounds)})
    return rows


def world_rows(model_dir: Path, tokens: Path, games: Sequence[str], extra: dict[str, Any] | None = None,
               planning: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The world-action model's and critic's measures on HELD_STEPS steps of episodes that end of each game
    (a game without such episodes has no row); `extra` fields follow the game in each row. `planning`
    (context blocks, K) adds the one-step beam search's measures on the same windows (jowa.diagnostics.planning)."""
    from jowa.data.shards import resolve_shards
    from jowa.diagnostics import critic_measures, world_measures
    from jowa.diagnostics.held import episode_windows, held_episodes
    from jowa.diagnostics.planning import planning_measures
    from jowa.diagnostics.world import eval_forward
    from jowa.model.world_model import WorldActionModel

    model = WorldActionModel.from_pretrained(model_dir).eval()
    shards = resolve_shards(tokens)
    gamma = CriticLossConfig().gamma
    rows = []
    for game in games:
        episodes = held_episodes([shard for shard in shards if game in shard.games], HELD_STEPS)
        if not episodes:
            continue
        batch, returns = episode_windows(episodes, model.config.max_blocks, gamma)
        outputs = eval_forward(model, batch)
        rows.append({"game": game, **(extra or {}), "episodes": len(episodes), "steps": int(batch.mask_padding.sum()),
                     **world_measures(model, batch, outputs), **critic_measures(model, batch, gamma, returns, outputs)})
        if planning is not None:
            rows[-1].update(planning_measures(model, batch, planning[0], planning[1], gamma))
    return rows
