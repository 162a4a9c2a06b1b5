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
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_timesteps
from vidplug.solver.attempt import Attempt, Problem, run_attempt
from vidplug.solver.config import SolverConfig
from vidplug.solver.result import SolveResult
from vidplug.solver.reverse import StartOffset, fast_prior
from vidplug.solver.seeds import draw_seeds, make_seeds
from vidplug.solver.terms import DataFidelity, LossTerm


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
    x_offset: Tensor | StartOffset | None = None,
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
        z_init: initial seeds ``prior.seed_shape((T, C, H, W))`` instead of drawing them (latent priors:
            ``(T, 4, H/8, W/8)``).
        reference: ground-truth ``(T, C, H, W)`` in [0, 1] (simulations only): records ``oracle_psnr``. Never used
            for any decision.
        progress: show a tqdm bar.
        desc: the bar's label.
        frame_shape: ``(T, C, H, W)`` of ``x`` when the operator cannot tell.
        x_offset: ``(T, C, H, W)`` added to ``R(z)`` (``solver.init=inversion-offset``): ``x = R(z) + x_offset``;
            or a :class:`~vidplug.solver.reverse.StartOffset`, ``start - R(z_init)`` from the first iteration's R.
        on_iterate: called as ``on_iterate(iteration, x)`` with every iterate's output ``x (T, C, H, W)`` (detached,
            unclamped; copy it to keep it). For studies of the stopping rule (benchmarks/tune_es.py); it may
            synchronise with the device, so leave it None in production runs.

    Returns:
        :class:`SolveResult`. Raises :class:`VidplugError` if the loss diverges twice with nothing finite to return.
    """
    config = config if config is not None else SolverConfig()
    config.validate()
    # a latent prior's seeds are not frame-shaped: its z_init cannot tell the frame shape
    shape = _checked_shape(y, operator, frame_shape, None if prior.latent else z_init, reference)
    seed_shape = prior.seed_shape(shape)  # (T, C, H, W) for pixel priors, (T, 4, H/8, W/8) latents
    terms = _check_terms(extra_terms)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)

    seeds0 = make_seeds(
        seed_shape, mode=config.seed_mode, rank=config.seed_rank, residual_scale=config.seed_residual_scale,
        generator=generator, z_init=z_init, device=y.device,
    )
    problem = _problem(y, operator, prior, config, terms, generator, shape, reference, on_iterate, x_offset)

    start = time.perf_counter()
    attempts, notes = _attempts(problem, seeds0, config.resolved_lr, progress, desc)
    frames, z, chosen = _returned_iterate(attempts, config.resolved_lr, notes)
    frames = frames.clamp(0.0, 1.0)  # the only clamp: the returned pixels, never the gradient path
    if not bool(torch.isfinite(frames).all()):  # cannot happen by construction; never hand out NaN pixels
        raise VidplugError("DMPlug produced non-finite frames; lower solver.lr or use solver.autocast=none")
    if y.device.type == "cuda":
        torch.cuda.synchronize(y.device)
    return _result(attempts, frames, z, chosen, notes, time.perf_counter() - start, shape[0])


def _checked_shape(y: Tensor, operator, frame_shape, z_init: Tensor | None,
                   reference: Tensor | None) -> tuple[int, int, int, int]:
    """The frames' ``(T, C, H, W)``, after checking that ``y`` is a (T, C, H, W) tensor and ``reference`` fits."""
    if not torch.is_tensor(y) or y.ndim != 4:
        raise VidplugError(f"the observation must be a (T, C, H, W) tensor, got {getattr(y, 'shape', type(y))}")
    shape = _frame_shape(y, operator, frame_shape, z_init)
    if reference is not None and tuple(reference.shape) != shape:
        raise VidplugError(f"reference has shape {tuple(reference.shape)} but the frames are {shape}")
    return shape


def _attempts(problem: Problem, seeds0, lr: float, progress: bool, desc: str) -> tuple[list[Attempt], list[str]]:
    """One attempt at ``lr``; if its loss diverges, one retry from the same initial seeds at ``lr / 2``.
    Returns the attempts (in order) and the notes saying why a retry ran."""
    attempts = [run_attempt(problem, copy.deepcopy(seeds0), lr, progress, desc)]
    notes: list[str] = []
    if attempts[-1].stopped_by == "diverged":
        lr = lr / 2
        notes.append(
            f"non-finite loss at iteration {attempts[-1].first_bad}; retried from the same initial seeds at lr {lr:g}"
        )
        attempts.append(run_attempt(problem, copy.deepcopy(seeds0), lr, progress, desc + " (retry)"))
    return attempts, notes


def _result(attempts: list[Attempt], frames: Tensor, z: Tensor, chosen: int, notes: list[str], wall: float,
            num_frames: int) -> SolveResult:
    """The :class:`SolveResult` of the final attempt (speed counted over every attempt's iterations)."""
    final = attempts[-1]
    total_iters = sum(a.iterations_run for a in attempts)
    ips = total_iters / wall if wall > 0 else float("nan")
    return SolveResult(
        frames=frames, z=z, chosen_iteration=chosen, iterations_run=final.iterations_run,
        stopped_by=final.stopped_by, loss_history=final.history, wall_time_s=wall, iters_per_s=ips,
        frame_iters_per_s=ips * num_frames, lr=final.lr, retries=len(attempts) - 1, notes=notes,
        oracle_psnr=final.oracle, es_variance=final.es_variance,
        es_stop_iteration=final.es.stop_iteration if final.es is not None else None,
    )


def _problem(y: Tensor, operator, prior: DiffusionPrior, config: SolverConfig, terms: list[LossTerm],
             generator: torch.Generator, shape: tuple[int, int, int, int], reference: Tensor | None,
             on_iterate: Callable[[int, Tensor], None] | None = None,
             offset: Tensor | StartOffset | None = None) -> Problem:
    """What every attempt optimises against: data term, loss terms, the (fast) prior, R's timesteps and noise."""
    timesteps = ddim_timesteps(config.num_steps, prior.num_train_timesteps, config.spacing)
    # eta > 0: the DDIM noise is drawn once, so R stays one deterministic function of z during the optimisation
    noise = [draw_seeds(prior.seed_shape(shape), generator, y.device) for _ in timesteps] if config.eta > 0 else None
    return Problem(
        data=DataFidelity(y, operator), terms=terms,
        prior=fast_prior(prior, compile=config.compile, channels_last=config.channels_last),
        timesteps=timesteps, noise=noise, config=config,
        reference=None if reference is None else reference.to(device=y.device, dtype=torch.float32),
        on_iterate=on_iterate, frame_shape=shape,
        offset=None if offset is None else offset.to(device=y.device, dtype=torch.float32),
    )


def _returned_iterate(attempts: list[Attempt], first_lr: float, notes: list[str]) -> tuple[Tensor, Tensor, int]:
    """Output, seeds and iteration to return: the final attempt's choice, or after a second divergence the best
    finite iterate of either attempt (the retry first); notes say which. One-line error when none is finite."""
    final = attempts[-1]
    frames, z, chosen, how = final.choice()
    if final.stopped_by != "diverged":
        if how:
            notes.append(how)
        return frames, z, chosen
    notes.append(f"non-finite loss again at iteration {final.first_bad} (lr {final.lr:g})")
    for att in sorted(attempts, key=lambda a: a is not final):  # the retry first, then the first attempt
        frames, z, chosen, how = att.fallback()
        if frames is not None:
            notes.append(f"returned the {how} (iteration {chosen}, lr {att.lr:g}) of the diverged run")
            return frames, z, chosen
    raise VidplugError(
        f"DMPlug diverged: non-finite loss at iteration {attempts[0].first_bad} at lr {first_lr:g} "
        f"and at iteration {final.first_bad} at lr {final.lr:g} with no finite output; lower solver.lr "
        "(e.g. --set solver.lr=1e-3) or use solver.autocast=none"
    )


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
