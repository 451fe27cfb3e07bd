"""The report's PNG plots (matplotlib Figures on an Agg canvas: no pyplot state, no display)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jowa.evaluation.metrics import (
    REFERENCES,
    STATISTICS,
    has_reference,
    normalized_scores,
)
from jowa.evaluation.report_numbers import REFERENCE_LABEL, reference_key

PNG_FILES = ("raw_returns.png", "normalized_scores.png", "aggregates.png")


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # Agg canvas: renders without a display and without touching pyplot's backend
    return fig


def _note(ax: Any, text: str) -> None:
    """Say in the panel why it is empty, instead of drawing a misleading axis."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_axis_off()


def plot_raw_returns(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One panel per game (raw scales differ by orders of magnitude): bar per side = mean, dots = episodes."""
    games = sorted(set().union(*(s["games"] for s in summaries)))
    cols = min(5, len(games))
    rows = math.ceil(len(games) / cols)
    fig = _new_figure(max(6.0, 2.6 * cols + 0.5), 2.4 * rows + 0.8)
    for n, game in enumerate(games):
        ax = fig.add_subplot(rows, cols, n + 1)
        for i, summary in enumerate(summaries):
            g = summary["games"].get(game)
            if g is None:
                continue
            ax.bar([i], [g["mean"]], width=0.6, color=f"C{i}", alpha=0.8)
            ax.plot(np.full(len(g["returns"]), i), g["returns"], "k.", markersize=3)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(summaries)))
        ax.set_xticklabels([s["name"] for s in summaries], fontsize=7)
        ax.set_xlim(-0.6, len(summaries) - 0.4)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(game, fontsize=9)
    fig.suptitle("Raw return per game (bar: mean, dots: episodes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_normalized_scores(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Bars of per-game mean HNS and DNS, a dot per episode; symlog axis because Atlantis reaches ~100.

    Each row shows only the games with that reference score; a row with none says so.
    """
    all_games = sorted(set().union(*(s["games"] for s in summaries)))
    fig = _new_figure(max(8.0, 0.6 * len(all_games) + 2), 7.0)
    width = 0.8 / len(summaries)
    for row, reference in enumerate(REFERENCES):
        ax = fig.add_subplot(2, 1, row + 1)
        games = [g for g in all_games if has_reference(g, reference)]
        if not games:
            _note(ax, f"No evaluated game has a {'DQN' if reference == 'dqn' else 'human'} reference score: "
                      f"no {REFERENCE_LABEL[reference]} to plot")
            continue
        for i, summary in enumerate(summaries):
            x = np.arange(len(games)) - 0.4 + width * (i + 0.5)
            present = [g in summary["games"] for g in games]
            means = [summary["games"][g][reference_key(reference)] if p else np.nan for g, p in zip(games, present)]
            ax.bar(x, means, width=width, label=summary["name"], alpha=0.8)
            for xi, g, p in zip(x, games, present):
                if p:
                    episode_scores = normalized_scores(g, summary["games"][g]["returns"], reference)
                    ax.plot(np.full(episode_scores.size, xi), episode_scores, "k.", markersize=2)
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel(f"{REFERENCE_LABEL[reference]} (symlog)")
        ax.set_xticks(np.arange(len(games)))
        ax.set_xticklabels(games, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle("Normalised score per game (bar: mean, dots: episodes; dashed: reference = 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_aggregates(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Run-level IQM / median / mean with CI error bars; crosses mark the paper-style (per-game) value.

    A side without games for a reference is left out of that panel; a panel with no side says so.
    """
    fig = _new_figure(10.0, 6.0)
    for row, reference in enumerate(REFERENCES):
        key = reference_key(reference)
        drawn = [(i, s) for i, s in enumerate(summaries) if s["aggregates"]["run_level"][key] is not None]
        for col, stat in enumerate(STATISTICS):
            ax = fig.add_subplot(2, len(STATISTICS), row * len(STATISTICS) + col + 1)
            title = f"{stat.upper() if stat == 'iqm' else stat} {REFERENCE_LABEL[reference]}"
            if not drawn:
                ax.set_title(title, fontsize=9)
                _note(ax, "no game with this reference")
                continue
            for i, summary in drawn:
                est = summary["aggregates"]["run_level"][key][stat]
                err = [[est["point"] - est["low"]], [est["high"] - est["point"]]]
                ax.errorbar([i], [est["point"]], yerr=err, fmt="o", capsize=4, label=summary["name"])
                ax.plot([i], [summary["aggregates"]["paper"][key][stat]], "kx")
            ax.set_xticks(range(len(summaries)))
            ax.set_xticklabels([s["name"] for s in summaries], fontsize=8)
            ax.set_xlim(-0.5, len(summaries) - 0.5)
            ax.set_title(title, fontsize=9)
    fig.suptitle("Run-level aggregates with bootstrap CIs (x: paper-style aggregate over per-game means)")
    fig.tight_layout()
    fig.savefig(path, format="png")
