"""Per-chunk checkpoints of a restoration run, so a killed run resumes without redoing finished chunks.

The store is a folder beside the output (``clip.mp4`` -> ``.clip.mp4.vidplug-work/``) holding the run's fingerprint
(resolved config, input, frame selection) and one file per finished chunk: its written frames as 8-bit (exactly
what the output stores, and what the next chunk is anchored to, so a resumed run equals an uninterrupted one), the
chunk's seeds, and its solver summary. Every file is written atomically; the folder is removed once the final
output is in place.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_path, atomic_write_text


def work_dir_for(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.vidplug-work"


def quantize(frames: Tensor) -> Tensor:
    """Frames in [0, 1] rounded to 8 bits (what PNG/H.264 outputs store), still float."""
    return (frames.clamp(0, 1) * 255).round() / 255


class ChunkStore:
    """Checkpoints of finished chunks for one output.

    Args:
        out: the run's final output path.
        fingerprint: JSON-able description of everything that determines the result (config, input, selection).
        resume: continue from an existing store (it must have the same fingerprint).
        overwrite: discard an existing store and start over.
    """

    def __init__(self, out: str | Path, fingerprint: dict[str, Any], *, resume: bool, overwrite: bool):
        self.dir = work_dir_for(out)
        text = json.dumps(fingerprint, sort_keys=True, default=str)
        marker = self.dir / "run.json"
        if self.dir.exists():
            if overwrite and not resume:
                shutil.rmtree(self.dir)
            elif not resume:
                raise VidplugError(
                    f"an interrupted run left checkpoints in {self.dir}; pass --resume to continue it or "
                    "--overwrite to start over"
                )
            elif not marker.is_file() or marker.read_text() != text:
                raise VidplugError(
                    f"checkpoints in {self.dir} come from different settings or input; rerun with the same "
                    "arguments to resume, or pass --overwrite (without --resume) to start over"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        if not marker.is_file():
            atomic_write_text(marker, text)

    def chunk_size(self, decide) -> int:
        """The run's frames per chunk: the size recorded in this folder when there is one (a resumed run, or another
        process of the same run, plans the same chunks whatever memory it sees now), else ``decide()``, recorded."""
        path = self.dir / "plan.json"
        if path.is_file():
            return int(json.loads(path.read_text())["chunk_size"])
        size = int(decide())
        atomic_write_text(path, json.dumps({"chunk_size": size}))
        return size

    def _path(self, index: int) -> Path:
        return self.dir / f"chunk_{index:06d}.pt"

    def has(self, index: int) -> bool:
        """Whether chunk ``index`` is finished."""
        return self._path(index).is_file()

    def load(self, index: int) -> dict[str, Any] | None:
        """The finished chunk ``index`` (frames float in [0, 1], z, summary), or None if it is not finished."""
        path = self._path(index)
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a truncated file cannot come from an atomic write, but a disk error can
            path.unlink()
            return None
        return {"frames": data["frames"].float() / 255, "z": data["z"], "summary": json.loads(data["summary"])}

    def save(self, index: int, frames: Tensor, z: Tensor | None, summary: dict[str, Any]) -> None:
        """Store a finished chunk atomically: ``frames`` (n, C, H, W) in [0, 1] as 8-bit, seeds as float16."""
        payload = {
            "frames": (frames.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu(),
            "z": None if z is None else z.detach().half().cpu(),
            "summary": json.dumps(summary, default=str),
        }
        with atomic_path(self._path(index)) as tmp:
            torch.save(payload, tmp)

    def finish(self) -> None:
        """The final output is in place: the checkpoints are no longer needed."""
        shutil.rmtree(self.dir, ignore_errors=True)
