"""How many frames fit in one chunk: automatic chunk sizing from free device memory, and halving on out-of-memory.

The solver's memory is dominated by the activations that ``R(z)``'s backward pass keeps: K network calls over the
``T`` frames of a chunk (one call's worth with ``checkpoint``; ``micro_batch`` frames' worth, a fixed cost, with
``solver.micro_batch``). That is linear in ``T``, so two small probe iterations (1 and 2 frames, or ``m`` and
``2m`` with micro-batching) on the real prior and frame size give a fixed part and a per-frame slope, and the chunk
size is what the free memory holds of the slope. The probe covers ``R``, the data term and the seeds' optimiser
state, not the consistency terms (CLIP, RAFT): ``safety`` leaves room for them, and :func:`run_with_oom_halving`
(which the pipeline wraps around every chunk) is the backstop when the estimate is still too large.

Off the GPU there is no allocator to read: the per-frame cost is what ``R``'s graph saves for one frame (counted by
``torch.autograd.graph.saved_tensors_hooks`` during a one-frame forward), against the host's available memory, and
the chunk is at most :data:`CPU_MAX_CHUNK` frames."""

from __future__ import annotations

import gc
import logging
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from vidplug.errors import VidplugError
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_timesteps
from vidplug.solver.reverse import AUTOCAST, backprop_through_r, reverse_fn

log = logging.getLogger(__name__)

# Frames per chunk off the GPU, when host memory holds them. Larger windows give the multi-frame stages more frames and
# waste less on the overlap and temporal context: bikes, 16 frames at 128x128, prior tiny, 16 against 8: SR x4
# 31.88 -> 31.94 dB and 10.8 -> 8.8 s/frame, temporal 31.60 -> 32.96 dB and 17.1 -> 8.6 s/frame (benchmarks/RESULTS.md)
CPU_MAX_CHUNK = 16
# One iteration's host peak over the activations R saves: the backward's temporaries (measured 1.08 for `tiny` at
# 128x128: 198 MiB of peak RSS per frame against 184 MiB saved) and the rest of the run (flows, ES-WMV frame copies)
HOST_PEAK_FACTOR = 1.25
_R = TypeVar("_R")


@dataclass(frozen=True)
class IterationMemory:
    """Device memory of one solver iteration beyond what was allocated before it (weights included there)."""

    fixed_bytes: int  # independent of the number of frames (workspaces, the first-call overheads)
    per_frame_bytes: int  # added by each frame of the chunk


def chunk_size_for_memory(
    free_bytes: int, usage: IterationMemory, *, max_chunk: int = 32, safety: float = 0.8
) -> int:
    """Largest chunk in ``[1, max_chunk]`` with ``fixed + T * per_frame <= safety * free_bytes``.

    Returns 1 when not even one frame fits by the estimate (the caller's OOM handling then has the last word).
    """
    if max_chunk < 1:
        raise VidplugError(f"max_chunk must be >= 1 frame, got {max_chunk}")
    if not 0.0 < safety <= 1.0:
        raise VidplugError(f"safety must be in (0, 1], got {safety}")
    usable = safety * free_bytes - usage.fixed_bytes
    frames = int(usable // max(usage.per_frame_bytes, 1))
    if frames < 1:
        log.warning(
            "by the memory probe not even one frame fits (%.0f MiB free, %.0f MiB per frame); trying 1",
            free_bytes / 2**20, usage.per_frame_bytes / 2**20,
        )
    return max(1, min(frames, max_chunk))


def probe_iteration_memory(
    prior: DiffusionPrior,
    frame_shape: tuple[int, int, int],
    device: torch.device | str,
    *,
    num_steps: int = 3,
    checkpoint: bool = False,
    autocast: str = "none",
    micro_batch: int = 0,
) -> IterationMemory:
    """Measure one solver iteration (R forward over ``num_steps`` DDIM steps, data-like loss, backward, Adam step)
    at ``n`` and ``2n`` frames of ``frame_shape = (C, H, W)`` with ``torch.cuda.max_memory_allocated``; ``n`` is 1,
    or ``micro_batch`` when set (R's activations are then those of ``micro_batch`` frames, a fixed cost). CUDA only.
    """
    device = torch.device(device)
    if device.type != "cuda":
        raise VidplugError(f"the memory probe needs a CUDA device, got {device}")
    reverse = reverse_fn(prior, ddim_timesteps(num_steps, prior.num_train_timesteps), checkpoint=checkpoint,
                         autocast_dtype=AUTOCAST[autocast], size=tuple(frame_shape[1:]))

    sizes = (max(micro_batch, 1), 2 * max(micro_batch, 1))
    peaks = []
    for frames in sizes:
        _release_cached_memory()
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        # (T, C, H, W) seeds; a latent prior's are (T, 4, H/8, W/8)
        z = torch.randn(prior.seed_shape((frames, *frame_shape)), device=device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=1e-2)
        # stand-in data term: the operator's own memory is small beside R's
        backprop_through_r(z, reverse, lambda x: [x.square().mean()], micro_batch)
        opt.step()
        del z, opt
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    frame_bytes = 4 * math.prod(frame_shape)
    return fit_iteration_memory(sizes, peaks, min_per_frame=6 * frame_bytes if micro_batch else None)


def fit_iteration_memory(frames: tuple[int, int], peaks: list[int], *, min_per_frame: int | None = None
                         ) -> IterationMemory:
    """Fixed part and per-frame slope from the peaks of two iterations at ``frames = (n, 2n)``.

    Allocator rounding can make the larger iteration look cheaper than it is: the slope is never taken below
    ``min_per_frame``, by default the larger peak per frame (all memory counted as per-frame: safe without
    micro-batching, where R's activations do grow with every frame).
    """
    (n1, n2), (p1, p2) = frames, peaks
    floor = p2 // n2 if min_per_frame is None else min_per_frame
    per_frame = max((p2 - p1) // max(n2 - n1, 1), floor, 1)
    return IterationMemory(fixed_bytes=max(p2 - n2 * per_frame, 0), per_frame_bytes=per_frame)


def auto_chunk_size(
    prior: DiffusionPrior,
    frame_shape: tuple[int, int, int],
    device: torch.device | str,
    *,
    num_steps: int,
    checkpoint: bool,
    autocast: str,
    micro_batch: int = 0,
    max_chunk: int = 32,
    safety: float = 0.8,
) -> int:
    """Frames per chunk that fit in the device's free memory.

    Args:
        prior: the prior the solver will use, already on ``device``.
        frame_shape: ``(C, H, W)`` of the frames to restore.
        device: CUDA: probed (two tiny iterations, see :func:`probe_iteration_memory`) against
            ``torch.cuda.mem_get_info``; any other device: :func:`host_chunk_size` (at most :data:`CPU_MAX_CHUNK`).
        num_steps, checkpoint, autocast, micro_batch: the solver settings that change its memory (as in
            ``SolverConfig``).
        max_chunk: upper bound on the answer.
        safety: fraction of the free memory to plan for (the rest is for consistency terms and fragmentation).

    Returns:
        int in ``[1, max_chunk]``.
    """
    device = torch.device(device)
    if len(frame_shape) != 3:
        raise VidplugError(f"frame_shape must be (C, H, W), got {tuple(frame_shape)}")
    if autocast not in AUTOCAST:
        raise VidplugError(f"unknown autocast '{autocast}'; use one of: {', '.join(AUTOCAST)}")
    if device.type != "cuda":
        return host_chunk_size(prior, tuple(frame_shape), num_steps=num_steps, checkpoint=checkpoint,
                               micro_batch=micro_batch, max_chunk=min(CPU_MAX_CHUNK, max_chunk))
    try:
        usage = probe_iteration_memory(
            prior, tuple(frame_shape), device, num_steps=num_steps, checkpoint=checkpoint, autocast=autocast,
            micro_batch=micro_batch,
        )
    except torch.cuda.OutOfMemoryError:
        usage = None  # handled outside the except block so the failed probe's tensors can be freed
    if usage is None:
        _release_cached_memory()
        log.warning("the 2-frame memory probe ran out of memory; using chunk size 1")
        return 1
    _release_cached_memory()
    free, _total = torch.cuda.mem_get_info(device)
    size = chunk_size_for_memory(free, usage, max_chunk=max_chunk, safety=safety)
    log.info(
        "auto chunk size %d: %.0f MiB free, %.0f MiB + %.0f MiB per frame per iteration (safety %.2f)",
        size, free / 2**20, usage.fixed_bytes / 2**20, usage.per_frame_bytes / 2**20, safety,
    )
    return size


def host_chunk_size(prior: DiffusionPrior, frame_shape: tuple[int, int, int], *, num_steps: int, checkpoint: bool,
                    micro_batch: int = 0, max_chunk: int = CPU_MAX_CHUNK, safety: float = 0.7,
                    available: int | None = None) -> int:
    """Frames per chunk that fit in host memory (CPU runs): :func:`saved_bytes_per_frame` times
    :data:`HOST_PEAK_FACTOR` per frame against ``available`` bytes (default: :func:`host_available_bytes`)."""
    free = host_available_bytes() if available is None else available  # before the probe holds any of it
    per_frame = saved_bytes_per_frame(prior, frame_shape, num_steps=num_steps)
    if checkpoint:  # the steps are recomputed one at a time in the backward: one step's activations are held
        per_frame = per_frame // max(num_steps, 1)
    fixed = 0
    if 0 < micro_batch:  # R's graph is then that of micro_batch frames whatever the chunk; frames cost a few copies
        fixed, per_frame = per_frame * micro_batch, 6 * 4 * math.prod(frame_shape)
    usage = IterationMemory(fixed_bytes=int(HOST_PEAK_FACTOR * fixed), per_frame_bytes=int(HOST_PEAK_FACTOR * per_frame))
    if free is None:  # not Linux nor POSIX: no way to ask; the old fixed default
        return min(8, max_chunk)
    size = chunk_size_for_memory(free, usage, max_chunk=max_chunk, safety=safety)
    log.info("auto chunk size %d (host): %.0f MiB available, %.0f MiB per frame (safety %.2f)",
             size, free / 2**20, usage.per_frame_bytes / 2**20, safety)
    return size


# prior -> {(frame_shape, num_steps, border_pad): bytes}: a process that restores many clips of one size (eval, the
# demo's rows, benchmarks) probes once (0.19 s for `tiny` at 128x128 on this CPU, 2 threads)
_SAVED_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def saved_bytes_per_frame(prior: DiffusionPrior, frame_shape: tuple[int, int, int], *, num_steps: int) -> int:
    """Bytes ``R`` (``num_steps`` DDIM steps) saves for its backward pass, per frame of ``frame_shape = (C, H, W)``:
    the storages the autograd graph keeps during a one-frame forward (each counted once; the network's own weights,
    which the graph saves too, are resident anyway and not counted), on the prior's device. Probed once per prior,
    frame shape, step count and border padding, then remembered."""
    key = (tuple(frame_shape), int(num_steps), prior.border_pad)
    known = _SAVED_BYTES.setdefault(prior, {})
    if key not in known:
        known[key] = _probe_saved_bytes(prior, frame_shape, num_steps)
    return known[key]


def _probe_saved_bytes(prior: DiffusionPrior, frame_shape: tuple[int, int, int], num_steps: int) -> int:
    """:func:`saved_bytes_per_frame` measured: one forward of ``R`` on one frame under a saved-tensors hook."""
    reverse = reverse_fn(prior, ddim_timesteps(num_steps, prior.num_train_timesteps), size=tuple(frame_shape[1:]))
    resident = {t.untyped_storage().data_ptr() for t in (*prior.parameters(), *prior.buffers())}
    storages: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in resident:
            storages[storage.data_ptr()] = storage.nbytes()
        # detached: a saved output returned as is refers to its own grad_fn, a cycle through C++ that no gc breaks
        # when backward never runs (as here): every call leaked the whole graph (pytorch/pytorch#115255)
        return t.detach()

    z = torch.randn(prior.seed_shape((1, *frame_shape)), device=prior.alphas_cumprod.device, requires_grad=True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        reverse(z, slice(0, 1))
    return sum(storages.values())


def host_available_bytes() -> int | None:
    """Memory the host can give without swapping: Linux's MemAvailable, else the free physical pages, else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def run_with_oom_halving(
    fn: Callable[[int], _R], chunk_size: int, min_size: int = 1
) -> tuple[_R, int]:
    """Call ``fn(chunk_size)``; on ``torch.cuda.OutOfMemoryError`` free the cache, halve the size and retry.

    Each halving is logged at WARNING. Returns ``(fn's result, the chunk size that worked)``.

    Raises:
        VidplugError: ``fn`` still runs out of memory at ``min_size`` (one line: what to change).
    """
    size = int(chunk_size)
    if min_size < 1 or size < min_size:
        raise VidplugError(f"chunk size {chunk_size} must be >= min_size {min_size} >= 1")
    while True:
        try:
            return fn(size), size
        except torch.cuda.OutOfMemoryError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "CUDA out of memory"
        # outside the except block: the traceback, and the tensors its frames hold, are gone before freeing
        _release_cached_memory()
        if size <= min_size:
            raise VidplugError(
                f"out of GPU memory even at chunk size {size} ({reason}); lower the resolution, set "
                "solver.autocast=bf16 or solver.checkpoint=true, or use a GPU with more memory"
            )
        smaller = max(size // 2, min_size)
        log.warning("out of GPU memory at chunk size %d; retrying with chunk size %d", size, smaller)
        size = smaller


def _release_cached_memory() -> None:
    """Collect garbage and hand the CUDA caching allocator's free blocks back (no-op without CUDA)."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
