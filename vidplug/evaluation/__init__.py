"""DAVIS evaluation and the temporal-consistency ablation (``vidplug eval``, ``vidplug ablate``): resumable runs
over sequences, baselines through the same harness, results.json/csv, report.md tables and plots."""

from vidplug.evaluation.ablation import VARIANTS, ablation_configs, full_method_config, run_ablation
from vidplug.evaluation.baselines import DiffPIRSettings, EpsDenoiser, diffpir_chunk_solver, window_physics
from vidplug.evaluation.davis_eval import evaluate_davis
from vidplug.evaluation.report import ranked_table

__all__ = [
    "VARIANTS",
    "DiffPIRSettings",
    "EpsDenoiser",
    "ablation_configs",
    "diffpir_chunk_solver",
    "evaluate_davis",
    "full_method_config",
    "ranked_table",
    "run_ablation",
    "window_physics",
]
