"""Runs that survive a kill -9 and memory bounded by the chunk size, tested through real subprocesses."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import make_translating_video, save_tiny_prior
from vidplug.io import read_video, write_video

ENV = {**os.environ, "VIDPLUG_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _cli(*args):
    return [sys.executable, "-m", "vidplug", *map(str, args)]


# restore_video in a child process that SIGKILLs itself right after chunk KILL_AFTER is checkpointed: a kill -9 at a
# known point, whatever the machine's speed
KILL_AFTER_CHUNK = textwrap.dedent("""
    import os, signal, sys
    from vidplug.cli import build_parser
    from vidplug.cli.common import config_from_args, read_kwargs
    from vidplug.pipeline import restore_video
    kill_after = int(sys.argv[1])
    args = build_parser().parse_args(["restore", *sys.argv[2:]])
    def hook(index):
        if index == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    restore_video(args.input, args.out, config_from_args(args), simulate=args.simulate, read=read_kwargs(args),
                  progress=False, on_chunk_saved=hook)
""")


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path):
    prior = save_tiny_prior(tmp_path / "prior")
    clip = tmp_path / "clip"
    write_video(make_translating_video(10, 16, 16), clip, fps=10)
    common = ["--simulate", "--task", "sr", "--set", "task.options.factor=2", "--prior", prior, "--chunk", "3",
              "--overlap", "1", "--iters", "40", "--set", "solver.early_stop=false", "--device", "cpu",
              "--no-progress"]
    subprocess.run(_cli("restore", clip, "--out", tmp_path / "full", *common), env=ENV, check=True,
                   capture_output=True)
    out = tmp_path / "killed"
    work = tmp_path / ".killed.vidplug-work"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_CHUNK, "1", str(clip), "--out", str(out),
                             *map(str, common)], env=ENV, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(p.name for p in work.glob("chunk_*.pt")) == ["chunk_000000.pt", "chunk_000001.pt"]
    assert not out.exists()  # killed midway: checkpoints, no output
    again = subprocess.run(_cli("restore", clip, "--out", out, *common), env=ENV, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run(_cli("restore", clip, "--out", out, "--resume", *common), env=ENV,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.equal(read_video(out).frames, read_video(tmp_path / "full").frames)
    assert not work.exists()


PEAK_RSS = textwrap.dedent("""
    import resource, sys
    from vidplug.config import apply_overrides, RestoreConfig
    from vidplug.pipeline import restore_video
    cfg = apply_overrides(RestoreConfig(), ["method=bicubic", "device=cpu", "chunk.size=8"])
    restore_video(sys.argv[1], sys.argv[2], cfg, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
""")


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_video_length(tmp_path):
    peaks = {}
    for n in (40, 400):
        clip = tmp_path / f"long{n}.mp4"
        g = torch.Generator().manual_seed(0)
        base = torch.rand(1, 3, 64, 64, generator=g)
        write_video(base.expand(n, -1, -1, -1) * torch.linspace(0.5, 1, n).view(n, 1, 1, 1), clip, fps=25)
        res = subprocess.run([sys.executable, "-c", PEAK_RSS, str(clip), str(tmp_path / f"out{n}.mp4")], env=ENV,
                             capture_output=True, text=True, check=True)
        peaks[n] = int(res.stdout.strip().splitlines()[-1]) / 1024  # MiB
    # the 400-frame output alone is 400 x 3 x 256 x 256 float32 = 300 MiB: streaming must not hold it
    assert peaks[400] - peaks[40] < 60, peaks
