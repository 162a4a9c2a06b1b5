"""Side-by-side comparison videos: labelled panels (e.g. degraded | restored | ground truth) placed in a row.

Panels may differ in size (a x4-downsampled observation next to full-size results): each is upscaled with nearest
neighbour to the tallest panel's height, so low-resolution pixels stay visible as blocks. Labels are drawn with
OpenCV's Hershey font (ASCII only) in white on a dark box, readable on any content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.transforms import check_frames, resize_nearest_to_height
from vidplug.io.writer import DEFAULT_CRF, VideoWriter

GAP = 2  # pixels of dark separator between panels
_GAP_VALUE = 0.1  # separator grey level in [0, 1]


def _label_pixels(height: int) -> tuple[float, int, int]:
    """Font scale, stroke thickness and margin for a panel of ``height`` pixels (text ~ 1/12 of the height)."""
    scale = min(1.5, max(0.3, height / 360.0))
    return scale, max(1, round(scale * 1.5)), max(2, round(4 * scale))


def draw_label(frames: Tensor, label: str) -> Tensor:
    """Write ``label`` in the top-left corner of every frame, on a dark box.

    Args:
        frames (Tensor): (T, 3, H, W) in [0, 1].
        label: ASCII text (other characters become '?'); empty draws nothing.

    Returns:
        Tensor: (T, 3, H, W) float32 in [0, 1], a new tensor.
    """
    frames = frames.detach().to("cpu", torch.float32).clamp(0, 1)
    text = label.encode("ascii", "replace").decode()
    if not text:
        return frames.clone()
    h, w = frames.shape[-2:]
    scale, thick, margin = _label_pixels(h)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    # render the box and the text once as masks, then apply them to every frame
    box = np.zeros((h, w), np.uint8)
    cv2.rectangle(box, (0, 0), (min(w, tw + 2 * margin) - 1, min(h, th + base + 2 * margin) - 1), 255, thickness=-1)
    ink = np.zeros((h, w), np.uint8)
    cv2.putText(ink, text, (margin, margin + th), font, scale, 255, thick, cv2.LINE_AA)
    inside = torch.from_numpy(box > 0)  # (H, W) pixels under the box
    alpha = torch.from_numpy(ink.astype(np.float32) / 255.0)  # (H, W) antialiased text coverage
    # box: darken the frame to 25% so the panel stays recognisable behind the label; text: blend towards white
    out = torch.where(inside, frames * 0.25, frames)
    return out * (1 - alpha) + alpha


def _check_panels(panels: Sequence[tuple[str, Tensor]]) -> list[tuple[str, Tensor]]:
    """Validate panels; returns ``[(label, frames (T, 3, H_i, W_i) float32 on CPU), ...]``."""
    if not panels:
        raise VidplugError("side-by-side needs at least one (label, frames) panel")
    checked = []
    for panel in panels:
        if not isinstance(panel, tuple | list) or len(panel) != 2:
            raise VidplugError(f"each side-by-side panel must be a (label, frames) pair, got {type(panel).__name__}")
        label, frames = panel
        frames = check_frames(frames).detach().to("cpu", torch.float32)
        checked.append((str(label), frames.expand(-1, 3, -1, -1) if frames.shape[1] == 1 else frames))
    if len({f.shape[0] for _, f in checked}) != 1:
        counts = ", ".join(f"{label}: {f.shape[0]}" for label, f in checked)
        raise VidplugError(f"side-by-side panels have different frame counts ({counts}); trim them to the same length")
    return checked


def compose_side_by_side(panels: Sequence[tuple[str, Tensor]]) -> Tensor:
    """Place labelled panels in a row.

    Args:
        panels: ``[(label, frames), ...]``; each frames (T, C, H_i, W_i) in [0, 1] with the same T; C = 1 or 3.

    Returns:
        Tensor: (T, 3, H, sum(W_i') + GAP * (n - 1)) float32 in [0, 1], H = max H_i and W_i' the widths after the
        nearest-neighbour upscale to H.
    """
    checked = _check_panels(panels)
    height = max(f.shape[-2] for _, f in checked)
    columns = []
    for i, (label, frames) in enumerate(checked):
        if i:
            columns.append(torch.full((frames.shape[0], 3, height, GAP), _GAP_VALUE))
        columns.append(draw_label(resize_nearest_to_height(frames, height), label))
    return torch.cat(columns, dim=-1)  # (T, 3, H, W_total)


def write_side_by_side(
    panels: Sequence[tuple[str, Tensor]],
    path: str | os.PathLike,
    fps: float = 25.0,
    overwrite: bool = False,
    *,
    chunk_size: int = 16,
    crf: int = DEFAULT_CRF,
) -> Path:
    """Compose ``panels`` (see :func:`compose_side_by_side`) and write them like :func:`vidplug.io.write_video`
    (video file or PNG folder, atomic, no silent overwrite). Frames are composed ``chunk_size`` at a time so the
    composite never exists whole in memory."""
    checked = _check_panels(panels)  # fail before the output is created
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise VidplugError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    total = checked[0][1].shape[0]
    with VideoWriter(path, fps, overwrite, crf=crf) as writer:
        for s in range(0, total, chunk_size):
            writer.write(compose_side_by_side([(label, f[s : s + chunk_size]) for label, f in checked]))
    return writer.path
