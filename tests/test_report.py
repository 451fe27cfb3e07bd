"""The report writer: every file is written, raw returns round-trip, plots are PNGs, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jowa.evaluation.metrics import paper_aggregate, run_level_aggregates
from jowa.evaluation.report import PNG_FILES, EvaluationResults, load_report, write_report, write_video

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
    assert sorted(p.name for p in out.iterdir()) == sorted([*PNG_FILES, "report.json", "report.md"])
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

    _assert_pngs(out)

    md = (out / "report.md").read_text()
    for needle in ("Pong", "Seaquest", "trim_mean", "higher in 2 of 2 shared games", "Carnival", "context=4"):
        assert needle in md


def _assert_pngs(out: Path) -> None:
    assert PNG_FILES == ("raw_returns.png", "normalized_scores.png", "aggregates.png")
    for name in PNG_FILES:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, name


# Asteroids has random/human scores but no official DQN score; AirRaid and JourneyEscape have no reference scores.
MIXED = {"Pong": [-19.0, -15.0, 3.5], "Assault": [300.0, 812.0, 1010.0], "Asteroids": [1200.0, 2000.0, 3100.0],
         "AirRaid": [1200.0, 2500.0, 1800.0]}


@pytest.mark.parametrize("with_baseline", [False, True])
def test_games_without_reference_scores_are_reported_raw_and_left_out_of_aggregates(
    tmp_path: Path, with_baseline: bool
) -> None:
    results = EvaluationResults(MIXED, name="agent")
    baseline = EvaluationResults({"Pong": [-21.0, -20.0], "Asteroids": [700.0, 800.0, 650.0], "AirRaid": [2600.0, 2400.0]},
                                 name="random") if with_baseline else None
    out = write_report(tmp_path / "r", results, {}, baseline, bootstrap_reps=REPS, seed=3)
    assert sorted(p.name for p in out.iterdir()) == sorted([*PNG_FILES, "report.json", "report.md"])
    _assert_pngs(out)
    report = load_report(out)

    games = report["results"]["games"]
    assert games["AirRaid"]["returns"] == MIXED["AirRaid"] and games["AirRaid"]["mean"] == pytest.approx(1833.333333)
    assert games["AirRaid"]["min"] == 1200.0 and games["AirRaid"]["max"] == 2500.0
    assert games["AirRaid"]["hns"] is None and games["AirRaid"]["dns"] is None
    assert games["AirRaid"]["reference"] == {"random": None, "human": None, "dqn": None}
    assert games["Asteroids"]["hns"] == pytest.approx((np.mean(MIXED["Asteroids"]) - 719.1) / (47388.7 - 719.1))
    assert games["Asteroids"]["dns"] is None and games["Asteroids"]["reference"]["dqn"] is None
    assert games["Pong"]["dns"] is not None

    agg = report["results"]["aggregates"]
    assert agg["games"] == {"hns": ["Assault", "Asteroids", "Pong"], "dns": ["Assault", "Pong"]}
    assert set(agg["excluded"]["hns"]) == {"AirRaid"} and set(agg["excluded"]["dns"]) == {"AirRaid", "Asteroids"}
    for key, reference in (("hns", "human"), ("dns", "dqn")):
        subset = {g: MIXED[g] for g in agg["games"][key]}
        paper = paper_aggregate({g: float(np.mean(v)) for g, v in subset.items()}, reference)
        assert agg["paper"][key]["iqm"] == pytest.approx(paper.iqm) and agg["paper"][key]["num_games"] == len(subset)
        run_level = run_level_aggregates(subset, reference, reps=REPS, seed=3)
        assert agg["run_level"][key]["iqm"]["point"] == pytest.approx(run_level["iqm"].point)
        assert agg["run_level"][key]["iqm"]["low"] == pytest.approx(run_level["iqm"].low)

    md = (out / "report.md").read_text()
    assert "| AirRaid | 3 |" in md and "n/a" in md
    assert "- AirRaid: left out of the HNS and DNS aggregates (no published random/human reference scores)" in md
    assert "- Asteroids: left out of the DNS aggregates only (no official DQN reference score" in md

    if not with_baseline:
        assert report["comparison"] is None and "some games here lack" in md
        return
    cmp = report["comparison"]
    assert cmp["games"] == ["AirRaid", "Asteroids", "Pong"]  # wins/losses cover games without references too
    assert cmp["wins"] == 2 and cmp["losses"] == 1 and cmp["ties"] == 0
    assert cmp["mean_difference"]["AirRaid"] == pytest.approx(1833.333333 - 2500.0)
    assert cmp["run_level_iqm_on_shared_games"]["hns"]["games"] == ["Asteroids", "Pong"]
    assert cmp["run_level_iqm_on_shared_games"]["dns"]["games"] == ["Pong"]
    assert report["baseline"]["games"]["AirRaid"]["hns"] is None
    assert "higher in 2 of 3 shared games (lower in 1, equal in 0)" in md
    assert "the 2 shared games with human reference scores (Asteroids, Pong)" in md
    assert "| AirRaid | 1,833.3 ± 531.2 | 2,500.0 ± 100.0 | -666.7 | lower |" in md


@pytest.mark.parametrize("with_baseline", [False, True])
def test_no_game_with_reference_scores_still_writes_a_full_report(tmp_path: Path, with_baseline: bool) -> None:
    results = EvaluationResults({"AirRaid": [900.0, 1500.0], "JourneyEscape": [300.0, 300.0, 500.0]}, name="agent")
    baseline = EvaluationResults({"AirRaid": [600.0, 400.0], "JourneyEscape": [400.0, 400.0]}, name="random")
    out = write_report(tmp_path / "r", results, {}, baseline if with_baseline else None, bootstrap_reps=REPS)
    _assert_pngs(out)
    report = load_report(out)
    for side in ("results", "baseline") if with_baseline else ("results",):
        agg = report[side]["aggregates"]
        assert agg["paper"] == {"hns": None, "dns": None} and agg["run_level"] == {"hns": None, "dns": None}
        assert agg["games"] == {"hns": [], "dns": []}
    md = (out / "report.md").read_text()
    assert "No evaluated game has reference scores, so there is no normalised aggregate" in md
    assert "No normalised plots" in md and "IQM HNS, paper" not in md
    if with_baseline:
        cmp = report["comparison"]
        assert (cmp["wins"], cmp["losses"], cmp["ties"]) == (1, 1, 0)
        assert cmp["run_level_iqm_on_shared_games"] == {"hns": None, "dns": None}
        assert "higher in 1 of 2 shared games" in md and "raw mean returns only" in md


def test_games_with_human_but_no_dqn_reference_have_hns_aggregates_only(tmp_path: Path) -> None:
    out = write_report(tmp_path / "r", EvaluationResults({"Asteroids": [3.0, 5.0, 9.0]}), {}, bootstrap_reps=REPS)
    _assert_pngs(out)
    agg = load_report(out)["results"]["aggregates"]
    assert agg["paper"]["hns"]["num_games"] == 1 and agg["paper"]["dns"] is None and agg["run_level"]["dns"] is None
    md = (out / "report.md").read_text()
    assert "IQM HNS, paper" in md and "IQM DNS, paper" not in md
    assert "No evaluated game has a DQN reference score, so there is no DNS aggregate." in md


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


def test_a_game_with_dqn_but_no_human_reference_has_dns_only(tmp_path: Path) -> None:
    out = write_report(tmp_path / "r", EvaluationResults({"Pooyan": [900.0, 1500.0]}), {}, bootstrap_reps=REPS)
    games = load_report(out)["results"]["games"]
    assert games["Pooyan"]["hns"] is None
    assert games["Pooyan"]["dns"] == pytest.approx((1200.0 - 371.2) / (3212.0 - 371.2))
    md = (out / "report.md").read_text()
    assert "- Pooyan: left out of the HNS aggregates only (no human reference score" in md
