"""RAFT-large with its real torchvision weights: skipped unless the checkpoint is in the torch hub cache."""

from __future__ import annotations

import pytest
import torch

from tests.unit.test_flow import INTERIOR, moving_square, translating_video
from vidplug.consistency.flow import RAFT_LARGE, RAFTFlow
from vidplug.consistency.warp import occlusion_mask

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not RAFT_LARGE.path.is_file(), reason=f"RAFT weights absent: {RAFT_LARGE.missing_message()}"),
]


@pytest.fixture(scope="module")
def raft():
    return RAFTFlow("cuda" if torch.cuda.is_available() else "cpu", allow_download=False)


@pytest.mark.parametrize("dx,dy", [(2, 1), (-3, 0)])
def test_raft_recovers_integer_translation(raft, dx, dy):
    video = translating_video(3, 64, 64, dx, dy)
    fw, bw = raft.flow_pair(video)
    true_fw = torch.tensor([-dx, -dy], dtype=torch.float32).view(1, 2, 1, 1)
    assert (fw - true_fw)[INTERIOR].abs().median() < 0.1
    assert (bw + true_fw)[INTERIOR].abs().median() < 0.1


def test_raft_occlusion_on_moving_square(raft):
    size, x0, y0, step = 20, 12, 22, 4
    fw, bw = raft.flow_pair(moving_square(size=size, x0=x0, y0=y0, step=step))
    valid_1 = occlusion_mask(bw, fw)[0, 0]
    assert valid_1[y0 + 3 : y0 + size - 3, x0 : x0 + step].mean() < 0.5  # uncovered background
    static = torch.ones(64, 64, dtype=torch.bool)
    static[y0 - 8 : y0 + size + 8, x0 - 8 : x0 + size + step + 8] = False
    assert valid_1[static].mean() > 0.9
