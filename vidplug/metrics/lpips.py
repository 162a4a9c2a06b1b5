"""LPIPS perceptual distance (Zhang et al. 2018, AlexNet trunk, v0.1 linear layers) through the ``lpips`` package.

The linear calibration layers ship inside the ``lpips`` wheel; the AlexNet trunk is torchvision's ImageNet
checkpoint in the torch hub cache, found (or fetched) through :mod:`vidplug.weights`. When the trunk is missing and
cannot be downloaded, LPIPS is *unavailable*: the value is None and a one-line note says which file to place where.
Never a made-up number, never a crash.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.prior.base import to_model_range
from vidplug.weights import WeightSpec, register, require, torch_hub_checkpoints

ALEXNET = register(
    WeightSpec(
        name="alexnet-lpips",
        filename="alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        size_bytes=244_408_911,
        description="AlexNet trunk for LPIPS (torchvision AlexNet_Weights.IMAGENET1K_V1)",
        cache_dir=torch_hub_checkpoints,
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    )
)

MIN_SIZE = 31  # AlexNet's stride-4 conv and two 3x3/2 max-pools leave nothing of smaller frames

_MODELS: dict[tuple[str, str], nn.Module] = {}  # (trunk path, device) -> built LPIPS model


def lpips_model(device: str | torch.device = "cpu", allow_download: bool | None = None) -> nn.Module:
    """The LPIPS(alex, v0.1) module on ``device``, built once per (weights file, device) and cached.

    Raises:
        MissingWeightsError: the AlexNet trunk is absent and cannot be downloaded.
    """
    import lpips as lpips_pkg

    path = require(ALEXNET, allow_download=allow_download)
    key = (str(Path(path).resolve()), str(torch.device(device)))
    if key not in _MODELS:
        with warnings.catch_warnings():
            # lpips builds its trunk with torchvision's deprecated ``pretrained=`` argument; we load the trunk below
            warnings.simplefilter("ignore", UserWarning)
            model = lpips_pkg.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        trunk = torch.load(path, map_location="cpu", weights_only=True)
        # lpips splits alexnet.features into slices that keep the layer indices: "slice2.3.weight" = "features.3.weight"
        state = {k: trunk[f"features.{k.split('.', 1)[1]}"] for k in model.net.state_dict()}
        model.net.load_state_dict(state)
        _MODELS[key] = model.eval().requires_grad_(False).to(device)
    return _MODELS[key]


def lpips_distance(
    restored: Tensor, reference: Tensor, batch_size: int = 8
) -> tuple[float | None, list[float] | None, str | None]:
    """LPIPS (AlexNet, v0.1) per frame; lower is closer.

    Args:
        restored (Tensor): (t, c, h, w) in [0, 1] (clamped), c = 3 or 1 (repeated to RGB), h, w >= 31.
        reference (Tensor): (t, c, h, w) ground truth in [0, 1].
        batch_size: frames per forward pass.

    Returns:
        (mean, per-frame list, None) when computed, or (None, None, reason) when LPIPS is unavailable (AlexNet
        trunk missing offline, frames too small), the reason being one line that says what to do.
    """
    if restored.shape != reference.shape or restored.ndim != 4:
        raise VidplugError(
            f"restored video {tuple(restored.shape)} and reference {tuple(reference.shape)} must both be (T, C, H, W) "
            "of the same shape; resize or crop one to match the other"
        )
    h, w = restored.shape[-2:]
    if min(h, w) < MIN_SIZE:
        return None, None, f"LPIPS needs frames of at least {MIN_SIZE}x{MIN_SIZE} (AlexNet trunk), got {h}x{w}"
    try:
        model = lpips_model(restored.device)
    except MissingWeightsError as exc:
        return None, None, f"LPIPS unavailable: {exc}"
    if restored.shape[1] == 1:
        restored, reference = restored.expand(-1, 3, -1, -1), reference.expand(-1, 3, -1, -1)
    per_frame: list[float] = []
    with torch.no_grad():
        for i in range(0, restored.shape[0], batch_size):
            # lpips expects [-1, 1]
            x = to_model_range(restored[i : i + batch_size].float().clamp(0, 1))
            y = to_model_range(reference[i : i + batch_size].float().clamp(0, 1))
            per_frame += model(x, y).flatten().cpu().tolist()  # (b, 1, 1, 1) -> b values
    return float(np.mean(per_frame)), per_frame, None
