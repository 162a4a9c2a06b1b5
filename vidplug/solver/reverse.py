"""The reverse process R as the solver runs it: the prior prepared for speed (:func:`fast_prior`), R over a slice of
the chunk's frames (:func:`reverse_fn`) and the backward pass through R, whole or micro-batched
(:func:`backprop_through_r`)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import Tensor

from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import reverse_to_unit

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
    return twins[key]


def reverse_fn(prior: DiffusionPrior, timesteps: Sequence[int], *, checkpoint: bool = False,
               noise: Sequence[Tensor] | None = None, **kwargs):
    """R as :func:`backprop_through_r` calls it: ``reverse(z_part, frames: slice, checkpoint=...)`` -> float32
    frames of those seeds, with their slice of the per-step DDIM ``noise``; other keywords (``eta``, ``clamp``,
    ``autocast_dtype``, ``size``, ``checkpoint_decoder``) go to :func:`~vidplug.prior.ddim.reverse_to_unit`."""

    def reverse(z: Tensor, frames: slice, checkpoint: bool = checkpoint) -> Tensor:
        part = None if noise is None else [n[frames] for n in noise]
        return reverse_to_unit(z, prior, timesteps, checkpoint=checkpoint, noise=part, **kwargs).float()

    return reverse


def backprop_through_r(z: Tensor, reverse, losses, micro_batch: int = 0) -> tuple[Tensor, list[Tensor]]:
    """``x = R(z)``, ``losses(x)`` (a list, the total first) and the total's gradient back into ``z``'s graph.

    Args:
        z: ``(T, C, H, W)`` seeds (a leaf, or computed from the seed parameters).
        reverse: ``reverse(z_part, frames: slice, checkpoint=...)`` -> R of those frames' seeds, float32
            (:func:`reverse_fn`).
        losses: maps ``x (T, C, H, W)`` to ``[total, ...]``; only ``total`` is differentiated.
        micro_batch: 0 = one backward pass over the chunk; ``0 < m < T`` = R without grad over the chunk, then
            re-run with grad ``m`` frames at a time (see :attr:`SolverConfig.micro_batch`).

    Returns:
        ``(x, losses(x))``; ``x`` may require grad (detach it to keep it).
    """
    micro = 0 < micro_batch < z.shape[0]
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
