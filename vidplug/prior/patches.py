"""Training data for a patch prior: frames gathered from videos, image folders, DAVIS roots and single images, and
random multi-scale crops of them.

Frames are kept in memory as uint8 (a 1280x720 frame is 2.7 MB instead of 11 MB as float32). Each crop
downscales its frame by a random factor in ``scale_range`` before cutting a ``size`` x ``size`` patch (done as
"cut a ``size / scale`` square, then resize it to ``size``", which is the same thing and cheaper), so a 64-pixel
patch prior sees fine texture at scale 1 and larger structures at scale 0.25. Random horizontal flips double the data.

Sampling is balanced over *sources* (one per DATA argument, each DAVIS sequence counting as one), then uniform over
a source's frames: a folder of four photographs is not drowned by a 250-frame video given beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io import davis_sequence_dir, davis_sequences, iter_frames
from vidplug.io.frames import IMAGE_EXTENSIONS, list_images, load_image
from vidplug.io.video import VIDEO_EXTENSIONS


@dataclass
class FrameSource:
    """The frames of one DATA argument (or one DAVIS sequence)."""

    name: str  # path as given (DAVIS: root/sequence)
    frames: list[Tensor]  # each (3, H, W) uint8; sizes may differ between frames of an image folder


def _to_uint8(frame: Tensor) -> Tensor:
    """(3, H, W) float in [0, 1] -> uint8, rounded."""
    return (frame.clamp(0, 1) * 255.0).round().to(torch.uint8)


def _is_davis_root(path: Path) -> bool:
    return (path / "JPEGImages").is_dir()


def _read_folder(path: Path, stride: int, max_frames: int | None) -> list[Tensor]:
    """Images of a folder, one by one (sizes may differ: a folder of photographs is not a video)."""
    files = list_images(path)[::stride][:max_frames]
    return [_to_uint8(load_image(f)) for f in files]


def load_sources(
    data: list[str | os.PathLike],
    *,
    stride: int = 1,
    max_frames: int | None = None,
    davis_split: str = "train",
) -> list[FrameSource]:
    """Read every DATA argument into memory.

    Args:
        data: video files (.mp4 .avi .mkv .mov), image files, folders of images, or DAVIS 2017 roots (a folder with
            ``JPEGImages/480p``; every sequence of ``davis_split`` becomes one source).
        stride: keep every ``stride``-th frame of videos, folders and DAVIS sequences (neighbouring frames are
            near-duplicates).
        max_frames: at most this many frames per source (None = all).
        davis_split: DAVIS split whose sequences are used ("train", "val", or "all").

    Raises VidplugError when ``data`` is empty, a path is missing or unreadable, or no frame is found.
    """
    if not data:
        raise VidplugError("no training data given; pass video files, image files, image folders or DAVIS roots")
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise VidplugError(f"stride and max_frames must be >= 1, got stride={stride}, max_frames={max_frames}")
    sources: list[FrameSource] = []
    for item in data:
        path = Path(item).expanduser()
        if not path.exists():
            raise VidplugError(f"training data {path} does not exist; check the path")
        if path.is_dir() and _is_davis_root(path):
            for seq in davis_sequences(path, split=davis_split):
                frames = iter_frames(davis_sequence_dir(path, seq), stride=stride, max_frames=max_frames)
                sources.append(FrameSource(f"{path}/{seq}", [_to_uint8(f) for f in frames]))
        elif path.is_dir():
            sources.append(FrameSource(str(path), _read_folder(path, stride, max_frames)))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            sources.append(FrameSource(str(path), [_to_uint8(load_image(path))]))
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            frames = iter_frames(path, stride=stride, max_frames=max_frames)
            sources.append(FrameSource(str(path), [_to_uint8(f) for f in frames]))
        else:
            raise VidplugError(
                f"cannot use {path} as training data; give videos ({', '.join(VIDEO_EXTENSIONS)}), images "
                f"({', '.join(IMAGE_EXTENSIONS)}), folders of images or a DAVIS root"
            )
    return sources


class PatchSampler:
    """Random multi-scale, randomly flipped square crops of a set of frame sources.

    Args:
        sources: from :func:`load_sources` (at least one frame in total).
        size: patch side in pixels.
        scale_range: (min, max) downscale factor applied to a frame before cropping; 1 = native resolution.
            A frame too small for the requested scale is cropped at its shorter side instead (and upscaled
            when that side is below ``size``).
        flip: flip half of the patches horizontally.
    """

    def __init__(
        self,
        sources: list[FrameSource],
        size: int,
        scale_range: tuple[float, float] = (0.25, 1.0),
        flip: bool = True,
    ) -> None:
        self.sources = [s for s in sources if s.frames]
        if not self.sources:
            raise VidplugError("no frames found in the training data; check the paths and the stride/max-frames options")
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise VidplugError(f"scale range must satisfy 0 < min <= max, got {scale_range}")
        self.size = int(size)
        self.scale_range = (float(lo), float(hi))
        self.flip = flip

    def to(self, device: torch.device | str) -> PatchSampler:
        """Keep every frame on ``device``; crops are then cut and resized there (the random draws stay on the CPU
        generator, so the sequence of crops does not depend on the device)."""
        for source in self.sources:
            source.frames = [frame.to(device) for frame in source.frames]
        return self

    @property
    def num_frames(self) -> int:
        return sum(len(s.frames) for s in self.sources)

    def _crop(self, frame: Tensor, generator: torch.Generator) -> Tensor:
        """One patch (3, size, size) float32 in [0, 1] from a uint8 frame (3, H, W)."""
        _, h, w = frame.shape
        lo, hi = self.scale_range
        scale = lo + (hi - lo) * torch.rand((), generator=generator).item()
        side = min(round(self.size / scale), h, w)  # square cut in frame pixels
        top = int(torch.randint(0, h - side + 1, (), generator=generator))
        left = int(torch.randint(0, w - side + 1, (), generator=generator))
        patch = frame[:, top : top + side, left : left + side].float().div_(255.0)  # (3, side, side)
        if side != self.size:
            # antialias: a 4x downscale without it aliases fine texture into patterns the prior would learn
            patch = F.interpolate(patch[None], size=(self.size, self.size), mode="bilinear",
                                  antialias=side > self.size, align_corners=False)[0].clamp_(0, 1)
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            patch = patch.flip(-1)
        return patch

    def sample(self, batch: int, generator: torch.Generator) -> Tensor:
        """A batch of patches ``(batch, 3, size, size)`` float32 in [0, 1]; all randomness from ``generator``."""
        patches = []
        for _ in range(batch):
            source = self.sources[int(torch.randint(0, len(self.sources), (), generator=generator))]
            frame = source.frames[int(torch.randint(0, len(source.frames), (), generator=generator))]
            patches.append(self._crop(frame, generator))
        return torch.stack(patches)  # (B, 3, size, size)
