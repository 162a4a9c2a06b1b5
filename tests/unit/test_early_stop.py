"""ES-WMV: windowed variance, the chosen iterate, patience, and no host synchronisation per update."""

from __future__ import annotations

import pytest
import torch

from vidplug.errors import VidplugError
from vidplug.solver.early_stop import ESWMV


def _naive_variance(window: list[torch.Tensor]) -> float:
    w = torch.stack(window).double()  # (W, ...)
    return float(((w - w.mean(0)) ** 2).mean())


def test_parabola_chooses_the_newest_iterate_of_the_centred_window():
    # v_t = (t - 10)^2: the 5-wide window with the least spread is [8..12] (values 4,1,0,1,4, VAR 2.8);
    # its neighbours [7..11] and [9..13] have VAR 10.8. The newest iterate of the best window is t = 12, and with
    # patience 3 the detector stops at the update of t = 15.
    es = ESWMV(window=5, patience=3)
    stopped_at = None
    for t in range(40):
        x = torch.full((2, 3, 4, 4), float((t - 10) ** 2))
        if bool(es.update(x, t, z=torch.full((2, 3, 4, 4), float(t)))):
            stopped_at = t
            break
    assert stopped_at == 15
    assert es.best_iteration == 12
    assert torch.equal(es.best_output, torch.full((2, 3, 4, 4), 4.0))
    assert torch.equal(es.best_z, torch.full((2, 3, 4, 4), 12.0))
    assert float(es.best_variance) == pytest.approx(2.8, rel=1e-6)


def test_converge_then_oscillate_with_growing_amplitude():
    # Outputs approach 0.5 (amplitude 2^-t), then from t = 12 oscillate around it with amplitude growing 0.01*(t-11).
    # The variance is smallest for the window ending right before the oscillation starts.
    def value(t: int) -> float:
        if t < 12:
            return 0.5 + 2.0 ** (-t)
        return 0.5 + (-1) ** t * 0.01 * (t - 11)

    es = ESWMV(window=4, patience=6)
    history = []
    stopped_at = None
    for t in range(60):
        x = torch.full((1, 3, 8, 8), value(t))
        history.append(x)
        if bool(es.update(x, t)):
            stopped_at = t
            break
    variances = [_naive_variance(history[e - 3 : e + 1]) for e in range(3, len(history))]
    expected_best = 3 + min(range(len(variances)), key=variances.__getitem__)
    assert expected_best == 11  # the last window of the smooth convergence: by hand, [8..11]
    assert es.best_iteration == expected_best
    assert stopped_at == expected_best + 6
    assert es.best_z is None  # no seeds were passed


def test_running_variance_matches_naive_on_long_offset_sequence():
    # Large offset + small noise is where naive running sums of squares lose all precision in float32.
    g = torch.Generator().manual_seed(0)
    es = ESWMV(window=7, patience=10_000)
    history = []
    for t in range(60):
        x = 100.0 + 1e-3 * torch.randn(3, 3, 8, 8, generator=g) + 1e-4 * t
        history.append(x)
        es.update(x, t)
        if t >= 6:
            assert float(es.last_variance) == pytest.approx(_naive_variance(history[-7:]), rel=1e-3)
    naive = [_naive_variance(history[e - 6 : e + 1]) for e in range(6, 60)]
    assert es.best_iteration == 6 + min(range(len(naive)), key=naive.__getitem__)


def test_nan_output_is_never_chosen():
    es = ESWMV(window=2, patience=100)
    for t, v in enumerate([1.0, 1.0, float("nan"), 5.0, 9.0]):
        es.update(torch.full((1, 1, 2, 2), v), t)
    assert es.best_iteration == 1
    assert torch.isfinite(es.best_output).all()


def test_update_stays_on_device_without_host_sync(monkeypatch):
    es = ESWMV(window=3, patience=2)

    def no_sync(*args, **kwargs):
        raise AssertionError("host synchronisation inside ESWMV.update")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, no_sync)
    outs = [es.update(torch.full((1, 3, 4, 4), float(t % 3)), t, z=torch.zeros(1, 3, 4, 4)) for t in range(12)]
    monkeypatch.undo()
    assert all(isinstance(o, torch.Tensor) and o.ndim == 0 and o.dtype == torch.bool for o in outs)
    assert isinstance(es.best_iteration_tensor, torch.Tensor)
    assert isinstance(es.best_variance, torch.Tensor)


def test_before_the_window_fills_there_is_no_choice_and_no_stop():
    es = ESWMV(window=5, patience=1)
    for t in range(4):
        assert not bool(es.update(torch.rand(1, 1, 2, 2), t))
    assert es.best_iteration is None and es.best_output is None and not es.window_full


@pytest.mark.parametrize("window, patience", [(1, 5), (5, 0)])
def test_bad_arguments_raise(window, patience):
    with pytest.raises(VidplugError):
        ESWMV(window=window, patience=patience)


def test_choice_is_frozen_once_the_rule_fires():
    # parabola as above: fires at t = 15 choosing t = 12; a deeper valley later must not change the choice
    es = ESWMV(window=5, patience=3)
    for t in range(40):
        v = float((t - 10) ** 2) if t < 20 else 0.0  # constant from t = 20: variance 0, lower than 2.8
        es.update(torch.full((1, 1, 2, 2), v), t)
    assert es.stop_iteration == 15 and es.best_iteration == 12 and bool(es.stop_flag)


def test_ema_variance_follows_its_recursion():
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(1, 3, 4, 4, generator=g) * (1 + t % 3) for t in range(12)]
    es = ESWMV(window=4, patience=100, mode="ema")
    a = 2 / 5
    mean, var = xs[0].double(), torch.zeros((), dtype=torch.float64)
    for t, x in enumerate(xs):
        es.update(x, t)
        if t > 0:
            d = x.double() - mean
            mean = mean + a * d
            var = (1 - a) * (var + a * (d * d).mean())
        if t >= 3:  # valid from the W-th output, bias-corrected for the average's start at 0
            assert float(es.last_variance) == pytest.approx(float(var) / (1 - (1 - a) ** t), rel=1e-5)
        else:
            assert es.best_iteration is None


def test_downscale_ignores_pixel_jitter_but_not_a_moving_mean():
    # checkerboard jitter of +-1 averages out in 2x2 pools; a drifting brightness does not
    board = (torch.arange(4).view(-1, 1) + torch.arange(4).view(1, -1)) % 2 * 2.0 - 1.0  # (4, 4) of +-1
    plain, pooled = ESWMV(window=3, patience=100), ESWMV(window=3, patience=100, downscale=2)
    for t in range(5):
        x = (board * (-1) ** t).expand(1, 3, 4, 4).clone()
        plain.update(x, t)
        pooled.update(x, t)
    assert float(plain.last_variance) > 0.5 and float(pooled.last_variance) < 1e-12
    drift = ESWMV(window=3, patience=100, downscale=2)
    for t in range(5):
        drift.update(torch.full((1, 3, 4, 4), float(t)), t)
    assert float(drift.last_variance) == pytest.approx(2 / 3)
    assert drift.best_output.shape == (1, 3, 4, 4)  # the choice stays full size


@pytest.mark.parametrize("kwargs", [{"mode": "median"}, {"downscale": 0}])
def test_bad_variant_raises(kwargs):
    with pytest.raises(VidplugError, match="solver.es_"):
        ESWMV(window=3, patience=3, **kwargs)
