"""All metrics of one restored video against its ground truth, as one JSON-ready dict (what ``vidplug metrics``,
the evaluation pipelines and the benchmarks write)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vidplug.consistency.flow import FlowModel, load_flow_model
from vidplug.errors import VidplugError
from vidplug.metrics.fidelity import psnr, ssim
from vidplug.metrics.lpips import lpips_distance
from vidplug.metrics.warping import WARPING_ERROR_UNIT, default_flow_model, warping_error


def compute_metrics(
    restored: Tensor,
    reference: Tensor,
    *,
    flow_model: FlowModel | str | None = None,
    lpips: bool = True,
    ssim_mode: str = "rgb",
    psnr_mode: str = "rgb",
    flows: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Any]:
    """PSNR, SSIM, LPIPS and warping error of ``restored`` against ``reference``.

    Args:
        restored (Tensor): (t, c, h, w) restored video in [0, 1] (values outside are clamped).
        reference (Tensor): (t, c, h, w) ground truth in [0, 1].
        flow_model: flow for the warping error, measured on ``reference``: a :class:`FlowModel`, a name for
            :func:`load_flow_model`, or None (``"auto"``: RAFT when available, else OpenCV DIS).
        lpips: compute LPIPS (AlexNet); when its weights are missing offline the value is None with a note.
        ssim_mode: ``"rgb"`` (scikit-image defaults, as DMPlug) or ``"y"`` (BT.601 luma, Gaussian window).
        psnr_mode: ``"rgb"`` or ``"y"``.
        flows: precomputed reference flows ``(fw, bw)``, each (t-1, 2, h, w); skips flow estimation.

    Returns:
        dict with ``psnr`` (dB), ``ssim``, ``lpips`` (None if unavailable), ``lpips_note`` (why, or None),
        ``warping_error`` (None for a single frame), ``warping_error_unit``, ``flow_model`` (name, None for a single
        frame, ``"precomputed"`` for unnamed ``flows``), ``frames``, ``psnr_mode``, ``ssim_mode`` and ``per_frame``:
        lists ``psnr``, ``ssim``, ``lpips`` (None if unavailable) with t entries and ``warping_error`` with t-1.
    """
    if restored.ndim != 4 or restored.shape != reference.shape:
        raise VidplugError(
            f"restored video {tuple(restored.shape)} and reference {tuple(reference.shape)} must both be (T, C, H, W) "
            "of the same shape; resize or crop one to match the other"
        )
    psnr_mean, psnr_frames = psnr(restored, reference, mode=psnr_mode)
    ssim_mean, ssim_frames = ssim(restored, reference, mode=ssim_mode)
    if lpips:
        lpips_mean, lpips_frames, lpips_note = lpips_distance(restored, reference)
    else:
        lpips_mean, lpips_frames, lpips_note = None, None, "LPIPS not requested"
    we_mean, we_pairs, flow_name = _warping(restored, reference, flow_model, flows)
    return {
        "psnr": psnr_mean,
        "ssim": ssim_mean,
        "lpips": lpips_mean,
        "lpips_note": lpips_note,
        "warping_error": we_mean,
        "warping_error_unit": WARPING_ERROR_UNIT,
        "flow_model": flow_name,
        "frames": int(restored.shape[0]),
        "psnr_mode": psnr_mode,
        "ssim_mode": ssim_mode,
        "per_frame": {
            "psnr": psnr_frames,
            "ssim": ssim_frames,
            "lpips": lpips_frames,
            "warping_error": we_pairs,
        },
    }


def _warping(restored: Tensor, reference: Tensor, flow_model: FlowModel | str | None,
             flows: tuple[Tensor, Tensor] | None) -> tuple[float | None, list[float], str | None]:
    """Warping error of ``restored`` (t, c, h, w) with flows measured on ``reference`` (or the given ``flows``):
    ``(mean, per-pair list of t-1, flow model name)``; ``(None, [], None)`` for a single frame."""
    if restored.shape[0] < 2:
        return None, [], None
    if flows is not None:
        flow_name = flow_model.name if isinstance(flow_model, FlowModel) else (flow_model or "precomputed")
    else:
        if isinstance(flow_model, str):
            flow_model = load_flow_model(flow_model, reference.device)
        elif flow_model is None:
            flow_model = default_flow_model(reference.device)
        flow_name = flow_model.name
    we_mean, we_pairs = warping_error(restored, reference, flow_model=flow_model, flows=flows)
    return we_mean, we_pairs, flow_name
