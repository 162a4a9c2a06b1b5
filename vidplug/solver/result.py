"""What :func:`vidplug.solver.solve` returns (:class:`SolveResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from torch import Tensor

STOP_REASONS = ("es-wmv", "max-iters", "diverged")


@dataclass
class SolveResult:
    """What :func:`solve` returns. Tensors are on the solve's device; :meth:`to_dict` drops them."""

    frames: Tensor  # (T, C, H, W) restoration in [0, 1] (clamped here only)
    z: Tensor  # (T, C, H, W) effective seeds of the chosen iterate (R(z) reproduces frames before clamping)
    chosen_iteration: int  # 0-based iteration whose output is returned
    iterations_run: int  # iterations of the returned attempt
    stopped_by: str  # es-wmv | max-iters | diverged
    loss_history: dict[str, list[float]]  # "total", "data", each term's name -> one value per iteration (unweighted)
    wall_time_s: float  # all attempts, seconds
    iters_per_s: float  # iterations of all attempts / wall_time_s
    frame_iters_per_s: float  # iters_per_s * T
    lr: float  # step size of the returned attempt
    retries: int  # restarts after a non-finite loss (0 or 1)
    notes: list[str] = field(default_factory=list)  # human-readable events (divergence, fallbacks)
    oracle_psnr: list[float] | None = None  # ORACLE: per-iteration mean frame PSNR (dB) vs reference; never used
    es_variance: list[float] | None = None  # ES-WMV windowed variance per iteration (NaN until the window fills)
    es_stop_iteration: int | None = None  # iteration at which ES-WMV's rule fired (None: it never did)

    def to_dict(self) -> dict:
        """JSON-ready summary (no tensors; NaN/inf in the curves become None, which strict JSON can hold)."""
        out = {f.name: _json_safe(getattr(self, f.name)) for f in fields(self) if f.name not in ("frames", "z")}
        out["frames_shape"] = list(self.frames.shape)
        return out


def _json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value
