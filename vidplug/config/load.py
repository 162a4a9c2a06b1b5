"""``load_config``: defaults <- the prior's recommended settings <- YAML file <- command-line flags <- ``--set``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidplug.config.bundled import prior_defaults
from vidplug.config.run import RestoreConfig
from vidplug.typed import apply_overrides, load_with_bases, merge


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: RestoreConfig | None = None,
    flags: dict[str, Any] | None = None,
    *,
    use_prior_defaults: bool = True,
) -> RestoreConfig:
    """Resolve a run config; every key and value is checked here.

    Precedence, lowest first: ``base`` (default :class:`RestoreConfig`) < ``configs/priors/<prior>.yaml`` (the prior
    named by the result, when that file exists, with its ``tasks:`` section for the resolved task) < the YAML file
    ``path`` (with its ``base:`` chain) < ``flags`` (typed values by dotted key, from command-line shortcuts) <
    dotted ``key=value`` ``overrides``.
    """
    start = base or RestoreConfig()
    user = load_with_bases(Path(path), rebase=RestoreConfig.rebase) if path is not None else {}

    def resolve(defaults: dict[str, Any]) -> RestoreConfig:
        cfg = merge(merge(start, defaults), user)
        cfg = apply_overrides(cfg, flags or {})
        return apply_overrides(cfg, overrides or [])

    cfg = resolve({})
    defaults = prior_defaults(cfg.prior.name, cfg.task.name) if use_prior_defaults else {}
    return resolve(defaults) if defaults else cfg
