"""The demo's report: did each stage learn, and how do the agents play next to a random policy?

Everything here is read back from the run directories (metrics.jsonl, replay files, checkpoints, the
plan.py reports), so the report can be rebuilt from a finished demo at any time. Verdicts are computed
from the numbers, never written in advance.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from jowa.atomic import write_text
from jowa.demo.config import DemoConfig
from jowa.demo.measures import measures_section
from jowa.evaluation.open_loop_report import copy_open_loop_figures
from jowa.training.logger import read_metrics

CURVE_STAGES = (("tokenizer", "pretrain/tokenizer", "Tokenizer (VQ-VAE)"),
                ("world", "pretrain/world", "World-action model"),
                ("finetune", "finetune/train", "Fine-tuning on the held-out game"))
RECONSTRUCTION_FRAMES = 6


# ------------------------------------------------------------------------------------------ numbers

def loss_series(metrics: Mapping[str, Mapping[int, float]]) -> dict[str, dict[int, float]]:
    """The `loss/<term>` series of a metrics.jsonl, keyed by term (Q-value monitors left out: not losses)."""
    return {key.removeprefix("loss/"): values for key, values in metrics.items()
            if key.startswith("loss/") and not key.startswith("loss/q_value")}


def first_last(series: Mapping[int, float]) -> tuple[float, float]:
    steps = sorted(series)
    return series[steps[0]], series[steps[-1]]


def critic_start(series: Mapping[str, Mapping[int, float]]) -> int | None:
    """The first logged step of the critic phase (where TD appears), or None without one."""
    td = series.get("loss_td_error")
    return min(td) if td else None


def split_phases(series: Mapping[str, Mapping[int, float]]) -> dict[str, dict[str, dict[int, float]]]:
    """{"world-model phase": …, "critic phase": …} of a world-stage series; the logged world-model terms
    change scale at the switch (weighted by the supervised weight), so each phase is read on its own."""
    start = critic_start(series)
    if start is None:
        return {"world-model phase": dict(series)}
    phases: dict[str, dict[str, dict[int, float]]] = {"world-model phase": {}, "critic phase": {}}
    for term, values in series.items():
        for name, keep in (("world-model phase", lambda s: s < start), ("critic phase", lambda s: s >= start)):
            part = {step: v for step, v in values.items() if keep(step)}
            if part:
                phases[name][term] = part
    return phases


def returns_table(out: Path, config: DemoConfig) -> list[dict[str, Any]]:
    """One row per game: mean returns of planning, greedy and random, and which model played."""
    rows = []
    for model, games in (("pretrained", config.games), ("finetuned", [config.held_out])):
        plan = json.loads((out / "eval" / f"{model}_plan" / "report.json").read_text())
        greedy = json.loads((out / "eval" / f"{model}_greedy" / "report.json").read_text())
        for game in games:
            rows.append({
                "game": game, "model": model,
                "plan": plan["results"]["games"][game]["mean"], "plan_returns": plan["results"]["games"][game]["returns"],
                "greedy": greedy["results"]["games"][game]["mean"],
                "greedy_returns": greedy["results"]["games"][game]["returns"],
                "random": plan["baseline"]["games"][game]["mean"],
                "random_returns": plan["baseline"]["games"][game]["returns"],
            })
    return rows


def clearly_higher(agent: Sequence[float], baseline: Sequence[float]) -> bool:
    """Mean higher by more than two standard errors of the difference (Welch); a crude test, but it keeps
    a few noisy episodes from being called a win."""
    a, b = np.asarray(agent, float), np.asarray(baseline, float)
    se = np.sqrt((a.var(ddof=1) / len(a) if len(a) > 1 else 0) + (b.var(ddof=1) / len(b) if len(b) > 1 else 0))
    return bool(a.mean() - b.mean() > 2 * se)


def returns_verdict(rows: Sequence[Mapping[str, Any]], config: DemoConfig) -> str:
    """An honest sentence or two about the returns, from the numbers."""
    n = len(rows)
    parts = []
    for key, label in (("plan", "with planning"), ("greedy", "greedily")):
        higher = [r["game"] for r in rows if r[key] > r["random"]]
        clear = [r["game"] for r in rows if clearly_higher(r[f"{key}_returns"], r["random_returns"])]
        parts.append(f"{label} the agent's mean return is above the random policy's on {len(higher)} of {n} games"
                     f"{' (' + ', '.join(higher) + ')' if higher else ''}, and clearly above it (by more than two "
                     f"standard errors) on {len(clear)}{' (' + ', '.join(clear) + ')' if clear else ''}")
    text = parts[0][0].upper() + parts[0][1:] + "; " + parts[1] + ". "
    if not all(clearly_higher(r["plan_returns"], r["random_returns"]) for r in rows):
        text += ("Where it is not clearly better, that is the honest result at this scale: a tiny model, minutes "
                 "of CPU training and only random-policy data, from which the Q heads learn little about good "
                 "play, while the world model learns fast (the losses above). ")
    text += (f"Means over {config.evaluation.episodes} episodes per game, each capped at "
             f"{config.evaluation.max_episode_steps} agent steps.")
    return text


def sample_frames(replay: Path, game: str, count: int, pool_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The `count` frames that change most from their predecessor (in the same episode) among the first
    `pool_size` frames of a game's replay, and that pool; evenly spaced frames mostly show still screens."""
    from jowa.data.replay import read_episodes
    from jowa.diagnostics import motion_order

    pool: list[np.ndarray] = []
    for episode in read_episodes(replay, games=[game]):
        pool.append(episode.frames[:pool_size - sum(len(p) for p in pool)])
        if sum(len(p) for p in pool) >= pool_size:
            break
    previous, following = np.concatenate([p[:-1] for p in pool]), np.concatenate([p[1:] for p in pool])
    return following[np.sort(motion_order(previous, following)[:count])], np.concatenate(pool)


Samples = dict[str, tuple[np.ndarray, np.ndarray]]  # game → (frames shown, pool the codes are counted over)


@torch.no_grad()
def reconstructions(tokenizer_dir: Path, rows: Sequence[tuple[str, str]], samples: Samples
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[dict[str, Any]]]:
    """Frames of each (label, game) row over their reconstructions by one tokenizer, with the mean absolute
    pixel error and the number of distinct codes over the game's pool of frames."""
    from jowa.tokenizer import Tokenizer
    from jowa.training.tokenizer_stage import reconstruct

    tokenizer = Tokenizer.from_pretrained(tokenizer_dir).eval()
    originals, rebuilt, stats = [], [], []
    for label, game in rows:
        picked, pool = samples[game]
        again = reconstruct(tokenizer, picked)
        error = np.abs(picked.astype(np.float32) - again.astype(np.float32)).mean() / 255
        codes = int(tokenizer.encode_tokens(torch.from_numpy(pool)).unique().numel())
        stats.append({"game": game, "tokenizer": label, "l1": float(error), "codes_used": codes,
                      "vocab": tokenizer.config.vocab_size})
        originals.append(picked)
        rebuilt.append(again)
    return originals, rebuilt, stats


def reconstruction_grid(out: Path, config: DemoConfig, frames_per_game: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Every game through the pretrained tokenizer, then the held-out game through the fine-tuned one."""
    from jowa.model_files import find_model_dir
    from jowa.training.tokenizer_stage import grid_image

    samples = {g: sample_frames(out / "replay", g, frames_per_game, 50 * frames_per_game) for g in config.all_games}
    a = reconstructions(find_model_dir(out / "pretrain", "tokenizer"),
                        [("pretrained", g) for g in config.all_games], samples)
    b = reconstructions(find_model_dir(out / "finetune", "tokenizer"), [("fine-tuned", config.held_out)], samples)
    originals, rebuilt, stats = (x + y for x, y in zip(a, b))
    return grid_image(np.concatenate(originals), np.concatenate(rebuilt), columns=frames_per_game), stats


# ------------------------------------------------------------------------------------------ plots

def plot_curves(series: Mapping[str, Mapping[int, float]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    positive = all(v > 0 for values in series.values() for v in values.values())
    for term, values in sorted(series.items()):
        ax.plot(list(values), list(values.values()), label=term, linewidth=1.4, marker="." if len(values) < 20 else None)
    if positive:
        ax.set_yscale("log")
    start = critic_start(series)
    if start is not None and any(min(v) < start for v in series.values()):
        ax.axvline(start, color="black", linestyle="--", linewidth=0.8)
        ax.annotate("critic joins; world-model terms\nlogged × supervised weight", (start, 1), xytext=(4, -4),
                    xycoords=("data", "axes fraction"), textcoords="offset points", va="top", fontsize=7)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (log scale)" if positive else "loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_returns(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    x = np.arange(len(rows))
    for i, (key, label) in enumerate((("plan", "planning"), ("greedy", "greedy"), ("random", "random policy"))):
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in rows], width=0.27, label=label)
    ax.set_xticks(x, [f"{r['game']}\n({r['model']})" for r in rows], fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("mean return (capped episodes)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ markdown

def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _stage_lines(record: Mapping[str, Any]) -> list[str]:
    lines = ["| stage | wall time |", "| --- | ---: |"]
    total = 0.0
    for stage, entry in record["stages"].items():
        total += entry["seconds"]
        lines.append(f"| {stage} | {entry['seconds'] / 60:.1f} min |")
    lines.append(f"| **all** | **{total / 60:.1f} min** |")
    return lines


def _data_lines(record: Mapping[str, Any], config: DemoConfig) -> list[str]:
    lines = ["| game | role | transitions | episodes | random-policy return (complete episodes) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for game, s in record["stages"]["collect"]["result"].items():
        role = "held out (fine-tuning only)" if game == config.held_out else "pretraining"
        lines.append(f"| {game} | {role} | {s['transitions']} | {s['episodes']} | {_fmt(s['mean_return'], 1)} |")
    return lines


def _loss_lines(series: Mapping[str, Mapping[int, float]]) -> list[str]:
    lines = ["| loss term | first logged | last logged | change |", "| --- | ---: | ---: | ---: |"]
    for term, values in sorted(series.items()):
        first, last = first_last(values)
        change = f"{(last - first) / abs(first) * 100:+.0f} %" if first else "–"
        lines.append(f"| {term} | {first:.4f} | {last:.4f} | {change} |")
    return lines


def write_demo_report(out: Path, config: DemoConfig, record: Mapping[str, Any]) -> Path:
    """out/report/report.md (+ PNGs and GIFs beside it); returns the markdown's path."""
    import imageio.v3 as iio

    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    md = [f"# jowa demo: {', '.join(config.games)} → {config.held_out}", "",
          f"A `{config.pretrain.size}` JOWA world-action model pretrained from nothing on "
          f"{len(config.games)} Atari games of random-policy data, fine-tuned on {config.held_out} (never seen in "
          f"pretraining) from {config.finetune.transitions} transitions, then evaluated with beam-search planning "
          f"(K={config.evaluation.beam_width}, H={config.evaluation.horizon}), greedily, and against a uniform "
          "random policy on every game.", "", *_stage_lines(record), "", "## Data", "", *_data_lines(record, config)]

    curves: dict[str, dict[str, dict[int, float]]] = {}
    for key, directory, title in CURVE_STAGES:
        path = out / directory / "metrics.jsonl"
        if path.is_file():
            curves[key] = loss_series(read_metrics(path))
            plot_curves(curves[key], title, report / f"curves_{key}.png")

    image, recon = reconstruction_grid(out, config, RECONSTRUCTION_FRAMES)
    iio.imwrite(report / "reconstructions.png", image, extension=".png")
    rows_text = ", ".join(f"{s['game']} ({s['tokenizer']} tokenizer)" for s in recon)
    md += ["", "## 1. Tokenizer: each frame → 36 tokens", "", "![tokenizer losses](curves_tokenizer.png)", "",
           *_loss_lines(curves.get("tokenizer", {})), "",
           f"Frames from the replay above their reconstructions through the 36 tokens, one pair of rows each: "
           f"{rows_text}. The pretrained tokenizer never saw {config.held_out}; fine-tuning trains it on "
           f"{config.held_out} too (as the official fine-tuning does).", "",
           "![reconstructions](reconstructions.png)", "",
           "| game | tokenizer | mean abs. pixel error | codes used (of vocabulary) |", "| --- | --- | ---: | ---: |"]
    md += [f"| {s['game']} | {s['tokenizer']} | {s['l1']:.4f} | {s['codes_used']} / {s['vocab']} |" for s in recon]

    md += ["", "## 2. World-action model", "", "![world-model losses](curves_world.png)", "",
           "Dynamics (`loss_obs`, next-token cross-entropy), reward sign and termination train from step 0; the "
           "C51 Q ensemble (`loss_td_error`, `loss_cql_penalty`) joins later, and from then on the world-model "
           "terms are weighted by the supervised weight (0.1 in pretraining) and logged so, as officially. "
           "First and last logged means of each phase:"]
    phases = split_phases(curves.get("world", {}))
    for phase, series in phases.items():
        md += ["", f"**{phase}**", "", *_loss_lines(series)]
    obs = phases["world-model phase"].get("loss_obs")
    if obs:
        first, last = first_last(obs)
        md += ["", f"Next-token cross-entropy fell from {first:.3f} to {last:.3f} over the world-model phase "
                   f"({'learning' if last < first else 'NOT falling: something is wrong'})."]

    md += ["", *measures_section(out, config, "3")]

    finetune = record["stages"]["finetune"]["result"]
    md += ["", f"## 4. Fine-tuning on {config.held_out}", "", "![fine-tuning losses](curves_finetune.png)", "",
           "The critic trains from step 0 here; world-model terms are logged × 0.5 (the fine-tuning supervised "
           "weight), the tokenizer's own terms unweighted.", "", *_loss_lines(curves.get("finetune", {}))]
    if finetune.get("evaluations"):
        md += ["", "Periodic greedy evaluation (the best one is kept as the fine-tuned model): " + ", ".join(
            f"step {e['step']}: {e['mean_return']:.2f}" for e in finetune["evaluations"]) + "."]

    rows = returns_table(out, config)
    plot_returns(rows, report / "returns.png")
    md += ["", "## 5. Returns", "", "![returns](returns.png)", "",
           f"| game | model | planning (K={config.evaluation.beam_width}, H={config.evaluation.horizon}) | greedy | "
           "random policy | planning − random |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    md += [f"| {r['game']} | {r['model']} | {r['plan']:.2f} | {r['greedy']:.2f} | {r['random']:.2f} | "
           f"{r['plan'] - r['random']:+.2f} |" for r in rows]
    md += ["", returns_verdict(rows, config)]

    videos = []
    for model in ("pretrained", "finetuned"):
        for gif in sorted((out / "eval" / f"{model}_plan" / "videos").glob("*.gif")):
            target = report / f"video_{gif.name}"
            shutil.copyfile(gif, target)
            videos.append(target.name)
    if videos:
        md += ["", "## 6. Videos", "", "The first planned episode of each game: the real frame (left) beside its "
               "reconstruction from the agent's 36 tokens (right).", ""]
        md += [f"![{name}]({name})" for name in videos]

    loops = copy_open_loop_figures([("pretrained model", out / "eval" / "pretrained_plan"),
                                    ("fine-tuned model", out / "eval" / "finetuned_plan")], report)
    if loops:
        md += ["", "## 7. Open-loop imagination", "", "Real segments (random valid actions): the model sees the first "
               "frames, then imagines the rest under the real actions, each imagined frame fed back. Rows: truth, "
               "model, |error|; right, the accuracy per horizon on the tokens that change and of the reward signs. "
               f"To play inside the model yourself: `python play.py --run {out} --game {config.held_out}`.", "",
               *loops]

    md += ["", "## Where everything is", "",
           f"- Pretraining run: `{out / 'pretrain'}` (TensorBoard: `tensorboard --logdir {out / 'pretrain'}`)",
           f"- Fine-tuned model: `{out / 'finetune' / 'final'}`",
           f"- Full evaluation reports (per-episode returns, HNS, bootstrap CIs): `{out / 'eval'}`/*/report.md",
           f"- Settings and stage times: `{out / 'demo.json'}`", ""]
    path = report / "report.md"
    write_text(path, "\n".join(md))
    return path
