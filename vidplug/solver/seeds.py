"""How the diffusion seeds z of a chunk are parametrised: one free seed per frame, or a shared seed plus residuals.

The solver optimises the parameters of a :class:`SeedParam` module; calling it returns the per-frame seeds
``z (T, C, H, W)`` fed to the reverse process R.

- ``"independent"`` (DMPlug, default): ``z_t`` free, initialised ``N(0, 1)``.
- ``"shared"`` (seed-space coupling, Wang et al. 2025): ``z_t = z_shared + r_t``. Frames of one shot look alike, so
  most of their seed is shared and only a residual differs. The residual is either full (``rank=0``) or rank ``r``:
  the ``(T, C*H*W)`` residual matrix is ``U V`` with ``U (T, r)`` and ``V (r, C*H*W)``, so all frames move inside an
  r-dimensional subspace of seed space.

Initialisation keeps every ``z_t`` at unit variance, which is what R expects of a seed (it starts from x_T ~ N(0, I)):
``z_shared ~ sqrt(1 - a^2) * N(0, 1)`` and the residual has variance ``a^2`` per element, with ``a =
residual_scale``. Low rank: ``U ~ a * N(0, 1)``, ``V ~ N(0, 1) / sqrt(r)``, so ``E[(U V)_td^2] = a^2``. ``U`` is not
zero so the residual gets gradients from the first step (with ``U = V = 0`` both gradients would vanish).
Neighbouring frames then start with seed correlation ``1 - a^2``.

With ``z_init`` given (e.g. seeds drawn per absolute frame index by the pipeline), the shared part is the frame mean
of ``z_init`` and the residual is the rest, truncated to rank r by SVD when ``rank > 0``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vidplug.errors import VidplugError

SEED_MODES = ("independent", "shared")


def draw_seeds(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> Tensor:
    """Standard-normal float32 seeds of ``shape`` from ``generator`` (drawn on the generator's device, then moved)."""
    z = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return z.to(device)


class SeedParam(nn.Module):
    """Base class: ``forward() -> z (T, C, H, W)`` float32."""

    shape: tuple[int, int, int, int]

    def forward(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class IndependentSeeds(SeedParam):
    """One free seed per frame: ``z (T, C, H, W)``."""

    def __init__(self, z: Tensor) -> None:
        super().__init__()
        self.shape = tuple(z.shape)
        self.z = nn.Parameter(z.detach().to(torch.float32).clone())

    def forward(self) -> Tensor:
        return self.z


class SharedSeeds(SeedParam):
    """``z_t = z_shared + r_t`` with a full (``V is None``) or rank-r residual ``r = U V``.

    Args:
        shared: ``(1, C, H, W)``.
        residual: full residual ``(T, C, H, W)`` when ``v`` is None, else ``U (T, r)``.
        v: ``(r, C*H*W)`` for a low-rank residual, else None.
    """

    def __init__(self, shared: Tensor, residual: Tensor, v: Tensor | None = None) -> None:
        super().__init__()
        t = residual.shape[0]
        self.shape = (t, *shared.shape[1:])
        self.shared = nn.Parameter(shared.detach().to(torch.float32).clone())
        self.residual = nn.Parameter(residual.detach().to(torch.float32).clone())
        self.v = None if v is None else nn.Parameter(v.detach().to(torch.float32).clone())

    @property
    def rank(self) -> int:
        return 0 if self.v is None else int(self.v.shape[0])

    def forward(self) -> Tensor:
        if self.v is None:
            return self.shared + self.residual  # (1,C,H,W) + (T,C,H,W) -> (T,C,H,W)
        r = (self.residual @ self.v).view(self.shape)  # (T, r) @ (r, C*H*W) -> (T, C, H, W)
        return self.shared + r


def make_seeds(
    shape: tuple[int, int, int, int],
    *,
    mode: str = "independent",
    rank: int = 0,
    residual_scale: float = 0.3,
    generator: torch.Generator | None = None,
    z_init: Tensor | None = None,
    device: torch.device | str = "cpu",
) -> SeedParam:
    """Build the seed parametrisation for a chunk of ``shape = (T, C, H, W)`` frames.

    Args:
        mode: ``"independent"`` or ``"shared"``.
        rank: residual rank in shared mode; 0 = full residual. Ignored when independent.
        residual_scale: ``a`` in [0, 1]: per-element std of the initial residual (shared mode; see module doc).
        generator: source of the initial seeds (required unless ``z_init`` is given).
        z_init: ``(T, C, H, W)`` initial seeds; used as is (independent) or split into mean + residual (shared).
        device: where the parameters live.
    """
    if mode not in SEED_MODES:
        raise VidplugError(f"unknown seed_mode '{mode}'; use one of: {', '.join(SEED_MODES)}")
    if rank < 0:
        raise VidplugError(f"seed_rank must be >= 0 (0 = full residual), got {rank}")
    if not 0.0 <= residual_scale <= 1.0:
        raise VidplugError(f"seed_residual_scale must be in [0, 1], got {residual_scale}")
    t, c, h, w = shape
    if z_init is not None:
        if tuple(z_init.shape) != tuple(shape):
            raise VidplugError(f"z_init has shape {tuple(z_init.shape)} but the frames need {tuple(shape)}")
        z_init = z_init.detach().to(device=device, dtype=torch.float32)
    elif generator is None:
        raise VidplugError("make_seeds needs a torch.Generator or z_init to draw the initial seeds")

    if mode == "independent":
        z = z_init if z_init is not None else draw_seeds(shape, generator, device)
        return IndependentSeeds(z)

    r = min(rank, t) if rank > 0 else 0  # a (T, D) matrix has rank <= T: more is no constraint
    if z_init is not None:
        shared = z_init.mean(0, keepdim=True)  # (1, C, H, W)
        resid = z_init - shared  # (T, C, H, W)
        if r == 0:
            return SharedSeeds(shared, resid)
        u_s, s, vh = torch.linalg.svd(resid.reshape(t, -1), full_matrices=False)  # best rank-r approximation
        return SharedSeeds(shared, u_s[:, :r] * s[:r], vh[:r])

    a = float(residual_scale)
    shared = draw_seeds((1, c, h, w), generator, device) * math.sqrt(1.0 - a * a)
    if r == 0:
        return SharedSeeds(shared, draw_seeds(shape, generator, device) * a)
    u = draw_seeds((t, r), generator, device) * a
    v = draw_seeds((r, c * h * w), generator, device) / math.sqrt(r)
    return SharedSeeds(shared, u, v)
