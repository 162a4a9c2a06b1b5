"""Metrics against independent references: scikit-image, a hand-written BasicSR-style SSIM, analytic warping errors."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vidplug.consistency.flow import DISFlow, FlowModel
from vidplug.errors import VidplugError
from vidplug.metrics import compute_metrics, lpips_distance, psnr, rgb_to_y, ssim, warping_error
from vidplug.metrics.lpips import ALEXNET

# ---------------------------------------------------------------- helpers


def random_pair(t=3, h=24, w=28, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(t, 3, h, w, generator=g)
    out = (ref + noise * torch.randn(t, 3, h, w, generator=g)).clamp(0, 1)
    return out, ref


def translating_video(t=4, h=48, w=48, dx=2, dy=1, lo=0.2, hi=0.8, seed=0):
    """Exact integer translation of one smooth image, values in [lo, hi]; content moves by (-dx, -dy) per frame."""
    g = torch.Generator().manual_seed(seed)
    m = (abs(dx) + abs(dy)) * t + 4
    coarse = torch.rand(1, 3, (h + 2 * m) // 4 + 3, (w + 2 * m) // 4 + 3, generator=g)
    tex = F.interpolate(coarse, size=(h + 2 * m, w + 2 * m), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    tex = lo + (hi - lo) * tex
    return torch.stack([tex[:, m + i * dy : m + i * dy + h, m + i * dx : m + i * dx + w] for i in range(t)])


def true_flows(t, h, w, dx, dy):
    fw = torch.tensor([-float(dx), -float(dy)]).view(1, 2, 1, 1).expand(t - 1, 2, h, w).clone()
    return fw, -fw


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).double().numpy()


def basicsr_style_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM as BasicSR writes it: 11x11 Gaussian (sigma 1.5), 'valid' region, data range 1."""
    c1, c2 = 0.01**2, 0.03**2
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T

    def filt(img):
        return cv2.filter2D(img, -1, win)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


# ---------------------------------------------------------------- PSNR / SSIM


def test_psnr_rgb_matches_skimage():
    out, ref = random_pair()
    mean, per_frame = psnr(out, ref)
    expected = [peak_signal_noise_ratio(to_hwc(r), to_hwc(o), data_range=1.0) for o, r in zip(out, ref, strict=True)]
    assert per_frame == pytest.approx(expected, rel=1e-9)
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)


def test_psnr_y_matches_basicsr_formula():
    out, ref = random_pair(seed=1)

    def y_of(x):  # BasicSR rgb2ycbcr(y_only=True) on [0, 1] input, back to [0, 1]
        x = to_hwc(x)
        return (16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0

    _, per_frame = psnr(out, ref, mode="y")
    expected = [peak_signal_noise_ratio(y_of(r), y_of(o), data_range=1.0) for o, r in zip(out, ref, strict=True)]
    assert per_frame == pytest.approx(expected, rel=1e-6)
    assert rgb_to_y(torch.ones(1, 3, 2, 2)).flatten()[0].item() == pytest.approx(235 / 255, abs=1e-4)


def test_psnr_identical_is_inf_and_clamps_out_of_range():
    out, ref = random_pair(t=2)
    mean, per_frame = psnr(ref, ref)
    assert math.isinf(mean) and all(math.isinf(p) for p in per_frame)
    # values outside [0, 1] are clamped before scoring (what a saved video would contain)
    assert psnr(ref + 2.0 * (ref > 0.99), ref)[0] == psnr((ref + 2.0 * (ref > 0.99)).clamp(0, 1), ref)[0]


def test_ssim_rgb_matches_skimage_defaults():
    out, ref = random_pair(seed=2)
    mean, per_frame = ssim(out, ref)
    expected = [
        structural_similarity(to_hwc(o), to_hwc(r), channel_axis=-1, data_range=1.0)
        for o, r in zip(out, ref, strict=True)
    ]
    assert per_frame == pytest.approx(expected, rel=1e-9)
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert ssim(ref, ref)[0] == pytest.approx(1.0)


def test_ssim_y_matches_independent_gaussian_ssim():
    out, ref = random_pair(h=32, w=36, noise=0.05, seed=3)
    _, per_frame = ssim(out, ref, mode="y")
    y_out, y_ref = rgb_to_y(out.double()), rgb_to_y(ref.double())
    expected = [basicsr_style_ssim(o[0].numpy(), r[0].numpy()) for o, r in zip(y_out, y_ref, strict=True)]
    assert per_frame == pytest.approx(expected, abs=1e-6)


def test_ssim_and_psnr_decrease_with_noise():
    _, ref = random_pair(seed=4)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(ref.shape, generator=g)
    scores = [(psnr((ref + s * noise).clamp(0, 1), ref)[0], ssim((ref + s * noise).clamp(0, 1), ref)[0])
              for s in (0.01, 0.05, 0.2)]
    assert scores[0][0] > scores[1][0] > scores[2][0]
    assert scores[0][1] > scores[1][1] > scores[2][1]


def test_bad_mode_and_shape_raise():
    out, ref = random_pair()
    with pytest.raises(VidplugError, match="unknown metric mode"):
        psnr(out, ref, mode="ycbcr")
    with pytest.raises(VidplugError, match=r"\(3, 3, 24, 28\).*\(3, 3, 24, 26\)"):
        ssim(out, ref[..., :26])


# ---------------------------------------------------------------- warping error


def test_warping_error_zero_for_exact_translation_with_true_flow():
    video = translating_video(dx=2, dy=1)
    mean, per_pair = warping_error(video, video, flows=true_flows(4, 48, 48, 2, 1))
    assert len(per_pair) == 3
    assert mean < 1e-10


def test_warping_error_near_zero_with_dis_flow():
    video = translating_video(dx=2, dy=1)
    mean, per_pair = warping_error(video, video, flow_model=DISFlow())
    assert mean < 2e-4
    # ... far below what the same video scores when its frames do not line up (reversed order)
    assert warping_error(video.flip(0), video, flow_model=DISFlow())[0] > 10 * mean


def test_warping_error_counts_flicker_exactly_and_monotonically():
    video = translating_video(dx=1, dy=0)
    flows = true_flows(4, 48, 48, 1, 0)
    pattern = torch.tensor([0.0, 1.0, -1.0, 0.5]).view(4, 1, 1, 1)  # per-frame brightness offsets
    errors = []
    for amplitude in (0.0, 0.02, 0.05, 0.1):
        offsets = amplitude * pattern
        mean, per_pair = warping_error(video + offsets, video, flows=flows)
        # flow is exact and masked pixels excluded: each pair scores exactly the squared offset change
        expected = (offsets[1:] - offsets[:-1]).flatten().pow(2)
        assert per_pair == pytest.approx(expected.tolist(), abs=1e-7)
        errors.append(mean)
    assert errors == sorted(errors) and errors[0] < errors[1]


def test_warping_error_masks_out_of_frame_unless_asked_for_lai_exact():
    video = translating_video(dx=3, dy=0)
    flows = true_flows(4, 48, 48, 3, 0)
    assert warping_error(video, video, flows=flows)[0] < 1e-10
    # Lai et al.'s resampler clamps at the border: content that left the frame is charged
    assert warping_error(video, video, flows=flows, mask_out_of_frame=False)[0] > 1e-5


def test_warping_error_pair_without_valid_pixels_scores_zero(caplog):
    video = translating_video(t=3)
    inconsistent = torch.full((2, 2, 48, 48), 5.0)  # fw and bw point the same way: fails the consistency check
    mean, per_pair = warping_error(video.flip(0), video, flows=(inconsistent, inconsistent))
    assert per_pair == [0.0, 0.0] and mean == 0.0
    assert "no valid pixel" in caplog.text


def test_warping_error_uses_reference_flow_and_given_model():
    class CountingDIS(DISFlow):
        calls: list = []

        def _flow(self, src, dst):
            self.calls.append(src.shape[0])
            return super()._flow(src, dst)

    video = translating_video(t=3)
    model = CountingDIS()
    warping_error(video, video, flow_model=model)
    assert model.calls == [4]  # one batch: 2 forward + 2 backward pairs
    with pytest.raises(VidplugError, match="precomputed flows"):
        warping_error(video, video, flows=true_flows(2, 48, 48, 1, 0))


# ---------------------------------------------------------------- LPIPS


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_lpips_unavailable_offline_gives_none_and_reason(torch_home):
    out, ref = random_pair(h=32, w=32)
    mean, per_frame, note = lpips_distance(out, ref)
    assert mean is None and per_frame is None
    assert ALEXNET.filename in note and str(torch_home) in note and "\n" not in note


def test_lpips_too_small_frames_is_unavailable_not_a_crash():
    out, ref = random_pair(h=16, w=16)
    mean, per_frame, note = lpips_distance(out, ref)
    assert mean is None and per_frame is None and "31x31" in note


def test_lpips_with_cached_trunk_scores_and_is_built_once(torch_home):
    """A random AlexNet trunk (features only, small) at the cached path: LPIPS runs, 0 for identical frames."""
    from torchvision.models import alexnet

    from vidplug.metrics.lpips import lpips_model

    torch.manual_seed(0)
    torch_home.mkdir(parents=True)
    features = {k: v for k, v in alexnet(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(features, ALEXNET.path)
    out, ref = random_pair(t=3, h=32, w=40, noise=0.2)
    mean, per_frame, note = lpips_distance(out, ref, batch_size=2)
    assert note is None and len(per_frame) == 3 and all(v > 0 for v in per_frame)
    assert mean == pytest.approx(float(np.mean(per_frame)))
    same, _, _ = lpips_distance(ref, ref)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert lpips_model() is lpips_model()
    # the trunk weights are the ones in the cached file, not lpips's random init
    assert lpips_model().net.slice1[0].weight.equal(features["features.0.weight"])


# ---------------------------------------------------------------- compute_metrics


class FixedFlow(FlowModel):
    name = "fixed"

    def __init__(self, dx, dy):
        self.dx, self.dy = dx, dy

    def _flow(self, src, dst):  # only correct for forward pairs; used through flows= below
        n, _, h, w = src.shape
        return torch.tensor([-float(self.dx), -float(self.dy)]).view(1, 2, 1, 1).expand(n, 2, h, w)


def test_compute_metrics_report(torch_home):
    video = translating_video(t=3, h=32, w=32)
    g = torch.Generator().manual_seed(0)
    restored = (video + 0.03 * torch.randn(video.shape, generator=g)).clamp(0, 1)
    report = compute_metrics(restored, video, flow_model=DISFlow())
    assert report["frames"] == 3 and report["flow_model"] == "opencv_dis"
    assert report["psnr"] == pytest.approx(psnr(restored, video)[0])
    assert report["ssim"] == pytest.approx(ssim(restored, video)[0])
    assert report["lpips"] is None and ALEXNET.filename in report["lpips_note"]
    assert report["warping_error"] > 0 and "MSE" in report["warping_error_unit"]
    per = report["per_frame"]
    assert len(per["psnr"]) == len(per["ssim"]) == 3 and per["lpips"] is None and len(per["warping_error"]) == 2
    # precomputed flows skip estimation and are named after the model passed along, or "precomputed"
    flows = true_flows(3, 32, 32, 2, 1)
    assert compute_metrics(restored, video, flows=flows, lpips=False)["flow_model"] == "precomputed"
    assert compute_metrics(restored, video, flows=flows, flow_model=FixedFlow(2, 1), lpips=False)["flow_model"] == "fixed"


def test_compute_metrics_single_frame_and_shape_mismatch():
    out, ref = random_pair(t=1)
    report = compute_metrics(out, ref, lpips=False)
    assert report["warping_error"] is None and report["per_frame"]["warping_error"] == []
    assert report["lpips"] is None and report["lpips_note"] == "LPIPS not requested"
    with pytest.raises(VidplugError, match=r"\(1, 3, 24, 28\).*\(2, 3, 24, 28\)"):
        compute_metrics(out, random_pair(t=2)[1])
