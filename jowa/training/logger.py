"""Rank-0 logging: TensorBoard event files and a metrics.jsonl (default), W&B when asked (never a login
prompt), a tqdm bar. The JSON lines are for scripts and reports that should not need TensorBoard to read."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jowa.training.config import LoggingConfig
from jowa.training.distributed import DistContext


def _start_wandb(config: LoggingConfig, name: str, directory: Path, run_config: dict[str, Any]) -> Any:
    try:
        import wandb
    except ImportError as error:
        raise RuntimeError("logging.wandb=true but wandb is not installed (pip install wandb)") from error
    if config.wandb_mode not in ("offline", "online", "disabled"):
        raise ValueError(f"logging.wandb_mode {config.wandb_mode!r}: choose offline, online or disabled")
    if config.wandb_mode == "online":
        try:
            ready = wandb.login(prompt=False, verify=False)  # returns False instead of prompting
        except TypeError:  # older wandb without `prompt`: only an explicit key counts
            ready = bool(os.environ.get("WANDB_API_KEY"))
        if not ready:
            raise RuntimeError("logging.wandb_mode=online needs `wandb login` or WANDB_API_KEY first; "
                               "or use logging.wandb_mode=offline and `wandb sync` later")
    return wandb.init(project=config.wandb_project, name=name, dir=str(directory), mode=config.wandb_mode,
                      config=run_config, reinit=True)


class TrainLogger:
    """Scalars go to every enabled sink on rank 0; other ranks log nothing.

    `directory` receives the TensorBoard files; `metrics` (when given) one JSON object per logged step,
    appended, so a resumed stage repeats the steps after its checkpoint (readers keep the last line per step).
    """

    def __init__(
        self, directory: Path, stage: str, config: LoggingConfig, ctx: DistContext, total_steps: int,
        initial_step: int, run_config: dict[str, Any] | None = None, metrics: Path | None = None,
    ) -> None:
        self.stage = stage
        self.active = ctx.is_main
        self.writer = None
        self.wandb = None
        self.bar = None
        self.metrics = None
        if not self.active:
            return
        directory.mkdir(parents=True, exist_ok=True)
        if metrics is not None:
            metrics.parent.mkdir(parents=True, exist_ok=True)
            self.metrics = metrics.open("a", encoding="utf-8")
        if config.wandb:  # first: a missing package or login fails before anything else is opened
            self.wandb = _start_wandb(config, stage, directory, run_config or {})
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(directory))
        if config.progress_bar:
            self.bar = tqdm(total=total_steps, initial=initial_step, desc=stage, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.active:
            return
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{self.stage}/{key}", value, step)
            self.writer.flush()
        if self.metrics is not None:
            finite = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}  # JSON has no NaN
            self.metrics.write(json.dumps({"stage": self.stage, "step": step, **finite}) + "\n")
            self.metrics.flush()
        if self.wandb is not None:
            self.wandb.log({f"{self.stage}/{k}": v for k, v in values.items()}, step=step)

    def image(self, step: int, key: str, image_hwc: Any) -> None:
        """uint8 [H, W, C] numpy image."""
        if self.active and self.writer is not None:
            self.writer.add_image(f"{self.stage}/{key}", image_hwc, step, dataformats="HWC")

    def advance(self, postfix: dict[str, str] | None = None) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)

    def message(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(path: Path) -> dict[str, dict[int, float]]:
    """metrics.jsonl → {key: {step: value}}, the last line for a step winning (a resumed stage repeats steps)."""
    series: dict[str, dict[int, float]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        step = int(record.pop("step"))
        record.pop("stage", None)
        for key, value in record.items():
            series.setdefault(key, {})[step] = float(value)
    return {key: dict(sorted(values.items())) for key, values in series.items()}
