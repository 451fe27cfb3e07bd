"""Where a stage-2 training step's time goes: matrix products against everything else.

    python benchmarks/step_profile.py [--sizes tiny,40M] [--batch 8] [--steps 3]

torch.compile fuses the elementwise ops, norms and softmaxes around the matrix products; it does not make
the products themselves faster. So the time outside the products bounds what it can win: if all of that
time vanished, the step would take only its products' time. The bound column is step time / product time
(Amdahl); a compiled step can only come near it, never past it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.common import Table, device_name, pick_device, progress, ratio, seconds_per_call  # noqa: E402
from benchmarks.model_step import training_step  # noqa: E402

TITLE = "Where a training step's time goes"
SUMMARY = (
    "One stage-2 training step (forward, every loss, backward, clipping, AdamW; fp32, the batch of the "
    "training-step table) under torch.profiler: the self time of the matrix products (mm, addmm, bmm and the "
    "SDPA kernels, forward and backward) against the whole step's wall time, measured without the profiler "
    "in the same run. Everything else (elementwise ops, norms, softmax, embedding, the optimizer) is what "
    "torch.compile can fuse; bound = step / products is the most any fusion could speed the step up (Amdahl). "
    "The largest other op is named: on a CPU, attention dropout (`attn_pdrop`, 0.1 in every size) keeps SDPA "
    "off its fused kernel, and its masks (aten::bernoulli_) cost about as much as a product."
)
PRODUCTS = {
    "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm",
    "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_flash_attention_backward",
    "aten::_scaled_dot_product_efficient_attention", "aten::_scaled_dot_product_efficient_attention_backward",
    "aten::_scaled_dot_product_cudnn_attention", "aten::_scaled_dot_product_cudnn_attention_backward",
}


def product_seconds(step, device: torch.device, steps: int) -> tuple[float, str]:
    """Self time of the matrix products per step, from the profiler (the device's time on a GPU), and the
    op with the most self time outside them (name and ms per step)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step()  # warm-up outside the trace
    with profile(activities=activities) as trace:
        for _ in range(steps):
            step()
    attribute = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = trace.key_averages()
    total_us = sum(getattr(e, attribute) for e in events if e.key in PRODUCTS)
    other = max((e for e in events if e.key not in PRODUCTS and not e.key.startswith("ProfilerStep")),
                key=lambda e: getattr(e, attribute))
    return total_us / 1e6 / steps, f"{other.key} {getattr(other, attribute) / 1e3 / steps:,.0f} ms"


def measure(device: torch.device, sizes: list[str], batch_size: int, steps: int) -> Table:
    table = Table(f"{TITLE}, fp32, batch {batch_size}",
                  ["size", "step ms", "products ms", "products share", "everything else ms", "largest other op",
                   "ratio bound (step / products)"])
    for size in sizes:
        progress(f"  step profile: {size}")
        step = training_step(size, batch_size, False, device)
        seconds = seconds_per_call(step, device, steps)
        products, other = product_seconds(step, device, steps)
        products = min(products, seconds)
        table.add(size, f"{seconds * 1e3:,.0f}", f"{products * 1e3:,.0f}", f"{products / seconds:.0%}",
                  f"{(seconds - products) * 1e3:,.0f}", other, ratio(seconds / products))
    return table


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return [measure(device, ["tiny"], 2, steps=1)]
    sizes = ["tiny", "40M", "150M"] if device.type == "cuda" else ["tiny", "40M"]
    return [measure(device, sizes, 8, steps=3)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    print(measure(device, args.sizes.split(","), args.batch, args.steps).to_markdown())


if __name__ == "__main__":
    main()
