"""Pixel temporal consistency: each frame should match its neighbour warped onto it by optical flow.

:class:`PixelConsistency` is the flow-warping loss term (flows fixed during a step, re-estimated from the current
restoration every ``refresh_every`` iterations: progressive refinement). :class:`AnchorConsistency` ties the overlap
frames of a chunk to the previous chunk's fixed result. Both follow the solver's loss-term protocol:
``name``, ``weight`` and ``term(x, iteration) -> scalar`` with ``x (T, C, H, W)`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vidplug.consistency.warp import correspondence_mask, flow_warp
from vidplug.errors import VidplugError

if TYPE_CHECKING:
    from vidplug.consistency.flow import FlowModel

_NORMS = ("l1", "l2")


def _check_norm(norm: str) -> str:
    if norm not in _NORMS:
        raise VidplugError(f"unknown pixel norm '{norm}'; use one of {', '.join(_NORMS)}")
    return norm


def _distance(a: Tensor, b: Tensor, norm: str) -> Tensor:
    """Per-element |a - b| (l1) or (a - b)^2 (l2)."""
    d = a - b
    return d.abs() if norm == "l1" else d.pow(2)


class PixelConsistency:
    """Occlusion-masked flow-warping loss between neighbouring frames, a solver loss term.

    ``loss = mean_t [ sum_p M_t(p) d(x_t(p), W(x_{t+1}, fw_t)(p)) / (C * max(1, sum_p M_t(p))) ]`` over the
    ``T - 1`` pairs, where ``W = flow_warp`` aligns frame t+1 to frame t, ``d`` is ``|.|`` (l1) or ``(.)^2`` (l2)
    and ``M_t`` is the forward-backward occlusion mask (:func:`~vidplug.consistency.warp.occlusion_mask`) times
    :func:`inside_mask`. Flows and masks carry no gradient; the loss is differentiable in ``x``.

    Flows come from :meth:`set_flows_from` (the pipeline calls it with the initial estimate, e.g. the operator's
    ``A_dagger(y)``) or :meth:`set_flows`. With ``refresh_every = N > 0`` the term re-estimates them from the current
    (detached) frames when called with ``iteration % N == 0 and iteration > 0``; 0 = never refresh.

    Args:
        flow_model: a :class:`~vidplug.consistency.flow.FlowModel` (its ``flow_pair`` gives both directions);
            may be None when flows are given with :meth:`set_flows` and ``refresh_every`` is 0.
        weight: multiplies the term in the solver's total loss (the solver applies it).
        norm: ``"l1"`` or ``"l2"`` (squared difference).
        refresh_every: re-estimate flows every this many iterations; 0 = never.
        min_coverage: a pair whose mask covers less of the frame is not coupled at all (a scene cut:
            :func:`~vidplug.consistency.warp.drop_sparse_pairs`); 0 = every pair.
        motion_boundaries: the mask drops the flows' motion boundaries too (Lai's mask); False: the
            forward-backward check alone (``consistency.motion_boundaries``).
    """

    name = "pixel"

    def __init__(
        self, flow_model: FlowModel | None = None, weight: float = 1.0, norm: str = "l1", refresh_every: int = 0,
        min_coverage: float = 0.0, motion_boundaries: bool = True,
    ) -> None:
        if int(refresh_every) < 0:
            raise VidplugError(f"flow refresh_every must be >= 0 (0 = never), got {refresh_every}")
        self.flow_model = flow_model
        self.weight = float(weight)
        self.norm = _check_norm(norm)
        self.refresh_every = int(refresh_every)
        self.min_coverage = float(min_coverage)
        self.motion_boundaries = bool(motion_boundaries)
        self.fw: Tensor | None = None  # (T-1, 2, H, W) flow t -> t+1
        self.bw: Tensor | None = None  # (T-1, 2, H, W) flow t+1 -> t
        self.mask: Tensor | None = None  # (T-1, 1, H, W) 1 = valid pixel of frame t
        self.num_estimates = 0  # how many times flows were estimated (reports, tests)
        self._refreshed_at: int | None = None  # a solver may evaluate one iteration twice: refresh once

    @torch.no_grad()
    def set_flows_from(self, frames: Tensor) -> None:
        """Estimate flows and masks from ``frames (T, C, H, W)`` in [0, 1] (detached, clamped) with the flow model."""
        if self.flow_model is None:
            raise VidplugError("the pixel consistency term has no flow model; pass one or call set_flows(fw, bw)")
        frames = frames.detach().clamp(0, 1)
        if frames.shape[0] < 2:
            self.fw = self.bw = self.mask = None
            return
        fw, bw = self.flow_model.flow_pair(frames)  # both directions in one batch
        self.num_estimates += 1
        self.set_flows(fw.to(frames.device), bw.to(frames.device))

    @torch.no_grad()
    def set_flows(self, fw: Tensor, bw: Tensor, mask: Tensor | None = None) -> None:
        """Use precomputed flows ``fw, bw (T-1, 2, H, W)`` in pixels; ``mask (T-1, 1, H, W)`` defaults to the
        forward-backward occlusion mask times :func:`inside_mask`, without the pairs under ``min_coverage``."""
        if fw.shape != bw.shape or fw.ndim != 4 or fw.shape[1] != 2:
            raise VidplugError(
                f"flows must both be (T-1, 2, H, W), got {tuple(fw.shape)} and {tuple(bw.shape)}; "
                "pass forward and backward flows of the same frames"
            )
        fw, bw = fw.detach().float(), bw.detach().float()
        if mask is None:
            mask = correspondence_mask(fw, bw, self.min_coverage, self.motion_boundaries)
        self.fw, self.bw, self.mask = fw, bw, mask.detach().float()

    def _maybe_refresh(self, x: Tensor, iteration: int) -> None:
        due = self.refresh_every > 0 and iteration > 0 and iteration % self.refresh_every == 0
        if due and self.flow_model is not None and self._refreshed_at != iteration:
            self.set_flows_from(x)
            self._refreshed_at = iteration
        if self.fw is None:
            # no initial estimate given: start from the current frames rather than fail
            self.set_flows_from(x)

    def __call__(self, x: Tensor, iteration: int = 0) -> Tensor:
        """``x (T, C, H, W)`` in [0, 1], differentiable -> scalar loss (unweighted)."""
        t, c, h, w = x.shape
        if t < 2:
            return x.new_zeros(())
        self._maybe_refresh(x, iteration)
        if self.fw.shape != (t - 1, 2, h, w):
            raise VidplugError(
                f"flows of shape {tuple(self.fw.shape)} do not fit frames {tuple(x.shape)}; "
                "estimate them from frames of the same size and count"
            )
        if self.fw.device != x.device:  # cache on x's device once, not every call
            self.fw, self.bw, self.mask = (v.to(x.device) for v in (self.fw, self.bw, self.mask))
        fw, mask = self.fw.to(x.dtype), self.mask.to(x.dtype)
        warped = flow_warp(x[1:], fw)  # (T-1, C, H, W): frame t+1 aligned to frame t
        dist = _distance(x[:-1], warped, self.norm) * mask  # occluded / out-of-view pixels contribute nothing
        per_pair = dist.sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)).clamp_min(1.0) * c)  # (T-1,)
        return per_pair.mean()


class AnchorConsistency:
    """Ties the overlap frames of a chunk to the previous chunk's fixed result, a solver loss term.

    ``loss = mean |x[indices] - fixed|`` (l1) or ``mean (x[indices] - fixed)^2`` (l2).

    Args:
        fixed_frames (Tensor): (K, C, H, W) in [0, 1], already restored and written; no gradient.
        indices: the K positions in the chunk's frames that show the same frames.
        weight: multiplies the term in the solver's total loss (the solver applies it).
        norm: ``"l1"`` or ``"l2"``.
    """

    name = "anchor"

    def __init__(
        self, fixed_frames: Tensor, indices: Sequence[int], weight: float = 1.0, norm: str = "l1"
    ) -> None:
        self.indices = [int(i) for i in indices]
        if len(self.indices) != fixed_frames.shape[0]:
            raise VidplugError(
                f"{fixed_frames.shape[0]} anchor frames but {len(self.indices)} indices; give one index per frame"
            )
        self.fixed = fixed_frames.detach()
        self.weight = float(weight)
        self.norm = _check_norm(norm)

    def __call__(self, x: Tensor, iteration: int = 0) -> Tensor:
        """``x (T, C, H, W)`` in [0, 1], differentiable -> scalar loss (unweighted)."""
        if not self.indices:
            return x.new_zeros(())
        if self.fixed.device != x.device or self.fixed.dtype != x.dtype:
            self.fixed = self.fixed.to(x)
        if max(self.indices) >= x.shape[0] or self.fixed.shape[1:] != x.shape[1:]:
            raise VidplugError(
                f"anchor frames {tuple(self.fixed.shape)} at {self.indices} do not fit frames {tuple(x.shape)}; "
                "anchor frames must have the chunk's size and lie inside it"
            )
        return _distance(x[self.indices], self.fixed, self.norm).mean()
