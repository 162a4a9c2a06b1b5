"""DAVIS evaluation and the temporal-consistency ablation (``vidplug eval``, ``vidplug ablate``): resumable runs
over sequences, baselines through the same harness, results.json/csv, report.md tables and plots."""

from vidplug.evaluation.ablation import ablation_configs, ablation_rows, full_method_config, run_ablation
from vidplug.evaluation.davis_eval import evaluate_davis
from vidplug.evaluation.report import ranked_table
from vidplug.methods.diffpir import DiffPIRMethod, DiffPIRSettings, EpsDenoiser, window_physics

__all__ = [
    "DiffPIRMethod",
    "DiffPIRSettings",
    "EpsDenoiser",
    "ablation_configs",
    "ablation_rows",
    "evaluate_davis",
    "full_method_config",
    "ranked_table",
    "run_ablation",
    "window_physics",
]
