"""DMPlug solver on tiny problems: gradients, determinism, descent, extra terms, ES-WMV, divergence guard, L-BFGS,
shared seeds, oracle curve. Tiny random UNet, 3 frames of 16x16, a few dozen iterations at most."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import make_tiny_prior, make_translating_video
from vidplug.errors import VidplugError
from vidplug.prior.ddim import ddim_timesteps, reverse_to_unit
from vidplug.solver import ESWMV, SolverConfig, make_seeds, solve
from vidplug.solver.seeds import SharedSeeds

SHAPE = (3, 3, 16, 16)


class AvgPool2x(torch.nn.Module):
    """2x average-pool super-resolution operator (tiny stand-in for vidplug.physics)."""

    def A(self, x):
        return F.avg_pool2d(x, 2)  # (T, C, H/2, W/2)

    def A_dagger(self, y):
        return F.interpolate(y, scale_factor=2, mode="nearest").clamp(0, 1)


class Blind(torch.nn.Module):
    """Observes nothing: A(x) = 0, so the data gradient is exactly zero."""

    def A(self, x):
        return 0.0 * x

    def A_dagger(self, y):
        return torch.zeros_like(y)


class Recorder:
    """A LossTerm that records the iterations it sees; value mean(x^2); optionally NaN at chosen calls."""

    def __init__(self, name="rec", weight=0.5, nan_at=(), nan_from=None):
        self.name, self.weight = name, weight
        self.iterations: list[int] = []
        self.calls = 0
        self.nan_at, self.nan_from = set(nan_at), nan_from

    def __call__(self, x, iteration):
        self.iterations.append(iteration)
        call = self.calls
        self.calls += 1
        value = (x**2).mean()
        if call in self.nan_at or (self.nan_from is not None and iteration >= self.nan_from):
            value = value * float("nan")
        return value


@pytest.fixture
def problem():
    x = make_translating_video(3, 16, 16)
    op = AvgPool2x()
    return x, op, op.A(x)


def _cfg(**kw):
    base = dict(iters=20, early_stop=False, log_every=5, es_check_every=5)
    base.update(kw)
    return SolverConfig(**base)


def test_gradient_reaches_the_seeds_through_all_steps(tiny_prior):
    ts = ddim_timesteps(3, 1000)
    assert ts == [666, 333, 0]
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), requires_grad=True)
    x = reverse_to_unit(z, tiny_prior, ts)
    F.avg_pool2d(x, 2).square().mean().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_same_seed_same_result_other_seed_different(tiny_prior, problem):
    _, op, y = problem
    cfg = _cfg(iters=5)
    a = solve(y, op, tiny_prior, cfg, generator=torch.Generator().manual_seed(1), progress=False)
    b = solve(y, op, tiny_prior, cfg, generator=torch.Generator().manual_seed(1), progress=False)
    c = solve(y, op, tiny_prior, cfg, generator=torch.Generator().manual_seed(2), progress=False)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.z, b.z)
    assert not torch.allclose(a.frames, c.frames)


def test_data_loss_decreases_and_result_is_consistent(tiny_prior, problem):
    _, op, y = problem
    r = solve(y, op, tiny_prior, _cfg(), progress=False)
    data = r.loss_history["data"]
    assert len(data) == r.iterations_run == 20 and r.stopped_by == "max-iters"
    assert data[-1] < 0.8 * data[0]
    # ES off: the last iterate, and its seed reproduces its frames
    assert r.chosen_iteration == 19
    assert r.frames.shape == SHAPE and r.frames.min() >= 0 and r.frames.max() <= 1
    with torch.no_grad():
        again = reverse_to_unit(r.z, tiny_prior, ddim_timesteps(3)).clamp(0, 1)
    torch.testing.assert_close(again, r.frames)
    assert r.iters_per_s > 0 and r.frame_iters_per_s == pytest.approx(3 * r.iters_per_s)
    json.dumps(r.to_dict())  # report-ready: no tensors


def test_extra_terms_are_called_with_the_iteration_and_weighted(tiny_prior, problem):
    _, op, y = problem
    rec = Recorder(weight=0.25)
    r = solve(y, op, tiny_prior, _cfg(iters=6), extra_terms=[rec], progress=False)
    assert rec.iterations == list(range(6))
    h = r.loss_history
    assert set(h) == {"total", "data", "rec"}
    for total, data, term in zip(h["total"], h["data"], h["rec"], strict=True):
        assert total == pytest.approx(data + 0.25 * term, rel=1e-5)


def test_duplicate_or_reserved_term_names_are_rejected(tiny_prior, problem):
    _, op, y = problem
    with pytest.raises(VidplugError):
        solve(y, op, tiny_prior, _cfg(iters=2), extra_terms=[Recorder("data")], progress=False)
    with pytest.raises(VidplugError):
        solve(y, op, tiny_prior, _cfg(iters=2), extra_terms=[Recorder("a"), Recorder("a")], progress=False)


@pytest.mark.slow
def test_nan_loss_restarts_once_at_half_the_learning_rate(tiny_prior, problem):
    _, op, y = problem
    rec = Recorder(nan_at={7})  # only the 8th call, i.e. iteration 7 of the first attempt
    r = solve(y, op, tiny_prior, _cfg(iters=10, lr=1e-2), extra_terms=[rec], progress=False)
    assert r.retries == 1 and r.lr == pytest.approx(5e-3)
    assert "iteration 7" in r.notes[0] and "lr 0.005" in r.notes[0]
    assert r.stopped_by == "max-iters" and r.iterations_run == 10
    assert torch.isfinite(r.frames).all()
    assert all(v == v for v in r.loss_history["total"])  # the retry's history has no NaN


def test_diverging_twice_returns_the_last_finite_iterate(tiny_prior, problem):
    _, op, y = problem
    rec = Recorder(nan_from=4)
    r = solve(y, op, tiny_prior, _cfg(iters=8, es_check_every=1), extra_terms=[rec], progress=False)
    assert r.stopped_by == "diverged" and r.retries == 1
    assert r.chosen_iteration == 3 and torch.isfinite(r.frames).all()
    assert any("last finite iterate" in n for n in r.notes)


def test_diverging_with_nothing_finite_raises(tiny_prior, problem):
    _, op, y = problem
    with pytest.raises(VidplugError, match="lower solver.lr"):
        solve(y, op, tiny_prior, _cfg(iters=5), extra_terms=[Recorder(nan_from=0)], progress=False)


def test_es_wmv_stops_and_returns_its_choice(tiny_prior, problem):
    # With nothing observed the seeds never move: the variance is 0 at the first full window (iteration 2) and
    # never strictly lower, so ES-WMV stops at iteration 2 + patience and returns iteration 2.
    x, _, _ = problem
    cfg = _cfg(iters=50, early_stop=True, es_window=3, es_patience=4, es_check_every=1)
    r = solve(x, Blind(), tiny_prior, cfg, reference=x, progress=False)
    assert r.stopped_by == "es-wmv"
    assert r.chosen_iteration == 2 and r.iterations_run == 7
    assert len(r.es_variance) == 7 and r.es_variance[2] == 0.0
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["es_variance"][0] is None  # NaN before the window


def test_es_enabled_but_window_never_fills_returns_last_iterate(tiny_prior, problem):
    _, op, y = problem
    r = solve(y, op, tiny_prior, _cfg(iters=4, early_stop=True, es_window=10), progress=False)
    assert r.stopped_by == "max-iters" and r.chosen_iteration == 3
    assert any("never filled" in n for n in r.notes)


def test_es_choice_matches_standalone_detector(tiny_prior, problem):
    _, op, y = problem
    cfg = _cfg(iters=8, early_stop=True, es_window=3, es_patience=100)
    r = solve(y, op, tiny_prior, cfg, progress=False)
    assert r.stopped_by == "max-iters"
    # replay the same run's outputs through a standalone detector: same choice
    es = ESWMV(**cfg.es_settings())  # the preset's mode and downscale with W 3, P 100
    seeds = make_seeds(SHAPE, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(seeds.parameters(), lr=1e-2)
    for it in range(8):
        opt.zero_grad()
        xo = reverse_to_unit(seeds(), tiny_prior, ddim_timesteps(3))
        F.mse_loss(op.A(xo), y).backward()
        es.update(xo.detach(), it)
        opt.step()
    assert r.chosen_iteration == es.best_iteration
    torch.testing.assert_close(r.frames, es.best_output.clamp(0, 1))


def test_lbfgs_runs_and_lowers_the_loss(tiny_prior, problem):
    _, op, y = problem
    r = solve(y, op, tiny_prior, _cfg(iters=10, optimizer="lbfgs"), progress=False)
    assert r.lr == pytest.approx(0.1) and r.iterations_run == 10
    data = r.loss_history["data"]
    assert len(data) == 10 and data[-1] < 0.5 * data[0]


@pytest.mark.parametrize("rank", [0, 2])
def test_shared_seeds_give_distinct_frames_and_gradients_reach_every_part(tiny_prior, problem, rank):
    _, op, y = problem
    seeds = make_seeds(SHAPE, mode="shared", rank=rank, generator=torch.Generator().manual_seed(0))
    assert isinstance(seeds, SharedSeeds) and seeds.rank == rank
    x = reverse_to_unit(seeds(), tiny_prior, ddim_timesteps(3))
    F.mse_loss(op.A(x), y).backward()
    for p in seeds.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    r = solve(y, op, tiny_prior, _cfg(iters=3, seed_mode="shared", seed_rank=rank), progress=False)
    f = r.frames
    assert not torch.allclose(f[0], f[1]) and not torch.allclose(f[1], f[2])


def test_shared_seed_init_has_unit_variance_and_z_init_round_trips():
    g = torch.Generator().manual_seed(0)
    big = make_seeds((4, 3, 32, 32), mode="shared", rank=0, residual_scale=0.5, generator=g)()
    assert big.std().item() == pytest.approx(1.0, abs=0.05)
    z0 = torch.randn(SHAPE, generator=g)
    torch.testing.assert_close(make_seeds(SHAPE, mode="shared", z_init=z0)(), z0)
    # after removing the frame mean the residual has rank <= T - 1 = 2, so rank 2 is exact and rank 1 is not
    torch.testing.assert_close(make_seeds(SHAPE, mode="shared", rank=2, z_init=z0)(), z0, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(make_seeds(SHAPE, mode="shared", rank=1, z_init=z0)(), z0, atol=1e-3)


def test_oracle_curve_only_with_a_reference(tiny_prior, problem):
    x, op, y = problem
    without = solve(y, op, tiny_prior, _cfg(iters=3), progress=False)
    with_ref = solve(y, op, tiny_prior, _cfg(iters=3), reference=x, progress=False)
    assert without.oracle_psnr is None
    assert len(with_ref.oracle_psnr) == 3 and all(p > 0 for p in with_ref.oracle_psnr)
    assert torch.equal(without.frames, with_ref.frames)  # the oracle never changes the result


def test_eta_and_autocast_options_run(tiny_prior, problem):
    _, op, y = problem
    a = solve(y, op, tiny_prior, _cfg(iters=2, eta=0.5), generator=torch.Generator().manual_seed(3), progress=False)
    b = solve(y, op, tiny_prior, _cfg(iters=2, eta=0.5), generator=torch.Generator().manual_seed(3), progress=False)
    assert torch.equal(a.frames, b.frames)  # the DDIM noise is fixed by the generator
    c = solve(y, op, tiny_prior, _cfg(iters=2, autocast="bf16"), progress=False)
    assert torch.isfinite(c.frames).all()
    fast = _cfg(iters=2, autocast="bf16", checkpoint=True, micro_batch=2, channels_last=True)  # every switch at once
    d = solve(y, op, make_tiny_prior(), fast, progress=False)
    assert torch.isfinite(d.frames).all() and (d.frames - c.frames).abs().mean() < 0.02  # bf16 rounding only


@pytest.mark.parametrize(
    "kw",
    [{"optimizer": "sgd"}, {"lr": -1.0}, {"iters": 0}, {"autocast": "fp8"}, {"seed_mode": "x"}, {"es_window": 1},
     {"micro_batch": -1}, {"frame_threads": -1}],
)
def test_bad_config_raises_one_line_error(kw):
    with pytest.raises(VidplugError) as info:
        SolverConfig(**kw)
    assert "\n" not in str(info.value)


def test_shapes_are_checked(tiny_prior, problem):
    x, op, y = problem
    with pytest.raises(VidplugError):
        solve(y, op, tiny_prior, _cfg(iters=1), z_init=torch.zeros(2, 3, 16, 16), progress=False)
    with pytest.raises(VidplugError):
        solve(y, op, tiny_prior, _cfg(iters=1), reference=x[:2], progress=False)
    with pytest.raises(VidplugError):
        solve(y[0], op, tiny_prior, _cfg(iters=1), progress=False)


class Smoothness:
    """A term coupling neighbouring frames: mean squared temporal difference (like the consistency terms)."""

    name, weight = "smooth", 0.3

    def __call__(self, x, iteration):
        return ((x[1:] - x[:-1]) ** 2).mean()


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(seed_mode="shared", seed_rank=0, eta=0.5, checkpoint=True),
        dict(optimizer="lbfgs", iters=2),  # L-BFGS's curvature steps amplify float rounding: compare early
    ],
)
@pytest.mark.parametrize("key, values", [("micro_batch", (0, 2, 1)), ("frame_threads", (1, 2, 3))])
@pytest.mark.slow
def test_split_backward_gives_the_same_solve(tiny_prior, problem, kw, key, values):
    """Micro-batching (R re-run m frames at a time) and frame threads (R's frames over n threads) change how R's
    backward is split over the frames, not the gradients."""
    _, op, y = problem
    kw = {"iters": 6, **kw}
    runs = [
        solve(y, op, tiny_prior, _cfg(**{key: v}, **kw), extra_terms=[Smoothness()],
              generator=torch.Generator().manual_seed(1), progress=False)
        for v in values
    ]
    for r in runs[1:]:
        torch.testing.assert_close(r.frames, runs[0].frames, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(r.z, runs[0].z, atol=1e-5, rtol=1e-4)
        assert r.loss_history["total"] == pytest.approx(runs[0].loss_history["total"], rel=1e-4)


def test_micro_batch_bounds_the_frames_the_network_sees_with_grad(tiny_prior, problem):
    _, op, y = problem
    seen = []
    hook = tiny_prior.net.register_forward_pre_hook(
        lambda mod, args: seen.append((args[0].shape[0], torch.is_grad_enabled()))
    )
    try:
        solve(y, op, tiny_prior, _cfg(iters=2, micro_batch=1), progress=False)
        with_grad = [n for n, grad in seen if grad]
        without_grad = [n for n, grad in seen if not grad]
        assert with_grad and max(with_grad) == 1 and sum(with_grad) == 2 * 3 * SHAPE[0]  # 2 iterations, K = 3
        assert without_grad == with_grad  # one extra forward per iteration, also a frame at a time
        seen.clear()
        solve(y, op, tiny_prior, _cfg(iters=2, frame_threads=1), progress=False)
        assert {n for n, grad in seen} == {SHAPE[0]} and all(grad for _, grad in seen)
    finally:
        hook.remove()


def test_frame_threads_run_groups_of_frames_on_worker_threads_at_one_torch_thread(tiny_prior, problem):
    import threading

    _, op, y = problem
    seen = []
    hook = tiny_prior.net.register_forward_pre_hook(lambda mod, args: seen.append(
        (args[0].shape[0], threading.current_thread().name, torch.get_num_threads(), torch.is_grad_enabled())))
    caller = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        solve(y, op, tiny_prior, _cfg(iters=2, frame_threads=2), progress=False)
        assert torch.get_num_threads() == 2  # the caller's count is left as it was
    finally:
        torch.set_num_threads(caller)
        hook.remove()
    in_solve = [s for s in seen if s[3]]  # the solve's calls (the final R(z*) runs without grad, on the caller)
    assert sorted(n for n, *_ in in_solve) == [1] * 6 + [2] * 6  # T = 3 in groups of 2 and 1, K = 3, 2 iterations
    assert all(name.startswith("vidplug-worker") and threads == 1 for _, name, threads, _ in in_solve)


def test_frame_workers_auto_is_torch_threads_on_cpu_capped_by_frames():
    from vidplug.solver.reverse import frame_workers

    caller = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert frame_workers(0, torch.zeros(8, 3, 4, 4)) == 2
        assert frame_workers(0, torch.zeros(1, 3, 4, 4)) == 1  # one frame: nothing to split
        assert frame_workers(0, torch.zeros(8, 3, 4, 4, device="meta")) == 1  # not a CPU tensor: one call
        assert frame_workers(1, torch.zeros(8, 3, 4, 4)) == 1
        assert frame_workers(4, torch.zeros(3, 3, 4, 4)) == 3
    finally:
        torch.set_num_threads(caller)


def test_channels_last_gives_the_same_solve_and_feeds_the_network_nhwc(problem):
    from vidplug.solver.reverse import fast_prior

    _, op, y = problem
    prior = make_tiny_prior()
    plain = solve(y, op, prior, _cfg(iters=4), progress=False)
    layouts = []
    hook = prior.net.register_forward_pre_hook(
        lambda mod, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    try:
        fast = solve(y, op, prior, _cfg(iters=4, channels_last=True), progress=False)
    finally:
        hook.remove()
    assert layouts and all(layouts)
    torch.testing.assert_close(fast.frames, plain.frames, atol=1e-4, rtol=1e-4)
    assert fast_prior(prior, channels_last=True) is fast_prior(prior, channels_last=True)  # cached per prior
    assert fast_prior(prior) is prior
    again = solve(y, op, prior, _cfg(iters=4), progress=False)  # the original prior still works (NHWC weights)
    torch.testing.assert_close(again.frames, plain.frames, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_lbfgs_moves_from_a_warm_start_with_tiny_gradients(tiny_prior):
    # seeds that already explain the observation up to small noise: a mean-reduced loss of ~1e-4 over 2x3x64x64
    # frames has gradients so small that torch's L-BFGS first step (lr * g) is lost in float32 and the seeds freeze
    op, g = AvgPool2x(), torch.Generator().manual_seed(0)
    z0 = torch.randn(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        y = op.A(reverse_to_unit(z0, tiny_prior, ddim_timesteps(3))) + 0.01 * torch.randn(2, 3, 32, 32, generator=g)
    r = solve(y, op, tiny_prior, _cfg(iters=8, optimizer="lbfgs"), z_init=z0, progress=False)
    losses = r.loss_history["data"]
    assert losses[-1] < 0.5 * losses[0]  # was 0.997 (frozen) before the fix


def test_es_observe_runs_on_and_returns_the_same_choice(tiny_prior, problem):
    x, _, _ = problem
    stop = solve(x, Blind(), tiny_prior, _cfg(iters=20, early_stop=True, es_window=3, es_patience=4,
                                              es_check_every=1), progress=False)
    seen = []
    observe = solve(x, Blind(), tiny_prior, _cfg(iters=20, early_stop=True, es_window=3, es_patience=4,
                                                 es_observe=True), progress=False,
                    on_iterate=lambda it, out: seen.append(it))
    assert stop.iterations_run == 7 and observe.iterations_run == 20 and seen == list(range(20))
    assert observe.chosen_iteration == stop.chosen_iteration == 2
    assert observe.es_stop_iteration == stop.es_stop_iteration == 6
    torch.testing.assert_close(observe.frames, stop.frames)


def test_es_presets_and_explicit_keys():
    assert SolverConfig(es_preset="published").es_settings() == {"window": 20, "patience": 50, "mode": "window",
                                                                 "downscale": 1}
    cfg = SolverConfig(es_preset="published", es_patience=7, es_mode="ema")
    assert cfg.es_settings() == {"window": 20, "patience": 7, "mode": "ema", "downscale": 1}
    for bad in ({"es_preset": "fast"}, {"es_mode": "median"}, {"es_downscale": 0}):
        with pytest.raises(VidplugError, match="solver.es_"):
            SolverConfig(**bad)
