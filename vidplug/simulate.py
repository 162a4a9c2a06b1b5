"""``vidplug degrade``: write the observation a task's operator makes of a clean video, streamed in chunks (see
:func:`vidplug.physics.simulate.observe`: the observation does not depend on the chunking)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidplug.errors import VidplugError
from vidplug.io import VideoWriter, iter_frames, probe_video
from vidplug.io.window import FrameWindow, count_frames
from vidplug.physics import Noise, build_operator, task_geometry
from vidplug.physics.simulate import observe


def degrade_video(
    source: str | Path,
    out: str | Path,
    task: str,
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    noise: Noise | str | float | None = None,
    read: dict[str, Any] | None = None,
    overwrite: bool = False,
    chunk: int = 32,
    **options: Any,
) -> list[Path]:
    """Write the observation of ``source`` under ``task`` to ``out``; for inpainting also the mask (white = observed)
    to ``<out>_mask`` (same format). Returns the written paths."""
    out = Path(out)
    read = dict(read or {})
    ctx = task_geometry(task, **options).context  # checks the task and its options before reading
    info = probe_video(source)
    n = count_frames(info, read)
    if n < 1:
        raise VidplugError(f"{source} has no frames in the selected range; check --start/--end/--max-frames")
    mask_out = out.with_name(out.stem + "_mask" + out.suffix) if task == "inpaint" else None
    src = FrameWindow(iter_frames(source, **read))
    written = [out]
    with VideoWriter(out, fps=info.fps, overwrite=overwrite) as writer:
        mask_writer = VideoWriter(mask_out, fps=info.fps, overwrite=overwrite) if mask_out else None
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            lo, hi = max(start - ctx, 0), min(stop + ctx, n)
            clean = src.get(lo, hi)
            writer.write(observe(task, clean, lo, start, stop, seed=seed, noise_sigma=noise_sigma, noise=noise,
                                 **options).clamp(0, 1))
            if mask_writer is not None:
                op = build_operator(task, stop - start, tuple(clean.shape[-2:]), seed=seed, frame_offset=start,
                                    **options)
                mask_writer.write(op.mask.expand(-1, 3, -1, -1).float())
            src.release(max(stop - ctx, 0))
        if mask_writer is not None:
            mask_writer.close()
            written.append(mask_out)
    return written
