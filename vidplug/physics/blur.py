"""Spatial motion blur: one random motion PSF per frame, convolved with reflect padding.

DMPlug/DPS blur with 61x61 kernels from the ``motionblur`` package at ``intensity=0.5`` and reflect padding. That
package is not a dependency here; the kernels come from :class:`deepinv.physics.generator.MotionBlurGenerator`
(Schuler et al.: a Matérn-3/2 Gaussian-process trajectory rasterised into the kernel). Its parameters do not map
one-to-one onto ``intensity``: ``gp_length_scale`` (deepinv's ``l``, default 0.3) sets how curved the stroke is and
``gp_sigma`` (trajectory std as a fraction of the kernel half-width, default 0.25) how long. With the defaults a
61x61 kernel's stroke spans about 15-30 pixels, comparable to DPS's intensity-0.5 kernels; raise ``gp_sigma`` for
longer blur. Kernels are normalised to sum 1 (brightness preserved).

The convolution is deepinv's (``dF.conv2d`` / ``conv_transpose2d``, or their FFT versions for large kernels) with
``'reflect'`` padding, as DPS, whose adjoint deepinv implements exactly (tested). A motion PSF fills a small part of
its 61x61 square (a stroke reaching 2-21 pixels from the centre), so the operator convolves with the kernels cropped to
the square around the centre that holds every nonzero tap: the same operator (cropped zeros add nothing, and the
reflected pixels the taps reach are the same), on a smaller padded grid. For the FFT the crop keeps a few more zero
rows or columns where that makes the padded side a product of primes up to 7, which FFTs handle fastest: on 8 frames of
128x128 (2 threads) one A or A^T took 12 ms with the 61x61 kernels (FFT side 188 = 4 x 47) and 3 ms cropped
(benchmarks/bench_operators.py; benchmarks/RESULTS.md, "Issue 18, session 18").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

import deepinv.physics.functional as dF
import torch
from deepinv.physics.generator import MotionBlurGenerator
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import VideoOperator
from vidplug.physics.seeding import frame_generator

# deepinv: direct convolution is faster for small kernels, FFT for large ones (61x61 on 256x256: ~2x on CPU); decided
# on the cropped kernel's side
_FFT_MIN_KERNEL = 16
_FFT_PRIMES = (2, 3, 5, 7)  # the FFT's padded sides are chosen as products of these
# 'circular' is left out: deepinv's direct and FFT circular convolutions centre the kernel differently
Padding = Literal["reflect", "replicate"]
PADDINGS: tuple[str, ...] = get_args(Padding)
KERNEL_SIZE = 61  # side of the motion-blur PSF (DPS/DMPlug)


def motion_blur_kernels(
    frame_indices: Iterable[int],
    kernel_size: int = KERNEL_SIZE,
    seed: int = 0,
    gp_length_scale: float = 0.3,
    gp_sigma: float = 0.25,
) -> Tensor:
    """One random motion-blur PSF per frame: ``(T, 1, k, k)`` float32, each summing to 1.

    Frame ``i``'s kernel depends only on ``(seed, i, kernel_size, gp_length_scale, gp_sigma)``.
    """
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise VidplugError(f"blur kernel_size must be an odd number >= 3, got {kernel_size}")
    kernels = []
    for i in frame_indices:
        generator = MotionBlurGenerator(
            (kernel_size, kernel_size),
            rng=frame_generator(seed, "motion-blur", i),
            l=gp_length_scale,
            sigma=gp_sigma,
        )
        k = generator.step(1)["filter"].float()  # (1, 1, k, k)
        kernels.append(k / k.sum())  # deepinv normalises with a +1e-6; make the sum exactly 1
    return torch.cat(kernels)


def _support_radius(kernels: Tensor, dim: int) -> int:
    """How far from the centre the farthest nonzero tap of any kernel ``(T, 1, k, k)`` lies along ``dim`` (-2: rows,
    -1: columns); 0 for all-zero kernels."""
    centre = kernels.shape[dim] // 2
    other = -1 if dim == -2 else -2
    nonzero = torch.nonzero(kernels.detach().abs().amax(dim=(0, 1, other)) > 0).flatten()
    return int((nonzero - centre).abs().max()) if nonzero.numel() else 0


def _fft_friendly(n: int) -> bool:
    """Whether ``n >= 1`` is a product of _FFT_PRIMES only."""
    for p in _FFT_PRIMES:
        while n % p == 0:
            n //= p
    return n == 1


def _fft_radius(support: int, side: int, limit: int) -> int:
    """The crop radius for an FFT convolution along a frame side: the smallest radius in ``[support, limit]`` whose
    reflect-padded side ``side + 2 r`` is a product of _FFT_PRIMES, else ``support``."""
    for radius in range(support, limit + 1):
        if _fft_friendly(side + 2 * radius):
            return radius
    return support


def _convolution_plan(kernels: Tensor, frame_size: tuple[int, int]) -> tuple[bool, tuple[slice, slice]]:
    """How :class:`MotionBlur` convolves frames of ``frame_size`` with ``kernels (T, 1, k, k)``: by FFT or directly
    (the cropped kernel's side against _FFT_MIN_KERNEL), and the crop of the kernels (rows, columns) around their
    centre that holds every nonzero tap, widened for the FFT to fast padded sides. An even kernel, whose centre is
    off the middle, is used whole."""
    k = kernels.shape[-1]
    half = k // 2
    if k % 2 == 0:
        return k >= _FFT_MIN_KERNEL, (slice(None), slice(None))
    rows, cols = _support_radius(kernels, -2), _support_radius(kernels, -1)
    fft = max(2 * rows + 1, 2 * cols + 1) >= _FFT_MIN_KERNEL
    if fft:
        rows, cols = _fft_radius(rows, frame_size[0], half), _fft_radius(cols, frame_size[1], half)
    return fft, (slice(half - rows, half + rows + 1), slice(half - cols, half + cols + 1))


class MotionBlur(VideoOperator):
    """Per-frame spatial motion blur ``y_t = k_t * x_t`` (same kernel on all channels).

    Args:
        kernel_size: odd kernel side (default 61, DPS/DMPlug).
        gp_length_scale, gp_sigma: deepinv ``MotionBlurGenerator`` trajectory parameters (see the module docstring).
        padding: boundary handling of the convolution, ``'reflect'`` (default, as DPS) or ``'replicate'``; both
            have exact adjoints in deepinv.
        kernels: given ``(T, 1, k, k)`` kernels (e.g. estimated for a real video) instead of random ones.
        dagger_steps: ``A_dagger`` is ``y`` itself (default 0) or that many damped CG steps on the normal equations.

    Frames must be larger than half the kernel (reflect padding mirrors at most the whole frame).
    Buffer: ``kernels (T, 1, k, k)``, fixed after construction: ``A`` and ``A_adjoint`` convolve with them cropped to
    their nonzero taps (the same operator, faster: see the module docstring).
    """

    linear = True

    def __init__(
        self,
        num_frames: int,
        frame_size: tuple[int, int],
        kernel_size: int = KERNEL_SIZE,
        gp_length_scale: float = 0.3,
        gp_sigma: float = 0.25,
        padding: Padding = "reflect",
        kernels: Tensor | None = None,
        dagger_steps: int = 0,
        **common,
    ) -> None:
        super().__init__("deblur", num_frames, frame_size, **common)
        if padding not in PADDINGS:
            raise VidplugError(f"blur padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        if kernels is None:
            kernels = motion_blur_kernels(
                self.frame_indices, kernel_size, self.seed, gp_length_scale, gp_sigma
            )
        elif (
            kernels.ndim != 4
            or kernels.shape[:2] != (self.num_frames, 1)
            or kernels.shape[-1] != kernels.shape[-2]
        ):
            raise VidplugError(
                f"blur kernels must have shape ({self.num_frames}, 1, k, k), got {tuple(kernels.shape)}"
            )
        kernel_size = int(kernels.shape[-1])
        h, w = self.frame_size
        if min(h, w) <= kernel_size // 2:
            raise VidplugError(
                f"frame size {h}x{w} is too small for the {kernel_size}x{kernel_size} blur kernel: height and width "
                f"must be at least {kernel_size // 2 + 1}; pass a smaller kernel_size or a larger video"
            )
        self.kernel_size = kernel_size
        self.padding = padding
        self.dagger_steps = int(dagger_steps)
        self.register_buffer("kernels", kernels.detach().float())
        self.fft, self._crop = _convolution_plan(self.kernels, (h, w))

    def _cropped_kernels(self, like: Tensor) -> Tensor:
        return self.kernels[..., self._crop[0], self._crop[1]].to(like)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(x.shape), "x")
        conv = dF.conv2d_fft if self.fft else dF.conv2d
        return conv(x, self._cropped_kernels(x), padding=self.padding)  # (T, C, H, W)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        self._check_shape(tuple(y.shape), "y")
        conv_t = dF.conv_transpose2d_fft if self.fft else dF.conv_transpose2d
        return conv_t(y, self._cropped_kernels(y), padding=self.padding)  # (T, C, H, W)

    def _dagger(self, y: Tensor) -> Tensor:
        return self.least_squares(y, y, self.dagger_steps)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, padding={self.padding!r}, " + super().extra_repr()
