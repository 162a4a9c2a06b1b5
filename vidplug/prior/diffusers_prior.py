"""Priors from diffusers ``UNet2DModel`` checkpoints: a local directory or a Hugging Face Hub repository.

Two layouts are accepted, the ones diffusers itself writes:

* root: ``config.json`` + ``diffusion_pytorch_model.{safetensors,bin}`` + ``scheduler_config.json`` side by side
  (e.g. ``google/ddpm-ema-church-256``);
* pipeline: ``unet/`` and ``scheduler/`` subfolders (``DDPMPipeline.save_pretrained``; the bundled ``tiny`` prior).

The noise schedule always comes from the checkpoint's scheduler config, through ``DDPMScheduler.from_config``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.prior.base import DiffusionPrior
from vidplug.weights import offline

SCHEDULER_CONFIG = "scheduler_config.json"


class UNet2DEps(nn.Module):
    """Adapts a diffusers ``UNet2DModel`` to the prior interface: ``forward(x, t)`` returns the sample tensor."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x (N, C, H, W) in [-1, 1], t (N,) integer timesteps -> eps (N, C_out, H, W)."""
        return self.unet(x, t, return_dict=False)[0]


def prior_from_unet2d(unet: nn.Module, alphas_cumprod: Tensor, name: str) -> DiffusionPrior:
    """Wrap a diffusers ``UNet2DModel`` (epsilon prediction) and its schedule as a frozen :class:`DiffusionPrior`.

    ``multiple`` is 2 ** (number of down blocks - 1): every down block but the last halves the resolution.
    """
    cfg = unet.config
    if cfg.get("num_class_embeds") or cfg.get("class_embed_type"):
        raise VidplugError(f"prior '{name}' is class-conditional; vidplug needs an unconditional UNet2DModel")
    sample_size = cfg.sample_size
    if isinstance(sample_size, int):
        native = sample_size
    else:  # (height, width)
        native = int(sample_size[0]) if sample_size[0] == sample_size[1] else None
    prior = DiffusionPrior(
        UNet2DEps(unet),
        alphas_cumprod,
        name=name,
        multiple=2 ** (len(cfg.down_block_types) - 1),
        native_size=native,
        channels=int(cfg.in_channels),
    )
    return prior.freeze()


def alphas_from_scheduler_config(config: dict, name: str) -> Tensor:
    """``alphas_cumprod`` (num_train_timesteps,) from a diffusers scheduler config (any DDPM-family class)."""
    from diffusers import DDPMScheduler

    prediction = config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise VidplugError(
            f"prior '{name}' predicts '{prediction}', but vidplug's DDIM needs an epsilon-prediction model"
        )
    return DDPMScheduler.from_config(config).alphas_cumprod.to(torch.float64)


def _layout(root: Path) -> tuple[Path, Path] | None:
    """(unet dir, scheduler dir) of a diffusers checkpoint directory, or None when it is not one."""
    if (root / "unet" / "config.json").is_file():
        return root / "unet", root / "scheduler"
    if (root / "config.json").is_file():
        return root, root
    return None


def load_diffusers_dir(path: str | Path, name: str | None = None) -> DiffusionPrior:
    """Load a ``UNet2DModel`` + scheduler config from a local directory (root or ``unet/`` + ``scheduler/``)."""
    from diffusers import DDPMScheduler, UNet2DModel

    root = Path(path)
    name = name or root.name
    layout = _layout(root)
    if layout is None:
        raise VidplugError(
            f"{root} is not a diffusers checkpoint: expected config.json (root layout) or unet/config.json "
            "(pipeline layout); pass a directory written by save_pretrained"
        )
    unet_dir, scheduler_dir = layout
    if not (scheduler_dir / SCHEDULER_CONFIG).is_file():
        raise VidplugError(
            f"{scheduler_dir / SCHEDULER_CONFIG} is missing: the prior's noise schedule is needed; save its "
            "DDPMScheduler there (scheduler.save_pretrained)"
        )
    try:
        # low_cpu_mem_usage=False: the default warns at every load unless `accelerate` is installed; plain loading
        # (initialise, then copy the weights in) is fine for UNet2DModel priors
        unet = UNet2DModel.from_pretrained(unet_dir, low_cpu_mem_usage=False)
        config = DDPMScheduler.load_config(scheduler_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise VidplugError(f"cannot load a diffusers UNet2DModel from {unet_dir}: {exc}") from exc
    return prior_from_unet2d(unet, alphas_from_scheduler_config(config, name), name)


def load_diffusers_hub(repo_id: str, *, prompt: str = "", guidance: float = 1.0) -> DiffusionPrior:
    """Load a ``UNet2DModel`` prior from the Hugging Face Hub (downloaded once into the HF cache); a Stable Diffusion
    pipeline repository (``vae/``) goes to :func:`vidplug.prior.latent_hub.load_latent_hub` with ``prompt`` and
    ``guidance``.

    Offline (``HF_HUB_OFFLINE``/``VIDPLUG_OFFLINE``) only the cache is used; nothing cached raises
    :class:`MissingWeightsError` naming the repository, the files and the cache directory.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        # configs first (a few kB) to learn the layout, then only the weights of the UNet that is used
        configs = Path(snapshot_download(repo_id, allow_patterns=["*.json"], local_files_only=offline()))
        if (configs / "vae" / "config.json").is_file():
            from vidplug.prior.latent_hub import load_latent_hub

            return load_latent_hub(repo_id, prompt=prompt, guidance=guidance)
        layout = _layout(configs)
        if layout is None:
            raise VidplugError(f"Hub repository '{repo_id}' has no config.json or unet/config.json: not a diffusers UNet")
        sub = layout[0].relative_to(configs).as_posix()
        weights = [f"{sub}/*.safetensors", f"{sub}/*.bin"] if sub != "." else ["*.safetensors", "*.bin"]
        local = Path(
            snapshot_download(repo_id, allow_patterns=["*.json", *_prefer_safetensors(repo_id, weights)],
                              local_files_only=offline())
        )
    except OSError as exc:  # huggingface_hub's offline, not-found and HTTP errors are all OSErrors
        raise MissingWeightsError(
            f"diffusers prior '{repo_id}' is not in the Hugging Face cache ({HF_HUB_CACHE}) and cannot be "
            f"downloaded ({type(exc).__name__}); while online run `hf download {repo_id}` (config.json, "
            f"{SCHEDULER_CONFIG}, diffusion_pytorch_model.safetensors, at the root or under unet/ and scheduler/) "
            "or pass a local directory"
        ) from exc
    return load_diffusers_dir(local, name=repo_id)


def _prefer_safetensors(repo_id: str, patterns: list[str]) -> list[str]:
    """Download one weight format: safetensors when the repository has it (offline: whatever is cached)."""
    if offline():
        return patterns
    from huggingface_hub import list_repo_files

    files = list_repo_files(repo_id)
    has_safetensors = any(f.endswith(".safetensors") for f in files)
    return [p for p in patterns if p.endswith(".safetensors") == has_safetensors]
