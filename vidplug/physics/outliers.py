"""Impulse (salt-and-pepper) outliers of an observation, found and then treated as missing values.

vidplug's least-squares stages (the start, the fusion, the final projection) and DMPlug's data term are L2 fits, and a
few values written to 0 or 1 dominate them: with ``impulse:high`` every one of them lost to bicubic
(benchmarks/RESULTS.md, "Impulse noise with the tiny settings"). Salt-and-pepper noise writes the ends of the range,
so a value is taken for an impulse when it is 0 or 1 *and* differs from the median of its 3x3 neighbourhood (same
channel) by more than ``threshold``, and an observation is treated as impulse-corrupted only when at least
``IMPULSE_MIN_FRACTION`` of its values are. The default Gaussian noise writes such values only at a few saturated
highlights, so those observations come back untouched; strong shot, speckle or Gaussian noise clips many values to 0
or 1, and those clipped values are left out too (benchmarks/RESULTS.md, "Impulse noise"). A flagged value leaves the data term (:class:`MaskedOperator`) and is replaced in the observation by its
neighbours' mean (:func:`~vidplug.physics.inpaint.fill_missing`), which is what the pseudo-inverses then start from.

This is the classical detect-then-restore treatment of salt-and-pepper noise (adaptive median filters; Chan, Ho and
Nikolova 2005, "Salt-and-pepper noise removal by median-type noise detectors and detail-preserving regularization"):
written here because the libraries vidplug uses filter (scikit-image, OpenCV median blur) but do not return the
detection as a mask for a data term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.physics.base import VideoOperator
from vidplug.physics.inpaint import fill_missing

# |value - 3x3 median| on [0, 1] beyond which an extreme value is an impulse (bikes, SR x4, impulse:high, flow-coupled
# least squares: 0.25 -> 24.82 dB, 0.1 -> 28.27, 0.05 -> 28.37; 0.1 finds ~95% of the impulses)
IMPULSE_THRESHOLD = 0.1
# an observation holds impulse noise when at least this fraction of its values is flagged: impulse:low flags 5.6-5.9%
# on the three development clips, the default Gaussian noise at most 0.24% (saturated highlights), 0 on most clips
IMPULSE_MIN_FRACTION = 0.01


def median3x3(y: Tensor) -> Tensor:
    """Per-channel 3x3 median of ``y (T, C, H, W)`` with replicated borders."""
    t, c, h, w = y.shape
    patches = F.unfold(F.pad(y.reshape(t * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), 3)  # (T*C, 9, H*W)
    return patches.median(dim=1).values.reshape(t, c, h, w)


def _extreme(y: Tensor) -> Tensor:
    """Where ``y`` sits at an end of the range (0 or 1): the only values ever taken for impulses."""
    return (y <= 0.0) | (y >= 1.0)


def impulse_mask(y: Tensor, threshold: float = IMPULSE_THRESHOLD, extreme: Tensor | None = None) -> Tensor:
    """``(T, C, H, W)`` float mask of ``y``'s values to keep: 0 where a value is 0 or 1 and more than ``threshold``
    from its 3x3 median (an impulse), 1 elsewhere. ``extreme``: ``y``'s values at 0 or 1, when already known."""
    extreme = _extreme(y) if extreme is None else extreme
    keep = torch.ones_like(y)
    for t in range(y.shape[0]):  # a frame at a time: the 3x3 patches are 9 copies of one frame, not of the chunk
        if bool(extreme[t].any()):
            far = (y[t : t + 1] - median3x3(y[t : t + 1])).abs() > threshold
            keep[t] = (~(extreme[t : t + 1] & far))[0].to(y.dtype)
    return keep


def reject_impulses(y: Tensor, threshold: float = IMPULSE_THRESHOLD,
                    min_fraction: float = IMPULSE_MIN_FRACTION) -> tuple[Tensor, Tensor | None]:
    """``(y with its impulses filled from their neighbours, keep mask)``; ``(y, None)`` when fewer than
    ``min_fraction`` of the values are flagged (no impulse noise: a stray saturated highlight stays observed)."""
    extreme = _extreme(y)
    if float(extreme.float().mean()) < min_fraction:
        return y, None  # only values at 0 or 1 are ever flagged: too few of them, no median needed
    keep = impulse_mask(y, threshold, extreme)
    if 1.0 - float(keep.mean()) < min_fraction:
        return y, None
    return fill_missing(y, keep), keep


class MaskedOperator(VideoOperator):
    """``op`` with some observed values left out of the data term: ``A x = keep * op.A(x)``, ``A^T r = op.A^T(keep *
    r)``. The pseudo-inverse is ``op``'s, of an observation whose left-out values were filled beforehand.

    Args:
        op: a linear operator.
        keep (Tensor): ``op.output_shape()``-shaped (or broadcastable) mask, 1 = observed value used.
    """

    def __init__(self, op: VideoOperator, keep: Tensor) -> None:
        super().__init__(op.task, op.num_frames, op.frame_size, channels=op.channels, seed=op.seed,
                         frame_offset=op.frame_offset, noise_model=op.noise_model)
        self.linear = op.linear
        self.op = op
        self.register_buffer("keep", keep.detach().float())

    @property
    def context(self) -> int:
        return self.op.context

    def output_shape(self, x_shape=None) -> tuple[int, int, int, int]:
        return self.op.output_shape(x_shape)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self.keep.to(x) * self.op.A(x)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_adjoint(self.keep.to(y) * y)

    def _dagger(self, y: Tensor) -> Tensor:
        return self.op.A_dagger(y)
