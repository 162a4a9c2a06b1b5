"""The first pass of a run: restore the chunks one after the other and checkpoint each (re-planning a chunk as
smaller sub-chunks when CUDA runs out of memory)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.checkpoints import ChunkStore, quantize
from vidplug.methods import ChunkOutput, ChunkSolver
from vidplug.pipeline.inputs import ChunkInputs, RunInputs
from vidplug.solver.chunks import Chunk, split_chunk


def solve_chunks(run: RunInputs, todo: list[Chunk], store: ChunkStore, models, mask, solve_chunk: ChunkSolver,
                 progress: bool, on_chunk_saved: Callable[[int], None] | None = None) -> set[int]:
    """Restore the chunks in ``todo`` (in order) and checkpoint each; returns their indices.

    ``anchor`` seams tie a chunk's overlap frames to the previous chunk's checkpoint (sequential); ``blend`` seams
    restore every chunk on its own and keep its overlap frames for the cross-fade (any order, any process).
    On CUDA out-of-memory a chunk is re-planned as sub-chunks of half the frames (again, down to one frame), restored
    one after the other and checkpointed as the chunk; later chunks start at the size that fitted.
    ``on_chunk_saved(index)`` is called after each checkpoint (progress hooks, fault-injection tests).
    """
    from vidplug.solver.memory import run_with_oom_halving

    cfg = run.cfg
    blend = cfg.chunk.seam == "blend"
    inputs = ChunkInputs(run, mask)
    fits: int | None = None  # frames per solve that fitted after an out-of-memory; None = the planned chunks
    for i, chunk in enumerate(todo):
        n_anchor = chunk.start - chunk.anchor_start
        anchors = None
        if not blend and n_anchor > 0:
            anchors = store.load(chunk.index - 1)["frames"][-n_anchor:].to(run.device)
        planned = chunk.stop - chunk.anchor_start
        size = min(planned, fits or planned)

        def attempt(size: int, chunk: Chunk = chunk, anchors: Tensor | None = anchors):
            pieces = [chunk] if size >= chunk.stop - chunk.anchor_start else split_chunk(
                chunk, size, cfg.chunk.overlap, run.ctx, run.n, blend=blend)
            return restore_pieces(run, chunk, pieces, anchors, inputs, models, solve_chunk, progress)

        (frames, z, summary), used = run_with_oom_halving(attempt, size)
        if used < planned:
            fits = used
            why = f"out of GPU memory at {size} frames" if used < size else "out of GPU memory in an earlier chunk"
            summary.setdefault("notes", []).append(f"{why}: restored as sub-chunks of at most {used} frames")
        store.save(chunk.index, frames, z, summary)
        if on_chunk_saved is not None:
            on_chunk_saved(chunk.index)
        if i + 1 < len(todo):
            inputs.release(todo[i + 1].window_start)
    return {c.index for c in todo}


def restore_pieces(run: RunInputs, chunk: Chunk, pieces: list[Chunk], anchors: Tensor | None, inputs: ChunkInputs,
                   models, solve_chunk: ChunkSolver, progress: bool) -> ChunkOutput:
    """Restore ``chunk`` as ``pieces`` (itself, or its sub-chunks in order, each anchored to the one before).

    Returns the 8-bit frames the chunk keeps (``[anchor_start, stop)`` for blend seams, else ``[start, stop)``),
    the chosen seeds (the chunk's window; for sub-chunks those of the frames kept, in order) and the solver summary.
    """
    blend = run.cfg.chunk.seam == "blend"
    keep_from = chunk.anchor_start if blend else chunk.start
    known = anchors  # 8-bit frames restored so far, from known_from on (the anchors, then each piece's frames)
    known_from = keep_from if anchors is None else chunk.start - anchors.shape[0]
    kept, seeds, summaries = [], [], []
    for piece in pieces:
        problem, y, reference, op = inputs.problem(piece)  # problem: the piece, its data range widened
        n_anchor = piece.start - piece.anchor_start
        piece_anchors = None
        if n_anchor > 0 and known is not None:  # (a blend-seam chunk restored whole has no anchors)
            piece_anchors = known[piece.anchor_start - known_from : piece.start - known_from]
        restored, summary, z = solve_chunk(run.cfg, models, problem, y, op, piece_anchors, reference, progress)
        if not torch.isfinite(restored).all():
            raise VidplugError(f"chunk {chunk.index} produced non-finite frames; lower --lr or check the input")
        lo = keep_from if piece is chunk else piece.start
        new = quantize(restored[piece.local(lo) : piece.local(piece.stop)])
        kept.append(new)
        if piece is not pieces[-1]:  # the next piece anchors to these
            known = new if known is None else torch.cat([known, new])
        seeds.append(z if piece is chunk or z is None else z[piece.local(lo) : piece.local(piece.stop)])
        summaries.append(summary)
    if len(pieces) == 1:
        return kept[0], seeds[0], summaries[0]
    z = None if any(s is None for s in seeds) else torch.cat(seeds)
    summary = {"method": summaries[0].get("method", run.cfg.method),
               "sub_chunks": [{"frames": [p.start, p.stop], "anchored_from": p.anchor_start, **s}
                              for p, s in zip(pieces, summaries, strict=True)]}
    return torch.cat(kept), z, summary
