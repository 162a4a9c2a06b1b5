"""A tiny random Stable Diffusion pipeline folder (diffusers layout), for tests and CPU benchmarks of latent priors.

Random weights, a few channels: it restores nothing well, but it exercises every piece a real SD prior uses
(``AutoencoderKL`` with downsampling, ``UNet2DConditionModel`` with cross-attention, ``CLIPTextModel`` and a
``CLIPTokenizer``), saved by ``StableDiffusionPipeline.save_pretrained`` and loaded back with ``--prior DIR``. The
tokenizer's vocabulary (letters and the two special tokens, no merges) is written here because no real one can be
downloaded offline.
"""

from __future__ import annotations

import json
import string
import tempfile
import warnings
from pathlib import Path

import torch


def _tokenizer(max_length: int):
    from transformers import CLIPTokenizer

    vocab = ["<|startoftext|>", "<|endoftext|>", *string.ascii_lowercase, *(c + "</w>" for c in string.ascii_lowercase)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        (src / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
        (src / "merges.txt").write_text("#version: 0.2\n")
        tok = CLIPTokenizer(str(src / "vocab.json"), str(src / "merges.txt"), model_max_length=max_length)
    return tok, len(vocab)


SD_BETAS = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
TINY_UNET = {  # UNet2DConditionModel keywords: two levels (latent multiple 2), cross-attention on 8-dim text
    "sample_size": 8, "in_channels": 4, "out_channels": 4, "block_out_channels": (8, 16), "layers_per_block": 1,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"), "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 8, "attention_head_dim": 2, "norm_num_groups": 4,
}
TINY_TEXT_SHAPE = (1, 8, 8)  # (1, L, D) prompt embedding of the tiny text encoder


def tiny_vae_config(downsamples: int = 1) -> dict:
    """AutoencoderKL keywords: 8 channels, ``downsamples`` halvings (2 ** downsamples pixels per latent)."""
    n = downsamples + 1
    return {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (8,) * n,
            "down_block_types": ("DownEncoderBlock2D",) * n, "up_block_types": ("UpDecoderBlock2D",) * n,
            "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 16}


def save_tiny_latent_pipeline(root: str | Path, *, prediction_type: str = "epsilon", vae_downsamples: int = 1,
                              seed: int = 0) -> Path:
    """Write a tiny random SD pipeline to ``root`` (``unet/ vae/ scheduler/ text_encoder/ tokenizer/``,
    ``model_index.json``) and return ``root``.

    Args:
        prediction_type: the scheduler's ``epsilon`` or ``v_prediction``.
        vae_downsamples: the VAE halves the resolution this many times (SD: 3, i.e. 8 pixels per latent).
        seed: torch seed of the random weights.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(root)
    torch.manual_seed(seed)
    tokenizer, vocab_size = _tokenizer(max_length=TINY_TEXT_SHAPE[1])
    _, length, dim = TINY_TEXT_SHAPE
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=dim, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=length, projection_dim=dim, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    unet = UNet2DConditionModel(**TINY_UNET)
    vae = AutoencoderKL(**tiny_vae_config(vae_downsamples))
    # SD's schedule, steps_offset 0 so the DDIM timesteps are vidplug's "leading" (diffusers warns that SD
    # checkpoints use 1, and StableDiffusionPipeline saves 1; irrelevant here, so its warnings are silenced)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    scheduler = DDIMScheduler(**SD_BETAS, prediction_type=prediction_type, clip_sample=False, set_alpha_to_one=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same steps_offset notice, as a deprecation warning
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    diffusers_logging.set_verbosity(verbosity)
    pipe.save_pretrained(root)
    return root
