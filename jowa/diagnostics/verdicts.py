"""Plain-language verdicts computed from the diagnostics (never written in advance): each compares a
measure with its trivial baseline and says what the difference means."""

from __future__ import annotations

import math
from collections.abc import Mapping

NO_BETTER = 0.9  # model error ≥ this × the baseline's: "no better than the baseline"
CLEARLY_BETTER = 0.5  # model error ≤ this × the baseline's: "clearly better"
UNIFORM_MARGIN = 0.05  # TD loss within this fraction of ln(atoms): "at the uniform distribution's loss"
OBJECTS_KEPT = 0.5  # share of the small moving objects a tokenizer must keep to "keep the objects"
ACTION_MARGIN = 0.05  # greedy-equals-data this much above the most common action's share: "above" it


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.0f} %"


def tokenizer_verdict(m: Mapping[str, float]) -> str:
    """From `tokenizer_measures` keys: does the tokenizer keep the objects and the motion?"""
    parts = []
    for key, what, lost in (("foreground", "foreground error", "the objects are lost"),
                            ("changed", "error on the pixels that move", "the motion is lost")):
        model, baseline = m[f"l1_{key}"], m[f"background_l1_{key}"]
        if math.isnan(model) or math.isnan(baseline) or baseline == 0:
            parts.append(f"no {key} pixels in the sample to judge by")
        elif model >= NO_BETTER * baseline:
            than = "worse than" if model > baseline else "no better than"
            parts.append(f"the {what} {model:.3f} is {than} drawing the background ({baseline:.3f}): {lost}")
        elif model <= CLEARLY_BETTER * baseline:
            parts.append(f"the {what} {model:.3f} is well below drawing the background ({baseline:.3f})")
        else:
            parts.append(f"the {what} {model:.3f} is only somewhat below drawing the background ({baseline:.3f})")
    if m.get("small_objects"):
        kept = m["small_objects_kept"]
        parts.append(f"it keeps {_pct(kept)} of the {m['small_objects']:.0f} small moving objects (balls, shots)"
                     + ("" if kept >= OBJECTS_KEPT else ": most are lost"))
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def world_verdict(m: Mapping[str, float]) -> str:
    """From `world_measures` keys: does the world model predict what changes, and the rewards?"""
    changed, model, copy = m["changed_token_accuracy"], m["token_accuracy"], m["copy_token_accuracy"]
    text = (f"{_pct(m['changed_token_fraction'])} of the next frame's tokens change; the model predicts "
            f"{_pct(changed)} of those, ")
    if model <= copy:
        text += f"and overall it is right on {_pct(model)} of the tokens, no better than copying the last frame ({_pct(copy)})"
    else:
        text += f"and overall {_pct(model)} of the tokens against {_pct(copy)} for copying the last frame"
    if not math.isnan(changed) and changed < 0.05:
        text += ": its low loss is the static part of the screen"
    rewarded, hit = m["rewarded_fraction"], m["rewarded_accuracy"]
    if rewarded == 0 or math.isnan(rewarded):
        return text + ". No step of the sample has a reward, so the reward head cannot be judged."
    text += (f". {_pct(rewarded)} of the steps have a reward; the reward head gets the sign of {_pct(hit)} of "
             f"those right (always predicting the most common class: {_pct(m['majority_rewarded_accuracy'])})")
    return text + (", i.e. it has learnt nothing about rewards." if hit <= m["majority_rewarded_accuracy"] else ".")


def _actions_clause(m: Mapping[str, float]) -> str:
    """Does the greedy policy read the screen? Its agreement with the data's actions beside always playing
    the data's most common one, and how much of the time it plays its own most common action."""
    match, common, top = (m.get(k, math.nan) for k in ("greedy_matches_data", "most_common_action_share",
                                                       "greedy_top_action_share"))
    if math.isnan(match) or math.isnan(common):
        return ""
    how = ("above" if match > common + ACTION_MARGIN else "no better than" if match <= common else "barely above")
    text = (f"; its greedy action is the data's on {100 * match:.0f} % of the steps, {how} the {100 * common:.0f} % "
            "of always playing the data's most common action")
    text += f", and it plays one action on {100 * top:.0f} % of them" if not math.isnan(top) else ""
    return text + _copy_clause(m)


def _copy_clause(m: Mapping[str, float]) -> str:
    """Does greedy read the screen or name the previous action of its context (which in its own episodes is
    its own)? From `copy_measures`: with the context's actions swapped, one that copies follows the swap."""
    repeat, follows, kept = (m.get(k, math.nan) for k in ("data_repeats_previous", "greedy_follows_swap",
                                                          "greedy_kept_under_swap"))
    if math.isnan(follows):
        return ""
    how = ("it copies the previous action more than it reads the screen" if follows > kept
           else "it reads the screen more than it copies the previous action")
    return (f"; the data repeat their previous action on {100 * repeat:.0f} % of the steps, and with the "
            f"context's actions swapped greedy names the new previous action on {100 * follows:.0f} % and keeps "
            f"its own choice on {100 * kept:.0f} %: {how}")


def critic_verdict(m: Mapping[str, float]) -> str:
    """From `critic_measures` keys: has the critic learnt anything about returns and actions?"""
    td, uniform, entropy = m["td_loss"], m["uniform_td_loss"], m.get("td_target_entropy", math.nan)
    if td >= (1 - UNIFORM_MARGIN) * uniform:
        text = f"The TD loss {td:.3f} is at that of a uniform return distribution (ln atoms = {uniform:.3f})"
        if not math.isnan(entropy) and entropy >= (1 - UNIFORM_MARGIN) * uniform:
            text += (f", but so is its target's own entropy ({entropy:.3f}, the lowest the loss can be): the "
                     "bootstrapped target is still near-uniform, too few target copies have narrowed it")
        else:
            text += ": no return is learnt"
    else:
        text = f"The TD loss {td:.3f} is below a uniform return distribution's ({uniform:.3f})"
        if not math.isnan(entropy):
            text += f", {td - entropy:.3f} above its target's own entropy ({entropy:.3f})"
    text += f"; Q differs by {m['q_spread']:.3f} on average between the best and worst valid action"
    text += _actions_clause(m)
    r = m.get("q_return_correlation", math.nan)
    if "q_return_mean_error" not in m:
        return text + "."
    if math.isnan(r):
        text += "; Q or the returns are constant over the episodes, so their correlation is undefined"
    else:
        strength = "tracks" if r >= 0.5 else "weakly tracks" if r >= 0.2 else "does not track"
        text += f"; Q {strength} the observed discounted returns (correlation {r:.2f})"
    return text + f", and is off by {m['q_return_mean_error']:+.3f} on average (mean return-to-go {m['return_mean']:.3f})."
