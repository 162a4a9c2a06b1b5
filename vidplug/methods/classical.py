"""Classical baselines a user compares a restoration with, as registered methods (``method:`` in a config), run
through the same harness as the diffusion methods (same chunks, observations, 8-bit output and scoring):

- ``least-squares``: damped conjugate gradient on ``|A x - y|^2 + damping |x - x_0|^2`` from the pseudo-inverse
  estimate ``x_0`` (SR: iterative back-projection from bicubic; temporal and temporal+deblur: Tikhonov-regularised
  least squares, i.e. spatial-domain Wiener deconvolution with a white signal model): 30 steps at damping 0.01,
  chosen on the bikes clip (benchmarks/RESULTS.md: the best PSNR for SR x4 and the temporal tasks among
  damping 0.001 / 0.01 / 0.05 / 0.2; more steps change nothing);
- ``flow-least-squares``: the same least squares, then fused with the neighbouring frames' observations by flow
  warping (:func:`vidplug.consistency.fusion.fuse`, ``consistency.fusion_weight`` / ``fusion_rounds``): multi-frame
  least squares without any prior, the full method's start. It shows what the diffusion prior adds on top;
- ``telea``: ``cv2.inpaint`` with Telea's fast marching method, per frame, for inpainting.

The neighbour fill / bicubic baseline is ``method: bicubic`` (the operator's own ``A_dagger``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vidplug.consistency.fusion import fuse, warp_residual
from vidplug.errors import VidplugError
from vidplug.methods.base import ChunkOutput
from vidplug.runtime import cpu_threads, map_single_threaded
from vidplug.solver.chunk_problem import CroppedOperator, project

LS_STEPS, LS_DAMPING = 30, 0.01
THIN_HOLES_PX = 1.5  # mean distance of the missing pixels to an observed one: 1.0-1.1 for random pixel masks
# of 30-70% missing, 2.5 / 5.5 for 8x8 / 16x16 blocks (held_out_pixels)


def least_squares_estimate(data_op: CroppedOperator, y: Tensor, dagger: Tensor, steps: int, cons=None,
                           flow=None) -> tuple[Tensor, dict]:
    """The least-squares baseline's estimate of a chunk window ``(T, C, H, W)``: ``steps`` damped CG steps (damping
    LS_DAMPING) from the pseudo-inverse ``dagger``; with a ``flow`` model, then fused with the neighbouring frames'
    observations (:func:`vidplug.consistency.fusion.fuse` at ``cons.fusion_weight`` and ``cons.motion_boundaries``,
    or what :func:`cross_validated_fusion_weight` picks from ``cons.fusion_weight_cv`` and
    ``cons.motion_boundaries_cv``, for ``cons.fusion_rounds``).

    The fusion's first flows are estimated on the least-squares estimate or on ``dagger`` (the observed frames;
    bicubic for SR), as ``cons.fusion_flows_from`` says; ``auto`` fuses from both and keeps the result that is more
    consistent under its own flows (:func:`~vidplug.consistency.fusion.warp_residual`, no ground truth).

    Returns:
        the estimate, and what the fusion did: ``{}`` unfused, else ``flows_from`` (``"estimate"`` /
        ``"observation"``), ``weight``, ``motion_boundaries`` and, when cross-validated, ``weight_cv`` (each
        candidate's ``weight``, ``motion_boundaries`` and ``held_out_mse``) or a ``note`` saying why it was not.
    """
    x = project(data_op, y, dagger, steps, LS_DAMPING)
    if flow is None:
        return x, {}
    cross_validate = cons.fusion_weight_cv or cons.motion_boundaries_cv
    info = cross_validated_fusion_weight(data_op, y, steps, cons, flow) if cross_validate else {}
    weight = info.setdefault("weight", cons.fusion_weight)
    boundaries = info.setdefault("motion_boundaries", cons.motion_boundaries)
    fused, chosen = _fused(data_op, y, dagger, x, steps, cons, flow, weight, boundaries)
    return fused, info | {"flows_from": chosen}


def _fused(data_op: CroppedOperator, y: Tensor, dagger: Tensor, x: Tensor, steps: int, cons, flow,
           weight: float, motion_boundaries: bool) -> tuple[Tensor, str]:
    """The least-squares estimate ``x`` fused at ``weight`` with the coupling mask ``motion_boundaries``
    (:func:`least_squares_estimate`'s fusion), and which frames its first flows came from (``"estimate"`` /
    ``"observation"``)."""
    sources = {"estimate": None, "observation": dagger}
    names = list(sources) if cons.fusion_flows_from == "auto" else [cons.fusion_flows_from]
    masks = {"min_coverage": cons.min_pair_coverage, "motion_boundaries": motion_boundaries}

    def fused_from(name: str) -> Tensor:
        return fuse(data_op, y, dagger, x, flow, weight=weight, rounds=cons.fusion_rounds, steps=steps,
                    damping=LS_DAMPING, radius=cons.fusion_radius, first_flows=sources[name], **masks)

    # auto's two candidates are independent: on CPU with several torch threads, side by side on one thread each
    parallel = len(names) > 1 and cpu_threads(x.device) > 1
    fused = dict(zip(names, map_single_threaded(fused_from, names) if parallel else map(fused_from, names),
                     strict=True))
    chosen = names[0] if len(fused) == 1 else min(fused, key=lambda name: warp_residual(flow, fused[name], **masks))
    return fused[chosen], chosen


def cross_validated_fusion_weight(data_op: CroppedOperator, y: Tensor, steps: int, cons, flow) -> dict:
    """Pick the fusion weight from ``cons.fusion_weight_cv``, and the coupling mask from
    ``cons.motion_boundaries_cv``, by held-out pixels, without ground truth (an empty list: the fixed setting).

    For an operator that observes a subset of the pixels (one with ``with_mask``: inpainting), about
    ``cons.fusion_cv_holdout`` of the observed pixels is removed from the observation, shaped like the frame's
    missing pixels (:func:`held_out_pixels`: single pixels for a random pixel mask, whole holes for a mask with large
    ones, where the neighbours' pixels matter more); each candidate weight restores the window from the rest exactly
    as :func:`least_squares_estimate` would (pseudo-inverse, least squares, fusion), and the weight whose estimate is
    closest to the held-out observed values (mean squared error) wins. Spatial fill and the neighbours' warped
    pixels compete there, so the weight follows how well the flows hold on this clip: the best fixed weight was 0.03
    on some of bikes' segments and 0.1 on others, and at 256x256 the shipped 0.1 lost to the fill alone on bmx-trees
    (benchmarks/RESULTS.md, "Issue 18, session 12"). Every pair of a weight and a mask setting is tried: whether
    the motion-boundary test helps depends on the clip as well (session 16).

    Returns:
        ``{"weight": w, "motion_boundaries": m, "weight_cv": [{"weight": candidate, "motion_boundaries": setting,
        "held_out_mse": error}, ...]}``, or ``{"weight": cons.fusion_weight, "motion_boundaries":
        cons.motion_boundaries, "note": ...}`` for an operator without a pixel mask or a window with nothing to hold
        out.
    """
    op = data_op.op
    fixed = {"weight": cons.fusion_weight, "motion_boundaries": cons.motion_boundaries}
    used = f"consistency.fusion_weight {cons.fusion_weight} and motion_boundaries {cons.motion_boundaries}"
    if not hasattr(op, "with_mask"):
        keys = [f"consistency.{k}" for k in ("fusion_weight_cv", "motion_boundaries_cv") if getattr(cons, k)]
        return fixed | {"note": f"{' and '.join(keys)} {'needs' if len(keys) == 1 else 'need'} an operator with a "
                                f"pixel mask (inpainting); the fusion used {used}"}
    observed = op.mask
    held = held_out_pixels(observed, cons.fusion_cv_holdout)  # (T, 1, H, W)
    if not bool(held.any()):
        return fixed | {"note": f"consistency.fusion_weight_cv: no observed pixel to hold out in this window; the "
                                f"fusion used {used}"}
    fit_op = CroppedOperator(op.with_mask(observed - held), data_op.lo, data_op.hi)
    y_fit = y * (1 - held)
    dagger_fit = fit_op.A_dagger(y_fit).clamp(0, 1)
    x_fit = project(fit_op, y_fit, dagger_fit, steps, LS_DAMPING)  # the same for every candidate
    scores = []
    for boundaries in cons.motion_boundaries_cv or [cons.motion_boundaries]:
        for w in cons.fusion_weight_cv or [cons.fusion_weight]:
            est, _ = _fused(fit_op, y_fit, dagger_fit, x_fit, steps, cons, flow, w, boundaries)
            error = float(((est - y) ** 2 * held).sum() / (held.sum() * y.shape[1]).clamp_min(1))
            scores.append({"weight": w, "motion_boundaries": boundaries, "held_out_mse": error})
    best = min(scores, key=lambda s: s["held_out_mse"])
    return {"weight": best["weight"], "motion_boundaries": best["motion_boundaries"], "weight_cv": scores}


class LeastSquares:
    """Restores a chunk as damped least squares on its observed frames, from ``A_dagger(y)`` (linear tasks)."""

    name = "least-squares"
    needs_prior = False
    uses_consistency = False
    fused = False  # whether the estimate is fused with the neighbouring frames' observations

    def __call__(self, cfg, models, chunk, y: Tensor, op, anchors, reference, progress: bool = True) -> ChunkOutput:
        cons = cfg.consistency
        note = cons.coupling_note(chunk.window_len) if self.fused else None
        flow = models.method_flow(cfg) if self.fused and cons.couples(chunk.window_len) else None
        lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
        x, fusion = least_squares_estimate(CroppedOperator(op, lo, hi), y[lo:hi], op.A_dagger(y).clamp(0, 1),
                                           LS_STEPS, cons, flow)
        summary = {"method": self.name, "steps": LS_STEPS, "damping": LS_DAMPING}
        if flow is not None:
            summary |= {"fusion_weight": fusion["weight"], "motion_boundaries": fusion["motion_boundaries"],
                        "fusion_rounds": cons.fusion_rounds,
                        "fusion_radius": cons.fusion_radius, "fusion_flows_from": fusion["flows_from"],
                        "flow_model": flow.name}
            if "weight_cv" in fusion:
                summary["fusion_weight_cv"] = fusion["weight_cv"]
        notes = [n for n in (note, fusion.get("note")) if n]
        if notes:
            summary["notes"] = notes
        return x, summary, None


class FlowLeastSquares(LeastSquares):
    """Restores a chunk as flow-coupled (multi-frame) damped least squares from the least-squares estimate."""

    name = "flow-least-squares"
    fused = True  # no loss terms (uses_consistency stays False); the flow model comes from models.method_flow()


def held_out_pixels(observed: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Observed pixels to hold out for cross-validation, ``(T, 1, H, W)`` 0/1, about ``fraction`` of each frame's
    observed pixels, shaped like the frame's missing pixels.

    Where the missing pixels are scattered (on average within THIN_HOLES_PX of an observed pixel: a random pixel
    mask), single observed pixels are held out at random. Where the holes are larger (a real mask, blocks), single
    pixels would be filled from their observed neighbours far better than the real holes can be: the frame's
    missing-pixel mask is then moved by a third of the frame each way (wrapping round), the observed pixels it lands
    on form candidate holes (4-connected components), and whole holes are taken in a random order until they cover
    ``fraction``, skipping any that would take more than 1.5 times that (the smallest one when none fits: one large
    hole). Measured on bikes and bmx-trees with 8x8 / 16x16 blocks: single pixels chose 0.01-0.03 where 0.1-0.3
    restored best (up to -1.1 dB), moved holes chose 0.1-0.3 (benchmarks/RESULTS.md, "Issue 18, session 12").
    """
    import cv2

    gen = torch.Generator().manual_seed(seed)
    draw = torch.rand(observed.shape, generator=gen).to(observed.device)
    out = (draw < fraction).to(observed.dtype) * observed
    for t, m in enumerate(observed[:, 0]):
        missing = (m < 0.5).cpu().numpy().astype(np.uint8)
        if missing.all():
            continue  # nothing observed, nothing to hold out
        if not missing.any() or cv2.distanceTransform(missing, cv2.DIST_L2, 5)[missing > 0].mean() <= THIN_HOLES_PX:
            continue  # scattered missing pixels: the random pixels above
        h, w = missing.shape
        moved = torch.roll(1 - m, shifts=(h // 3 + 1, w // 3 + 1), dims=(0, 1)) * m  # observed pixels under a hole
        count, labels = cv2.connectedComponents(moved.cpu().numpy().astype(np.uint8), connectivity=4)
        labels = torch.from_numpy(labels).to(m.device)
        sizes = torch.bincount(labels.flatten(), minlength=count)[1:]  # component 0 is the background
        target, total, taken = fraction * float(m.sum()), 0, []
        for c in torch.randperm(count - 1, generator=gen).tolist():  # whole holes, none that overshoots by half
            if total >= target:
                break
            if total + int(sizes[c]) <= 1.5 * target:
                taken.append(c + 1)
                total += int(sizes[c])
        if not taken and count > 1:
            taken = [int(sizes.argmin()) + 1]
        out[t, 0] = torch.isin(labels, torch.tensor(taken, dtype=labels.dtype, device=labels.device)).to(m.dtype)
    return out


def telea_inpaint(y: Tensor, mask: Tensor, radius: int = 3) -> Tensor:
    """OpenCV's Telea inpainting of every frame: ``y (T, C, H, W)`` in [0, 1], ``mask (T, 1, H, W)`` with 1 =
    observed -> ``(T, C, H, W)`` in [0, 1] (8-bit inside OpenCV, as ``cv2.inpaint`` requires)."""
    import cv2

    out = []
    for frame, m in zip(y, mask, strict=True):
        img = (frame.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)  # (H, W, C)
        holes = (m[0].cpu().numpy() < 0.5).astype(np.uint8)  # (H, W), 1 = to fill
        filled = cv2.inpaint(np.ascontiguousarray(img), holes, radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled.astype(np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(out).to(y)


class Telea:
    """Restores an inpainting chunk with :func:`telea_inpaint` and the window operator's masks."""

    name = "telea"
    needs_prior = False
    uses_consistency = False

    def __call__(self, cfg, models, chunk, y: Tensor, op, anchors, reference, progress: bool = True) -> ChunkOutput:
        mask = getattr(op, "mask", None)
        if mask is None:
            raise VidplugError(f"method telea is OpenCV inpainting; task {cfg.task.name!r} has no mask "
                               "(use it with --task inpaint)")
        return telea_inpaint(y, mask), {"method": self.name}, None


# Task -> its classical baselines for the comparison tables: row label -> method name
TASK_BASELINES: dict[str, dict[str, str]] = {
    "sr4": {"bicubic": "bicubic", "least squares": "least-squares"},
    "inpaint": {"neighbour fill": "bicubic", "OpenCV Telea": "telea"},
    "temporal": {"observation": "bicubic", "regularised least squares": "least-squares"},
    "temporal+deblur": {"observation": "bicubic", "regularised least squares": "least-squares"},
}
