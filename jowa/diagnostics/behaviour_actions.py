"""How much the logged actions depend on the state: a behaviour agent read on its own logged episodes.

An offline critic or planner can only rank actions by what the data shows them do. If the behaviour
policy picks nearly the same action distribution in every state (a high-entropy policy early in its
learning), the logged actions carry no state-dependent preference to learn: its value is flat across
actions, and the most useful thing any offline agent can learn is the policy's overall bias. This reads
the final agent of a behaviour run (`collect.py --agent`) on the logged frames of the last part of its run
and compares its greedy action with the logged one, beside always playing the data's most common action.

    python -m jowa.diagnostics.behaviour_actions --behaviour runs/behaviour --games Seaquest,Assault
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from jowa.behaviour.policy import BehaviourPolicy, load_behaviour_policy
from jowa.behaviour.vec_env import STACK
from jowa.data.replay import read_run, scan_run
from jowa.games import NUM_ACTIONS, minimal_to_full


def action_measures(probabilities: np.ndarray, logged: np.ndarray, to_full: np.ndarray) -> dict[str, float]:
    """probabilities [n, A] of the agent's minimal-set actions, logged [n] full-set actions -> the measures."""
    greedy = to_full[probabilities.argmax(axis=1)]
    counts = np.bincount(logged, minlength=NUM_ACTIONS)
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, None))).sum(axis=1)
    return {
        "steps": int(len(logged)),
        "greedy_equals_logged": float((greedy == logged).mean()),
        "most_common_action_share": float(counts.max() / len(logged)),
        "mean_max_probability": float(probabilities.max(axis=1).mean()),
        "uniform_probability": 1.0 / probabilities.shape[1],
        "mean_entropy_over_uniform": float(entropy.mean() / np.log(probabilities.shape[1])),
    }


def repeat_share(episodes: list[np.ndarray]) -> float:
    """Logged actions of whole episodes (or their first steps) → how often a step repeats the step before it.
    Far above the most common action's share, the previous action predicts the next one: a model that sees the
    actions before (the world model's context) can agree with the data by copying them."""
    pairs = [(a[1:] == a[:-1]) for a in episodes if len(a) > 1]
    return float(np.concatenate(pairs).mean()) if pairs else float("nan")


def agent_probabilities(policy: BehaviourPolicy, frames: np.ndarray) -> np.ndarray:
    """The agent on one episode's frames [n, 84, 84] (4 stacked, the first repeated, as it played) -> [n, A]."""
    stacks = np.stack([frames[np.clip(np.arange(t - STACK + 1, t + 1), 0, None)] for t in range(len(frames))])
    return policy.probabilities(stacks).cpu().numpy()


def measure_run(root: Path, game: str, run: str, last_fraction: float, max_steps: int) -> dict[str, float]:
    """The measures on up to `max_steps` logged steps of the last `last_fraction` of the run's episodes."""
    spans = list(scan_run(root, game, run))
    wanted = {span.start for span in spans[int(len(spans) * (1 - last_fraction)):]}
    policy = load_behaviour_policy(root / game / run)  # the final agent
    probabilities, logged = [], []
    for episode in read_run(root, game, run, want=lambda _run, start: start in wanted):
        if episode.start not in wanted:
            continue
        take = min(len(episode.frames), max_steps - sum(map(len, logged)), 400)  # a few episodes, not one
        probabilities.append(agent_probabilities(policy, episode.frames[:take]))
        logged.append(episode.actions[:take])
        if sum(map(len, logged)) >= max_steps:
            break
    if not logged:
        raise ValueError(f"{root / game / run}: no complete episode in the last {last_fraction:.0%} of the run")
    to_full = np.asarray(minimal_to_full(game), dtype=np.int64)
    return {**action_measures(np.concatenate(probabilities), np.concatenate(logged), to_full),
            "logged_repeats_previous": repeat_share(logged)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--behaviour", type=Path, required=True, help="behaviour runs: {Game}/{run}/replay_logs")
    parser.add_argument("--games", required=True, help="comma-separated")
    parser.add_argument("--run", default="1")
    parser.add_argument("--last-fraction", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=2000, help="logged steps read per game")
    parser.add_argument("--out", type=Path, help="also write the measures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    print("| game | steps | final agent's greedy = logged action | most common action's share | "
          "mean max probability (uniform) | mean entropy / ln A | logged action repeats the one before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for game in args.games.split(","):
        m = results[game] = measure_run(args.behaviour, game, args.run, args.last_fraction, args.steps)
        print(f"| {game} | {m['steps']} | {m['greedy_equals_logged']:.3f} | {m['most_common_action_share']:.3f} | "
              f"{m['mean_max_probability']:.3f} ({m['uniform_probability']:.3f}) | {m['mean_entropy_over_uniform']:.3f} | "
              f"{m['logged_repeats_previous']:.3f} |",
              flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
