"""The optimisation problem of one chunk window, in the solver's own terms: the data term over the window's exactly
observed frames (:class:`CroppedOperator`) and the initial seeds (one per absolute frame index, or a DDIM-inversion
warm start). Nothing here knows the application's config: callers pass the pieces."""

from __future__ import annotations

import torch
from torch import Tensor

from vidplug.physics.seeding import frame_generator
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_invert, ddim_timesteps


def initial_seeds(shape: tuple[int, int, int], frames: range, seed: int) -> Tensor:
    """Initial diffusion seeds ``(len(frames), C, H, W)``, one per absolute frame index (chunking-independent),
    each from its own generator hashed from ``(seed, "init-seed", index)``, so no two (seed, frame) pairs share one."""
    return torch.stack([torch.randn(shape, generator=frame_generator(seed, "init-seed", t)) for t in frames])


def inversion_seeds(estimate: Tensor, prior: DiffusionPrior, num_steps: int, spacing: str) -> Tensor:
    """Warm-start seeds ``prior.seed_shape((T, C, H, W))`` whose reverse process lands near ``estimate`` (in
    [0, 1]): its DDIM inversion over the solver's ``num_steps`` timesteps (a latent prior VAE-encodes the estimate
    first and inverts in latent space)."""
    timesteps = ddim_timesteps(num_steps, prior.num_train_timesteps, spacing)
    with torch.no_grad():
        return ddim_invert(prior.encode_frames(estimate), prior, timesteps)


class CroppedOperator(torch.nn.Module):
    """The data term of a chunk: the window's operator, keeping only the observed frames ``[lo, hi)`` of its output."""

    def __init__(self, op: torch.nn.Module, lo: int, hi: int):
        super().__init__()
        self.op, self.lo, self.hi = op, lo, hi

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self.op.A(x)[self.lo : self.hi]

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_dagger(y)
