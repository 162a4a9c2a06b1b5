"""Per-frame random streams: every random draw of an operator (masks, kernels, default noise) for frame ``i`` comes
from a generator seeded by ``(seed, stream, i)`` with ``i`` the frame's absolute index in the video, so a chunk of a
long video rebuilds exactly its own slice without materialising the rest."""

from __future__ import annotations

import hashlib

import torch


def frame_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for frame ``index`` of random ``stream`` ("inpaint", "motion-blur", "noise", ...).

    Hashing (rather than ``seed + index``) keeps the streams of neighbouring seeds and different operators unrelated.
    """
    digest = hashlib.blake2b(f"{stream}:{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def frame_generator(seed: int, stream: str, index: int) -> torch.Generator:
    """A CPU generator for one frame: CPU so the draws are identical whatever device the operator later runs on."""
    return torch.Generator(device="cpu").manual_seed(frame_seed(seed, stream, index))
