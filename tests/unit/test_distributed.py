"""Blend seams (independent chunks) and multi-process runs: 2 gloo processes on CPU give the single-process result."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import make_translating_video, save_tiny_prior, tiny_models, tiny_run_config
from vidplug.io import read_video, write_video
from vidplug.pipeline import restore_video

ENV = {**os.environ, "VIDPLUG_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_blend_seams_write_every_frame_once(tmp_path):
    clip = tmp_path / "clip"
    write_video(make_translating_video(14, 16, 16), clip, fps=10)
    cfg = tiny_run_config("chunk.size=6", "chunk.overlap=2", "chunk.seam=blend", "solver.iters=3")
    res = restore_video(clip, tmp_path / "o", cfg, simulate=True, keep_frames=True, progress=False,
                        models=tiny_models(cfg))
    assert res.frames.shape == (14, 3, 16, 16) and torch.isfinite(res.frames).all()
    assert torch.equal(read_video(tmp_path / "o").frames, res.frames)
    m = res.report["metrics"]
    assert m["frames"] == 14 and len(m["per_frame"]["warping_error"]) == 13
    assert all(not c.get("resumed") for c in res.chunks)


class _ConstantPerChunk:
    """A chunk solver restoring chunk i as the grey level LEVELS[i] everywhere: the written overlaps show the blend."""

    name, needs_prior, uses_consistency = "constant", False, False
    LEVELS = (0.2, 0.8, 0.4)

    def __call__(self, cfg, models, chunk, y, op, anchors, reference, progress=True):
        return torch.full(op.input_shape, self.LEVELS[chunk.index]), {"method": self.name}, None


def test_blend_seams_cross_fade_the_overlap_linearly(tmp_path):
    clip = tmp_path / "clip"
    write_video(make_translating_video(14, 16, 16), clip, fps=10)
    cfg = tiny_run_config("chunk.size=6", "chunk.overlap=2", "chunk.seam=blend", "method=bicubic")
    res = restore_video(clip, tmp_path / "o", cfg, simulate=True, keep_frames=True, progress=False,
                        models=tiny_models(cfg), chunk_solver=_ConstantPerChunk())
    assert [c["frames"] for c in res.chunks] == [[0, 6], [6, 10], [10, 14]]  # overlaps: frames 4-5 and 8-9
    level = res.frames.mean(dim=(1, 2, 3))  # (14,) each frame is one grey level
    a, b, c = _ConstantPerChunk.LEVELS
    expected = [a] * 4 + [a + (b - a) / 3, a + 2 * (b - a) / 3] + [b] * 2 + [b + (c - b) / 3, b + 2 * (c - b) / 3] \
        + [c] * 4  # overlap frame i of o = 2 takes weight (i + 1) / 3 from the later chunk
    assert torch.allclose(level, torch.tensor(expected), atol=0.5 / 255 + 1e-6)  # 8-bit output


def test_multi_process_blend_bad_seam_is_refused(tmp_path, monkeypatch):
    from vidplug import distributed
    from vidplug.errors import VidplugError

    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    clip = tmp_path / "clip"
    write_video(make_translating_video(4, 16, 16), clip, fps=10)
    cfg = tiny_run_config("chunk.seam=anchor")
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
