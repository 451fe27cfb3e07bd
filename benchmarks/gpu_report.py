"""The Python half of benchmarks/gpu_check.sh: check its overrides, measure token agreement, write the report.

    python benchmarks/gpu_report.py check [--require-cuda] "K=V K=V" ...     # each set of training overrides validates
    python benchmarks/gpu_report.py require-cuda                             # exit 3 with a message when CUDA is missing
    python benchmarks/gpu_report.py agreement --tokenizer DIR --replay DIR --games A,B --out FILE.json
    python benchmarks/gpu_report.py report --dir OUT --bench BENCHMARKS.md   # OUT/gpu_check.json + the GPU section

The report holds only what the run measured: each step's status and seconds (OUT/steps.jsonl, written by the
shell script), the training-step table (OUT/train_step.json), the planning table (OUT/planning.md) and the
token agreement (OUT/agreement.json). A missing or failed piece is reported as such, never filled in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

NO_CUDA_EXIT = 3


def check_overrides(overrides: list[str], config: str = "official") -> str:
    """The official training config with the script's overrides: raises on an unknown key or a bad value."""
    from jowa.config import apply_overrides
    from jowa.training.config import load_training, validate

    training = apply_overrides(load_training(config), overrides)
    validate(training)
    return f"{len(overrides)} overrides of configs/training/{config}.yaml parse and validate"


def cuda_problem() -> str | None:
    """None when a CUDA device is usable, else why not (in words)."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build (no CUDA); install a CUDA build of torch 2.13.0 first"
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device "
                f"(driver? CUDA_VISIBLE_DEVICES?)")
    return None


def require_cuda() -> int:
    problem = cuda_problem()
    if problem is not None:
        print(f"gpu_check: CUDA is missing: {problem}. Nothing was run.", file=sys.stderr)
        return NO_CUDA_EXIT
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    return 0


def token_agreement(tokenizer_dir: Path, replay: Path, games: list[str], frames: int = 2048) -> dict[str, Any]:
    """The share of tokens that bf16 autocast leaves as fp32 gives them (the nearest-code search itself is fp32)."""
    from jowa.tokenizer import Tokenizer
    from jowa.training.frames import load_frame_pool

    device = torch.device("cuda")
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir, map_location=device).eval()
    pool = load_frame_pool(replay, games, frames, 4 * frames, 0, 0, 1)
    batch = torch.from_numpy(pool.frames[:frames]).to(device)
    with torch.no_grad():
        fp32 = tokenizer.encode_tokens(batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = tokenizer.encode_tokens(batch)
    same = (fp32 == bf16).float().mean().item()
    frames_same = (fp32 == bf16).flatten(1).all(dim=1).float().mean().item()
    return {"frames": int(batch.shape[0]), "token_agreement": same, "frames_identical": frames_same}


def markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in `text`, as header → cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(lines) < 3:
        return []
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def collect(directory: Path) -> dict[str, Any]:
    """Everything the run left in `directory`, as one JSON-able dict."""
    steps = [json.loads(line) for line in (directory / "steps.jsonl").read_text().splitlines() if line.strip()] \
        if (directory / "steps.jsonl").is_file() else []
    planning = directory / "planning.md"
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "steps": steps,
        "train_step": _read_json(directory / "train_step.json"),
        "planning": markdown_rows(planning.read_text()) if planning.is_file() else None,
        "token_agreement": _read_json(directory / "agreement.json"),
    }


def _table(rows: list[dict[str, str]], title: str) -> list[str]:
    if not rows:
        return [f"**{title}**: not measured (the step failed or did not run).", ""]
    header = list(rows[0])
    return [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row.get(h, "") for h in header) + " |" for row in rows), ""]


def render(result: dict[str, Any], command: str) -> str:
    """The GPU section of BENCHMARKS.md, from measured values only."""
    from benchmarks.common import cpu_label

    total = sum(s.get("seconds", 0.0) for s in result["steps"])
    lines = [f"## GPU: {result['gpu']}", "",
             f"Generated by `{command}` on {result['generated']} in {total:.0f} s (every step below). Host "
             f"{cpu_label()}; torch {result['torch']}, CUDA {result['cuda']}.", "",
             "**Steps** (150M unless said otherwise; a few steps each: a check that every stage runs on the GPU)", "",
             "| step | status | seconds |", "|---|---|---:|"]
    lines += [f"| {s['name']} | {s['status']} | {s.get('seconds', 0.0):.1f} |" for s in result["steps"]]
    lines += [""]
    lines += _table(result["train_step"] or [], "Training step, 150M, 64 segments, bf16: eager vs compiled (MFU by the "
                                                "honest FLOPs count)")
    lines += _table(result["planning"] or [], "Planning decisions/s, 40M, bf16, E = 16 and 64")
    agreement = result["token_agreement"]
    if agreement:
        lines += [f"**Token agreement**, fp32 vs bf16 autocast (encoder under autocast, nearest-code search in fp32), "
                  f"{agreement['frames']} frames of the run's replay, the run's own tokenizer (a few steps old): "
                  f"{100 * agreement['token_agreement']:.3f} % of tokens, {100 * agreement['frames_identical']:.1f} % "
                  f"of frames identical.", ""]
    else:
        lines += ["**Token agreement**: not measured (the step failed or did not run).", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(directory: Path, bench: Path, command: str) -> Path:
    from benchmarks.run_all import merge
    from jowa.atomic import write_json, write_text

    result = collect(directory)
    write_json(directory / "gpu_check.json", result)
    if result["gpu"] is None:
        raise SystemExit("gpu_report: no CUDA device here; the GPU section is written only from a GPU run")
    write_text(bench, merge(bench.read_text() if bench.is_file() else None, render(result, command)))
    return directory / "gpu_check.json"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check")
    check.add_argument("--require-cuda", action="store_true", help="then exit 3 when CUDA is missing")
    check.add_argument("sets", nargs="*", help="each a space-separated set of key=value overrides")
    sub.add_parser("require-cuda")
    agree = sub.add_parser("agreement")
    agree.add_argument("--tokenizer", type=Path, required=True)
    agree.add_argument("--replay", type=Path, required=True)
    agree.add_argument("--games", required=True)
    agree.add_argument("--out", type=Path, required=True)
    report = sub.add_parser("report")
    report.add_argument("--dir", type=Path, required=True)
    report.add_argument("--bench", type=Path, default=Path("BENCHMARKS.md"))
    report.add_argument("--label", default="benchmarks/gpu_check.sh", help="the command named in the section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "check":
        for overrides in args.sets:
            print(check_overrides(overrides.split()))
        return require_cuda() if args.require_cuda else 0
    if args.command == "require-cuda":
        return require_cuda()
    if args.command == "agreement":
        result = token_agreement(args.tokenizer, args.replay, args.games.split(","))
        args.out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result))
    else:
        print(write_report(args.dir, args.bench, args.label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
