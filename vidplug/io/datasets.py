"""Evaluation datasets as lists of sequences, whatever their layout: one place that every evaluation command
(``vidplug eval``, ``ablate``, ``robustness``) asks which sequences a ROOT holds.

Layouts, detected in this order:

- **DAVIS 2017**: ``ROOT/JPEGImages/<resolution>/<sequence>/`` with ``ROOT/ImageSets/2017/<split>.txt``
  (default split ``val``), see :mod:`vidplug.io.davis`;
- **folders of frames**: ``ROOT/<sequence>/<frames>`` as REDS (``train_sharp/000/00000000.png``), Vid4, UDM10
  and SPMCS ship; frames are natural-sorted;
- **videos**: ``ROOT/<sequence>.mp4`` (.mkv, .mov, .webm, .avi, .m4v); the sequence name is the file stem.

A ``split`` file (one sequence name a line, ``#`` comments) or a ``sequences`` list picks some of them; the
published splits (REDS4, Vid4) are such lists, see the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from natsort import natsorted

from vidplug.errors import VidplugError
from vidplug.io.davis import _listing, davis_sequence_dir, davis_sequences
from vidplug.io.frames import IMAGE_EXTENSIONS
from vidplug.io.video import READABLE_EXTENSIONS, probe_video

LAYOUTS = ("davis", "folders", "videos")


@dataclass
class Dataset:
    """The sequences of an evaluation dataset, in evaluation order."""

    root: Path
    layout: str  # "davis", "folders" or "videos" (folders and videos may mix in one ROOT: "folders+videos")
    sequences: dict[str, Path]  # name -> frame folder or video file

    @property
    def names(self) -> list[str]:
        return list(self.sequences)


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") for p in folder.iterdir())


def _scan(root: Path) -> tuple[str, dict[str, Path]]:
    """Sequence folders and video files directly under ``root``, natural-sorted by name."""
    found: dict[str, Path] = {}
    kinds = set()
    for p in root.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_dir() and _has_images(p):
            name, kind = p.name, "folders"
        elif p.is_file() and p.suffix.lower() in READABLE_EXTENSIONS:
            name, kind = p.stem, "videos"
        else:
            continue
        if name in found:
            raise VidplugError(f"two sequences are named '{name}' under {root} ({found[name].name}, {p.name}); "
                               "rename one")
        found[name] = p
        kinds.add(kind)
    layout = "+".join(k for k in ("folders", "videos") if k in kinds)
    return layout, {name: found[name] for name in natsorted(found)}


def read_split(path: Path) -> list[str]:
    """Sequence names of a split file: one a line; blank lines and ``#`` comments ignored."""
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise VidplugError(f"split file {path} names no sequences; write one sequence name a line")
    return names


def resolve_dataset(root: str | os.PathLike, *, sequences: list[str] | None = None, split: str | None = None,
                    resolution: str = "480p") -> Dataset:
    """The sequences of dataset ``root`` to evaluate, in order.

    Args:
        root: a DAVIS 2017 root, a folder of sequence folders, or a folder of videos.
        sequences: names to take (in this order); default: the split's, else every sequence.
        split: a file listing sequence names (any layout), or for DAVIS an ``ImageSets/2017`` split name
            (default ``val``; ``all`` for every sequence).
        resolution: DAVIS only: ``JPEGImages/<resolution>``.

    Raises VidplugError (one line) for a missing root, a root with no sequences, unknown names or a bad split.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise VidplugError(f"dataset root {root} does not exist; point --dataset to a DAVIS 2017 root, a folder of "
                           "sequence folders (REDS, Vid4, ...) or a folder of videos")
    split_file = Path(split).expanduser() if split and Path(split).expanduser().is_file() else None
    wanted = list(sequences) if sequences else (read_split(split_file) if split_file else None)
    if (root / "JPEGImages").is_dir():
        if wanted is None:
            wanted = davis_sequences(root, split or "val", resolution)
        return Dataset(root, "davis", {n: davis_sequence_dir(root, n, resolution) for n in wanted})
    if split and not split_file and split != "all":
        raise VidplugError(f"--split {split}: no such file; give a file listing sequence names (one a line)")
    layout, found = _scan(root)
    if not found:
        raise VidplugError(f"no sequences under {root}: expected sequence folders of frames (ROOT/<name>/00000.png) "
                           f"or videos (ROOT/<name>.mp4); {root} contains {_listing(root)}")
    if wanted is None:
        return Dataset(root, layout, found)
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise VidplugError(f"unknown sequence '{unknown[0]}' under {root}; available: {', '.join(list(found)[:12])}"
                           + (f", ... ({len(found)} in all)" if len(found) > 12 else ""))
    return Dataset(root, layout, {n: found[n] for n in wanted})


def check_one_size(dataset: Dataset) -> None:
    """Raise VidplugError when the sequences differ in frame size (an evaluation at native size needs one size, or
    a --size to bring them to one)."""
    sizes: dict[tuple[int, int], str] = {}
    for name, path in dataset.sequences.items():
        info = probe_video(path)
        sizes.setdefault((info.height, info.width), name)
        if len(sizes) > 1:
            (a, first), (b, other) = list(sizes.items())[:2]
            raise VidplugError(f"sequences differ in size ({first} is {a[1]}x{a[0]}, {other} is {b[1]}x{b[0]}); "
                               "pass --size S or HxW to bring them to one size")
