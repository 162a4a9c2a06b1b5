"""The video degradation interface shared by every operator in :mod:`vidplug.physics`.

A :class:`VideoOperator` maps a clean video ``x (T, C, H, W)`` in [0, 1] to an observation ``y``:

- ``A(x)``: the noiseless degradation (differentiable in ``x``; the solver back-propagates through it);
- ``forward(x, generator)``: ``noise_model(A(x))``, a simulated observation (the noise model is a separate object,
  :mod:`vidplug.physics.noise`, as in deepinv's ``Physics(A, noise_model)``; None = noiseless);
- ``A_adjoint(y)``: the exact adjoint of ``A`` (linear operators only);
- ``A_dagger(y)``: a cheap initial estimate in x-space, shape ``(T, C, H, W)``, clamped to [0, 1].

Operators are built for one chunk of a video: ``num_frames`` frames whose first frame has absolute index
``frame_offset``. Everything random (masks, kernels, noise) is drawn per frame from
:func:`vidplug.physics.seeding.frame_seed` ``(seed, stream, absolute index)``, so a chunk rebuilds exactly its own
slice of the whole video's operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidplug.errors import VidplugError
from vidplug.physics.noise import NoiseModel


@dataclass(frozen=True)
class Geometry:
    """What an operator does to the video's layout, known from its options alone (before any frame is read)."""

    context: int = 0  # frames on each side one observed frame depends on (k // 2 for a temporal PSF)
    scale: int = 1  # clean frame side / observed frame side (the super-resolution factor)


class VideoOperator(nn.Module):
    """Base class of the video degradations (see the module docstring for the contract).

    Args:
        task: task name as given to :func:`vidplug.physics.build_operator` (e.g. ``"sr4"``).
        num_frames: T, number of frames this operator takes.
        frame_size: (H, W) of the clean frames.
        channels: C of the clean frames.
        seed: seed of every random draw of this operator (masks, kernels).
        noise_model: the measurement noise added by :meth:`forward` (None = noiseless), e.g.
            :class:`~vidplug.physics.noise.GaussianNoise`; :func:`~vidplug.physics.build_operator` attaches one.
        frame_offset: absolute index of the first frame (for chunks of a longer video).
    """

    linear: bool = True

    def __init__(
        self,
        task: str,
        num_frames: int,
        frame_size: tuple[int, int],
        channels: int = 3,
        seed: int = 0,
        frame_offset: int = 0,
        noise_model: NoiseModel | None = None,
    ) -> None:
        super().__init__()
        if num_frames < 1:
            raise VidplugError(f"num_frames must be >= 1, got {num_frames}")
        if frame_offset < 0:
            raise VidplugError(f"frame_offset must be >= 0, got {frame_offset}")
        self.task = task
        self.num_frames = int(num_frames)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.channels = int(channels)
        self.seed = int(seed)
        self.frame_offset = int(frame_offset)
        self.noise_model = noise_model

    # -- the contract ------------------------------------------------------------------------------------------------

    @classmethod
    def geometry(cls, **options) -> Geometry:
        """The :class:`Geometry` of this operator family for task ``options`` (unknown options ignored); the
        instance properties :attr:`context` and :attr:`scale` answer the same from a built operator."""
        return Geometry()

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(T, C, H, W)`` of the clean video this operator takes."""
        return (self.num_frames, self.channels, *self.frame_size)

    @property
    def noise_sigma(self) -> float:
        """Gaussian noise sigma on the [-1, 1] scale of the noise model (0 when noiseless or not Gaussian)."""
        return float(getattr(self.noise_model, "sigma", 0.0))

    @property
    def context(self) -> int:
        """Frames on each side that one observed frame depends on (0 = frames are independent; k // 2 for the
        temporal PSF). A chunk's operator equals the whole video's only for frames this far from the chunk's ends."""
        return 0

    @property
    def scale(self) -> int:
        """Clean frame side / observed frame side (the super-resolution factor; 1 for other operators)."""
        h, w = self.frame_size
        return h // self.output_shape()[-2]

    @property
    def frame_indices(self) -> range:
        """Absolute indices of the frames this operator covers."""
        return range(self.frame_offset, self.frame_offset + self.num_frames)

    def output_shape(self, x_shape: tuple[int, ...] | torch.Size | None = None) -> tuple[int, int, int, int]:
        """Shape of ``A(x)`` for ``x`` of shape ``x_shape`` (default: :attr:`input_shape`)."""
        x_shape = self.input_shape if x_shape is None else tuple(x_shape)
        self._check_shape(x_shape, "x")
        return tuple(x_shape)  # type: ignore[return-value]

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (A is the operator's name in the literature)
        """Noiseless degradation: ``x (T, C, H, W)`` in [0, 1] -> ``y`` of shape :meth:`output_shape`."""
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Exact adjoint of :meth:`A`: ``y`` -> ``(T, C, H, W)``."""
        raise NotImplementedError(f"the {self.task} operator is not linear; it has no adjoint")

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        """Cheap initial estimate of ``x`` from ``y``: ``(T, C, H, W)``, clamped to [0, 1]."""
        self._check_shape(tuple(y.shape), "y", self.output_shape())
        return self._dagger(y).clamp(0.0, 1.0)

    def _dagger(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def noise(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``y`` through the noise model (unchanged when there is none). Without a generator each frame's noise is
        drawn from (seed, absolute index), so a chunk's noise equals the slice of the whole video's noise."""
        return y if self.noise_model is None else self.noise_model(y, self.frame_indices, generator)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulated observation ``noise(A(x))``."""
        return self.noise(self.A(x), generator)

    # -- helpers -----------------------------------------------------------------------------------------------------

    def _check_shape(
        self, shape: tuple[int, ...], name: str, expected: tuple[int, ...] | None = None
    ) -> None:
        expected = self.input_shape if expected is None else tuple(expected)
        if tuple(shape) != expected:
            raise VidplugError(
                f"the {self.task} operator was built for {name} of shape {expected} (T, C, H, W) but got "
                f"{tuple(shape)}; build the operator for this video's frame count and size"
            )

    def least_squares(self, y: Tensor, x0: Tensor, steps: int, damping: float = 0.05,
                      regulariser: Callable[[Tensor], Tensor] | None = None, start: Tensor | None = None) -> Tensor:
        """``steps`` conjugate-gradient steps on ``(A^T A + R + damping I) x = A^T y + damping x0``.

        Minimises ``|A x - y|^2 + x^T R x + damping |x - x0|^2``: the damping keeps the noise that an ill-posed ``A``
        (temporal box filter, motion blur) amplifies in check. Used by :meth:`A_dagger` of temporal/deblur when asked
        for.

        Args:
            regulariser: ``v -> R v`` for a symmetric positive semi-definite ``R`` coupling the frames (e.g.
                :class:`vidplug.consistency.fusion.FlowCoupling`'s normal operator); None = no such term.
            start: where the iterations start (default ``x0``).
        """
        if steps <= 0:
            return x0 if start is None else start

        def normal(v: Tensor) -> Tensor:
            out = self.A_adjoint(self.A(v)) + damping * v
            return out if regulariser is None else out + regulariser(v)

        x = (x0 if start is None else start).clone()
        r = self.A_adjoint(y) + damping * x0 - normal(x)  # residual of the normal equations
        p = r.clone()
        rs = (r * r).sum()
        for _ in range(steps):
            if rs <= 1e-20:  # already solved; avoid 0/0
                break
            q = normal(p)
            alpha = rs / (p * q).sum()
            x = x + alpha * p
            r = r - alpha * q
            rs_new = (r * r).sum()
            p = r + (rs_new / rs) * p
            rs = rs_new
        return x

    def extra_repr(self) -> str:
        return (
            f"task={self.task!r}, input_shape={self.input_shape}, noise={self.noise_model!r}, seed={self.seed}, "
            f"frame_offset={self.frame_offset}"
        )
