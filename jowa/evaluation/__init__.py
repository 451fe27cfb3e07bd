"""Evaluation: normalised scores, aggregates with confidence intervals, and report writing."""

from jowa.evaluation.metrics import (
    IntervalEstimate,
    PaperAggregate,
    bootstrap_distribution,
    dqn_normalized,
    human_normalized,
    normalize,
    normalized_scores,
    paper_aggregate,
    run_level_aggregates,
    run_level_statistic,
    stratified_bootstrap_ci,
    trimmed_mean,
)
from jowa.evaluation.report import EvaluationResults, load_report, write_report, write_video

__all__ = [
    "EvaluationResults", "IntervalEstimate", "PaperAggregate", "bootstrap_distribution", "dqn_normalized",
    "human_normalized", "load_report", "normalize", "normalized_scores", "paper_aggregate",
    "run_level_aggregates", "run_level_statistic", "stratified_bootstrap_ci", "trimmed_mean",
    "write_report", "write_video",
]
