"""``--noise TYPE[:LEVEL]`` on the command line and ``task.noise`` in YAML: applied in simulations, bad values refused
with one line naming the valid choices (exit 2) before any model loads."""

import json
import re

import pytest

from tests.conftest import make_translating_video
from tests.unit.test_cli import one_line_error, run
from vidplug.config import load_config
from vidplug.io import read_video, write_video
from vidplug.physics import Noise


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip"
    write_video(make_translating_video(4, 32, 32), path, fps=10)
    return path


def test_degrade_with_impulse_noise_flips_about_the_named_fraction(clip, tmp_path, capsys):
    extremes = {}
    for noise in ("impulse:high", "0"):
        code, _, err = run(capsys, "degrade", clip, "--task", "sr", "--set", "factor=2", "--noise", noise,
                           "--out", tmp_path / f"obs{noise}")
        assert code == 0, err
        obs = read_video(tmp_path / f"obs{noise}").frames  # PNG frames keep the noise exactly
        extremes[noise] = ((obs == 0) | (obs == 1)).float().mean().item()
    # about 17 % of the values became exactly 0 or 1 (a few were already there)
    assert 0.12 < extremes["impulse:high"] - extremes["0"] < 0.2


def test_restore_simulate_reports_psnr_under_shot_noise(clip, tmp_path, capsys):
    report = tmp_path / "r.json"
    runs = {}
    for noise in ("shot:high", "0"):
        code, _, err = run(capsys, "restore", clip, "--simulate", "--task", "sr", "--set", "task.options.factor=2",
                           "--method", "bicubic", "--noise", noise, "--out", tmp_path / f"o{noise}.mp4",
                           "--report", report, "--no-progress", "--overwrite")
        assert code == 0, err
        runs[noise] = json.loads(report.read_text())["metrics"]["psnr"]
    assert runs["shot:high"] < runs["0"] - 3  # 5 photons per unit intensity is heavy noise


def test_yaml_task_noise_and_bare_number(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("task:\n  name: sr4\n  noise: speckle:high\n")
    assert load_config(cfg_file).task.noise_model == Noise("speckle", 0.45)
    assert load_config(None, ["task.noise=0.05"]).task.noise_model == Noise("gaussian", 0.05)
    assert load_config(None).task.noise_model == Noise("gaussian", 0.01)  # task.noise_sigma's default


@pytest.mark.parametrize(
    ("noise", "match"),
    [("pink", "unknown noise type 'pink'"), ("impulse:2", "fraction of pixels"), ("shot:x", "bad noise level")],
)
def test_bad_noise_is_one_line_before_any_model(clip, tmp_path, capsys, noise, match):
    for argv in (
        ("restore", clip, "--simulate", "--prior", "adm-imagenet256", "--noise", noise, "--out", tmp_path / "o.mp4"),
        ("degrade", clip, "--task", "sr4", "--noise", noise, "--out", tmp_path / "obs"),
    ):
        one_line_error(capsys, *argv, match=f"{re.escape(match)}.*gaussian, impulse, shot, speckle")
        assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "obs").exists()
