"""The ``dmplug`` method: DMPlug on a chunk window with the temporal-consistency terms the config turns on.

This is the wiring between the run (its config and networks) and the solver: it builds the loss terms and initial
seeds and passes them to :func:`vidplug.solver.solve`, which only sees components.
"""

from __future__ import annotations

from torch import Tensor

from vidplug.methods.base import ChunkOutput
from vidplug.methods.classical import LS_DAMPING
from vidplug.solver import solve
from vidplug.solver.chunk_problem import (
    CroppedOperator,
    initial_seeds,
    inversion_seeds,
    project,
    start_offset,
)
from vidplug.solver.chunks import Chunk


def consistency_terms(cons, models, chunk: Chunk, init: Tensor, anchors: Tensor | None) -> list:
    """Consistency terms for one chunk window: semantic (CLIP), pixel (flow warping), anchor (overlap frames).

    Args:
        cons: the run's ``ConsistencyConfig`` (weights, norms, refresh).
        init (Tensor): ``(T, C, H, W)`` pseudo-inverse estimate; the first flows are estimated from it.
    """
    from vidplug.consistency.pixel import AnchorConsistency, PixelConsistency
    from vidplug.consistency.semantic import SemanticConsistency

    terms = []
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


class DMPlugMethod:
    """DMPlug over the chunk window, the data term on its exactly observed frames, plus the consistency terms."""

    name = "dmplug"
    needs_prior = True
    uses_consistency = True

    def __init__(self, on_iterate=None) -> None:
        self.on_iterate = on_iterate  # passed to solve (studies of the stopping rule, benchmarks/tune_es.py)

    def __call__(self, cfg, models, chunk: Chunk, y: Tensor, op, anchors: Tensor | None, reference: Tensor | None,
                 progress: bool = True) -> ChunkOutput:
        sv = cfg.solver
        lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
        data_op = CroppedOperator(op, lo, hi)
        models.prior.border_pad = cfg.prior.border_pad  # models may be shared between runs: this run's setting
        init = op.A_dagger(y).clamp(0, 1)  # (T, C, H, W) pseudo-inverse estimate
        if sv.init_refine_steps > 0 and op.linear:  # the least-squares baseline's estimate (SR: back-projection)
            init = project(data_op, y[lo:hi], init, sv.init_refine_steps, LS_DAMPING)
        terms = consistency_terms(cfg.consistency, models, chunk, init, anchors)
        z0, offset = _start(cfg, models.prior, chunk, init)
        result = solve(y[lo:hi], data_op, models.prior, sv, extra_terms=terms, z_init=z0, frame_shape=tuple(init.shape),
                       reference=reference, progress=progress, desc=f"chunk {chunk.index}",
                       on_iterate=self.on_iterate, x_offset=offset)
        frames, summary = result.frames, result.to_dict()
        if sv.project_steps > 0 and op.linear:
            frames = project(data_op, y[lo:hi], frames, sv.project_steps, sv.project_damping)
            if reference is not None:  # ORACLE: reported beside the projected result, never used for a decision
                from vidplug.metrics.fidelity import psnr

                summary["oracle_psnr_unprojected"] = psnr(result.frames, reference)[0]
                summary["oracle_psnr_projected"] = psnr(frames, reference)[0]
        return frames, summary, result.z


def _start(cfg, prior, chunk: Chunk, init: Tensor) -> tuple[Tensor, Tensor | None]:
    """Initial seeds of the window and the offset added to ``R(z)`` (None unless ``solver.init=inversion-offset``,
    where ``x = R(z) + init - R(z0)`` starts exactly at ``init (T, C, H, W)``)."""
    sv = cfg.solver
    if sv.init in ("inversion", "inversion-offset"):  # warm start: seeds whose reverse process lands near init
        z0 = inversion_seeds(init, prior, sv.num_steps, sv.spacing)
        if sv.init == "inversion":
            return z0, None
        return z0, start_offset(init, z0, prior, sv.num_steps, sv.spacing, clamp=sv.clamp)
    frames = range(chunk.window_start, chunk.window_stop)
    seed_shape = prior.seed_shape(tuple(init.shape))[1:]  # (C, H, W) pixels, (4, H/8, W/8) latents
    return initial_seeds(seed_shape, frames, cfg.seed).to(init.device), None
