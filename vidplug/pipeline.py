"""video in -> chunks -> solver -> stitched video out. The one place that wires io, physics, prior, consistency,
solver and metrics together.

Frames stream through a sliding window, so memory is bounded by the chunk size (plus temporal context), not by the
length of the video. In simulation mode the input is the clean video: each chunk is degraded with the task's operator
(noise drawn per absolute frame index, so the observation does not depend on the chunking), restored, and scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidplug import distributed
from vidplug.config import RestoreConfig, dump_yaml, to_dict
from vidplug.errors import VidplugError
from vidplug.io import iter_frames, probe_video, select_indices
from vidplug.io.atomic import atomic_write_json, atomic_write_text
from vidplug.io.checkpoints import ChunkStore, quantize
from vidplug.io.sink import OutputSink
from vidplug.models import Models
from vidplug.physics import TASKS, build_operator, task_options
from vidplug.simulate import observe, temporal_context
from vidplug.solver.chunks import Chunk, plan_chunks, split_chunk
from vidplug.solver.video import restore_chunk

log = logging.getLogger(__name__)



def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda request is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidplugError(f"--device {name} requested but no CUDA device is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidplugError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None


def sr_factor(cfg: RestoreConfig) -> int:
    """Spatial upscaling between observation and restoration (1 for non-SR tasks)."""
    return int(cfg.task.options.get("factor", 4)) if cfg.task.name in ("sr4", "sr") else 1


class FrameWindow:
    """Random access to a forward-only frame stream, keeping only frames that may still be needed."""

    def __init__(self, frames: Iterator[Tensor]):
        self._it = frames
        self._cache: dict[int, Tensor] = {}
        self._next = 0

    def get(self, start: int, stop: int) -> Tensor:
        """Frames ``[start, stop)`` as ``(n, C, H, W)``."""
        while self._next < stop:
            try:
                self._cache[self._next] = next(self._it)
            except StopIteration:
                raise VidplugError(f"the video ended after {self._next} frames, expected at least {stop}") from None
            self._next += 1
        return torch.stack([self._cache[t] for t in range(start, stop)])

    def release(self, before: int) -> None:
        for t in [t for t in self._cache if t < before]:
            del self._cache[t]


@dataclass
class RestoreResult:
    """What a restoration run produced (``report`` is the JSON-ready summary)."""

    out: Path
    report: dict[str, Any]
    frames: Tensor | None = None  # restored frames when ``keep_frames`` was asked for (small videos / tests)
    observation: Tensor | None = None
    reference: Tensor | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)


def _check_task(cfg: RestoreConfig, custom_solver: bool = False) -> None:
    """Unknown tasks, options or methods fail before any model is loaded (any method name is accepted with a
    custom chunk solver, which names its own method, e.g. a baseline)."""
    if cfg.task.name not in TASKS:
        raise VidplugError(f"unknown task {cfg.task.name!r}; known tasks: {', '.join(TASKS)}")
    unknown = sorted(set(cfg.task.options) - set(task_options(cfg.task.name)))
    if unknown:
        raise VidplugError(f"task {cfg.task.name!r} has no option {', '.join(unknown)}; its options: "
                           f"{', '.join(task_options(cfg.task.name)) or 'none'}")
    if cfg.chunk.seam not in ("anchor", "blend"):
        raise VidplugError(f"unknown chunk.seam {cfg.chunk.seam!r}; use anchor or blend")
    if cfg.method not in ("dmplug", "bicubic") and not custom_solver:
        raise VidplugError(f"unknown method {cfg.method!r}; use dmplug or bicubic")


def config_path_for(out: Path) -> Path:
    """Where the resolved config of an output is saved: ``clip.mp4`` -> ``clip.config.yaml`` (folders: sibling)."""
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.parent / f"{stem}.config.yaml"


def _check_outputs(paths: list[Path | None], overwrite: bool) -> None:
    for p in paths:
        if p is None:
            continue
        if p.exists() and not overwrite:
            raise VidplugError(f"output {p} already exists; pass --overwrite or choose another path")
        parent = p.parent if p.parent != Path("") else Path(".")
        probe = parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not _writable(probe):
            raise VidplugError(f"cannot write to {parent}: not a writable directory; choose another output path")


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK | os.X_OK)


def _auto_chunk_size(cfg: RestoreConfig, models: Models, device: torch.device, info, read, simulate: bool) -> int:
    """Frames per chunk when ``chunk.size`` is 0: fitted to free GPU memory, 8 on CPU."""
    from vidplug.solver.memory import CPU_DEFAULT_CHUNK, auto_chunk_size

    if device.type != "cuda" or models.prior is None:
        return CPU_DEFAULT_CHUNK
    size = read.get("size") or (info.height, info.width)
    h, w = (size, size) if isinstance(size, int) else size
    if not simulate:
        h, w = h * sr_factor(cfg), w * sr_factor(cfg)
    return auto_chunk_size(models.prior, (3, h, w), device, num_steps=cfg.solver.num_steps,
                           checkpoint=cfg.solver.checkpoint, autocast=cfg.solver.autocast,
                           micro_batch=cfg.solver.micro_batch)


def count_frames(info, read: dict[str, Any]) -> int:
    """Frames a reader yields for ``read`` options (start, end, stride, max_frames) on a video of ``info``."""
    return len(select_indices(info.num_frames, read.get("start", 0), read.get("end"), read.get("stride", 1),
                              read.get("max_frames")))


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
    chunk_solver: Callable[..., tuple[Tensor, dict[str, Any], Tensor | None]] | None = None,
    use_distributed: bool = True,
) -> RestoreResult:
    """Restore a video file or frame folder chunk by chunk and write it to ``out`` (.mp4 or a PNG folder).

    Args:
        source: the observation, or with ``simulate`` the clean video (degraded here with the task's operator).
        cfg: resolved configuration.
        mask: inpainting mask video/folder (white = observed) for real (non-simulated) inpainting observations.
        read: frame selection for the reader (start, end, stride, max_frames, size).
        report_path: JSON report (settings, timings, chosen iterations; metrics when simulated).
        side_by_side: optional labelled side-by-side video: observation | restored (| ground truth).
        keep_frames: also return the restored frames in memory (small videos, tests).
        models: prebuilt networks, to share them between runs (e.g. an ablation).
        resume: continue an interrupted run from its per-chunk checkpoints (same settings required).
        chunk_solver: restores one chunk in place of :func:`restore_chunk` (same arguments and return), e.g. a
            per-frame baseline from another library run through this same harness.
        use_distributed: under torchrun, share the chunks among the processes (``chunk.seam=blend``); callers
            that shard work themselves (DAVIS sequences) pass False.

    Two passes: chunks are restored and checkpointed (in order for ``anchor`` seams; any order, by any process,
    for ``blend``), then rank 0 writes them in order and scores them. A killed run resumes from the checkpoints.
    Output frames are 8-bit (what PNG/H.264 store); metrics and the next chunk's anchors use exactly those frames,
    so a resumed run reproduces an uninterrupted one, and a multi-process run a single-process one.
    """
    t_start = time.time()
    source, out = Path(source), Path(out)
    read = dict(read or {})
    cfg_path = config_path_for(out)
    if out.resolve() == source.resolve() or (mask is not None and out.resolve() == Path(mask).resolve()):
        raise VidplugError(f"output {out} is the input; choose another --out (the input is never modified)")
    _check_outputs([out, cfg_path, Path(report_path) if report_path else None,
                    Path(side_by_side) if side_by_side else None], overwrite)
    _check_task(cfg, custom_solver=chunk_solver is not None)
    if cfg.task.name == "inpaint" and not simulate and mask is None:
        raise VidplugError("inpainting a real observation needs --mask (white = observed pixel), or use --simulate")
    rank, world_size = distributed.world() if use_distributed else (0, 1)
    if world_size > 1 and cfg.chunk.seam != "blend":
        raise VidplugError("a multi-process run restores chunks independently: add --set chunk.seam=blend")
    device = resolve_device(cfg.device)
    info = probe_video(source)
    n = count_frames(info, read)
    if n < 1:
        raise VidplugError(f"{source} has no frames in the selected range; check --start/--end/--max-frames")
    store = _open_store(out, {"config": to_dict(cfg), "input": str(source.resolve()), "read": read,
                              "simulate": simulate, "mask": str(mask)}, resume, overwrite, rank)
    models = models or Models(cfg, device)
    chunk_size = cfg.chunk.size or _auto_chunk_size(cfg, models, device, info, read, simulate)
    ctx = temporal_context(cfg.task.name, cfg.task.options)
    chunks = plan_chunks(n, chunk_size, min(cfg.chunk.overlap, chunk_size - 1), ctx)
    run = _Run(cfg, source, read, simulate, n, ctx, device)
    mine = [c for c in chunks if c.index % world_size == rank and not store.has(c.index)]
    computed = _solve_chunks(run, mine, chunks, store, models, mask, chunk_solver or restore_chunk, progress)
    distributed.barrier()
    if rank != 0:  # rank 0 assembles the output from every rank's checkpoints
        return RestoreResult(out, {})
    scores = None
    if simulate:
        from vidplug.metrics.stream import StreamingScores

        scores = StreamingScores(models.metrics_flow())
    sink = OutputSink(out, side_by_side, info.fps, overwrite, keep_frames, cfg.method)
    chunk_reports = _assemble(run, chunks, store, sink, scores, computed)
    report = _report(cfg, source, out, simulate, device, n, info.fps, chunk_reports, models, scores,
                     time.time() - t_start)
    report["processes"] = world_size
    atomic_write_text(cfg_path, dump_yaml(cfg))
    if report_path is not None:
        atomic_write_json(report_path, report)
    store.finish()
    kept = sink.kept()
    return RestoreResult(out, report, kept["restored"], kept["observation"], kept["reference"], chunk_reports)


def _open_store(out: Path, fingerprint: dict[str, Any], resume: bool, overwrite: bool, rank: int) -> ChunkStore:
    """Rank 0 checks and creates the checkpoint folder; the other ranks then join it (or fail with rank 0)."""
    error = None
    if rank == 0:
        try:
            store = ChunkStore(out, fingerprint, resume=resume, overwrite=overwrite)
        except VidplugError as exc:
            error = str(exc)
    error = distributed.broadcast_error(error)
    if error is not None:
        raise VidplugError(error)
    return store if rank == 0 else ChunkStore(out, fingerprint, resume=True, overwrite=False)


@dataclass
class _Run:
    """What every pass over the input needs to rebuild a chunk's observation exactly."""

    cfg: RestoreConfig
    source: Path
    read: dict[str, Any]
    simulate: bool
    n: int  # frames in the selection
    ctx: int  # temporal context frames of the operator
    device: torch.device

    def frames(self) -> FrameWindow:
        return FrameWindow(iter_frames(self.source, **self.read))

    def observe(self, src: FrameWindow, lo: int, hi: int) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """Observation, ground truth (simulation only) and restored frame size of frames ``[lo, hi)``."""
        cfg = self.cfg
        if self.simulate:  # the operator needs ctx clean frames on each side
            c_lo, c_hi = max(lo - self.ctx, 0), min(hi + self.ctx, self.n)
            clean = src.get(c_lo, c_hi).to(self.device)
            y = observe(cfg.task.name, clean, c_lo, lo, hi, seed=cfg.task.seed, noise=cfg.task.noise_model,
                        **cfg.task.options)
            return y, clean[lo - c_lo : hi - c_lo], tuple(clean.shape[-2:])
        y = src.get(lo, hi).to(self.device)
        return y, None, (y.shape[-2] * sr_factor(cfg), y.shape[-1] * sr_factor(cfg))


def _solve_chunks(run: _Run, todo: list[Chunk], chunks: list[Chunk], store: ChunkStore, models: Models, mask,
                  solve_chunk, progress: bool) -> set[int]:
    """Restore the chunks in ``todo`` (in order) and checkpoint each; returns their indices.

    ``anchor`` seams tie a chunk's overlap frames to the previous chunk's checkpoint (sequential); ``blend`` seams
    restore every chunk on its own and keep its overlap frames for the cross-fade (any order, any process).
    On CUDA out-of-memory a chunk is re-planned as sub-chunks of half the frames (again, down to one frame), restored
    one after the other and checkpointed as the chunk; later chunks start at the size that fitted.
    """
    from vidplug.solver.memory import run_with_oom_halving

    cfg = run.cfg
    blend = cfg.chunk.seam == "blend"
    inputs = _ChunkInputs(run, mask)
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
            return _restore_pieces(run, chunk, pieces, anchors, inputs, models, solve_chunk, progress)

        (frames, z, summary), used = run_with_oom_halving(attempt, size)
        if used < planned:
            fits = used
            why = f"out of GPU memory at {size} frames" if used < size else "out of GPU memory in an earlier chunk"
            summary.setdefault("notes", []).append(f"{why}: restored as sub-chunks of at most {used} frames")
        store.save(chunk.index, frames, z, summary)
        if i + 1 < len(todo):
            inputs.release(todo[i + 1].window_start)
    return {c.index for c in todo}


class _ChunkInputs:
    """Observations (and real inpainting masks) of frame windows, streamed from the input in increasing order."""

    def __init__(self, run: _Run, mask) -> None:
        self.run = run
        self.src = run.frames()
        self.masks = FrameWindow(iter_frames(mask, **run.read)) if mask is not None else None

    def problem(self, ws: int, we: int) -> tuple[Tensor, Tensor | None, torch.nn.Module]:
        """Observation, ground truth (simulation only) and operator of the window ``[ws, we)``."""
        cfg = self.run.cfg
        y, reference, size = self.run.observe(self.src, ws, we)
        extra = {"mask": (self.masks.get(ws, we)[:, :1] > 0.5).float()} if self.masks is not None else {}
        op = build_operator(cfg.task.name, we - ws, size, seed=cfg.task.seed, noise_sigma=cfg.task.noise_sigma,
                            frame_offset=ws, **cfg.task.options, **extra).to(self.run.device)
        return y, reference, op

    def release(self, window_start: int) -> None:
        """Frames before the next window (and its temporal context) are not needed again."""
        self.src.release(max(window_start - self.run.ctx, 0))
        if self.masks is not None:
            self.masks.release(window_start)


def _restore_pieces(run: _Run, chunk: Chunk, pieces: list[Chunk], anchors: Tensor | None, inputs: _ChunkInputs,
                    models: Models, solve_chunk, progress: bool) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
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
        y, reference, op = inputs.problem(piece.window_start, piece.window_stop)
        n_anchor = piece.start - piece.anchor_start
        piece_anchors = None
        if n_anchor > 0 and known is not None:  # (a blend-seam chunk restored whole has no anchors)
            piece_anchors = known[piece.anchor_start - known_from : piece.start - known_from]
        restored, summary, z = solve_chunk(run.cfg, models, piece, y, op, piece_anchors, reference, progress)
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


def _assemble(run: _Run, chunks: list[Chunk], store: ChunkStore, sink: OutputSink, scores, computed: set[int]):
    """Write the checkpointed chunks in order (cross-fading ``blend`` overlaps) and score them against the truth."""
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
                if pending is not None and o:  # linear cross-fade from the previous chunk to this one
                    w = torch.arange(1, o + 1, device=frames.device, dtype=frames.dtype).view(-1, 1, 1, 1) / (o + 1)
                    frames = torch.cat([quantize(w * frames[:o] + (1 - w) * pending), frames[o:]])
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


def _report(cfg, source, out, simulate, device, n, fps, chunks, models, scores, wall) -> dict[str, Any]:
    import platform

    import vidplug

    iters = [c.get("iterations_run") for c in chunks if c.get("iterations_run") is not None]
    report = {
        "input": str(source), "output": str(out), "task": cfg.task.name, "method": cfg.method,
        "prior": getattr(models.prior, "name", None), "simulate": simulate, "device": str(device),
        "frames": n, "fps": fps, "wall_time_s": wall, "seconds_per_frame": wall / n,
        "iterations_per_chunk": iters, "chosen_iterations": [c.get("chosen_iteration") for c in chunks],
        "chunks": chunks, "notes": list(models.notes) + [f"chunk {c['index']}: {note}" for c in chunks
                                                         for note in c.get("notes", [])],
        "flow_model": getattr(models.flow, "name", None), "config": to_dict(cfg),
        "versions": {"vidplug": vidplug.__version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    if scores is not None:
        report["metrics"] = scores.summary()
    return report
