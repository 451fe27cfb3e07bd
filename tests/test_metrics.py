"""Normalised scores and aggregates: the paper's numbers from its own data, and the rliable bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jowa.evaluation.metrics import (
    bootstrap_distribution,
    has_reference,
    normalize,
    normalized_scores,
    paper_aggregate,
    run_level_aggregates,
    run_level_statistic,
    stratified_bootstrap_ci,
    trimmed_mean,
)
from jowa.evaluation.paper_scores import (
    PAPER_MEAN_SCORES,
    PAPER_PLANNING_SETTINGS,
    PAPER_RAW_RETURNS,
    PAPER_SUMMARY,
    RAW_RETURNS_COLUMN,
)
from jowa.games import FINETUNE_GAMES, GAME_NAMES, PRETRAIN_GAMES, REFERENCE_SCORES, ReferenceScores

# ---------------------------------------------------------------- (a) the paper's aggregates


@pytest.mark.parametrize(
    "column, iqm_hns, iqm_dns",
    [  # docs/official_jowa.md §13, recomputed by the official formulas from results/data.json
        ("JOWA_150M_with_planning", 0.8469, 1.1951),
        ("JOWA_70M_with_planning", 0.8019, 0.9518),
        ("JOWA_40M_with_planning", 0.6642, 0.7720),
    ],
)
def test_paper_iqm_reproduced_to_four_decimals(column: str, iqm_hns: float, iqm_dns: float) -> None:
    means = PAPER_MEAN_SCORES[column]
    assert round(paper_aggregate(means, "human").iqm, 4) == iqm_hns
    assert round(paper_aggregate(means, "dqn").iqm, 4) == iqm_dns


@pytest.mark.parametrize("column", sorted(PAPER_SUMMARY))
def test_every_summary_row_of_the_paper_table(column: str) -> None:
    """IQM, median, mean and #>human of all 13 columns (JOWA with/without planning and baselines)."""
    hns = paper_aggregate(PAPER_MEAN_SCORES[column], "human")
    dns = paper_aggregate(PAPER_MEAN_SCORES[column], "dqn")
    published = PAPER_SUMMARY[column]
    half_print_step = 0.0005 + 1e-12  # the table prints percentages to 0.1
    assert abs(hns.iqm - published.iqm_hns) <= half_print_step
    assert abs(dns.iqm - published.iqm_dns) <= half_print_step
    assert abs(hns.median - published.median_hns) <= half_print_step
    assert abs(hns.mean - published.mean_hns) <= half_print_step
    assert hns.num_above_reference == published.num_above_human
    assert hns.num_games == 15


def test_named_values_of_the_150m_planning_and_greedy_columns() -> None:
    plan = paper_aggregate(PAPER_MEAN_SCORES["JOWA_150M_with_planning"], "human")
    assert round(plan.median, 3) == 0.585 and plan.num_above_reference == 6
    greedy = paper_aggregate(PAPER_MEAN_SCORES["JOWA_150M_without_planning"], "human")
    assert round(greedy.iqm, 3) == 0.524 and round(greedy.median, 3) == 0.591 and greedy.num_above_reference == 4
    greedy_dns = paper_aggregate(PAPER_MEAN_SCORES["JOWA_70M_without_planning"], "dqn")
    assert round(greedy_dns.iqm, 3) == 0.637


def test_paper_iqm_is_trim_mean_of_nine_middle_games() -> None:
    means = PAPER_MEAN_SCORES["JOWA_150M_with_planning"]
    hns = np.sort([float(normalized_scores(g, m, "human")) for g, m in means.items()])
    assert paper_aggregate(means, "human").iqm == pytest.approx(hns[3:12].mean(), abs=1e-12)


# ---------------------------------------------------------------- (b) the raw returns behind the table


@pytest.mark.parametrize("model", sorted(PAPER_RAW_RETURNS))
def test_raw_returns_reproduce_published_means(model: str) -> None:
    returns = PAPER_RAW_RETURNS[model]
    column = PAPER_MEAN_SCORES[RAW_RETURNS_COLUMN[model]]
    assert sorted(returns) == sorted(PRETRAIN_GAMES) == sorted(column)
    for game, values in returns.items():
        assert len(values) == 16, game
        assert round(float(np.mean(values)), 1) == column[game], game


def test_raw_returns_reproduce_the_spec_13_iqm_from_exact_means() -> None:
    exact = {g: float(np.mean(v)) for g, v in PAPER_RAW_RETURNS["JOWA_150M"].items()}
    assert round(paper_aggregate(exact, "human").iqm, 4) == 0.8469
    assert round(paper_aggregate(exact, "dqn").iqm, 4) == 1.1951


def test_planning_settings_match_spec_8_4() -> None:
    s150, s40 = PAPER_PLANNING_SETTINGS["JOWA_150M"], PAPER_PLANNING_SETTINGS["JOWA_40M"]
    assert (s150["Assault"].context, s150["Assault"].beam_width) == (4, 2)
    assert (s40["Berzerk"].context, s40["Berzerk"].beam_width) == (6, 4)
    assert all(s.horizon == 2 for model in PAPER_PLANNING_SETTINGS.values() for s in model.values())


def test_run_level_iqm_of_paper_returns_is_below_the_per_game_iqm() -> None:
    """Regression value: pooling the 16×15 episodes (rliable) gives 0.7304, not the paper's 0.8469."""
    blocks = [normalized_scores(g, v, "human") for g, v in sorted(PAPER_RAW_RETURNS["JOWA_150M"].items())]
    assert run_level_statistic(blocks, "iqm") == pytest.approx(0.73037, abs=1e-5)
    assert run_level_statistic(blocks, "iqm") == pytest.approx(stats.trim_mean(np.concatenate(blocks), 0.25))


# ---------------------------------------------------------------- normalisation


def test_hns_and_dns_definitions() -> None:
    # Assault: random 222.4, human 742, DQN 1525.2
    assert float(normalized_scores("Assault", 742.0, "human")) == pytest.approx(1.0)
    assert float(normalized_scores("Assault", 222.4, "dqn")) == pytest.approx(0.0)
    assert float(normalized_scores("Assault", 1525.2, "dqn")) == pytest.approx(1.0)
    np.testing.assert_allclose(normalized_scores("Pong", [-20.7, 14.6], "human"), [0.0, 1.0])


def test_official_reference_scores_of_the_20_jowa_games_are_unchanged() -> None:
    spec_8_5 = {  # random, human, DQN
        "Assault": (222.4, 742.0, 1525.2), "Atlantis": (12850.0, 29028.1, 853640.0),
        "BeamRider": (363.9, 16926.5, 5852.4), "Berzerk": (123.7, 2630.4, 487.5),
        "Carnival": (700.8, 3800.0, 4784.8), "Centipede": (2090.9, 12017.0, 2583.0),
        "ChopperCommand": (811.0, 7387.8, 2690.6), "DemonAttack": (152.1, 1971.0, 6361.6),
        "NameThisGame": (2292.3, 8049.0, 7278.6), "Phoenix": (761.4, 7242.6, 4996.6),
        "Seaquest": (68.4, 42054.7, 1600.7), "SpaceInvaders": (148.0, 1668.7, 1794.2),
        "StarGunner": (664.0, 10250.0, 42165.2), "TimePilot": (3568.0, 5229.2, 3654.4),
        "Zaxxon": (32.5, 9173.3, 4538.6), "Pong": (-20.7, 14.6, 16.6),
        "MsPacman": (307.3, 6951.6, 3402.4), "Gravitar": (173.0, 3351.4, 330.1),
        "YarsRevenge": (3092.9, 54576.9, 23909.4), "Robotank": (2.2, 11.9, 59.8),
    }
    assert sorted(spec_8_5) == sorted(PRETRAIN_GAMES + FINETUNE_GAMES)
    for game, values in spec_8_5.items():
        refs = REFERENCE_SCORES[game]
        assert (refs.random, refs.human, refs.dqn) == values, game
    # The official table covers 46 games in all (results/base_scores.py); Pooyan's human score there is a 0
    # placeholder, left out. The 11 other games with references have random/human only (DeepMind's Atari-57).
    with_dqn = {g for g, r in REFERENCE_SCORES.items() if r.dqn is not None}
    assert len(with_dqn) == 46 and set(spec_8_5) <= with_dqn
    assert (REFERENCE_SCORES["Breakout"].random, REFERENCE_SCORES["Breakout"].human, REFERENCE_SCORES["Breakout"].dqn) == (1.7, 30.5, 96.2)
    assert REFERENCE_SCORES["Pooyan"] == ReferenceScores(371.2, None, 3212.0)
    assert REFERENCE_SCORES["Boxing"].dqn == 78.0 and REFERENCE_SCORES["VideoPinball"].dqn == 63406.1
    assert len(REFERENCE_SCORES) == 57 and REFERENCE_SCORES["Asteroids"].dqn is None
    assert set(REFERENCE_SCORES) <= set(GAME_NAMES)


def test_games_with_partial_or_no_reference_scores() -> None:
    assert has_reference("Pong", "human") and has_reference("Pong", "dqn")
    assert has_reference("Breakout", "human") and has_reference("Breakout", "dqn")
    assert has_reference("Asteroids", "human") and not has_reference("Asteroids", "dqn")
    assert has_reference("Pooyan", "dqn") and not has_reference("Pooyan", "human")
    assert not has_reference("AirRaid", "human") and not has_reference("AirRaid", "dqn")
    # Breakout: random 1.7, human 30.5 (DeepMind's Atari-57 table)
    np.testing.assert_allclose(normalized_scores("Breakout", [1.7, 30.5], "human"), [0.0, 1.0])
    with pytest.raises(ValueError, match="Unknown game"):
        has_reference("Breakot", "human")
    with pytest.raises(ValueError, match="reference"):
        has_reference("Pong", "expert")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="No dqn reference score"):
        paper_aggregate({"Pong": 0.0, "Asteroids": 10.0}, "dqn")


def test_reference_below_random_swaps_min_and_max_as_official_code() -> None:
    assert float(normalize(5.0, low=10.0, high=0.0)) == pytest.approx(0.5)
    assert float(normalize(10.0, low=10.0, high=0.0)) == pytest.approx(1.0)  # official quirk: random -> 1
    with pytest.raises(ValueError, match="equal"):
        normalize(1.0, 3.0, 3.0)


def test_bad_inputs_fail_clearly() -> None:
    with pytest.raises(ValueError, match="Unknown game"):
        normalized_scores("Pacman", [1.0], "human")
    with pytest.raises(KeyError, match="No random/human/DQN"):
        normalized_scores("AirRaid", [1.0], "human")  # in the catalogue, but no reference scores
    with pytest.raises(KeyError, match="No dqn reference score"):
        normalized_scores("Asteroids", [1.0], "dqn")  # random/human known, but no official DQN score
    with pytest.raises(KeyError, match="No human reference score"):
        normalized_scores("Pooyan", [1.0], "human")  # the official human score is a 0 placeholder
    with pytest.raises(ValueError, match="reference"):
        normalized_scores("Pong", [1.0], "expert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        normalized_scores("Pong", [float("nan")], "human")
    with pytest.raises(ValueError, match="at least one game"):
        paper_aggregate({}, "human")
    with pytest.raises(ValueError, match="no scores"):
        stratified_bootstrap_ci([[1.0], []], reps=10)
    with pytest.raises(ValueError, match="Unknown statistic"):
        stratified_bootstrap_ci([[1.0]], "max", reps=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_ci([[1.0]], reps=0)
    with pytest.raises(ValueError, match="num_runs, num_games"):
        stratified_bootstrap_ci(np.zeros(5), reps=10)


# ---------------------------------------------------------------- (c) the stratified bootstrap


def test_identical_runs_give_a_zero_width_interval_at_the_point_estimate() -> None:
    scores = np.tile(np.array([[0.1, 0.5, 2.0, 7.0]]), (16, 1))  # 16 identical runs of 4 games
    for statistic in ("iqm", "median", "mean"):
        est = stratified_bootstrap_ci(scores, statistic, reps=500, seed=3)
        assert est.low == pytest.approx(est.point) and est.high == pytest.approx(est.point)
    assert stratified_bootstrap_ci(scores, "iqm", reps=10).point == pytest.approx((0.5 + 2.0) / 2)


def test_iqm_known_analytically() -> None:
    # 2 runs × 4 games = 8 pooled values 0..7: drop 2 each end, mean(2, 3, 4, 5) = 3.5
    scores = np.arange(8, dtype=float).reshape(2, 4)
    assert run_level_statistic(scores, "iqm") == 3.5
    assert trimmed_mean(np.arange(8.0)) == 3.5
    assert run_level_statistic(scores, "mean") == 3.5
    assert run_level_statistic(scores, "median") == pytest.approx(np.median(scores.mean(axis=0)))


def test_single_game_two_values_bootstrap_distribution_is_exact() -> None:
    # One game, runs {0, 1}: each replicate's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4.
    replicates = bootstrap_distribution([[0.0, 1.0]], "mean", reps=40_000, seed=0)
    values, counts = np.unique(replicates, return_counts=True)
    np.testing.assert_array_equal(values, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.01)


def test_ci_covers_true_iqm_and_shrinks_with_more_runs() -> None:
    rng = np.random.default_rng(7)
    widths = []
    for runs in (16, 64, 256):
        scores = rng.normal(loc=1.0, scale=1.0, size=(runs, 5))  # symmetric: population IQM = 1
        est = stratified_bootstrap_ci(scores, "iqm", reps=2000, seed=1)
        assert est.low < 1.0 < est.high
        assert est.low <= est.point <= est.high
        widths.append(est.high - est.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.3)  # ~1/sqrt(runs)


def test_bootstrap_is_deterministic_and_independent_of_chunking() -> None:
    scores = np.random.default_rng(0).normal(size=(10, 6))
    a = bootstrap_distribution(scores, "iqm", reps=3000, seed=11)
    b = bootstrap_distribution(scores, "iqm", reps=3000, seed=11, max_chunk_elements=700)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, bootstrap_distribution(scores, "iqm", reps=3000, seed=12))


def test_matrix_and_per_game_lists_agree_and_unequal_counts_work() -> None:
    scores = np.random.default_rng(1).normal(size=(8, 3))
    as_lists = [list(scores[:, g]) for g in range(3)]
    assert stratified_bootstrap_ci(scores, reps=500, seed=2) == stratified_bootstrap_ci(as_lists, reps=500, seed=2)
    ragged = [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0, 7.0, 8.0, 9.0]]
    est = stratified_bootstrap_ci(ragged, "iqm", reps=500, seed=2)
    assert est.point == pytest.approx(stats.trim_mean(np.arange(1.0, 10.0), 0.25))
    assert est.low <= est.point <= est.high


def test_run_level_aggregates_on_paper_returns() -> None:
    agg = run_level_aggregates(PAPER_RAW_RETURNS["JOWA_150M"], "human", reps=2000, seed=0)
    assert set(agg) == {"iqm", "median", "mean"}
    assert agg["median"].point == pytest.approx(paper_aggregate(
        {g: float(np.mean(v)) for g, v in PAPER_RAW_RETURNS["JOWA_150M"].items()}, "human").median)
    for est in agg.values():
        assert est.low <= est.point <= est.high and est.reps == 2000


def _rliable():
    # rliable 1.2 imports arch, which fails to import with pandas >= 3: skip rather than error.
    try:
        from rliable import library, metrics
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"rliable not importable: {err}")
    return library, metrics


def test_matches_rliable_on_random_data() -> None:
    library, rly_metrics = _rliable()
    scores = np.random.default_rng(5).normal(size=(10, 5)) * np.arange(1, 6)
    reps = 2000
    np.random.seed(0)  # rliable's StratifiedBootstrap draws from the global numpy state
    funcs = {
        "iqm": rly_metrics.aggregate_iqm, "median": rly_metrics.aggregate_median, "mean": rly_metrics.aggregate_mean,
    }
    points, intervals = library.get_interval_estimates(
        {"x": scores}, lambda s: np.array([f(s) for f in funcs.values()]), reps=reps)
    for i, name in enumerate(funcs):
        ours = stratified_bootstrap_ci(scores, name, reps=reps, seed=0)
        assert ours.point == pytest.approx(points["x"][i], abs=1e-12)
        width = intervals["x"][1][i] - intervals["x"][0][i]
        assert ours.low == pytest.approx(intervals["x"][0][i], abs=0.1 * width)
        assert ours.high == pytest.approx(intervals["x"][1][i], abs=0.1 * width)
