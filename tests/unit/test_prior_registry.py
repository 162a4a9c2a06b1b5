"""load_prior: names, diffusers directories (both layouts), ADM state dicts, and the errors users see."""

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from vidplug import weights
from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.prior import adm, registry
from vidplug.prior.ddim import ddim_reverse
from vidplug.prior.registry import load_prior


def _unet(seed=0, levels=(8, 16, 16)):
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=levels,
        down_block_types=("DownBlock2D",) * len(levels),
        up_block_types=("UpBlock2D",) * len(levels),
        norm_num_groups=4,
    )


def _scheduler(**kw):
    # cosine schedule, 500 steps: clearly not the linear default, so a loader that ignored the config would fail
    return DDPMScheduler(num_train_timesteps=500, beta_schedule="squaredcos_cap_v2", **kw)


def test_unknown_name_lists_accepted_forms():
    with pytest.raises(VidplugError) as info:
        load_prior("stable-diffusion")
    msg = str(info.value)
    assert "\n" not in msg
    for word in ("tiny", "adm-imagenet256", "adm-ffhq256", "Hub id", "directory", ".pt"):
        assert word in msg


@pytest.mark.parametrize("name,filename", [("adm-imagenet256", "diffusion_openai.pt"), ("adm-ffhq256", "diffusion_ffhq_10m.pt")])
def test_named_adm_offline_names_file_and_target(name, filename, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as info:
        load_prior(name)
    msg = str(info.value)
    target = tmp_path / "hub" / "checkpoints" / filename
    assert filename in msg and str(target) in msg and "huggingface.co/deepinv" in msg
    assert "\n" not in msg


def test_adm_weights_are_in_the_catalog():
    catalog = weights.catalog()
    assert catalog["adm-imagenet256"].filename == "diffusion_openai.pt"
    assert catalog["adm-ffhq256"].filename == "diffusion_ffhq_10m.pt"


def _check_loaded(prior, unet, sched):
    assert prior.num_train_timesteps == 500
    torch.testing.assert_close(prior.alphas_cumprod, sched.alphas_cumprod.to(torch.float64))
    assert prior.multiple == 4 and prior.native_size == 16 and prior.channels == 3
    assert not prior.training and not any(p.requires_grad for p in prior.parameters())
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 400])
    with torch.no_grad():
        torch.testing.assert_close(prior.eps(x, t), unet.eval()(x, t).sample)


def test_diffusers_root_layout(tmp_path):
    unet, sched = _unet(), _scheduler()
    unet.save_pretrained(tmp_path / "ckpt")
    sched.save_pretrained(tmp_path / "ckpt")  # scheduler_config.json beside config.json
    prior = load_prior(str(tmp_path / "ckpt"))
    assert prior.name == "ckpt"
    _check_loaded(prior, unet, sched)


def test_diffusers_pipeline_layout(tmp_path):
    unet, sched = _unet(), _scheduler()
    DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(tmp_path / "pipe")  # unet/ + scheduler/
    assert (tmp_path / "pipe" / "unet" / "config.json").is_file()
    _check_loaded(load_prior(str(tmp_path / "pipe")), unet, sched)


def test_diffusers_dir_dtype_and_odd_sizes(tmp_path):
    _unet().save_pretrained(tmp_path / "c")
    _scheduler().save_pretrained(tmp_path / "c")
    prior = load_prior(str(tmp_path / "c"), dtype=torch.bfloat16)
    assert prior.net_dtype == torch.bfloat16 and prior.alphas_cumprod.dtype == torch.float64
    z = torch.randn(2, 3, 13, 18)  # not multiples of 4: padded and cropped inside eps
    out = ddim_reverse(z, prior, [333, 0])
    assert out.dtype == torch.float32 and out.shape == z.shape and torch.isfinite(out).all()


def test_directory_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidplugError, match="not a diffusers checkpoint"):
        load_prior(str(tmp_path / "empty"))
    _unet().save_pretrained(tmp_path / "nosched")
    with pytest.raises(VidplugError, match="scheduler_config.json is missing"):
        load_prior(str(tmp_path / "nosched"))
    _unet().save_pretrained(tmp_path / "vpred")
    _scheduler(prediction_type="v_prediction").save_pretrained(tmp_path / "vpred")
    with pytest.raises(VidplugError, match="epsilon"):
        load_prior(str(tmp_path / "vpred"))


def test_checkpoint_file_errors(tmp_path):
    with pytest.raises(VidplugError, match="does not exist"):
        load_prior(str(tmp_path / "missing.pt"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(VidplugError, match="not a guided-diffusion"):
        load_prior(str(tmp_path / "other.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(VidplugError, match="cannot read"):
        load_prior(str(tmp_path / "junk.pt"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VidplugError, match="not a .pt/.pth"):
        load_prior(str(tmp_path / "notes.txt"))


def test_hub_id_offline_not_cached(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as info:
        load_prior("vidplug-test/no-such-ddpm")
    msg = str(info.value)
    assert "vidplug-test/no-such-ddpm" in msg and str(tmp_path) in msg and "config.json" in msg


def test_tiny_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "TINY_DIR", tmp_path / "tiny")
    with pytest.raises(MissingWeightsError, match="train-prior"):
        load_prior("tiny")


@pytest.mark.slow
def test_adm_state_dict_wraps_raw_eps_network():
    from deepinv.models import DiffUNet

    torch.manual_seed(0)
    net = DiffUNet(large_model=False, pretrained=None).eval()  # random FFHQ-sized ADM (128 base channels)
    torch.nn.init.normal_(net.out[2].weight, std=0.05)  # ADM zero-initialises its last conv: make eps non-trivial
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("sqrt_")}  # as guided-diffusion saves
    assert adm.adm_config(state, "x") == {"in_channels": 3, "out_channels": 6, "large_model": False}
    prior = adm.prior_from_adm_state_dict(state, "random-adm")
    assert prior.multiple == 32 and prior.native_size == 256 and not prior.training
    assert not any(p.requires_grad for p in prior.parameters())
    torch.testing.assert_close(prior.alphas_cumprod[[0, -1]], torch.tensor([1 - 1e-4, 4.0358e-5], dtype=torch.float64),
                               rtol=1e-3, atol=0)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    with torch.no_grad():
        eps = prior.eps(x, t)
        torch.testing.assert_close(eps, net.forward_diffusion(x, t)[:, :3])  # eps half of (eps, variance)
        assert eps.abs().mean() > 0.01
        assert prior.eps(torch.randn(1, 3, 33, 20), 100).shape == (1, 3, 33, 20)
        # other weight dtypes: deepinv's float32 GroupNorms and timestep embedding must keep working
        prior.net.to(torch.float64)
        torch.testing.assert_close(prior.eps(x.double(), t), eps.double(), rtol=1e-4, atol=1e-4)
        prior.net.to(torch.bfloat16)
        out = prior.eps(x, t)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_adm_config_rejects_other_widths():
    state = {"input_blocks.0.0.weight": torch.empty(192, 3, 3, 3), "out.2.weight": torch.empty(6, 192, 3, 3)}
    with pytest.raises(VidplugError, match="base width 192"):
        adm.adm_config(state, "odd.pt")
    state["input_blocks.0.0.weight"] = torch.empty(256, 3, 3, 3)
    assert adm.adm_config(state, "big.pt")["large_model"] is True


def test_hub_id_loads_from_cache_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # the Hugging Face cache layout: models--owner--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "models--vidplug-test--tiny-ddpm"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    unet, sched = _unet(), _scheduler()
    DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(repo / "snapshots" / commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    prior = load_prior("vidplug-test/tiny-ddpm")
    assert prior.name == "vidplug-test/tiny-ddpm"
    _check_loaded(prior, unet, sched)
