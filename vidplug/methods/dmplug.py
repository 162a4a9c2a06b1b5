"""The ``dmplug`` method: DMPlug on a chunk window with the temporal-consistency terms the config turns on.

This is the wiring between the run (its config and networks) and the solver: it builds the loss terms and initial
seeds and passes them to :func:`vidplug.solver.solve`, which only sees components.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from vidplug.consistency.fusion import FlowCoupling, fuse
from vidplug.consistency.warp import uncoupled_pairs
from vidplug.methods.base import ChunkOutput
from vidplug.methods.classical import least_squares_estimate
from vidplug.solver import solve
from vidplug.solver.chunk_problem import (
    CroppedOperator,
    initial_seeds,
    inversion_seeds,
    project,
)
from vidplug.solver.chunks import Chunk
from vidplug.solver.reverse import StartOffset, frame_workers, on_frame_groups


def consistency_terms(cons, models, chunk: Chunk, init: Tensor, anchors: Tensor | None) -> list:
    """Consistency terms for one chunk window: semantic (CLIP), pixel (flow warping), anchor (overlap frames).

    Args:
        cons: the run's ``ConsistencyConfig`` (weights, norms, refresh).
        init (Tensor): ``(T, C, H, W)`` pseudo-inverse estimate; the first flows are estimated from it.
    """
    from vidplug.consistency.pixel import AnchorConsistency, PixelConsistency
    from vidplug.consistency.semantic import SemanticConsistency

    terms, pixel = [], None
    if models.flow is not None and cons.couples(chunk.window_len) and cons.pixel_weight > 0 and cons.pixel_in_solve:
        pixel = PixelConsistency(
            models.flow, weight=cons.pixel_weight, norm=cons.pixel_norm, refresh_every=cons.flow_refresh_every,
            min_coverage=cons.min_pair_coverage, motion_boundaries=cons.motion_boundaries,
        )
        pixel.set_flows_from(init)  # progressive refinement starts from the pseudo-inverse / bicubic estimate
        terms.append(pixel)
    if models.clip is not None and chunk.window_len > 1 and cons.semantic_weight > 0:
        terms.insert(0, SemanticConsistency(models.clip, weight=cons.semantic_weight, to_mean=cons.semantic_to_mean,
                                            cuts=_scene_cuts(cons, models, init, pixel)))
    if anchors is not None and len(anchors) and cons.anchor_weight > 0:
        idx = list(range(chunk.local(chunk.anchor_start), chunk.local(chunk.start)))
        terms.append(AnchorConsistency(anchors, idx, weight=cons.anchor_weight))
    return terms


def _scene_cuts(cons, models, init: Tensor, pixel=None) -> list[int]:
    """The pairs ``t`` of ``init (T, C, H, W)`` that the flow check leaves uncoupled (under
    ``consistency.min_pair_coverage``: scene cuts), where the run has a flow model; the semantic term does not tie
    them either. The pixel term's mask, when it has one, is that check on the same frames; without a flow model (a
    semantic-only run) every pair is tied."""
    if pixel is not None and pixel.mask is not None:
        return uncoupled_pairs(pixel.mask)
    if models.flow is None:
        return []
    return FlowCoupling.from_frames(models.flow, init, 1.0, min_coverage=cons.min_pair_coverage,
                                    motion_boundaries=cons.motion_boundaries).uncoupled()


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
        prior = models.run_prior(cfg)  # this run's border padding
        models.run_flow(cfg)  # and its settings of the flow call (consistency.dis_*)
        fusing = _fusing(cfg, models, op, chunk)
        init, fusion = _least_squares_start(cfg, models, op, data_op, y[lo:hi], op.A_dagger(y).clamp(0, 1), fusing)
        # the coupling mask the start used (cross-validated or not) is the solve's and the projection's too
        cons = replace(cfg.consistency, motion_boundaries=fusion.get("motion_boundaries",
                                                                     cfg.consistency.motion_boundaries))
        terms = consistency_terms(cons, models, chunk, init, anchors)
        z0, offset = _start(cfg, prior, chunk, init)
        result = solve(y[lo:hi], data_op, prior, sv, extra_terms=terms, z_init=z0, frame_shape=tuple(init.shape),
                       reference=reference, progress=progress, desc=f"chunk {chunk.index}",
                       on_iterate=self.on_iterate, x_offset=offset)
        frames, summary = result.frames, result.to_dict()
        note = cons.coupling_note(chunk.window_len) if models.flow is not None and cons.pixel_weight > 0 else None
        weight = fusion.get("weight", cons.fusion_weight)  # the start's, cross-validated or not; the projection's too
        if fusing:  # the report says that the start (and the projection) fused the neighbouring frames
            summary["fusion"] = {"weight": weight, "motion_boundaries": cons.motion_boundaries,
                                 "rounds": cons.fusion_rounds, "radius": cons.fusion_radius,
                                 "pixel_in_solve": cons.pixel_in_solve}
            # the start was fused too (not only the projection): its first flows' source, and the weight's choice
            summary["fusion"] |= {k: fusion[k] for k in ("flows_from", "weight_cv") if k in fusion}
        for n in (note if not fusing else None, fusion.get("note")):
            if n:
                summary.setdefault("notes", []).append(n)  # after the solver's own notes
        if sv.project_steps > 0 and op.linear:
            projection: dict = {}
            frames = _projected(cfg.solver, cons, models, data_op, y[lo:hi], frames, fusing, weight, projection)
            if fusing:  # which neighbouring frames its flows left uncoupled (scene cuts), as frame numbers of the clip
                summary["fusion"]["uncoupled_pairs"] = [[chunk.window_start + t for t in pair]
                                                        for pair in projection["uncoupled_pairs"]]
            if reference is not None:  # ORACLE: reported beside the projected result, never used for a decision
                from vidplug.metrics.fidelity import psnr

                summary["oracle_psnr_unprojected"] = psnr(result.frames, reference)[0]
                summary["oracle_psnr_projected"] = psnr(frames, reference)[0]
        return frames, summary, result.z


def _fusing(cfg, models, op, chunk: Chunk) -> bool:
    """Whether the least-squares stages fuse neighbouring frames: the pixel term is on (its flow model loaded), the
    operator is linear, the window has ``consistency.coupling_min_frames`` or more and ``consistency.fusion_weight``
    > 0."""
    cons = cfg.consistency
    return (models.flow is not None and cons.pixel_weight > 0 and cons.fusion_weight > 0 and op.linear
            and cons.couples(chunk.window_len))


def _least_squares_start(cfg, models, op, data_op: CroppedOperator, y: Tensor, dagger: Tensor,
                         fusing: bool) -> tuple[Tensor, dict]:
    """The solve's start ``(T, C, H, W)``: the pseudo-inverse ``dagger``, refined to the least-squares baseline's
    estimate with ``solver.init_refine_steps`` (SR: back-projection) and, when ``fusing``, fused with the neighbouring
    frames' observations (``consistency.fusion_rounds`` rounds of flow-coupled least squares); and what the fusion did
    (:func:`~vidplug.methods.classical.least_squares_estimate`: ``flows_from``, ``weight``, ...; ``{}`` unfused)."""
    sv = cfg.solver
    if sv.init_refine_steps <= 0 or not op.linear:
        return dagger, {}
    return least_squares_estimate(data_op, y, dagger, sv.init_refine_steps, cfg.consistency,
                                  models.flow if fusing else None)


def _projected(sv, cons, models, data_op: CroppedOperator, y: Tensor, frames: Tensor, fusing: bool, weight: float,
               report: dict | None = None) -> Tensor:
    """Measurement consistency after the solve (``sv.project_steps`` CG steps at ``sv.project_damping`` from the
    restoration); when ``fusing`` the neighbours' observations are fused too (``cons``' coupling mask), with flows
    from the restoration, and ``report`` receives the pairs they leave uncoupled
    (:func:`~vidplug.consistency.fusion.fuse`)."""
    if not fusing:
        return project(data_op, y, frames, sv.project_steps, sv.project_damping)
    return fuse(data_op, y, frames, frames, models.flow, weight=weight, rounds=1, steps=sv.project_steps,
                damping=sv.project_damping, radius=cons.fusion_radius, min_coverage=cons.min_pair_coverage,
                motion_boundaries=cons.motion_boundaries, report=report)


def _start(cfg, prior, chunk: Chunk, init: Tensor) -> tuple[Tensor, StartOffset | None]:
    """Initial seeds of the window and the offset added to ``R(z)`` (None unless ``solver.init=inversion-offset``,
    where ``x = R(z) + init - R(z0)`` starts exactly at ``init (T, C, H, W)``)."""
    sv = cfg.solver
    if sv.init in ("inversion", "inversion-offset"):  # warm start: seeds whose reverse process lands near init
        workers = frame_workers(sv.frame_threads, init)  # per frame, so over threads as the solve's iterations
        z0 = on_frame_groups(lambda sl: inversion_seeds(init[sl], prior, sv.num_steps, sv.spacing,
                                                        sv.inversion_iters), len(init), workers)
        # inversion-offset: init - R(z0), from the solve's first pass through R (one reverse process fewer)
        return z0, (None if sv.init == "inversion" else StartOffset(init))
    frames = range(chunk.window_start, chunk.window_stop)
    seed_shape = prior.seed_shape(tuple(init.shape))[1:]  # (C, H, W) pixels, (4, H/8, W/8) latents
    return initial_seeds(seed_shape, frames, cfg.seed).to(init.device), None
