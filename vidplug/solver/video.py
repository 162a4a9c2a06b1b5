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

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_dagger(y)


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


def restore_chunk(
    cfg: RestoreConfig,
    models: Models,
    chunk: Chunk,
    y: Tensor,
    op: torch.nn.Module,
    anchors: Tensor | None,
    reference: Tensor | None,
    progress: bool = True,
    on_iterate=None,
) -> tuple[Tensor, dict[str, Any], Tensor | None]:
    """Restore the optimised window of one chunk.

    Args:
        y (Tensor): observations of the window's frames ``[window_start, window_stop)``.
        op: the operator built for the window (frame_offset = window_start).
        anchors (Tensor | None): fixed, already written frames ``[anchor_start, start)``.
        reference (Tensor | None): clean window frames (simulation only; drives the ORACLE curve, never a decision).
        on_iterate: passed to :func:`~vidplug.solver.solve` (studies of the stopping rule only).

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
    terms = _extra_terms(cfg, models, chunk, init, anchors)
    c, h, w = init.shape[1:]
    if cfg.solver.init == "inversion":  # warm start: seeds whose reverse process lands near the initial estimate
        from vidplug.prior.ddim import ddim_invert, ddim_timesteps

        ts = ddim_timesteps(cfg.solver.num_steps, models.prior.num_train_timesteps, cfg.solver.spacing)
        z0 = ddim_invert(to_model_range(init), models.prior, ts)
    else:
        z0 = initial_seeds((c, h, w), range(chunk.window_start, chunk.window_stop), cfg.seed).to(init.device)
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
        on_iterate=on_iterate,
    )
    return result.frames, result.to_dict(), result.z
