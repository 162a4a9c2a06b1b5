"""benchmarks/bench_quality.py end to end on a tiny synthetic clip: every task's rows, goals and the markdown."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench_quality import FLOW_LS, FULL, PER_FRAME, goals, main
from tests.conftest import make_translating_video, save_tiny_prior
from vidplug.io import write_video


def test_bench_quality_runs_baselines_and_methods_and_prints_goals(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    write_video(make_translating_video(3, 16, 16), data / "videos" / "bikes.mp4", fps=8.0)
    prior = save_tiny_prior(tmp_path / "prior")
    rc = main(["--prior", str(prior), "--data", str(data), "--clips", "bikes", "--tasks", "sr4,inpaint",
               "--frames", "2", "--size", "16x16", "--set", "solver.iters=2", "--set", "consistency.flow_model=dis",
               "--set", "solver.init_refine_steps=2", "--set", "consistency.fusion_flows_from=auto",
               "--set", "consistency.fusion_weight_cv=[0.01,0.1]",
               "--set", "consistency.motion_boundaries_cv=[true,false]",
               "--out", str(tmp_path / "out"), "--no-append", "--quiet"])
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "bench_quality.json").read_text())
    rows = summary["results"]["bikes"]
    assert list(rows["sr4"]["rows"]) == ["bicubic", "least squares", FLOW_LS, PER_FRAME, FULL]
    assert list(rows["inpaint"]["rows"]) == ["neighbour fill", "OpenCV Telea", FLOW_LS, PER_FRAME, FULL]
    for task in ("sr4", "inpaint"):
        assert all(r["psnr"] > 5 and r["s_per_frame"] >= 0 for r in rows[task]["rows"].values())
        assert len(rows[task]["goals"]) == 4
    text = capsys.readouterr().out
    assert "**bikes, sr4**" in text and "| method | PSNR (dB) | SSIM | WE (x1e-2) | s/frame |" in text
    assert "Goals: full first on PSNR:" in text
    assert "What the prior adds over its own start" in text
    assert rows["sr4"]["consistency"]["pixel_weight"] > 0 and "fusion_weight" in text  # the full method's terms
    assert rows["sr4"]["consistency"]["fusion_flows_from"] == "auto"
    chosen = rows["sr4"]["rows"][FULL]["fusion_flows_from"]  # one chunk, fused from a least-squares start
    assert len(chosen) == 1 and chosen[0] in ("estimate", "observation")
    assert f"took its first flows from the {chosen[0]}" in text
    weights = rows["inpaint"]["rows"][FULL]["fusion_weight_chosen"]  # held-out pixels chose it (inpainting only)
    assert len(weights) == 1 and weights[0] in (0.01, 0.1) and rows["sr4"]["rows"][FULL]["fusion_weight_chosen"] == []
    assert f"Fusion weight chosen by held-out observed pixels: {weights[0]}" in text
    (mask,) = rows["inpaint"]["rows"][FULL]["motion_boundaries_chosen"]  # and the coupling mask with it
    assert f"coupling mask {'with' if mask else 'without'} motion boundaries" in text
    assert rows["inpaint"]["consistency"]["motion_boundaries_cv"] == [True, False]
    assert main(["--prior", str(prior), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o2"),
                 "--no-append"]) == 2


def test_goals_are_met_only_when_the_full_method_wins():
    rows = {"bicubic": {"psnr": 24.0, "ssim": 0.8, "warping_error": 1e-3, "s_per_frame": 0.1},
            PER_FRAME: {"psnr": 23.0, "ssim": 0.7, "warping_error": 4e-3, "s_per_frame": 4.0},
            FULL: {"psnr": 24.5, "ssim": 0.79, "warping_error": 2e-3, "s_per_frame": 6.0}}
    got = goals(rows)
    assert list(got.values()) == [True, False, True, False]
    rows[FULL]["warping_error"] = 2.1e-3
    assert goals(rows)["full WE <= half of per-frame DMPlug's"] is False
    # the full method's own prior-free start is an ablation row: beating it is not one of the goals
    rows[FLOW_LS] = {"psnr": 30.0, "ssim": 0.99, "warping_error": 1e-4, "s_per_frame": 0.1}
    assert goals(rows)["full first on PSNR"] is True


@pytest.mark.parametrize("bad", ["sr5", "bikes,nope"])
def test_bad_names_are_refused(bad, tmp_path):
    with pytest.raises(SystemExit):
        main(["--tasks" if bad == "sr5" else "--clips", bad, "--out", str(tmp_path)])


def test_the_full_row_gets_its_consistency_networks_whichever_row_builds_them(tmp_path, monkeypatch):
    import argparse

    import benchmarks.bench_quality as bq

    built = []

    class Recording(bq.Models):
        def __init__(self, cfg, device):
            super().__init__(cfg, device)
            built.append((cfg.method, cfg.consistency.pixel_weight, self.flow is not None))

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(2, 16, 16), clip, fps=8.0)
    monkeypatch.setattr(bq, "Models", Recording)
    monkeypatch.setattr(bq, "methods", lambda task: {PER_FRAME: {"consistency": {"pixel_weight": 0.0}}, FULL: {}})
    args = argparse.Namespace(prior=str(save_tiny_prior(tmp_path / "prior")), frames=2, start=0, stride=1,
                              size=(16, 16), quiet=True, overrides=["solver.iters=1", "consistency.flow_model=dis"])
    bq.run_task(clip, "sr4", args, tmp_path / "out", {})
    assert built == [("dmplug", 0.05, True)]  # one set of networks, built with the full method's terms on


def test_start_and_stride_benchmark_other_frames_of_the_clips(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    write_video(make_translating_video(5, 16, 16), data / "videos" / "bikes.mp4", fps=8.0)
    prior = save_tiny_prior(tmp_path / "prior")
    common = ["--prior", str(prior), "--data", str(data), "--clips", "bikes", "--tasks", "sr4", "--frames", "2",
              "--size", "16x16", "--set", "solver.iters=1", "--set", "consistency.flow_model=dis", "--no-append",
              "--quiet"]
    psnrs = {}
    for start in (0, 3):
        assert main([*common, "--start", str(start), "--out", str(tmp_path / f"s{start}")]) == 0
        summary = json.loads((tmp_path / f"s{start}" / "bench_quality.json").read_text())
        assert summary["settings"]["start"] == start
        psnrs[start] = summary["results"]["bikes"]["sr4"]["rows"]["bicubic"]["psnr"]
    assert psnrs[0] != psnrs[3]  # other frames, other scores
    assert "2 frames from frame 3 at 16x16" in capsys.readouterr().out
    assert main([*common, "--start", "1", "--stride", "2", "--out", str(tmp_path / "s1x2")]) == 0  # frames 1 and 3
    summary = json.loads((tmp_path / "s1x2" / "bench_quality.json").read_text())
    assert summary["settings"]["stride"] == 2
    assert summary["results"]["bikes"]["sr4"]["rows"]["bicubic"]["psnr"] not in psnrs.values()
    assert "2 frames from frame 1 with stride 2 at 16x16" in capsys.readouterr().out
    assert main([*common, "--stride", "0", "--out", str(tmp_path / "s0")]) == 2
    assert main([*common, "--start", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert main([*common, "--start", "9", "--out", str(tmp_path / "late")]) == 2  # past the clip's 5 frames


def test_bench_standing_counts_the_cells_and_reuses_or_refuses_stored_segments(tmp_path, capsys, monkeypatch):
    from benchmarks import bench_quality, bench_standing

    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    write_video(make_translating_video(4, 16, 16), data / "videos" / "bikes.mp4", fps=8.0)
    prior = save_tiny_prior(tmp_path / "prior")
    argv = ["--prior", str(prior), "--data", str(data), "--segments", "bikes:0,bikes:2", "--tasks", "sr4",
            "--frames", "2", "--size", "16x16", "--set", "solver.iters=1", "--set", "consistency.flow_model=dis",
            "--out", str(tmp_path / "out"), "--no-append", "--quiet"]
    assert bench_standing.main(argv) == 0
    standing = json.loads((tmp_path / "out" / "standing.json").read_text())
    assert [(c["segment"], c["task"]) for c in standing["cells"]] == [("bikes 0-1", "sr4"), ("bikes 2-3", "sr4")]
    for c, start in zip(standing["cells"], (0, 2), strict=True):  # each cell is its segment's bench_quality run
        stored = json.loads((tmp_path / "out" / f"bikes-{start}" / "bench_quality.json").read_text())
        out = stored["results"]["bikes"]["sr4"]
        assert c["psnr"] == out["rows"][FULL]["psnr"] and stored["settings"]["start"] == start
        assert c["missed"] == [k.removeprefix("full ") for k, ok in out["goals"].items()
                               if not ok and "s/frame" not in k]
    assert standing["met"] == sum(not c["missed"] for c in standing["cells"])
    assert f"**{standing['met']} of 2 cells meet every quality goal**" in capsys.readouterr().out
    # a second call reads the stored segments instead of running them again
    monkeypatch.setattr(bench_quality, "run", lambda args: pytest.fail("a stored segment was run again"))
    assert bench_standing.main(argv) == 0
    assert json.loads((tmp_path / "out" / "standing.json").read_text())["cells"] == standing["cells"]
    assert "different commits" not in capsys.readouterr().out
    stored_path = tmp_path / "out" / "bikes-2" / "bench_quality.json"  # one segment from other code: the table says so
    stored = json.loads(stored_path.read_text())
    stored["env"]["commit"] = "0ld0ld0"
    stored_path.write_text(json.dumps(stored))
    assert bench_standing.main(argv) == 0
    assert "Segments measured at different commits: bikes 0-1 " in (out := capsys.readouterr().out)
    assert "bikes 2-3 0ld0ld0." in out
    # other settings in the same folder: one line, exit 2, the stored run left as it was
    before = (tmp_path / "out" / "bikes-0" / "bench_quality.json").read_text()
    assert bench_standing.main([*argv, "--set", "solver.iters=2"]) == 2
    assert "holds a run with other settings" in capsys.readouterr().err
    assert (tmp_path / "out" / "bikes-0" / "bench_quality.json").read_text() == before
    for bad in (["--segments", "nope:0"], ["--segments", "bikes:x"], ["--size", "16"]):
        assert bench_standing.main([*argv, *bad]) == 2
    (tmp_path / "out" / "bikes-2" / "bench_quality.json").write_text("{not json")  # a corrupt stored segment
    assert bench_standing.main(argv) == 2
    assert "is not a bench_quality summary of bikes" in capsys.readouterr().err
