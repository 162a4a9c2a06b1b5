"""Per-frame fidelity to the ground truth: PSNR and SSIM.

Conventions (both computed on frames clamped to [0, 1], data range 1):

* ``mode="rgb"`` (default): PSNR over all RGB values; SSIM = scikit-image's
  ``structural_similarity(channel_axis=-1, data_range=1)`` (7x7 uniform window, sample covariance, mean over
  channels), which is what DMPlug reports.
* ``mode="y"``: the luma Y of ITU-R BT.601 as BasicSR computes it (``Y = (16 + 65.481 R + 128.553 G + 24.966 B) /
  255``, studio range); SSIM with Wang et al.'s 11x11 Gaussian window (sigma 1.5, population covariance), equal to
  BasicSR's ``calculate_ssim(test_y_channel=True)`` without border cropping.

Identical frames have infinite PSNR (``float("inf")``), as scikit-image reports it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vidplug.errors import VidplugError

MODES = ("rgb", "y")

# ITU-R BT.601 studio-swing luma for [0, 1] RGB (BasicSR's rgb2ycbcr(y_only=True)), result in [16/255, 235/255]
_BT601_Y = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_BT601_OFFSET = 16.0 / 255.0


def rgb_to_y(frames: Tensor) -> Tensor:
    """ITU-R BT.601 luma: (t, 3, h, w) RGB in [0, 1] -> (t, 1, h, w) Y in [16/255, 235/255]."""
    weights = torch.tensor(_BT601_Y, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True) + _BT601_OFFSET


def _prepare(restored: Tensor, reference: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Check shapes and mode, clamp to [0, 1], convert to Y if asked; float64 so tiny errors are not rounded away."""
    if restored.shape != reference.shape or restored.ndim != 4:
        raise VidplugError(
            f"restored video {tuple(restored.shape)} and reference {tuple(reference.shape)} must both be (T, C, H, W) "
            "of the same shape; resize or crop one to match the other"
        )
    if mode not in MODES:
        raise VidplugError(f"unknown metric mode '{mode}'; choose one of: {', '.join(MODES)}")
    x = restored.detach().to(torch.float64).clamp(0, 1)
    y = reference.detach().to(torch.float64).clamp(0, 1)
    if mode == "y":
        if x.shape[1] != 3:
            raise VidplugError(f"the Y-channel mode needs RGB frames, got {x.shape[1]} channel(s); use mode='rgb'")
        x, y = rgb_to_y(x), rgb_to_y(y)
    return x, y


def psnr(restored: Tensor, reference: Tensor, mode: str = "rgb") -> tuple[float, list[float]]:
    """Peak signal-to-noise ratio in dB, data range 1.

    Args:
        restored (Tensor): (t, c, h, w) in [0, 1] (clamped).
        reference (Tensor): (t, c, h, w) ground truth in [0, 1].
        mode: ``"rgb"`` (all channels) or ``"y"`` (BT.601 luma, as BasicSR's ``test_y_channel``).

    Returns:
        tuple[float, list[float]]: (mean over frames, per-frame PSNR); ``inf`` for identical frames.
    """
    x, y = _prepare(restored, reference, mode)
    mse = (x - y).pow(2).flatten(1).mean(1)  # (t,)
    per_frame = [float("inf") if m == 0 else float(-10.0 * np.log10(m)) for m in mse.cpu().tolist()]
    return float(np.mean(per_frame)), per_frame


def ssim(restored: Tensor, reference: Tensor, mode: str = "rgb") -> tuple[float, list[float]]:
    """Structural similarity via scikit-image, per frame.

    Args:
        restored (Tensor): (t, c, h, w) in [0, 1] (clamped); frames at least 7x7 (11x11 for ``mode="y"``).
        reference (Tensor): (t, c, h, w) ground truth in [0, 1].
        mode: ``"rgb"`` (scikit-image defaults, channel_axis=-1) or ``"y"`` (BT.601 luma, Gaussian sigma 1.5).

    Returns:
        tuple[float, list[float]]: (mean over frames, per-frame SSIM in [-1, 1]).
    """
    from skimage.metrics import structural_similarity

    x, y = _prepare(restored, reference, mode)
    min_side = 11 if mode == "y" else 7
    if min(x.shape[-2:]) < min_side:
        raise VidplugError(
            f"SSIM ({mode}) needs frames of at least {min_side}x{min_side}, got {x.shape[-2]}x{x.shape[-1]}"
        )
    xs = x.permute(0, 2, 3, 1).cpu().numpy()  # (t, h, w, c)
    ys = y.permute(0, 2, 3, 1).cpu().numpy()
    per_frame = []
    for a, b in zip(xs, ys, strict=True):
        if mode == "y":
            value = structural_similarity(
                a[..., 0], b[..., 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
        else:
            value = structural_similarity(a, b, channel_axis=-1, data_range=1.0)
        per_frame.append(float(value))
    return float(np.mean(per_frame)), per_frame
