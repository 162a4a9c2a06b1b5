"""Latent diffusion priors (Stable Diffusion family): DMPlug through a VAE decoder, R(z) = D(DDIM_K(z)).

Wang et al. 2025 (arXiv 2503.14863) run DMPlug on a latent diffusion model: the seeds ``z (T, 4, H/8, W/8)`` are
VAE latents, the K-step DDIM runs in latent space with the same stateless code as the pixel priors
(:func:`vidplug.prior.ddim.ddim_reverse`), and the frames are the VAE decoder's output. The data term and the
consistency terms act on the decoded frames unchanged.

Components come from diffusers (``AutoencoderKL``, ``UNet2DConditionModel``, the scheduler config: betas,
epsilon or v-prediction) and transformers (``CLIPTokenizer`` + ``CLIPTextModel``: the prompt embedding is computed
once at load time, then the text encoder is freed). Classifier-free guidance is off unless ``guidance > 1``, which
runs the UNet on the prompt and the empty prompt, i.e. twice the UNet compute and activation memory per step.

Frames of any size: the seeds are ``ceil(H/8) x ceil(W/8)``, the UNet reflect-pads them to its own multiple
(:meth:`DiffusionPrior.eps`) and crops back, and the decoder's output is cropped to ``H x W``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from vidplug.errors import VidplugError
from vidplug.prior.base import (
    PREDICTION_TYPES,
    DiffusionPrior,
    pad_to_multiple,
    to_model_range,
    to_unit_range,
)

# files a diffusers Stable Diffusion folder must have (weights: safetensors or .bin, checked by from_pretrained;
# the tokenizer: vocab.json + merges.txt or tokenizer.json, checked by transformers)
REQUIRED_CONFIGS = ("unet/config.json", "vae/config.json", "scheduler/scheduler_config.json",
                    "text_encoder/config.json", "tokenizer/tokenizer_config.json")


class TextConditionedUNet(nn.Module):
    """A diffusers ``UNet2DConditionModel`` with the run's prompt embedding fixed.

    ``forward(x (N, C, h, w), t (N,)) -> (N, C, h, w)`` prediction (epsilon or v). With ``uncond`` (guidance > 1)
    the UNet runs once on the 2N batch [empty prompt, prompt] and returns ``u + guidance * (c - u)``.

    Args:
        unet: the UNet2DConditionModel.
        cond: ``(1, L, D)`` text encoder hidden states of the prompt.
        uncond: ``(1, L, D)`` of the empty prompt, or None for no classifier-free guidance.
        guidance: the guidance scale (used only with ``uncond``).
    """

    def __init__(self, unet: nn.Module, cond: Tensor, uncond: Tensor | None = None, guidance: float = 1.0) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("cond", cond.detach().clone(), persistent=False)
        self.register_buffer("uncond", None if uncond is None else uncond.detach().clone(), persistent=False)
        self.guidance = float(guidance)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        n = x.shape[0]
        if self.uncond is None:
            emb = self.cond.to(x.dtype).expand(n, -1, -1)  # (N, L, D)
            return self.unet(x, t, encoder_hidden_states=emb, return_dict=False)[0]
        emb = torch.cat([self.uncond.expand(n, -1, -1), self.cond.expand(n, -1, -1)]).to(x.dtype)  # (2N, L, D)
        out = self.unet(torch.cat([x, x]), torch.cat([t, t]), encoder_hidden_states=emb, return_dict=False)[0]
        uncond, cond = out.chunk(2)  # each (N, C, h, w)
        return uncond + self.guidance * (cond - uncond)


class LatentDiffusionPrior(DiffusionPrior):
    """A diffusion prior on VAE latents: seeds ``(T, C_lat, ceil(H/f), ceil(W/f))``, frames decoded by ``vae``.

    Args:
        net: ``forward(x, t)`` on latents (:class:`TextConditionedUNet`).
        vae: a diffusers ``AutoencoderKL`` (frozen with the prior).
        alphas_cumprod: ``(num_train_timesteps,)`` schedule.
        name: identifier for reports.
        scaling_factor, shift_factor: latent normalisation from the VAE config: the diffusion sees
            ``(mean - shift) * scaling``; the decoder gets ``z / scaling + shift``.
        prediction_type: ``epsilon`` or ``v_prediction`` (from the scheduler config).
        latent_channels: channels of the latents (4 for Stable Diffusion).
        vae_factor: pixels per latent along each side (8 for Stable Diffusion).
        multiple: latent sizes the UNet accepts are multiples of this (padded inside :meth:`eps`).
        native_size: training resolution in pixels (informational).
    """

    latent = True

    def __init__(self, net: nn.Module, vae: nn.Module, alphas_cumprod: Tensor, name: str, *, scaling_factor: float,
                 shift_factor: float = 0.0, prediction_type: str = "epsilon", latent_channels: int = 4,
                 vae_factor: int = 8, multiple: int = 1, native_size: int | None = None) -> None:
        super().__init__(net, alphas_cumprod, name=name, multiple=multiple, native_size=native_size,
                         channels=latent_channels)
        if prediction_type not in PREDICTION_TYPES:
            raise VidplugError(
                f"prior '{name}' predicts '{prediction_type}'; vidplug's DDIM supports {', '.join(PREDICTION_TYPES)}"
            )
        self.vae = vae
        self.prediction_type = prediction_type
        self.scaling_factor, self.shift_factor = float(scaling_factor), float(shift_factor)
        self.vae_factor = int(vae_factor)

    def seed_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(T, C, H, W)`` frames -> ``(T, C_lat, ceil(H / f), ceil(W / f))`` latent seeds."""
        t, _, h, w = frame_shape
        f = self.vae_factor
        return (t, self.channels, -(-h // f), -(-w // f))

    def decode_frames(self, x0: Tensor, size: tuple[int, int] | None = None, *, checkpoint: bool = False,
                      autocast_dtype: torch.dtype | None = None) -> Tensor:
        """Latents (N, C_lat, h, w) -> frames (N, 3, H, W) in [0, 1] (unclamped), cropped to ``size``.

        ``checkpoint``: keep only the latents for the backward pass and recompute the decoder there (its activations
        dominate R's memory at 512x512). ``autocast_dtype``: run the decoder under ``torch.autocast``.
        """
        dtype = x0.dtype
        vae_dtype = next(self.vae.parameters()).dtype

        def decode(lat: Tensor) -> Tensor:  # (N, C_lat, h, w) -> (N, 3, f*h, f*w) in [-1, 1]
            lat = (lat / self.scaling_factor + self.shift_factor).to(vae_dtype)
            if autocast_dtype is None:
                return self.vae.decode(lat, return_dict=False)[0].to(dtype)
            with torch.autocast(device_type=lat.device.type, dtype=autocast_dtype):
                return self.vae.decode(lat, return_dict=False)[0].to(dtype)

        if checkpoint and torch.is_grad_enabled():
            img = torch.utils.checkpoint.checkpoint(decode, x0, use_reentrant=False)
        else:
            img = decode(x0)
        if size is not None:
            img = img[..., : size[0], : size[1]]
        return to_unit_range(img)

    def encode_frames(self, frames: Tensor) -> Tensor:
        """Frames (N, 3, H, W) in [0, 1] -> latents (N, C_lat, ceil(H/f), ceil(W/f)): the VAE posterior's mean,
        normalised; frames are reflect-padded to a multiple of ``f`` first (what :meth:`decode_frames` crops)."""
        vae_dtype = next(self.vae.parameters()).dtype
        img = pad_to_multiple(to_model_range(frames), self.vae_factor).to(vae_dtype)
        mean = self.vae.encode(img, return_dict=False)[0].mean  # (N, C_lat, h, w) DiagonalGaussian mean
        return ((mean - self.shift_factor) * self.scaling_factor).to(frames.dtype)

    def with_net(self, net) -> LatentDiffusionPrior:
        twin = LatentDiffusionPrior(
            net, self.vae, self.alphas_cumprod, self.name, scaling_factor=self.scaling_factor,
            shift_factor=self.shift_factor, prediction_type=self.prediction_type, latent_channels=self.channels,
            vae_factor=self.vae_factor, multiple=self.multiple, native_size=self.native_size,
        )
        return twin


def is_latent_dir(root: Path) -> bool:
    """True when ``root`` looks like a diffusers Stable Diffusion folder (``unet/`` and ``vae/`` configs)."""
    return (root / "unet" / "config.json").is_file() and (root / "vae" / "config.json").is_file()


def prompt_embeddings(root: Path, prompt: str, with_empty: bool) -> tuple[Tensor, Tensor | None]:
    """Text encoder hidden states ``(1, L, D)`` of ``prompt`` (and of ``""`` when ``with_empty``), computed once on
    the CPU in float32 from ``root/tokenizer`` and ``root/text_encoder``; the encoder is freed on return."""
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar at every run is noise
    try:
        encoder = CLIPTextModel.from_pretrained(root / "text_encoder", dtype=torch.float32).eval()
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    texts = [prompt, ""] if with_empty else [prompt]
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids  # (1 or 2, L)
    with torch.no_grad():
        hidden = encoder(ids).last_hidden_state  # (1 or 2, L, D), as StableDiffusionPipeline.encode_prompt
    del encoder
    return hidden[:1], (hidden[1:] if with_empty else None)


def load_latent_dir(path: str | Path, name: str | None = None, *, prompt: str = "",
                    guidance: float = 1.0) -> LatentDiffusionPrior:
    """Load a Stable Diffusion prior from a diffusers-layout folder (``StableDiffusionPipeline.save_pretrained``).

    Args:
        path: folder with ``unet/ vae/ scheduler/ text_encoder/ tokenizer/``.
        name: identifier for reports (default: the folder name).
        prompt: text the UNet is conditioned on (default empty, as DMPlug-style restoration).
        guidance: classifier-free guidance scale; 1 = off (> 1 doubles the UNet's compute and activations).
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    root = Path(path)
    name = name or root.name
    missing = [f for f in REQUIRED_CONFIGS if not (root / f).is_file()]
    if missing:
        raise VidplugError(f"{root} is not a complete diffusers Stable Diffusion folder: missing {', '.join(missing)}")
    if not (math.isfinite(guidance) and guidance >= 1.0):
        raise VidplugError(f"prior.guidance must be >= 1 (1 = no classifier-free guidance), got {guidance}")
    try:
        # low_cpu_mem_usage=False as for the pixel priors: no accelerate needed, no warning at every load
        unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", low_cpu_mem_usage=False)
        vae = AutoencoderKL.from_pretrained(root, subfolder="vae", low_cpu_mem_usage=False)
        sched = DDPMScheduler.load_config(root / "scheduler")
        cond, uncond = prompt_embeddings(root, prompt, with_empty=guidance > 1.0)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise VidplugError(f"cannot load a Stable Diffusion prior from {root}: {str(exc).splitlines()[0]}") from exc
    return latent_prior_from_components(unet, vae, sched, name, cond, uncond, guidance)


def latent_prior_from_components(unet: nn.Module, vae: nn.Module, scheduler_config: dict, name: str, cond: Tensor,
                                 uncond: Tensor | None = None, guidance: float = 1.0) -> LatentDiffusionPrior:
    """A frozen :class:`LatentDiffusionPrior` from a ``UNet2DConditionModel``, an ``AutoencoderKL``, a scheduler
    config (betas, ``prediction_type``) and the prompt embedding ``cond (1, L, D)`` (``uncond`` for guidance)."""
    from diffusers import DDPMScheduler

    alphas = DDPMScheduler.from_config(scheduler_config).alphas_cumprod.to(torch.float64)
    ucfg, vcfg = unet.config, vae.config
    vae_factor = 2 ** (len(vcfg.block_out_channels) - 1)
    sample = ucfg.sample_size if isinstance(ucfg.sample_size, int) else None
    prior = LatentDiffusionPrior(
        TextConditionedUNet(unet, cond, uncond, guidance), vae, alphas, name,
        scaling_factor=vcfg.scaling_factor, shift_factor=vcfg.get("shift_factor") or 0.0,
        prediction_type=scheduler_config.get("prediction_type", "epsilon"), latent_channels=int(ucfg.in_channels),
        vae_factor=vae_factor, multiple=2 ** (len(ucfg.down_block_types) - 1),
        native_size=None if sample is None else sample * vae_factor,
    )
    return prior.freeze()
