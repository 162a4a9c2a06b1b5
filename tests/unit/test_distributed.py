"""Blend seams (independent chunks) and multi-process runs: 2 gloo processes on CPU give the single-process result."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import make_translating_video, save_tiny_prior
from tests.unit.test_pipeline import _cfg, _TinyModels
from vidplug.io import read_video, write_video
from vidplug.pipeline import restore_video

ENV = {**os.environ, "VIDPLUG_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_blend_seams_write_every_frame_once_and_cross_fade(tmp_path):
    clip = tmp_path / "clip"
    write_video(make_translating_video(14, 16, 16), clip, fps=10)
    cfg = _cfg("chunk.size=6", "chunk.overlap=2", "chunk.seam=blend", "solver.iters=3")
    res = restore_video(clip, tmp_path / "o", cfg, simulate=True, keep_frames=True, progress=False,
                        models=_TinyModels(cfg, torch.device("cpu")))
    assert res.frames.shape == (14, 3, 16, 16) and torch.isfinite(res.frames).all()
    assert torch.equal(read_video(tmp_path / "o").frames, res.frames)
    m = res.report["metrics"]
    assert m["frames"] == 14 and len(m["per_frame"]["warping_error"]) == 13
    assert all(not c.get("resumed") for c in res.chunks)


def test_multi_process_blend_bad_seam_is_refused(tmp_path, monkeypatch):
    from vidplug import distributed
    from vidplug.errors import VidplugError

    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    clip = tmp_path / "clip"
    write_video(make_translating_video(4, 16, 16), clip, fps=10)
    cfg = _cfg("chunk.seam=anchor")
    with pytest.raises(VidplugError, match="chunk.seam=blend"):
        restore_video(clip, tmp_path / "o", cfg, simulate=True, progress=False)


@pytest.mark.slow
def test_torchrun_two_gloo_processes_equal_one(tmp_path):
    prior = save_tiny_prior(tmp_path / "prior")
    clip = tmp_path / "clip"
    write_video(make_translating_video(12, 16, 16), clip, fps=10)
    args = [clip, "--simulate", "--task", "sr", "--set", "task.options.factor=2", "--prior", prior, "--chunk", "4",
            "--overlap", "1", "--set", "chunk.seam=blend", "--iters", "5", "--set", "solver.early_stop=false",
            "--device", "cpu", "--no-progress", "--semantic-weight", "0", "--pixel-weight", "0"]
    args = [str(a) for a in args]
    one = subprocess.run([sys.executable, "-m", "vidplug", "restore", *args, "--out", str(tmp_path / "one"),
                          "--report", str(tmp_path / "one.json")], env=ENV, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vidplug", "restore", *args, "--out", str(tmp_path / "two"),
                          "--report", str(tmp_path / "two.json")], env=ENV, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert torch.equal(read_video(tmp_path / "one").frames, read_video(tmp_path / "two").frames)
    import json

    assert json.loads((tmp_path / "two.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_torchrun_eval_shards_sequences(davis_root, tmp_path):
    import csv

    prior = save_tiny_prior(tmp_path / "prior")
    args = ["eval", "--davis", str(davis_root), "--task", "sr", "--set", "task.options.factor=2", "--prior",
            str(prior), "--iters", "2", "--max-frames", "3", "--size", "32", "--device", "cpu", "--no-progress",
            "--no-videos", "--set", "consistency.flow_model=dis", "--semantic-weight", "0"]
    one = subprocess.run([sys.executable, "-m", "vidplug", *args, "--out", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vidplug", *args, "--out", str(tmp_path / "two")], env=ENV, capture_output=True,
                         text=True)
    assert two.returncode == 0, two.stderr[-3000:]

    def rows(d):
        with open(d / "results.csv") as f:
            return {r["sequence"]: r["psnr"] for r in csv.DictReader(f)}

    assert rows(tmp_path / "one") == rows(tmp_path / "two") and len(rows(tmp_path / "two")) == 2
