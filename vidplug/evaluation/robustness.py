"""``vidplug robustness``: restore one clip under every noise type x level with the same seeds (DMPlug's Table 5).

For each noise cell the clip is degraded (same operator seeds, the noise model of the cell) and restored by vidplug
(full method), per-frame DMPlug (consistency weights 0) and the bicubic / pseudo-inverse baseline. The solver is never
told the noise: it runs with ``solver.es_observe`` (ES-WMV decides which iterate is returned, but the run goes on to
the last iteration so the whole ORACLE PSNR curve is known), and the ground truth only scores.

Output folder::

    run.json                              the settings (a rerun must match them; --overwrite starts over)
    cells/<type>-<level>/<method>/result.json   one finished cell (written atomically: the unit of resumption)
    cells/<type>-<level>/<method>/restored.mp4  its restoration
    results.json, results.csv, report.md, plots/psnr_<type>.png   the summary (vidplug.evaluation.robustness_report)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vidplug.config import RestoreConfig, load_config, to_dict
from vidplug.errors import VidplugError
from vidplug.physics.noise import LEVEL_NAMES, NAMED_LEVELS, NOISE_TYPES

# the study's defaults on top of vidplug's (the full method, configs/priors/<prior>.yaml): the bundled prior from
# DMPlug's random seeds, where the PSNR curve rises, peaks and falls as the noise is fitted (the regime ES-WMV is
# for), with L-BFGS (the tiny prior's curve peaks within ~50-120 iterations; Adam needs hundreds). A DDIM-inversion
# warm start (configs/priors/tiny.yaml) starts from the noisy pseudo-inverse: under ImageNet-C noise its curve falls
# from the first iteration, and no stopping rule that needs a window of iterates can return iteration 0.
# The ES-WMV settings come from solver.es_preset alone (the prior file's es_* keys are cleared).
ROBUSTNESS_DEFAULTS = ["prior.name=tiny", "solver.init=random", "solver.optimizer=lbfgs", "solver.iters=120",
                       *[f"solver.es_{k}=null" for k in ("window", "patience", "mode", "downscale")]]
# method -> config overrides (per-frame DMPlug is the ablation's "Base": no temporal coupling)
METHODS: dict[str, list[str]] = {
    "vidplug": [],
    "dmplug (per frame)": ["consistency.semantic_weight=0.0", "consistency.pixel_weight=0.0"],
    "bicubic": ["method=bicubic"],
}
GENERATED = ("cells", "plots", "results.json", "results.csv", "report.md", "report.html")


def robustness_config(task: str, noise: str, overrides: list[str] | None = None) -> RestoreConfig:
    """The config of one cell: defaults <- the study's defaults <- ``overrides`` <- ``task.noise=noise``."""
    return load_config(None, [f"task.name={task}", *ROBUSTNESS_DEFAULTS, *(overrides or []), f"task.noise={noise}"])


def cell_names(types: list[str] | None = None, levels: list[str] | None = None) -> list[tuple[str, str]]:
    """``(type, level)`` pairs, types major; unknown names fail with the valid choices."""
    types, levels = list(types or NOISE_TYPES), list(levels or LEVEL_NAMES)
    for t in types:
        if t not in NOISE_TYPES:
            raise VidplugError(f"unknown noise type {t!r}; use some of: {', '.join(NOISE_TYPES)}")
    for lv in levels:
        if lv not in LEVEL_NAMES:
            raise VidplugError(f"unknown noise level {lv!r}; use some of: {', '.join(LEVEL_NAMES)}")
    return [(t, lv) for t in types for lv in levels]


def resolve_source(path: str | Path, sequence: str | None = None) -> tuple[Path, str]:
    """A clip (video file or folder of frames) as is; a dataset root (DAVIS 2017, folder of sequence folders or of
    videos: :func:`vidplug.io.datasets.resolve_dataset`) gives its sequence ``sequence``, default the first."""
    from vidplug.io.datasets import resolve_dataset
    from vidplug.io.frames import IMAGE_EXTENSIONS

    path = Path(path).expanduser()
    if not path.exists():
        raise VidplugError(f"{path}: no such file or folder; give a clip (video or frame folder) or a dataset root")
    if path.is_file() or any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
        return path, path.stem
    data = resolve_dataset(path, sequences=[sequence] if sequence else None)
    name = data.names[0]
    return data.sequences[name], f"DAVIS {name}" if data.layout == "davis" else name


def curve_summary(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """ES-WMV's choice and the ORACLE curve of one restoration (chunks' curves averaged, frames-weighted)."""
    curves = [c.get("oracle_psnr") for c in chunks]
    if not chunks or any(not cv for cv in curves):
        return {}
    n = min(len(cv) for cv in curves)
    weights = [c["frames"][1] - c["frames"][0] for c in chunks]
    total = sum(weights)
    curve = [sum(w * cv[i] for w, cv in zip(weights, curves, strict=True)) / total for i in range(n)]
    chosen = [c.get("chosen_iteration") for c in chunks]
    stops = [c.get("es_stop_iteration") for c in chunks]
    returned = sum(w * cv[min(ch, n - 1)] for w, cv, ch in zip(weights, curves, chosen, strict=True)) / total
    best_it = max(range(n), key=curve.__getitem__)
    stop = max(stops) if all(s is not None for s in stops) else None
    at_stop = stop if stop is not None else n - 1
    return {
        "chosen_iteration": chosen[0] if len(chosen) == 1 else chosen,
        "es_stop_iteration": stop, "iterations": n,
        "returned_psnr_curve": returned, "last_psnr": curve[-1],
        "oracle_best_psnr": curve[best_it], "oracle_best_iteration": best_it,
        "gap": curve[best_it] - returned,
        # ORACLE: how far the curve had fallen from its best so far when ES-WMV fired
        "drop_at_stop": max(curve[: at_stop + 1]) - curve[at_stop],
        "curve": curve,
    }


def run_cell(source: Path, cell_dir: Path, cfg: RestoreConfig, read: dict[str, Any], models, progress: bool) -> dict:
    """Restore one (noise, method) cell, or read it back when it is finished."""
    from vidplug.io.atomic import atomic_write_json
    from vidplug.pipeline import restore_video

    done = cell_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    res = restore_video(source, cell_dir / "restored.mp4", cfg, simulate=True, read=read, overwrite=True,
                        resume=True, progress=progress, models=models, use_distributed=False,
                        html_report=cell_dir / "report.html")  # the cell's page, linked from the summary page
    rep = res.report
    metrics = rep.get("metrics", {})
    row = {"psnr": metrics.get("psnr"), "ssim": metrics.get("ssim"), "warping_error": metrics.get("warping_error"),
           "flow_model": metrics.get("flow_model"), "wall_time_s": rep.get("wall_time_s"),
           "prior": rep.get("prior") if cfg.method != "bicubic" else None, "notes": rep.get("notes", []),
           **curve_summary(rep.get("chunks", []) if cfg.method != "bicubic" else [])}
    atomic_write_json(done, row)
    return row


def run_robustness(
    source: str | Path,
    out_dir: str | Path,
    task: str = "sr4",
    *,
    overrides: list[str] | None = None,
    read: dict[str, Any] | None = None,
    types: list[str] | None = None,
    levels: list[str] | None = None,
    methods: list[str] | None = None,
    sequence: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Every noise type x level (and method) on one clip; resumable per cell. Returns what results.json holds."""
    from vidplug.evaluation.davis_eval import prepare_out_dir, preprocessing_note, run_settings
    from vidplug.evaluation.report import runtime_versions
    from vidplug.evaluation.robustness_report import write_robustness_summary
    from vidplug.models import Models
    from vidplug.runtime import resolve_device

    t0 = time.time()
    out_dir = Path(out_dir)
    cells = cell_names(types, levels)
    methods = list(methods or METHODS)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise VidplugError(f"unknown method {bad[0]!r}; use some of: {', '.join(METHODS)}")
    overrides = list(overrides or [])
    # every config is built (and checked) before anything is read or loaded
    configs = {(t, lv, m): robustness_config(task, f"{t}:{lv}", [*overrides, *METHODS[m], "solver.es_observe=true"])
               for t, lv in cells for m in methods}
    path, label = resolve_source(source, sequence)
    base = robustness_config(task, "gaussian:low", [*overrides, "solver.es_observe=true"])
    # an explicit ``read`` replaces the config's read: section (``--set read.max_frames=...``); None = the config's
    base = base.with_read(read)
    read = base.read.kwargs()
    settings = run_settings(base, read, "", {"source": str(path), "task": task})
    prepare_out_dir(out_dir, settings, overwrite, generated=GENERATED)
    models = None
    rows = []
    for (t, lv, m), cfg in configs.items():
        cell_dir = out_dir / "cells" / f"{t}-{lv}" / m.replace(" ", "_").replace("(", "").replace(")", "")
        if models is None and not (cell_dir / "result.json").is_file():
            models = Models(base, resolve_device(base.device))
        row = run_cell(path, cell_dir, cfg, read, models, progress)
        rows.append({"task": task, "noise": t, "level": lv, "level_value": NAMED_LEVELS[t][LEVEL_NAMES.index(lv)],
                     "method": m, "dir": cell_dir.relative_to(out_dir).as_posix(), **row})
    prior = next((r["prior"] for r in rows if r.get("prior")), None)
    out = {"clip": label, "source": str(path), "task": task, "prior": prior, "preprocessing": preprocessing_note(read),
           "es": base.solver.es_settings(), "config": to_dict(base), "versions": runtime_versions(),
           "device": str(resolve_device(base.device)), "session_wall_time_s": time.time() - t0, "rows": rows}
    write_robustness_summary(out_dir, out, plots=plots)
    return out
