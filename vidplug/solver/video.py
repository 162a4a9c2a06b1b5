"""Restoring one chunk window: the data term over its exactly-observed frames, the consistency terms, the initial
seeds (one per absolute frame index, or a DDIM-inversion warm start), and the DMPlug solve."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vidplug.config import RestoreConfig
from vidplug.models import Models
from vidplug.prior.base import to_model_range
from vidplug.solver.chunks import Chunk


def initial_seeds(shape: tuple[int, int, int], frames: range, seed: int) -> Tensor:
    """Initial diffusion seeds ``(len(frames), C, H, W)``, one per absolute frame index (chunking-independent)."""
    out = []
    for t in frames:
        g = torch.Generator().manual_seed(int(seed) * 7_919 + 104_729 + int(t))
        out.append(torch.randn(shape, generator=g))
    return torch.stack(out)


class CroppedOperator(torch.nn.Module):
    """The data term of a chunk: the window's operator, keeping only the observed frames ``[lo, hi)`` of its output."""

    def __init__(self, op: torch.nn.Module, lo: int, hi: int):
        super().__init__()
        self.op, self.lo, self.hi = op, lo, hi

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self.op.A(x)[self.lo : self.hi]

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Adjoint of :meth:`A`: the observed frames' adjoint, zero for the unobserved ones ``(T, C, H, W)``."""
        full = y.new_zeros(self.op.output_shape())
        full[self.lo : self.hi] = y
        return self.op.A_adjoint(full)

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_dagger(y)


def project(data_op: CroppedOperator, y: Tensor, x: Tensor, steps: int, damping: float) -> Tensor:
    """Measurement consistency: ``steps`` conjugate-gradient steps on ``|A x' - y|^2 + damping |x' - x|^2`` from
    ``x`` (``(T, C, H, W)`` in [0, 1]); returns ``x'`` clamped to [0, 1]. A linear operator is required."""
    from vidplug.physics.base import VideoOperator

    with torch.no_grad():
        out = VideoOperator.least_squares(data_op, y, x, steps, damping)  # A and A_adjoint are all it uses
    return out.clamp(0.0, 1.0)


def _psnr(x: Tensor, ref: Tensor) -> float:
    """Mean frame PSNR in dB of ``x`` against ``ref`` (both ``(T, C, H, W)`` in [0, 1])."""
    mse = ((x - ref) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return float((10.0 * torch.log10(1.0 / mse)).mean())


def _extra_terms(cfg: RestoreConfig, models: Models, chunk: Chunk, init: Tensor, anchors: Tensor | None) -> list:
    """Consistency terms for one chunk window: semantic (CLIP), pixel (flow warping), anchor (overlap frames)."""
    from vidplug.consistency.pixel import AnchorConsistency, PixelConsistency
    from vidplug.consistency.semantic import SemanticConsistency

    cons, terms = cfg.consistency, []
    if models.clip is not None and chunk.window_len > 1 and cons.semantic_weight > 0:
        terms.append(SemanticConsistency(models.clip, weight=cons.semantic_weight, to_mean=cons.semantic_to_mean))
    if models.flow is not None and chunk.window_len > 1 and cons.pixel_weight > 0:
        pixel = PixelConsistency(
            models.flow, weight=cons.pixel_weight, norm=cons.pixel_norm, refresh_every=cons.flow_refresh_every
        )
        pixel.set_flows_from(init)  # progressive refinement starts from the pseudo-inverse / bicubic estimate
        terms.append(pixel)
    if anchors is not None and len(anchors) and cons.anchor_weight > 0:
        idx = list(range(chunk.local(chunk.anchor_start), chunk.local(chunk.start)))
        terms.append(AnchorConsistency(anchors, idx, weight=cons.anchor_weight))
    return terms


def _warm_start(cfg: RestoreConfig, models: Models, init: Tensor, chunk: Chunk) -> tuple[Tensor, Tensor | None]:
    """Initial seeds ``(T, C, H, W)`` for the window and the offset added to ``R(z)`` (None unless
    ``solver.init=inversion-offset``, where ``x = R(z) + init - R(z0)`` starts exactly at ``init``)."""
    if cfg.solver.init == "random":
        c, h, w = init.shape[1:]
        z0 = initial_seeds((c, h, w), range(chunk.window_start, chunk.window_stop), cfg.seed).to(init.device)
        return z0, None
    from vidplug.prior.base import to_unit_range
    from vidplug.prior.ddim import ddim_invert, ddim_reverse, ddim_timesteps

    ts = ddim_timesteps(cfg.solver.num_steps, models.prior.num_train_timesteps, cfg.solver.spacing)
    z0 = ddim_invert(to_model_range(init), models.prior, ts)  # seeds whose reverse process lands near init
    if cfg.solver.init != "inversion-offset":
        return z0, None
    with torch.no_grad():
        start = to_unit_range(ddim_reverse(z0, models.prior, ts, clamp=cfg.solver.clamp)).float()
    return z0, init - start


def restore_chunk(
    cfg: RestoreConfig,
    models: Models,
    chunk: Chunk,
    y: Tensor,
    op: torch.nn.Module,
    anchors: Tensor | None,
    reference: Tensor | None,
    progress: bool = True,
) -> tuple[Tensor, dict[str, Any], Tensor | None]:
    """Restore the optimised window of one chunk.

    Args:
        y (Tensor): observations of the window's frames ``[window_start, window_stop)``.
        op: the operator built for the window (frame_offset = window_start).
        anchors (Tensor | None): fixed, already written frames ``[anchor_start, start)``.
        reference (Tensor | None): clean window frames (simulation only; drives the ORACLE curve, never a decision).

    Returns:
        (Tensor, dict, Tensor | None): restored window frames ``(window_len, C, H, W)`` in [0, 1], the solver
        summary, and the seeds of the chosen iterate (None for the baseline).
    """
    init = op.A_dagger(y).clamp(0, 1)
    if cfg.method == "bicubic":
        return init, {"method": "bicubic"}, None
    from vidplug.solver import solve

    lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
    data_op = CroppedOperator(op, lo, hi)
    models.prior.border_pad = cfg.prior.border_pad  # (shared models: each run's own setting)
    if cfg.solver.init_refine_steps > 0 and getattr(op, "linear", False):
        init = project(data_op, y[lo:hi], init, cfg.solver.init_refine_steps, cfg.solver.project_damping)
    terms = _extra_terms(cfg, models, chunk, init, anchors)
    z0, offset = _warm_start(cfg, models, init, chunk)
    result = solve(
        y[lo:hi],
        data_op,
        models.prior,
        cfg.solver,
        extra_terms=terms,
        z_init=z0,
        reference=reference,
        progress=progress,
        desc=f"chunk {chunk.index}",
        x_offset=offset,
    )
    frames, summary = result.frames, result.to_dict()
    if cfg.solver.project_steps > 0 and getattr(op, "linear", False):
        frames = project(data_op, y[lo:hi], frames, cfg.solver.project_steps, cfg.solver.project_damping)
        if reference is not None:  # ORACLE: reported next to the projected result, never used for a decision
            summary["oracle_psnr_unprojected"] = _psnr(result.frames, reference)
            summary["oracle_psnr_projected"] = _psnr(frames, reference)
    return frames, summary, result.z
