"""Who launched us, which rank we are, and the few collectives the loop needs.

Three launches, one code path:
- `python pretrain.py …`: a single process, no process group.
- `torchrun --nproc_per_node N pretrain.py …`: N processes, plain PyTorch with DDP.
- `deepspeed pretrain.py …`: N processes (GPUs or, for tests, CPU ranks over gloo), DeepSpeed engine.

The DeepSpeed launcher is recognised by the variables only it sets (CROSS_RANK/CROSS_SIZE) or by the
`--local_rank` argument it appends.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    launcher: str  # "single", "torchrun" or "deepspeed"
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect_launcher(argv: list[str] | None = None) -> str:
    argv = sys.argv if argv is None else argv
    if "CROSS_RANK" in os.environ or any(a.startswith("--local_rank") for a in argv):
        return "deepspeed"
    if "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
        return "torchrun"
    return "single"


def pick_device(requested: str, local_rank: int) -> torch.device:
    """"auto" → this rank's GPU when there is one, else the CPU; a bare "cuda" gets this rank's index
    (torch.cuda.set_device and per-rank placement need one); asking for CUDA without one is an error."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r}: torch {torch.__version__} sees no CUDA device")
    if device.type == "cuda" and device.index is None:
        # local_rank % count: a launcher that gives each process one visible GPU (CUDA_VISIBLE_DEVICES per
        # rank) has local ranks 0..N-1 but one device, index 0.
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def _skip_deepspeed_cpu_shm_build() -> None:
    """DeepSpeed's CPU accelerator JIT-compiles a shared-memory all-reduce (~100 s on first use) that only
    its inference all-reduce uses; training collectives go through gloo, so the build is pure waste."""
    try:
        import deepspeed.ops

        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    except (ImportError, AttributeError, TypeError):
        pass


def init_distributed(device: str = "auto", argv: list[str] | None = None) -> DistContext:
    """Initialise the process group when launched with several ranks; idempotent."""
    launcher = detect_launcher(argv)
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    chosen = pick_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if launcher != "single" and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=30)
        if launcher == "deepspeed":
            import deepspeed

            if chosen.type == "cpu":
                _skip_deepspeed_cpu_shm_build()
            deepspeed.init_distributed(dist_backend=backend, timeout=timeout)
        else:
            dist.init_process_group(backend=backend, timeout=timeout)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistContext(launcher, rank, world_size, local_rank, chosen)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


_HOST_GROUP: list[object] = []  # the gloo group of `any_rank`, made on its first (collective) call


def _host_group() -> object | None:
    """A gloo group for host flags (None: the default group is gloo already). An NCCL all-reduce of a flag
    would queue behind the step's kernels and its read would wait for all of them."""
    if dist.get_backend() == "gloo":
        return None
    if not _HOST_GROUP:
        _HOST_GROUP.append(dist.new_group(backend="gloo"))
    return _HOST_GROUP[0]


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank if `flag` is True on any rank (a CPU tensor over gloo: no device sync).
    `device` is accepted for older callers and ignored."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_host_group())
    return bool(value.item() > 0)


def broadcast_object(value: object, src: int = 0) -> object:
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def finish(code: int = 0) -> None:
    """End a distributed process: barrier → destroy → flush → os._exit.

    gloo aborts (SIGABRT) at interpreter exit in a fraction of runs that already finished; leaving
    through os._exit after tearing the group down avoids it (DESIGN, measured facts). A failing rank
    skips the barrier (its peers may be waiting elsewhere); the launcher then stops the others.
    """
    if dist.is_initialized() and code == 0:
        try:
            dist.barrier()
            dist.destroy_process_group()
        except Exception:  # a failing peer must not turn a clean exit into a hang or a traceback
            code = code or 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
