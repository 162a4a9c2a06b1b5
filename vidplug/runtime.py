"""The device a run uses: the one ``resolve_device`` of vidplug (restoration, prior training, benchmarks)."""

from __future__ import annotations

import torch

from vidplug.errors import VidplugError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda request or an unknown name is a one-line
    error (``meta`` is accepted: the memory estimates run on it)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidplugError(f"--device {name} requested but no CUDA device is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidplugError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
