"""Inpainting: a per-frame random pixel mask (the same on all channels), or a given mask for real observations.

``y = m * x`` keeps x's shape with missing pixels at 0, as deepinv's ``Inpainting`` does, so observations can be
saved and viewed as ordinary frames. The mask of frame i (absolute index) is drawn from its own generator seeded by
``(seed, i)``: exactly ``round(ratio * H * W)`` pixels missing, chosen by a random permutation (DPS's random mask),
so it depends only on ``(seed, i, H, W, ratio)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import VideoOperator
from vidplug.physics.seeding import frame_generator


def random_pixel_masks(
    frame_indices: Iterable[int], frame_size: tuple[int, int], ratio: float = 0.5, seed: int = 0
) -> Tensor:
    """Random pixel masks, 1 = observed, 0 = missing: ``(T, 1, H, W)`` float32.

    Frame ``frame_indices[t]``'s mask has exactly ``round(ratio * H * W)`` missing pixels and depends only on
    ``(seed, index, H, W, ratio)``.
    """
    if not 0.0 <= ratio < 1.0:
        raise VidplugError(f"inpainting missing ratio must be in [0, 1), got {ratio}")
    h, w = frame_size
    n_missing = round(ratio * h * w)
    masks = []
    for i in frame_indices:
        perm = torch.randperm(h * w, generator=frame_generator(seed, "inpaint", i))
        mask = torch.ones(h * w)
        mask[perm[:n_missing]] = 0.0
        masks.append(mask.view(1, h, w))
    return torch.stack(masks)


def fill_missing(y: Tensor, mask: Tensor, max_rings: int | None = None) -> Tensor:
    """Fill the missing pixels of ``y`` with the mean of the observed pixels in the nearest 3x3 ring that has any.

    Repeated 3x3 normalised averaging: each pass fills the missing pixels bordering filled ones, so a pixel gets the
    average of its nearest observed neighbours (one pass for sparse random masks, more for holes). Frames with no
    observed pixel at all are filled with 0.5.

    Args:
        y (Tensor): (T, C, H, W) observation; values at missing pixels are ignored.
        mask (Tensor): (T, 1, H, W), 1 = observed.
        max_rings: maximum number of passes (default H + W, enough to fill any hole).

    Returns:
        Tensor: (T, C, H, W).
    """
    known = mask.to(y.dtype)  # (T, 1, H, W)
    filled = y * known
    max_rings = max_rings if max_rings is not None else y.shape[-2] + y.shape[-1]
    for _ in range(max_rings):
        if bool(known.min() > 0):
            break
        # 3x3 sums of known values and of the known count; avg_pool's 1/9 cancels in the ratio
        num = F.avg_pool2d(filled, 3, stride=1, padding=1)  # (T, C, H, W)
        den = F.avg_pool2d(known, 3, stride=1, padding=1)  # (T, 1, H, W)
        new = (known == 0) & (den > 0)
        if not bool(new.any()):
            break  # only frames with nothing observed are left
        filled = torch.where(new, num / den.clamp_min(1e-12), filled)
        known = torch.where(new, torch.ones_like(known), known)
    return torch.where(known > 0, filled, torch.full_like(filled, 0.5))


class Inpainting(VideoOperator):
    """Pixel-mask inpainting ``y = m * x`` with one mask per frame shared by all channels.

    Args:
        ratio: fraction of missing pixels per frame for the random mask (default 0.5).
        mask: a given ``(T, 1, H, W)`` mask (1 = observed, 0 = missing; bool or float) for real observations. It
            covers exactly this operator's frames (slice it for a chunk); ``ratio`` and ``seed`` are then unused.

    Buffer: ``mask (T, 1, H, W)``. ``A_dagger`` is :func:`fill_missing`.
    """

    linear = True

    def __init__(
        self,
        num_frames: int,
        frame_size: tuple[int, int],
        ratio: float = 0.5,
        mask: Tensor | None = None,
        **common,
    ) -> None:
        super().__init__("inpaint", num_frames, frame_size, **common)
        if mask is None:
            mask = random_pixel_masks(self.frame_indices, self.frame_size, ratio, self.seed)
            self.ratio = float(ratio)
        else:
            expected = (self.num_frames, 1, *self.frame_size)
            if tuple(mask.shape) != expected:
                raise VidplugError(
                    f"inpainting mask has shape {tuple(mask.shape)} but the video needs {expected} (T, 1, H, W); "
                    "give one single-channel mask per frame at the frame size"
                )
            mask = mask.detach().float()
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise VidplugError(
                    "inpainting mask must contain only 0 (missing) and 1 (observed); threshold it first"
                )
            self.ratio = float(1.0 - mask.mean())
        self.register_buffer("mask", mask.float())

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(x.shape), "x")
        return x * self.mask.to(x)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(y.shape), "y")
        return y * self.mask.to(y)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        # noise only where something is observed: missing pixels stay exactly 0 in the saved observation
        return self.noise(self.A(x), generator) * self.mask.to(x)

    def _dagger(self, y: Tensor) -> Tensor:
        return fill_missing(y, self.mask.to(y))

    def with_mask(self, mask: Tensor) -> Inpainting:
        """The same operator (frames, size, channels, seed, noise) observing ``mask (T, 1, H, W)`` instead: e.g. its
        own mask less some held-out pixels (:func:`vidplug.methods.classical.cross_validated_fusion_weight`)."""
        return Inpainting(self.num_frames, self.frame_size, mask=mask, channels=self.channels, seed=self.seed,
                          frame_offset=self.frame_offset, noise_model=self.noise_model)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio:.3f}, " + super().extra_repr()
