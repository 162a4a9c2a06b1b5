"""The ``diffpir`` method: an interleaving diffusion baseline from deepinv, run through vidplug's own harness.

DiffPIR (Zhu et al. 2023, ``deepinv.sampling.DiffPIR``) alternates a denoising step of the diffusion prior with a
proximal data step, sampling each frame independently (no temporal coupling): the per-frame baseline of the ablation.
It uses the *same* prior as DMPlug through two small adapters:

- :class:`EpsDenoiser`: deepinv's denoiser interface ``D(x, sigma)`` (x in [0, 1] with Gaussian noise of std sigma)
  over our epsilon network and its own ``alphas_cumprod``;
- :func:`window_physics`: our operator as a ``deepinv.physics.LinearPhysics`` (A and its exact adjoint).

The whole chunk window is one deepinv sample ``(1, T*C, H, W)``: deepinv's conjugate-gradient prox then solves the
data step exactly even for operators that couple frames (temporal PSF), while the denoiser splits the sample back
into frames, so the prior still acts per frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from vidplug.errors import VidplugError
from vidplug.physics.seeding import frame_seed
from vidplug.prior.base import DiffusionPrior, to_model_range, to_unit_range


@dataclass
class DiffPIRSettings:
    """Settings of the DiffPIR baseline (defaults: deepinv's, with fewer steps so it runs on a CPU)."""

    steps: int = 20  # sampler iterations (deepinv's max_iter; the paper uses 100)
    lambda_: float = 7.0  # data-step strength: rho_t = lambda * sigma_y^2 / sigma_t^2 (paper: 3..25)
    zeta: float = 0.1  # share of fresh noise in each re-noising step (0 = deterministic DDIM-like)
    min_noise: float = 0.0025  # floor of sigma_y on [0, 1] frames: rho_t = 0 (noiseless data) would divide by zero

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise VidplugError(f"DiffPIR needs at least 2 steps, got {self.steps}")
        if not 0.0 <= self.zeta <= 1.0:
            raise VidplugError(f"DiffPIR zeta must be in [0, 1], got {self.zeta}")
        if self.lambda_ <= 0 or self.min_noise <= 0:
            raise VidplugError("DiffPIR lambda_ and min_noise must be positive")


class EpsDenoiser(nn.Module):
    """deepinv's denoiser interface over an epsilon-prediction prior.

    ``forward(x, sigma)``: x ``(N, k*C, H, W)`` in [0, 1] plus Gaussian noise of std ``sigma`` (one level for the
    batch, on the [0, 1] scale) -> the denoised estimate, same shape, in about [0, 1]. ``k`` frames stacked along
    channels are denoised one by one (the prior is an image model).
    """

    def __init__(self, prior: DiffusionPrior):
        super().__init__()
        if prior.latent:
            raise VidplugError(f"the DiffPIR baseline denoises pixels and needs a pixel-space prior, not '{prior.name}'")
        self.prior = prior
        ab = prior.alphas_cumprod.double().cpu()
        # noise std of x_t / sqrt(alpha_bar_t) on the model's [-1, 1] scale, per training timestep (increasing in t)
        self.register_buffer("_sigma_model", ((1 - ab) / ab).sqrt(), persistent=False)

    def timestep(self, sigma: float) -> int:
        """The training timestep whose noise level is nearest to ``sigma`` (std on [0, 1] frames)."""
        return int(torch.argmin((self._sigma_model - 2.0 * sigma).abs()))  # x2: [0, 1] -> [-1, 1] scale

    @torch.no_grad()
    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        n, kc, h, w = x.shape
        c = self.prior.channels
        sigma = float(torch.as_tensor(sigma).reshape(-1)[0])
        t = self.timestep(sigma)
        ab = self.prior.alpha_bar(t)
        frames = x.reshape(n * kc // c, c, h, w)  # (frames, channels, height, width)
        # variance-preserving x_t = sqrt(ab) * (x0 + s * noise) with s = sqrt((1 - ab) / ab), on [-1, 1]
        x_t = math.sqrt(ab) * to_model_range(frames)
        eps = self.prior.eps(x_t, t)
        x0 = (x_t - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)  # Tweedie / DDIM x0 estimate
        return to_unit_range(x0).reshape(n, kc, h, w)


def window_physics(op: nn.Module, lo: int, hi: int, frame_shape: tuple[int, ...], y_shape: tuple[int, ...],
                   noise_std: float):
    """Our window operator (keeping observed frames ``[lo, hi)``) as a deepinv ``LinearPhysics`` on one sample.

    Args:
        op: a linear :class:`vidplug.physics.base.VideoOperator` built for the window.
        frame_shape: ``(T, C, H, W)`` of the window's clean frames; x is ``(1, T*C, H, W)``.
        y_shape: ``(T, C', h, w)`` of the window's full observation; y is ``(1, (hi-lo)*C', h, w)``.
        noise_std: std of the measurement noise on [0, 1] data (DiffPIR reads it to set its data-step weights).
    """
    from deepinv.physics import GaussianNoise, LinearPhysics

    if not getattr(op, "linear", False):
        raise VidplugError(f"the DiffPIR baseline needs a linear operator; task '{op.task}' is not linear")
    t, c, h, w = frame_shape
    _, cy, hy, wy = y_shape

    def forward_op(x: Tensor) -> Tensor:
        return op.A(x.reshape(t, c, h, w))[lo:hi].reshape(1, -1, hy, wy)

    def adjoint_op(v: Tensor) -> Tensor:
        full = v.new_zeros(y_shape)
        full[lo:hi] = v.reshape(hi - lo, cy, hy, wy)  # adjoint of keeping [lo, hi): zero elsewhere
        return op.A_adjoint(full).reshape(1, t * c, h, w)

    return LinearPhysics(A=forward_op, A_adjoint=adjoint_op, noise_model=GaussianNoise(sigma=noise_std))


class DiffPIRMethod:
    """The ``diffpir`` method: deepinv's DiffPIR per frame over the chunk window (a :class:`ChunkSolver`).

    It uses ``models.prior``, ignores anchors and the consistency settings, reads the noise level from the
    operator's noise model, and draws its own noise from ``(cfg.seed, the chunk's first frame)`` without touching
    torch's global random state.
    """

    name = "diffpir"
    needs_prior = True
    uses_consistency = False

    def __init__(self, settings: DiffPIRSettings | None = None) -> None:
        self.settings = settings or DiffPIRSettings()

    def __call__(self, cfg, models, chunk, y: Tensor, op, anchors, reference, progress: bool = True):
        from deepinv.optim.data_fidelity import L2
        from deepinv.sampling import DiffPIR

        settings = self.settings
        if models.prior is None:
            raise VidplugError("the DiffPIR baseline needs a diffusion prior; build the shared models from a dmplug config")
        t0 = time.time()
        init = op.A_dagger(y).clamp(0, 1)  # (T, C, H, W) pseudo-inverse start, as DMPlug's
        lo, hi = chunk.local(chunk.data_start), chunk.local(chunk.data_stop)
        # DiffPIR needs a Gaussian level: the noise model's std at mid-grey (sigma / 2 for Gaussian noise)
        std_at = getattr(op.noise_model, "std_at", None)
        noise_std = max(std_at(0.5) if std_at is not None else op.noise_sigma / 2.0, settings.min_noise)
        physics = window_physics(op, lo, hi, tuple(init.shape), tuple(y.shape), noise_std)
        sampler = DiffPIR(EpsDenoiser(models.run_prior(cfg)), L2(), sigma=noise_std, max_iter=settings.steps,
                          zeta=settings.zeta, lambda_=settings.lambda_, verbose=progress, device=init.device)
        devices = [init.device] if init.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # deepinv draws from the global generator
            torch.manual_seed(frame_seed(cfg.seed, "diffpir", chunk.window_start))
            out = sampler(y[lo:hi].reshape(1, -1, *y.shape[-2:]), physics, x_init=init.reshape(1, -1, *init.shape[-2:]))
        frames = out.reshape(init.shape).clamp(0, 1)  # (T, C, H, W)
        summary = {"method": self.name, **asdict(settings), "noise_std": noise_std, "wall_time_s": time.time() - t0}
        return frames, summary, None
