"""Evaluation report: report.json (every raw return, per-game and aggregate metrics), report.md, PNG plots.

Any game of the catalogue may be evaluated. A game without random/human reference scores
(`jowa.games.REFERENCE_SCORES`) is reported by its raw returns only: its HNS and DNS are null ("n/a") and it
is left out of the normalised aggregates, and report.md names it. A game with random/human but no official
DQN score is left out of the DNS aggregates only. The per-game comparison with a baseline (raw means,
wins/losses) covers every shared game.

`write_report(out_dir, results, settings, baseline=None)` builds the whole directory in a temporary
sibling and renames it into place, so a reader never sees half a report. An existing `out_dir` is
replaced only if it is empty or holds a previous report (a `report.json`); anything else is refused.
`write_video(frames, path)` writes an episode's frames as GIF (or MP4 where imageio-ffmpeg is installed).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from jowa.atomic import atomic_directory, commit_directory
from jowa.evaluation.episode_log import EPISODES_NAME
from jowa.evaluation.metrics import RLIABLE_REPS
from jowa.evaluation.report_markdown import render_markdown
from jowa.evaluation.report_numbers import EvaluationResults, compare, package_versions, protocol, summarize
from jowa.evaluation.report_plots import PNG_FILES, plot_aggregates, plot_normalized_scores, plot_raw_returns
from jowa.evaluation.video import write_video

REPORT_FORMAT = "jowa-evaluation-report/1"
__all__ = ["PNG_FILES", "EvaluationResults", "load_report", "render_markdown", "summarize", "write_report", "write_video"]


def _json_ready(value: Any, what: str) -> Any:
    """A JSON round-trip of `value`; fails before any work if it cannot be written to report.json."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be JSON-serialisable without NaN/inf: {err}") from err


def _check_destination(out_dir: Path) -> None:
    # Only an empty directory or a previous report may be replaced: never wipe unrelated files.
    if not out_dir.exists():
        return
    known = (out_dir / "report.json").exists() or (out_dir / EPISODES_NAME).exists()
    if not out_dir.is_dir() or (any(out_dir.iterdir()) and not known):
        raise FileExistsError(f"{out_dir} exists and is not an empty directory or a previous report; "
                              "choose another output directory")


def write_report(
    out_dir: str | Path,
    results: EvaluationResults,
    settings: Mapping[str, Any],
    baseline: EvaluationResults | None = None,
    *,
    bootstrap_reps: int = RLIABLE_REPS,
    seed: int = 0,
    confidence: float = 0.95,
    note: str | None = None,
    sections: Mapping[str, tuple[list[str], Any]] | None = None,
) -> Path:
    """Write report.json, report.md and the PNG plots into `out_dir` atomically; return its path.

    `note` (e.g. that the report is partial) heads report.md; `sections` maps a title to (markdown lines,
    JSON data) for extra sections, e.g. reference agents; the episode log of a previous write
    (`episodes.jsonl`) is kept."""
    out_dir = Path(out_dir)
    settings_json = _json_ready(dict(settings), "settings")
    for side in (results, baseline):
        if side is not None:
            _json_ready(dict(side.metadata), f"{side.name} metadata")
    if baseline is not None and not set(results.games) & set(baseline.games):
        raise ValueError(f"{results.name} and baseline {baseline.name} have no game in common")
    _check_destination(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    agent = summarize(results, bootstrap_reps, seed, confidence)
    base = summarize(baseline, bootstrap_reps, seed, confidence) if baseline is not None else None
    report = {
        "format": REPORT_FORMAT,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": settings_json,
        "versions": package_versions(),
        "protocol": protocol(bootstrap_reps, seed, confidence),
        "results": agent,
        "baseline": base,
        "comparison": compare(agent, base, bootstrap_reps, seed, confidence) if base is not None else None,
        "note": note,
        "sections": {title: _json_ready(data, title) for title, (_, data) in (sections or {}).items()},
    }
    summaries = [agent] + ([base] if base is not None else [])

    tmp_dir = atomic_directory(out_dir)
    tmp_dir.chmod(0o755)  # mkdtemp makes it private (0700); a report is meant to be read by others
    try:
        (tmp_dir / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        extra = [line for title, (lines, _) in (sections or {}).items() for line in (f"## {title}", "", *lines, "")]
        (tmp_dir / "report.md").write_text(render_markdown(report) + ("\n" + "\n".join(extra) if extra else ""))
        plot_raw_returns(summaries, tmp_dir / PNG_FILES[0])
        plot_normalized_scores(summaries, tmp_dir / PNG_FILES[1])
        plot_aggregates(summaries, tmp_dir / PNG_FILES[2])
        if (out_dir / EPISODES_NAME).is_file():
            shutil.copy2(out_dir / EPISODES_NAME, tmp_dir / EPISODES_NAME)
        _check_destination(out_dir)  # again: another process may have written there meanwhile
        commit_directory(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return out_dir


def load_report(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "report.json").read_text())
