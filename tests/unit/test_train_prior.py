"""`vidplug train-prior`: multi-scale crops, a few training steps on tiny PNGs, exact resume, bad input, and the
bundled `tiny` prior (when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidplug.cli import main
from vidplug.errors import VidplugError
from vidplug.prior.patches import FrameSource, PatchSampler, load_sources
from vidplug.prior.registry import TINY_DIR
from vidplug.prior.train import TrainConfig, train_prior

TINY_PRIOR = TINY_DIR


def _write_pngs(folder: Path, n: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _tiny_config(**overrides) -> TrainConfig:
    base = dict(size=16, steps=3, batch=2, channels=(8, 16), norm_groups=4, warmup=2, save_every=2,
                sample_every=0, num_samples=4, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


# ---- crops -------------------------------------------------------------------------------------------------------


def test_patch_sampler_shapes_range_and_determinism():
    frames = [torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8), torch.randint(0, 256, (3, 10, 12), dtype=torch.uint8)]
    sampler = PatchSampler([FrameSource("a", frames[:1]), FrameSource("b", frames[1:])], size=16)
    a = sampler.sample(6, torch.Generator().manual_seed(1))
    b = sampler.sample(6, torch.Generator().manual_seed(1))
    c = sampler.sample(6, torch.Generator().manual_seed(2))
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_patch_sampler_scale_one_without_flip_cuts_exact_pixels():
    frame = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    sampler = PatchSampler([FrameSource("a", [frame])], size=8, scale_range=(1.0, 1.0), flip=False)
    patch = (sampler.sample(1, torch.Generator().manual_seed(0))[0] * 255).round().to(torch.uint8)
    windows = frame.unfold(1, 8, 1).unfold(2, 8, 1)  # (3, 13, 17, 8, 8): every 8x8 window
    assert any(torch.equal(windows[:, i, j], patch) for i in range(13) for j in range(17))


def test_load_sources_reads_folders_images_and_videos(tmp_path):
    from vidplug.io import write_video

    folder = _write_pngs(tmp_path / "imgs", n=4)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "odd_size.png")  # photos may differ in size
    single = _write_pngs(tmp_path / "single", n=1, h=24, w=40) / "000.png"
    video = tmp_path / "clip.mp4"
    write_video(torch.rand(4, 3, 32, 32), video, fps=10)
    sources = load_sources([folder, single, video], stride=2)
    assert [len(s.frames) for s in sources] == [3, 1, 2]
    assert sources[1].frames[0].shape == (3, 24, 40) and sources[1].frames[0].dtype == torch.uint8


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "nothing"])
def test_load_sources_bad_input_is_one_line_error(tmp_path, kind):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    data = {"missing": [tmp_path / "nope"], "empty": [tmp_path / "empty"], "text": [tmp_path / "notes.txt"],
            "nothing": []}[kind]
    with pytest.raises(VidplugError) as err:
        load_sources(data)
    assert "\n" not in str(err.value)


# ---- training ----------------------------------------------------------------------------------------------------


def test_train_prior_cli_writes_loadable_diffusers_prior(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    data = _write_pngs(tmp_path / "data")
    out = tmp_path / "prior"
    code = main(["train-prior", str(data), "--out", str(out), "--size", "16", "--steps", "3", "--batch", "2",
                 "--channels", "8,16", "--norm-groups", "4", "--save-every", "2", "--device", "cpu", "--no-progress"])
    assert code == 0
    unet = UNet2DModel.from_pretrained(out / "unet")
    scheduler = DDPMScheduler.from_pretrained(out / "scheduler")
    assert tuple(unet.config.block_out_channels) == (8, 16)
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.prediction_type == "epsilon"
    assert torch.allclose(scheduler.betas[[0, -1]], torch.tensor([1e-4, 0.02]))
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3 and len(state["losses"]) == 3
    # the exported weights are the EMA weights of the checkpoint
    ema = state["ema"]
    assert all(torch.equal(v, ema[k]) for k, v in unet.state_dict().items())
    with Image.open(out / "samples.png") as img:
        assert img.width > 16 and img.height > 16
    card = (out / "README.md").read_text()
    assert "- steps: 3" in card and str(data) in card and "train-prior" in card and "--channels 8,16" in card


@pytest.mark.slow
def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path):
    data = _write_pngs(tmp_path / "data")
    straight = train_prior([data], tmp_path / "a", _tiny_config(steps=4), progress=False)
    train_prior([data], tmp_path / "b", _tiny_config(steps=2), progress=False)
    resumed = train_prior([data], tmp_path / "b", _tiny_config(steps=4), resume=True, progress=False)
    assert straight.steps == resumed.steps == 4
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert b["step"] == 4
    assert a["losses"] == pytest.approx(b["losses"], rel=1e-5)
    for key in a["ema"]:
        assert torch.allclose(a["ema"][key], b["ema"][key], atol=1e-6), key


def test_time_limit_stops_publishes_and_names_the_steps_that_reproduce_it(tmp_path, monkeypatch):
    import vidplug.prior.train as train_module

    clock = iter(range(0, 10_000, 30))  # every read of the clock is 30 s later: the 1-minute limit ends step 2
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: float(next(clock)))
    data = _write_pngs(tmp_path / "data")
    result = train_prior([data], tmp_path / "p", _tiny_config(steps=100, save_every=50, time_limit=1.0),
                         progress=False)
    assert result.steps == 2
    state = torch.load(tmp_path / "p" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2  # published at the stop, though save_every is 50
    assert (tmp_path / "p" / "samples.png").is_file()
    card = (tmp_path / "p" / "README.md").read_text()
    assert "- steps: 2 (stopped by the time limit before the 100 asked for" in card and "`--steps 2` repeats" in card
    # without the limit the run trains on; its checkpoints part-way are not said to be stopped
    cards = []
    monkeypatch.setattr(train_module, "atomic_write_text", lambda path, text: cards.append(text))
    full = train_prior([data], tmp_path / "q", _tiny_config(steps=3, save_every=1), progress=False)
    assert full.steps == 3 and len(cards) == 3 and not any("time limit" in c for c in cards)
    assert "- steps: 1\n" in cards[0]
    with pytest.raises(VidplugError, match="--time-limit must be a positive"):
        train_prior([data], tmp_path / "r", _tiny_config(time_limit=0.0), progress=False)
    assert not (tmp_path / "r").exists()


def test_patch_sampler_to_device_keeps_the_sequence_of_crops():
    frames = [torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)]
    meta = PatchSampler([FrameSource("a", list(frames))], size=16)
    assert meta.to("meta") is meta and meta.sources[0].frames[0].device.type == "meta"
    moved = PatchSampler([FrameSource("a", list(frames))], size=16)
    before = moved.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(moved.to("cpu").sample(4, torch.Generator().manual_seed(3)), before)


def test_train_prior_refuses_wrong_resume_and_overwrite(tmp_path):
    data = _write_pngs(tmp_path / "data")
    with pytest.raises(VidplugError, match="--resume"):
        train_prior([data], tmp_path / "p", _tiny_config(), resume=True, progress=False)
    train_prior([data], tmp_path / "p", _tiny_config(steps=1), progress=False)
    with pytest.raises(VidplugError, match="exists"):
        train_prior([data], tmp_path / "p", _tiny_config(), progress=False)
    with pytest.raises(VidplugError, match="architecture"):
        train_prior([data], tmp_path / "p", _tiny_config(channels=(8, 8)), resume=True, progress=False)


def test_cli_settings_come_from_yaml_then_flags_then_set(tmp_path, capsys):
    data = _write_pngs(tmp_path / "data")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("size: 16\nsteps: 5\nbatch: 2\nchannels: [8, 16]\nnorm_groups: 4\nema_decay: 0.5\n")
    out = tmp_path / "prior"
    code = main(["train-prior", str(data), "--out", str(out), "--config", str(recipe), "--steps", "2",
                 "--set", "ema_decay=0.9", "--device", "cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2  # the flag beats the YAML
    assert state["config"]["ema_decay"] == 0.9 and state["config"]["size"] == 16  # --set beats both; YAML kept
    assert "--steps 2" in (out / "README.md").read_text()  # the card spells out the resolved recipe
    code = main(["train-prior", str(data), "--out", str(tmp_path / "o"), "--set", "ema_decay=high"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "config key 'ema_decay' must be a number" in err


def test_bundled_training_recipe_loads():
    from vidplug.prior.train import TrainConfig
    from vidplug.typed import from_dict, load_with_bases

    recipe = from_dict(TrainConfig, load_with_bases(Path(__file__).resolve().parents[2] / "configs/train/tiny.yaml"))
    assert recipe.size == 64 and recipe.channels == (16, 32, 64, 128) and recipe.steps == 3500


def test_cli_bad_data_exits_2_with_one_line(tmp_path, capsys):
    code = main(["train-prior", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not exist" in err and "\n" not in err


# ---- the bundled prior ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (TINY_PRIOR / "unet").is_dir(), reason="bundled tiny prior not present")
def test_bundled_tiny_prior_loads_offline_and_runs_on_odd_sizes():
    from vidplug.prior import load_prior

    prior = load_prior("tiny")  # conftest sets HF_HUB_OFFLINE / VIDPLUG_OFFLINE
    unet = prior.net.unet
    assert sum(p.numel() for p in unet.parameters()) < 5_000_000
    assert not any("attn" in t.lower() for t in unet.config.down_block_types)  # fully convolutional
    assert (TINY_PRIOR / "README.md").is_file() and (TINY_PRIOR / "samples.png").is_file()
    x = torch.randn(1, 3, 40, 72, generator=torch.Generator().manual_seed(0))  # not a multiple of the 64 crop
    with torch.no_grad():
        eps = prior.eps(x, 500)
        eps_odd = prior.eps(x[..., :37, :70], 500)  # not a multiple of the downsampling factor: padded inside
        eps_noise = prior.eps(x, 999)
    assert eps.shape == (1, 3, 40, 72) and torch.isfinite(eps).all()
    assert eps_odd.shape == (1, 3, 37, 70) and torch.isfinite(eps_odd).all()
    # a trained epsilon model recovers most of the noise when the input is almost pure noise
    assert torch.nn.functional.cosine_similarity(eps_noise.flatten(), x.flatten(), dim=0) > 0.5


def test_init_from_starts_from_a_saved_prior_and_refuses_another_architecture(tmp_path):
    data = _write_pngs(tmp_path / "data")
    train_prior([data], tmp_path / "a", _tiny_config(steps=2), progress=False)
    cont = train_prior([data], tmp_path / "b", _tiny_config(steps=0, init_from=str(tmp_path / "a")), progress=False)
    assert cont.steps == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["ema"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for key in a:  # nothing trained yet: model and EMA are the saved prior's (EMA) weights
        assert torch.equal(a[key], b["unet"][key]) and torch.equal(a[key], b["ema"][key]), key
    assert "--init-from" in _command_for(tmp_path, data)
    with pytest.raises(VidplugError, match="architecture"):
        train_prior([data], tmp_path / "c", _tiny_config(channels=(8, 8), init_from=str(tmp_path / "a")),
                    progress=False)
    with pytest.raises(VidplugError, match="no UNet"):
        train_prior([data], tmp_path / "d", _tiny_config(init_from=str(tmp_path / "data")), progress=False)


def _command_for(tmp_path: Path, data: Path) -> str:
    """The model-card command line of a CLI run with --init-from."""
    main(["train-prior", str(data), "--out", str(tmp_path / "e"), "--size", "16", "--steps", "0", "--batch", "2",
          "--channels", "8,16", "--norm-groups", "4", "--device", "cpu", "--init-from", str(tmp_path / "a"),
          "--no-progress"])
    return (tmp_path / "e" / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (TINY_PRIOR / "unet").is_dir(), reason="bundled tiny prior not present")
def test_gpu_train_priors_script_packs_each_time_limited_variant(tmp_path):
    """pipelines/gpu_train_priors.sh (run on the CPU here): variants side by side from the bundled weights, each
    stopped by its time limit and packed as NAME.tar with its weights, model card and log, without the checkpoint."""
    import os
    import subprocess
    import sys
    import tarfile

    from vidplug.io import write_video

    data = tmp_path / "data"
    _write_pngs(data / "images", n=2, h=40, w=48)
    (data / "videos").mkdir()
    for name in ("bikes", "bigbuckbunny"):
        write_video(torch.rand(3, 3, 32, 48), data / "videos" / f"{name}.mp4", fps=10)
    out = tmp_path / "out"
    script = Path(__file__).resolve().parents[2] / "pipelines" / "gpu_train_priors.sh"
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(script), str(data), str(out), "0.002", "a=--batch 2 --size 16",
                           "b=--batch 2 --size 16 --scale-min 0.5"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.tar", "b.tar"]
    for name in ("a", "b"):
        with tarfile.open(out / f"{name}.tar") as tar:
            members = set(tar.getnames())
            card = tar.extractfile(f"{name}/README.md").read().decode()
        assert {f"{name}/unet/config.json", f"{name}/unet/diffusion_pytorch_model.safetensors",
                f"{name}/scheduler/scheduler_config.json", f"{name}/samples.png", f"{name}.log"} <= members
        assert not any(m.endswith("checkpoint.pt") for m in members)
        assert "stopped by the time limit before the 1000000 asked for" in card
        assert "--init-from" in card and ("--scale-min 0.5" in card) == (name == "b")
