"""The study's numbers, read back from the run directories and evaluation reports, and the issue's success
criteria computed from them (never written by hand). `write_results` writes results.json, then RESULTS.md
from it (jowa.study.markdown)."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from jowa.atomic import write_json
from jowa.demo.report import clearly_higher, loss_series, split_phases
from jowa.diagnostics.verdicts import OBJECTS_KEPT
from jowa.study.stages import Study
from jowa.training.logger import read_metrics


def stats(returns: Sequence[float]) -> dict[str, Any]:
    """Mean, standard error and a 95 % Student-t interval of episode returns (no interval from one episode)."""
    from scipy import stats as st

    a = np.asarray(returns, float)
    n = len(a)
    se = float(a.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    half = float(st.t.ppf(0.975, n - 1)) * se if se is not None else None
    mean = float(a.mean())
    return {"mean": mean, "se": se, "ci95": None if half is None else [mean - half, mean + half], "n": n,
            "returns": [float(x) for x in a]}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": platform.processor() or None, "cores": os.cpu_count(), "platform": platform.platform()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("Model name", info["cpu"])
        info["cores"] = int(fields.get("CPU(s)", info["cores"]))
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    import torch

    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # AVX2 or AVX512: "AMD EPYC" is both
    info["torch_threads"] = torch.get_num_threads()
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def _report(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def returns_of(s: Study, record: dict[str, Any]) -> dict[str, Any]:
    """Per pretraining game: every size's planning and greedy agent, random, behaviour agent, logged returns."""
    sizes = list(s.config.pretrain.sizes)
    games: dict[str, Any] = {g: {} for g in s.config.games}
    for size in sizes:
        result = record["stages"][f"evaluate:{size}"]["result"]
        for kind in ("plan", "greedy"):
            report = _report(result[kind])
            for g in s.config.games:
                games[g][f"{size}/{kind}"] = stats(report["results"]["games"][g]["returns"])
    reference = _report(record["stages"][f"evaluate:{sizes[0]}"]["result"]["plan"])
    _references(reference, s.config.games, games)
    return games


def _references(report: dict[str, Any], names: list[str], into: dict[str, Any]) -> None:
    section = report["sections"]["Reference agents"]
    for g in names:
        into[g]["random"] = stats(report["baseline"]["games"][g]["returns"])
        into[g]["behaviour"] = stats(section["returns"]["behaviour agent"][g])
        logs = section["behaviour_logs"][g]
        into[g]["behaviour_logged"] = {"final_mean_return": logs["final_mean_return"],
                                       "data_mean_return": logs["data_mean_return"],
                                       "data_mean_return_capped": logs.get("data_mean_return_capped"),
                                       "cap": logs.get("cap"), "run": logs["run"]}


def heldout_of(s: Study, record: dict[str, Any]) -> dict[str, Any]:
    game = s.config.held_out
    result = record["stages"]["evaluate:heldout"]["result"]
    rows: dict[str, Any] = {game: {}}
    for start in ("pretrained", "scratch"):
        for kind in ("plan", "greedy"):
            rows[game][f"{start}/{kind}"] = stats(_report(result[f"{start}_{kind}"])["results"]["games"][game]["returns"])
    _references(_report(result["pretrained_plan"]), [game], rows)
    return rows[game]


def sizes_of(s: Study, record: dict[str, Any], world: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per size: parameters, training time, the training loss at the end of the world-model phase, and the
    trained model's next-token cross-entropy (eval mode) on the diagnostics' held episodes (`world`: their
    rows per size), the mean over games: the same data for every size, no dropout, no batch noise."""
    from jowa.model.world_model import WorldActionModel

    out = {}
    for size, overrides in s.config.pretrain.sizes.items():
        model = WorldActionModel.from_pretrained(s.model(size) / "final" / "world_model")
        series = loss_series(read_metrics(s.model(size) / "world" / "metrics.jsonl"))
        phases = split_phases(series)
        obs = phases["world-model phase"].get("loss_obs", {})
        steps = sorted(obs)
        tail = [obs[k] for k in steps[-3:]]  # the last three logged means: less noise than one
        stage = record["stages"][f"world:{size}"]
        out[size] = {"overrides": overrides, "parameters": sum(p.numel() for p in model.parameters()),
                     "embed_dim": model.config.embed_dim, "num_layers": model.config.num_layers,
                     "world_model_loss": float(np.mean(tail)) if tail else None,
                     "world_model_loss_steps": steps[-3:], "first_world_model_loss": obs[steps[0]] if steps else None,
                     "final_token_loss": _mean_of(world.get(size, []), "token_cross_entropy"),
                     "minutes": round(stage["seconds"] / 60, 2)}
    return out


def _mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
    return float(np.mean(values)) if values else None


def criteria(s: Study, games: dict[str, Any], heldout: dict[str, Any], sizes: dict[str, Any],
             tokenizer_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's six success criteria, each with its evidence; `passed` is None when it cannot be judged."""
    main, n = s.config.main_size, len(s.config.games)
    plan, greedy = f"{main}/plan", f"{main}/greedy"
    need_random, need_greedy = max(1, math.ceil(3 * n / 4)), max(1, math.ceil(n / 2))
    beats = [g for g in games if clearly_higher(games[g][plan]["returns"], games[g]["random"]["returns"])]
    at_least = [g for g in games if games[g][plan]["mean"] >= games[g][greedy]["mean"]]
    data = {g: data_return(games[g]["behaviour_logged"]) for g in games}
    reaches = [g for g in games if data[g][0] is not None and games[g][plan]["mean"] >= data[g][0]]
    cut = {label for _, label in data.values()}
    pre, scratch = heldout["pretrained/plan"], heldout["scratch/plan"]
    clear = clearly_higher(pre["returns"], scratch["returns"])
    names = list(sizes)
    losses = [sizes[k]["final_token_loss"] for k in names]
    out = [
        {"id": "planning_beats_random", "criterion": f"planning beats random by more than two standard errors on "
         f"at least {need_random} of {n} pretraining games", "passed": len(beats) >= need_random,
         "detail": f"{len(beats)} of {n}" + (f" ({', '.join(beats)})" if beats else "")},
        {"id": "planning_at_least_greedy", "criterion": f"planning ≥ greedy (mean return) on at least {need_greedy} "
         f"of {n} games", "passed": len(at_least) >= need_greedy,
         "detail": f"{len(at_least)} of {n}" + (f" ({', '.join(at_least)})" if at_least else "")},
        {"id": "offline_reaches_data", "criterion": "the offline agent (planning) reaches at least the mean return "
         f"of its own data ({' / '.join(sorted(cut))}) on at least 1 game", "passed": len(reaches) >= 1,
         "detail": f"{len(reaches)} of {n}" + (f" ({', '.join(reaches)})" if reaches else "")},
        {"id": "pretrained_beats_scratch", "criterion": f"after fine-tuning on {s.config.held_out}, the pretrained "
         "model beats the from-scratch one in held-out return (planning) by more than two standard errors",
         "passed": clear,  # a higher mean inside the noise is not a win
         "detail": f"{pre['mean']:.1f} vs {scratch['mean']:.1f}"
                   f"{', by more than two standard errors' if clear else ', within two standard errors'}"},
    ]
    if len(names) < 2 or any(v is None for v in losses):
        out.append({"id": "larger_lower_loss", "criterion": "the larger model has the lower world-model loss",
                    "passed": None, "detail": "not judged: one size, or a size without a measured loss"})
    else:
        monotone = all(b < a for a, b in zip(losses, losses[1:]))
        out.append({"id": "larger_lower_loss", "criterion": f"the larger model ({names[-1]}) has the lower "
                    f"world-model loss (the trained models' next-token cross-entropy on the held episodes) than "
                    f"the smallest ({names[0]})", "passed": losses[-1] < losses[0],
                    "detail": ", ".join(f"{k} {v:.4f}" for k, v in zip(names, losses))
                              + (" (falling with size)" if monotone else " (not falling at every step)")})
    out.append(objects_criterion(tokenizer_rows, list(s.config.games)))
    out[0]["main_size"] = out[1]["main_size"] = out[2]["main_size"] = main
    return out


def objects_criterion(rows: list[dict[str, Any]], games: list[str]) -> dict[str, Any]:
    """"Reconstructions show the ball", counted: the shared tokenizer keeps at least OBJECTS_KEPT of the small
    moving objects (jowa.diagnostics.pixels.small_objects_kept) on every pretraining game that has any."""
    counted = [r for r in rows if r["tokenizer"] == "pretrained" and r["game"] in games and r.get("small_objects")]
    criterion = (f"the shared tokenizer's reconstructions keep at least {OBJECTS_KEPT:.0%} of the small moving "
                 "objects (balls, shots) on every pretraining game")
    if not counted:
        return {"id": "objects_kept", "criterion": criterion, "passed": None,
                "detail": "not judged: no small moving object in the pretraining games' frame samples"}
    return {"id": "objects_kept", "criterion": criterion,
            "passed": all(r["small_objects_kept"] >= OBJECTS_KEPT for r in counted),
            "detail": ", ".join(f"{r['game']} {r['small_objects_kept']:.0%} of {r['small_objects']:.0f}"
                                for r in counted)}


def data_return(logged: dict[str, Any]) -> tuple[float | None, str]:
    """The data's mean return an evaluated agent is held against, and what it is: over each logged episode's
    first `cap` steps (the evaluation's cap) where the log recorded rewards, else over whole episodes."""
    if logged.get("data_mean_return_capped") is not None:
        return logged["data_mean_return_capped"], f"its episodes' first {logged['cap']:,} steps"
    return logged["data_mean_return"], "whole episodes: the log recorded no rewards to cut them at the cap"


def per_size_counts(s: Study, games: dict[str, Any]) -> dict[str, Any]:
    """For every size, the criteria-1 and -2 counts (the headline uses the largest), and criterion 1's test on
    the greedy agent: whether the look-ahead adds to what the critic alone plays."""
    def beat(agent: str) -> list[str]:
        return [g for g in games if clearly_higher(games[g][agent]["returns"], games[g]["random"]["returns"])]

    return {size: {"beats_random": beat(f"{size}/plan"), "greedy_beats_random": beat(f"{size}/greedy"),
                   "plan_at_least_greedy": [g for g in games if games[g][f"{size}/plan"]["mean"]
                                            >= games[g][f"{size}/greedy"]["mean"]]}
            for size in s.config.pretrain.sizes}


def write_results(s: Study) -> dict[str, Any]:
    """OUT/results.json, OUT/figures/*.png and OUT/RESULTS.md; returns their paths."""
    from jowa.config import to_dict
    from jowa.study.diagnostics import measure_all, reconstruction_grid
    from jowa.study.markdown import write_markdown
    from jowa.study.pipeline import RECORD

    record = json.loads((s.out / RECORD).read_text())
    figures = s.out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    behaviour = record["stages"]["behaviour"]["result"]
    for game, run in behaviour["runs"].items():
        png = Path(run["run"]) / "learning_curve.png"
        if png.is_file():
            shutil.copyfile(png, figures / f"learning_curve_{game}.png")
    diagnostics = measure_all(s)
    games, heldout = returns_of(s, record), heldout_of(s, record)
    sizes = sizes_of(s, record, diagnostics["world"])
    stage_seconds = {k: v["seconds"] for k, v in record["stages"].items()}
    data = {
        "format": "jowa-study/1", "budget": s.config.budget, "config": to_dict(s.config),
        "behaviour_dir": str(s.behaviour), "machine": machine(), "started_utc": record.get("started_utc"),
        "attempts": record.get("attempts"), "stage_seconds": stage_seconds,
        "wall_minutes": round(sum(stage_seconds.values()) / 60, 2),
        "behaviour": behaviour, "tokens": record["stages"]["tokenize"]["result"], "sizes": sizes,
        "games": games, "heldout": heldout,
        "finetune": {k: record["stages"][f"finetune:{k}"]["result"] for k in ("pretrained", "scratch")},
        "reports": {k: v["result"] for k, v in record["stages"].items() if k.startswith("evaluate:")},
        "per_size": per_size_counts(s, games), "criteria": criteria(s, games, heldout, sizes, diagnostics["tokenizer"]),
        "reconstructions": reconstruction_grid(s, figures / "reconstructions.png"),
        "diagnostics": diagnostics,
    }
    write_json(s.out / "results.json", data)
    markdown = write_markdown(s.out / "RESULTS.md", data, figures)
    return {"markdown": str(markdown), "json": str(s.out / "results.json"),
            "criteria": {c["id"]: c["passed"] for c in data["criteria"]}}
