"""Real Stable Diffusion priors (skipped unless their weights are in the Hugging Face cache): load, R(z) = D(DDIM(z))
with gradients at an odd frame size, and the VAE round trip."""

import pytest
import torch

from vidplug import weights
from vidplug.prior.ddim import ddim_timesteps, reverse_to_unit
from vidplug.prior.registry import load_prior

pytestmark = pytest.mark.integration

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _available(name: str) -> bool:
    specs = weights.catalog()
    return all(weights.find(specs[f"{name}-{part}"]) for part in ("unet", "vae", "text-encoder"))


@pytest.fixture(params=["sd15", "sd-turbo"], scope="module")
def sd_prior(request):
    if not _available(request.param):
        pytest.skip(f"weights for '{request.param}' are not in the Hugging Face cache (see `vidplug weights`)")
    return load_prior(request.param, device=DEVICE)


def test_reverse_process_through_the_decoder(sd_prior):
    size = (72, 100)  # not multiples of 8 or of the UNet's 64
    z = torch.randn(sd_prior.seed_shape((1, 3, *size)), generator=torch.Generator().manual_seed(0))
    z = z.to(DEVICE).requires_grad_()
    steps = 1 if sd_prior.name == "sd-turbo" else 4
    spacing = "trailing" if sd_prior.name == "sd-turbo" else "leading"
    x = reverse_to_unit(z, sd_prior, ddim_timesteps(steps, sd_prior.num_train_timesteps, spacing), size=size)
    assert x.shape == (1, 3, *size) and torch.isfinite(x).all()
    x.mean().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_vae_round_trip_keeps_the_image(sd_prior):
    g = torch.Generator().manual_seed(1)
    frames = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64), mode="bicubic")
    frames = frames.clamp(0, 1).to(DEVICE)
    with torch.no_grad():
        back = sd_prior.decode_frames(sd_prior.encode_frames(frames), size=(64, 64))
    psnr = -10 * torch.log10(((back.clamp(0, 1) - frames) ** 2).mean())
    assert psnr > 25, f"VAE round trip at {psnr:.1f} dB"
