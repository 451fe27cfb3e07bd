"""Rank-0 logging: TensorBoard event files (default), W&B when asked (never a login prompt), a tqdm bar."""

from __future__ import annotations

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
    """Scalars go to every enabled sink on rank 0; other ranks log nothing."""

    def __init__(
        self, directory: Path, stage: str, config: LoggingConfig, ctx: DistContext, total_steps: int,
        initial_step: int, run_config: dict[str, Any] | None = None,
    ) -> None:
        self.stage = stage
        self.active = ctx.is_main
        self.writer = None
        self.wandb = None
        self.bar = None
        if not self.active:
            return
        directory.mkdir(parents=True, exist_ok=True)
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
        if self.wandb is not None:
            self.wandb.finish()
