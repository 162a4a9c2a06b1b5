"""``vidplug robustness``: every noise cell and method on a tiny DAVIS tree with a tiny random prior; resumable;
bad input refused in one line."""

from __future__ import annotations

import csv
import json
import re

import pytest

from tests.conftest import save_tiny_prior
from tests.unit.test_cli import one_line_error, run
from vidplug.evaluation.robustness import cell_names, curve_summary


@pytest.fixture
def prior_dir(tmp_path_factory):
    return save_tiny_prior(tmp_path_factory.mktemp("prior"))


def _argv(davis_root, out, prior_dir, *extra):
    return ("robustness", davis_root, "--task", "sr", "--out", out, "--types", "impulse,shot", "--max-frames", "2",
            "--size", "16", "--no-progress", "--set", f"prior.name={prior_dir}", "--set", "task.options.factor=2",
            "--set", "solver.iters=6", "--set", "solver.es_window=2", "--set", "solver.es_patience=2", *extra)


@pytest.mark.slow
def test_robustness_writes_every_cell_and_resumes(davis_root, prior_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "rob"
    code, stdout, err = run(capsys, *_argv(davis_root, out, prior_dir))
    assert code == 0, err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 * 2 * 3  # types x levels x methods
    assert {(r["noise"], r["level"]) for r in rows} == {("impulse", "low"), ("impulse", "high"), ("shot", "low"),
                                                       ("shot", "high")}
    assert {r["method"] for r in rows} == {"vidplug", "dmplug (per frame)", "bicubic"}
    data = json.loads((out / "results.json").read_text())
    for r in data["rows"]:
        assert r["psnr"] is not None and r["ssim"] is not None
        if r["method"] == "bicubic":
            assert r.get("gap") is None
            continue
        assert len(r["curve"]) == 6  # es_observe: the whole curve, whatever ES-WMV decided
        assert r["oracle_best_psnr"] == pytest.approx(max(r["curve"]))
        assert r["gap"] == pytest.approx(r["oracle_best_psnr"] - r["curve"][r["chosen_iteration"]])
        assert r["gap"] >= 0 and r["last_psnr"] == pytest.approx(r["curve"][-1])
    # the same seeds in every cell: the noiseless part of the observation is shared, so bicubic differs by noise only
    high = {r["noise"]: r for r in data["rows"] if r["method"] == "bicubic" and r["level"] == "high"}
    low = {r["noise"]: r for r in data["rows"] if r["method"] == "bicubic" and r["level"] == "low"}
    assert all(high[t]["psnr"] < low[t]["psnr"] for t in ("impulse", "shot"))
    report = (out / "report.md").read_text()
    assert "| impulse | shot |" in report and "ORACLE" in report and "low / high" in report
    assert (out / "plots" / "psnr_impulse.png").is_file() and (out / "plots" / "psnr_shot.png").is_file()
    # report.html: every cell's row opens that cell's own page, whose videos exist
    page = json.loads(re.search(r'id="vp-data">(.*?)</script>', (out / "report.html").read_text(encoding="utf-8"),
                                re.S).group(1).replace("<\\/", "</"))
    cells = page["tables"][2]["rows"]
    assert len(cells) == 12 and all(r["href"] and (out / r["href"]).is_file() for r in cells)
    assert all((out / r["href"]).parent.joinpath("report_media", "restored.mp4").is_file() for r in cells)

    import vidplug.pipeline

    def no_restore(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(vidplug.pipeline, "restore_video", no_restore)
    code, _, err = run(capsys, *_argv(davis_root, out, prior_dir))
    assert code == 0, err
    one_line_error(capsys, *_argv(davis_root, out, prior_dir, "--set", "solver.iters=7"),
                   match="different settings.*--overwrite")


@pytest.mark.parametrize(
    ("extra", "match"),
    [(("--types", "pink"), "unknown noise type 'pink'"), (("--levels", "medium"), "unknown noise level"),
     (("--methods", "dps"), "unknown method 'dps'"), (("--set", "read.stride=-1"), r"read\.stride >= 1"),
     (("--stride", "0"), r"read\.stride >= 1")],
)
def test_bad_choices_fail_in_one_line_before_any_work(davis_root, prior_dir, tmp_path, capsys, extra, match):
    argv = list(_argv(davis_root, tmp_path / "rob", prior_dir))
    i = argv.index("--types")
    del argv[i : i + 2]
    one_line_error(capsys, *argv, *extra, match=match)
    assert not (tmp_path / "rob").exists()


def test_cells_and_curve_summary():
    assert cell_names(["shot"], None) == [("shot", "low"), ("shot", "high")]
    chunks = [{"frames": [0, 2], "oracle_psnr": [10.0, 12.0, 11.0, 10.5], "chosen_iteration": 1,
               "es_stop_iteration": 2}]
    s = curve_summary(chunks)
    assert s["gap"] == 0.0 and s["oracle_best_iteration"] == 1 and s["drop_at_stop"] == pytest.approx(1.0)
    assert s["last_psnr"] == 10.5 and s["es_stop_iteration"] == 2
