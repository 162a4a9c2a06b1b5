"""Issue 18's levers on tiny synthetic data: border reflection inside the prior's network call, the measurement
projection, the inversion-offset warm start, the classical baselines and each prior's recommended settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import save_tiny_prior
from vidplug.config import load_config
from vidplug.config.bundled import configs_dir, prior_defaults
from vidplug.errors import VidplugError
from vidplug.methods import METHODS
from vidplug.methods.classical import TASK_BASELINES, telea_inpaint
from vidplug.physics import build_operator
from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod
from vidplug.prior.ddim import ddim_timesteps, reverse_to_unit
from vidplug.solver.chunk_problem import CroppedOperator, inversion_seeds, project
from vidplug.solver.config import SolverConfig
from vidplug.solver.reverse import reverse_fn


def start_offset(estimate, z0, prior, num_steps):
    """``estimate - R(z0)``, computed before the solve: what :class:`~vidplug.solver.reverse.StartOffset` takes from
    the solve's first pass through R instead."""
    with torch.no_grad():
        return estimate - reverse_to_unit(z0, prior, ddim_timesteps(num_steps, prior.num_train_timesteps, "leading"))


class ZeroPadBox(torch.nn.Module):
    """A 3x3 box filter with zero padding: what a UNet's zero padding does at a frame border, in one layer."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x, t):
        self.shapes.append(tuple(x.shape))
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)


def test_border_pad_reflects_inside_the_network_call_and_crops_back():
    net = ZeroPadBox()
    prior = DiffusionPrior(net, linear_alphas_cumprod(1000), "box", multiple=8)
    x = torch.ones(2, 3, 12, 20)
    plain = prior.eps(x, 5)
    assert plain.shape == x.shape
    assert plain[0, 0, 0, 0] == pytest.approx(4 / 9)  # the zero padding darkens the corner
    prior.border_pad = 4
    padded = prior.eps(x, 5)
    assert padded.shape == x.shape and net.shapes[-1][2] % 8 == 0 and net.shapes[-1][3] % 8 == 0
    assert net.shapes[-1][2] >= 12 + 8 and net.shapes[-1][3] >= 20 + 8
    assert torch.allclose(padded, torch.ones_like(padded))  # the border sees reflected pixels, not zeros
    ramp = torch.arange(12.0).view(1, 1, 12, 1).expand(1, 3, 12, 20).contiguous()
    assert torch.allclose(prior.eps(ramp, 5)[..., 1:-1, :], ramp[..., 1:-1, :], atol=1e-5)  # interior unchanged


def test_projection_makes_sr_and_inpainting_restorations_consistent_with_the_measurement():
    g = torch.Generator().manual_seed(0)
    truth = 0.2 + 0.6 * torch.rand(2, 3, 16, 16, generator=g)  # inside [0, 1]: the final clamp does not bite
    for task, opts in (("sr4", {}), ("inpaint", {"ratio": 0.5})):
        op = build_operator(task, 2, (16, 16), noise_sigma=0.0, **opts)
        y = op.A(truth)
        guess = (truth + 0.1 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
        data_op = CroppedOperator(op, 0, 2)
        out = project(data_op, y, guess, steps=30, damping=1e-3)
        before, after = (op.A(guess) - y).norm(), (op.A(out) - y).norm()
        assert after < 0.1 * before, task
        assert (out - truth).norm() < (guess - truth).norm(), task  # consistency removes part of the error
        assert out.min() >= 0 and out.max() <= 1


def test_cropped_operator_adjoint_is_exact():
    op = build_operator("temporal", 5, (8, 8), noise_sigma=0.0, k=3)
    data_op = CroppedOperator(op, 1, 4)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(5, 3, 8, 8, generator=g, dtype=torch.float32), torch.rand(3, 3, 8, 8, generator=g)
    assert float((data_op.A(x) * y).sum()) == pytest.approx(float((x * data_op.A_adjoint(y)).sum()), rel=1e-5)


def test_inversion_offset_starts_exactly_at_the_initial_estimate(tiny_prior):
    init = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    z0 = inversion_seeds(init, tiny_prior, 2, "leading")
    offset = start_offset(init, z0, tiny_prior, 2)
    ts = ddim_timesteps(2, 1000, "leading")
    start = reverse_fn(tiny_prior, ts, offset=offset)(z0, slice(None))
    assert torch.allclose(start, init, atol=1e-5)
    assert not torch.allclose(reverse_to_unit(z0, tiny_prior, ts), init, atol=1e-3)  # the round trip alone is not
    # one fixed-point call per level (solver.inversion_iters=1): other seeds, still an exact start with the offset
    z1 = inversion_seeds(init, tiny_prior, 2, "leading", iters=1)
    assert not torch.allclose(z1, z0)
    start1 = reverse_fn(tiny_prior, ts, offset=start_offset(init, z1, tiny_prior, 2))(z1, slice(None))
    assert torch.allclose(start1, init, atol=1e-5)


def test_solver_config_rejects_bad_projection_and_refinement():
    with pytest.raises(VidplugError, match="project_steps"):
        SolverConfig(project_steps=-1)
    with pytest.raises(VidplugError, match="project_damping"):
        SolverConfig(project_damping=0.0)
    with pytest.raises(VidplugError, match="init_refine_steps"):
        SolverConfig(init_refine_steps=-2)
    with pytest.raises(VidplugError, match="inversion_iters"):
        SolverConfig(inversion_iters=0)
    with pytest.raises(VidplugError, match="inversion-offset"):
        SolverConfig(init="nope")


def test_telea_fills_holes_from_the_surroundings_and_keeps_observed_pixels():
    y = torch.full((1, 3, 16, 16), 0.6)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 5:9, 5:9] = 0
    out = telea_inpaint(y * mask, mask)
    assert out.shape == y.shape
    assert torch.allclose(out, y, atol=2 / 255)  # the hole (zeros in the observation) is filled with 0.6


def test_task_baselines_are_registered_methods():
    assert list(TASK_BASELINES["sr4"]) == ["bicubic", "least squares"]
    assert list(TASK_BASELINES["inpaint"]) == ["neighbour fill", "OpenCV Telea"]
    for task in ("temporal", "temporal+deblur"):
        assert "regularised least squares" in TASK_BASELINES[task]
    assert all(m in METHODS for rows in TASK_BASELINES.values() for m in rows.values())


def test_least_squares_and_telea_run_through_the_pipeline(tmp_path):
    from tests.conftest import make_translating_video
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    psnr = {}
    for task, method in (("sr4", "bicubic"), ("sr4", "least-squares"), ("sr4", "flow-least-squares"),
                         ("inpaint", "telea")):
        cfg = load_config(None, [f"task.name={task}", f"method={method}", "consistency.flow_model=dis"])
        res = restore_video(clip, tmp_path / f"{task}-{method}.mp4", cfg, simulate=True, progress=False)
        psnr[task, method] = res.report["metrics"]["psnr"]
        if method == "flow-least-squares":
            assert res.report["chunks"][0]["fusion_weight"] == cfg.consistency.fusion_weight
            assert res.report["chunks"][0]["flow_model"] == "opencv_dis"
    assert psnr["sr4", "least-squares"] > psnr["sr4", "bicubic"]  # back-projection fits the measurement better
    assert psnr["sr4", "flow-least-squares"] > psnr["sr4", "least-squares"]  # the neighbours add (measured +0.24 dB)
    with pytest.raises(VidplugError, match="telea"):
        restore_video(clip, tmp_path / "x.mp4", load_config(None, ["method=telea"]), simulate=True, progress=False)


def test_restore_config_starts_from_the_priors_recommended_settings(tmp_path):
    tiny_defaults = prior_defaults("tiny", "sr4")  # the default task's settings: the file's top level and its section
    tiny = load_config(None, [], flags={"prior.name": "tiny"})
    assert tiny.solver.init == tiny_defaults["solver"]["init"] == "inversion-offset"
    assert tiny.solver.iters == tiny_defaults["solver"]["iters"] != prior_defaults("tiny")["solver"]["iters"]
    assert tiny.prior.border_pad == tiny_defaults["prior"]["border_pad"] > 0
    assert (configs_dir() / "priors" / "tiny.yaml").is_file()
    adm = load_config(None, [], flags={"prior.name": "adm-imagenet256"})
    assert (adm.solver.init, adm.solver.iters, adm.solver.optimizer, adm.solver.lr) == ("random", 300, "adam", 0.01)
    assert load_config(None, ["prior.name=tiny", "solver.iters=7"]).solver.iters == 7  # --set wins
    path = save_tiny_prior(tmp_path / "p")
    assert load_config(None, [f"prior.name={path}"]).solver.init == "random"  # no settings: the defaults
    conf = tmp_path / "c.yaml"
    conf.write_text("prior: {name: tiny}\nsolver: {iters: 11}\n")
    assert load_config(conf).solver.iters == 11  # a config file wins too
    assert load_config(conf).solver.init == "inversion-offset"
    assert adm.prior.border_pad == 0 and adm.solver.project_steps == 0


def test_a_priors_settings_file_can_hold_settings_for_one_task(tmp_path, monkeypatch):
    tiny_td = load_config(None, ["task.name=temporal+deblur"], flags={"prior.name": "tiny"})
    tiny_sr = load_config(None, ["task.name=sr4"], flags={"prior.name": "tiny"})
    task_only = prior_defaults("tiny", "temporal+deblur")["consistency"]["pixel_weight"]
    assert tiny_td.consistency.pixel_weight == task_only != tiny_sr.consistency.pixel_weight
    # the rest of the file applies to every task (temporal+deblur's own section changes its iterations only)
    assert (tiny_td.solver.lr, tiny_td.solver.init_refine_steps) == (tiny_sr.solver.lr, tiny_sr.solver.init_refine_steps)
    tiny_temporal = load_config(None, ["task.name=temporal"], flags={"prior.name": "tiny"})
    assert tiny_td.solver.iters == prior_defaults("tiny", "temporal+deblur")["solver"]["iters"] != tiny_temporal.solver.iters
    assert load_config(None, ["task.name=temporal+deblur", "consistency.pixel_weight=0"],
                       flags={"prior.name": "tiny"}).consistency.pixel_weight == 0  # --set still wins
    priors = tmp_path / "configs" / "priors"
    priors.mkdir(parents=True)
    (priors / "mine.yaml").write_text("solver: {iters: 9}\ntasks: {inpaint: {solver: {iters: 4}}}\n")
    (priors / "typo.yaml").write_text("tasks: {inpainting: {solver: {iters: 4}}}\n")
    monkeypatch.setenv("VIDPLUG_CONFIGS", str(tmp_path / "configs"))
    assert load_config(None, ["task.name=inpaint"], flags={"prior.name": "mine"}).solver.iters == 4
    assert load_config(None, ["task.name=sr4"], flags={"prior.name": "mine"}).solver.iters == 9
    with pytest.raises(VidplugError, match="unknown task.*inpainting"):
        load_config(None, [], flags={"prior.name": "typo"})


def test_dmplug_with_every_lever_on_restores_and_reports_the_unprojected_oracle(tmp_path):
    from tests.conftest import make_translating_video
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    prior = save_tiny_prior(tmp_path / "prior")
    sets = [f"prior.name={prior}", "prior.border_pad=4", "solver.iters=2", "solver.init=inversion-offset",
            "solver.init_refine_steps=5", "solver.project_steps=5", "solver.project_damping=0.1",
            "consistency.flow_model=dis"]
    res = restore_video(clip, tmp_path / "r.mp4", load_config(None, sets), simulate=True, progress=False)
    chunk = res.report["chunks"][0]
    assert chunk["oracle_psnr_projected"] == pytest.approx(res.report["metrics"]["psnr"], abs=0.5)  # 8-bit output
    assert chunk["oracle_psnr_unprojected"] > 5


def test_each_run_sets_its_own_border_pad_on_shared_models(tmp_path):
    """Models are shared between runs (ablations, the demo's rows): DiffPIR after a run with border padding must not
    inherit that padding."""
    from tests.conftest import make_translating_video
    from vidplug.io import write_video
    from vidplug.models import Models
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(2, 16, 16), clip, fps=8.0)
    prior = save_tiny_prior(tmp_path / "prior")
    padded = load_config(None, [f"prior.name={prior}", "prior.border_pad=8"])
    plain = load_config(None, [f"prior.name={prior}", "method=diffpir", "chunk.size=2"])
    models = Models(padded, torch.device("cpu"))
    assert models.run_prior(padded).border_pad == 8  # what the padded run left behind
    widths = []
    models.prior.net.register_forward_pre_hook(lambda module, args: widths.append(args[0].shape[-1]))
    restore_video(clip, tmp_path / "d.mp4", plain, simulate=True, models=models, progress=False)
    assert widths and set(widths) == {16}  # the network saw the frames unpadded (8 on each side would be 32)


def test_warm_start_on_frame_threads_equals_one_call():
    """The warm start's DDIM inversion inverts each frame alone, so frame threads split it over groups of frames
    (what the network sees) without changing the seeds; the offset is left to the solve's first pass."""
    from types import SimpleNamespace

    from tests.conftest import make_tiny_prior, make_translating_video
    from vidplug.methods.dmplug import _start
    from vidplug.solver.reverse import StartOffset

    prior, init = make_tiny_prior(), make_translating_video(3, 16, 16)
    batches = []
    hook = prior.net.register_forward_pre_hook(lambda mod, args: batches.append(args[0].shape[0]))
    try:
        starts = {}
        for n in (1, 2):
            batches.clear()
            solver = SolverConfig(init="inversion-offset", num_steps=2, inversion_iters=2, frame_threads=n)
            starts[n] = _start(SimpleNamespace(solver=solver, seed=0), prior, None, init)
            assert sorted(set(batches)) == ([3] if n == 1 else [1, 2])
            assert len(batches) == (2 * 2 if n == 1 else 2 * 2 * 2)  # K = 2 levels x 2 fixed-point calls, no R(z0)
    finally:
        hook.remove()
    torch.testing.assert_close(starts[2][0], starts[1][0], atol=1e-5, rtol=1e-4)
    assert isinstance(starts[1][1], StartOffset) and torch.equal(starts[1][1].start, init)


@pytest.mark.parametrize("frame_threads", [1, 2])
def test_start_offset_from_the_first_iteration_equals_the_offset_computed_before(tiny_prior, frame_threads):
    """solver.init=inversion-offset: the offset start - R(z0) taken from the solve's first pass through R gives the
    solve that the offset computed beforehand gives (the first iterate is the start), with K network calls fewer."""
    from vidplug.solver import solve
    from vidplug.solver.reverse import StartOffset

    init = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    op = build_operator("sr", 3, (16, 16), noise_sigma=0.0, factor=2)
    y = op.A(init.roll(1, dims=-1))  # the start is not the answer: the solve moves
    z0 = inversion_seeds(init, tiny_prior, 2, "leading", iters=1)
    cfg = SolverConfig(iters=4, num_steps=2, early_stop=False, lr=1e-2, frame_threads=frame_threads)
    calls = []
    hook = tiny_prior.net.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        before = solve(y, op, tiny_prior, cfg, z_init=z0, x_offset=start_offset(init, z0, tiny_prior, 2),
                       reference=init, progress=False)
        n_before = len(calls)
        calls.clear()
        lazy = solve(y, op, tiny_prior, cfg, z_init=z0, x_offset=StartOffset(init), reference=init, progress=False)
    finally:
        hook.remove()
    assert n_before - len(calls) == 2  # start_offset's R(z0): K = 2 network calls
    assert lazy.oracle_psnr[0] > 60  # the first iterate is the start
    assert lazy.oracle_psnr[-1] < lazy.oracle_psnr[0]  # and the solve moved from it
    torch.testing.assert_close(lazy.frames, before.frames, atol=1e-5, rtol=1e-4)
    assert lazy.loss_history["total"] == pytest.approx(before.loss_history["total"], rel=1e-4)
