"""Backward warping and forward-backward occlusion masks, shared by the pixel loss and the warping-error metric."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def flow_warp(x: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """Backward-warp ``x`` with ``flow``: ``out(p) = x(p + flow(p))`` (bilinear).

    Args:
        x (Tensor): (n, c, h, w) images.
        flow (Tensor): (n, 2, h, w) displacement in pixels, channel 0 = x (width), channel 1 = y (height).
            With ``flow`` = flow from frame a to frame b, ``flow_warp(frame_b, flow)`` is frame b aligned to frame a.
        padding_mode: ``grid_sample`` padding for samples that leave the frame.

    Returns:
        Tensor: (n, c, h, w).
    """
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=flow.dtype),
        torch.arange(w, device=x.device, dtype=flow.dtype),
        indexing="ij",
    )
    gx = xs.unsqueeze(0) + flow[:, 0]  # (n, h, w) sample positions in pixels
    gy = ys.unsqueeze(0) + flow[:, 1]
    # normalise to [-1, 1] with align_corners=True: pixel 0 -> -1, pixel w-1 -> +1
    gx = 2.0 * gx / max(w - 1, 1) - 1.0
    gy = 2.0 * gy / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1).to(x.dtype)  # (n, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def occlusion_mask(flow_fw: Tensor, flow_bw: Tensor, motion_boundaries: bool = True) -> Tensor:
    """Valid-pixel mask of Lai et al. (ECCV 2018, after Ruder et al. 2016) for the pair (a, b).

    A pixel of frame a is invalid (0) when the forward-backward check fails,
    ``|w_fw + w_bw'|^2 > 0.01 (|w_fw|^2 + |w_bw'|^2) + 0.5``, or it lies on a motion boundary,
    ``|grad u|^2 + |grad v|^2 > 0.01 |w_fw|^2 + 0.002`` with ``(u, v) = w_fw``, where ``w_bw'`` is the backward
    flow warped to frame a. This is Lai et al.'s ``detect_occlusion(bw, fw)``, the mask their warping error uses
    for the pixels of the first frame of each pair.

    Args:
        flow_fw (Tensor): (n, 2, h, w) flow from a to b.
        flow_bw (Tensor): (n, 2, h, w) flow from b to a.
        motion_boundaries: also drop the motion boundaries (Lai's mask). False keeps the forward-backward check
            alone: on flows estimated from restorations the boundary test also fires on the flow's own noise
            (``consistency.motion_boundaries``; the metric always uses Lai's mask).

    Returns:
        Tensor: (n, 1, h, w) float mask, 1 = valid (visible in both frames), 0 = occluded or motion boundary.
    """
    bw_at_a = flow_warp(flow_bw, flow_fw)  # backward flow sampled where each pixel of a lands in b
    sum_sq = (flow_fw + bw_at_a).pow(2).sum(1)  # (n, h, w)
    mag_sq = flow_fw.pow(2).sum(1) + bw_at_a.pow(2).sum(1)
    occluded = sum_sq > 0.01 * mag_sq + 0.5
    if not motion_boundaries:
        return (~occluded).unsqueeze(1).to(flow_fw.dtype)
    # motion boundaries: spatial gradient of the flow at a, forward differences, zero at the far edge
    d_dx = F.pad(flow_fw[:, :, :, 1:] - flow_fw[:, :, :, :-1], (0, 1, 0, 0))
    d_dy = F.pad(flow_fw[:, :, 1:, :] - flow_fw[:, :, :-1, :], (0, 0, 0, 1))
    grad_sq = d_dx.pow(2).sum(1) + d_dy.pow(2).sum(1)
    boundary = grad_sq > 0.01 * flow_fw.pow(2).sum(1) + 0.002
    return (~(occluded | boundary)).unsqueeze(1).to(flow_fw.dtype)


def drop_sparse_pairs(mask: Tensor, min_coverage: float) -> Tensor:
    """``mask (n, 1, h, w)`` of n frame pairs, with every pair whose valid pixels cover less than ``min_coverage`` of
    the frame set to 0: so few correspondences mean a scene cut (or flows that failed outright), and the few pixels
    that pass the checks there are chance matches between unrelated content. ``min_coverage`` 0 keeps every pair."""
    if min_coverage <= 0:
        return mask
    return mask * (mask.mean(dim=(1, 2, 3), keepdim=True) >= min_coverage).to(mask.dtype)


def uncoupled_pairs(mask: Tensor) -> list[int]:
    """The pairs ``t`` of ``mask (n, 1, h, w)`` with no valid pixel: a scene cut (:func:`drop_sparse_pairs`), or no
    correspondence at all."""
    return [t for t in range(mask.shape[0]) if not bool(mask[t].any())]


def inside_mask(flow: Tensor, margin: float = 1e-3) -> Tensor:
    """1 where ``p + flow(p)`` lands inside the frame, 0 where the pixel moves out of view.

    Such pixels have no correspondence in the other frame (``flow_warp`` would read its border), so they count as
    occluded. Args: flow (Tensor): (n, 2, h, w) in pixels. Returns: (n, 1, h, w) float mask.
    """
    _, _, h, w = flow.shape
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]  # (n, h, w) target positions
    ok = (tx >= -margin) & (tx <= w - 1 + margin) & (ty >= -margin) & (ty <= h - 1 + margin)
    return ok.unsqueeze(1).to(flow.dtype)


def correspondence_mask(flow_fw: Tensor, flow_bw: Tensor, min_coverage: float = 0.0,
                        motion_boundaries: bool = True) -> Tensor:
    """(n, 1, h, w): 1 where a pixel of frame a has a correspondence in frame b, i.e. :func:`occlusion_mask` (not
    occluded, and not on a motion boundary unless ``motion_boundaries`` is False) times :func:`inside_mask` (does not
    move out of view); pairs whose correspondences cover less than ``min_coverage`` of the frame are 0 throughout
    (:func:`drop_sparse_pairs`)."""
    valid = occlusion_mask(flow_fw, flow_bw, motion_boundaries) * inside_mask(flow_fw)
    return drop_sparse_pairs(valid, min_coverage)
