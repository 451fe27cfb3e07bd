"""Does pretraining help few-shot fine-tuning? A tiny JOWA pretrained on a few games vs the same architecture
from scratch, fine-tuned with the same steps on the same transitions of a held-out game.

    python benchmarks/finetune_transfer.py --work runs/transfer            # ≈ 15 min on 2 CPU cores

1. Collect random-policy data (data/atari/collect.py's library) for the pretraining games and the held-out game.
2. Pretrain `--size tiny` on the pretraining games (pretrain.py's library; tokenizer without LPIPS to save time).
3. Build the "scratch" run: a freshly initialised world model of the same size, with the *pretrained tokenizer*
   (both models must read the same tokens, so the comparison isolates the world-action model).
4. Fine-tune both (finetune.py's library) on the first `--transitions` transitions of the held-out game.
5. Measure the world-model cross-entropies on held-out episodes of that game (episodes after those used
   for training, never seen by either model) before fine-tuning and at every `--curve-every` steps, and the
   greedy return of the fine-tuned agents (the evaluation code of plan.py), beside a uniform random policy.
Re-running with the same --work reuses the data and the pretrained run. Results: WORK/transfer.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jowa.data.batch import Batch  # noqa: E402
from jowa.data.segments import SegmentRef, collate  # noqa: E402
from jowa.finetuning.data import Pick, choose, game_spans, read_picks, tokenize  # noqa: E402
from jowa.finetuning.run import FinetuneOptions, finetune  # noqa: E402
from jowa.games import task_id  # noqa: E402
from jowa.losses import IGNORE_INDEX, world_model_labels, world_model_losses  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.objective import interleave  # noqa: E402
from jowa.tokenizer import Tokenizer  # noqa: E402


def collect_data(replay: Path, games: list[str], transitions: int) -> None:
    from jowa.data.collect import collect

    todo = [g for g in games if not (replay / g).is_dir()]
    if todo:
        collect(todo, transitions, replay, seed=0, progress=False)


def pretrain_run(args: argparse.Namespace, replay: Path, run: Path) -> float:
    from jowa.training.distributed import init_distributed
    from jowa.training.pretrain import PretrainOptions, pretrain

    started = time.perf_counter()
    overrides = [
        "model.tokenizer.lpips_net=none", f"tokenizer.steps={args.tokenizer_steps}",
        f"world.steps={args.pretrain_steps}",
        f"world.critic_start={args.pretrain_steps // 2}", "logging.progress_bar=false", "logging.every=50",
        f"checkpoint.every={args.pretrain_steps}",
    ]
    pretrain(PretrainOptions(size="tiny", out=run, replay=replay, games=args.pretrain_games, overrides=overrides),
             init_distributed("cpu", argv=[]))
    return time.perf_counter() - started


def scratch_run(pretrained: Path, scratch: Path, seed: int) -> None:
    """Same architecture, fresh weights; the pretrained tokenizer."""
    model_config = WorldActionModel.read_config(pretrained / "final" / "world_model")
    torch.manual_seed(seed)
    WorldActionModel(model_config).save_pretrained(scratch / "final" / "world_model")
    shutil.copytree(pretrained / "final" / "tokenizer", scratch / "final" / "tokenizer", dirs_exist_ok=True)


def heldout_batches(replay: Path, game: str, train_transitions: int, limit: int, tokenizer: Tokenizer) -> list[Batch]:
    """Stride-1 segments of the game's episodes that start after every training episode."""
    spans = game_spans(replay, game)
    used = choose(spans, train_transitions, "first")
    after = [s for s in spans if s.start > used[-1].span.start]
    picks, total = [], 0
    for span in after:
        if total >= limit:
            break
        picks.append(Pick(span, 0, min(span.length, limit - total)))
        total += picks[-1].length
    if total < limit:
        raise SystemExit(f"only {total} held-out transitions of {game}; collect more (--heldout-margin)")
    episodes = tokenize(read_picks(replay, picks), tokenizer, 512, torch.device("cpu"))
    refs = [SegmentRef(e, s) for e in episodes for s in range(e.steps)]  # every stride-1 segment once
    return [collate(refs[i:i + 64], 8, lambda _: task_id(game)) for i in range(0, len(refs), 64)]


@torch.no_grad()
def heldout_losses(model: WorldActionModel, batches: list[Batch]) -> dict[str, float]:
    """Token-weighted mean observation CE, step-weighted reward and end CEs (eval mode)."""
    model.eval()
    sums, counts = [0.0, 0.0, 0.0], [0, 0, 0]
    for batch in batches:
        out = model(interleave(batch.observations, batch.actions), batch.tasks, with_target=False)
        losses = world_model_losses(out.logits_observations, out.logits_rewards, out.logits_ends, batch.observations,
                                    batch.rewards, batch.ends, batch.mask_padding)
        labels = world_model_labels(batch.observations, batch.rewards, batch.ends, batch.mask_padding)
        for i, (loss, label) in enumerate(zip(losses, labels)):
            n = int((label != IGNORE_INDEX).sum())
            sums[i] += float(loss) * n
            counts[i] += n
    return {name: s / c for name, s, c in zip(("obs", "reward", "end"), sums, counts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--pretrain-games", default="Pong,SpaceInvaders,DemonAttack,Assault")
    parser.add_argument("--game", default="Breakout", help="the held-out game")
    parser.add_argument("--pretrain-transitions", type=int, default=10_000, help="per pretraining game")
    parser.add_argument("--tokenizer-steps", type=int, default=300)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--transitions", type=int, default=5000, help="fine-tuning transitions of the held-out game")
    parser.add_argument("--heldout", type=int, default=1000, help="held-out transitions for the world-model loss")
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps (both models)")
    parser.add_argument("--curve-every", type=int, default=25, help="held-out losses every this many steps")
    parser.add_argument("--episodes", type=int, default=8, help="greedy evaluation episodes per model")
    parser.add_argument("--max-steps", type=int, default=500, help="agent-step cap per evaluation episode")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("overrides", nargs="*", help="extra fine-tuning config overrides (key=value)")
    args = parser.parse_args()
    args.pretrain_games = [g.strip() for g in args.pretrain_games.split(",") if g.strip()]
    if args.game in args.pretrain_games:
        raise SystemExit(f"--game {args.game} must not be a pretraining game")
    if args.threads:
        torch.set_num_threads(args.threads)
    work, replay = args.work, args.work / "replay"
    timings: dict[str, float] = {}

    started = time.perf_counter()
    collect_data(replay, args.pretrain_games, args.pretrain_transitions)
    # a margin: the held-out episodes start after the last (possibly cut) training episode
    collect_data(replay, [args.game], args.transitions + args.heldout + 2000)
    timings["collect"] = time.perf_counter() - started
    pretrained = work / "pretrained"
    timings["pretrain"] = pretrain_run(args, replay, pretrained)
    scratch = work / "scratch"
    scratch_run(pretrained, scratch, seed=1)

    tokenizer = Tokenizer.from_pretrained(pretrained / "final" / "tokenizer").eval()
    heldout = heldout_batches(replay, args.game, args.transitions, args.heldout, tokenizer)
    overrides = ["evaluation.every=0", f"evaluation.final.episodes={args.episodes}",
                 f"evaluation.final.num_envs={args.episodes}", f"evaluation.final.max_episode_steps={args.max_steps}",
                 "logging.progress_bar=false", "logging.every=25", f"checkpoint.every={args.curve_every}",
                 f"checkpoint.keep_last={args.steps // args.curve_every + 1}", *args.overrides]
    rows = {}
    for name, run, games in (("pretrained", pretrained, None), ("scratch", scratch, [])):
        before = heldout_losses(WorldActionModel.from_pretrained(run / "final" / "world_model"), heldout)
        out = work / f"finetune-{name}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        summary = finetune(FinetuneOptions(
            run=run, game=args.game, out=out, replay=replay, config="tiny", transitions=args.transitions,
            select="first", steps=args.steps, overrides=overrides, pretrained_games=games, progress=False,
            device="cpu"))
        timings[f"finetune-{name}"] = time.perf_counter() - t0
        curve = {0: before}
        for step_dir in sorted((out / "train" / "checkpoints").glob("step_*")):
            model = WorldActionModel.from_pretrained(step_dir / "world_model")
            curve[int(step_dir.name.split("_")[1])] = heldout_losses(model, heldout)
        returns = summary["report_returns"]
        rows[name] = {"before": before, "after": curve[max(curve)], "curve": curve, "greedy": returns["agent"],
                      "random": returns["random"], "train_losses": summary["losses"]["finetune"]["last"]}
        print(f"[{name}] fine-tuned in {timings[f'finetune-{name}']:.0f}s", flush=True)

    print(f"\nHeld-out {args.game}: {args.transitions} fine-tuning transitions, {args.steps} steps each; "
          f"world-model CEs on {args.heldout} unseen transitions (before → after fine-tuning); greedy return over "
          f"{args.episodes} episodes capped at {args.max_steps} agent steps")
    print(f"{'model':<12}{'obs CE':>22}{'reward CE':>20}{'end CE':>20}{'greedy return':>18}{'random':>10}")
    for name, row in rows.items():
        b, a = row["before"], row["after"]
        print(f"{name:<12}" + "".join(f"{b[k]:>10.3f} → {a[k]:<7.3f}" for k in ("obs", "reward", "end"))
              + f"{row['greedy']['mean']:>18.2f}{row['random']['mean']:>10.2f}")
    print("\nHeld-out world-model CEs during fine-tuning")
    print(f"{'step':>6}{'obs: pretrained':>18}{'scratch':>10}{'reward: pretrained':>21}{'scratch':>10}")
    p, q = rows["pretrained"]["curve"], rows["scratch"]["curve"]
    for step in sorted(p):
        print(f"{step:>6}{p[step]['obs']:>18.4f}{q[step]['obs']:>10.4f}"
              f"{p[step]['reward']:>21.4f}{q[step]['reward']:>10.4f}")
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "threads": torch.get_num_threads(), "rows": rows, "timings": timings}
    (work / "transfer.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
