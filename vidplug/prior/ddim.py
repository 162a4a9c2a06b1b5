"""The differentiable DDIM reverse process R(z) that DMPlug optimises through.

DMPlug (Wang et al., NeurIPS 2024) treats a few-step deterministic DDIM sampler as a generator: the seed ``z`` is
the noisy sample x_{t_0} and the restoration is ``R(z)``, the clean estimate after the last step. Gradients of a
data term with respect to ``z`` flow back through every network call, so nothing here may run under
``torch.no_grad`` or modify tensors in place.

Every update follows Song et al. 2021 (DDIM), eq. 12, written with ``a_t`` = alpha-bar_t (cumulative product)::

    x0_hat = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)
    x_prev = sqrt(a_prev) * x0_hat + sqrt(1 - a_prev - s_t^2) * eps + s_t * noise
    s_t    = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)                  (eq. 16)

After the last timestep ``a_prev = 1`` (diffusers' ``set_alpha_to_one=True``), so the output is that step's x0_hat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.utils.checkpoint
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.prior.base import DiffusionPrior, split_prediction

SPACINGS = ("leading", "trailing", "linspace")


def ddim_timesteps(num_steps: int = 3, num_train_timesteps: int = 1000, spacing: str = "leading") -> list[int]:
    """Decreasing timesteps for a ``num_steps``-step DDIM sampler, as diffusers' ``DDIMScheduler`` lays them out.

    ``leading`` (DMPlug's setting, diffusers' default with ``steps_offset=0``): multiples of ``T // K`` starting at
    0, e.g. 3 of 1000 -> ``[666, 333, 0]``. ``trailing``: ending at ``T - 1``, e.g. ``[999, 666, 332]``.
    ``linspace``: ``K`` evenly spaced points of ``[0, T - 1]``, e.g. ``[999, 500, 0]``.
    """
    if spacing not in SPACINGS:
        raise VidplugError(f"unknown timestep spacing '{spacing}'; use one of {', '.join(SPACINGS)}")
    if not 1 <= int(num_steps) <= int(num_train_timesteps):
        raise VidplugError(
            f"DDIM needs 1 <= num_steps <= {num_train_timesteps} (the prior's training steps), got {num_steps}"
        )
    k, t_train = int(num_steps), int(num_train_timesteps)
    # numpy on purpose: the rounding must match diffusers' set_timesteps bit for bit
    if spacing == "leading":
        ts = (np.arange(0, k) * (t_train // k)).round()[::-1]
    elif spacing == "trailing":
        ts = np.round(np.arange(t_train, 0, -t_train / k)) - 1
    else:
        ts = np.linspace(0, t_train - 1, k).round()[::-1]
    return [int(t) for t in ts.astype(np.int64)]


def ddim_reverse(
    z: Tensor,
    prior: DiffusionPrior,
    timesteps: Sequence[int],
    *,
    eta: float = 0.0,
    clamp: bool = False,
    checkpoint: bool = False,
    autocast_dtype: torch.dtype | None = None,
    noise: torch.Generator | Sequence[Tensor] | None = None,
) -> Tensor:
    """Run DDIM from the seed ``z`` = x_{timesteps[0]} down the list and return the final clean estimate.

    Stateless and differentiable with respect to ``z`` (the prior's weights are left as they are). Each step goes
    to the next timestep *in the list* (the last to a_prev = 1). With ``leading`` lists this is exactly diffusers'
    ``DDIMScheduler.step``; for ``trailing``/``linspace`` lists diffusers instead steps to ``t - T // K``.

    Args:
        z (Tensor): (N, C, H, W) seeds in model space (standard normal at initialisation); N frames are batched.
        prior: the epsilon network and its noise schedule.
        timesteps: strictly decreasing integer timesteps, e.g. ``ddim_timesteps(3)`` = ``[666, 333, 0]``.
        eta: DDIM stochasticity (0 = deterministic, as in DMPlug; 1 = DDPM-like).
        clamp: clamp each x0_hat to [-1, 1]. Off by default because clamping zeroes the gradient where it bites.
        checkpoint: recompute each step's activations in the backward pass (``torch.utils.checkpoint``), trading
            one extra forward per step for memory that no longer grows with the number of steps.
        autocast_dtype: e.g. ``torch.bfloat16``: run only the network under ``torch.autocast`` on ``z``'s device
            type; the DDIM arithmetic and the output stay in ``z``'s dtype.
        noise: required when ``eta > 0``: a ``torch.Generator`` or one tensor shaped like ``z`` per timestep (the
            last one is unused, its ``s_t`` is 0).

    Returns:
        Tensor: (N, C, H, W) x0 estimate in model space, nominally [-1, 1] (not clamped unless ``clamp``).
    """
    if z.ndim != 4:
        raise VidplugError(f"ddim_reverse expects seeds shaped (N, C, H, W), got {tuple(z.shape)}")
    ts = _checked_timesteps(timesteps, prior.num_train_timesteps)
    if eta < 0:
        raise VidplugError(f"DDIM eta must be >= 0, got {eta}")
    noises = _step_noises(noise, z, len(ts), eta)

    x = z  # (N, C, H, W) x_t, starting at t = timesteps[0]
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1  # -1: past the last step, alpha-bar = 1
        a_t, a_prev = prior.alpha_bar(t), prior.alpha_bar(t_prev)
        # eq. 16: s_t = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev); 0 at the last step
        s_t = eta * math.sqrt((1.0 - a_prev) / (1.0 - a_t)) * math.sqrt(1.0 - a_t / a_prev) if eta else 0.0
        args = (prior, x, t, a_t, a_prev, s_t, noises[i], clamp, autocast_dtype)
        if checkpoint:
            # noise is drawn above, outside the checkpoint, so the recomputation sees the same values
            x = torch.utils.checkpoint.checkpoint(_ddim_step, *args, use_reentrant=False)
        else:
            x = _ddim_step(*args)
    return x


def reverse_to_unit(
    z: Tensor,
    prior: DiffusionPrior,
    timesteps: Sequence[int],
    *,
    size: tuple[int, int] | None = None,
    checkpoint_decoder: bool | None = None,
    **kwargs,
) -> Tensor:
    """R(z): :func:`ddim_reverse` mapped to frames (N, 3, H, W) in [0, 1] (nominally; not clamped).

    A pixel prior's clean sample is the frame. A latent prior decodes it (``prior.decode_frames``: the VAE decoder,
    cropped to ``size = (H, W)``), so R(z) = D(DDIM_K(z)); ``checkpoint_decoder`` recomputes the decoder's
    activations in the backward pass (None: follow ``checkpoint``). ``autocast_dtype`` covers the decoder too.
    Other keywords as :func:`ddim_reverse`.
    """
    x0 = ddim_reverse(z, prior, timesteps, **kwargs)  # (N, C, h, w) clean sample (pixels or latents)
    if checkpoint_decoder is None:
        checkpoint_decoder = bool(kwargs.get("checkpoint", False))
    return prior.decode_frames(x0, size, checkpoint=checkpoint_decoder, autocast_dtype=kwargs.get("autocast_dtype"))


def _ddim_step(
    prior: DiffusionPrior,
    x_t: Tensor,
    t: int,
    a_t: float,
    a_prev: float,
    s_t: float,
    noise: Tensor | None,
    clamp: bool,
    autocast_dtype: torch.dtype | None,
) -> Tensor:
    """One DDIM update x_t -> x_prev (or -> x0_hat when ``a_prev`` is 1); shapes (N, C, H, W)."""
    if autocast_dtype is None:
        out = prior.model_output(x_t, t)  # (N, C, H, W) eps_theta(x_t, t), or v for a v-prediction prior
    else:
        with torch.autocast(device_type=x_t.device.type, dtype=autocast_dtype):
            out = prior.model_output(x_t, t)
        out = out.to(x_t.dtype)  # the update below stays in the seed's precision
    # eq. 12, "predicted x0": x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) (v-prediction: converted, see
    # split_prediction: x0_hat = sqrt(a_t) x_t - sqrt(1 - a_t) v, eps = sqrt(a_t) v + sqrt(1 - a_t) x_t)
    eps, x0_hat = split_prediction(out, x_t, a_t, prior.prediction_type)
    if clamp:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    if a_prev == 1.0:
        # last step: sqrt(a_prev) = 1 and sqrt(1 - a_prev - s_t^2) = 0, so x_prev is x0_hat exactly
        return x0_hat
    # eq. 12, "direction pointing to x_t": sqrt(1 - a_prev - s_t^2) eps (max guards rounding below 0)
    direction = math.sqrt(max(1.0 - a_prev - s_t**2, 0.0)) * eps
    # eq. 12: x_prev = sqrt(a_prev) x0_hat + direction + s_t noise
    x_prev = math.sqrt(a_prev) * x0_hat + direction
    if s_t > 0.0:
        x_prev = x_prev + s_t * noise
    return x_prev


def _checked_timesteps(timesteps: Sequence[int], num_train_timesteps: int) -> list[int]:
    ts = [int(t) for t in timesteps]
    if not ts:
        raise VidplugError("ddim_reverse needs at least one timestep; use ddim_timesteps(num_steps)")
    if any(t < 0 or t >= num_train_timesteps for t in ts):
        raise VidplugError(f"DDIM timesteps must lie in [0, {num_train_timesteps - 1}] for this prior, got {ts}")
    if any(a <= b for a, b in zip(ts, ts[1:], strict=False)):
        raise VidplugError(f"DDIM timesteps must be strictly decreasing, got {ts}")
    return ts


def _step_noises(
    noise: torch.Generator | Sequence[Tensor] | None, z: Tensor, num_steps: int, eta: float
) -> list[Tensor | None]:
    """One noise tensor per step for eta > 0 (drawn now, so checkpointing replays the same values)."""
    if eta == 0:
        return [None] * num_steps
    if noise is None:
        raise VidplugError("ddim_reverse with eta > 0 needs noise= (a torch.Generator or one tensor per step)")
    if isinstance(noise, torch.Generator):
        # drawn on the generator's device so a CPU generator gives the same numbers for a CUDA seed
        return [
            torch.randn(z.shape, generator=noise, device=noise.device, dtype=z.dtype).to(z.device)
            for _ in range(num_steps)
        ]
    noises = list(noise)
    if len(noises) != num_steps or any(n.shape != z.shape for n in noises):
        raise VidplugError(
            f"ddim_reverse noise= must hold {num_steps} tensors shaped like z {tuple(z.shape)} (one per timestep)"
        )
    return [n.to(device=z.device, dtype=z.dtype) for n in noises]


@torch.no_grad()
def ddim_invert(x0: Tensor, prior: DiffusionPrior, timesteps: Sequence[int], fixed_point_iters: int = 10) -> Tensor:
    """DDIM inversion: a seed ``z`` (= x_{t_0}) whose reverse process ``R(z)`` reproduces ``x0``.

    Each eta = 0 update of eq. 12 is inverted exactly by a fixed-point iteration on the epsilon of the *target*
    level (plain DDIM inversion uses the epsilon of the current level, which with three large steps lands far from
    ``x0``): find ``x_next`` with ``x_next = sqrt(a_next) x0_hat + sqrt(1 - a_next) eps(x_next, t_next)`` and
    ``x0_hat = (x_t - sqrt(1 - a_t) eps(x_next, t_next)) / sqrt(a_t)``, so the reverse step from ``x_next`` gives
    back ``x_t``. The lowest level solves ``x0_hat(x_{t_K}) = x0`` the same way. At a fixed point
    ``R(z) = x0``; with ``fixed_point_iters`` network calls per level it is close. A warm start for the seed
    optimisation, never the result; no gradients.

    Args:
        x0 (Tensor): (N, C, H, W) clean estimate in model space [-1, 1].
        timesteps: the sampler's timesteps, e.g. ``[666, 333, 0]``.
        fixed_point_iters: network calls per level (1 = plain DDIM inversion).

    Returns:
        Tensor: (N, C, H, W) seed at ``timesteps[0]``.
    """
    steps = _checked_timesteps(timesteps, prior.num_train_timesteps)[::-1]  # increasing: 0, 333, 666
    a_low = prior.alpha_bar(steps[0])
    x = x0
    for _ in range(fixed_point_iters):  # x_{t_K} whose clean estimate (the sampler's output) is x0
        x = math.sqrt(a_low) * x0 + math.sqrt(1.0 - a_low) * prior.eps(x, steps[0])
    for t, t_next in zip(steps[:-1], steps[1:], strict=True):
        a_t, a_next = prior.alpha_bar(t), prior.alpha_bar(t_next)
        x_next = x
        for _ in range(fixed_point_iters):
            eps = prior.eps(x_next, t_next)
            x0_hat = (x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)  # eq. 12 solved for x0_hat given x_t
            x_next = math.sqrt(a_next) * x0_hat + math.sqrt(1.0 - a_next) * eps  # the level the reverse step leaves
        x = x_next
    return x
