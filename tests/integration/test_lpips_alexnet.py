"""LPIPS with the real AlexNet trunk: skipped unless torchvision's AlexNet checkpoint is in the torch hub cache."""

from __future__ import annotations

import pytest
import torch

from vidplug.metrics import lpips_distance
from vidplug.metrics.lpips import ALEXNET

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ALEXNET.path.is_file(), reason=f"AlexNet weights absent: {ALEXNET.missing_message()}"),
]


def test_lpips_grows_with_noise_and_is_zero_for_identical_frames():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 64, 64, generator=g)
    noise = torch.randn(ref.shape, generator=g)
    assert lpips_distance(ref, ref)[0] == pytest.approx(0.0, abs=1e-6)
    values = [lpips_distance((ref + s * noise).clamp(0, 1), ref)[0] for s in (0.02, 0.1, 0.3)]
    assert values[0] < values[1] < values[2]
    assert 0.0 < values[2] < 1.5  # LPIPS(alex) of heavy noise is well below 1.5 with the calibrated layers
