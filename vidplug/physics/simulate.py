"""Simulated observations of clean frames, chunk by chunk: the same observation whatever the chunking.

Noise is drawn per absolute frame index from the task seed, and temporal operators see their context frames, so the
observation of a frame does not depend on how the video was chunked.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vidplug.physics.noise import Noise
from vidplug.physics.registry import build_operator


def observe(
    task: str,
    clean: Tensor,
    offset: int,
    start: int,
    stop: int,
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    noise: Noise | str | float | None = None,
    **options: Any,
) -> Tensor:
    """Noisy observation of frames ``[start, stop)`` from clean frames ``[offset, offset + len(clean))``.

    ``clean`` must cover ``[start - context, stop + context]`` clipped to the video (``context`` of
    :func:`~vidplug.physics.task_geometry`), so the temporal PSF of every observed frame is complete (or cut by the
    video's real ends, where the operator replicates frames).
    """
    op = build_operator(task, clean.shape[0], tuple(clean.shape[-2:]), seed=seed, noise_sigma=noise_sigma,
                        noise=noise, frame_offset=offset, **options).to(device=clean.device, dtype=clean.dtype)
    # the operator draws each frame's noise from (seed, absolute frame index): chunking does not change it
    return op(clean)[start - offset : stop - offset]
