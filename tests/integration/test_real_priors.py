"""Real priors (skipped unless their weights are on this machine): load, run DDIM, check eps means noise."""

import pytest
import torch

from vidplug import weights
from vidplug.prior import adm, registry
from vidplug.prior.ddim import ddim_reverse, ddim_timesteps
from vidplug.prior.registry import load_prior

pytestmark = pytest.mark.integration

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _available(name: str) -> bool:
    if name == "tiny":
        return (registry.TINY_DIR / "unet" / "config.json").is_file()
    return weights.find(adm.ADM_WEIGHTS[name]) is not None


@pytest.fixture(params=["tiny", "adm-ffhq256", "adm-imagenet256"], scope="module")
def real_prior(request):
    if not _available(request.param):
        pytest.skip(f"weights for '{request.param}' are not present")
    return load_prior(request.param, device=DEVICE)


def test_ddim_reverse_on_real_prior(real_prior):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 3, 64, 64, generator=g).to(DEVICE).requires_grad_(True)
    out = ddim_reverse(z, real_prior, ddim_timesteps(3, real_prior.num_train_timesteps))
    assert out.shape == z.shape and torch.isfinite(out).all()
    out.mean().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_real_prior_predicts_the_added_noise(real_prior):
    """A trained eps network recovers most of the noise added to a smooth image (checks range and wrapper)."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64), mode="bicubic")
    x0 = x0.clamp(0, 1) * 2 - 1  # [-1, 1]
    noise = torch.randn(1, 3, 64, 64, generator=g)
    t = real_prior.num_train_timesteps // 2
    a = real_prior.alpha_bar(t)
    x_t = (a**0.5 * x0 + (1 - a) ** 0.5 * noise).to(DEVICE)
    with torch.no_grad():
        eps = real_prior.eps(x_t, t).cpu()
    corr = torch.corrcoef(torch.stack([eps.flatten(), noise.flatten()]))[0, 1]
    assert corr > 0.5, f"eps prediction barely correlates with the true noise ({corr:.2f})"
