"""Shared fixtures: tiny synthetic videos and a tiny random diffusion prior (CPU, seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Tests never download: a missing weight is a skipped integration test, not a network wait.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VIDPLUG_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that sets torch's thread count (a benchmark's --threads) leaves it as it found it: the solver's
    default ``solver.frame_threads`` follows that count."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def make_translating_video(t: int = 3, h: int = 16, w: int = 16, shift: int = 1, seed: int = 0) -> torch.Tensor:
    """A smooth random texture translated by ``shift`` pixels per frame along x: (t, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 4 + 2, (w + shift * t) // 4 + 2, generator=g)
    base = torch.nn.functional.interpolate(base, size=(h, w + shift * t), mode="bicubic", align_corners=False)
    base = base.clamp(0, 1)
    frames = [base[0, :, :, i * shift : i * shift + w] for i in range(t)]
    return torch.stack(frames).contiguous()


@pytest.fixture
def tiny_video() -> torch.Tensor:
    """3 frames, 16x16, RGB in [0, 1]."""
    return make_translating_video(3, 16, 16)


def make_tiny_prior(seed: int = 0):
    """A random diffusers UNet2DModel (two levels, 8/16 channels) with DDPM's linear schedule."""
    from diffusers import UNet2DModel

    from vidplug.prior.base import linear_alphas_cumprod
    from vidplug.prior.diffusers_prior import prior_from_unet2d

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    # multiple=2 (one downsampling), frozen, eval
    return prior_from_unet2d(unet, linear_alphas_cumprod(1000), name="tiny-random")


def save_tiny_prior(path):
    """The tiny random prior saved as a diffusers directory (unet/ + scheduler/), loadable by path like `tiny`."""
    from diffusers import DDPMScheduler

    make_tiny_prior().net.unet.save_pretrained(path / "unet")  # net = UNet2DEps wrapping the diffusers model
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").save_pretrained(path / "scheduler")
    return path


@pytest.fixture
def tiny_prior():
    return make_tiny_prior()


DAVIS_SEQS = ("seq-a", "seq-b")


@pytest.fixture(scope="session")
def davis_root(tmp_path_factory) -> Path:
    """A synthetic DAVIS 2017 tree -- 2 sequences x 4 frames of 40x36 JPEGs (cropped/resized to 32x32 by the reader), val.txt."""
    root = tmp_path_factory.mktemp("davis")
    for i, name in enumerate(DAVIS_SEQS):
        folder = root / "JPEGImages" / "480p" / name
        folder.mkdir(parents=True)
        frames = make_translating_video(4, 36, 40, shift=2, seed=i)
        for t, frame in enumerate(frames):
            pixels = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{t:05d}.jpg", quality=95)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(DAVIS_SEQS) + "\n")
    return root


def tiny_run_config(*overrides: str, task: tuple[str, ...] = ("task.name=sr", "task.options.factor=2")):
    """A run config for 16x16 clips: SR x2, 6 iterations, no early stop, CPU, no consistency terms (unless
    ``overrides`` turn them on)."""
    from vidplug.config import RestoreConfig, apply_overrides

    base = [*task, "solver.iters=6", "solver.early_stop=false", "device=cpu",
            "consistency.semantic_weight=0", "consistency.pixel_weight=0"]
    return apply_overrides(RestoreConfig(), base + list(overrides))


def tiny_models(cfg, device: torch.device | None = None):
    """The networks of a run without any weights: the tiny random prior (when the method needs one), no CLIP, and
    OpenCV DIS flow when the pixel term is on."""
    from vidplug.methods import get_method
    from vidplug.models import Models

    class TinyModels(Models):
        def __init__(self, cfg, device):
            self.cfg, self.device, self.notes = cfg, device, []
            self.prior = make_tiny_prior() if get_method(cfg.method).needs_prior else None
            self.clip = None
            self.flow = self._load_flow("dis") if cfg.consistency.pixel_weight > 0 else None
            self._metrics_flow = None

    return TinyModels(cfg, device or torch.device("cpu"))


class CountingSolver:
    """The dmplug chunk solver, counting its calls; with ``die_on=n`` it raises KeyboardInterrupt on the n-th call, as
    a run killed while that chunk is being restored."""

    def __init__(self, die_on: int | None = None):
        from vidplug.methods import get_method

        self.real, self.calls, self.die_on = get_method("dmplug"), 0, die_on

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.die_on:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)
