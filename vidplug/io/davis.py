"""The DAVIS 2017 layout: ``ROOT/JPEGImages/<resolution>/<sequence>/00000.jpg`` with sequence lists in
``ROOT/ImageSets/2017/{train,val}.txt`` (one name a line). Frames are read like any image folder, at 24 fps."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from natsort import natsorted

from vidplug.errors import VidplugError
from vidplug.io.frames import DAVIS_FPS
from vidplug.io.video import Video, read_video

log = logging.getLogger(__name__)

LAYOUT = "ROOT/JPEGImages/480p/<sequence>/00000.jpg and ROOT/ImageSets/2017/<split>.txt"


def _listing(folder: Path, limit: int = 12) -> str:
    """A short, sorted listing of a folder's entries for error messages."""
    names = natsorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not names:
        return "nothing"
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _frames_root(root: Path, resolution: str) -> Path:
    if not root.is_dir():
        raise VidplugError(f"DAVIS root {root} does not exist; download DAVIS 2017 and point to the folder holding {LAYOUT}")
    frames_root = root / "JPEGImages" / resolution
    if not frames_root.is_dir():
        raise VidplugError(
            f"{root} does not look like DAVIS 2017: {frames_root} is missing (expected {LAYOUT}); "
            f"{root} contains {_listing(root)}"
        )
    return frames_root


def davis_sequences(root: str | os.PathLike, split: str = "val", resolution: str = "480p") -> list[str]:
    """Names of the sequences of ``split`` present under ``root``, in the order of the split file.

    Args:
        root: DAVIS 2017 root folder.
        split: ``"train"``, ``"val"`` (the 30 standard evaluation sequences) or any other
            ``ImageSets/2017/<split>.txt``; ``"all"`` lists every sequence folder present instead.
        resolution: ``"480p"`` or ``"Full-Resolution"``.

    Sequences named in the split file but missing on disk are skipped with a warning (partial downloads are
    common); if none is present, VidplugError.
    """
    root = Path(root).expanduser()
    frames_root = _frames_root(root, resolution)
    present = {p.name for p in frames_root.iterdir() if p.is_dir()}
    if split == "all":
        names = natsorted(present)
    else:
        split_file = root / "ImageSets" / "2017" / f"{split}.txt"
        if not split_file.is_file():
            raise VidplugError(
                f"DAVIS split file {split_file} is missing (expected {LAYOUT}); "
                f"{split_file.parent} contains {_listing(split_file.parent)}; or use split='all'"
            )
        listed = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        names = [n for n in listed if n in present]
        if len(names) < len(listed):
            missing = [n for n in listed if n not in present]
            log.warning("DAVIS %s: %d of %d sequences are missing under %s (e.g. %s)",
                        split, len(missing), len(listed), frames_root, ", ".join(missing[:3]))
    if not names:
        raise VidplugError(f"no DAVIS '{split}' sequences under {frames_root}; it contains {_listing(frames_root)}")
    return names


def davis_sequence_dir(root: str | os.PathLike, sequence: str, resolution: str = "480p") -> Path:
    """The frame folder of ``sequence``; VidplugError listing the available sequences when it is unknown."""
    frames_root = _frames_root(Path(root).expanduser(), resolution)
    folder = frames_root / sequence
    if not sequence or not folder.is_dir() or Path(sequence).name != sequence:
        raise VidplugError(f"unknown DAVIS sequence '{sequence}' under {frames_root}; available: {_listing(frames_root)}")
    return folder


def read_davis(root: str | os.PathLike, sequence: str, resolution: str = "480p", **read_kwargs) -> Video:
    """Read one DAVIS sequence as a :class:`Video` (fps 24 / stride). ``read_kwargs``: start, end, stride,
    max_frames, size, as for :func:`vidplug.io.read_video`."""
    video = read_video(davis_sequence_dir(root, sequence, resolution), **read_kwargs)
    video.fps = DAVIS_FPS / read_kwargs.get("stride", 1)  # also when the folder was reached through a symlink
    return video
