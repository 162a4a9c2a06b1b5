"""Output paths of a run: where the resolved config goes, and the checks that nothing is overwritten by accident."""

from __future__ import annotations

import os
from pathlib import Path

from vidplug.errors import VidplugError


def config_path_for(out: Path) -> Path:
    """Where the resolved config of an output is saved: ``clip.mp4`` -> ``clip.config.yaml`` (folders: sibling)."""
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.parent / f"{stem}.config.yaml"


def check_outputs(paths: list[Path | None], overwrite: bool) -> None:
    """Each output must be new (or ``overwrite``) and its folder writable; one-line errors otherwise."""
    for p in paths:
        if p is None:
            continue
        if p.exists() and not overwrite:
            raise VidplugError(f"output {p} already exists; pass --overwrite or choose another path")
        parent = p.parent if p.parent != Path("") else Path(".")
        probe = parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise VidplugError(f"cannot write to {parent}: not a writable directory; choose another output path")


def check_inputs(source: Path, out: Path, mask) -> None:
    """The input is never modified: an output equal to the input or the mask is refused."""
    if out.resolve() == source.resolve() or (mask is not None and out.resolve() == Path(mask).resolve()):
        raise VidplugError(f"output {out} is the input; choose another --out (the input is never modified)")
