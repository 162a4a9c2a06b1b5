"""Simulated observations: a clean video through a task's operator, streamed in chunks.

Noise is drawn per absolute frame index from the task seed, and temporal operators see their k // 2 context frames,
so the observation of a frame does not depend on how the video was chunked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics import NoiseModel, build_operator

TEMPORAL_TASKS = {"temporal", "temporal+deblur"}


def temporal_context(task: str, options: dict[str, Any]) -> int:
    """Frames of context each side that the task's operator couples (k // 2 for the temporal PSF)."""
    return int(options.get("k", 7)) // 2 if task in TEMPORAL_TASKS else 0


def observe(
    task: str,
    clean: Tensor,
    offset: int,
    start: int,
    stop: int,
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    noise: NoiseModel | str | float | None = None,
    **options: Any,
) -> Tensor:
    """Noisy observation of frames ``[start, stop)`` from clean frames ``[offset, offset + len(clean))``.

    ``clean`` must cover ``[start - context, stop + context]`` clipped to the video, so the temporal PSF of every
    observed frame is complete (or cut by the video's real ends, where the operator replicates frames).
    """
    op = build_operator(task, clean.shape[0], tuple(clean.shape[-2:]), seed=seed, noise_sigma=noise_sigma,
                        noise=noise, frame_offset=offset, **options).to(device=clean.device, dtype=clean.dtype)
    # the operator draws each frame's noise from (seed, absolute frame index): chunking does not change it
    return op(clean)[start - offset : stop - offset]


def degrade_video(
    source: str | Path,
    out: str | Path,
    task: str,
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    noise: NoiseModel | str | float | None = None,
    read: dict[str, Any] | None = None,
    overwrite: bool = False,
    chunk: int = 32,
    **options: Any,
) -> list[Path]:
    """Write the observation of ``source`` under ``task`` to ``out``; for inpainting also the mask (white = observed)
    to ``<out>_mask`` (same format). Returns the written paths."""
    from vidplug.io import VideoWriter, iter_frames, probe_video
    from vidplug.pipeline import FrameWindow, count_frames

    out = Path(out)
    read = dict(read or {})
    info = probe_video(source)
    n = count_frames(info, read)
    if n < 1:
        raise VidplugError(f"{source} has no frames in the selected range; check --start/--end/--max-frames")
    ctx = temporal_context(task, options)
    mask_out = out.with_name(out.stem + "_mask" + out.suffix) if task == "inpaint" else None
    src = FrameWindow(iter_frames(source, **read))
    written = [out]
    with VideoWriter(out, fps=info.fps, overwrite=overwrite) as writer:
        mask_writer = VideoWriter(mask_out, fps=info.fps, overwrite=overwrite) if mask_out else None
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            lo, hi = max(start - ctx, 0), min(stop + ctx, n)
            clean = src.get(lo, hi)
            writer.write(observe(task, clean, lo, start, stop, seed=seed, noise_sigma=noise_sigma,
                                 noise=noise, **options).clamp(0, 1))
            if mask_writer is not None:
                op = build_operator(task, stop - start, tuple(clean.shape[-2:]), seed=seed, frame_offset=start,
                                    **options)
                mask_writer.write(op.mask.expand(-1, 3, -1, -1).float())
            src.release(max(stop - ctx, 0))
        if mask_writer is not None:
            mask_writer.close()
            written.append(mask_out)
    return written
