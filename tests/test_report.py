"""The report writer: every file is written, raw returns round-trip, plots are PNGs, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jowa.evaluation.report import EvaluationResults, load_report, write_report, write_video

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPS = 300  # few bootstrap replications: the writer is under test here, not the bootstrap


@pytest.fixture
def results() -> EvaluationResults:
    return EvaluationResults(
        returns={"Pong": [-19.0, -15.0, 3.5], "Assault": [300.0, 812.0, 812.0, 1010.0], "Seaquest": [480.0]},
        metadata={"Pong": {"context": 4, "K": 2, "H": 2}},
        name="tiny-agent",
    )


@pytest.fixture
def random_baseline() -> EvaluationResults:
    return EvaluationResults(
        returns={"Pong": [-21.0, -20.0, -21.0], "Assault": [210.0, 231.0, 252.0], "Carnival": [700.0, 620.0]},
        name="random",
    )


def test_writes_every_file_and_round_trips_raw_returns(
    tmp_path: Path, results: EvaluationResults, random_baseline: EvaluationResults
) -> None:
    out = write_report(tmp_path / "report", results, {"episodes": 4, "planner": "beam"}, random_baseline,
                       bootstrap_reps=REPS)
    assert sorted(p.name for p in out.iterdir()) == ["aggregates.png", "normalized_scores.png", "report.json",
                                                     "report.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary directory left behind

    report = load_report(out)
    for summary, source in ((report["results"], results), (report["baseline"], random_baseline)):
        assert {g: tuple(v["returns"]) for g, v in summary["games"].items()} == dict(source.returns)
    assert report["settings"] == {"episodes": 4, "planner": "beam"}
    assert report["versions"]["numpy"] == np.__version__
    assert report["results"]["games"]["Pong"]["metadata"] == {"context": 4, "K": 2, "H": 2}
    assert report["results"]["games"]["Assault"]["mean"] == pytest.approx(733.5)
    hns = report["results"]["aggregates"]["run_level"]["hns"]["iqm"]
    assert hns["low"] <= hns["point"] <= hns["high"] and hns["reps"] == REPS
    assert report["comparison"]["games"] == ["Assault", "Pong"]
    assert report["comparison"]["wins"] == 2

    for name in ("aggregates.png", "normalized_scores.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000

    md = (out / "report.md").read_text()
    for needle in ("Pong", "Seaquest", "trim_mean", "higher in 2 of 2 shared games", "Carnival", "context=4"):
        assert needle in md


def test_without_baseline_says_so(tmp_path: Path, results: EvaluationResults) -> None:
    out = write_report(tmp_path / "r", results, {}, bootstrap_reps=REPS)
    report = load_report(out)
    assert report["baseline"] is None and report["comparison"] is None
    assert "No baseline returns" in (out / "report.md").read_text()


def test_identical_baseline_is_reported_as_no_difference(tmp_path: Path, results: EvaluationResults) -> None:
    same = EvaluationResults(results.returns, name="copy")
    out = write_report(tmp_path / "r", results, {}, same, bootstrap_reps=REPS)
    assert load_report(out)["comparison"]["run_level_iqm_on_shared_games"]["hns"]["verdict"] == "overlapping"
    assert "does not show a difference" in (out / "report.md").read_text()


def test_replaces_a_previous_report_but_refuses_other_directories(
    tmp_path: Path, results: EvaluationResults
) -> None:
    out = write_report(tmp_path / "r", results, {"run": 1}, bootstrap_reps=REPS)
    write_report(out, results, {"run": 2}, bootstrap_reps=REPS)
    assert load_report(out)["settings"] == {"run": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r"]

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_report(precious, results, {}, bootstrap_reps=REPS)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_bad_inputs_fail_before_writing(tmp_path: Path, results: EvaluationResults) -> None:
    with pytest.raises(ValueError, match="JSON"):
        write_report(tmp_path / "r", results, {"model": object()}, bootstrap_reps=REPS)
    with pytest.raises(ValueError, match="metadata must be JSON"):
        write_report(tmp_path / "r", EvaluationResults({"Pong": [1.0]}, {"Pong": {"K": {2}}}), {}, bootstrap_reps=REPS)
    with pytest.raises(ValueError, match="Unknown game"):
        EvaluationResults({"Pongg": [1.0]})
    with pytest.raises(ValueError, match="no episode returns"):
        EvaluationResults({"Pong": []})
    with pytest.raises(ValueError, match="no games"):
        EvaluationResults({})
    with pytest.raises(ValueError, match="non-finite"):
        EvaluationResults({"Pong": [float("inf")]})
    with pytest.raises(ValueError, match="metadata for games without returns"):
        EvaluationResults({"Pong": [1.0]}, metadata={"Assault": {"K": 2}})
    with pytest.raises(ValueError, match="no game in common"):
        write_report(tmp_path / "r", results, {}, EvaluationResults({"Zaxxon": [0.0]}), bootstrap_reps=REPS)
    assert list(tmp_path.iterdir()) == []


def test_write_video_gif(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, size=(6, 84, 84), dtype=np.uint8)
    path = write_video(frames, tmp_path / "episode.gif", fps=15, scale=2)
    assert path.read_bytes()[:6] == b"GIF89a"
    rgb = np.repeat(frames[..., None], 3, axis=-1)
    assert write_video(rgb, tmp_path / "rgb.gif").stat().st_size > 0
    with pytest.raises(ValueError, match="uint8"):
        write_video(frames.astype(np.float32), tmp_path / "bad.gif")
    with pytest.raises(ValueError, match="format"):
        write_video(frames, tmp_path / "episode.avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.gif", "rgb.gif"]


def test_write_video_mp4_needs_ffmpeg_plugin(tmp_path: Path) -> None:
    frames = np.zeros((3, 84, 84), dtype=np.uint8)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
            write_video(frames, tmp_path / "episode.mp4")
        assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    else:
        assert write_video(frames, tmp_path / "episode.mp4").stat().st_size > 0
