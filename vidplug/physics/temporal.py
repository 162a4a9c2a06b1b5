"""Temporal blur: each observed frame is the mean of the ``k`` frames centred on it (uniform temporal PSF).

At the ends the video is extended by replicating its first/last frame, so observed frame 0 with k = 7 is
``(4 x_0 + x_1 + x_2 + x_3) / 7``. The operator is the ``(T, T)`` matrix ``M`` with ``y_i = sum_j M_ij x_j``; because
of the replicated boundary ``M`` is not symmetric, and the adjoint is ``M^T`` applied the same way.

For a chunk of a longer video, the chunk's operator replicates the chunk's own end frames: it matches the whole
video's operator only for frames at least ``k // 2`` away from the chunk's ends (use overlapping chunks).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import Geometry, VideoOperator


def temporal_average_matrix(num_frames: int, k: int = 7) -> Tensor:
    """The ``(T, T)`` float64 matrix of the centred ``k``-frame mean with replicated ends."""
    if k < 1 or k % 2 == 0:
        raise VidplugError(f"temporal window k must be a positive odd number of frames, got {k}")
    radius = k // 2
    rows = torch.arange(num_frames)[:, None]  # (T, 1)
    # column hit by each tap of each row once the index is clamped to the video (replication)
    cols = (rows + torch.arange(-radius, radius + 1)[None, :]).clamp(0, num_frames - 1)  # (T, k)
    matrix = torch.zeros(num_frames, num_frames, dtype=torch.float64)
    matrix.scatter_add_(1, cols, torch.full(cols.shape, 1.0 / k, dtype=torch.float64))
    return matrix


class TemporalAverage(VideoOperator):
    """Uniform temporal PSF of ``k`` frames (odd, default 7) with replicated ends.

    ``A``: ``(T, C, H, W) -> (T, C, H, W)``. ``A_dagger`` returns ``y`` itself (the blurred frames are the closest
    cheap estimate), or with ``dagger_steps > 0`` that many damped conjugate-gradient steps on the normal equations
    started from ``y`` (see :meth:`VideoOperator.least_squares`).

    Buffer: ``matrix (T, T)``.
    """

    linear = True

    def __init__(
        self, num_frames: int, frame_size: tuple[int, int], k: int = 7, dagger_steps: int = 0, **common
    ) -> None:
        super().__init__("temporal", num_frames, frame_size, **common)
        self.k = int(k)
        self.dagger_steps = int(dagger_steps)
        self.register_buffer("matrix", temporal_average_matrix(self.num_frames, self.k).float())

    @classmethod
    def geometry(cls, *, k: int = 7, **_) -> Geometry:
        return Geometry(context=int(k) // 2)

    @property
    def context(self) -> int:
        return self.geometry(k=self.k).context

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(x.shape), "x")
        return torch.einsum("ij,jchw->ichw", self.matrix.to(x), x)  # (T, C, H, W)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(y.shape), "y")
        return torch.einsum("ji,jchw->ichw", self.matrix.to(y), y)  # M^T y

    def _dagger(self, y: Tensor) -> Tensor:
        return self.least_squares(y, y, self.dagger_steps)

    def extra_repr(self) -> str:
        return f"k={self.k}, " + super().extra_repr()
