"""The main job (`make demo`) end to end on the bundled clip, with a tiny random prior in place of `tiny`."""

import json

import pytest

from tests.conftest import save_tiny_prior
from vidplug.demo import run_demo, sample_clip
from vidplug.errors import VidplugError
from vidplug.io import probe_video


def test_bundled_sample_clip_is_there_and_small():
    info = probe_video(sample_clip())
    assert (info.num_frames, info.height, info.width) == (24, 128, 256)
    assert sample_clip().stat().st_size < 500_000


@pytest.mark.slow
def test_demo_writes_video_side_by_side_and_table(tmp_path):
    prior = save_tiny_prior(tmp_path / "prior")
    out = tmp_path / "demo"
    summary = run_demo(out, max_frames=3, progress=False,
                       overrides=[f"prior.name={prior}", "solver.iters=2", "consistency.flow_model=dis"])
    for name in ("restored.mp4", "side_by_side.mp4", "results.md", "results.json", "restored.config.yaml"):
        assert (out / name).is_file(), name
    rows = json.loads((out / "results.json").read_text())["table"]
    assert list(rows) == ["bicubic", "least squares", "flow-coupled least squares (no prior)", "dmplug (per frame)",
                          "vidplug (full)"]
    assert all(r["psnr"] is not None and r["warping_error"] is not None for r in rows.values())
    assert "PSNR" in summary["table"] and "WE (x1e-2)" in summary["table"]
    text = (out / "results.md").read_text()
    assert "semantic consistency disabled" in text  # CLIP weights are absent offline: said, not hidden
    assert probe_video(out / "side_by_side.mp4").width > 4 * 128
    with pytest.raises(VidplugError, match="--overwrite"):
        run_demo(out, max_frames=3, progress=False, overrides=[f"prior.name={prior}"])
