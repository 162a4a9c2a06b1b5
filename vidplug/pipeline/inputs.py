"""What every pass over the input needs to rebuild a chunk's observation and operator exactly (:class:`RunInputs`),
and the observations of successive chunk windows streamed from the input (:class:`ChunkInputs`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidplug.config import RestoreConfig
from vidplug.io import iter_frames
from vidplug.io.window import FrameWindow
from vidplug.methods.classical import LS_DAMPING, LS_STEPS
from vidplug.physics import Geometry, build_operator
from vidplug.physics.outliers import MaskedOperator, reject_impulses
from vidplug.physics.simulate import observe
from vidplug.solver.chunk_problem import exterior_problem
from vidplug.solver.chunks import Chunk


@dataclass
class RunInputs:
    """The input of a run and how to turn its frames into observations."""

    cfg: RestoreConfig
    source: Path
    read: dict[str, Any]
    simulate: bool
    n: int  # frames in the selection
    geometry: Geometry  # the task operator's temporal context and spatial scale
    device: torch.device
    info: Any = None  # the input's VideoInfo (fps, size, frame count)

    @property
    def ctx(self) -> int:
        """Temporal context frames of the operator on each side."""
        return self.geometry.context

    def frames(self) -> FrameWindow:
        return FrameWindow(iter_frames(self.source, **self.read))

    def observe(self, src: FrameWindow, lo: int, hi: int) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """Observation, ground truth (simulation only) and restored frame size of frames ``[lo, hi)``."""
        task = self.cfg.task
        if self.simulate:  # the operator needs ctx clean frames on each side
            c_lo, c_hi = max(lo - self.ctx, 0), min(hi + self.ctx, self.n)
            clean = src.get(c_lo, c_hi).to(self.device)
            y = observe(task.name, clean, c_lo, lo, hi, seed=task.seed, noise=task.noise_model, **task.options)
            return y, clean[lo - c_lo : hi - c_lo], tuple(clean.shape[-2:])
        y = src.get(lo, hi).to(self.device)
        return y, None, (y.shape[-2] * self.geometry.scale, y.shape[-1] * self.geometry.scale)


class ChunkInputs:
    """Observations (and real inpainting masks) of frame windows, streamed from the input in increasing order."""

    def __init__(self, run: RunInputs, mask) -> None:
        self.run = run
        self.src = run.frames()
        self.masks = FrameWindow(iter_frames(mask, **run.read)) if mask is not None else None

    def problem(self, chunk: Chunk) -> tuple[Chunk, Tensor, Tensor | None, torch.nn.Module]:
        """``(chunk, observation, ground truth (simulation only), operator)`` of ``chunk``'s window.

        Where a temporal PSF reaches past the window (not at the video's ends) and ``chunk.exterior`` is on, the
        operator holds the frames outside the window at a least-squares estimate
        (:class:`~vidplug.solver.chunk_problem.ExteriorOperator`), the observation is shifted to match, and the
        returned chunk's data range is its whole window: no window frame is left without a data term. With
        ``task.reject_impulses``, salt-and-pepper values of the observation are filled and left out of the data term
        (:class:`~vidplug.physics.outliers.MaskedOperator`) when there are enough of them to be impulse noise."""
        run, task = self.run, self.run.cfg.task
        ws, we = chunk.window_start, chunk.window_stop
        es, ee = max(ws - run.ctx, 0), min(we + run.ctx, run.n)
        exterior = run.cfg.chunk.exterior and (es, ee) != (ws, we) and self.masks is None
        lo, hi = (es, ee) if exterior else (ws, we)
        y, reference, size = run.observe(self.src, lo, hi)
        keep = None  # the observed values left in the data term (None: all of them)
        if task.reject_impulses and task.name != "inpaint":  # inpainting's zeros would bias the 3x3 medians
            y, keep = reject_impulses(y)
        extra = {"mask": (self.masks.get(ws, we)[:, :1] > 0.5).float()} if self.masks is not None else {}
        # the operator carries the noise model for methods that need a noise level (DiffPIR); DMPlug reads only A
        op = build_operator(task.name, we - ws, size, seed=task.seed, noise_model=task.noise_model,
                            frame_offset=ws, **task.options, **extra).to(run.device)
        if exterior:
            extended = build_operator(task.name, ee - es, size, seed=task.seed, frame_offset=es,
                                      **task.options).to(run.device)
            y, op = exterior_problem(op, extended, ws - es, y, LS_STEPS, LS_DAMPING)
            reference = None if reference is None else reference[ws - es : we - es]
            keep = None if keep is None else keep[ws - es : we - es]
            chunk = replace(chunk, data_start=ws, data_stop=we)
        if keep is not None:
            op = MaskedOperator(op, keep)
        return chunk, y, reference, op

    def release(self, window_start: int) -> None:
        """Frames before the next window's exterior frames (and their temporal context) are not needed again."""
        self.src.release(max(window_start - 2 * self.run.ctx, 0))
        if self.masks is not None:
            self.masks.release(window_start)
