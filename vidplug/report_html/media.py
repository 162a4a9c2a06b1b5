"""Videos a browser plays: H.264 ``yuv420p`` MP4 with the index (``moov``) first ("faststart"), even sizes.

A run's own outputs keep their exact size (odd sizes are stored as ``yuv444p``), which Chromium does not decode:
the report's copies are padded to even sizes (edge pixels replicated at the right/bottom, so a probe of the
displayed pixel grid still lines up with the frame) and subsampled to 4:2:0. The observation is shown at the
restored size with nearest-neighbour upsampling, so each observed pixel stays one flat block.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from vidplug.io.writer import VideoWriter

# Report copies are for looking at, not scoring (metrics come from the run itself), but people zoom into them:
# measured on 16 frames of DAVIS bmx-trees at 256x256 (textured), CRF 10/14/18/23 give 41.4/38.8/36.3/33.2 dB at
# 207/127/78/42 KB. CRF 12 (~40 dB, ~165 KB) keeps compression well below the differences between methods.
WEB_CRF = 12


def pad_even(frames: Tensor) -> Tensor:
    """Replicate the last row/column so height and width are even. ``(T, C, H, W)`` -> ``(T, C, H', W')``."""
    h, w = frames.shape[-2:]
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return F.pad(frames, (0, w % 2, 0, h % 2), mode="replicate")


def upsample_nearest(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of ``(T, C, h, w)`` to ``size`` = (H, W); a no-op when the size already matches."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=tuple(size), mode="nearest-exact")


class WebVideoWriter(VideoWriter):
    """:class:`vidplug.io.VideoWriter` for report videos: even sizes (padded), so yuv420p, at CRF 12. (The writer
    already puts an MP4's index first, "faststart", so a browser can seek before the whole file has arrived.)"""

    def __init__(self, path: str | Path, fps: float, overwrite: bool = True) -> None:
        super().__init__(path, fps=fps, overwrite=overwrite, crf=WEB_CRF)

    def write(self, frames: Tensor) -> None:
        super().write(pad_even(frames))


class ReportMedia:
    """Streams the report videos of one run into ``folder``: ``observation.mp4`` (nearest-neighbour at the
    restored size), ``restored.mp4`` and, in simulations, ``ground_truth.mp4``. All-or-nothing like VideoWriter.

    Args:
        folder: where the videos go (created).
        fps: frames per second of the run.
    """

    NAMES = ("observation", "restored", "ground_truth")

    def __init__(self, folder: str | Path, fps: float) -> None:
        self.folder, self.fps = Path(folder), fps
        self.writers: dict[str, WebVideoWriter] = {}
        self.size: tuple[int, int] | None = None  # (H, W) of the restored frames

    def write(self, restored: Tensor, observation: Tensor, reference: Tensor | None) -> None:
        """Append one chunk: restored ``(n, C, H, W)``, its observation ``(n, C, h, w)``, its truth or None."""
        self.size = tuple(restored.shape[-2:])
        chunk = {"observation": upsample_nearest(observation, self.size), "restored": restored,
                 "ground_truth": reference}
        for name in self.NAMES:
            if chunk[name] is None:
                continue
            if name not in self.writers:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.writers[name] = WebVideoWriter(self.folder / f"{name}.mp4", self.fps)
            self.writers[name].write(chunk[name].clamp(0, 1))

    def close(self) -> dict[str, Path]:
        """Finish every video; returns name -> path."""
        return {name: w.close() for name, w in self.writers.items()}

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()
