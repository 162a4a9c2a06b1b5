"""What a restoration method is to the pipeline: a :class:`ChunkSolver` restores one chunk window."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from vidplug.config import RestoreConfig
from vidplug.solver.chunks import Chunk

ChunkOutput = tuple[Tensor, dict[str, Any], Tensor | None]  # frames (T, C, H, W) in [0, 1], summary, seeds or None


class ChunkSolver(Protocol):
    """Restores the optimised window of one chunk.

    ``needs_prior``: the run loads the diffusion prior for it; ``uses_consistency``: it applies the consistency
    terms, so the run loads CLIP / flow models when their weights are on.
    """

    name: str
    needs_prior: bool
    uses_consistency: bool

    def __call__(self, cfg: RestoreConfig, models, chunk: Chunk, y: Tensor, op: torch.nn.Module,
                 anchors: Tensor | None, reference: Tensor | None, progress: bool = True) -> ChunkOutput:
        """Args:
            y (Tensor): observations of the window's frames ``[window_start, window_stop)``.
            op: the operator built for the window (``frame_offset = window_start``).
            anchors (Tensor | None): fixed, already written frames ``[anchor_start, start)``.
            reference (Tensor | None): clean window frames (simulation only: the ORACLE curve, never a decision).

        Returns: the restored window frames ``(window_len, C, H, W)`` in [0, 1], a JSON-ready summary, and the
        seeds of the chosen iterate (None for methods without seeds).
        """
        ...
