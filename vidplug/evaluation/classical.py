"""Classical baselines a user compares a restoration with, run through vidplug's restoration harness as chunk
solvers (same chunks, observations, 8-bit output and scoring as the diffusion methods):

- ``least squares``: damped conjugate gradient on ``|A x - y|^2 + damping |x - x_0|^2`` from the pseudo-inverse
  estimate ``x_0`` (SR: iterative back-projection from bicubic; temporal and temporal+deblur: Tikhonov-regularised
  least squares, the spatial-domain Wiener deconvolution with a white signal model);
- ``OpenCV Telea``: ``cv2.inpaint`` (Telea's fast marching method), per frame, for inpainting.

The neighbour fill / bicubic baseline is ``method=bicubic`` (the operator's own ``A_dagger``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.solver.video import CroppedOperator, project

ChunkSolver = Callable[..., tuple[Tensor, dict[str, Any], Tensor | None]]


def least_squares_solver(steps: int = 30, damping: float = 0.01) -> ChunkSolver:
    """A chunk solver: ``steps`` damped CG steps on the window's observed frames from ``A_dagger(y)``."""

    def solve_chunk(cfg, models, chunk, y: Tensor, op, anchors, reference, progress=True):
        lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
        x = project(CroppedOperator(op, lo, hi), y[lo:hi], op.A_dagger(y), steps, damping)  # (T, C, H, W)
        return x, {"method": "least squares", "steps": steps, "damping": damping}, None

    return solve_chunk


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


def telea_solver(radius: int = 3) -> ChunkSolver:
    """A chunk solver for inpainting: :func:`telea_inpaint` with the window operator's masks."""

    def solve_chunk(cfg, models, chunk, y: Tensor, op, anchors, reference, progress=True):
        mask = getattr(op, "mask", None)
        if mask is None:
            raise VidplugError(f"the OpenCV Telea baseline is for inpainting; task {cfg.task.name!r} has no mask")
        return telea_inpaint(y, mask, radius), {"method": "opencv telea", "radius": radius}, None

    return solve_chunk


# Task -> the baselines compared with the diffusion methods: name -> (config change, chunk solver or None). The
# least-squares settings were chosen on the bikes clip (benchmarks/RESULTS.md); `method=bicubic` is the operator's
# own pseudo-inverse (bicubic for SR, neighbour fill for inpainting, the observation itself for temporal tasks).
TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "sr4": {"name": "sr4"},
    "inpaint": {"name": "inpaint", "options": {"ratio": 0.5}},
    "temporal": {"name": "temporal", "options": {"k": 7}},
    "temporal+deblur": {"name": "temporal+deblur", "options": {"k": 7}},
}


def task_baselines(task: str) -> dict[str, tuple[dict[str, Any], ChunkSolver | None]]:
    """The classical baselines of ``task`` (one of :data:`TASK_SETTINGS`), in table order."""
    if task not in TASK_SETTINGS:
        raise VidplugError(f"no baselines for task {task!r}; known: {', '.join(TASK_SETTINGS)}")
    pinv = {"method": "bicubic"}
    if task == "sr4":
        return {"bicubic": (pinv, None), "least squares": ({}, least_squares_solver(30, 0.01))}
    if task == "inpaint":
        return {"neighbour fill": (pinv, None), "OpenCV Telea": ({}, telea_solver())}
    return {"observation": (pinv, None), "regularised least squares": ({}, least_squares_solver(30, 0.01))}
