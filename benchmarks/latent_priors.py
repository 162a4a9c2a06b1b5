"""Random-weight latent (Stable Diffusion) priors for the benchmarks, built from config dicts written here: nothing
is downloaded, and on the ``meta`` device nothing is allocated or initialised.

``sd15-random``: Stable Diffusion 1.5's UNet (859.5 M parameters), VAE (83.7 M) and schedule, with the empty prompt's
embedding replaced by zeros of its shape (1, 77, 768): the text encoder runs once per run and is freed, so it costs
neither memory nor FLOPs in the loop. ``latent-tiny-random``: the tiny pipeline of the tests (8-channel UNet and
VAE, 8 pixels per latent), for CPU runs.
"""

from __future__ import annotations

import contextlib

import torch

from vidplug.prior.latent import LatentDiffusionPrior, latent_prior_from_components
from vidplug.prior.latent_tiny import SD_BETAS, TINY_TEXT_SHAPE, TINY_UNET, tiny_vae_config

# stable-diffusion-v1-5/stable-diffusion-v1-5 unet/config.json (the keys that shape the network)
SD15_UNET = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5,
    "act_fn": "silu", "flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1, "mid_block_scale_factor": 1,
}
# vae/config.json
SD15_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "norm_num_groups": 32, "act_fn": "silu", "sample_size": 512,
    "scaling_factor": 0.18215,
}
# scheduler/scheduler_config.json (PNDMScheduler in the repo; only the betas and the prediction type are read)
SD15_SCHEDULER = {**SD_BETAS, "prediction_type": "epsilon"}
SD15_TEXT_SHAPE = (1, 77, 768)  # CLIP ViT-L/14 text encoder: 77 tokens x 768

LATENT_BENCH_PRIORS = ("sd15-random", "latent-tiny-random")


def random_latent_prior(name: str, device: torch.device) -> LatentDiffusionPrior:
    """``sd15-random`` or ``latent-tiny-random`` on ``device`` (``meta``: built there directly, shapes only)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    if name == "sd15-random":
        unet_cfg, vae_cfg, text_shape = SD15_UNET, SD15_VAE, SD15_TEXT_SHAPE
    else:
        unet_cfg, vae_cfg, text_shape = TINY_UNET, tiny_vae_config(3), TINY_TEXT_SHAPE
    # the schedule stays real (read on the host); the networks go to meta there
    with torch.device("meta") if device.type == "meta" else contextlib.nullcontext():
        unet, vae = UNet2DConditionModel(**unet_cfg), AutoencoderKL(**vae_cfg)
        cond = torch.zeros(text_shape)
    prior = latent_prior_from_components(unet, vae, SD15_SCHEDULER, name, cond)
    return prior.to(device) if device.type != "meta" else prior
