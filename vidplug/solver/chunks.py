"""Chunk scheduling for long videos: which frames each chunk optimises, anchors, observes and writes.

A chunk optimises ``size`` frames jointly: ``overlap`` frames already written by the previous chunk (anchored to that
result so the seam does not flicker) followed by new frames it writes. Operators that couple frames in time (the
temporal PSF of width k) need ``context = k // 2`` extra frames on each side: they are optimised too, so that every
observed frame of the chunk has its whole PSF support inside the window, but they are neither written nor trusted.

When fewer than ``size - overlap`` new frames remain, the last chunk anchors more of the previous chunk's frames so
that its window still holds ``size`` frames: at 16 frames, size 8, overlap 2 it writes [14, 16) anchored to [8, 14),
not a 4-frame window anchored to [12, 14). The multi-frame stages need those frames (a 4-frame window of temporal
k=7 is too ill-posed for the flows estimated from it: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# Bumped whenever plan_chunks plans the same settings differently: it is part of a run's checkpoint fingerprint, so a
# folder checkpointed under another plan is refused on --resume instead of assembled wrongly (2: end-aligned last chunk)
PLAN_VERSION = 2


@dataclass(frozen=True)
class Chunk:
    """Absolute frame ranges (half-open) of one chunk."""

    index: int
    start: int  # first frame this chunk writes
    stop: int  # one past the last frame it writes
    anchor_start: int  # first overlap frame (== start for the first chunk): restored before, anchored here
    window_start: int  # first frame optimised (anchor_start - context, clipped to the video)
    window_stop: int  # one past the last frame optimised (stop + context, clipped)
    data_start: int  # observed frames whose data term is exact within the window: [data_start, data_stop)
    data_stop: int

    @property
    def window_len(self) -> int:
        return self.window_stop - self.window_start

    def local(self, frame: int) -> int:
        """Index of absolute ``frame`` inside the optimised window."""
        return frame - self.window_start


def plan_chunks(
    num_frames: int, size: int, overlap: int = 0, context: int = 0, *, begin: int = 0, end: int | None = None,
    lead: int = 0,
) -> list[Chunk]:
    """Split ``num_frames`` frames into chunks of ``size`` frames sharing ``overlap`` frames.

    Every frame is written by exactly one chunk, in order. ``context`` frames are added on both sides of each window
    for operators that couple neighbouring frames; a data term is kept only for frames whose coupling support lies in
    the window (or is cut by the video's own ends, where the operator's boundary rule is the true one).

    ``begin``/``end`` plan only the frames ``[begin, end)`` of the video, the first chunk then overlapping ``lead``
    frames before ``begin`` (at most ``size - 1``): how :func:`split_chunk` re-plans one chunk at a smaller size.
    """
    end = num_frames if end is None else end
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, chunk size), got overlap={overlap}, size={size}")
    if not 0 <= begin < end <= num_frames or lead < 0:
        raise ValueError(f"need 0 <= begin < end <= num_frames and lead >= 0, got {begin}, {end}, {num_frames}, {lead}")
    chunks: list[Chunk] = []
    start = begin
    while start < end:
        back = min(lead, size - 1) if start == begin else overlap
        anchor_start = max(start - back, 0)
        stop = min(anchor_start + size, end)
        if stop == end and chunks:  # a short last chunk: anchor up to the previous chunk's start, `size` frames
            anchor_start = min(anchor_start, max(end - size, chunks[-1].start))
        window_start = max(anchor_start - context, 0)
        window_stop = min(stop + context, num_frames)
        # a frame t needs [t - context, t + context] inside the window, unless the window edge is the video's edge
        data_start = window_start if window_start == 0 else window_start + context
        data_stop = window_stop if window_stop == num_frames else window_stop - context
        chunks.append(
            Chunk(len(chunks), start, stop, anchor_start, window_start, window_stop, data_start, data_stop)
        )
        start = stop
    return chunks


def split_chunk(chunk: Chunk, size: int, overlap: int, context: int, num_frames: int, *, blend: bool) -> list[Chunk]:
    """Re-plan one chunk as consecutive sub-chunks of at most ``size`` frames (restored in order, each anchored to
    the previous one's last ``min(overlap, size - 1)`` frames); they carry the chunk's index.

    The sub-chunks write what the chunk keeps: ``[start, stop)`` with the first one anchored to (up to ``size - 1``
    of) the chunk's anchor frames, or with ``blend`` seams ``[anchor_start, stop)`` from scratch. Planning a video at
    ``size`` directly gives the same sub-chunks wherever the overlaps line up (anchor seams).
    """
    begin = chunk.anchor_start if blend else chunk.start
    subs = plan_chunks(num_frames, size, min(overlap, size - 1), context, begin=begin, end=chunk.stop,
                       lead=begin - chunk.anchor_start)
    return [replace(c, index=chunk.index) for c in subs]
