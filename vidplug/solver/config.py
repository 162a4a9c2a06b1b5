"""The solver's own settings (:class:`SolverConfig`): what :func:`vidplug.solver.solve` needs and nothing of the
application around it. Choice fields are ``Literal`` types, checked when a config is loaded and again here for
configs built in Python."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

from vidplug.errors import VidplugError
from vidplug.typed import check_choices

Optimizer = Literal["adam", "lbfgs"]
Spacing = Literal["leading", "trailing", "linspace"]  # vidplug.prior.ddim.SPACINGS
Precision = Literal["none", "bf16", "fp16"]
SeedMode = Literal["independent", "shared"]  # vidplug.solver.seeds.SEED_MODES
# random: DMPlug's seeds; inversion: DDIM-invert the initial estimate (warm start); inversion-offset: the same seeds
# and x = R(z) + (x_init - R(z_init)), so the first iterate IS the initial estimate (the inversion's round-trip
# error, ~26 dB with the tiny prior, is not paid) and the solve only adds what the prior's gradients change
Init = Literal["random", "inversion", "inversion-offset"]
DEFAULT_LR = {"adam": 1e-2, "lbfgs": 0.1}  # DMPlug's published step sizes
EsMode = Literal["window", "ema"]  # vidplug.solver.early_stop.ES_MODES
EsPreset = Literal["tuned", "published"]
# ES-WMV settings by name. published: Wang et al., TMLR 2023 / DMPlug (never stopped within 200 iterations here).
# tuned: chosen on recorded runs of the bundled prior (benchmarks/tune_es.py; benchmarks/RESULTS.md, "ES-WMV").
ES_PRESETS: dict[str, dict] = {
    "published": {"window": 20, "patience": 50, "mode": "window", "downscale": 1},
    "tuned": {"window": 15, "patience": 8, "mode": "ema", "downscale": 1},
}


@dataclass
class SolverConfig:
    config_prefix = "solver"  # how errors name the fields (not a field: no annotation)

    iters: int = 300  # maximum optimisation iterations per chunk (one R forward + backward each)
    optimizer: Optimizer = "adam"  # adam | lbfgs (torch LBFGS, one iteration per step, history 10, no line search)
    lr: float | None = None  # step size on z; None = optimizer default (adam 1e-2, lbfgs 0.1, as DMPlug)
    num_steps: int = 3  # K, DDIM steps in R (DMPlug: 3 -> timesteps 666, 333, 0)
    spacing: Spacing = "leading"  # DDIM timestep layout: leading | trailing | linspace
    eta: float = 0.0  # DDIM stochasticity; 0 = deterministic (DMPlug); > 0 uses noise fixed once per solve
    clamp: bool = False  # clamp each DDIM x0 estimate to [-1, 1] inside R (zeroes gradients where it bites)
    checkpoint: bool = False  # recompute DDIM-step activations in backward: less memory, ~1 extra forward
    # latent priors: recompute the VAE decoder's activations in backward (null = follow solver.checkpoint)
    checkpoint_decoder: bool | None = None
    autocast: Precision = "none"  # none | bf16 | fp16: precision of the prior network (DDIM arithmetic stays fp32)
    early_stop: bool = True  # ES-WMV: stop when the output's windowed variance stops reaching new minima
    es_preset: EsPreset = "tuned"  # ES-WMV settings by name (ES_PRESETS): tuned | published (W 20, P 50, TMLR 2023)
    es_window: int | None = None  # W, iterations in the ES-WMV variance window (EMA span); None = the preset's
    es_patience: int | None = None  # P, stop after this many iterations without a new minimum; None = preset's
    es_mode: EsMode | None = None  # window (published) | ema (exponential moving variance); None = the preset's
    es_downscale: int | None = None  # variance on k x k average-pooled outputs (1 = published); None = preset's
    es_observe: bool = False  # run all iters anyway and return ES-WMV's choice (to record the whole PSNR curve)
    es_check_every: int = 10  # iterations between host reads of the (on-device) ES and divergence flags
    seed_mode: SeedMode = "independent"  # independent (one z per frame) | shared (z_t = z_shared + r_t)
    seed_rank: int = 0  # shared mode: rank of the residual r_t across frames; 0 = full residual
    seed_residual_scale: float = 0.3  # shared mode: initial residual std a (z_shared gets sqrt(1 - a^2))
    log_every: int = 10  # iterations between host reads of the losses (progress bar, loss_history)
    compile: bool = False  # torch.compile the prior network: slow first iterations, faster steady state (GPU)
    channels_last: bool = False  # run the prior network in NHWC memory layout (faster convolutions on GPUs)
    init: Init = "random"  # seeds: random (DMPlug) | inversion (DDIM-invert the initial estimate) | inversion-offset
    inversion_iters: int = 10  # network calls per DDIM level of the inversion (init=inversion*); 1 = plain DDIM inversion
    init_refine_steps: int = 0  # CG steps of damped least squares (damping 0.01, the least-squares baseline's)
    # refining the pseudo-inverse estimate the warm start inverts (SR: bicubic -> back-projection); 0 = as it is
    # frames per backward pass through R; 0 = the whole chunk at once. R is per frame, so R(z) runs without grad
    # over the chunk, the losses give dL/dx, and R is re-run with grad m frames at a time: exact gradients, R's
    # activation memory of m frames instead of T, one extra forward per iteration
    micro_batch: int = 0
    # threads R's frames are split over, each thread at one intra-op torch thread: 0 = auto (on CPU torch's thread
    # count, e.g. 2 groups of frames on 2 cores; 1 on GPU), 1 = one batched call. Same gradients; without
    # micro_batch only
    frame_threads: int = 0
    # measurement consistency: after the solve, `project_steps` conjugate-gradient steps on
    # |A x - y|^2 + project_damping |x - x_solved|^2 (0 = off): a projection towards {x : A x = y}, kept within the
    # noise level by the damping and the few steps, for linear operators (SR, inpainting, temporal)
    project_steps: int = 0
    project_damping: float = 0.01

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`VidplugError` naming the first bad field."""
        check_choices(self)
        if self.iters < 1:
            raise VidplugError(f"solver.iters must be >= 1, got {self.iters}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise VidplugError(f"solver.lr must be a positive number (or null for the default), got {self.lr}")
        if self.num_steps < 1:
            raise VidplugError(f"solver.num_steps must be >= 1 DDIM step, got {self.num_steps}")
        if self.eta < 0:
            raise VidplugError(f"solver.eta must be >= 0, got {self.eta}")
        es = self.es_settings()
        if es["window"] < 2:
            raise VidplugError(f"solver.es_window must be >= 2 iterations, got {es['window']}")
        if es["patience"] < 1:
            raise VidplugError(f"solver.es_patience must be >= 1 iteration, got {es['patience']}")
        if es["mode"] not in typing.get_args(EsMode):  # (check_choices skips optional Literals)
            raise VidplugError(f"unknown solver.es_mode {es['mode']!r}; use one of: {', '.join(typing.get_args(EsMode))}")
        if es["downscale"] < 1:
            raise VidplugError(f"solver.es_downscale must be >= 1, got {es['downscale']}")
        if self.es_check_every < 1 or self.log_every < 1:
            raise VidplugError("solver.es_check_every and solver.log_every must be >= 1 iteration")
        if self.micro_batch < 0:
            raise VidplugError(f"solver.micro_batch must be >= 0 frames (0 = whole chunk), got {self.micro_batch}")
        if self.frame_threads < 0:
            raise VidplugError(f"solver.frame_threads must be >= 0 (0 = auto, 1 = off), got {self.frame_threads}")
        if self.inversion_iters < 1:
            raise VidplugError(f"solver.inversion_iters must be >= 1 network call per level, got {self.inversion_iters}")
        if self.init_refine_steps < 0:
            raise VidplugError(f"solver.init_refine_steps must be >= 0, got {self.init_refine_steps}")
        if self.project_steps < 0 or not self.project_damping > 0:
            raise VidplugError("solver.project_steps must be >= 0 (0 = off) and solver.project_damping > 0")
        if self.seed_rank < 0:
            raise VidplugError(f"solver.seed_rank must be >= 0 (0 = full residual), got {self.seed_rank}")
        if not 0.0 <= self.seed_residual_scale <= 1.0:
            raise VidplugError(f"solver.seed_residual_scale must be in [0, 1], got {self.seed_residual_scale}")

    def es_settings(self) -> dict:
        """ES-WMV's ``window``, ``patience``, ``mode`` and ``downscale``: the preset's, overridden by any es_* key set."""
        out = dict(ES_PRESETS[self.es_preset])
        given = {"window": self.es_window, "patience": self.es_patience, "mode": self.es_mode,
                 "downscale": self.es_downscale}
        out.update({k: v for k, v in given.items() if v is not None})
        return out

    @property
    def resolved_lr(self) -> float:
        """The step size actually used at the first attempt."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]
