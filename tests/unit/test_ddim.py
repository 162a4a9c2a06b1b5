"""The differentiable DDIM reverse process against diffusers' DDIMScheduler, plus gradients and options."""

import pytest
import torch
from diffusers import DDIMScheduler

from tests.conftest import make_tiny_prior
from vidplug.errors import VidplugError
from vidplug.prior.ddim import ddim_reverse, ddim_timesteps, reverse_to_unit


def _scheduler(spacing="leading", clip_sample=False):
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing=spacing,
        clip_sample=clip_sample,
        prediction_type="epsilon",
    )


def _seed(shape=(2, 3, 16, 16), dtype=torch.float32, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_dmplug_timesteps():
    assert ddim_timesteps(3) == [666, 333, 0]
    assert ddim_timesteps(3, 1000, "leading") == [666, 333, 0]


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 50])
def test_timesteps_match_diffusers(spacing, k):
    sched = _scheduler(spacing)
    sched.set_timesteps(k)
    assert ddim_timesteps(k, 1000, spacing) == sched.timesteps.tolist()


@pytest.mark.parametrize("args", [(0, 1000, "leading"), (1001, 1000, "leading"), (3, 1000, "karras")])
def test_bad_timestep_requests(args):
    with pytest.raises(VidplugError):
        ddim_timesteps(*args)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("eta,clamp", [(0.0, False), (0.0, True), (0.7, False)])
def test_matches_diffusers_ddim_float64(k, eta, clamp):
    prior = make_tiny_prior().double()
    unet = prior.net.unet
    sched = _scheduler(clip_sample=clamp)
    sched.set_timesteps(k)
    sched.alphas_cumprod = prior.alphas_cumprod.clone()  # the same float64 schedule on both sides
    z = _seed(dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    noise = [torch.randn(z.shape, generator=g, dtype=torch.float64) for _ in range(k)]

    x = z
    with torch.no_grad():
        for i, t in enumerate(sched.timesteps):
            eps = unet(x, t).sample
            x = sched.step(eps, t, x, eta=eta, variance_noise=noise[i] if eta else None).prev_sample
        ours = ddim_reverse(z, prior, ddim_timesteps(k), eta=eta, clamp=clamp, noise=noise if eta else None)

    assert ours.dtype == torch.float64 and ours.shape == z.shape
    torch.testing.assert_close(ours, x, atol=1e-10, rtol=0)
    assert not torch.allclose(ours, z)  # the network did something


@pytest.mark.parametrize("k", [1, 3])
def test_gradient_reaches_seed(k):
    prior = make_tiny_prior()
    z = _seed().requires_grad_(True)
    out = ddim_reverse(z, prior, ddim_timesteps(k))
    out.square().mean().backward()
    assert torch.isfinite(z.grad).all()
    assert z.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in prior.parameters())  # the network stays fixed


def test_checkpoint_same_output_and_gradient():
    prior = make_tiny_prior()
    grads, outs = [], []
    for checkpoint in (False, True):
        z = _seed().requires_grad_(True)
        out = ddim_reverse(z, prior, ddim_timesteps(3), checkpoint=checkpoint)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append(z.grad)
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])


def test_checkpoint_replays_same_noise_with_eta():
    prior = make_tiny_prior()
    outs = []
    for checkpoint in (False, True):
        z = _seed().requires_grad_(True)
        out = ddim_reverse(z, prior, ddim_timesteps(3), eta=1.0, noise=torch.Generator().manual_seed(5),
                           checkpoint=checkpoint)
        out.sum().backward()
        outs.append((out.detach(), z.grad))
    torch.testing.assert_close(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1])


def test_clamp_bounds_output_and_zeroes_clipped_gradients():
    prior = make_tiny_prior()
    z = (3 * _seed()).requires_grad_(True)  # one step at t=0 returns ~z, far outside [-1, 1]
    free = ddim_reverse(z, prior, [0])
    assert free.abs().max() > 1.0  # no clamping by default
    clamped = ddim_reverse(z, prior, [0], clamp=True)
    assert clamped.min() >= -1.0 and clamped.max() <= 1.0
    outside = free.detach().abs() > 1.0
    # a clipped output pixel sends no gradient anywhere; an unclipped one does
    (g_out,) = torch.autograd.grad(clamped[outside].sum(), z, retain_graph=True)
    (g_in,) = torch.autograd.grad(clamped[~outside].sum(), z)
    assert (g_out == 0).all() and (g_in != 0).any()


def test_odd_spatial_size_keeps_shape():
    prior = make_tiny_prior()  # multiple = 2
    assert prior.multiple == 2
    z = _seed((3, 3, 15, 17))
    out = ddim_reverse(z, prior, ddim_timesteps(2))
    assert out.shape == (3, 3, 15, 17) and torch.isfinite(out).all()


def test_autocast_runs_network_in_bfloat16_keeps_float32():
    prior = make_tiny_prior()
    z = _seed()
    ref = ddim_reverse(z, prior, ddim_timesteps(3))
    out = ddim_reverse(z, prior, ddim_timesteps(3), autocast_dtype=torch.bfloat16)
    assert out.dtype == torch.float32
    assert not torch.equal(out, ref)  # the network really ran in bfloat16
    torch.testing.assert_close(out, ref, atol=0.1, rtol=0.05)


def test_eta_needs_noise_and_is_reproducible():
    prior = make_tiny_prior()
    z = _seed()
    with pytest.raises(VidplugError, match="noise"):
        ddim_reverse(z, prior, ddim_timesteps(3), eta=0.5)
    a = ddim_reverse(z, prior, ddim_timesteps(3), eta=0.5, noise=torch.Generator().manual_seed(0))
    b = ddim_reverse(z, prior, ddim_timesteps(3), eta=0.5, noise=torch.Generator().manual_seed(0))
    c = ddim_reverse(z, prior, ddim_timesteps(3), eta=0.5, noise=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(VidplugError, match="one per timestep"):
        ddim_reverse(z, prior, ddim_timesteps(3), eta=0.5, noise=[torch.zeros_like(z)])


@pytest.mark.parametrize("timesteps", [[], [333, 666], [1000, 0], [-1], [5, 5]])
def test_bad_timesteps_rejected(timesteps):
    with pytest.raises(VidplugError, match="timestep"):
        ddim_reverse(_seed(), make_tiny_prior(), timesteps)


def test_reverse_to_unit_is_model_range_mapped():
    prior = make_tiny_prior()
    z = _seed()
    torch.testing.assert_close(reverse_to_unit(z, prior, [666, 0]), (ddim_reverse(z, prior, [666, 0]) + 1) / 2)


def test_ddim_inversion_is_a_warm_start_for_the_reverse_process():
    from vidplug.prior.ddim import ddim_invert

    prior = make_tiny_prior()
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1
    ts = ddim_timesteps(3)
    z = ddim_invert(x0, prior, ts)
    assert z.shape == x0.shape and torch.isfinite(z).all() and not z.requires_grad
    # on the way back the round trip lands far closer to x0 than a random seed does
    err_inv = (ddim_reverse(z, prior, ts) - x0).pow(2).mean()
    err_rand = (ddim_reverse(torch.randn_like(x0), prior, ts) - x0).pow(2).mean()
    assert err_inv < 0.5 * err_rand


def test_fixed_point_inversion_beats_plain_inversion():
    from vidplug.prior.ddim import ddim_invert

    prior = make_tiny_prior()
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1
    ts = ddim_timesteps(3)
    plain = (ddim_reverse(ddim_invert(x0, prior, ts, fixed_point_iters=1), prior, ts) - x0).pow(2).mean()
    fixed = (ddim_reverse(ddim_invert(x0, prior, ts, fixed_point_iters=10), prior, ts) - x0).pow(2).mean()
    assert fixed < 0.5 * plain
