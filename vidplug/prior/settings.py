"""Each prior's recommended solver settings: what `vidplug restore --prior NAME` starts from.

``configs/priors/<name>.yaml`` in a repository checkout; :data:`PRIOR_SETTINGS` mirrors those files for an installed
package (a test checks that they agree). They form the layer just above the built-in defaults: a ``--config`` file,
command-line flags and ``--set`` overrides all win over them. The ADM priors keep DMPlug's published setting; the
bundled ``tiny`` prior gets the CPU-sized setting measured in benchmarks/RESULTS.md (bench_quality, tuned on bikes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_PUBLISHED = {  # DMPlug (Wang et al., NeurIPS 2024): random seeds, K = 3 (666, 333, 0), Adam 1e-2, 300 iterations
    "solver": {"optimizer": "adam", "lr": 0.01, "num_steps": 3, "iters": 300, "init": "random",
               "init_refine_steps": 0, "project_steps": 0},
    "prior": {"border_pad": 0},
}
PRIOR_SETTINGS: dict[str, dict[str, Any]] = {
    "adm-imagenet256": _PUBLISHED,
    "adm-ffhq256": _PUBLISHED,
    "tiny": {
        "solver": {"optimizer": "adam", "lr": 0.01, "num_steps": 3, "iters": 20, "init": "inversion-offset",
                   "init_refine_steps": 30, "project_steps": 30, "project_damping": 0.01,
                   "es_window": 10, "es_patience": 15},
        "prior": {"border_pad": 8},
    },
}


def settings_dir() -> Path:
    """``configs/priors`` of the repository this package runs from (absent in an installed package)."""
    return Path(__file__).resolve().parents[2] / "configs" / "priors"


def recommended_settings(name: str, config_dir: Path | None = None) -> dict[str, Any]:
    """The recommended settings of prior ``name`` as a nested mapping (empty for priors without any)."""
    from vidplug.config import load_yaml

    path = (config_dir or settings_dir()) / f"{name}.yaml"
    if "/" not in name and path.is_file():
        return load_yaml(path)
    return PRIOR_SETTINGS.get(name, {})
