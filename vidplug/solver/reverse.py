"""The reverse process R as the solver runs it: the prior prepared for speed (:func:`fast_prior`), R over a slice of
the chunk's frames (:func:`reverse_fn`) and the backward pass through R, whole or micro-batched
(:func:`backprop_through_r`), on CPU with the chunk's frames split over threads (:func:`frame_workers`)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import Tensor

from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import reverse_to_unit
from vidplug.runtime import cpu_threads, map_single_threaded

AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # solver.autocast -> network dtype


_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # prior -> {(compile, channels_last): twin}


def fast_prior(prior: DiffusionPrior, *, compile: bool = False, channels_last: bool = False) -> DiffusionPrior:
    """``prior`` prepared for speed: a :class:`DiffusionPrior` sharing its weights and schedule whose network is
    ``torch.compile``d and/or runs in channels-last (NHWC) memory layout, which GPU convolutions prefer (with bf16
    especially). Returns ``prior`` itself when neither is asked for.

    Cached per prior and setting, so every chunk of a video reuses the compiled code instead of compiling again.
    Only the network is compiled: the DDIM loop, checkpointing and autocast around it stay eager Python.
    ``channels_last`` converts the shared network's conv weights in place (the original prior still works, with
    any layout).
    """
    if not (compile or channels_last):
        return prior
    twins = _TWINS.setdefault(prior, {})
    key = (bool(compile), bool(channels_last))
    if key not in twins:
        net = prior.net
        if channels_last and isinstance(net, torch.nn.Module):
            net.to(memory_format=torch.channels_last)
        twin = prior.with_net(torch.compile(net) if compile else net)  # a latent prior's twin keeps its VAE
        if channels_last:
            twin.memory_format = torch.channels_last
        twins[key] = twin
    twins[key].border_pad = prior.border_pad  # a setting of the run, not of the cached network
    return twins[key]


class StartOffset:
    """The offset of ``solver.init=inversion-offset``, ``start - R(z_init)``, taken from the solve's own first pass
    through R (at ``z_init``) instead of one more reverse process beforehand: ``x = R(z) + start - R(z_init)``, so
    the first iterate is ``start``. Each frame's offset is set by the first call that reaches it."""

    def __init__(self, start: Tensor) -> None:
        self.start = start  # (T, C, H, W)
        self.value = torch.zeros_like(start)
        self.known = [False] * start.shape[0]

    def to(self, device=None, dtype=None) -> StartOffset:
        """A copy on ``device`` in ``dtype``, before any frame's offset is set."""
        return StartOffset(self.start.to(device=device, dtype=dtype))

    def __call__(self, x: Tensor, frames: slice) -> Tensor:
        """``x + offset`` for ``x = R(z)`` of ``frames``; sets those frames' offset on their first call."""
        indices = range(len(self.known))[frames]
        if not all(self.known[i] for i in indices):
            self.value[frames] = self.start[frames] - x.detach()
            for i in indices:
                self.known[i] = True
        return x + self.value[frames]


def reverse_fn(prior: DiffusionPrior, timesteps: Sequence[int], *, checkpoint: bool = False,
               noise: Sequence[Tensor] | None = None, offset: Tensor | StartOffset | None = None, **kwargs):
    """R as :func:`backprop_through_r` calls it: ``reverse(z_part, frames: slice, checkpoint=...)`` -> float32
    frames of those seeds, with their slice of the per-step DDIM ``noise``; other keywords (``eta``, ``clamp``,
    ``autocast_dtype``, ``size``, ``checkpoint_decoder``) go to :func:`~vidplug.prior.ddim.reverse_to_unit`;
    ``offset (T, C, H, W)`` is added to the frames (``solver.init=inversion-offset``), or a :class:`StartOffset`."""

    def reverse(z: Tensor, frames: slice, checkpoint: bool = checkpoint) -> Tensor:
        part = None if noise is None else [n[frames] for n in noise]
        x = reverse_to_unit(z, prior, timesteps, checkpoint=checkpoint, noise=part, **kwargs).float()
        if offset is None:
            return x
        return offset(x, frames) if isinstance(offset, StartOffset) else x + offset[frames]

    return reverse


def frame_workers(setting: int, z: Tensor) -> int:
    """How many threads :func:`backprop_through_r` splits the chunk's frames over (``solver.frame_threads``).

    ``0`` (auto): on CPU torch's intra-op thread count, at most one per frame; elsewhere 1. The tiny prior's
    convolutions on a few 144x144 frames scale poorly over torch's threads (2 threads: 1.2-1.3x one), while two
    halves of the chunk, each on one thread, run side by side (``benchmarks/bench_solver.py --frame-threads 1,2``).
    """
    if setting == 0:
        setting = cpu_threads(z.device)
    return max(1, min(setting, z.shape[0]))


def on_frame_groups(fn, num_frames: int, workers: int) -> Tensor:
    """``fn(slice)`` -> a tensor of those frames, over the chunk's ``num_frames`` frames: one call on the whole
    chunk when ``workers <= 1``, else ``workers`` groups of frames on parallel threads (as the solver's iterations,
    :func:`frame_workers`), concatenated. For per-frame work without grad (the warm start's DDIM inversion)."""
    if workers <= 1:
        return fn(slice(None))
    return torch.cat(map_single_threaded(fn, _frame_slices(num_frames, -(-num_frames // workers))))


def backprop_through_r(z: Tensor, reverse, losses, micro_batch: int = 0,
                       workers: int = 1) -> tuple[Tensor, list[Tensor]]:
    """``x = R(z)``, ``losses(x)`` (a list, the total first) and the total's gradient back into ``z``'s graph.

    Args:
        z: ``(T, C, H, W)`` seeds (a leaf, or computed from the seed parameters).
        reverse: ``reverse(z_part, frames: slice, checkpoint=...)`` -> R of those frames' seeds, float32
            (:func:`reverse_fn`).
        losses: maps ``x (T, C, H, W)`` to ``[total, ...]``; only ``total`` is differentiated.
        micro_batch: 0 = one backward pass over the chunk; ``0 < m < T`` = R without grad over the chunk, then
            re-run with grad ``m`` frames at a time (see :attr:`SolverConfig.micro_batch`).
        workers: ``n > 1`` (and no micro-batching) = R's forward and backward on ``n`` groups of frames in ``n``
            threads of one intra-op thread each (:func:`frame_workers`); the same gradients.

    Returns:
        ``(x, losses(x))``; ``x`` may require grad (detach it to keep it).
    """
    micro = 0 < micro_batch < z.shape[0]
    if workers > 1 and not micro:
        return _threaded_backprop(z, reverse, losses, workers)
    if micro:  # R without grad here; its backward runs m frames at a time below
        with torch.no_grad():  # detached: a slice of a grad-requiring z would still claim requires_grad here
            zd = z.detach()
            x = torch.cat([reverse(zd[sl], sl, checkpoint=False) for sl in _frame_slices(z.shape[0], micro_batch)])
        x.requires_grad_()
    else:
        x = reverse(z, slice(None))
    values = losses(x)
    values[0].backward()
    if micro:
        _backward_through_r(z, x.grad, reverse, micro_batch)
    return x, values


def _threaded_backprop(z: Tensor, reverse, losses, workers: int) -> tuple[Tensor, list[Tensor]]:
    """:func:`backprop_through_r` with R's frames in ``workers`` groups on parallel threads.

    Exact for the same reason as micro-batching: R maps each frame's seed to that frame alone. Each group keeps its
    own graph from its own leaf; the losses run once over the whole chunk on the caller's thread, and the groups'
    seed gradients go back into ``z``'s graph (the shared-seed parametrisation) once, at the end.
    """
    slices = _frame_slices(z.shape[0], -(-z.shape[0] // workers))
    leaves = [z.detach()[sl].requires_grad_() for sl in slices]
    parts = map_single_threaded(lambda i: reverse(leaves[i], slices[i]), list(range(len(slices))))
    x = torch.cat([p.detach() for p in parts]).requires_grad_()
    values = losses(x)
    values[0].backward()
    if x.grad is not None and z.requires_grad:
        grads = map_single_threaded(
            lambda i: torch.autograd.grad(parts[i], leaves[i], x.grad[slices[i]])[0] if parts[i].requires_grad
            else torch.zeros_like(leaves[i]), list(range(len(slices))))
        z.backward(torch.cat(grads))
    return x, values


def _frame_slices(num_frames: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, num_frames)) for i in range(0, num_frames, size)]


def _backward_through_r(z: Tensor, grad_x: Tensor | None, reverse, micro_batch: int) -> None:
    """Back-propagate ``grad_x = dL/dx`` through ``x = R(z)`` recomputing R ``micro_batch`` frames at a time.

    Exact: R maps each frame's seed to that frame alone, so dL/dz is the per-frame vector-Jacobian product of the
    whole-chunk gradient. The seeds' own graph (shared-seed parametrisation) is traversed once, at the end.
    """
    if grad_x is None:  # no loss term reached x
        return
    z_leaf = z.detach().requires_grad_()
    for sl in _frame_slices(z.shape[0], micro_batch):
        reverse(z_leaf[sl], sl).backward(grad_x[sl])
    z.backward(z_leaf.grad)
