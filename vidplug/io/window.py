"""Random access to a forward-only frame stream (:class:`FrameWindow`) and the number of frames a selection reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.transforms import select_indices


class FrameWindow:
    """Random access to a forward-only frame stream, keeping only frames that may still be needed."""

    def __init__(self, frames: Iterator[Tensor]):
        self._it = frames
        self._cache: dict[int, Tensor] = {}
        self._next = 0

    def get(self, start: int, stop: int) -> Tensor:
        """Frames ``[start, stop)`` as ``(n, C, H, W)``."""
        while self._next < stop:
            try:
                self._cache[self._next] = next(self._it)
            except StopIteration:
                raise VidplugError(f"the video ended after {self._next} frames, expected at least {stop}") from None
            self._next += 1
        return torch.stack([self._cache[t] for t in range(start, stop)])

    def release(self, before: int) -> None:
        """Forget frames before ``before`` (they are not asked for again)."""
        for t in [t for t in self._cache if t < before]:
            del self._cache[t]


def selected_indices(info, read: dict[str, Any]) -> range:
    """Source frame indices a reader yields for ``read`` options (start, end, stride, max_frames) on ``info``."""
    return select_indices(info.num_frames, read.get("start", 0), read.get("end"), read.get("stride", 1),
                          read.get("max_frames"))


def count_frames(info, read: dict[str, Any]) -> int:
    """Frames a reader yields for ``read`` options (start, end, stride, max_frames) on a video of ``info``."""
    return len(selected_indices(info, read))
