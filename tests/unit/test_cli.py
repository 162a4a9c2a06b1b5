"""The command line end to end on tiny clips, and one test per bad input: a one-line error, exit code 2, nothing
written or overwritten."""

import json
import os
import re

import pytest
import torch
from PIL import Image

from tests.conftest import make_translating_video
from vidplug.cli import main
from vidplug.io import write_video


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip"
    write_video(make_translating_video(4, 32, 32), path, fps=10)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *argv, match: str) -> str:
    """Run the CLI expecting exit code 2 and exactly one error line, which must match the regex ``match``."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def test_degrade_then_metrics_end_to_end(clip, tmp_path, capsys):
    code, out, _ = run(capsys, "degrade", clip, "--task", "inpaint", "--out", tmp_path / "obs", "--seed", "3")
    assert code == 0 and (tmp_path / "obs_mask").is_dir()
    code, out, _ = run(capsys, "metrics", tmp_path / "obs", clip, "--json", "--flow", "dis")
    assert code == 0
    m = json.loads(out)
    assert {"psnr", "ssim", "lpips", "warping_error", "flow_model", "frames", "per_frame"} <= set(m)
    assert m["frames"] == 4 and m["flow_model"] == "opencv_dis" and len(m["per_frame"]["psnr"]) == 4
    assert m["psnr"] < 20  # half the pixels are missing
    code, out, _ = run(capsys, "metrics", clip, clip, "--json", "--flow", "dis")
    assert json.loads(out)["warping_error"] < 1e-6


def test_restore_bicubic_simulated_writes_report(clip, tmp_path, capsys):
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "restore", clip, "--simulate", "--task", "sr", "--set", "task.options.factor=2",
                         "--method", "bicubic", "--out", tmp_path / "o.mp4", "--report", report, "--no-progress")
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["metrics"]["psnr"] > 15 and data["frames"] == 4 and data["method"] == "bicubic"
    assert (tmp_path / "o.config.yaml").is_file()


def test_weights_lists_catalog_offline(capsys):
    code, out, _ = run(capsys, "weights")
    assert code == 0
    for name in ("raft-large", "clip-vit-b-32-openai", "alexnet-lpips", "adm-imagenet256"):
        assert name in out


def test_missing_input(tmp_path, capsys):
    one_line_error(capsys, "restore", tmp_path / "nope.mp4", "--out", tmp_path / "o.mp4", match="no such file")


def test_corrupt_video(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(2048))
    one_line_error(capsys, "degrade", bad, "--task", "sr4", "--out", tmp_path / "o", match="cannot decode")
    assert not (tmp_path / "o").exists()


def test_zero_frames(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, "degrade", tmp_path / "empty", "--task", "sr4", "--out", tmp_path / "o",
                   match=r"no images \(.png.*\) in folder .*empty; point to a folder of frames or a video file")


def test_unsupported_file_type(tmp_path, capsys):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    one_line_error(capsys, "degrade", txt, "--task", "sr4", "--out", tmp_path / "o",
                   match=r"unsupported file type '.txt' for .*notes.txt; give a video")


def test_folder_with_mixed_sizes(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "0.png")
    Image.new("RGB", (16, 32)).save(folder / "1.png")
    one_line_error(capsys, "degrade", folder, "--task", "sr4", "--out", tmp_path / "o", match="1.png")


def test_frames_too_small_for_operator(tmp_path, capsys):
    write_video(torch.rand(2, 3, 6, 6), tmp_path / "small", fps=10)
    one_line_error(capsys, "degrade", tmp_path / "small", "--task", "sr4", "--out", tmp_path / "o",
                   match="frame size 6x6 is not divisible by the super-resolution factor 4")
    one_line_error(capsys, "degrade", tmp_path / "small", "--task", "deblur", "--out", tmp_path / "o2",
                   match="frame size 6x6 is too small for the 61x61 blur kernel")


def test_unknown_task(clip, tmp_path, capsys):
    one_line_error(capsys, "restore", clip, "--simulate", "--task", "colourise", "--out", tmp_path / "o.mp4",
                   match="unknown task 'colourise'; known tasks: sr4, sr, inpaint")


def test_degrade_task_options_are_typed(clip, tmp_path, capsys):
    one_line_error(capsys, "degrade", clip, "--task", "sr", "--set", "factor=two", "--out", tmp_path / "o",
                   match="config key 'task.options.factor' must be an integer, got 'two'")
    one_line_error(capsys, "degrade", clip, "--task", "sr4", "--set", "factor=2", "--out", tmp_path / "o",
                   match="unknown task.options.factor 2; use one of: 4")
    assert not (tmp_path / "o").exists()


def test_unknown_prior(clip, tmp_path, capsys):
    one_line_error(capsys, "restore", clip, "--simulate", "--prior", "no-such-prior", "--out", tmp_path / "o.mp4",
                   match="unknown prior 'no-such-prior'; use one of tiny, adm-imagenet256")


def test_weights_missing_offline(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    one_line_error(capsys, "restore", clip, "--simulate", "--prior", "adm-imagenet256", "--out", tmp_path / "o.mp4",
                   match="diffusion_openai.pt.* place it at ")
    code, _, err = run(capsys, "weights", "fetch", "raft-large")
    assert code == 2 and "offline" in err


def test_malformed_yaml_and_unknown_key(clip, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: [1, 2\n")
    one_line_error(capsys, "restore", clip, "--config", bad, "--out", tmp_path / "o", match="malformed YAML")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("solver: {iterations: 3}\n")
    one_line_error(capsys, "restore", clip, "--config", unknown, "--out", tmp_path / "o",
                   match="unknown config key 'solver.iterations'")


def test_set_with_wrong_type(clip, tmp_path, capsys):
    one_line_error(capsys, "restore", clip, "--set", "solver.iters=lots", "--out", tmp_path / "o",
                   match="config key 'solver.iters' must be an integer, got 'lots'")


def test_inpainting_without_mask(clip, tmp_path, capsys):
    one_line_error(capsys, "restore", clip, "--task", "inpaint", "--out", tmp_path / "o", match="--mask")


def test_output_not_writable(clip, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, "restore", clip, "--simulate", "--method", "bicubic", "--out", blocker / "sub" / "o.mp4",
                   match="cannot write to .*file/sub: not a writable directory")


def test_existing_output_kept_without_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    one_line_error(capsys, "degrade", clip, "--task", "sr4", "--out", out, match="already exists; pass --overwrite")
    assert out.read_bytes() == b"keep me"


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        main(["--debug", "restore", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o.mp4")])


def test_frame_selection_precedence_config_flag_set(clip, tmp_path, capsys):
    """read: in --config < --max-frames < --set read.max_frames; the resolved config beside the output says so."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: {name: sr, options: {factor: 2}}\nmethod: bicubic\nread: {max_frames: 1, stride: 1}\n")
    base = ["restore", clip, "--simulate", "--config", cfg, "--no-progress", "--device", "cpu"]
    for extra, frames in [([], 1), (["--max-frames", "3"], 3), (["--max-frames", "3", "--set", "read.max_frames=2"], 2)]:
        out = tmp_path / f"o{frames}.mp4"
        code, _, err = run(capsys, *base, "--out", out, "--report", tmp_path / f"r{frames}.json", "--no-html", *extra)
        assert code == 0, err
        assert json.loads((tmp_path / f"r{frames}.json").read_text())["frames"] == frames
        assert f"max_frames: {frames}" in (tmp_path / f"o{frames}.config.yaml").read_text()


@pytest.mark.parametrize("argv, match", [(["--stride", "-2"], r"read\.stride >= 1 .*stride=-2"),
                                         (["--set", "read.stride=-1"], r"read\.stride >= 1 .*stride=-1"),
                                         (["--set", "read.max_frames=0"], r"read\.max_frames must be >= 1")])
def test_bad_frame_selection_is_refused_before_anything_is_written(clip, tmp_path, capsys, argv, match):
    out = tmp_path / "o.mp4"
    one_line_error(capsys, "restore", clip, "--simulate", "--method", "bicubic", "--out", out, *argv, match=match)
    assert not out.exists() and not (tmp_path / "o.config.yaml").exists()


def test_command_frame_defaults_sit_under_config_and_flags(tmp_path):
    """eval's default size 256 is a default: a config's read.size and --size native override it."""
    from vidplug.cli import build_parser
    from vidplug.cli.common import config_from_args

    parser = build_parser()
    argv = ["eval", "--dataset", str(tmp_path), "--out", str(tmp_path / "o")]
    assert config_from_args(parser.parse_args(argv)).read.size == 256
    assert config_from_args(parser.parse_args([*argv, "--size", "native"])).read.size is None
    yaml = tmp_path / "c.yaml"
    yaml.write_text("read: {size: 64, max_frames: 5}\n")
    cfg = config_from_args(parser.parse_args([*argv, "--config", str(yaml)]))
    assert cfg.read.size == 64 and cfg.read.max_frames == 5
    cfg = config_from_args(parser.parse_args([*argv, "--config", str(yaml), "--size", "32x48"]))
    assert cfg.read.size == [32, 48] and cfg.read.max_frames == 5


@pytest.mark.parametrize("argv", [("eval", "--dataset", "{tmp}", "--out", "{tmp}/o", "--sequences", " , "),
                                  ("robustness", "{tmp}", "--out", "{tmp}/o", "--types", ",")])
def test_empty_comma_lists_are_refused(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own exit: usage line + one error line
        main([a.format(tmp=tmp_path) for a in argv])
    assert exit_info.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "give comma-separated names" in errors[0], errors
    assert not (tmp_path / "o").exists()


def test_comma_names_refuses_unknown_names_and_keeps_order():
    import argparse

    from vidplug.cli.common import comma_names

    parse = comma_names(["sr4", "inpaint", "temporal"])
    assert parse(" temporal, sr4 ,") == ["temporal", "sr4"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown name.*sr5.*choose from sr4, inpaint, temporal"):
        parse("sr4,sr5")
