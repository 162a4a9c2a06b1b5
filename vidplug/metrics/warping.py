"""Warping error: temporal consistency of a restored video (Lai et al., ECCV 2018, "Learning Blind Video Temporal
Consistency", their ``evaluate_WarpError.py``).

For each pair (t, t+1): warp the *restored* frame t+1 back to t with the flow computed on the *reference* video,
keep the pixels that Lai et al.'s mask marks valid (not occluded, not on a motion boundary), and take the mean
squared difference to the restored frame t over valid pixels and channels. The video's value is the mean over pairs.

Unit: raw MSE on [0, 1] intensities. Papers print it scaled (Lai et al. x1e-3; the DAVIS ablation vidplug reproduces
x1e-2); vidplug stores the raw number and its tables print x1e-2, as ``WARPING_ERROR_UNIT`` says.

Where we follow Lai et al. exactly: flow and mask come from the reference (their "input" video), forward flow t->t+1
with the forward-backward check and motion boundaries of ``occlusion_mask``, normalisation by (valid pixels x
channels), and a pair with no valid pixel counts as 0 (their ``N == 0`` branch) while still counting as a pair.
Where we differ, by default: pixels whose flow leaves the frame are masked too (``mask_out_of_frame``); Lai et al.'s
resampler clamps them to the border and scores the clamped colour, which charges a perfectly consistent video for
content that simply moved out of view (a pure translation would not score ~0). ``mask_out_of_frame=False`` gives
their number exactly; the difference is confined to a border as wide as the motion. Frames are float in [0, 1],
not re-read from 8-bit JPEGs, so values differ from theirs by quantisation noise.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from vidplug.consistency.flow import FlowModel, load_flow_model
from vidplug.consistency.warp import flow_warp, inside_mask, occlusion_mask
from vidplug.errors import VidplugError

log = logging.getLogger(__name__)

WARPING_ERROR_UNIT = "MSE on [0,1] intensities over valid pixels (raw; tables print x1e-2)"


def warping_error(
    restored: Tensor,
    reference: Tensor,
    flow_model: FlowModel | None = None,
    flows: tuple[Tensor, Tensor] | None = None,
    mask_out_of_frame: bool = True,
) -> tuple[float, list[float]]:
    """Lai et al.'s warping error of ``restored``, with flow and occlusions measured on ``reference``.

    Args:
        restored (Tensor): (t, c, h, w) restored video in [0, 1] (clamped), t >= 2.
        reference (Tensor): (t, c, h, w) ground-truth video in [0, 1], where the flow is measured.
        flow_model: used when ``flows`` is None; None = ``load_flow_model("auto")`` on the reference's device.
        flows: precomputed ``(fw, bw)`` of the reference, each (t-1, 2, h, w), as from
            ``FlowModel.flow_pair(reference)``; pass them to score several restorations against one reference.
        mask_out_of_frame: also drop pixels whose flow target lies outside the frame (see module docstring).

    Returns:
        tuple[float, list[float]]: (mean over the t-1 pairs, per-pair error), raw MSE on [0, 1].
    """
    if restored.shape != reference.shape or restored.ndim != 4:
        raise VidplugError(
            f"restored video {tuple(restored.shape)} and reference {tuple(reference.shape)} must both be (T, C, H, W) "
            "of the same shape; resize or crop one to match the other"
        )
    t, c, h, w = restored.shape
    if t < 2:
        raise VidplugError(f"warping error needs at least 2 frames, got {t}")
    if flows is None:
        model = flow_model if flow_model is not None else default_flow_model(reference.device)
        flows = model.flow_pair(reference)
    fw, bw = (f.to(device=restored.device, dtype=torch.float32) for f in flows)
    if fw.shape != (t - 1, 2, h, w) or bw.shape != fw.shape:
        raise VidplugError(
            f"precomputed flows must be (T-1, 2, H, W) = {(t - 1, 2, h, w)}, got {tuple(fw.shape)} and "
            f"{tuple(bw.shape)}; compute them with FlowModel.flow_pair(reference)"
        )
    with torch.no_grad():
        x = restored.detach().float().clamp(0, 1)
        valid = occlusion_mask(fw, bw)  # (t-1, 1, h, w), 1 = visible in both frames
        if mask_out_of_frame:
            valid = valid * inside_mask(fw)
        warped = flow_warp(x[1:], fw)  # restored t+1 aligned to t
        sq = (warped - x[:-1]).pow(2) * valid  # (t-1, c, h, w)
        n_valid = valid.flatten(1).sum(1) * c  # (t-1,) valid pixels x channels
        # Lai et al.: a pair without any valid pixel scores 0 but still counts in the mean
        per_pair_t = torch.where(n_valid > 0, sq.flatten(1).sum(1) / n_valid.clamp_min(1), torch.zeros_like(n_valid))
    empty = (n_valid == 0).nonzero().flatten().tolist()
    if empty:
        log.warning("warping error: pair(s) %s have no valid pixel (flow unreliable); scored 0 as Lai et al.", empty)
    per_pair = [float(v) for v in per_pair_t.cpu().tolist()]
    return sum(per_pair) / len(per_pair), per_pair


_DEFAULT_FLOW: dict[str, FlowModel] = {}


def default_flow_model(device: str | torch.device = "cpu") -> FlowModel:
    """``load_flow_model("auto", device)``, built once per device (so a fallback warning is logged once)."""
    key = str(torch.device(device))
    if key not in _DEFAULT_FLOW:
        _DEFAULT_FLOW[key] = load_flow_model("auto", device)
    return _DEFAULT_FLOW[key]
