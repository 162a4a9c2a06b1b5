"""The device a run uses: the one ``resolve_device`` of vidplug (restoration, prior training, benchmarks), and
independent CPU work spread over threads of one torch thread each (:func:`map_single_threaded`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from vidplug.errors import VidplugError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda request or an unknown name is a one-line
    error (``meta`` is accepted: the memory estimates run on it)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidplugError(f"--device {name} requested but no CUDA device is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidplugError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None


def cpu_threads(device: torch.device) -> int:
    """How many workers :func:`map_single_threaded` may use for work on ``device``: torch's intra-op thread count on
    CPU, 1 elsewhere (a GPU runs the work batched)."""
    return torch.get_num_threads() if device.type == "cpu" else 1


_POOLS: dict[int, ThreadPoolExecutor] = {}


def map_single_threaded(fn, items: list) -> list:
    """``[fn(item) for item in items]``, one worker thread per item, each worker at one intra-op torch thread.

    For independent work on CPU that shares torch's threads badly (the tiny prior's small convolutions, a least-
    squares solve per candidate): side by side on one thread each it finishes sooner. ``torch.set_num_threads`` is
    per OS thread for OpenMP and MKL, but it also sets the default that threads not yet using torch start with: it
    is restored to the caller's count afterwards, so the workers' 1 leaks nowhere. Grad mode follows the caller.
    """
    caller = torch.get_num_threads()
    grad = torch.is_grad_enabled()

    def run(item):
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        with torch.set_grad_enabled(grad):
            return fn(item)

    pool = _POOLS.get(len(items))
    if pool is None:
        pool = _POOLS[len(items)] = ThreadPoolExecutor(len(items), thread_name_prefix="vidplug-worker")
    try:
        return list(pool.map(run, items))
    finally:
        torch.set_num_threads(caller)
