"""video in -> chunks -> method -> stitched video out: :func:`restore_video`, the one place that wires io, physics,
the method (prior, consistency, solver) and metrics together.

Frames stream through a sliding window, so memory is bounded by the chunk size (plus temporal context), not by the
length of the video. In simulation mode the input is the clean video: each chunk is degraded with the task's operator
(noise drawn per absolute frame index, so the observation does not depend on the chunking), restored, and scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from vidplug import distributed
from vidplug.config import RestoreConfig
from vidplug.errors import VidplugError
from vidplug.io import probe_video
from vidplug.io.atomic import atomic_write_json, atomic_write_text
from vidplug.io.checkpoints import ChunkStore
from vidplug.io.media import OutputMedia, media_report
from vidplug.io.output_plan import source_output_media
from vidplug.io.sink import OutputSink
from vidplug.io.window import count_frames, selected_indices
from vidplug.methods import ChunkSolver, get_method
from vidplug.models import Models
from vidplug.physics import task_geometry
from vidplug.pipeline.assemble import assemble, run_report
from vidplug.pipeline.chunk_loop import solve_chunks
from vidplug.pipeline.inputs import RunInputs
from vidplug.pipeline.outputs import check_inputs, check_outputs, config_path_for
from vidplug.runtime import resolve_device
from vidplug.solver.chunks import PLAN_VERSION, plan_chunks
from vidplug.typed import dump_yaml, to_dict


@dataclass
class RestoreResult:
    """What a restoration run produced (``report`` is the JSON-ready summary)."""

    out: Path
    report: dict[str, Any]
    frames: Tensor | None = None  # restored frames when ``keep_frames`` was asked for (small videos / tests)
    observation: Tensor | None = None
    reference: Tensor | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)


def restore_video(
    source: str | Path,
    out: str | Path,
    cfg: RestoreConfig,
    *,
    simulate: bool = False,
    mask: str | Path | None = None,
    read: dict[str, Any] | None = None,
    report_path: str | Path | None = None,
    side_by_side: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    keep_frames: bool = False,
    models: Models | None = None,
    resume: bool = False,
    chunk_solver: ChunkSolver | None = None,
    use_distributed: bool = True,
    on_chunk_saved: Callable[[int], None] | None = None,
    html_report: str | Path | None = None,
    audio: str = "auto",
) -> RestoreResult:
    """Restore a video file or frame folder chunk by chunk and write it to ``out`` (.mp4 or a PNG folder).

    Args:
        source: the observation, or with ``simulate`` the clean video (degraded here with the task's operator).
        cfg: resolved configuration (checked when it was loaded).
        mask: inpainting mask video/folder (white = observed) for real (non-simulated) inpainting observations.
        read: frame selection for the reader (start, end, stride, max_frames, size); None = ``cfg.read``.
        report_path: JSON report (settings, timings, chosen iterations; metrics when simulated).
        side_by_side: optional labelled side-by-side video: observation | restored (| ground truth).
        keep_frames: also return the restored frames in memory (small videos, tests).
        models: prebuilt networks, to share them between runs (e.g. an ablation).
        resume: continue an interrupted run from its per-chunk checkpoints (same settings required).
        chunk_solver: restores each chunk in place of the registered ``cfg.method``
            (:class:`~vidplug.methods.ChunkSolver`), e.g. a method with non-default settings.
        use_distributed: under torchrun, share the chunks among the processes (``chunk.seam=blend``); callers
            that shard work themselves (DAVIS sequences) pass False.
        on_chunk_saved: called with each chunk's index once its checkpoint is written.
        html_report: also write this self-contained HTML page (videos a browser plays in ``<stem>_media/``
            beside it, metrics, charts, provenance; see :mod:`vidplug.report_html`).
        audio: the source's audio in ``out``: ``auto`` (copied, else re-encoded as AAC), ``copy`` (or fail
            before any work), ``aac`` or ``none``. Colour, timestamps and rotation are always kept
            (see :func:`vidplug.io.output_plan.source_output_media`).

    Two passes: chunks are restored and checkpointed (in order for ``anchor`` seams; any order, by any process,
    for ``blend``), then rank 0 writes them in order and scores them. A killed run resumes from the checkpoints.
    Output frames are 8-bit (what PNG/H.264 store); metrics and the next chunk's anchors use exactly those frames,
    so a resumed run reproduces an uninterrupted one, and a multi-process run a single-process one.
    """
    t_start = time.time()
    source, out = Path(source), Path(out)
    cfg = cfg.with_read(read)  # an explicit ``read`` replaces the config's read: section (saved with the output)
    read = cfg.read.kwargs()
    solver = chunk_solver or get_method(cfg.method)
    check_inputs(source, out, mask)
    check_outputs([out, config_path_for(out), Path(report_path) if report_path else None,
                   Path(side_by_side) if side_by_side else None], overwrite)
    rank, world_size = distributed.world() if use_distributed else (0, 1)
    run = _open_run(cfg, source, read, simulate, mask, world_size)
    source_media = source_output_media(source, out, selected_indices(run.info, read), audio)  # bad copy fails here
    models = models or Models(cfg, run.device)  # first: missing weights must leave nothing behind (no work folder)
    store = _open_store(out, {"config": to_dict(cfg), "input": str(source.resolve()), "read": read,
                              "simulate": simulate, "mask": str(mask), "chunk_plan": PLAN_VERSION}, resume, overwrite, rank)
    chunks = _plan(run, models, store, rank)
    mine = [c for c in chunks if c.index % world_size == rank and not store.has(c.index)]
    computed = solve_chunks(run, mine, store, models, mask, solver, progress, on_chunk_saved)
    distributed.barrier()
    if rank != 0:  # rank 0 assembles the output from every rank's checkpoints
        return RestoreResult(out, {})
    return _write_outputs(run, out, chunks, store, models, computed, side_by_side=side_by_side,
                          report_path=report_path, overwrite=overwrite, keep_frames=keep_frames,
                          processes=world_size, t_start=t_start, html_report=html_report,
                          source_media=source_media)


def _open_run(cfg: RestoreConfig, source: Path, read: dict[str, Any], simulate: bool, mask,
              world_size: int) -> RunInputs:
    """Check what the run needs before any model is loaded, and probe the input."""
    geometry = task_geometry(cfg.task.name, **cfg.task.options)  # the operator's context and scale
    if cfg.task.name == "inpaint" and not simulate and mask is None:
        raise VidplugError("inpainting a real observation needs --mask (white = observed pixel), or use --simulate")
    if world_size > 1 and cfg.chunk.seam != "blend":
        raise VidplugError("a multi-process run restores chunks independently: add --set chunk.seam=blend")
    device = resolve_device(cfg.device)
    info = probe_video(source)
    n = count_frames(info, read)
    if n < 1:
        raise VidplugError(f"{source} has no frames in the selected range; check --start/--end/--max-frames")
    return RunInputs(cfg, source, read, simulate, n, geometry, device, info)


def _write_outputs(run: RunInputs, out: Path, chunks, store: ChunkStore, models: Models, computed: set[int], *,
                   side_by_side, report_path, overwrite: bool, keep_frames: bool, processes: int,
                   t_start: float, html_report=None, source_media: OutputMedia | None = None) -> RestoreResult:
    """Second pass (rank 0): the output video (with what it keeps of the source: ``source_media``), side-by-side,
    scores, resolved config and report."""
    scores = None
    if run.simulate:
        from vidplug.metrics.stream import StreamingScores

        scores = StreamingScores(models.metrics_flow())
    fps = run.info.fps
    media = None
    if html_report is not None:
        from vidplug.report_html import ReportMedia, media_dir_for

        media = ReportMedia(media_dir_for(html_report), fps)
    sink = OutputSink(out, side_by_side, fps, overwrite, keep_frames, run.cfg.method, media=media,
                      source=source_media)
    chunk_reports = assemble(run, chunks, store, sink, scores, computed)
    report = run_report(run, out, fps, chunk_reports, models, scores, time.time() - t_start)
    report["processes"] = processes
    if source_media is not None:
        report["media"] = media_report(source_media)
        report["notes"] += source_media.notes
    atomic_write_text(config_path_for(out), dump_yaml(run.cfg))
    if report_path is not None:
        atomic_write_json(report_path, report)
    if html_report is not None:
        from vidplug.report_html import write_restore_html

        write_restore_html(html_report, report, sink.media_files)
    store.finish()
    kept = sink.kept()
    return RestoreResult(out, report, kept["restored"], kept["observation"], kept["reference"], chunk_reports)


def _plan(run: RunInputs, models: Models, store: ChunkStore, rank: int) -> list:
    """The run's chunks: ``chunk.size`` frames (0 = auto) sharing ``chunk.overlap`` frames, with the operator's
    temporal context. An automatic size is decided once, by rank 0, and recorded in the checkpoint folder: memory
    differs between processes and between a run and its resumption, and the chunks must not."""
    chunk_size = run.cfg.chunk.size
    if not chunk_size:
        def decide() -> int:
            return _auto_chunk_size(run, models)

        chunk_size = distributed.rank_zero_first(lambda: store.chunk_size(decide), rank)  # rank 0 decides, records
        if chunk_size is None:  # the other ranks read what rank 0 recorded
            chunk_size = store.chunk_size(decide)
    return plan_chunks(run.n, chunk_size, min(run.cfg.chunk.overlap, chunk_size - 1), run.ctx)


def _open_store(out: Path, fingerprint: dict[str, Any], resume: bool, overwrite: bool, rank: int) -> ChunkStore:
    """Rank 0 checks and creates the checkpoint folder; the other ranks then join it (or fail with rank 0)."""
    store = distributed.rank_zero_first(lambda: ChunkStore(out, fingerprint, resume=resume, overwrite=overwrite), rank)
    return store if rank == 0 else ChunkStore(out, fingerprint, resume=True, overwrite=False)


def _auto_chunk_size(run: RunInputs, models: Models) -> int:
    """Frames per chunk when ``chunk.size`` is 0: what free memory holds of the prior's iteration (GPU: probed, at
    most 32; elsewhere: estimated against host memory, at most 16); 16 for the methods without a prior."""
    from vidplug.solver.memory import CPU_MAX_CHUNK, auto_chunk_size

    if models.prior is None:
        return CPU_MAX_CHUNK
    size = run.read.get("size") or (run.info.height, run.info.width)
    h, w = (size, size) if isinstance(size, int) else size
    if not run.simulate:
        h, w = h * run.geometry.scale, w * run.geometry.scale
    s = run.cfg.solver
    return auto_chunk_size(models.run_prior(run.cfg), (3, h, w), run.device, num_steps=s.num_steps,
                           checkpoint=s.checkpoint, autocast=s.autocast, micro_batch=s.micro_batch)

