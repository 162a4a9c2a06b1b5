"""ADM (openai guided-diffusion) priors through deepinv's ``DiffUNet``.

Two published checkpoints are named, both with guided-diffusion's linear beta schedule (1e-4 .. 0.02, T = 1000)
and a learned variance (6 output channels: eps then variance; :class:`DiffusionPrior` keeps the eps half):

* ``adm-imagenet256``: the 256x256 unconditional ImageNet model of Dhariwal & Nichol (``256x256_diffusion_uncond.pt``,
  256 base channels, ``DiffUNet(large_model=True)``);
* ``adm-ffhq256``: the FFHQ model of DPS, used by DMPlug (``ffhq_10m.pt``, 128 base channels,
  ``DiffUNet(large_model=False)``).

Both are fetched from deepinv's mirror into the torch hub checkpoint folder, the same file deepinv's
``pretrained="download"`` uses, so a copy downloaded by either is found by both. Any other guided-diffusion
state dict with one of these two configurations loads from a ``.pt`` path.

We call ``DiffUNet.forward_diffusion`` (the raw eps network, timesteps as a (N,) tensor), not ``forward``: the
latter defaults to ``type_t="noise_level"`` (a [0, 1] denoiser that maps sigma to a timestep and clamps) and pads
circularly itself.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from vidplug.errors import VidplugError
from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod
from vidplug.weights import WeightSpec, register, require, torch_hub_checkpoints

_DEEPINV_MIRROR = "https://huggingface.co/deepinv/diffunet/resolve/main/"

ADM_WEIGHTS = {
    "adm-imagenet256": register(
        WeightSpec(
            name="adm-imagenet256",
            filename="diffusion_openai.pt",
            url=_DEEPINV_MIRROR + "diffusion_openai.pt",
            size_bytes=None,  # exact size not pinned, so downloads are not size-checked
            approx_bytes=2_100_000_000,
            description="ADM ImageNet 256x256 unconditional prior (guided-diffusion 256x256_diffusion_uncond.pt, ~2.1 GB)",
            cache_dir=torch_hub_checkpoints,
        )
    ),
    "adm-ffhq256": register(
        WeightSpec(
            name="adm-ffhq256",
            filename="diffusion_ffhq_10m.pt",
            url=_DEEPINV_MIRROR + "diffusion_ffhq_10m.pt",
            size_bytes=None,
            approx_bytes=357_000_000,
            description="ADM FFHQ 256x256 prior (DPS/DMPlug ffhq_10m.pt, ~357 MB)",
            cache_dir=torch_hub_checkpoints,
        )
    ),
}

# DiffUNet's base width -> its large_model flag (the two configurations deepinv builds)
_LARGE_BY_WIDTH = {256: True, 128: False}
# channel_mult (1, 1, 2, 2, 4, 4): five of the six levels end in a downsampling
ADM_MULTIPLE = 32


class ADMEps(nn.Module):
    """Adapts deepinv's ``DiffUNet`` to ``forward(x, t)`` -> (N, 6, H, W) raw output (eps, variance)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        # deepinv feeds a float32 timestep embedding to time_embed; match its weights when run in another dtype
        net.time_embed.register_forward_pre_hook(lambda m, args: (args[0].to(m[0].weight.dtype), *args[1:]))

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        # GroupNorm32 upcasts its input to float32 by design (guided-diffusion's mixed precision), so its weights
        # must stay float32 whatever dtype the convolutions are moved to
        for m in self.net.modules():
            if isinstance(m, nn.GroupNorm):
                super(nn.GroupNorm, m)._apply(lambda p: p.float() if p.is_floating_point() else p)
        return self

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x (N, 3, H, W) in [-1, 1], H and W multiples of 32; t (N,) integer timesteps."""
        # forward_diffusion casts its input to the plain attribute ``dtype``, which .to(dtype) does not update
        self.net.dtype = x.dtype
        return self.net.forward_diffusion(x, t)


def adm_config(state_dict: dict[str, Tensor], source: str) -> dict:
    """DiffUNet keyword arguments for a guided-diffusion state dict (read from tensor shapes only)."""
    first, last = state_dict.get("input_blocks.0.0.weight"), state_dict.get("out.2.weight")
    if first is None or last is None:
        raise VidplugError(
            f"{source} is not a guided-diffusion (ADM) UNet state dict (no input_blocks.0.0.weight / out.2.weight); "
            "pass a diffusers directory or hub id instead"
        )
    if "label_emb.weight" in state_dict:
        raise VidplugError(f"{source} is class-conditional; vidplug needs an unconditional ADM checkpoint")
    width = int(first.shape[0])
    if width not in _LARGE_BY_WIDTH:
        raise VidplugError(
            f"{source} has base width {width}; deepinv's DiffUNet builds only 256 (ImageNet) or 128 (FFHQ)"
        )
    return {"in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]), "large_model": _LARGE_BY_WIDTH[width]}


def prior_from_adm_state_dict(state_dict: dict[str, Tensor], name: str) -> DiffusionPrior:
    """Build ``DiffUNet`` for ``state_dict``, load it and wrap it as a frozen :class:`DiffusionPrior`."""
    from deepinv.models import DiffUNet

    config = adm_config(state_dict, name)
    net = DiffUNet(pretrained=None, **config)
    # strict=False only for deepinv's own denoising buffers, which guided-diffusion files do not carry
    result = net.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("sqrt_1m_alphas_cumprod", "sqrt_alphas_cumprod"))]
    if missing or result.unexpected_keys:
        raise VidplugError(
            f"{name} does not match deepinv DiffUNet(large_model={config['large_model']}): missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}; use a 256x256 guided-diffusion checkpoint"
        )
    prior = DiffusionPrior(
        ADMEps(net),
        linear_alphas_cumprod(1000, 1e-4, 0.02),
        name=name,
        multiple=ADM_MULTIPLE,
        native_size=256,
        channels=config["in_channels"],
    )
    return prior.freeze()


def load_adm_checkpoint(path: str | Path, name: str | None = None) -> DiffusionPrior:
    """Load a guided-diffusion ``.pt``/``.pth`` state dict file into deepinv's ``DiffUNet``."""
    path = Path(path)
    try:
        try:
            # mmap: the 2 GB ImageNet file is paged in while copying into the network, not read twice
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; the file is unusable either way
        raise VidplugError(f"cannot read {path} as a PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict):
        for wrapper in ("ema", "state_dict", "model"):  # common training-checkpoint nestings
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
        state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel prefix
    else:
        raise VidplugError(f"{path} holds a {type(state).__name__}, not a state dict")
    return prior_from_adm_state_dict(state, name or path.name)


def load_named_adm(key: str) -> DiffusionPrior:
    """Load ``adm-imagenet256`` or ``adm-ffhq256``, downloading it when allowed (MissingWeightsError offline)."""
    return load_adm_checkpoint(require(ADM_WEIGHTS[key]), name=key)
