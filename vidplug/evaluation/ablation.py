"""The temporal-consistency ablation: Base, +Semantic, +Pixel, +Semantic+Pixel (and optionally +Shared seeds) with
identical seeds and settings, plus baselines (bicubic / pseudo-inverse, per-frame DiffPIR) through the same harness.

Every row is the full method's config with one change. The rows are defined once, in ``configs/ablation/``:
``table.yaml`` lists them in order (label -> config file), and each row's file (``base: ../tasks/sr4.yaml`` plus
its change) also runs on its own. Each row runs :func:`evaluate_davis` into its own folder ``DIR/<file stem>/``
(resumable per sequence), sharing one set of networks.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from vidplug.config import RestoreConfig, load_table, merge, to_dict
from vidplug.config.bundled import bundled
from vidplug.errors import VidplugError
from vidplug.evaluation.davis_eval import evaluate_davis
from vidplug.methods.diffpir import DiffPIRMethod, DiffPIRSettings
from vidplug.models import Models
from vidplug.runtime import resolve_device

log = logging.getLogger(__name__)

TABLE = "ablation/table.yaml"  # under configs/


def ablation_rows(section: str = "rows", table: Path | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """Label -> (output folder, config change) of one section of the ablation table (rows, shared_seeds,
    baselines), in table order."""
    return load_table(table or bundled(TABLE), section)


def full_method_config() -> RestoreConfig:
    """Defaults with the full method (DMPlug, the default consistency weights): the base under the user's
    --config/flags/--set."""
    return merge(RestoreConfig(), {"method": "dmplug"})


def ablation_configs(full: RestoreConfig, *, shared_seeds: bool = False,
                     baselines: tuple[str, ...] = ("bicubic", "diffpir"),
                     table: Path | None = None) -> dict[str, tuple[str, RestoreConfig]]:
    """Label -> (method dir, config) of every row of the ablation table, in table order."""
    if full.method != "dmplug":
        raise VidplugError(f"the ablation compares DMPlug variants; drop --method {full.method} (the bicubic "
                           "baseline is one of its rows)")
    known = {folder: (label, change) for label, (folder, change) in ablation_rows("baselines", table).items()}
    unknown = sorted(set(baselines) - set(known))
    if unknown:
        raise VidplugError(f"unknown baseline '{unknown[0]}'; choose from {', '.join(known)}")
    rows = dict(ablation_rows("rows", table))
    if shared_seeds:
        rows.update(ablation_rows("shared_seeds", table))
    rows.update({known[b][0]: (b, known[b][1]) for b in baselines})
    return {label: (folder, merge(full, change)) for label, (folder, change) in rows.items()}


def run_ablation(
    root: str | Path,
    out_dir: str | Path,
    full: RestoreConfig,
    *,
    sequences: list[str] | None = None,
    split: str | None = None,
    resolution: str = "480p",
    read: dict[str, Any] | None = None,
    shared_seeds: bool = False,
    baselines: tuple[str, ...] = ("bicubic", "diffpir"),
    diffpir: DiffPIRSettings | None = None,
    overwrite: bool = False,
    progress: bool = True,
    videos: bool = True,
    models: Models | None = None,
    table: Path | None = None,
) -> dict[str, Any]:
    """Run every ablation row on the same dataset sequences (any layout :func:`evaluate_davis` takes) and write the
    comparison table.

    Args:
        full: the full method's resolved config (every consistency term on); the rows change one thing each.
        models: networks shared by all rows (default: built once from ``full``, so CLIP and flow are loaded and the
            variants switch terms off by weight).
        diffpir: settings of the DiffPIR baseline (default :class:`DiffPIRSettings`).
        Others: as for :func:`evaluate_davis`.

    Returns:
        dict: what ``DIR/results.json`` holds; ``["table"]`` maps each row label to its mean metrics.
    """
    from vidplug.evaluation.report import runtime_versions, write_ablation_summary

    t_start = time.time()
    out_dir = Path(out_dir)
    diffpir = diffpir or DiffPIRSettings()
    rows = ablation_configs(full, shared_seeds=shared_seeds, baselines=baselines, table=table)
    if models is None:
        models = Models(full, resolve_device(full.device))
    methods: dict[str, dict[str, Any]] = {}
    for label, (folder, cfg) in rows.items():
        log.info("ablation: %s -> %s", label, out_dir / folder)
        is_diffpir = cfg.method == DiffPIRMethod.name  # the one method with settings outside the config
        res = evaluate_davis(
            root, out_dir / folder, cfg, sequences=sequences, split=split, resolution=resolution, read=read,
            overwrite=overwrite, progress=progress, models=models, label=label, videos=videos, plots=False,
            chunk_solver=DiffPIRMethod(diffpir) if is_diffpir else None,
            extra_settings={"diffpir": vars(diffpir)} if is_diffpir else None,
        )
        methods[label] = {"dir": folder, "config_change": _change(full, cfg), "results": res}
    if not all(m["results"] for m in methods.values()):
        return {}  # a non-zero rank of a multi-process run: rank 0 writes the summary
    names = list(next(iter(methods.values()))["results"]["sequences"])
    out = {
        "task": full.task.name, "prior": models.prior.name if models.prior is not None else full.prior.name,
        "sequence_names": names, "full_config": to_dict(full),
        "versions": runtime_versions(), "session_wall_time_s": time.time() - t_start,
        "table": {label: m["results"]["mean"] for label, m in methods.items()}, "methods": methods,
    }
    write_ablation_summary(out_dir, out)
    return out


def _change(full: RestoreConfig, cfg: RestoreConfig) -> dict[str, Any]:
    """Dotted keys where ``cfg`` differs from ``full`` (what a table row changes)."""

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(to_dict(full)), flat(to_dict(cfg))
    return {k: b.get(k) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
