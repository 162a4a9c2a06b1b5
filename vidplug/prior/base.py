"""The prior interface: an epsilon-prediction network plus its noise schedule.

Every prior (ADM checkpoints through deepinv, diffusers ``UNet2DModel``, the bundled ``tiny`` prior, tiny random
test models) is wrapped in a :class:`DiffusionPrior`. The solver only ever calls :meth:`DiffusionPrior.eps` and
reads :attr:`DiffusionPrior.alphas_cumprod`; seeds and frames meet through :meth:`DiffusionPrior.seed_shape`,
:meth:`DiffusionPrior.encode_frames` and :meth:`DiffusionPrior.decode_frames`, which a latent prior
(:mod:`vidplug.prior.latent`: the diffusion runs on VAE latents) overrides.

This module is also the one place where frames change range: vidplug's API uses [0, 1], the diffusion model [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def to_model_range(x: Tensor) -> Tensor:
    """[0, 1] frames -> [-1, 1] model space."""
    return x * 2.0 - 1.0


def to_unit_range(x: Tensor) -> Tensor:
    """[-1, 1] model space -> [0, 1] frames (not clamped: clamping would zero gradients)."""
    return (x + 1.0) * 0.5


def linear_alphas_cumprod(
    num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> Tensor:
    """DDPM's linear beta schedule as cumulative alpha products, float64, shape ``(num_train_timesteps,)``."""
    betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad (N, C, H, W) at the bottom/right to multiples of ``multiple`` (replicate when the pad is not
    smaller than the side, which reflect cannot do); crop back with ``[..., :H, :W]``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


PREDICTION_TYPES = ("epsilon", "v_prediction")


def split_prediction(out: Tensor, x_t: Tensor, a_t: float | Tensor, prediction_type: str) -> tuple[Tensor, Tensor]:
    """(epsilon, x0 estimate) from a network output ``out`` at ``x_t`` (both (N, C, H, W)), ``a_t`` = alpha-bar_t.

    epsilon (DDIM eq. 12): ``x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``. v-prediction (Salimans & Ho 2022, as
    diffusers' ``DDIMScheduler.step``): ``x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v``, ``eps = sqrt(a_t) v + sqrt(1 - a_t) x_t``.
    """
    sqrt_a = a_t.sqrt() if torch.is_tensor(a_t) else math.sqrt(a_t)
    sqrt_1a = (1.0 - a_t).sqrt() if torch.is_tensor(a_t) else math.sqrt(1.0 - a_t)
    if prediction_type == "v_prediction":
        return sqrt_a * out + sqrt_1a * x_t, sqrt_a * x_t - sqrt_1a * out
    return out, (x_t - sqrt_1a * out) / sqrt_a


class DiffusionPrior(nn.Module):
    """An epsilon-prediction network with its noise schedule.

    Args:
        eps_fn: module called as ``eps_fn(x_t, t)`` with ``x_t (N, C, H, W)`` in model space and ``t (N,)`` integer
            timesteps; returns epsilon ``(N, C, H, W)`` (extra output channels, e.g. ADM's learned variance, are cut
            off here).
        alphas_cumprod: ``(num_train_timesteps,)`` cumulative products of ``1 - beta``.
        name: human-readable identifier saved in reports.
        multiple: spatial sizes the network accepts must be multiples of this (2 ** number of downsamplings);
            other sizes are reflect-padded and cropped back inside :meth:`eps`.
        native_size: the resolution the network was trained at (informational; larger frames are processed whole).
        channels: number of image channels the network takes.
    """

    def __init__(
        self,
        eps_fn: nn.Module | Callable[[Tensor, Tensor], Tensor],
        alphas_cumprod: Tensor,
        name: str,
        multiple: int = 1,
        native_size: int | None = None,
        channels: int = 3,
    ) -> None:
        super().__init__()
        self.net = eps_fn
        # float64 so the DDIM coefficients are exact; they are cast to the working dtype where used.
        self.register_buffer("alphas_cumprod", alphas_cumprod.to(torch.float64), persistent=False)
        # host copy for the per-step DDIM coefficients: reading the buffer on a GPU would sync every call
        self._alpha_bar_host: list[float] = alphas_cumprod.detach().to("cpu", torch.float64).tolist()
        self.name = name
        self.multiple = int(multiple)
        self.native_size = native_size
        self.channels = channels
        self.memory_format = torch.contiguous_format  # layout of the network's input (channels_last: NHWC)
        self.prediction_type = "epsilon"  # what the network predicts: epsilon | v_prediction (DDIM converts)

    latent = False  # True when seeds live in a latent space and frames come from a decoder

    def seed_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the seeds ``z`` for frames of ``frame_shape (T, C, H, W)``: the same for a pixel prior."""
        return tuple(frame_shape)

    def encode_frames(self, frames: Tensor) -> Tensor:
        """(N, C, H, W) frames in [0, 1] -> the diffusion's clean space (pixel prior: [-1, 1] model range)."""
        return to_model_range(frames)

    def decode_frames(self, x0: Tensor, size: tuple[int, int] | None = None, **kwargs) -> Tensor:
        """(N, C, h, w) clean diffusion samples -> frames (N, C, H, W) in [0, 1], unclamped; ``size`` = (H, W) of the
        frames (a pixel prior's samples already have it; a latent prior crops its decoder output to it)."""
        return to_unit_range(x0)

    def with_net(self, net: nn.Module | Callable[[Tensor, Tensor], Tensor]) -> DiffusionPrior:
        """A twin sharing this prior's schedule and settings whose network is ``net`` (e.g. a compiled one)."""
        twin = DiffusionPrior(net, self.alphas_cumprod, name=self.name, multiple=self.multiple,
                              native_size=self.native_size, channels=self.channels)
        twin.prediction_type = self.prediction_type
        return twin

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @property
    def net_dtype(self) -> torch.dtype | None:
        """dtype of the network's floating-point weights (None for a parameter-free callable)."""
        net = self.net
        if isinstance(net, nn.Module):
            for p in net.parameters():
                if p.is_floating_point():
                    return p.dtype
        return None

    def freeze(self) -> DiffusionPrior:
        """Eval mode and no weight gradients (vidplug optimises the seed z, never the network); returns self."""
        self.eval()
        self.requires_grad_(False)
        return self

    def alpha_bar(self, t: int) -> float:
        """Cumulative alpha product at integer timestep ``t`` as a float; 1.0 for ``t < 0`` (clean image)."""
        return 1.0 if t < 0 else self._alpha_bar_host[t]

    def eps(self, x: Tensor, t: Tensor | int) -> Tensor:
        """Predict the noise in ``x`` (N, C, H, W) at timestep(s) ``t`` (a v-prediction network's output is
        converted); pads to :attr:`multiple` and crops back."""
        out = self.model_output(x, t)
        if self.prediction_type == "epsilon":
            return out
        if torch.is_tensor(t) and t.ndim:
            a_t = self.alphas_cumprod.to(device=x.device, dtype=x.dtype)[t.long()].view(-1, 1, 1, 1)  # (N, 1, 1, 1)
        else:
            a_t = self.alpha_bar(int(t))
        return split_prediction(out, x, a_t, self.prediction_type)[0]

    def model_output(self, x: Tensor, t: Tensor | int) -> Tensor:
        """The network's raw prediction for ``x`` (N, C, H, W) at timestep(s) ``t`` (epsilon or v, see
        :attr:`prediction_type`); pads to :attr:`multiple` and crops back."""
        n, c, h, w = x.shape
        if not torch.is_tensor(t):
            t = torch.full((n,), int(t), device=x.device, dtype=torch.long)
        elif t.ndim == 0:
            t = t.expand(n)
        x = pad_to_multiple(x, self.multiple)
        # the network runs in its own dtype (e.g. loaded as bfloat16); the caller keeps working in x's dtype
        dtype = x.dtype
        x = x.to(self.net_dtype or dtype)
        if self.memory_format is not torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)
        out = self.net(x, t)
        return out[:, :c, :h, :w].to(dtype)  # ADM predicts (eps, variance): keep eps
