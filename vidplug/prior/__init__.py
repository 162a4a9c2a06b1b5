"""Diffusion priors behind one interface and the differentiable DDIM reverse process R(z).

``load_prior(spec)`` gives a frozen :class:`DiffusionPrior`; ``ddim_reverse(z, prior, ddim_timesteps(3))`` maps
seeds to clean estimates in [-1, 1] (``reverse_to_unit`` to [0, 1] frames). deepinv and diffusers load lazily.
"""

from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod, to_model_range, to_unit_range
from vidplug.prior.ddim import ddim_reverse, ddim_timesteps, reverse_to_unit
from vidplug.prior.registry import NAMED_PRIORS, load_prior

__all__ = [
    "NAMED_PRIORS",
    "DiffusionPrior",
    "ddim_reverse",
    "ddim_timesteps",
    "linear_alphas_cumprod",
    "load_prior",
    "reverse_to_unit",
    "to_model_range",
    "to_unit_range",
]
