"""Noise models: statistics at known intensities, named levels, parsing and its one-line errors."""

from __future__ import annotations

import pytest
import torch

from vidplug.errors import VidplugError
from vidplug.physics import NAMED_LEVELS, NOISE_TYPES, Noise, add_gaussian_noise, parse_noise

SHAPE = (4, 3, 64, 64)  # 49,152 values: sample statistics within a few percent


def flat(value: float) -> torch.Tensor:
    return torch.full(SHAPE, value)


def test_impulse_replaces_the_given_fraction_half_salt_half_pepper():
    y = flat(0.5)
    out = Noise("impulse", 0.17, seed=1)(y)
    changed = out != y
    assert abs(changed.float().mean().item() - 0.17) < 0.01
    assert set(out[changed].unique().tolist()) == {0.0, 1.0}
    salt = (out == 1).float().sum() / changed.float().sum()
    assert abs(salt.item() - 0.5) < 0.03


@pytest.mark.parametrize(("photons", "intensity"), [(25.0, 0.4), (5.0, 0.8)])
def test_shot_noise_is_poisson_mean_and_variance(photons, intensity):
    out = Noise("shot", photons, seed=2)(flat(intensity))
    assert abs(out.mean().item() - intensity) < 0.01
    expected_var = intensity / photons  # Var[Poisson(c v) / c] = v / c
    assert abs(out.var().item() / expected_var - 1) < 0.05
    counts = out * photons  # integer photon counts
    torch.testing.assert_close(counts, counts.round(), rtol=0, atol=1e-4)


def test_speckle_std_scales_with_intensity_and_gaussian_is_half_sigma():
    for v in (0.2, 0.8):
        n = Noise("speckle", 0.45, seed=3)(flat(v)) - v
        assert abs(n.std().item() / (0.45 * v) - 1) < 0.03
    n = Noise("gaussian", 0.24, seed=3)(flat(0.5)) - 0.5
    assert abs(n.std().item() - 0.12) < 0.004
    assert Noise("speckle", 0.2).std_at(0.5) == pytest.approx(0.1)
    assert Noise("shot", 25).std_at(0.5) == pytest.approx((0.5 / 25) ** 0.5)


def test_gaussian_model_keeps_the_historical_draws():
    y = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = add_gaussian_noise(y, 0.1, seed=4, frame_indices=[5, 6, 7])
    b = Noise("gaussian", 0.1, seed=4)(y, [5, 6, 7])
    assert torch.equal(a, b)
    assert torch.equal(Noise("gaussian", 0.0)(y), y)


def test_types_use_their_own_streams():
    y = flat(0.5)
    g = Noise("gaussian", 0.4, seed=0)(y) - y
    s = Noise("speckle", 0.4, seed=0)(y) - y
    assert not torch.allclose(g, s)  # same std at 0.5, different random streams


def test_parse_named_and_numeric_levels():
    for kind in NOISE_TYPES:
        low, high = NAMED_LEVELS[kind]
        assert parse_noise(f"{kind}:low") == Noise(kind, low)
        assert parse_noise(f"{kind}:HIGH") == Noise(kind, high)
        assert parse_noise(kind) == Noise(kind, low)
    assert parse_noise("gaussian:0.05") == Noise("gaussian", 0.05)
    assert parse_noise("0.05") == parse_noise(0.05) == Noise("gaussian", 0.05)
    assert parse_noise(None, default_sigma=0.02) == Noise("gaussian", 0.02)
    assert parse_noise("shot:12").spec() == "shot:12"
    assert parse_noise(parse_noise("impulse:high").spec()) == Noise("impulse", 0.17)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("pink:low", "unknown noise type 'pink'.*gaussian, impulse, shot, speckle"),
        ("impulse:lots", "bad noise level 'lots'.*low, high or a number"),
        ("impulse:1.5", "fraction of pixels in \\[0, 1\\]"),
        ("gaussian:-0.1", "must be >= 0"),
        ("-0.1", "must be >= 0"),
        ("shot:0", "must be > 0"),
        ("speckle:nan", "finite"),
    ],
)
def test_bad_specs_name_the_valid_choices(spec, match):
    with pytest.raises(VidplugError, match=match):
        parse_noise(spec)
