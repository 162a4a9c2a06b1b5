"""One entry point for every prior: :func:`load_prior` by name, Hub id, directory or checkpoint file.

Importing this module registers the named ADM weights in :mod:`vidplug.weights` (``vidplug weights`` lists them);
deepinv and diffusers are imported only when a prior is actually loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.prior import adm
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.latent_hub import LATENT_REPOS

TINY_DIR = Path(__file__).parent / "weights" / "tiny"

NAMED_PRIORS = {
    "tiny": "bundled small prior (vidplug/prior/weights/tiny, made by `vidplug train-prior`): CPU demos, not quality",
    "adm-imagenet256": adm.ADM_WEIGHTS["adm-imagenet256"].description,
    "adm-ffhq256": adm.ADM_WEIGHTS["adm-ffhq256"].description,
    **{name: repo.description for name, repo in LATENT_REPOS.items()},
}

CHECKPOINT_SUFFIXES = (".pt", ".pth")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name
_ACCEPTED = (
    f"use one of {', '.join(NAMED_PRIORS)}, a Hugging Face Hub id of a diffusers UNet2DModel or Stable Diffusion "
    "pipeline (owner/name), a local diffusers directory, or a guided-diffusion .pt/.pth file"
)


def load_prior(spec: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               prompt: str = "", guidance: float = 1.0) -> DiffusionPrior:
    """Load a frozen (eval, no weight gradients) diffusion prior.

    Args:
        spec: ``tiny`` | ``adm-imagenet256`` | ``adm-ffhq256`` | ``sd15`` | ``sd-turbo`` | Hub id
            (``google/ddpm-ema-church-256``, or a Stable Diffusion pipeline repo) | directory (root layout with
            ``config.json``, ``unet/`` + ``scheduler/``, or a Stable Diffusion pipeline folder with ``vae/``) |
            ``.pt``/``.pth`` file.
        device: where the network and its schedule go.
        dtype: dtype of the network weights (the noise schedule stays float64).
        prompt, guidance: text conditioning of a latent (Stable Diffusion) prior; pixel priors are unconditional
            and refuse them.

    Raises:
        MissingWeightsError: the weights are not present and cannot be downloaded (message says what to fetch
            and where to put it).
        VidplugError: ``spec`` matches none of the accepted forms, or the checkpoint is not a usable prior.
    """
    prior = _resolve(str(spec), prompt, guidance)
    if not prior.latent and (prompt or guidance != 1.0):
        raise VidplugError(
            f"prior '{spec}' is unconditional: prior.prompt and prior.guidance apply to Stable Diffusion priors only"
        )
    prior.to(device=device)  # the float64 schedule buffer moves but keeps its precision
    prior.net.to(dtype=dtype)
    if prior.latent and prior.vae.dtype != dtype:
        prior.vae.to(dtype=dtype)
    return prior


def _resolve(spec: str, prompt: str = "", guidance: float = 1.0) -> DiffusionPrior:
    from vidplug.prior.latent import is_latent_dir, load_latent_dir
    from vidplug.prior.latent_hub import load_latent_hub

    if spec in LATENT_REPOS:
        return load_latent_hub(LATENT_REPOS[spec].repo_id, name=spec, prompt=prompt, guidance=guidance)
    if spec == "tiny":
        return load_tiny()
    if spec in adm.ADM_WEIGHTS:
        return adm.load_named_adm(spec)
    path = Path(spec).expanduser()
    if path.is_dir() and is_latent_dir(path):
        return load_latent_dir(path, prompt=prompt, guidance=guidance)
    if path.is_dir():
        from vidplug.prior.diffusers_prior import load_diffusers_dir

        return load_diffusers_dir(path)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise VidplugError(f"prior checkpoint {path} does not exist; check the path")
        return adm.load_adm_checkpoint(path)
    if path.exists():
        raise VidplugError(f"prior '{spec}' is a file but not a .pt/.pth checkpoint; {_ACCEPTED}")
    if _HUB_ID.match(spec):
        from vidplug.prior.diffusers_prior import load_diffusers_hub

        return load_diffusers_hub(spec, prompt=prompt, guidance=guidance)
    raise VidplugError(f"unknown prior '{spec}'; {_ACCEPTED}")


def load_tiny() -> DiffusionPrior:
    """The bundled ``tiny`` prior (a DDPMPipeline-style directory: ``unet/`` + ``scheduler/``)."""
    from vidplug.prior.diffusers_prior import load_diffusers_dir

    if not (TINY_DIR / "unet" / "config.json").is_file():
        raise MissingWeightsError(
            f"the bundled 'tiny' prior is missing from {TINY_DIR} (no unet/config.json); train it with "
            "`vidplug train-prior` or reinstall vidplug, or pick another prior (adm-imagenet256, a Hub id, a directory)"
        )
    return load_diffusers_dir(TINY_DIR, name="tiny")
