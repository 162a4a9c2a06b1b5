"""Where a restoration run's frames go, chunk by chunk: the output video, an optional side-by-side video, and
in-memory copies for callers that want them. Nothing is held beyond one chunk unless asked for."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vidplug.io.media import OutputMedia
from vidplug.io.side_by_side import compose_side_by_side
from vidplug.io.writer import VideoWriter


class OutputSink:
    """Where restored chunks go: the output writer, an optional streaming side-by-side writer (observation |
    restored | ground truth), and in-memory copies when asked for. All-or-nothing: on error nothing is left.

    ``source`` (what the output keeps of the input: colour, timestamps, rotation, audio) goes to the output; the
    side-by-side video gets its colour and timestamps only (upright panels, no sound)."""

    def __init__(self, out: Path, side_by_side, fps: float, overwrite: bool, keep: bool, method: str, media=None,
                 source: OutputMedia | None = None):
        # media: optional report-video writer (vidplug.report_html.ReportMedia): write(restored, obs, ref), close()
        self.writers = [VideoWriter(out, fps=fps, overwrite=overwrite, media=source)]
        if side_by_side is not None:
            panels = OutputMedia(source.colour, 0, source.time_base, source.pts) if source is not None else None
            self.writers.append(VideoWriter(side_by_side, fps=fps, overwrite=overwrite, media=panels))
        self.sbs = side_by_side is not None
        self.keep, self.label = keep, f"restored ({method})"
        self._kept: dict[str, list[Tensor]] = {"restored": [], "observation": [], "reference": []}
        self.media, self.media_files = media, {}

    def write(self, restored: Tensor, observation: Tensor, reference: Tensor | None) -> None:
        """Append one chunk: restored ``(n, C, H, W)`` in [0, 1], its observation (any size), its ground truth."""
        restored, observation = restored.cpu(), observation.detach().cpu().clamp(0, 1)
        reference = reference.cpu() if reference is not None else None
        self.writers[0].write(restored)
        if self.sbs:
            panels = [("observation", observation), (self.label, restored)]
            if reference is not None:
                panels.append(("ground truth", reference))
            self.writers[1].write(compose_side_by_side(panels))
        if self.media is not None:
            self.media.write(restored, observation, reference)
        if self.keep:
            for key, value in (("restored", restored), ("observation", observation), ("reference", reference)):
                if value is not None:
                    self._kept[key].append(value)

    def kept(self) -> dict[str, Tensor | None]:
        return {k: torch.cat(v) if v else None for k, v in self._kept.items()}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for w in self.writers:
            if exc_type is None:
                w.close()
            else:
                w.abort()
        if self.media is not None:
            if exc_type is None:
                self.media_files = self.media.close()
            else:
                self.media.abort()
