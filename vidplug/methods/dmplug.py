"""The ``dmplug`` method: DMPlug on a chunk window with the temporal-consistency terms the config turns on.

This is the wiring between the run (its config and networks) and the solver: it builds the loss terms and initial
seeds and passes them to :func:`vidplug.solver.solve`, which only sees components.
"""

from __future__ import annotations

from torch import Tensor

from vidplug.methods.base import ChunkOutput
from vidplug.solver import solve
from vidplug.solver.chunk_problem import CroppedOperator, initial_seeds, inversion_seeds
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
        init = op.A_dagger(y).clamp(0, 1)  # (T, C, H, W) pseudo-inverse estimate
        lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
        terms = consistency_terms(cfg.consistency, models, chunk, init, anchors)
        if cfg.solver.init == "inversion":  # warm start: seeds whose reverse process lands near the estimate
            z0 = inversion_seeds(init, models.prior, cfg.solver.num_steps, cfg.solver.spacing)
        else:
            frames = range(chunk.window_start, chunk.window_stop)
            seed_shape = models.prior.seed_shape(tuple(init.shape))[1:]  # (C, H, W) pixels, (4, H/8, W/8) latents
            z0 = initial_seeds(seed_shape, frames, cfg.seed).to(init.device)
        result = solve(y[lo:hi], CroppedOperator(op, lo, hi), models.prior, cfg.solver, extra_terms=terms, z_init=z0,
                       frame_shape=tuple(init.shape), reference=reference, progress=progress,
                       desc=f"chunk {chunk.index}", on_iterate=self.on_iterate)
        return result.frames, result.to_dict(), result.z
