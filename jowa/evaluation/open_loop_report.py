"""The reports' open-loop section: real segments, the model's imagination under their actions, per-horizon accuracy.

For each game a few real segments are played in the emulator (uniform random valid actions: cheap, and
the same for every model); the model sees the first `context` frames and imagines the rest under the
real actions. One PNG per game: truth / model / |error| rows per segment (context frames in the model row
are the tokenizer's reconstructions, right of the white line imagined), beside the accuracy per horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jowa.diagnostics.open_loop import OpenLoop, horizon_measures, imagine_open_loop
from jowa.games import action_masks, task_id

TITLE = "Open-loop imagination"


def real_segments(game: str, count: int, length: int, sticky: float, seed: int, max_steps: int | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` segments of `length` consecutive steps of one game under random valid actions, none across
    an episode's end: frames u8 [count, length, 84, 84], actions [count, length], rewards [count, length].
    The segments with the most pixel motion are taken (a static screen would flatter the model)."""
    from jowa.envs.atari import make_env

    max_steps = max_steps or 8 * count * length  # room to choose among, still well under a second
    env = make_env(game, sticky=sticky, max_episode_steps=None)
    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(action_masks()[task_id(game)].numpy())
    frames, actions, rewards, episode = [], [], [], []
    obs, _ = env.reset(seed=seed)
    number = 0
    for _ in range(max_steps):
        action = int(rng.choice(valid))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        frames.append(obs), actions.append(action), rewards.append(float(reward)), episode.append(number)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            number += 1
    env.close()
    frames_a, episode_a = np.stack(frames), np.array(episode)
    starts = [s for s in range(0, len(frames) - length + 1) if episode_a[s] == episode_a[s + length - 1]]
    motion = {s: float(np.abs(np.diff(frames_a[s:s + length].astype(np.int16), axis=0)).mean()) for s in starts}
    chosen: list[int] = []
    for s in sorted(starts, key=lambda s: -motion[s]):  # most motion first, segments not overlapping
        if all(abs(s - o) >= length for o in chosen):
            chosen.append(s)
        if len(chosen) == count:
            break
    chosen.sort()
    pick = np.array([[s + i for i in range(length)] for s in chosen])
    return frames_a[pick], np.array(actions)[pick], np.array(rewards, dtype=np.float32)[pick]


@dataclass
class GameOpenLoop:
    game: str
    frames: np.ndarray  # [B, T, 84, 84] u8 real frames
    model_frames: np.ndarray  # [B, T, 84, 84] u8: reconstructions of the context, then imagined frames
    loop: OpenLoop
    measures: list[dict[str, float]]


@dataclass
class OpenLoopSection:
    games: list[GameOpenLoop] = field(default_factory=list)
    sticky: float = 0.0

    def lines(self) -> list[str]:
        """Markdown of the section (the PNGs are written by `write_images`)."""
        if not self.games:
            return ["No game could be imagined."]
        first = self.games[0].loop
        out = [f"The model sees {first.context} real frames, then imagines {first.horizon} more under the real "
               "actions (uniform random valid actions in the emulator, sticky "
               f"{self.sticky}), each imagined frame fed back as its next input. Rows per segment: truth, "
               "model (left of the white line the tokenizer's reconstruction of the real context), |error|. "
               "Changed tokens are those that differ from the real frame before; the baseline copies the last "
               "real context frame.", ""]
        for g in self.games:
            out += [f"![open-loop {g.game}](open_loop_{g.game}.png)", "",
                    "| horizon | changed-token acc. | copy-context baseline | token acc. | reward-sign acc. "
                    "| rewarded steps acc. |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
            out += [f"| {int(m['horizon'])} | {_pct(m['changed_token_accuracy'])} | "
                    f"{_pct(m['context_copy_changed_accuracy'])} | {_pct(m['token_accuracy'])} | "
                    f"{_pct(m['reward_accuracy'])} | {_pct(m['rewarded_accuracy'])} |" for m in g.measures]
            out.append("")
        return out

    def data(self) -> dict[str, Any]:
        """JSON for report.json (NaN → null)."""
        return {g.game: [{k: (None if math.isnan(v) else v) for k, v in m.items()} for m in g.measures]
                for g in self.games}

    def write_images(self, out_dir: Path) -> list[Path]:
        return [plot_open_loop(g, Path(out_dir) / f"open_loop_{g.game}.png") for g in self.games]


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def _u8(frames: torch.Tensor) -> np.ndarray:
    """[..., 1, 84, 84] floats in [0, 1] → u8 [..., 84, 84]."""
    return (frames.squeeze(-3).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@torch.no_grad()
def game_open_loop(model: Any, tokenizer: Any, game: str, sticky: float, seed: int, segments: int,
                   context: int, horizon: int) -> GameOpenLoop:
    frames, actions, rewards = real_segments(game, segments, context + horizon, sticky, seed)
    tokens = tokenizer.encode_tokens(torch.from_numpy(frames))  # [B, T, 36]
    tasks = torch.full((len(frames),), task_id(game), dtype=torch.long)
    loop = imagine_open_loop(model, tokens, torch.from_numpy(actions).long(), torch.from_numpy(rewards), tasks, context)
    shown = torch.cat([tokens[:, :context].cpu(), loop.model_tokens], dim=1)
    model_frames = _u8(tokenizer.decode_tokens(shown.to(tokenizer.embedding.weight.device)).float().cpu())
    return GameOpenLoop(game, frames, model_frames, loop, horizon_measures(loop))


def open_loop_section(model: Any, tokenizer: Any, games: list[str], sticky: float, seed: int = 0,
                      segments: int = 3, context: int = 3, horizon: int = 5) -> OpenLoopSection:
    """Imagine `segments` real segments per game (context + horizon ≤ the model's blocks)."""
    horizon = min(horizon, model.config.max_blocks - context)
    return OpenLoopSection([game_open_loop(model, tokenizer, g, sticky, seed, segments, context, horizon)
                            for g in games], sticky)


def grid_image(result: GameOpenLoop) -> np.ndarray:
    """u8 [rows·84 + gaps, T·84 + line]: truth / model / |error| per segment, a white line after the context."""
    c = result.loop.context
    rows = []
    for truth, model in zip(result.frames, result.model_frames):
        error = np.abs(truth.astype(np.int16) - model.astype(np.int16)).astype(np.uint8)
        for row in (truth, model, error):
            strip = np.concatenate([*row[:c], np.full((84, 2), 255, np.uint8), *row[c:]], axis=1)
            rows.append(strip)
        rows.append(np.full((4, rows[-1].shape[1]), 80, np.uint8))  # gap between segments
    return np.concatenate(rows[:-1], axis=0)


def plot_open_loop(result: GameOpenLoop, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = grid_image(result)
    height = 0.95 * 3 * len(result.frames) + 0.8  # about 1 inch per 84-pixel row
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, height), gridspec_kw={"width_ratios": [2.2, 1]})
    left.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    left.set_xticks([]), left.set_yticks([84 * i + 42 + 4 * (i // 3) for i in range(3 * len(result.frames))])
    left.set_yticklabels(["truth", "model", "|error|"] * len(result.frames))
    left.set_title(f"{result.game}: {result.loop.context} real frames | {result.loop.horizon} imagined")
    horizons = [int(m["horizon"]) for m in result.measures]
    for key, label, style in (("changed_token_accuracy", "changed tokens (model)", "o-"),
                              ("context_copy_changed_accuracy", "changed tokens (copy context)", "s--"),
                              ("token_accuracy", "all tokens (model)", "^-"),
                              ("reward_accuracy", "reward sign (model)", "d-")):
        right.plot(horizons, [m[key] for m in result.measures], style, label=label)
    right.set_xlabel("horizon (imagined steps)"), right.set_ylabel("accuracy"), right.set_ylim(-0.02, 1.02)
    right.set_xticks(horizons), right.grid(alpha=0.3), right.legend(fontsize=8)
    right.set_title("open-loop accuracy per horizon")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def copy_open_loop_figures(reports: list[tuple[str, Path]], target: Path) -> list[str]:
    """For a report made of evaluation reports (the demo's): copy their open-loop PNGs into `target` and
    return the markdown that shows them, each with the table of its evaluation report beside a link."""
    import shutil

    lines: list[str] = []
    for label, report in reports:
        for png in sorted(Path(report).glob("open_loop_*.png")):
            name = f"{Path(report).name}_{png.name}"
            shutil.copyfile(png, target / name)
            lines += [f"**{label}, {png.stem.removeprefix('open_loop_')}** (per-horizon table: "
                      f"`{Path(report) / 'report.md'}`)", "", f"![{label} open-loop]({name})", ""]
    return lines
