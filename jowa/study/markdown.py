"""RESULTS.md and its plots, written from results.json's data alone (so both always agree)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jowa.atomic import write_text


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ms(x: dict[str, Any] | None) -> str:
    """mean ± 95 % half-width (n)."""
    if x is None:
        return "–"
    if x["ci95"] is None:
        return f"{x['mean']:,.1f} (n={x['n']})"
    return f"{x['mean']:,.1f} ± {x['ci95'][1] - x['mean']:,.1f} (n={x['n']})"


def _v(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def plot_learning_curves(data: dict[str, Any], path: Path) -> None:
    """Every behaviour agent's episode returns against agent steps (20-episode running mean)."""
    plt = _plt()
    games = list(data["behaviour"]["runs"])
    fig, axes = plt.subplots(1, len(games), figsize=(3.2 * len(games), 2.8), squeeze=False)
    for ax, game in zip(axes[0], games):
        curve = json.loads((Path(data["behaviour"]["runs"][game]["run"]) / "learning_curve.json").read_text())
        x, y = np.asarray(curve["episodes"]["agent_step"], float), np.asarray(curve["episodes"]["return"], float)
        ax.plot(x, y, ".", alpha=0.25, markersize=3)
        w = max(1, min(20, len(y)))
        if len(y):
            ax.plot(x[w - 1:], np.convolve(y, np.ones(w) / w, mode="valid"), "-")
        ax.set_title(game, fontsize=9)
        ax.set_xlabel("agent steps", fontsize=8)
    axes[0][0].set_ylabel("episode return")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _agents(data: dict[str, Any]) -> list[str]:
    return [f"{size}/{kind}" for size in data["sizes"] for kind in ("plan", "greedy")] + ["random", "behaviour"]


def plot_returns(data: dict[str, Any], path: Path) -> None:
    """Mean return with its 95 % interval per game and agent (pretraining games, then the held-out game)."""
    plt = _plt()
    panels = [(g, data["games"][g], _agents(data)) for g in data["games"]]
    held = data["config"]["held_out"]
    panels.append((f"{held} (held out, fine-tuned)", data["heldout"],
                   ["pretrained/plan", "pretrained/greedy", "scratch/plan", "scratch/greedy", "random", "behaviour"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), squeeze=False)
    for ax, (title, rows, agents) in zip(axes[0], panels):
        means = [rows[a]["mean"] for a in agents]
        errors = [0 if rows[a]["ci95"] is None else rows[a]["ci95"][1] - rows[a]["mean"] for a in agents]
        ax.bar(range(len(agents)), means, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(agents))])
        ax.set_xticks(range(len(agents)), agents, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("mean return (95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_size_trend(data: dict[str, Any], path: Path) -> None:
    """World-model loss and mean planning return (each game) against parameter count."""
    plt = _plt()
    sizes = data["sizes"]
    params = [sizes[k]["parameters"] / 1e6 for k in sizes]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(params, [sizes[k].get("final_token_loss") or np.nan for k in sizes], "o-")
    for x, k in zip(params, sizes):
        a.annotate(k, (x, sizes[k].get("final_token_loss") or 0), fontsize=8)
    a.set_xlabel("world-model parameters (M)")
    a.set_ylabel("next-token cross-entropy (trained, held episodes)")
    for game, rows in data["games"].items():
        b.plot(params, [rows[f"{k}/plan"]["mean"] for k in sizes], "o-", label=game)
    b.set_xlabel("world-model parameters (M)")
    b.set_ylabel("planning mean return")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _lambda(e: dict[str, Any]) -> str:
    """The λ-return score where the study set one (results.json files before the option have none)."""
    lam = e.get("return_lambda", 1.0)
    return "official score, " if lam == 1.0 else f"λ-return score λ={lam:g}, "


def _verdict(passed: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "**not judged**"}[passed]


def write_markdown(path: Path, data: dict[str, Any], figures: Path) -> Path:
    from jowa.study.diagnostics import diagnostics_lines

    plot_learning_curves(data, figures / "learning_curves.png")
    plot_returns(data, figures / "returns.png")
    plot_size_trend(data, figures / "size_trend.png")
    c, e, m = data["config"], data["config"]["evaluation"], data["machine"]
    rel = figures.name
    met = sum(1 for x in data["criteria"] if x["passed"])
    md = [f"# jowa study ({data['budget']} budget): {', '.join(c['games'])} → {c['held_out']}", "",
          "Written by `python study.py` from the numbers in `results.json` (beside this file), which it read from the "
          "run directories and the evaluation reports; every verdict below is computed, none written by hand.", "",
          f"- Machine: {m['cpu']}" + (f" ({m['cpu_capability']})" if m.get("cpu_capability") else "")
          + f", {m['cores']} cores ({m['torch_threads']} torch threads)"
          + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"),
          f"- Wall time: {data['wall_minutes']:.1f} min over {data['attempts']} attempt(s) (started {data['started_utc']})",
          f"- Behaviour data: `{data['behaviour_dir']}` "
          f"({'made by this study' if data['behaviour']['made_here'] else 'made earlier, given with --behaviour'})",
          f"- Evaluation: protocol `{e['protocol']}` (sticky actions), each episode capped at {e['max_episode_steps']} agent "
          f"steps, {e['episodes']} episodes per game and agent; planning K={e['beam_width']}, H={e['horizon']}, "
          f"{_lambda(e)}context {e['context']}; ± is the 95 % Student-t interval of the mean.", "",
          f"## Success criteria: {met} of {len(data['criteria'])} met", "",
          "| criterion | verdict | evidence |", "| --- | --- | --- |"]
    md += [f"| {x['criterion']} | {_verdict(x['passed'])} | {x['detail']} |" for x in data["criteria"]]
    main = list(data["sizes"])[-1]
    md += ["", f"Criteria 1–3 judge the largest model (`{main}`); per size:", "",
           "| size | planning beats random (> 2 SE) | planning ≥ greedy | greedy beats random (> 2 SE) |",
           "| --- | --- | --- | --- |"]
    n = len(data["games"])
    def games(names: list[str]) -> str:
        return f"{len(names)} of {n}" + (f" ({', '.join(names)})" if names else "")

    md += [f"| {k} | {games(v['beats_random'])} | {games(v['plan_at_least_greedy'])} | "
           f"{games(v['greedy_beats_random']) if 'greedy_beats_random' in v else '–'} |" for k, v in data["per_size"].items()]

    md += ["", "## Stage wall times", "", "| stage | minutes | estimated |", "| --- | ---: | ---: |"]
    estimates = c.get("estimated_minutes", {})
    for stage, seconds in data["stage_seconds"].items():
        group = stage.split(":")[0]
        md.append(f"| {stage} | {seconds / 60:.1f} | {_v(estimates.get(stage, estimates.get(group)))} |")

    md += ["", "## Behaviour data (the learning agents)", "", "![learning curves](figures/learning_curves.png)", "",
           "| game | role | transitions | episodes | agent steps | training min | return at the end of training "
           "(last 10 % of episodes) | data mean return |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for game, r in data["behaviour"]["runs"].items():
        role = "held out" if game == c["held_out"] else "pretraining"
        md.append(f"| {game} | {role} | {r['transitions']:,} | {r['episodes']} | {r['agent_steps']:,} | "
                  f"{r['wall_seconds'] / 60:.1f} | {_v(r['final_mean_return'])} | {_v(r['data_mean_return'])} |")
    md += ["", "Each run's own plot: " + ", ".join(f"[{g}]({rel}/learning_curve_{g}.png)" for g in data["behaviour"]["runs"])
           + ".", "", f"Token shards: {data['tokens']['transitions']:,} transitions in {data['tokens']['episodes']} "
           f"episodes of the pretraining games"
           + (f" (JOWA's subsample, {c['pretrain']['transitions_per_game']:,} per game)"
              if c["pretrain"]["transitions_per_game"] else " (every logged transition)") + "."]

    md += ["", "## Model sizes", "", "![size trend](figures/size_trend.png)", "",
           "| size | overrides of the base preset | parameters | training loss (next-token CE, start → end of "
           "the world-model phase) | trained model: next-token CE on the held episodes | training min |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    for k, v in data["sizes"].items():
        md.append(f"| {k} | {' '.join(f'`{o}`' for o in v['overrides']) or '(base)'} | {v['parameters']:,} | "
                  f"{_v(v['first_world_model_loss'], 3)} → {_v(v['world_model_loss'], 3)} | "
                  f"{_v(v.get('final_token_loss'), 3)} | {v['minutes']:.1f} |")
    md += ["", "The training loss's end is the mean of the last three logged means of the world-model phase (before "
           "the critic joins; dropout on, a new batch each step). The size criterion reads the trained models on the "
           "same held episodes of every pretraining game in eval mode (the diagnostics' episodes, mean over games). "
           "All sizes share one tokenizer, one tokenization and the training schedule.", "",
           "## Returns on the pretraining games", "", "![returns](figures/returns.png)", ""]
    agents = _agents(data)
    cap = next((f"{r['behaviour_logged']['cap']:,}" for r in data["games"].values()
                if r["behaviour_logged"].get("data_mean_return_capped") is not None), None)
    md += ["| game | " + " | ".join(agents) + " | behaviour: end of training / data"
           + (f" / data, first {cap} steps |" if cap else " |"), "| --- |" + " ---: |" * (len(agents) + 1)]
    for game, rows in data["games"].items():
        logged = rows["behaviour_logged"]
        md.append(f"| {game} | " + " | ".join(_ms(rows[a]) for a in agents)
                  + f" | {_v(logged['final_mean_return'])} / {_v(logged['data_mean_return'])}"
                  + (f" / {_v(logged.get('data_mean_return_capped'))} |" if cap else " |"))
    md += ["", "The random policy and the behaviour agent (its final checkpoint, played under the same protocol) do not "
           "depend on the model: they are played once, beside the smallest size's planning agent.", ""]

    h = data["heldout"]
    ft = data["finetune"]
    md += [f"## Fine-tuning on {c['held_out']} (held out)", "",
           f"{c['finetune']['transitions']:,} transitions of {c['held_out']} (`{c['finetune']['select']}` of its log), "
           f"the same steps ({ft['pretrained'].get('step')}) and tokenizer for the pretrained `{main}` model and one of "
           "the same architecture from fresh weights.", "",
           "| start | planning | greedy |", "| --- | ---: | ---: |",
           f"| pretrained | {_ms(h['pretrained/plan'])} | {_ms(h['pretrained/greedy'])} |",
           f"| from scratch | {_ms(h['scratch/plan'])} | {_ms(h['scratch/greedy'])} |",
           f"| random policy | {_ms(h['random'])} | |", f"| behaviour agent | {_ms(h['behaviour'])} | |", "",
           f"The behaviour agent's log: {_v(h['behaviour_logged']['final_mean_return'])} at the end of training, "
           f"{_v(h['behaviour_logged']['data_mean_return'])} over all its data"
           + (f", {_v(h['behaviour_logged']['data_mean_return_capped'])} over its episodes' first "
              f"{h['behaviour_logged']['cap']:,} steps (the evaluation's cap)"
              if h["behaviour_logged"].get("data_mean_return_capped") is not None else "") + ".", "",
           "## Tokenizer reconstructions", "", "![reconstructions](figures/reconstructions.png)", "",
           "Each game's frames (most motion among its first frames) above their reconstruction from 36 tokens by the "
           "shared tokenizer:", "", "| game | mean abs. pixel error | codes used |", "| --- | ---: | ---: |"]
    md += [f"| {r['game']} | {r['l1']:.4f} | {r['codes_used']} / {r['vocab']} |" for r in data["reconstructions"]]
    md += ["", "## Diagnostics", "", *diagnostics_lines(data["diagnostics"]), "## Where everything is", "",
           "- `results.json`: every number above (with the per-episode returns); `study.json`: settings and stages",
           "- `eval/*/report.json`, `report.md`: the full evaluation reports (HNS, bootstrap CIs, episode logs)",
           "- `models/<size>/`, `tokenizer/`, `finetune/`: the runs (TensorBoard under each `tb/`)", ""]
    write_text(path, "\n".join(md))
    return path
