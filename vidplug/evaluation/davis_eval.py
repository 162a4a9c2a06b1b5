"""Dataset evaluation (DAVIS 2017, REDS/Vid4/UDM10/SPMCS-style folders of sequence folders, folders of videos; see
:mod:`vidplug.io.datasets`): simulate a degradation on each sequence, restore it, score it; resumable.

Preprocessing follows zero-shot video restoration papers: the first N frames of each sequence, center-cropped to the
target aspect ratio and resized (antialiased) to the prior's resolution, e.g. 256x256. Each sequence is degraded with
the task's seeded operator, restored and scored (PSNR, SSIM, LPIPS per frame, warping error per frame pair) by
:func:`vidplug.pipeline.restore_video` in simulation mode.

Output folder::

    run.json                      the settings every result here was made with (a rerun must match them)
    sequences/<seq>/result.json   one finished sequence (written atomically when it is done)
    sequences/<seq>/restored.mp4  its restoration (+ restored.config.yaml)
    sequences/<seq>/report.html   its page: synchronised videos (report_media/), charts, provenance
    videos/<seq>.mp4              observation | restored | ground truth
    results.json, results.csv, report.md, plots/*.png   the summary (see vidplug.evaluation.report)
    report.html                   the summary page; its rows open the sequence pages

A finished sequence is never recomputed: killing the run loses at most the sequence in progress (and inside it,
restore_video's chunk checkpoints keep the finished chunks).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from vidplug import distributed
from vidplug.config import RestoreConfig, to_dict
from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_write_json
from vidplug.io.datasets import check_one_size, resolve_dataset
from vidplug.methods import ChunkSolver, get_method
from vidplug.models import Models
from vidplug.pipeline import restore_video
from vidplug.runtime import resolve_device

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
GENERATED = ("sequences", "videos", "plots", "results.json", "results.csv", "report.md", "report.html")  # what overwrite removes


def preprocessing_note(read: dict[str, Any]) -> str:
    """Human-readable description of the frame selection / resizing applied to every sequence."""
    size = read.get("size")
    parts = [f"first {read['max_frames']} frames" if read.get("max_frames") else "all frames"]
    if read.get("start") or (read.get("stride") or 1) > 1 or read.get("end") is not None:
        parts.append(f"from frame {read.get('start') or 0} to {read.get('end')}, stride {read.get('stride') or 1}")
    if size is None:
        parts.append("native resolution")
    else:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        parts.append(f"center crop to the {hw[0]}:{hw[1]} aspect ratio, antialiased resize to {hw[0]}x{hw[1]}")
    return "; ".join(parts)


def run_settings(cfg: RestoreConfig, read: dict[str, Any], resolution: str, extra: dict[str, Any] | None) -> dict:
    """What determines every per-sequence result of a run (compared on resume; the sequence list is not part of it,
    so a rerun may add sequences)."""
    return json.loads(json.dumps({"config": to_dict(cfg), "read": read, "resolution": resolution,
                                  "extra": extra or {}}, default=str))


def _first_difference(old: Any, new: Any, path: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
    return f"{path or 'settings'}: {old!r} -> {new!r}"


def prepare_out_dir(out_dir: Path, settings: dict[str, Any], overwrite: bool,
                    generated: tuple[str, ...] = GENERATED) -> None:
    """Create ``out_dir`` or check it holds results of the same ``settings``; ``overwrite`` discards old results
    (all of them, the entries ``generated``: a run with --overwrite starts over)."""
    marker = out_dir / RUN_FILE
    if marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except json.JSONDecodeError:
            old = "unreadable"
    else:
        old = "missing" if (out_dir / generated[0]).exists() else None
    if overwrite:
        for name in generated:
            p = out_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif old is not None and old != settings:
        diff = _first_difference(old, settings) if isinstance(old, dict) else f"{RUN_FILE} is {old}"
        raise VidplugError(
            f"{out_dir} holds results made with different settings ({diff}); pass --overwrite to discard them "
            "or choose another --out"
        )
    atomic_write_json(marker, settings)


def evaluate_davis(
    root: str | Path,
    out_dir: str | Path,
    cfg: RestoreConfig,
    *,
    sequences: list[str] | None = None,
    split: str | None = None,
    resolution: str = "480p",
    read: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    models: Models | None = None,
    chunk_solver: ChunkSolver | None = None,
    label: str | None = None,
    extra_settings: dict[str, Any] | None = None,
    videos: bool = True,
    summary: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate ``cfg`` on a dataset's sequences; resumable (see the module docstring for the output layout).

    Args:
        root: a DAVIS 2017 root (``JPEGImages/<resolution>/<seq>``, ``ImageSets/2017/<split>.txt``), a folder of
            sequence folders of frames, or a folder of videos (:func:`vidplug.io.datasets.resolve_dataset`).
        cfg: resolved restoration config (task, prior, solver, consistency, seeds).
        sequences: names to run (default: every sequence of ``split``, else every sequence under ``root``).
        split: a file listing sequence names, or a DAVIS split name (DAVIS default: ``val``).
        read: frame selection for every sequence (start, end, stride, max_frames, size), e.g.
            ``{"max_frames": 16, "size": 256}``; it replaces ``cfg.read`` (None = ``cfg.read``).
        overwrite: discard results of a previous run in ``out_dir`` (needed when the settings changed).
        models: prebuilt networks shared between runs (built from ``cfg`` when None).
        chunk_solver: the method's chunk solver with non-default settings (e.g. DiffPIR's), see
            :func:`restore_video`.
        label: method name shown in reports (default ``cfg.method``).
        extra_settings: settings outside ``cfg`` that change results (e.g. a baseline's), checked on resume.
        videos: write the side-by-side videos and the sequence pages. summary: write results.json/csv and report.md (rewritten only
            when a sequence was computed or the report is missing). plots: also plots/*.png.

    Returns:
        dict: what ``results.json`` holds: settings, per-sequence results (restore_video reports with per-frame
        metrics and solver summaries), the mean over sequences, versions, device and wall time.
    """
    t_start = time.time()
    root, out_dir = Path(root).expanduser(), Path(out_dir)
    cfg = cfg.with_read(read)
    read = cfg.read.kwargs()
    dataset = resolve_dataset(root, sequences=sequences, split=split, resolution=resolution)  # bad names fail here
    if read.get("size") is None:
        check_one_size(dataset)  # before anything is written
    settings = run_settings(cfg, read, resolution, extra_settings)
    rank, world_size = distributed.world()  # under torchrun, sequences are shared among the processes
    distributed.rank_zero_first(lambda: prepare_out_dir(out_dir, settings, overwrite), rank)
    label = label or cfg.method
    results, computed = _run_sequences(dataset.sequences, out_dir, cfg, read, label, models, chunk_solver, videos,
                                       progress, rank, world_size)
    distributed.barrier()
    if rank != 0:
        return {}  # rank 0 writes the summary
    results, computed = _gather(out_dir, dataset.names, results, computed)
    out = _summary(results, label, cfg, read, settings, root, dataset.layout, None if sequences else split, t_start)
    if summary and (computed or not (out_dir / "report.md").is_file()):
        from vidplug.evaluation.report import write_eval_summary

        write_eval_summary(out_dir, out, plots=plots)
    return out


def _gather(out_dir: Path, names: list[str], results: dict[str, dict[str, Any]],
            computed: bool) -> tuple[dict[str, dict[str, Any]], bool]:
    """Every sequence's result in ``names`` order, adding the other processes' (finished before the barrier);
    and whether any was computed in this invocation."""
    for name in names:
        if name not in results:
            results[name] = json.loads((out_dir / "sequences" / name / "result.json").read_text())
            computed = True
    return {name: results[name] for name in names}, computed


def _run_sequences(folders: dict[str, Path], out_dir: Path, cfg: RestoreConfig, read: dict[str, Any], label: str,
                   models: Models | None, chunk_solver: ChunkSolver | None, videos: bool, progress: bool, rank: int,
                   world_size: int) -> tuple[dict[str, dict[str, Any]], bool]:
    """Restore this process's unfinished sequences (each written atomically when done); read the finished ones.
    Returns the results by sequence and whether any was computed."""
    from tqdm.auto import tqdm

    results: dict[str, dict[str, Any]] = {}
    computed = False
    bar = tqdm(list(folders), desc=f"eval {label}", unit="seq", disable=not progress)
    for i, name in enumerate(bar):
        bar.set_postfix_str(name)
        seq_dir = out_dir / "sequences" / name
        done = seq_dir / "result.json"
        if done.is_file():
            results[name] = json.loads(done.read_text())
            continue
        if i % world_size != rank:
            continue  # another process's sequence
        if models is None:
            models = Models(cfg, resolve_device(cfg.device))
        res = restore_video(
            folders[name], seq_dir / "restored.mp4", cfg, simulate=True, read=read,
            side_by_side=out_dir / "videos" / f"{name}.mp4" if videos else None, overwrite=True, resume=True,
            progress=progress, models=models, chunk_solver=chunk_solver, use_distributed=False, audio="none",
            html_report=seq_dir / "report.html" if videos else None,
        )
        results[name] = {"sequence": name, "label": label, **res.report}
        if get_method(cfg.method).needs_prior and models.prior is not None:
            # the prior actually used (shared models may differ from cfg.prior.name; baselines use it too)
            results[name]["prior"] = models.prior.name
        atomic_write_json(done, results[name])  # from here on the sequence counts as finished
        computed = True
    return results, computed


def _summary(results: dict[str, dict[str, Any]], label: str, cfg: RestoreConfig, read: dict[str, Any],
             settings: dict[str, Any], root: Path, layout: str, split: str | None, t_start: float) -> dict[str, Any]:
    """What results.json holds: settings, per-sequence results, their mean, versions, device and wall time."""
    from vidplug.evaluation.report import mean_row, runtime_versions

    first = next(iter(results.values()))
    return {
        "label": label, "task": cfg.task.name, "method": cfg.method, "prior": first.get("prior"),
        "flow_model": first.get("metrics", {}).get("flow_model"), "device": first.get("device"),
        "preprocessing": preprocessing_note(read), "split": split, "dataset_root": str(root), "layout": layout,
        "settings": settings, "versions": runtime_versions(),
        "wall_time_s": sum(r["wall_time_s"] for r in results.values()),  # restoration time, summed over sequences
        "session_wall_time_s": time.time() - t_start,  # this invocation only (less when resumed)
        "mean": mean_row(results.values()), "sequences": results,
    }
