"""The temporal-consistency ablation: Base, +Semantic, +Pixel, +Semantic+Pixel (and optionally +Shared seeds) with
identical seeds and settings, plus baselines (bicubic / pseudo-inverse, per-frame DiffPIR) through the same harness.

Every variant is the full method's config with one change. The changes are defined here (an installed package has
no ``configs/``) and mirrored by ``configs/ablation/*.yaml``; when those files are present (a repository checkout)
they are read, and a unit test checks the two agree. Each method runs :func:`evaluate_davis` into its own folder
``DIR/<method dir>/`` (resumable per sequence), sharing one set of networks.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from vidplug.config import RestoreConfig, load_yaml, merge, to_dict
from vidplug.errors import VidplugError
from vidplug.evaluation.baselines import DiffPIRSettings, diffpir_chunk_solver
from vidplug.evaluation.davis_eval import evaluate_davis
from vidplug.pipeline import Models, resolve_device

log = logging.getLogger(__name__)

# The full method's consistency weights: the ablation's starting point (configs/tasks/*.yaml hold the same values).
FULL_METHOD: dict[str, Any] = {"method": "dmplug"}  # the consistency defaults of vidplug.config are the full method

# Variant -> (method dir, YAML file in configs/ablation/, change on top of the full method).
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "Base": ("base", "base.yaml", {"consistency": {"semantic_weight": 0.0, "pixel_weight": 0.0}}),
    "+Semantic": ("semantic", "semantic.yaml", {"consistency": {"pixel_weight": 0.0}}),
    "+Pixel": ("pixel", "pixel.yaml", {"consistency": {"semantic_weight": 0.0}}),
    "+Semantic+Pixel": ("semantic+pixel", "semantic+pixel.yaml", {}),
}
SHARED_SEEDS = ("+Shared seeds", "shared-seeds", {"solver": {"seed_mode": "shared"}})  # on top of the full method
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "bicubic": ("bicubic", {"method": "bicubic"}),  # the operator's pseudo-inverse (bicubic for SR)
    "diffpir": ("diffpir", {"method": "diffpir"}),  # deepinv's DiffPIR, per frame, same prior
}
BASELINE_LABELS = {"bicubic": "Bicubic / A^+", "diffpir": "DiffPIR (per frame)"}


def repo_ablation_dir() -> Path:
    """``configs/ablation`` of the repository this package runs from (absent in an installed package)."""
    return Path(__file__).resolve().parents[2] / "configs" / "ablation"


def variant_change(name: str, config_dir: Path | None = None) -> dict[str, Any]:
    """The config change of ablation variant ``name``: its YAML file (minus ``base:``) when present, else the
    definition in :data:`VARIANTS`."""
    _, filename, change = VARIANTS[name]
    path = (config_dir or repo_ablation_dir()) / filename
    if path.is_file():
        data = load_yaml(path)
        data.pop("base", None)
        return data
    return change


def full_method_config() -> RestoreConfig:
    """Defaults with the full method's consistency weights: the base under the user's --config/flags/--set."""
    return merge(RestoreConfig(), FULL_METHOD)


def ablation_configs(full: RestoreConfig, *, shared_seeds: bool = False,
                     baselines: tuple[str, ...] = ("bicubic", "diffpir"),
                     config_dir: Path | None = None) -> dict[str, tuple[str, RestoreConfig]]:
    """Label -> (method dir, config) of every row of the ablation table, in table order."""
    if full.method != "dmplug":
        raise VidplugError(f"the ablation compares DMPlug variants; drop --method {full.method} (the bicubic "
                           "baseline is one of its rows)")
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise VidplugError(f"unknown baseline '{unknown[0]}'; choose from {', '.join(BASELINES)}")
    out = {name: (VARIANTS[name][0], merge(full, variant_change(name, config_dir))) for name in VARIANTS}
    if shared_seeds:
        out[SHARED_SEEDS[0]] = (SHARED_SEEDS[1], merge(full, SHARED_SEEDS[2]))
    for key in baselines:
        out[BASELINE_LABELS[key]] = (BASELINES[key][0], merge(full, BASELINES[key][1]))
    return out


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
    config_dir: Path | None = None,
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
    rows = ablation_configs(full, shared_seeds=shared_seeds, baselines=baselines, config_dir=config_dir)
    if models is None:
        models = Models(full, resolve_device(full.device))
    methods: dict[str, dict[str, Any]] = {}
    for label, (folder, cfg) in rows.items():
        log.info("ablation: %s -> %s", label, out_dir / folder)
        is_diffpir = cfg.method == "diffpir"
        res = evaluate_davis(
            root, out_dir / folder, cfg, sequences=sequences, split=split, resolution=resolution, read=read,
            overwrite=overwrite, progress=progress, models=models, label=label, videos=videos, plots=False,
            chunk_solver=diffpir_chunk_solver(diffpir) if is_diffpir else None,
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
