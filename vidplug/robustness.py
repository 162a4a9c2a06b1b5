"""``vidplug robustness``: restore one clip under every noise type x level with the same seeds (DMPlug's Table 5)."""

from __future__ import annotations

from vidplug.config import RestoreConfig, load_config

# the study's defaults on top of vidplug's (the full method; the task's published settings are the defaults too):
# the bundled prior, warm-started from the pseudo-inverse (random seeds need hundreds of iterations with it)
ROBUSTNESS_DEFAULTS = ["prior.name=tiny", "solver.init=inversion", "solver.iters=150"]


def robustness_config(task: str, noise: str, overrides: list[str] | None = None) -> RestoreConfig:
    """The config of one cell: defaults <- the study's defaults <- ``overrides`` <- ``task.noise=noise``."""
    cfg = load_config(None, [f"task.name={task}", *ROBUSTNESS_DEFAULTS, *(overrides or [])])
    return load_config(None, [f"task.noise={noise}"], base=cfg)
