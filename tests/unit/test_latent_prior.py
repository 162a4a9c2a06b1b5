"""Latent (Stable Diffusion) priors: R(z) = D(DDIM_K(z)) with a tiny random SD pipeline saved in the diffusers layout
and loaded with ``--prior DIR`` (CPU, offline, seconds)."""

import json

import pytest
import torch
from diffusers import DDIMScheduler

from tests.conftest import CountingSolver, make_translating_video
from tests.unit.test_cli import one_line_error, run
from vidplug.config import RestoreConfig, apply_overrides
from vidplug.io import read_video, write_video
from vidplug.pipeline import Models, restore_video
from vidplug.prior import load_prior
from vidplug.prior.ddim import ddim_invert, ddim_reverse, ddim_timesteps, reverse_to_unit
from vidplug.prior.latent import LatentDiffusionPrior
from vidplug.prior.latent_tiny import save_tiny_latent_pipeline
from vidplug.solver import SolverConfig, solve
from vidplug.solver.reverse import backprop_through_r, reverse_fn


@pytest.fixture(scope="module")
def sd_dirs(tmp_path_factory):
    """Tiny random SD pipelines: epsilon and v-prediction, VAE of 4 pixels per latent (2 downsamplings)."""
    root = tmp_path_factory.mktemp("sd")
    return {p: save_tiny_latent_pipeline(root / p, prediction_type=p, vae_downsamples=2)
            for p in ("epsilon", "v_prediction")}


@pytest.fixture(scope="module")
def prior(sd_dirs):
    return load_prior(str(sd_dirs["epsilon"]))


def test_folder_loads_as_a_latent_prior(prior, sd_dirs):
    assert isinstance(prior, LatentDiffusionPrior) and prior.latent
    assert prior.vae_factor == 4 and prior.multiple == 2 and prior.channels == 4
    assert prior.seed_shape((5, 3, 37, 45)) == (5, 4, 10, 12)  # ceil(37 / 4), ceil(45 / 4)
    assert prior.native_size == 32 and prior.scaling_factor == pytest.approx(0.18215)
    assert not any(p.requires_grad for p in prior.parameters())  # frozen, VAE included
    assert load_prior(str(sd_dirs["v_prediction"])).prediction_type == "v_prediction"


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_latent_ddim_matches_diffusers_float64(sd_dirs, prediction, k):
    prior = load_prior(str(sd_dirs[prediction]), dtype=torch.float64)
    prior.net.double()  # the fixed prompt embedding too
    # the saved config's schedule and prediction type; steps_offset 0 so the timesteps are vidplug's "leading" list
    # (StableDiffusionPipeline rewrites it to 1 when saving, as SD 1.5 ships it; the spacing is tested in test_ddim)
    config = DDIMScheduler.load_config(sd_dirs[prediction], subfolder="scheduler")
    sched = DDIMScheduler.from_config(config, steps_offset=0)
    assert sched.config.prediction_type == prediction
    sched.set_timesteps(k)
    sched.alphas_cumprod = prior.alphas_cumprod.clone()
    z = torch.randn((2, 4, 5, 7), generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    x = z
    with torch.no_grad():
        for t in sched.timesteps:
            out = prior.model_output(x, int(t))  # the text-conditioned UNet (padded to its multiple, cropped back)
            x = sched.step(out, t, x, eta=0.0).prev_sample
        ours = ddim_reverse(z, prior, ddim_timesteps(k, 1000, "leading"))
    assert sched.timesteps.tolist() == ddim_timesteps(k, 1000, "leading")
    torch.testing.assert_close(ours, x, atol=1e-10, rtol=0)
    assert not torch.allclose(ours, z)


def test_v_prediction_eps_is_converted(sd_dirs):
    prior = load_prior(str(sd_dirs["v_prediction"]), dtype=torch.float64)
    prior.net.double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    a = prior.alpha_bar(500)
    v = prior.model_output(x, 500)
    torch.testing.assert_close(prior.eps(x, 500), a**0.5 * v + (1 - a) ** 0.5 * x)
    torch.testing.assert_close(prior.eps(x, torch.tensor([500])), prior.eps(x, 500))


def test_gradient_reaches_z_through_the_decoder(prior):
    ts = ddim_timesteps(2)
    z = torch.randn(prior.seed_shape((1, 3, 7, 6)), dtype=torch.float64, requires_grad=True)
    prior64 = load_prior_like(prior)

    def r(seed):
        return reverse_to_unit(seed, prior64, ts, size=(7, 6))

    assert r(z).shape == (1, 3, 7, 6)  # decoder output cropped back to the odd frame size
    assert torch.autograd.gradcheck(r, (z,), eps=1e-6, atol=1e-5, fast_mode=True)
    # the gradient depends on the decoder: perturbing the decoder's last conv changes it
    (g1,) = torch.autograd.grad(r(z).square().sum(), z)
    with torch.no_grad():
        prior64.vae.decoder.conv_out.weight.mul_(1.5)
    (g2,) = torch.autograd.grad(r(z).square().sum(), z)
    assert g1.abs().sum() > 0 and not torch.allclose(g1, g2)


def load_prior_like(prior):
    """A float64 copy of ``prior`` (for gradcheck), the decoder's weights its own."""
    import copy

    twin = copy.deepcopy(prior).double()
    twin.alphas_cumprod = prior.alphas_cumprod
    return twin


@pytest.mark.parametrize("checkpoint_decoder", [False, True])
def test_micro_batched_threaded_and_checkpointed_gradients_equal_whole_chunk(prior, checkpoint_decoder):
    size = (9, 11)
    z0 = torch.randn(prior.seed_shape((4, 3, *size)), generator=torch.Generator().manual_seed(0))
    target = torch.rand(4, 3, *size, generator=torch.Generator().manual_seed(1))
    grads = []
    for micro, ckpt, workers in ((0, False, 1), (1, checkpoint_decoder, 1), (3, checkpoint_decoder, 1),
                                 (0, checkpoint_decoder, 2)):  # frame threads: the VAE decoder in each thread too
        z = z0.clone().requires_grad_()
        reverse = reverse_fn(prior, ddim_timesteps(2), size=size, checkpoint_decoder=ckpt)
        x, _ = backprop_through_r(z, reverse, lambda x: [((x - target) ** 2).sum()], micro, workers)
        assert x.shape == (4, 3, *size)
        grads.append(z.grad)
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0], atol=1e-5, rtol=1e-4)


def test_guidance_runs_prompt_and_empty_prompt(sd_dirs, prior):
    guided = load_prior(str(sd_dirs["epsilon"]), prompt="a cat", guidance=3.0)
    prompted = load_prior(str(sd_dirs["epsilon"]), prompt="a cat")
    x = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        u, c, g = prior.model_output(x, 300), prompted.model_output(x, 300), guided.model_output(x, 300)
    assert not torch.allclose(u, c)  # the prompt changes the prediction
    torch.testing.assert_close(g, u + 3.0 * (c - u), atol=1e-5, rtol=1e-5)
    assert not hasattr(guided, "text_encoder")  # the text encoder is not kept


def test_inversion_warm_start_and_shared_seeds_in_latent_space(prior):
    frames = make_translating_video(3, 12, 16)
    ts = ddim_timesteps(2)
    with torch.no_grad():
        z = ddim_invert(prior.encode_frames(frames), prior, ts)
        assert z.shape == prior.seed_shape(frames.shape)
        # in latent space the round trip R(inversion(E(x))) lands far closer to E(x) than a random seed does
        lat = prior.encode_frames(frames)
        err_inv = (ddim_reverse(z, prior, ts) - lat).pow(2).mean()
        err_rand = (ddim_reverse(torch.randn_like(z), prior, ts) - lat).pow(2).mean()
    assert err_inv < 0.5 * err_rand

    class Identity:
        input_shape = tuple(frames.shape)

        def A(self, x):  # noqa: N802
            return x

    cfg = SolverConfig(iters=4, early_stop=False, seed_mode="shared", seed_rank=1, num_steps=2)
    res = solve(frames, Identity(), prior, cfg, progress=False)
    assert res.frames.shape == frames.shape and res.z.shape == prior.seed_shape(frames.shape)
    assert res.loss_history["total"][-1] < res.loss_history["total"][0]


def _clip(tmp_path, h, w):
    path = tmp_path / "clip"
    write_video(make_translating_video(4, h, w), path, fps=10)
    return path


@pytest.mark.parametrize("task,size,extra", [
    ("inpaint", (27, 35), ["--set", "solver.init=inversion"]),
    ("sr4", (36, 44), ["--set", "solver.micro_batch=2", "--set", "solver.checkpoint=true"]),
])
def test_restore_end_to_end_at_an_odd_size(sd_dirs, tmp_path, capsys, task, size, extra):
    clip = _clip(tmp_path, *size)
    out, report = tmp_path / "o", tmp_path / "r.json"
    code, _, err = run(capsys, "restore", clip, "--simulate", "--task", task, "--prior", sd_dirs["epsilon"],
                       "--iters", 3, "--set", "solver.num_steps=2", "--semantic-weight", 0, "--pixel-weight", 0.05,
                       "--device", "cpu", "--out", out, "--report", report, "--no-progress", *extra)
    assert code == 0, err
    assert read_video(out).frames.shape == (4, 3, *size)
    data = json.loads(report.read_text())
    assert data["frames"] == 4 and data["metrics"]["psnr"] > 0


def test_interrupted_latent_run_resumes_to_the_same_result(sd_dirs, tmp_path):
    clip = _clip(tmp_path, 12, 20)
    cfg = apply_overrides(RestoreConfig(), [
        "task.name=inpaint", f"prior.name={sd_dirs['epsilon']}", "solver.iters=3", "solver.num_steps=2",
        "solver.early_stop=false", "device=cpu", "consistency.semantic_weight=0", "consistency.pixel_weight=0",
        "chunk.size=3", "chunk.overlap=1"])
    models = Models(cfg, torch.device("cpu"))
    kw = dict(simulate=True, progress=False, models=models, read={"max_frames": 7})
    full = restore_video(clip, tmp_path / "full", cfg, keep_frames=True, **kw)
    out = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        restore_video(clip, out, cfg, chunk_solver=CountingSolver(die_on=2), **kw)  # killed in the second chunk
    counting = CountingSolver()
    res = restore_video(clip, out, cfg, keep_frames=True, resume=True, chunk_solver=counting, **kw)
    assert counting.calls == len(res.chunks) - 1  # the finished chunk was not redone
    assert torch.equal(res.frames, full.frames)


def test_missing_sd_weights_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    clip = _clip(tmp_path, 16, 16)
    line = one_line_error(capsys, "restore", clip, "--simulate", "--prior", "sd15", "--out", tmp_path / "o",
                          match="Stable Diffusion prior .* cannot be downloaded")
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in line and "unet/diffusion_pytorch_model.safetensors" in line
    assert "about 3.44 GB" in line and "hf download" in line and str(tmp_path / "hf") in line and "offline" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.vidplug-work").exists()  # nothing written
    code, out, _ = run(capsys, "weights")
    assert code == 0 and "sd15-unet" in out and "sd-turbo-text-encoder" in out


def test_pixel_prior_refuses_a_prompt():
    with pytest.raises(Exception, match="unconditional"):
        load_prior("tiny", prompt="a cat")


def test_named_latent_priors_bring_their_solver_defaults():
    from vidplug.config import load_config

    turbo = load_config(overrides=["prior.name=sd-turbo"])
    assert turbo.solver.num_steps == 1 and turbo.solver.spacing == "trailing"
    assert ddim_timesteps(turbo.solver.num_steps, 1000, turbo.solver.spacing) == [999]
    sd15 = load_config(overrides=["prior.name=sd15"])
    assert sd15.solver.num_steps == 4 and sd15.solver.checkpoint_decoder is None
    assert load_config(overrides=["prior.name=sd15", "solver.num_steps=2"]).solver.num_steps == 2  # the user's wins


def test_lbfgs_on_latent_seeds_moves_them(prior):
    frames = make_translating_video(2, 12, 16)

    class Identity:
        input_shape = tuple(frames.shape)

        def A(self, x):  # noqa: N802
            return x

    cfg = SolverConfig(iters=4, early_stop=False, optimizer="lbfgs", num_steps=2)
    res = solve(frames, Identity(), prior, cfg, progress=False)
    # the L-BFGS objective is summed over the frames' elements (not the 48x fewer latent ones): the seeds move
    assert res.loss_history["total"][-1] < 0.97 * res.loss_history["total"][0]


def test_a_latent_folder_gets_the_latent_defaults_and_a_pixel_folder_none(sd_dirs, tmp_path):
    from vidplug.config import RestoreConfig, load_config

    latent = load_config(None, flags={"prior.name": str(sd_dirs["epsilon"])}).solver
    assert (latent.num_steps, latent.spacing) == (4, "leading")  # configs/priors/latent.yaml: Wang et al.'s K = 4
    assert load_config(None, ["solver.num_steps=2"], flags={"prior.name": str(sd_dirs["epsilon"])}).solver.num_steps == 2
    assert load_config(None, flags={"prior.name": "sd15"}).solver.num_steps == 4  # sd15.yaml builds on latent.yaml
    (tmp_path / "unet").mkdir()  # a pixel UNet2DModel folder has no vae/
    (tmp_path / "unet" / "config.json").write_text("{}")
    assert load_config(None, flags={"prior.name": str(tmp_path)}).solver == RestoreConfig().solver
    assert load_config(None, flags={"prior.name": "nobody/not-cached"}).solver == RestoreConfig().solver
