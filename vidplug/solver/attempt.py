"""One attempt of the DMPlug optimisation: a run from the initial seeds at one learning rate (:func:`run_attempt`),
its on-device bookkeeping (:class:`_Recorder`) and what it leaves (:class:`Attempt`).

Host synchronisation is rare on purpose: losses, the oracle curve and the ES-WMV statistics are written into device
buffers every iteration and read back only every ``log_every`` / ``es_check_every`` iterations and at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vidplug.prior.base import DiffusionPrior
from vidplug.solver.config import SolverConfig
from vidplug.solver.early_stop import ESWMV
from vidplug.solver.reverse import AUTOCAST, StartOffset, backprop_through_r, frame_workers, reverse_fn
from vidplug.solver.seeds import SeedParam
from vidplug.solver.terms import DataFidelity, LossTerm


@dataclass
class Problem:
    """Everything an attempt optimises against (the same for a retry)."""

    data: DataFidelity
    terms: list[LossTerm]
    prior: DiffusionPrior
    timesteps: list[int]
    noise: list[Tensor] | None  # per-step DDIM noise, fixed once per solve (eta > 0), else None
    config: SolverConfig
    reference: Tensor | None  # ORACLE only: (T, C, H, W) ground truth for the PSNR curve
    frame_shape: tuple[int, int, int, int] | None = None  # (T, C, H, W) of x (a latent prior's seeds differ)
    offset: Tensor | StartOffset | None = None  # added to R(z) (solver.init=inversion-offset), else None
    on_iterate: Callable[[int, Tensor], None] | None = None  # studies of the stopping rule only (see solve)


@dataclass
class Attempt:
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


class _Recorder:
    """Device-side log of an attempt: losses, finiteness, the last finite iterate, ES-WMV and the ORACLE curve."""

    def __init__(self, problem: Problem, device: torch.device) -> None:
        cfg = problem.config
        self.names = ["total", "data", *[t.name for t in problem.terms]]
        self.hist = torch.full((len(self.names), cfg.iters), float("nan"), device=device)  # (terms, iters)
        self.reference = problem.reference
        self.oracle = torch.full((cfg.iters,), float("nan"), device=device) if self.reference is not None else None
        self.es = ESWMV(**cfg.es_settings()) if cfg.early_stop else None
        self.es_var = torch.full((cfg.iters,), float("nan"), device=device) if self.es is not None else None
        self.finite_flag = torch.ones((), dtype=torch.bool, device=device)  # AND of every iteration's finiteness
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.finite_x = self.finite_z = None  # the last finite iterate
        self.finite_it = torch.full((), -1, dtype=torch.long, device=device)
        self.x = self.z = None  # the current iterate (before the step)

    @torch.no_grad()
    def record(self, it: int, x: Tensor, z: Tensor, total: Tensor, data: Tensor, values: list[Tensor]) -> None:
        """Log iteration ``it`` (x, z: ``(T, C, H, W)``) without a host sync."""
        self.hist[:, it] = torch.stack([total.detach().float(), data.detach(),
                                        *[v.detach().float().reshape(()) for v in values]])
        xd, zd = x.detach(), z.detach()
        finite = torch.isfinite(total.detach()) & torch.isfinite(xd).all()
        self.first_bad = torch.where(~finite & self.finite_flag, torch.full_like(self.first_bad, it), self.first_bad)
        self.finite_flag = self.finite_flag & finite
        if self.finite_x is None:
            self.finite_x, self.finite_z = torch.zeros_like(xd), torch.zeros_like(zd)
        self.finite_x.copy_(torch.where(finite, xd, self.finite_x))
        self.finite_z.copy_(torch.where(finite, zd, self.finite_z))
        self.finite_it = torch.where(finite, torch.full_like(self.finite_it, it), self.finite_it)
        if self.es is not None:
            self.es.update(xd, it, zd)
            self.es_var[it] = self.es.last_variance
        if self.oracle is not None:
            mse = ((xd.clamp(0, 1) - self.reference) ** 2).mean(dim=(1, 2, 3))  # (T,) per frame
            self.oracle[it] = (10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))).mean()
        self.x, self.z = xd, zd.clone()  # z is the parameter itself in independent mode

    def flags(self) -> tuple[bool, bool]:
        """(diverged, ES-WMV says stop), read with one host sync."""
        stop = self.es.stop_flag if self.es is not None else torch.zeros_like(self.finite_flag)
        bad, stop = torch.stack([~self.finite_flag, stop]).tolist()
        return bool(bad), bool(stop)

    def attempt(self, lr: float, stopped_by: str, it: int) -> Attempt:
        n = it + 1
        return Attempt(
            lr=lr, stopped_by=stopped_by, iterations_run=n,
            first_bad=int(self.first_bad) if stopped_by == "diverged" else None,
            history={name: row for name, row in zip(self.names, self.hist[:, :n].tolist(), strict=True)},
            oracle=None if self.oracle is None else self.oracle[:n].tolist(),
            es_variance=None if self.es_var is None else self.es_var[:n].tolist(),
            es=self.es, last=(self.x, self.z, it), last_finite=(self.finite_x, self.finite_z, int(self.finite_it)),
        )


def _optimizer(cfg: SolverConfig, params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    # tolerances 0: torch's defaults (1e-7 on the gradient) silently freeze the seeds when the loss is small
    # (e.g. from a DDIM-inversion warm start); stopping is ES-WMV's and iters' job
    return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=10, line_search_fn=None,
                             tolerance_grad=0.0, tolerance_change=0.0)


def run_attempt(problem: Problem, seeds: SeedParam, lr: float, progress: bool, desc: str) -> Attempt:
    """Optimise ``seeds`` for at most ``config.iters`` iterations at step size ``lr``; stop early on ES-WMV or a
    non-finite loss (checked every ``es_check_every`` iterations)."""
    cfg = problem.config
    opt = _optimizer(cfg, list(seeds.parameters()), lr)
    rec = _Recorder(problem, problem.data.y.device)
    # L-BFGS is not scale-invariant in its first step (lr * g while |g|_1 < 1): on a mean-reduced loss near a good
    # warm start that step is below float32 resolution and the seeds never move. It minimises the loss summed over
    # the frames' elements instead (same minimiser, same curvature-scaled steps after the first); Adam is invariant.
    with torch.no_grad():
        frame_shape = problem.frame_shape or tuple(seeds().shape)
        objective_scale = float(math.prod(frame_shape)) if cfg.optimizer == "lbfgs" else 1.0
    reverse = reverse_fn(problem.prior, problem.timesteps, eta=cfg.eta, clamp=cfg.clamp, checkpoint=cfg.checkpoint,
                         autocast_dtype=AUTOCAST[cfg.autocast], noise=problem.noise, size=tuple(frame_shape[2:]),
                         checkpoint_decoder=cfg.checkpoint_decoder, offset=problem.offset)

    def evaluate(it: int) -> Tensor:
        """Forward R, the losses and backward at the current seeds; record this iterate (before the step)."""
        opt.zero_grad(set_to_none=True)
        z = seeds()  # (T, C, H, W) float32 seeds

        def losses(x: Tensor) -> list[Tensor]:  # x: (T, C, H, W) nominally [0, 1], unclamped
            data = problem.data(x, it)
            values = [term(x, it) for term in problem.terms]
            total = data
            for term, v in zip(problem.terms, values, strict=True):
                total = total + float(term.weight) * v
            return [total * objective_scale, total, data, *values]

        x, (objective, total, data, *values) = backprop_through_r(z, reverse, losses, cfg.micro_batch,
                                                                   frame_workers(cfg.frame_threads, z))
        rec.record(it, x, z, total, data, values)
        if problem.on_iterate is not None:
            problem.on_iterate(it, x.detach())
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
                bar.set_postfix(loss=f"{float(rec.hist[0, it]):.3e}")
            if (it + 1) % cfg.es_check_every == 0 or last_iter:
                bad, stop = rec.flags()
                stop = stop and not cfg.es_observe  # observing: ES-WMV decides the iterate, the run goes on
                if bad or stop:
                    stopped_by = "diverged" if bad else "es-wmv"
                    break
    return rec.attempt(lr, stopped_by, it)
