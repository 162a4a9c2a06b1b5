"""The bundled YAML files in ``configs/``: where they are, each prior's recommended settings
(``configs/priors/NAME.yaml``) and tables of runs (the demo's methods, the ablation's rows), each defined once.

``configs/`` sits beside the package in a checkout (``make install`` installs vidplug editable);
``VIDPLUG_CONFIGS`` points elsewhere.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

from vidplug.errors import VidplugError
from vidplug.physics.registry import Task
from vidplug.typed import deep_merge, load_with_bases, load_yaml


def configs_dir() -> Path:
    """The bundled ``configs/`` folder (``$VIDPLUG_CONFIGS`` if set)."""
    env = os.environ.get("VIDPLUG_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def bundled(relative: str) -> Path:
    """A bundled config file, with a one-line error when it is missing."""
    path = configs_dir() / relative
    if not path.is_file():
        raise VidplugError(f"bundled config {relative} not found in {configs_dir()}; run from a vidplug checkout "
                           "(make install) or set VIDPLUG_CONFIGS to its configs/ folder")
    return path


def prior_defaults(name: str, task: str | None = None) -> dict[str, Any]:
    """The recommended settings of prior ``name`` (``configs/priors/NAME.yaml``); for a Stable Diffusion folder or
    hub id, those of latent priors in general (``configs/priors/latent.yaml``: K = 4, as Wang et al. 2025); {} for
    other folders, hub ids and files. The file's ``tasks: {TASK: {...}}`` section holds settings for one task only:
    those of ``task`` are merged over the rest."""
    if not name:
        return {}
    if "/" in name or os.sep in name or name.startswith("."):
        if not _is_latent_source(name):
            return {}
        name = "latent"
    path = configs_dir() / "priors" / f"{name}.yaml"
    if not path.is_file():
        return {}
    data = load_with_bases(path)
    if "name" in (data.get("prior") or {}) or "method" in data:
        raise VidplugError(f"{path} may only hold settings for its prior (solver, consistency, chunk, "
                           "prior.border_pad), not 'prior.name' or 'method'; remove them")
    per_task = data.pop("tasks", None) or {}
    unknown = sorted(set(per_task) - set(typing.get_args(Task)))
    if unknown:
        raise VidplugError(f"{path}: 'tasks' names unknown task(s) {', '.join(unknown)}; use "
                           f"{', '.join(typing.get_args(Task))}")
    return deep_merge(data, per_task.get(task) or {}) if task else data


def _is_latent_source(spec: str) -> bool:
    """Whether ``spec`` is a diffusers Stable Diffusion folder, or a hub id whose cached snapshot is one (a hub id
    not in the cache is not looked up: loading it downloads or names the missing files)."""
    from vidplug.prior.latent import is_latent_dir
    from vidplug.prior.latent_hub import hf_snapshot_dir

    local = Path(spec).expanduser()
    if local.is_dir():
        return is_latent_dir(local)
    if spec.count("/") != 1 or spec.startswith((".", "/")):
        return False
    try:
        return is_latent_dir(hf_snapshot_dir(spec))
    except Exception:  # huggingface_hub rejects ids it cannot parse: not a cached latent prior
        return False


def load_table(path: str | Path, section: str = "rows") -> dict[str, tuple[str, dict[str, Any]]]:
    """Rows of a table file: ``label -> (output folder, config change)``, in file order.

    A row is either a config file beside the table (its change is the file minus ``base:``; its folder the file's
    stem) or a mapping ``{dir: FOLDER, set: {nested change}}``.
    """
    path = Path(path)
    rows = load_yaml(path).get(section)
    if not isinstance(rows, dict):
        raise VidplugError(f"{path} has no '{section}:' mapping of label -> config file or {{dir, set}}")
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for label, row in rows.items():
        if isinstance(row, str):
            change = load_yaml(path.parent / row)
            change.pop("base", None)
            out[str(label)] = (Path(row).stem, change)
        elif isinstance(row, dict) and set(row) <= {"dir", "set"} and "dir" in row:
            out[str(label)] = (str(row["dir"]), dict(row.get("set") or {}))
        else:
            raise VidplugError(f"{path}: row '{label}' must be a config file name or {{dir: ..., set: {{...}}}}")
    return out
