"""The second pass of a run: write the checkpointed chunks in order (cross-fading ``blend`` overlaps), score them
against the ground truth in simulations, and the run's JSON report."""

from __future__ import annotations

import platform
from typing import Any

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.checkpoints import ChunkStore, quantize
from vidplug.io.sink import OutputSink
from vidplug.pipeline.inputs import RunInputs
from vidplug.solver.chunks import Chunk
from vidplug.typed import to_dict


def cross_fade(previous: Tensor, current: Tensor) -> Tensor:
    """Linear cross-fade of ``o`` overlap frames ``(o, C, H, W)``: frame ``i`` of the overlap takes weight
    ``(i + 1) / (o + 1)`` from the current chunk and the rest from the previous one; 8-bit like every output."""
    o = current.shape[0]
    w = torch.arange(1, o + 1, device=current.device, dtype=current.dtype).view(-1, 1, 1, 1) / (o + 1)
    return quantize(w * current + (1 - w) * previous)


def assemble(run: RunInputs, chunks: list[Chunk], store: ChunkStore, sink: OutputSink, scores,
             computed: set[int]) -> list[dict[str, Any]]:
    """Write the checkpointed chunks in order (cross-fading ``blend`` overlaps) and score them against the truth.
    Returns one report entry per chunk."""
    blend = run.cfg.chunk.seam == "blend"
    src = run.frames()
    pending: Tensor | None = None  # blend: the previous chunk's restoration of this chunk's overlap frames
    reports = []
    with sink:
        for chunk in chunks:
            done = store.load(chunk.index)
            if done is None:
                raise VidplugError(f"chunk {chunk.index} has no checkpoint in {store.dir}; rerun with --resume")
            frames = done["frames"].to(run.device)
            lo, hi = chunk.start, chunk.stop
            if blend:
                o = chunk.start - chunk.anchor_start
                if pending is not None and o:
                    frames = torch.cat([cross_fade(pending, frames[:o]), frames[o:]])
                nxt = chunks[chunk.index + 1] if chunk.index + 1 < len(chunks) else None
                lo, hi = chunk.anchor_start, nxt.anchor_start if nxt is not None else chunk.stop
                frames, pending = frames[: hi - lo], frames[hi - lo :]
            y, reference, _ = run.observe(src, lo, hi)
            sink.write(frames, y, reference)
            if scores is not None:
                scores.update(frames, reference)
            reports.append({"index": chunk.index, "frames": [chunk.start, chunk.stop],
                            "window": [chunk.window_start, chunk.window_stop], **done["summary"],
                            "resumed": chunk.index not in computed})
            src.release(max(hi - run.ctx, 0))  # the next chunk emits from hi on
    return reports


def run_report(run: RunInputs, out, fps: float, chunks: list[dict[str, Any]], models, scores,
               wall: float) -> dict[str, Any]:
    """The JSON-ready report of a run: settings, timings, chosen iterations, notes; metrics when simulated."""
    import vidplug

    cfg = run.cfg
    iters = [c.get("iterations_run") for c in chunks if c.get("iterations_run") is not None]
    report = {
        "input": str(run.source), "output": str(out), "task": cfg.task.name, "method": cfg.method,
        "prior": getattr(models.prior, "name", None), "simulate": run.simulate, "device": str(run.device),
        "frames": run.n, "fps": fps, "wall_time_s": wall, "seconds_per_frame": wall / run.n,
        "iterations_per_chunk": iters, "chosen_iterations": [c.get("chosen_iteration") for c in chunks],
        "chunks": chunks, "notes": list(models.notes) + [f"chunk {c['index']}: {note}" for c in chunks
                                                         for note in c.get("notes", [])],
        "flow_model": getattr(models.flow, "name", None), "config": to_dict(cfg),
        "versions": {"vidplug": vidplug.__version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    if scores is not None:
        report["metrics"] = scores.summary()
    return report
