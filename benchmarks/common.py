"""What every benchmark shares: result tables, one timer, names of the machine, progress lines."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

# A cell counts as numeric with thousands separators, a trailing × (ratios) or M (millions of parameters).
_NUMBER = re.compile(r"^-?[\d,]*\.?\d+(e[+-]?\d+)?[×M]?$")


def is_number(cell: str) -> bool:
    return bool(_NUMBER.match(cell.strip()))


def parse_number(cell: str) -> float:
    """'12,345.6' → 12345.6, '1.52×' → 1.52, '19.1M' → 19.1."""
    if not is_number(cell):
        raise ValueError(f"not a number: {cell!r}")
    return float(cell.strip().rstrip("×M").replace(",", ""))


def rate(value: float) -> str:
    """Throughputs: thousands separators for big numbers, enough digits for small ones."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}×"


@dataclass
class Table:
    """One markdown table: cells are already formatted strings (see `rate`, `ratio`)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: str = ""

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def to_markdown(self) -> str:
        # Right-align the columns that hold only numbers, so digits line up in rendered markdown.
        numeric = [bool(self.rows) and all(is_number(row[i]) for row in self.rows) for i in range(len(self.columns))]
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines) + "\n"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Mean wall time of `fn` over `repeats` calls, after `warmup` calls (allocator, kernels, caches) and with
    the GPU drained at both ends, so asynchronous CUDA work is counted where it happens."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown model"


def cpu_label() -> str:
    """The CPU's model name and vector ISA: one model name ("AMD EPYC") has been both an AVX2 Zen 3 and an
    AVX-512 Zen 4 on this machine kind, and what pays (bf16, compile) differs between them."""
    return f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"


def device_heading(device: torch.device) -> str:
    """What identifies one section of BENCHMARKS.md: the kind of device and its model, no thread count."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU: {cpu_label()}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU ({cpu_label()}), {threads} torch thread{'' if threads == 1 else 's'}"


def pick_device(requested: str) -> torch.device:
    """jowa's device choice ('auto' → the GPU when there is one), a missing GPU ending the run at once."""
    from jowa.training.distributed import pick_device as choose

    try:
        return choose(requested, torch.cuda.current_device() if torch.cuda.is_available() else 0)
    except ValueError as error:
        raise SystemExit(f"--device: {error}") from None


def bf16_pays(device: torch.device) -> bool:
    """Whether bf16 rows are worth measuring: where `engine.precision=auto` picks bf16 (a GPU, or a CPU with
    AVX512_BF16 / AMX). On AVX2 (AMD Zen 3) bf16 matmuls have no native path: one 40M bf16 model step ran > 10 min."""
    from jowa.training.engine_choice import native_bf16

    return native_bf16(device)


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays the tables."""
    print(message, file=sys.stderr, flush=True)
