"""Impulse outliers: found in an observation, left out of the data term, filled for the pseudo-inverse."""

import torch

from tests.conftest import make_translating_video, tiny_models, tiny_run_config
from vidplug.io import write_video
from vidplug.physics import build_operator
from vidplug.physics.noise import parse_noise
from vidplug.physics.outliers import MaskedOperator, impulse_mask, reject_impulses
from vidplug.pipeline import restore_video


def _frames(t: int = 2, size: int = 32) -> torch.Tensor:
    return make_translating_video(t, size, size, shift=1).clamp(0.05, 0.95)  # no value at the range's ends


def test_salt_and_pepper_values_are_flagged_and_gaussian_noise_is_left_alone():
    clean = _frames()
    noisy = parse_noise("impulse:high")(clean, range(2))
    written = (noisy != clean)  # the values the noise replaced by 0 or 1
    keep = impulse_mask(noisy)
    flagged = keep == 0
    assert (flagged & ~written).sum() == 0  # nothing clean is flagged
    assert flagged.float().sum() > 0.6 * written.float().sum()  # most impulses are (a salt on white stays unseen)
    gaussian = parse_noise("0.01")(clean, range(2))
    assert reject_impulses(gaussian)[1] is None and torch.equal(reject_impulses(gaussian)[0], gaussian)


def test_a_few_saturated_highlights_are_not_impulse_noise():
    y = _frames()
    y[0, :, 5, 7] = 1.0  # one specular pixel on every channel
    filled, keep = reject_impulses(y)
    assert keep is None and torch.equal(filled, y)


def test_flagged_values_are_filled_from_their_neighbours():
    clean = _frames()
    noisy = parse_noise("impulse:low")(clean, range(2))
    filled, keep = reject_impulses(noisy)
    assert keep is not None
    err_noisy = (noisy - clean).abs()[keep == 0].mean()
    err_filled = (filled - clean).abs()[keep == 0].mean()
    assert err_filled < 0.2 * err_noisy
    assert torch.equal(filled[keep == 1], noisy[keep == 1])  # kept values untouched


def test_the_masked_operator_is_linear_with_its_adjoint():
    op = build_operator("sr", 2, (16, 16), factor=2)
    keep = (torch.rand(op.output_shape(), generator=torch.Generator().manual_seed(1)) > 0.2).float()
    masked = MaskedOperator(op, keep)
    g = torch.Generator().manual_seed(0)
    x, r = torch.rand(2, 3, 16, 16, generator=g), torch.randn(op.output_shape(), generator=g)
    assert torch.allclose((masked.A(x) * r).sum(), (x * masked.A_adjoint(r)).sum(), rtol=1e-4)
    assert torch.equal(masked.A(x)[keep == 0], torch.zeros(int((keep == 0).sum())))
    assert masked.output_shape() == op.output_shape() and masked.linear


def test_restoring_under_impulse_noise_rejects_the_impulses_and_gains(tmp_path):
    clip = tmp_path / "clip"
    write_video(make_translating_video(4, 32, 32, shift=1), clip, fps=10)
    psnr = {}
    for reject in (True, False):
        cfg = tiny_run_config("method=least-squares", f"task.reject_impulses={reject}", "task.noise=impulse:high")
        res = restore_video(clip, tmp_path / f"o{reject}.mp4", cfg, simulate=True, progress=False,
                            models=tiny_models(cfg))
        psnr[reject] = res.report["metrics"]["psnr"]
    assert psnr[True] > psnr[False] + 3.0
