"""Measurement noise models, separate from the operators (deepinv's ``Physics(A, noise_model)``): an operator's
``forward(x) = noise_model(A(x), frame_indices)``.

A noise model is any callable ``noise_model(y, frame_indices, generator=None) -> y_noisy`` (:class:`NoiseModel`);
``frame_indices`` are the absolute indices of ``y``'s frames, so a chunk's noise equals the slice of the whole
video's. Sigmas are given on the [-1, 1] scale as in DMPlug/DPS (frames here are in [0, 1], half the std).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.seeding import frame_generator


class NoiseModel(Protocol):
    """``(y (T, ...), absolute frame indices, optional generator) -> noisy y`` (same shape, dtype, device)."""

    def __call__(self, y: Tensor, frame_indices: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
        ...


class GaussianNoise:
    """Additive white Gaussian noise of std ``sigma / 2`` on [0, 1] frames (``sigma`` on the [-1, 1] scale).

    Frame ``t``'s noise is drawn from its own generator seeded by ``(seed, "noise", frame_indices[t])`` unless a
    ``generator`` is given (then the whole tensor is drawn from it).
    """

    def __init__(self, sigma: float = 0.01, seed: int = 0) -> None:
        if sigma < 0:
            raise VidplugError(f"noise sigma must be >= 0 (given on the [-1, 1] scale), got {sigma}")
        self.sigma, self.seed = float(sigma), int(seed)

    def __call__(self, y: Tensor, frame_indices: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
        return add_gaussian_noise(y, self.sigma, generator=generator, seed=self.seed, frame_indices=frame_indices)

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma}, seed={self.seed})"


def add_gaussian_noise(
    y: Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    seed: int = 0,
    frame_indices: Sequence[int] | None = None,
) -> Tensor:
    """Return ``y + n`` with ``n ~ N(0, (sigma / 2)^2)``.

    ``sigma`` is the std on the [-1, 1] model scale (DMPlug's default 0.01); frames here are in [0, 1], where the
    same noise has half the std. ``sigma = 0`` returns ``y`` unchanged.

    Args:
        y (Tensor): (T, ...) noiseless observation.
        sigma: noise std on the [-1, 1] scale, >= 0.
        generator: draw the whole tensor from this generator (on any device; the draw is moved to ``y``'s).
        seed: with ``generator=None``, frame t's noise comes from its own generator seeded by
            ``(seed, "noise", frame_indices[t])`` so a chunk's noise equals the slice of the whole video's noise.
        frame_indices: absolute frame indices of ``y``'s frames (default ``range(T)``).

    Returns:
        Tensor: same shape, dtype and device as ``y``.
    """
    if sigma < 0:
        raise VidplugError(f"noise sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return y
    std = sigma / 2.0
    # drawn in float32 whatever y's dtype, so the same seed gives the same noise in float32 and float64
    if generator is not None:
        noise = torch.randn(y.shape, generator=generator, device=generator.device)
    else:
        indices = range(y.shape[0]) if frame_indices is None else list(frame_indices)
        if len(indices) != y.shape[0]:
            raise VidplugError(f"got {len(indices)} frame indices for {y.shape[0]} frames")
        noise = torch.stack(
            [torch.randn(y.shape[1:], generator=frame_generator(seed, "noise", i)) for i in indices]
        )
    return y + std * noise.to(device=y.device, dtype=y.dtype)
