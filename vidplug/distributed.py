"""Multi-process runs under ``torchrun``: which rank am I, how many are we, and wait for the others.

Under ``torchrun --nproc_per_node N -m vidplug restore ...`` the environment carries RANK / WORLD_SIZE /
LOCAL_RANK; the process group is initialised here on first use (NCCL when CUDA is available, gloo on CPU). A plain
``vidplug`` call is rank 0 of 1 and touches nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world_size)``, initialising the process group when launched by torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_error(message: str | None) -> str | None:
    """Rank 0's error message (or None) on every rank, so all ranks fail together instead of waiting forever."""
    if not dist.is_initialized():
        return message
    box = [message]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_zero_first(fn: Callable[[], T], rank: int) -> T | None:
    """Run ``fn`` on rank 0 only (e.g. check and create an output folder); its VidplugError is raised on every rank,
    so all ranks fail together. Returns ``fn``'s result on rank 0, None elsewhere."""
    from vidplug.errors import VidplugError

    error, result = None, None
    if rank == 0:
        try:
            result = fn()
        except VidplugError as exc:
            error = str(exc)
    if (error := broadcast_error(error)) is not None:
        raise VidplugError(error)
    return result
