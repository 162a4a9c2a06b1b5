"""DAVIS evaluation and ablation end to end on a synthetic DAVIS tree with a tiny random prior (CPU, seconds)."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import vidplug.evaluation.davis_eval as davis_eval
from tests.conftest import DAVIS_SEQS, save_tiny_prior, tiny_models
from vidplug.cli import main
from vidplug.config import RestoreConfig, apply_overrides, load_config, load_yaml, merge
from vidplug.errors import VidplugError
from vidplug.evaluation import (
    DiffPIRSettings,
    EpsDenoiser,
    ablation_configs,
    ablation_rows,
    evaluate_davis,
    full_method_config,
    ranked_table,
    run_ablation,
    window_physics,
)
from vidplug.physics import build_operator
from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SEQS = DAVIS_SEQS
SETTINGS = ["task.name=sr", "task.options.factor=2", "solver.iters=3", "solver.early_stop=false", "device=cpu",
            "chunk.size=4", "chunk.overlap=1", "consistency.flow_model=dis"]
READ = {"max_frames": 4, "size": 32}


@pytest.fixture
def count_restores(monkeypatch) -> list[str]:
    """Records the source of every restore_video call the evaluation makes."""
    calls: list[str] = []
    real = davis_eval.restore_video

    def counting(source, *args, **kwargs):
        calls.append(Path(source).name)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(davis_eval, "restore_video", counting)
    return calls


def _cfg(*extra: str) -> RestoreConfig:
    return apply_overrides(full_method_config(), SETTINGS + list(extra))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_eval_writes_every_output_and_resumes(davis_root, tmp_path, count_restores):
    cfg = _cfg("consistency.semantic_weight=0")
    out_dir = tmp_path / "eval"
    models = tiny_models(cfg)
    res = evaluate_davis(davis_root, out_dir, cfg, read=READ, progress=False, models=models)
    assert count_restores == list(SEQS)
    for name in SEQS:
        assert (out_dir / "sequences" / name / "result.json").is_file()
        assert (out_dir / "videos" / f"{name}.mp4").stat().st_size > 0
        assert (out_dir / "plots" / f"loss_{name}.png").stat().st_size > 0
        m = res["sequences"][name]["metrics"]
        assert len(m["per_frame"]["psnr"]) == 4 and len(m["per_frame"]["warping_error"]) == 3
        assert res["sequences"][name]["chunks"][0]["loss_history"]["total"]  # solver curves kept
    for plot in ("psnr_per_frame.png", "warping_error_per_frame.png"):
        assert (out_dir / "plots" / plot).stat().st_size > 0
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["settings"]["read"] == READ and saved["settings"]["config"]["solver"]["iters"] == 3
    assert saved["prior"] == "tiny-random" and saved["flow_model"] == "opencv_dis"
    assert "center crop" in saved["preprocessing"] and saved["versions"]["torch"]
    assert math.isclose(saved["mean"]["psnr"], sum(saved["sequences"][s]["metrics"]["psnr"] for s in SEQS) / 2)
    rows = _csv(out_dir / "results.csv")
    assert [r["sequence"] for r in rows] == list(SEQS)
    assert {"psnr", "ssim", "lpips", "warping_error", "we_x1e-2", "wall_time_s"} <= set(rows[0])
    assert float(rows[0]["psnr"]) == pytest.approx(res["sequences"]["seq-a"]["metrics"]["psnr"])
    report = (out_dir / "report.md").read_text()
    assert "| seq-a |" in report and "plots/psnr_per_frame.png" in report

    # rerun: nothing recomputed; a missing result is recomputed alone
    evaluate_davis(davis_root, out_dir, cfg, read=READ, progress=False, models=models)
    assert len(count_restores) == 2
    (out_dir / "sequences" / "seq-b" / "result.json").unlink()
    again = evaluate_davis(davis_root, out_dir, cfg, read=READ, progress=False, models=models, plots=False)
    assert count_restores[2:] == ["seq-b"]
    assert again["sequences"]["seq-a"]["metrics"] == res["sequences"]["seq-a"]["metrics"]

    # other settings into the same folder: refused (one line naming the difference) unless overwrite
    changed = apply_overrides(cfg, ["solver.iters=2"])
    with pytest.raises(VidplugError, match="solver.iters: 3 -> 2") as exc:
        evaluate_davis(davis_root, out_dir, changed, read=READ, progress=False, models=models)
    assert "\n" not in str(exc.value) and "--overwrite" in str(exc.value)
    with pytest.raises(VidplugError, match="max_frames"):
        evaluate_davis(davis_root, out_dir, cfg, read={**READ, "max_frames": 3}, progress=False, models=models)
    assert len(count_restores) == 3
    evaluate_davis(davis_root, out_dir, changed, read=READ, progress=False, models=models, overwrite=True,
                   sequences=["seq-a"], videos=False, plots=False)
    assert count_restores[3:] == ["seq-a"] and not (out_dir / "sequences" / "seq-b").exists()


@pytest.mark.slow
def test_ablation_table_baselines_and_resume(davis_root, tmp_path, count_restores):
    full = _cfg("consistency.pixel_weight=2.0")
    out_dir = tmp_path / "ablate"
    models = tiny_models(full)
    kw = dict(read=READ, shared_seeds=True, diffpir=DiffPIRSettings(steps=5), progress=False, videos=False,
              models=models, sequences=["seq-a"])
    res = run_ablation(davis_root, out_dir, full, **kw)
    labels = ["Base", "+Semantic", "+Pixel", "+Semantic+Pixel", "+Shared seeds", "Bicubic / A^+",
              "DiffPIR (per frame)"]
    assert list(res["table"]) == labels and len(count_restores) == len(labels)
    for label in labels:
        folder = out_dir / res["methods"][label]["dir"]
        assert (folder / "sequences" / "seq-a" / "result.json").is_file() and (folder / "report.md").is_file()
    changes = {label: m["config_change"] for label, m in res["methods"].items()}
    assert changes["Base"] == {"consistency.pixel_weight": 0.0, "consistency.semantic_weight": 0.0}
    assert changes["+Semantic+Pixel"] == {} and changes["+Shared seeds"] == {"solver.seed_mode": "shared"}
    assert changes["DiffPIR (per frame)"] == {"method": "diffpir"}
    # identical seeds: every row restores the same observation
    obs = {label: json.loads((out_dir / m["dir"] / "sequences/seq-a/result.json").read_text())["config"]["task"]
           for label, m in res["methods"].items()}
    assert len({json.dumps(v, sort_keys=True) for v in obs.values()}) == 1
    # the pixel term changes the result; DiffPIR went through our harness with the same metrics
    assert res["table"]["+Pixel"]["warping_error"] != res["table"]["Base"]["warping_error"]
    diffpir = json.loads((out_dir / "diffpir/sequences/seq-a/result.json").read_text())
    assert diffpir["chunks"][0]["method"] == "diffpir" and diffpir["prior"] == "tiny-random"
    assert math.isfinite(diffpir["metrics"]["psnr"])

    rows = _csv(out_dir / "results.csv")
    assert [r["method"] for r in rows] == labels
    assert {"psnr", "ssim", "lpips", "we_x1e-2", "wall_time_s"} <= set(rows[0])
    report = (out_dir / "report.md").read_text()
    assert "| method | PSNR (dB) | SSIM | LPIPS | WE (x1e-2) | time (s) |" in report
    assert "**" in report and "<u>" in report and "plots/seq-a_psnr_per_frame.png" in report
    assert (out_dir / "plots" / "seq-a_warping_error_per_frame.png").stat().st_size > 0
    assert json.loads((out_dir / "results.json").read_text())["table"]["Base"]["psnr"] == res["table"]["Base"]["psnr"]

    again = run_ablation(davis_root, out_dir, full, **kw)  # everything finished: nothing recomputed
    assert len(count_restores) == len(labels) and again["table"] == res["table"]
    with pytest.raises(VidplugError, match="different settings"):
        run_ablation(davis_root, out_dir, full, **{**kw, "diffpir": DiffPIRSettings(steps=4)})


def test_ablation_rows_are_the_yaml_files():
    sr4 = load_config(CONFIGS / "tasks" / "sr4.yaml")
    full = full_method_config()
    assert sr4.consistency == full.consistency and sr4.method == full.method == "dmplug"
    assert full.consistency.semantic_weight > 0 and full.consistency.pixel_weight > 0
    rows = {**ablation_rows("rows"), **ablation_rows("shared_seeds"), **ablation_rows("baselines")}
    assert list(rows) == ["Base", "+Semantic", "+Pixel", "+Semantic+Pixel", "+Shared seeds", "Bicubic / A^+",
                          "DiffPIR (per frame)"]
    assert rows["Base"] == ("base", {"consistency": {"semantic_weight": 0.0, "pixel_weight": 0.0}})
    for label, (folder, change) in rows.items():
        data = load_yaml(CONFIGS / "ablation" / f"{folder}.yaml")
        assert data.pop("base") == "../tasks/sr4.yaml" and data == change, label
        assert load_config(CONFIGS / "ablation" / f"{folder}.yaml") == merge(sr4, change)  # each row runs alone


def test_ablation_rejects_a_non_dmplug_full_method_and_unknown_baselines():
    with pytest.raises(VidplugError, match="drop --method bicubic"):
        ablation_configs(merge(full_method_config(), {"method": "bicubic"}))
    with pytest.raises(VidplugError, match="unknown baseline 'dps'"):
        ablation_configs(full_method_config(), baselines=("dps",))


def test_eps_denoiser_recovers_the_clean_image_with_an_oracle_network():
    """With an epsilon network that returns the true noise, deepinv's D(x, sigma) must give back x0 exactly: checks
    the sigma -> timestep mapping and the [0, 1] <-> [-1, 1] conversions."""
    x0 = torch.rand(1, 6, 8, 8)  # two frames stacked along channels
    noise = torch.randn(1, 6, 8, 8)
    ab = linear_alphas_cumprod(1000)
    t = 400
    sigma01 = float(((1 - ab[t]) / ab[t]).sqrt()) / 2  # the noise std on [0, 1] frames at timestep t
    oracle = DiffusionPrior(lambda x_t, tt: noise.reshape(2, 3, 8, 8), ab, name="oracle")
    den = EpsDenoiser(oracle)
    assert den.timestep(sigma01) == t
    noisy = x0 + sigma01 * noise  # what deepinv hands the denoiser
    assert torch.allclose(den(noisy, sigma01), x0, atol=1e-5)


def test_window_physics_is_adjoint_and_crops():
    op = build_operator("sr", 4, (16, 16), factor=2, noise_sigma=0.0)
    y = op.A(torch.rand(4, 3, 16, 16))
    physics = window_physics(op, 1, 3, (4, 3, 16, 16), tuple(y.shape), noise_std=0.005)
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 12, 16, 16, generator=g), torch.randn(1, 6, 8, 8, generator=g)
    assert physics.A(x).shape == (1, 6, 8, 8)
    assert torch.allclose((physics.A(x) * v).sum(), (x * physics.A_adjoint(v)).sum(), rtol=1e-5)
    assert torch.allclose(physics.A(x).reshape(2, 3, 8, 8), op.A(x.reshape(4, 3, 16, 16))[1:3])


def test_ranked_table_marks_best_and_second_by_direction():
    rows = {"a": {"psnr": 30.0, "lpips": 0.30, "warping_error": 0.02, "wall_time_s": 1.0},
            "b": {"psnr": 31.0, "lpips": 0.10, "warping_error": 0.01, "wall_time_s": 9.0},
            "c": {"psnr": 29.0, "lpips": None, "warping_error": 0.03, "wall_time_s": 5.0}}
    lines = {line.split("|")[1].strip(): line for line in ranked_table(rows).splitlines()[2:]}
    assert "**31.00**" in lines["b"] and "<u>30.00</u>" in lines["a"] and "29.00 |" in lines["c"]
    assert "**0.1000**" in lines["b"] and "<u>0.3000</u>" in lines["a"] and "n/a" in lines["c"]
    assert "**1.0000**" in lines["b"] and "<u>2.0000</u>" in lines["a"]  # WE shown x1e-2, lower is better
    assert "**" not in lines["a"].split("|")[-2]  # time is not ranked


def test_cli_eval_tiny_run_and_bad_root(davis_root, tmp_path, capsys):
    prior = save_tiny_prior(tmp_path / "prior")
    out = tmp_path / "cli"
    args = ["eval", "--davis", str(davis_root), "--out", str(out), "--sequences", "seq-b", "--task", "sr",
            "--set", "task.options.factor=2", "--prior", str(prior), "--iters", "2", "--max-frames", "3",
            "--size", "32", "--device", "cpu", "--no-progress", "--no-videos", "--set", "consistency.flow_model=dis"]
    assert main(args) == 0
    assert "PSNR" in capsys.readouterr().out
    rows = _csv(out / "results.csv")
    assert [r["sequence"] for r in rows] == ["seq-b"] and rows[0]["frames"] == "3"
    assert main([*args, "--iters", "3"]) == 2  # changed settings, no --overwrite
    err = capsys.readouterr().err.strip()
    assert "different settings" in err and "\n" not in err

    assert main(["eval", "--davis", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--method", "bicubic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidplug eval: error: dataset root") and "\n" not in err
