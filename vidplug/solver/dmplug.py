"""DMPlug for video: optimise one diffusion seed per frame so that the restored frames explain the observation.

DMPlug (Wang et al., NeurIPS 2024) views the few-step DDIM reverse process as a function ``R`` and solves
``z* = argmin_z loss(y, A(R(z)))``, ``x* = R(z*)`` (published: 3 steps 666/333/0, eta 0, Adam lr 1e-2). Here the
``T`` frames of a chunk are one batch of ``T`` seeds optimised jointly, and extra :class:`~vidplug.solver.terms.LossTerm`
objects (temporal consistency) are added to the data term.

Host synchronisation is rare on purpose: losses, the oracle curve and the ES-WMV statistics are written into device
buffers every iteration and read back only every ``log_every`` / ``es_check_every`` iterations and at the end.

Differences from the DMPlug reference code, deliberately: (1) the output is clamped to [0, 1] only when returned,
never in the gradient path (DMPlug clamps before the loss, which zeroes gradients of saturated pixels); (2) L-BFGS
takes one iteration per outer step (``max_iter=1``, history 10) so iteration counts compare with Adam's (DMPlug used
torch's defaults: up to 20 inner iterations, history 100, no line search, lr 0.1), with torch's convergence
tolerances off and the loss summed rather than averaged over the frames' elements (with a mean-reduced loss near a
warm start its first step, ``lr * gradient``, is below float32 resolution and the seeds never move); (3) DMPlug
reports the best-PSNR iterate, which needs the ground truth: here the returned iterate is chosen by ES-WMV or is the
last one, and the PSNR curve, when a reference is given, is only recorded as ``oracle_psnr``.
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vidplug.errors import VidplugError
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import SPACINGS, ddim_timesteps, reverse_to_unit
from vidplug.solver.early_stop import ES_MODES, ESWMV
from vidplug.solver.seeds import SEED_MODES, SeedParam, draw_seeds, make_seeds
from vidplug.solver.terms import DataFidelity, LossTerm

OPTIMIZERS = ("adam", "lbfgs")
DEFAULT_LR = {"adam": 1e-2, "lbfgs": 0.1}  # DMPlug's published step sizes
AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
STOP_REASONS = ("es-wmv", "max-iters", "diverged")


INITS = ("random", "inversion")
# ES-WMV settings by name. published: Wang et al., TMLR 2023 / DMPlug (never stopped within 200 iterations here).
# tuned: chosen on recorded runs of the bundled prior (benchmarks/tune_es.py; benchmarks/RESULTS.md, "ES-WMV").
ES_PRESETS: dict[str, dict] = {
    "published": {"window": 20, "patience": 50, "mode": "window", "downscale": 1},
    "tuned": {"window": 20, "patience": 50, "mode": "window", "downscale": 1},
}

@dataclass
class SolverConfig:
    iters: int = 300  # maximum optimisation iterations per chunk (one R forward + backward each)
    optimizer: str = "adam"  # adam | lbfgs (torch LBFGS, one iteration per step, history 10, no line search)
    lr: float | None = None  # step size on z; None = optimizer default (adam 1e-2, lbfgs 0.1, as DMPlug)
    num_steps: int = 3  # K, DDIM steps in R (DMPlug: 3 -> timesteps 666, 333, 0)
    spacing: str = "leading"  # DDIM timestep layout: leading | trailing | linspace
    eta: float = 0.0  # DDIM stochasticity; 0 = deterministic (DMPlug); > 0 uses noise fixed once per solve
    clamp: bool = False  # clamp each DDIM x0 estimate to [-1, 1] inside R (zeroes gradients where it bites)
    checkpoint: bool = False  # recompute DDIM-step activations in backward: less memory, ~1 extra forward
    autocast: str = "none"  # none | bf16 | fp16: precision of the prior network (DDIM arithmetic stays fp32)
    early_stop: bool = True  # ES-WMV: stop when the output's windowed variance stops reaching new minima
    es_preset: str = "tuned"  # ES-WMV settings by name (ES_PRESETS): tuned | published (W 20, P 50, TMLR 2023)
    es_window: int | None = None  # W, iterations in the ES-WMV variance window (EMA span); None = the preset's
    es_patience: int | None = None  # P, stop after this many iterations without a new minimum; None = preset's
    es_mode: str | None = None  # window (published) | ema (exponential moving variance); None = the preset's
    es_downscale: int | None = None  # variance on k x k average-pooled outputs (1 = published); None = preset's
    es_observe: bool = False  # run all iters anyway and return ES-WMV's choice (to record the whole PSNR curve)
    es_check_every: int = 10  # iterations between host reads of the (on-device) ES and divergence flags
    seed_mode: str = "independent"  # independent (one z per frame) | shared (z_t = z_shared + r_t)
    seed_rank: int = 0  # shared mode: rank of the residual r_t across frames; 0 = full residual
    seed_residual_scale: float = 0.3  # shared mode: initial residual std a (z_shared gets sqrt(1 - a^2))
    log_every: int = 10  # iterations between host reads of the losses (progress bar, loss_history)
    compile: bool = False  # torch.compile the prior network: slow first iterations, faster steady state (GPU)
    channels_last: bool = False  # run the prior network in NHWC memory layout (faster convolutions on GPUs)
    init: str = "random"  # seeds: random (DMPlug) | inversion (DDIM-invert the pseudo-inverse estimate: warm start)
    # frames per backward pass through R; 0 = the whole chunk at once. R is per frame, so R(z) runs without grad
    # over the chunk, the losses give dL/dx, and R is re-run with grad m frames at a time: exact gradients, R's
    # activation memory of m frames instead of T, one extra forward per iteration
    micro_batch: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`VidplugError` naming the first bad field."""
        if self.iters < 1:
            raise VidplugError(f"solver.iters must be >= 1, got {self.iters}")
        if self.optimizer not in OPTIMIZERS:
            raise VidplugError(f"unknown solver.optimizer '{self.optimizer}'; use one of: {', '.join(OPTIMIZERS)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise VidplugError(f"solver.lr must be a positive number (or null for the default), got {self.lr}")
        if self.num_steps < 1:
            raise VidplugError(f"solver.num_steps must be >= 1 DDIM step, got {self.num_steps}")
        if self.spacing not in SPACINGS:
            raise VidplugError(f"unknown solver.spacing '{self.spacing}'; use one of: {', '.join(SPACINGS)}")
        if self.eta < 0:
            raise VidplugError(f"solver.eta must be >= 0, got {self.eta}")
        if self.autocast not in AUTOCAST:
            raise VidplugError(f"unknown solver.autocast '{self.autocast}'; use one of: {', '.join(AUTOCAST)}")
        if self.es_preset not in ES_PRESETS:
            raise VidplugError(f"unknown solver.es_preset '{self.es_preset}'; use one of: {', '.join(ES_PRESETS)}")
        es = self.es_settings()
        if es["window"] < 2:
            raise VidplugError(f"solver.es_window must be >= 2 iterations, got {es['window']}")
        if es["patience"] < 1:
            raise VidplugError(f"solver.es_patience must be >= 1 iteration, got {es['patience']}")
        if es["mode"] not in ES_MODES:
            raise VidplugError(f"unknown solver.es_mode '{es['mode']}'; use one of: {', '.join(ES_MODES)}")
        if es["downscale"] < 1:
            raise VidplugError(f"solver.es_downscale must be >= 1, got {es['downscale']}")
        if self.es_check_every < 1 or self.log_every < 1:
            raise VidplugError("solver.es_check_every and solver.log_every must be >= 1 iteration")
        if self.seed_mode not in SEED_MODES:
            raise VidplugError(f"unknown solver.seed_mode '{self.seed_mode}'; use one of: {', '.join(SEED_MODES)}")
        if self.init not in INITS:
            raise VidplugError(f"unknown solver.init '{self.init}'; use one of: {', '.join(INITS)}")
        if self.micro_batch < 0:
            raise VidplugError(f"solver.micro_batch must be >= 0 frames (0 = whole chunk), got {self.micro_batch}")
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


@dataclass
class SolveResult:
    """What :func:`solve` returns. Tensors are on the solve's device; :meth:`to_dict` drops them."""

    frames: Tensor  # (T, C, H, W) restoration in [0, 1] (clamped here only)
    z: Tensor  # (T, C, H, W) effective seeds of the chosen iterate (R(z) reproduces frames before clamping)
    chosen_iteration: int  # 0-based iteration whose output is returned
    iterations_run: int  # iterations of the returned attempt
    stopped_by: str  # es-wmv | max-iters | diverged
    loss_history: dict[str, list[float]]  # "total", "data", each term's name -> one value per iteration (unweighted)
    wall_time_s: float  # all attempts, seconds
    iters_per_s: float  # iterations of all attempts / wall_time_s
    frame_iters_per_s: float  # iters_per_s * T
    lr: float  # step size of the returned attempt
    retries: int  # restarts after a non-finite loss (0 or 1)
    notes: list[str] = field(default_factory=list)  # human-readable events (divergence, fallbacks)
    oracle_psnr: list[float] | None = None  # ORACLE: per-iteration mean frame PSNR (dB) vs reference; never used
    es_variance: list[float] | None = None  # ES-WMV windowed variance per iteration (NaN until the window fills)
    es_stop_iteration: int | None = None  # iteration at which ES-WMV's rule fired (None: it never did)

    def to_dict(self) -> dict:
        """JSON-ready summary (no tensors; NaN/inf in the curves become None, which strict JSON can hold)."""
        out = {f.name: _json_safe(getattr(self, f.name)) for f in fields(self) if f.name not in ("frames", "z")}
        out["frames_shape"] = list(self.frames.shape)
        return out


def _json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def solve(
    y: Tensor,
    operator,
    prior: DiffusionPrior,
    config: SolverConfig | None = None,
    *,
    extra_terms: Sequence[LossTerm] = (),
    generator: torch.Generator | None = None,
    z_init: Tensor | None = None,
    reference: Tensor | None = None,
    progress: bool = True,
    desc: str = "dmplug",
    frame_shape: tuple[int, int, int, int] | None = None,
    on_iterate: Callable[[int, Tensor], None] | None = None,
) -> SolveResult:
    """Restore the frames behind observation ``y`` with DMPlug (all frames of the chunk jointly).

    Args:
        y: observation ``operator.A(x) + noise`` for the unknown ``x (T, C, H, W)`` in [0, 1]; its device is used.
        operator: has ``A(x)`` (differentiable); ``input_shape`` (or ``A_dagger``) gives the frame shape.
        prior: the diffusion prior, already on ``y``'s device.
        config: solver settings (default :class:`SolverConfig`).
        extra_terms: :class:`LossTerm` objects added as ``weight * term(x, iteration)``.
        generator: draws the initial seeds (and the DDIM noise if eta > 0). None = a CPU generator seeded 0.
        z_init: ``(T, C, H, W)`` initial seeds instead of drawing them.
        reference: ground-truth ``(T, C, H, W)`` in [0, 1] (simulations only): records ``oracle_psnr``. Never used
            for any decision.
        progress: show a tqdm bar.
        desc: the bar's label.
        frame_shape: ``(T, C, H, W)`` of ``x`` when the operator cannot tell.
        on_iterate: called as ``on_iterate(iteration, x)`` with every iterate's output ``x (T, C, H, W)`` (detached,
            unclamped; copy it to keep it). For studies of the stopping rule (benchmarks/tune_es.py); it may
            synchronise with the device, so leave it None in production runs.

    Returns:
        :class:`SolveResult`. Raises :class:`VidplugError` if the loss diverges twice with nothing finite to return.
    """
    config = config if config is not None else SolverConfig()
    config.validate()
    if not torch.is_tensor(y) or y.ndim != 4:
        raise VidplugError(f"the observation must be a (T, C, H, W) tensor, got {getattr(y, 'shape', type(y))}")
    device = y.device
    shape = _frame_shape(y, operator, frame_shape, z_init)
    terms = _check_terms(extra_terms)
    if reference is not None and tuple(reference.shape) != shape:
        raise VidplugError(f"reference has shape {tuple(reference.shape)} but the frames are {shape}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)

    seeds0 = make_seeds(
        shape, mode=config.seed_mode, rank=config.seed_rank, residual_scale=config.seed_residual_scale,
        generator=generator, z_init=z_init, device=device,
    )
    timesteps = ddim_timesteps(config.num_steps, prior.num_train_timesteps, config.spacing)
    # eta > 0: the DDIM noise is drawn once, so R stays one deterministic function of z during the optimisation
    noise = [draw_seeds(shape, generator, device) for _ in timesteps] if config.eta > 0 else None
    problem = _Problem(
        data=DataFidelity(y, operator), terms=terms,
        prior=fast_prior(prior, compile=config.compile, channels_last=config.channels_last),
        timesteps=timesteps, noise=noise, config=config,
        reference=None if reference is None else reference.to(device=device, dtype=torch.float32),
        on_iterate=on_iterate,
    )

    start = time.perf_counter()
    lr = config.resolved_lr
    attempts = [_run_attempt(problem, copy.deepcopy(seeds0), lr, progress, desc)]
    notes: list[str] = []
    if attempts[-1].stopped_by == "diverged":
        lr = lr / 2
        notes.append(
            f"non-finite loss at iteration {attempts[-1].first_bad}; retried from the same initial seeds at lr {lr:g}"
        )
        attempts.append(_run_attempt(problem, copy.deepcopy(seeds0), lr, progress, desc + " (retry)"))
    final = attempts[-1]
    frames, z, chosen, how = final.choice()
    if final.stopped_by == "diverged":
        notes.append(f"non-finite loss again at iteration {final.first_bad} (lr {lr:g})")
        for att in sorted(attempts, key=lambda a: a is not final):  # the retry first, then the first attempt
            frames, z, chosen, how = att.fallback()
            if frames is not None:
                notes.append(f"returned the {how} (iteration {chosen}, lr {att.lr:g}) of the diverged run")
                break
        else:
            raise VidplugError(
                f"DMPlug diverged: non-finite loss at iteration {attempts[0].first_bad} at lr {config.resolved_lr:g} "
                f"and at iteration {final.first_bad} at lr {lr:g} with no finite output; lower solver.lr "
                "(e.g. --set solver.lr=1e-3) or use solver.autocast=none"
            )
    elif how:
        notes.append(how)
    frames = frames.clamp(0.0, 1.0)  # the only clamp: the returned pixels, never the gradient path
    if not bool(torch.isfinite(frames).all()):  # cannot happen by construction; never hand out NaN pixels
        raise VidplugError("DMPlug produced non-finite frames; lower solver.lr or use solver.autocast=none")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    total_iters = sum(a.iterations_run for a in attempts)
    ips = total_iters / wall if wall > 0 else float("nan")
    return SolveResult(
        frames=frames, z=z, chosen_iteration=chosen, iterations_run=final.iterations_run,
        stopped_by=final.stopped_by, loss_history=final.history, wall_time_s=wall, iters_per_s=ips,
        frame_iters_per_s=ips * shape[0], lr=lr, retries=len(attempts) - 1, notes=notes,
        oracle_psnr=final.oracle, es_variance=final.es_variance,
        es_stop_iteration=final.es.stop_iteration if final.es is not None else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# fast path

_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # prior -> {(compile, channels_last): twin}


def fast_prior(prior: DiffusionPrior, *, compile: bool = False, channels_last: bool = False) -> DiffusionPrior:
    """``prior`` prepared for speed: a :class:`DiffusionPrior` sharing its weights and schedule whose network is
    ``torch.compile``d and/or runs in channels-last (NHWC) memory layout, which GPU convolutions prefer (with bf16
    especially). Returns ``prior`` itself when neither is asked for.

    Cached per prior and setting, so every chunk of a video reuses the compiled code instead of compiling again.
    Only the network is compiled: the DDIM loop, checkpointing and autocast around it stay eager Python.
    ``channels_last`` converts the shared network's conv weights in place (the original prior still works, with
    any layout).
    """
    if not (compile or channels_last):
        return prior
    twins = _TWINS.setdefault(prior, {})
    key = (bool(compile), bool(channels_last))
    if key not in twins:
        net = prior.net
        if channels_last and isinstance(net, torch.nn.Module):
            net.to(memory_format=torch.channels_last)
        twin = DiffusionPrior(
            torch.compile(net) if compile else net, prior.alphas_cumprod, name=prior.name, multiple=prior.multiple,
            native_size=prior.native_size, channels=prior.channels,
        )
        if channels_last:
            twin.memory_format = torch.channels_last
        twins[key] = twin
    return twins[key]


def reverse_fn(prior: DiffusionPrior, timesteps: Sequence[int], *, checkpoint: bool = False,
               noise: Sequence[Tensor] | None = None, **kwargs):
    """R as :func:`backprop_through_r` calls it: ``reverse(z_part, frames: slice, checkpoint=...)`` -> float32
    frames of those seeds, with their slice of the per-step DDIM ``noise``; other keywords (``eta``, ``clamp``,
    ``autocast_dtype``) go to :func:`~vidplug.prior.ddim.reverse_to_unit`."""

    def reverse(z: Tensor, frames: slice, checkpoint: bool = checkpoint) -> Tensor:
        part = None if noise is None else [n[frames] for n in noise]
        return reverse_to_unit(z, prior, timesteps, checkpoint=checkpoint, noise=part, **kwargs).float()

    return reverse


def backprop_through_r(z: Tensor, reverse, losses, micro_batch: int = 0) -> tuple[Tensor, list[Tensor]]:
    """``x = R(z)``, ``losses(x)`` (a list, the total first) and the total's gradient back into ``z``'s graph.

    Args:
        z: ``(T, C, H, W)`` seeds (a leaf, or computed from the seed parameters).
        reverse: ``reverse(z_part, frames: slice, checkpoint=...)`` -> R of those frames' seeds, float32
            (:func:`reverse_fn`).
        losses: maps ``x (T, C, H, W)`` to ``[total, ...]``; only ``total`` is differentiated.
        micro_batch: 0 = one backward pass over the chunk; ``0 < m < T`` = R without grad over the chunk, then
            re-run with grad ``m`` frames at a time (see :attr:`SolverConfig.micro_batch`).

    Returns:
        ``(x, losses(x))``; ``x`` may require grad (detach it to keep it).
    """
    micro = 0 < micro_batch < z.shape[0]
    if micro:  # R without grad here; its backward runs m frames at a time below
        with torch.no_grad():  # detached: a slice of a grad-requiring z would still claim requires_grad here
            zd = z.detach()
            x = torch.cat([reverse(zd[sl], sl, checkpoint=False) for sl in _frame_slices(z.shape[0], micro_batch)])
        x.requires_grad_()
    else:
        x = reverse(z, slice(None))
    values = losses(x)
    values[0].backward()
    if micro:
        _backward_through_r(z, x.grad, reverse, micro_batch)
    return x, values


def _frame_slices(num_frames: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, num_frames)) for i in range(0, num_frames, size)]


def _backward_through_r(z: Tensor, grad_x: Tensor | None, reverse, micro_batch: int) -> None:
    """Back-propagate ``grad_x = dL/dx`` through ``x = R(z)`` recomputing R ``micro_batch`` frames at a time.

    Exact: R maps each frame's seed to that frame alone, so dL/dz is the per-frame vector-Jacobian product of the
    whole-chunk gradient. The seeds' own graph (shared-seed parametrisation) is traversed once, at the end.
    """
    if grad_x is None:  # no loss term reached x
        return
    z_leaf = z.detach().requires_grad_()
    for sl in _frame_slices(z.shape[0], micro_batch):
        reverse(z_leaf[sl], sl).backward(grad_x[sl])
    z.backward(z_leaf.grad)


# ---------------------------------------------------------------------------------------------------------------
# one attempt (a run from the initial seeds at one learning rate)


@dataclass
class _Problem:
    data: DataFidelity
    terms: list[LossTerm]
    prior: DiffusionPrior
    timesteps: list[int]
    noise: list[Tensor] | None
    config: SolverConfig
    reference: Tensor | None
    on_iterate: Callable[[int, Tensor], None] | None = None


@dataclass
class _Attempt:
    lr: float
    stopped_by: str
    iterations_run: int
    first_bad: int | None  # first iteration with a non-finite loss or output
    history: dict[str, list[float]]
    oracle: list[float] | None
    es_variance: list[float] | None
    es: ESWMV | None
    last: tuple[Tensor, Tensor, int]  # output, seed, iteration of the last iterate
    last_finite: tuple[Tensor, Tensor, int]  # same, of the last iterate whose loss and output were finite (-1: none)

    def choice(self) -> tuple[Tensor, Tensor, int, str]:
        """The iterate to return after a finite run: ES-WMV's choice if enabled and available, else the last."""
        if self.es is not None and self.es.has_best:
            return self.es.best_output, self.es.best_z, self.es.best_iteration, ""
        how = ""
        if self.es is not None:
            how = "ES-WMV window never filled (iters < its window); returned the last iterate"
        return (*self.last, how)

    def fallback(self) -> tuple[Tensor | None, Tensor | None, int, str]:
        """The best finite iterate of a diverged run: ES-WMV's choice, else the last finite one."""
        if self.es is not None and self.es.has_best:
            return self.es.best_output, self.es.best_z, self.es.best_iteration, "ES-WMV choice"
        x, z, it = self.last_finite
        return (x, z, it, "last finite iterate") if it >= 0 else (None, None, -1, "")


def _run_attempt(problem: _Problem, seeds: SeedParam, lr: float, progress: bool, desc: str) -> _Attempt:
    cfg = problem.config
    device = problem.data.y.device
    params = list(seeds.parameters())
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        # tolerances 0: torch's defaults (1e-7 on the gradient) silently freeze the seeds when the loss is small
        # (e.g. from a DDIM-inversion warm start); stopping is ES-WMV's and iters' job
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=10, line_search_fn=None,
                                tolerance_grad=0.0, tolerance_change=0.0)
    es = ESWMV(**cfg.es_settings()) if cfg.early_stop else None
    autocast_dtype = AUTOCAST[cfg.autocast]
    # L-BFGS is not scale-invariant in its first step (lr * g while |g|_1 < 1): on a mean-reduced loss near a good
    # warm start that step is below float32 resolution and the seeds never move. It minimises the loss summed over
    # the frames' elements instead (same minimiser, same curvature-scaled steps after the first); Adam is invariant.
    with torch.no_grad():
        objective_scale = float(math.prod(seeds().shape)) if cfg.optimizer == "lbfgs" else 1.0

    names = ["total", "data", *[t.name for t in problem.terms]]
    hist = torch.full((len(names), cfg.iters), float("nan"), device=device)  # (terms, iters) device loss log
    oracle = torch.full((cfg.iters,), float("nan"), device=device) if problem.reference is not None else None
    es_var = torch.full((cfg.iters,), float("nan"), device=device) if es is not None else None
    finite_flag = torch.ones((), dtype=torch.bool, device=device)  # AND of every iteration's finiteness
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    last_finite: list = [None, None, torch.full((), -1, dtype=torch.long, device=device)]
    current: dict = {}

    reverse = reverse_fn(problem.prior, problem.timesteps, eta=cfg.eta, clamp=cfg.clamp, checkpoint=cfg.checkpoint,
                         autocast_dtype=autocast_dtype, noise=problem.noise)

    def evaluate(it: int) -> Tensor:
        """Forward R, the losses and backward at the current seeds; record this iterate (before the step)."""
        nonlocal finite_flag, first_bad
        opt.zero_grad(set_to_none=True)
        z = seeds()  # (T, C, H, W) float32 seeds

        def losses(x: Tensor) -> list[Tensor]:  # x: (T, C, H, W) nominally [0, 1], unclamped
            data = problem.data(x, it)
            values = [term(x, it) for term in problem.terms]
            total = data
            for term, v in zip(problem.terms, values, strict=True):
                total = total + float(term.weight) * v
            return [total * objective_scale, total, data, *values]

        x, (objective, total, data, *values) = backprop_through_r(z, reverse, losses, cfg.micro_batch)

        with torch.no_grad():
            hist[:, it] = torch.stack([total.detach().float(), data.detach(), *[v.detach().float().reshape(()) for v in values]])
            xd, zd = x.detach(), z.detach()
            finite = torch.isfinite(total.detach()) & torch.isfinite(xd).all()
            first_bad = torch.where(~finite & finite_flag, torch.full_like(first_bad, it), first_bad)
            finite_flag = finite_flag & finite
            if last_finite[0] is None:
                last_finite[0], last_finite[1] = torch.zeros_like(xd), torch.zeros_like(zd)
            last_finite[0].copy_(torch.where(finite, xd, last_finite[0]))
            last_finite[1].copy_(torch.where(finite, zd, last_finite[1]))
            last_finite[2] = torch.where(finite, torch.full_like(last_finite[2], it), last_finite[2])
            if es is not None:
                es.update(xd, it, zd)
                es_var[it] = es.last_variance
            if oracle is not None:
                mse = ((xd.clamp(0, 1) - problem.reference) ** 2).mean(dim=(1, 2, 3))  # (T,) per frame
                oracle[it] = (10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))).mean()
        current["x"], current["z"] = xd, zd.clone()  # z is the parameter itself in independent mode
        if problem.on_iterate is not None:
            problem.on_iterate(it, xd)
        return objective

    stopped_by, it = "max-iters", -1
    with tqdm(total=cfg.iters, desc=desc, disable=not progress, leave=False) as bar:
        for it in range(cfg.iters):
            if cfg.optimizer == "adam":
                evaluate(it)
                opt.step()
            else:
                opt.step(lambda it=it: evaluate(it))  # max_iter=1, no line search: exactly one closure call
            bar.update(1)
            last_iter = it + 1 == cfg.iters
            if (it + 1) % cfg.log_every == 0 or last_iter:
                bar.set_postfix(loss=f"{float(hist[0, it]):.3e}")
            if (it + 1) % cfg.es_check_every == 0 or last_iter:
                stop = es.stop_flag if es is not None else torch.zeros((), dtype=torch.bool, device=device)
                bad, stop = torch.stack([~finite_flag, stop]).tolist()  # one host sync for both flags
                if bad:
                    stopped_by = "diverged"
                    break
                if stop and not cfg.es_observe:
                    stopped_by = "es-wmv"
                    break
    n = it + 1
    return _Attempt(
        lr=lr, stopped_by=stopped_by, iterations_run=n, first_bad=int(first_bad) if stopped_by == "diverged" else None,
        history={name: row for name, row in zip(names, hist[:, :n].tolist(), strict=True)},
        oracle=None if oracle is None else oracle[:n].tolist(),
        es_variance=None if es_var is None else es_var[:n].tolist(),
        es=es, last=(current["x"], current["z"], it),
        last_finite=(last_finite[0], last_finite[1], int(last_finite[2])),
    )


# ---------------------------------------------------------------------------------------------------------------
# input checks


def _frame_shape(y: Tensor, operator, frame_shape, z_init: Tensor | None) -> tuple[int, int, int, int]:
    if frame_shape is not None:
        shape = tuple(int(s) for s in frame_shape)
    elif z_init is not None:
        shape = tuple(z_init.shape)
    elif getattr(operator, "input_shape", None) is not None:
        shape = tuple(int(s) for s in operator.input_shape)
    elif hasattr(operator, "A_dagger"):
        with torch.no_grad():
            shape = tuple(operator.A_dagger(y).shape)
    else:
        raise VidplugError("cannot tell the frame shape from this operator; pass frame_shape=(T, C, H, W) to solve")
    if len(shape) != 4:
        raise VidplugError(f"frames must be shaped (T, C, H, W), got {shape}")
    return shape  # type: ignore[return-value]


def _check_terms(extra_terms: Sequence[LossTerm]) -> list[LossTerm]:
    terms = list(extra_terms)
    seen = {"total", "data"}
    for term in terms:
        if not isinstance(term, LossTerm):
            raise VidplugError(f"extra term {term!r} needs .name, .weight and __call__(x, iteration)")
        if term.name in seen:
            raise VidplugError(f"loss term name '{term.name}' is used twice or reserved; give each term its own name")
        seen.add(term.name)
    return terms
