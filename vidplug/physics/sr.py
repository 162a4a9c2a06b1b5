"""Super-resolution: MATLAB-``imresize`` bicubic downsampling with antialiasing, as in DMPlug/DPS.

DMPlug's ``super_resolution`` operator is DPS's ``Resizer``, a port of MATLAB's ``imresize(x, 1/f, 'bicubic')``
(cubic kernel a = -0.5 stretched by f for antialiasing, symmetric boundary). deepinv implements the same resampling
as :class:`deepinv.physics.DownsamplingMatlab` (``dF.imresize_matlab``) but gives its adjoint by autograd through
an 18-tap unfold, which costs a forward pass and ~18x the input in memory per call.

That resize is separable and linear, so here it is applied as two small matrices built once from deepinv's own 1-D
resampler: ``y = R_h x R_w^T`` with ``R_h (H/f, H)`` and ``R_w (W/f, W)``. The result equals ``DownsamplingMatlab``
(tested), the adjoint ``R_h^T y R_w`` is exact, and the solver's backward pass is two matmuls.
"""

from __future__ import annotations

import torch
from deepinv.physics.functional import imresize_matlab
from deepinv.physics.functional.imresize import resize_1d
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import Geometry, VideoOperator


def imresize_matrix(size: int, factor: int) -> Tensor:
    """The ``(size // factor, size)`` float64 matrix of MATLAB bicubic antialiased downsampling along one axis."""
    eye = torch.eye(size, dtype=torch.float64)[None, None]  # (1, 1, size, size): column j = unit impulse at j
    out = resize_1d(
        eye,
        dim=-2,
        size=size // factor,
        scale=1.0 / factor,
        kernel="cubic",
        padding_type="reflect",
        antialiasing=True,
    )  # (1, 1, size // factor, size)
    return out[0, 0]


class SuperResolution(VideoOperator):
    """Per-frame bicubic (MATLAB ``imresize``) downsampling by an integer ``factor``.

    ``A``: ``(T, C, H, W) -> (T, C, H / factor, W / factor)``. H and W must be multiples of ``factor`` (the
    operator refuses other sizes rather than cropping silently). ``A_dagger`` is bicubic (MATLAB) upsampling.

    Buffers: ``resize_h (H/f, H)``, ``resize_w (W/f, W)``.
    """

    linear = True

    def __init__(
        self,
        num_frames: int,
        frame_size: tuple[int, int],
        factor: int = 4,
        *,
        task: str | None = None,
        **common,
    ) -> None:
        super().__init__(task or f"sr{factor}", num_frames, frame_size, **common)
        if int(factor) != factor or factor < 2:
            raise VidplugError(f"super-resolution factor must be an integer >= 2, got {factor}")
        self.factor = int(factor)
        h, w = self.frame_size
        if h % self.factor or w % self.factor:
            raise VidplugError(
                f"frame size {h}x{w} is not divisible by the super-resolution factor {self.factor}; "
                f"crop or resize the video to multiples of {self.factor} first"
            )
        self.register_buffer("resize_h", imresize_matrix(h, self.factor).float())
        self.register_buffer("resize_w", imresize_matrix(w, self.factor).float())

    @classmethod
    def geometry(cls, *, factor: int = 4, **_) -> Geometry:
        return Geometry(scale=int(factor))

    def output_shape(self, x_shape=None) -> tuple[int, int, int, int]:
        t, c, h, w = super().output_shape(x_shape)
        return (t, c, h // self.factor, w // self.factor)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(x.shape), "x")
        rh, rw = self.resize_h.to(x), self.resize_w.to(x)
        return torch.einsum("ph,tchw,qw->tcpq", rh, x, rw)  # (T, C, H/f, W/f)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(y.shape), "y", self.output_shape())
        rh, rw = self.resize_h.to(y), self.resize_w.to(y)
        return torch.einsum("ph,tcpq,qw->tchw", rh, y, rw)  # (T, C, H, W)

    def _dagger(self, y: Tensor) -> Tensor:
        # MATLAB bicubic upsampling (the usual SR baseline); exact size since H, W are multiples of the factor
        return imresize_matlab(y.clone(), sizes=self.frame_size, kernel="cubic", padding_type="reflect")

    def extra_repr(self) -> str:
        return f"factor={self.factor}, " + super().extra_repr()
