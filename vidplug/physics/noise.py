"""Measurement noise models: Gaussian, impulse (salt and pepper), shot (Poisson) and speckle.

Noise models are separate from the operators (deepinv's ``Physics(A, noise_model)``): an operator's
``forward(x) = noise_model(A(x), frame_indices)``. A noise model is any callable
``noise_model(y, frame_indices, generator=None) -> y_noisy`` (:class:`NoiseModel`); ``frame_indices`` are the absolute
indices of ``y``'s frames, so a chunk's noise equals the slice of the whole video's. :class:`Noise` is the one used
here (any of four types, seeded); :func:`parse_noise` reads its text form. The solver never sees it; only
simulations (degrade, ``restore --simulate``, eval, ablate, robustness) do.

Levels, all on frames in [0, 1] except Gaussian's sigma:

===========  =====================================================  ===============  ===============
type         level (meaning)                                        ``low`` (sev. 2)  ``high`` (sev. 4)
===========  =====================================================  ===============  ===============
gaussian     sigma on the [-1, 1] scale: ``y + N(0, (sigma/2)^2)``  0.24             0.52
impulse      fraction of values replaced, half by 0, half by 1      0.06             0.17
shot         photons per unit intensity c: ``Poisson(c y) / c``     25               5
speckle      std s of multiplicative noise: ``y + y N(0, s^2)``     0.20             0.45
===========  =====================================================  ===============  ===============

The named levels are ImageNet-C's severities 2 and 4 (Hendrycks & Dietterich, ICLR 2019; ``imagenet_c``
corruptions): gaussian_noise std [.08, .12, .18, .26, .38] on [0, 1] (so 0.12 / 0.26 there, doubled here because
Gaussian sigma keeps the [-1, 1]-scale meaning of DMPlug/DPS), shot_noise c = [60, 25, 12, 5, 3], impulse_noise amount
= [.03, .06, .09, .17, .27] (scikit-image ``random_noise(mode="s&p")``: each value independently), speckle_noise
scale = [.15, .2, .35, .45, .6]. Unlike ImageNet-C the result is not clipped to [0, 1] (as for Gaussian noise here);
writers clamp when saving.

Randomness: with ``generator=None`` frame t's noise comes from its own CPU generator seeded by
``(seed, stream, frame_indices[t])`` (:func:`vidplug.physics.seeding.frame_generator`), so a chunk's noise is the slice
of the whole video's, on any device. Gaussian keeps its historical stream ``"noise"``; the others have their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.seeding import frame_generator

# type -> (low, high): ImageNet-C severities 2 and 4 (Gaussian converted to the [-1, 1] scale)
NAMED_LEVELS: dict[str, tuple[float, float]] = {
    "gaussian": (0.24, 0.52),
    "impulse": (0.06, 0.17),
    "shot": (25.0, 5.0),
    "speckle": (0.20, 0.45),
}
NOISE_TYPES: tuple[str, ...] = tuple(NAMED_LEVELS)
LEVEL_NAMES: tuple[str, ...] = ("low", "high")


class NoiseModel(Protocol):
    """``(y (T, ...), absolute frame indices, optional generator) -> noisy y`` (same shape, dtype, device)."""

    def __call__(self, y: Tensor, frame_indices: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
        ...


@dataclass(frozen=True)
class Noise:
    """One noise type at one numeric level (see the module docstring for the meaning of ``level``), seeded by
    ``seed``: a :class:`NoiseModel`. ``Noise("gaussian", 0.0)`` adds nothing. Build from text with :func:`parse_noise`.
    """

    kind: str = "gaussian"
    level: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        _check_level(self.kind, self.level)

    @property
    def is_zero(self) -> bool:
        """True when this model adds no noise (Gaussian sigma 0 or impulse fraction 0)."""
        return self.level == 0 and self.kind in ("gaussian", "impulse", "speckle")

    @property
    def sigma(self) -> float:
        """Gaussian sigma on the [-1, 1] scale; 0 for the other types (the operator's legacy ``noise_sigma``)."""
        return float(self.level) if self.kind == "gaussian" else 0.0

    def std_at(self, intensity: float = 0.5) -> float:
        """Std of the noise (on [0, 1] frames) added to a pixel of value ``intensity``: what a Gaussian-noise baseline
        (DiffPIR) is told as its noise level. Impulse: std of a value replaced with probability ``level``."""
        lv, v = float(self.level), float(intensity)
        if self.kind == "gaussian":
            return lv / 2.0
        if self.kind == "shot":
            return math.sqrt(max(v, 0.0) / lv)
        if self.kind == "speckle":
            return abs(v) * lv
        # impulse: E[(n - v)^2] with n = 0 or 1 w.p. level/2 each, v otherwise
        return math.sqrt(lv * (v * v + (1 - v) ** 2) / 2.0)

    def spec(self) -> str:
        """Text form ``type:level`` that :func:`parse_noise` reads back."""
        return f"{self.kind}:{self.level:g}"

    def __call__(
        self,
        y: Tensor,
        frame_indices: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Return ``y`` plus noise.

        Args:
            y (Tensor): (T, ...) noiseless observation, nominally in [0, 1].
            frame_indices: absolute frame indices of ``y``'s frames (default ``range(T)``); with
                ``generator=None`` frame t's noise comes from ``(seed, stream, frame_indices[t])``.
            generator: draw the whole tensor from this generator (the draw is moved to ``y``'s device).

        Returns:
            Tensor: same shape, dtype and device as ``y``.
        """
        if self.is_zero:
            return y
        draw = _DRAWS[self.kind]
        # drawn in float32 on the CPU whatever y's dtype/device: same seed, same noise in float32/float64, CPU/GPU
        if generator is not None:
            src = y.detach().to(device=generator.device, dtype=torch.float32)
            noise = draw(src, float(self.level), generator)
        else:
            indices = range(y.shape[0]) if frame_indices is None else list(frame_indices)
            if len(indices) != y.shape[0]:
                raise VidplugError(f"got {len(indices)} frame indices for {y.shape[0]} frames")
            src = y.detach().to(device="cpu", dtype=torch.float32)
            stream = "noise" if self.kind == "gaussian" else f"noise-{self.kind}"
            noise = torch.stack(
                [draw(src[t], float(self.level), frame_generator(self.seed, stream, i)) for t, i in enumerate(indices)]
            )
        return y + noise.to(device=y.device, dtype=y.dtype)


# each draw maps (y float32, level, generator) to the additive noise n, so that the result is y + n

class GaussianNoise(Noise):
    """Additive white Gaussian noise of std ``sigma / 2`` on [0, 1] frames (``sigma`` on the [-1, 1] scale):
    ``Noise("gaussian", sigma, seed)``."""

    def __init__(self, sigma: float = 0.01, seed: int = 0) -> None:
        super().__init__("gaussian", float(sigma), int(seed))


def _gaussian(y: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    return (sigma / 2.0) * torch.randn(y.shape, generator=g, device=y.device)


def _impulse(y: Tensor, amount: float, g: torch.Generator) -> Tensor:
    # one uniform per value: u < amount/2 -> pepper (0), u >= 1 - amount/2 -> salt (1), as skimage's s&p (0.5 salt)
    u = torch.rand(y.shape, generator=g, device=y.device)
    out = torch.where(u < amount / 2.0, torch.zeros_like(y), y)
    return torch.where(u >= 1.0 - amount / 2.0, torch.ones_like(y), out) - y


def _shot(y: Tensor, photons: float, g: torch.Generator) -> Tensor:
    return torch.poisson(y.clamp_min(0.0) * photons, generator=g) / photons - y


def _speckle(y: Tensor, scale: float, g: torch.Generator) -> Tensor:
    return y * scale * torch.randn(y.shape, generator=g, device=y.device)


_DRAWS: dict[str, Callable[[Tensor, float, torch.Generator], Tensor]] = {
    "gaussian": _gaussian, "impulse": _impulse, "shot": _shot, "speckle": _speckle,
}


def _valid_choices() -> str:
    return f"TYPE[:LEVEL] with TYPE one of {', '.join(NOISE_TYPES)} and LEVEL low, high or a number"


def _check_level(kind: str, level: float) -> None:
    if kind not in NAMED_LEVELS:
        raise VidplugError(f"unknown noise type {kind!r}; use {_valid_choices()}")
    if not (isinstance(level, int | float) and math.isfinite(level)):
        raise VidplugError(f"noise level must be a finite number, got {level!r}; use {_valid_choices()}")
    if kind == "shot" and level <= 0:
        raise VidplugError(f"shot noise level (photons per unit intensity) must be > 0, got {level:g}; use {_valid_choices()}")
    if level < 0:
        raise VidplugError(f"{kind} noise level must be >= 0, got {level:g}; use {_valid_choices()}")
    if kind == "impulse" and level > 1:
        raise VidplugError(f"impulse noise level is a fraction of pixels in [0, 1], got {level:g}; use {_valid_choices()}")


def parse_noise(spec: str | float | int | Noise | None, default_sigma: float = 0.01, seed: int = 0) -> Noise:
    """``"impulse:high"``, ``"shot:25"``, ``"speckle"`` (= low), ``"0.05"`` / ``0.05`` (Gaussian sigma on [-1, 1]),
    a :class:`Noise` (returned as is) or None / ``""`` (Gaussian ``default_sigma``) -> :class:`Noise` seeded ``seed``.

    Raises:
        VidplugError: unknown type, malformed or out-of-range level; the message names the valid choices.
    """
    if isinstance(spec, Noise):
        return spec
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return Noise("gaussian", float(default_sigma), seed)
    if isinstance(spec, bool):
        raise VidplugError(f"bad noise {spec!r}; use {_valid_choices()}")
    if isinstance(spec, int | float):
        return Noise("gaussian", float(spec), seed)
    text = str(spec).strip().lower()
    try:  # a bare number keeps its historical meaning: Gaussian sigma on the [-1, 1] scale
        return Noise("gaussian", float(text), seed)
    except ValueError:
        pass
    kind, _, level = text.partition(":")
    if kind not in NAMED_LEVELS:
        raise VidplugError(f"unknown noise type {kind!r} in {spec!r}; use {_valid_choices()}")
    level = level.strip() or "low"
    if level in LEVEL_NAMES:
        return Noise(kind, NAMED_LEVELS[kind][LEVEL_NAMES.index(level)], seed)
    try:
        value = float(level)
    except ValueError:
        raise VidplugError(f"bad noise level {level!r} in {spec!r}; use {_valid_choices()}") from None
    return Noise(kind, value, seed)


def add_gaussian_noise(
    y: Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    seed: int = 0,
    frame_indices: Sequence[int] | None = None,
) -> Tensor:
    """Return ``y + n`` with ``n ~ N(0, (sigma / 2)^2)``: :class:`Noise` ``("gaussian", sigma, seed)`` applied to ``y``.

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
    return Noise("gaussian", float(sigma), seed)(y, frame_indices, generator)
