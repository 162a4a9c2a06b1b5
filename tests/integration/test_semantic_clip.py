"""The real CLIP ViT-B/32 (OpenAI weights): features are finite and differentiable. Skipped without the weights."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_translating_video
from vidplug.consistency.semantic import SemanticConsistency, find_clip_weights, load_clip_encoder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        find_clip_weights("ViT-B-32", "openai") is None,
        reason="CLIP ViT-B-32 OpenAI weights absent (vidplug weights lists where to put ViT-B-32.pt)",
    ),
]


@pytest.fixture(scope="module")
def clip():
    return load_clip_encoder("ViT-B-32", "openai", device="cpu")


def test_real_clip_features_are_finite_and_differentiable(clip):
    assert clip.image_size == (224, 224)
    x = make_translating_video(2, 64, 96, shift=4).requires_grad_(True)
    f = clip(x)
    assert f.shape == (2, 512) and torch.isfinite(f).all()
    loss = SemanticConsistency(clip, to_mean=True)(x, 0)
    loss.backward()
    assert 0 < loss.item() < 0.5  # neighbouring frames of one smooth texture are semantically close
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_real_clip_identical_frames_zero(clip):
    x = make_translating_video(1, 64, 64).expand(2, -1, -1, -1)
    assert SemanticConsistency(clip)(x, 0).abs().item() < 1e-5
