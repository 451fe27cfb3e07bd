"""The demo report's diagnostics section: measures that a black background or a static frame cannot
flatter (jowa.diagnostics), each beside its trivial baseline, with verdicts computed from the numbers.

Computed at report time on the demo's own data, with the same functions the training hooks log: the
tokenizers on per-game samples of consecutive replay frames, the pretrained world model on the
episodes of each pretraining game's token shards that end. The training-time series (`diag/*` in metrics.jsonl)
are shown first → last beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jowa.demo.config import DemoConfig
from jowa.diagnostics.verdicts import critic_verdict, tokenizer_verdict, world_verdict
from jowa.training.logger import read_metrics

TRAINING_KEYS = {
    "tokenizer": ("l1_all", "l1_foreground", "background_l1_foreground", "l1_changed", "background_l1_changed",
                  "small_objects_kept", "code_usage", "code_perplexity"),
    "world": ("token_accuracy", "copy_token_accuracy", "changed_token_accuracy", "rewarded_accuracy",
              "td_loss", "td_target_entropy", "uniform_td_loss", "q_spread", "q_return_correlation",
              "greedy_matches_data", "data_repeats_previous", "greedy_follows_swap"),
}


def tokenizer_rows(out: Path, config: DemoConfig) -> list[dict[str, Any]]:
    """Each game through the pretrained tokenizer, and the held-out game through the fine-tuned one."""
    from jowa.diagnostics import report_rows
    from jowa.model_files import find_model_dir

    samples = report_rows.frame_samples(out / "replay", config.all_games, config.seed)
    runs = [("pretrained", find_model_dir(out / "pretrain", "tokenizer"), config.all_games),
            ("fine-tuned", find_model_dir(out / "finetune", "tokenizer"), [config.held_out])]
    return report_rows.tokenizer_rows(runs, samples)


def world_rows(out: Path, config: DemoConfig) -> list[dict[str, Any]]:
    """The pretrained world model on episodes that end (whole, or their last steps) of each pretraining game."""
    from jowa.diagnostics import report_rows
    from jowa.model_files import find_model_dir

    model_dir = find_model_dir(out / "pretrain", "world_model")
    planning = (config.evaluation.context, config.evaluation.beam_width)
    return report_rows.world_rows(model_dir, out / "pretrain" / "tokens", config.games, planning=planning)


def _f(x: float, digits: int = 3) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f} %"


def training_lines(out: Path) -> list[str]:
    """First → last logged value of the key `diag/*` series of each pretraining stage."""
    lines = ["| stage | measure | first logged | last logged |", "| --- | --- | ---: | ---: |"]
    for stage, keys in TRAINING_KEYS.items():
        path = out / "pretrain" / stage / "metrics.jsonl"
        series = read_metrics(path) if path.is_file() else {}
        for key in keys:
            values = series.get(f"diag/{key}")
            if values:
                steps = sorted(values)
                lines.append(f"| {stage} | {key} (step {steps[0]} → {steps[-1]}) | {_f(values[steps[0]])} | "
                             f"{_f(values[steps[-1]])} |")
    return lines if len(lines) > 2 else []


def tokenizer_lines(rows: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| game | tokenizer | all pixels: model / background | foreground: model / background | "
             "changed: model / background | foreground, changed pixels | small moving objects kept | codes used | "
             "code perplexity |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['game']} | {r['tokenizer']} | {_f(r['l1_all'])} / {_f(r['background_l1_all'])} | "
                     f"{_f(r['l1_foreground'])} / {_f(r['background_l1_foreground'])} | "
                     f"{_f(r['l1_changed'])} / {_f(r['background_l1_changed'])} | "
                     f"{_p(r['foreground_fraction'])}, {_p(r['changed_fraction'])} | {_kept(r)} | "
                     f"{_p(r['code_usage'])} ({r['codes_used']:.0f}) | {_f(r['code_perplexity'], 1)} |")
    lines.append("")
    lines += [f"- **{r['game']}, {r['tokenizer']} tokenizer**: {tokenizer_verdict(r)}" for r in rows]
    return lines


def _kept(r: Mapping[str, Any]) -> str:
    """"54 % of 414"; "–" for a row measured before the count existed."""
    if "small_objects" not in r:
        return "–"
    return f"{_p(r['small_objects_kept'])} of {r['small_objects']:.0f}"


def world_lines(rows: list[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return [f"No game's token shards hold an episode to measure on."]
    lines = ["| game | steps (episodes) | tokens: model / copy last frame | changed tokens: fraction, model "
             "accuracy | rewarded steps: fraction, model / majority | TD loss / target entropy / ln(atoms) | Q spread | "
             "Q vs return: correlation, mean error | data repeat / greedy follows swap / keeps |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['game']} | {r['steps']} ({r['episodes']}) | {_p(r['token_accuracy'])} / "
                     f"{_p(r['copy_token_accuracy'])} | {_p(r['changed_token_fraction'])}, "
                     f"{_p(r['changed_token_accuracy'])} | {_p(r['rewarded_fraction'])}, {_p(r['rewarded_accuracy'])} / "
                     f"{_p(r['majority_rewarded_accuracy'])} | {_f(r['td_loss'])} / {_f(r['td_target_entropy'])} / "
                     f"{_f(r['uniform_td_loss'])} | "
                     f"{_f(r['q_spread'])} | {_f(r.get('q_return_correlation', float('nan')), 2)}, "
                     f"{_f(r.get('q_return_mean_error', float('nan')))} | "
                     f"{_p(r.get('data_repeats_previous', float('nan')))} / "
                     f"{_p(r.get('greedy_follows_swap', float('nan')))} / "
                     f"{_p(r.get('greedy_kept_under_swap', float('nan')))} |")
    lines.append("")
    lines += [f"- **{r['game']}**: {world_verdict(r)} {critic_verdict(r)}" for r in rows]
    return lines + planning_lines(rows)


def planning_lines(rows: list[Mapping[str, Any]]) -> list[str]:
    """The one-step beam search on the same logged states (rows measured with `planning`), or nothing."""
    rows = [r for r in rows if r.get("plan_states")]
    if not rows:
        return []
    lines = ["", "Planning on these logged states (memory = the evaluation's context, then one imagined step of the "
             "beam search, K = the evaluation's): how often it keeps greedy's action, and the value it imagines for "
             "the data's action beside the same value on the real next frame, r + γ max Q(s′):", "",
             "| game | states | plan = greedy | plan / greedy = data | top action share: plan / greedy | "
             "Q gap best − second | imagined − root Q | imagined − real value (mean, mean abs) | imagined reward sign right |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['game']} | {int(r['plan_states'])} | {_p(r['plan_matches_greedy'])} | "
                     f"{_p(r['plan_matches_data'])} / {_p(r['greedy_matches_data_here'])} | "
                     f"{_p(r['plan_top_action_share'])} / {_p(r['greedy_top_action_share_here'])} | "
                     f"{_f(r['root_q_gap_top2'])} | {_f(r['imagined_minus_root_q'])} | "
                     f"{_f(r['imagined_minus_real_value'])}, {_f(r['imagined_real_abs_gap'])} | "
                     f"{_p(r['imagined_reward_sign_matches'])} |")
    return lines


def measures_section(out: Path, config: DemoConfig, number: str) -> list[str]:
    """The report's markdown lines for the diagnostics section."""
    from jowa.diagnostics import CHANGE_LEVELS, FOREGROUND_LEVELS

    md = [f"## {number}. Measures a black background cannot flatter", "",
          "Most of an Atari frame is static background, so a low mean pixel error or a low next-token loss can "
          "come from the background alone. These measures look only at what matters, each beside a trivial "
          "baseline that knows nothing:", "",
          f"- **Tokenizer**: mean absolute error (0..1 grey range) on *foreground* pixels (more than "
          f"{FOREGROUND_LEVELS} grey levels from the game's background, the per-pixel median of its frames) and on "
          f"*changed* pixels (more than {CHANGE_LEVELS} levels different from the previous frame), beside drawing "
          "the background itself as the reconstruction; codes used of the vocabulary and the perplexity of "
          "the code histogram, over 64 frames per game.",
          "- **World model** (teacher-forced, on episodes of the token shards that end, whole or their last steps, cut into 8-step windows): "
          "next-frame token accuracy overall and on the tokens that change, beside copying the last frame "
          "(whose accuracy on changed tokens is 0 by definition); reward-sign accuracy on the steps with a "
          "reward, beside always predicting the most common class.",
          "- **Critic**: the TD loss beside ln(atoms), the loss of a uniform return distribution; the mean gap "
          "between the best and worst valid action's Q; Q(s, a taken) against the observed return-to-go "
          "(clipped rewards, γ = 0.99).", ""]
    trained = training_lines(out)
    if trained:
        md += ["During pretraining (the fixed samples of the training hooks, all games together):", "", *trained, ""]
    md += ["**Tokenizers** on the demo's replay:", "", *tokenizer_lines(tokenizer_rows(out, config)), "",
           "**Pretrained world-action model** on episodes that end (whole, or their last steps):", "", *world_lines(world_rows(out, config))]
    return md
