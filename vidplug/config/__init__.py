"""Typed run configuration: the dataclasses (:mod:`vidplug.config.run`), YAML loading with ``base:`` chains,
per-prior recommended settings (``configs/priors/NAME.yaml``) and dotted ``--set key=value`` overrides.

Precedence, lowest first: code defaults < ``configs/priors/<prior>.yaml`` < ``--config`` file < command-line flags <
``--set``. An experiment is a YAML file (see ``configs/``); an ablation is a second YAML that changes one weight.
Unknown keys and values of the wrong type are one-line errors when the config is loaded. The resolved config is
saved next to every output.
"""

from vidplug.config.bundled import configs_dir, load_table, prior_defaults
from vidplug.config.load import load_config
from vidplug.config.run import (
    ChunkConfig,
    ConsistencyConfig,
    Method,
    PriorConfig,
    ReadConfig,
    RestoreConfig,
    TaskConfig,
)
from vidplug.solver.config import SolverConfig
from vidplug.typed import apply_overrides, dump_yaml, from_dict, load_yaml, merge, parse_override, to_dict

__all__ = [
    "ChunkConfig",
    "ConsistencyConfig",
    "Method",
    "PriorConfig",
    "ReadConfig",
    "RestoreConfig",
    "SolverConfig",
    "TaskConfig",
    "apply_overrides",
    "configs_dir",
    "dump_yaml",
    "from_dict",
    "load_config",
    "load_table",
    "load_yaml",
    "merge",
    "parse_override",
    "prior_defaults",
    "to_dict",
]
