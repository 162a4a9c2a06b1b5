"""The optimisation problem of one chunk window, in the solver's own terms: the data term over the window's exactly
observed frames (:class:`CroppedOperator`) and the initial seeds (one per absolute frame index, or a DDIM-inversion
warm start). Nothing here knows the application's config: callers pass the pieces."""

from __future__ import annotations

import torch
from torch import Tensor

from vidplug.physics.seeding import frame_generator
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_invert, ddim_timesteps, reverse_to_unit


def initial_seeds(shape: tuple[int, int, int], frames: range, seed: int) -> Tensor:
    """Initial diffusion seeds ``(len(frames), C, H, W)``, one per absolute frame index (chunking-independent),
    each from its own generator hashed from ``(seed, "init-seed", index)``, so no two (seed, frame) pairs share one."""
    return torch.stack([torch.randn(shape, generator=frame_generator(seed, "init-seed", t)) for t in frames])


def inversion_seeds(estimate: Tensor, prior: DiffusionPrior, num_steps: int, spacing: str, iters: int = 10) -> Tensor:
    """Warm-start seeds ``prior.seed_shape((T, C, H, W))`` whose reverse process lands near ``estimate`` (in
    [0, 1]): its DDIM inversion over the solver's ``num_steps`` timesteps with ``iters`` fixed-point network calls
    per level (a latent prior VAE-encodes the estimate first and inverts in latent space)."""
    timesteps = ddim_timesteps(num_steps, prior.num_train_timesteps, spacing)
    with torch.no_grad():
        return ddim_invert(prior.encode_frames(estimate), prior, timesteps, fixed_point_iters=iters)


@torch.no_grad()
def start_offset(estimate: Tensor, z0: Tensor, prior: DiffusionPrior, num_steps: int, spacing: str,
                 clamp: bool = False) -> Tensor:
    """``estimate - R(z0)`` ``(T, C, H, W)``: added to ``R(z)`` (``solver.init=inversion-offset``) so that the first
    iterate is exactly ``estimate``, whatever the inversion's round-trip error."""
    timesteps = ddim_timesteps(num_steps, prior.num_train_timesteps, spacing)
    return estimate - reverse_to_unit(z0, prior, timesteps, clamp=clamp, size=tuple(estimate.shape[-2:])).float()


class CroppedOperator(torch.nn.Module):
    """The data term of a chunk: the window's operator, keeping only the observed frames ``[lo, hi)`` of its output."""

    def __init__(self, op: torch.nn.Module, lo: int, hi: int):
        super().__init__()
        self.op, self.lo, self.hi = op, lo, hi

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self.op.A(x)[self.lo : self.hi]

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Adjoint of :meth:`A`: the observed frames' adjoint, zero for the others ``(T, C, H, W)``."""
        full = y.new_zeros(self.op.output_shape())
        full[self.lo : self.hi] = y
        return self.op.A_adjoint(full)

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_dagger(y)


def project(data_op: CroppedOperator, y: Tensor, x: Tensor, steps: int, damping: float) -> Tensor:
    """Measurement consistency: ``steps`` conjugate-gradient steps on ``|A x' - y|^2 + damping |x' - x|^2`` from
    ``x`` (``(T, C, H, W)`` in [0, 1]; ``y`` the observed frames); returns ``x'`` clamped to [0, 1]. Needs a linear
    operator (SR: iterative back-projection; inpainting: observed pixels pulled to ``y``)."""
    from vidplug.physics.base import VideoOperator

    with torch.no_grad():
        out = VideoOperator.least_squares(data_op, y, x, steps, damping)  # uses only A and A_adjoint
    return out.clamp(0.0, 1.0)
